//! The JSON messages of Tessera's enrollment API (`POST /enroll`, `POST /enroll/renew`).
//!
//! The agent makes its key on the device and sends a CSR; the server answers with the
//! certificate chain and the device's place in the manifest tree.

use serde::{Deserialize, Serialize};

/// What an enrolling device says about itself. These facts seed its manifest conditions;
/// none of them is trusted as a path or a command.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceFacts {
    /// Hardware serial number.
    pub serial: String,
    /// The computer name (what `hostname` prints); the certificate's CN and SAN.
    pub hostname: String,
    /// Operating system family, e.g. "macOS" or "Linux".
    pub os: String,
    /// Operating system version, e.g. "14.5" or "12".
    #[serde(default)]
    pub os_version: String,
    /// Machine architecture, e.g. "arm64" or "x86_64".
    #[serde(default)]
    pub arch: String,
}

/// `POST /enroll` request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The enrollment token (compared in constant time, never logged).
    pub token: String,
    /// PKCS#10 certificate signing request, PEM.
    pub csr_pem: String,
    /// The device's facts.
    pub facts: DeviceFacts,
}

/// `POST /enroll/renew` request body. The device is identified by the certificate it
/// presents over mutual TLS, so there is no token; the answer is an [`EnrollResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewRequest {
    /// PKCS#10 certificate signing request for a new key made on the device, PEM. It must
    /// name exactly the computer name of the certificate presented.
    pub csr_pem: String,
}

/// `POST /enroll` (and `POST /enroll/renew`) response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// The device certificate followed by its issuing CA certificates, PEM.
    pub certificate_chain_pem: String,
    /// The trust anchor (the root CA certificate), PEM.
    pub ca_pem: String,
    /// The device's computer manifest, e.g. `computers/C02XYZ`.
    pub manifest: String,
    /// Group manifests the device may join.
    pub groups: Vec<String>,
}

/// The body of every error response of the JSON APIs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// A stable machine-readable code, e.g. `token_expired`.
    pub code: String,
    /// A sentence a person can act on.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips_and_optional_facts_default() {
        let json = r#"{"token":"t","csr_pem":"-----BEGIN CERTIFICATE REQUEST-----","facts":{"serial":"C02","hostname":"mac01","os":"macOS"}}"#;
        let request: EnrollRequest = serde_json::from_str(json).unwrap();
        assert_eq!(request.facts.os_version, "");
        let back: EnrollRequest =
            serde_json::from_str(&serde_json::to_string(&request).unwrap()).unwrap();
        assert_eq!(back, request);
    }

    #[test]
    fn missing_required_fields_are_errors() {
        assert!(serde_json::from_str::<EnrollRequest>(r#"{"token":"t"}"#).is_err());
    }

    #[test]
    fn renew_request_round_trips_and_refuses_extra_fields() {
        let request = RenewRequest {
            csr_pem: "-----BEGIN CERTIFICATE REQUEST-----".into(),
        };
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(
            serde_json::from_str::<RenewRequest>(&json).unwrap(),
            request
        );
        // A token here would be a client confused about which endpoint it calls.
        assert!(serde_json::from_str::<RenewRequest>(r#"{"csr_pem":"x","token":"t"}"#).is_err());
        assert!(serde_json::from_str::<RenewRequest>("{}").is_err());
    }
}
