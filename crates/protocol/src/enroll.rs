//! The JSON messages of Tessera's enrollment API (`POST /enroll`).
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

/// `POST /enroll` response body.
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
}
