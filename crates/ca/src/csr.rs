//! Certificate signing requests from devices. Only two things are taken from a CSR: its
//! public key (after the CSR's signature proves the device holds the private key) and the
//! names it asks for, which must be the enrolling computer's. Requested extensions (CA
//! flag, EKUs, key usages) are never copied: the certificate is built from policy.
//!
//! rcgen's own CSR reader refuses CSRs with extensions it does not know (Windows and MDM
//! requests carry some) and copies requested extensions into its parameters, so this module
//! reads CSRs with x509-parser and hands rcgen only the SubjectPublicKeyInfo (the spec's
//! fallback path, used for every CSR).

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use crate::{CaError, ComputerName};

/// The largest CSR accepted, in bytes (PEM or DER); real ones are below 4 KiB.
pub const MAX_CSR_BYTES: usize = 64 * 1024;

/// A CSR whose signature verified: the device's public key and the names it asked for.
#[derive(Debug, Clone)]
pub struct DeviceCsr {
    public_key: rcgen::SubjectPublicKeyInfo,
    spki_der: Vec<u8>,
    requested_names: Vec<String>,
}

impl DeviceCsr {
    /// Reads a PEM (`CERTIFICATE REQUEST`) or DER CSR and verifies its signature.
    pub fn parse(bytes: &[u8]) -> Result<Self, CaError> {
        if bytes.len() > MAX_CSR_BYTES {
            return Err(unreadable(format!(
                "it is {} bytes, more than the {MAX_CSR_BYTES} accepted",
                bytes.len()
            )));
        }
        let der = to_der(bytes)?;
        let (rest, request) =
            X509CertificationRequest::from_der(&der).map_err(|e| unreadable(e.to_string()))?;
        if !rest.is_empty() {
            return Err(unreadable(format!(
                "{} bytes follow the request",
                rest.len()
            )));
        }
        let subject_pki = &request.certification_request_info.subject_pki;
        // Before the signature check: aws-lc will not verify with a weak RSA key, and
        // "too small" is the useful answer, not "bad signature".
        check_key_strength(subject_pki)?;
        request
            .verify_signature()
            .map_err(|e| CaError::CsrBadSignature {
                reason: e.to_string(),
            })?;
        let spki = subject_pki.raw;
        let public_key = rcgen::SubjectPublicKeyInfo::from_der(spki).map_err(|e| {
            CaError::CsrKeyUnsupported {
                reason: e.to_string(),
            }
        })?;
        Ok(Self {
            public_key,
            spki_der: spki.to_vec(),
            requested_names: requested_names(&request),
        })
    }

    /// The names the CSR asked for: every subject CN and every SAN dNSName, in order.
    pub fn requested_names(&self) -> &[String] {
        &self.requested_names
    }

    /// The device's SubjectPublicKeyInfo, DER.
    pub fn public_key_der(&self) -> &[u8] {
        &self.spki_der
    }

    pub(crate) fn public_key(&self) -> &rcgen::SubjectPublicKeyInfo {
        &self.public_key
    }

    /// Checks that the CSR asks for `name` and nothing else: at least one CN or SAN
    /// dNSName, and every one equal to `name` byte for byte.
    pub fn check_names(&self, name: &ComputerName) -> Result<(), CaError> {
        if self.requested_names.is_empty() {
            return Err(CaError::CsrNoName {
                expected: name.to_string(),
            });
        }
        if self.requested_names.iter().any(|n| n != name.as_str()) {
            return Err(CaError::CsrNameMismatch {
                requested: self.requested_names.clone(),
                expected: name.to_string(),
            });
        }
        Ok(())
    }
}

/// The device policy's key rule (rule `key-strength`): RSA of at least 2048 bits, or EC on
/// P-256 or P-384. Checked here so that a weak key is refused with a reason instead of
/// being certified into a certificate the policy then rejects.
fn check_key_strength(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> Result<(), CaError> {
    use x509_parser::oid_registry::{OID_EC_P256, OID_NIST_EC_P384};
    use x509_parser::public_key::PublicKey;
    let unsupported = |reason: String| CaError::CsrKeyUnsupported { reason };
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => {
            let bits = rsa.key_size();
            if bits < MIN_RSA_BITS {
                return Err(unsupported(format!(
                    "an RSA key of {bits} bits is too small"
                )));
            }
            if bits > MAX_RSA_BITS {
                return Err(unsupported(format!(
                    "an RSA key of {bits} bits is larger than {MAX_RSA_BITS}"
                )));
            }
            Ok(())
        }
        Ok(PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok());
            match curve {
                Some(oid) if oid == OID_EC_P256 || oid == OID_NIST_EC_P384 => Ok(()),
                Some(oid) => Err(unsupported(format!(
                    "the EC curve {oid} is not P-256 or P-384"
                ))),
                None => Err(unsupported("the EC key names no curve".into())),
            }
        }
        Ok(_) => Err(unsupported(format!(
            "the key algorithm {} is not RSA or EC",
            spki.algorithm.algorithm
        ))),
        Err(e) => Err(unsupported(format!(
            "the public key cannot be parsed ({e})"
        ))),
    }
}

/// Smallest RSA modulus certified (the device policy's minimum).
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus certified: bigger keys only cost verification time.
pub const MAX_RSA_BITS: usize = 8192;

fn unreadable(reason: String) -> CaError {
    CaError::CsrUnreadable { reason }
}

fn to_der(bytes: &[u8]) -> Result<Vec<u8>, CaError> {
    let looks_like_pem = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'-');
    if !looks_like_pem {
        return Ok(bytes.to_vec());
    }
    let block = pem::parse(bytes).map_err(|e| unreadable(format!("bad PEM: {e}")))?;
    match block.tag() {
        "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => Ok(block.into_contents()),
        other => Err(unreadable(format!(
            "the PEM block is a {other:?}, not a CERTIFICATE REQUEST"
        ))),
    }
}

fn requested_names(request: &X509CertificationRequest<'_>) -> Vec<String> {
    let info = &request.certification_request_info;
    let mut names: Vec<String> = info
        .subject
        .iter_common_name()
        .map(|cn| match cn.as_str() {
            Ok(text) => text.to_owned(),
            // A CN that is not a string can never equal a computer name; keep a marker so
            // the request is refused rather than silently treated as nameless.
            Err(_) => "<unreadable CN>".to_owned(),
        })
        .collect();
    if let Some(extensions) = request.requested_extensions() {
        for extension in extensions {
            if let ParsedExtension::SubjectAlternativeName(san) = extension {
                for general_name in &san.general_names {
                    if let GeneralName::DNSName(dns) = general_name {
                        names.push((*dns).to_owned());
                    }
                }
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair, PublicKeyData};

    fn csr_pem(cn: Option<&str>, sans: &[&str], key: &KeyPair) -> String {
        let mut params =
            CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .unwrap();
        // rcgen's default subject is "CN=rcgen self signed cert".
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params.serialize_request(key).unwrap().pem().unwrap()
    }

    #[test]
    fn a_matching_csr_is_accepted_in_pem_and_der() {
        let key = KeyPair::generate().unwrap();
        let pem_text = csr_pem(Some("MAC01.local"), &["MAC01.local"], &key);
        let csr = DeviceCsr::parse(pem_text.as_bytes()).unwrap();
        assert_eq!(csr.requested_names(), ["MAC01.local", "MAC01.local"]);
        csr.check_names(&ComputerName::new("MAC01.local").unwrap())
            .unwrap();
        assert_eq!(csr.public_key_der(), key.subject_public_key_info());

        let der = pem::parse(pem_text.as_bytes()).unwrap().into_contents();
        assert_eq!(DeviceCsr::parse(&der).unwrap().requested_names().len(), 2);
    }

    #[test]
    fn other_names_are_refused() {
        let key = KeyPair::generate().unwrap();
        let name = ComputerName::new("MAC01.local").unwrap();
        for (cn, sans) in [
            (Some("mac01.local"), vec![]),
            (Some("MAC01.local"), vec!["evil.example"]),
            (None, vec!["MAC02.local"]),
        ] {
            let csr = DeviceCsr::parse(csr_pem(cn, &sans, &key).as_bytes()).unwrap();
            let err = csr.check_names(&name).unwrap_err();
            assert!(matches!(err, CaError::CsrNameMismatch { .. }), "{err}");
        }
        let nameless = DeviceCsr::parse(csr_pem(None, &[], &key).as_bytes()).unwrap();
        assert!(matches!(
            nameless.check_names(&name),
            Err(CaError::CsrNoName { .. })
        ));
    }

    #[test]
    fn a_tampered_csr_is_refused() {
        let key = KeyPair::generate().unwrap();
        let pem_text = csr_pem(Some("MAC01.local"), &[], &key);
        let mut der = pem::parse(pem_text.as_bytes()).unwrap().into_contents();
        // Flip a byte inside the CN value: still parses, no longer verifies.
        let at = der.windows(5).position(|w| w == b"MAC01").unwrap();
        der[at] = b'X';
        let err = DeviceCsr::parse(&der).unwrap_err();
        assert!(matches!(err, CaError::CsrBadSignature { .. }), "{err}");
    }

    #[test]
    fn keys_the_policy_rejects_are_refused_with_the_reason() {
        let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let err = DeviceCsr::parse(csr_pem(Some("A"), &[], &ed).as_bytes()).unwrap_err();
        assert!(matches!(err, CaError::CsrKeyUnsupported { .. }), "{err}");
        assert!(err.to_string().contains("not RSA or EC"), "{err}");
        let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        DeviceCsr::parse(csr_pem(Some("A"), &[], &p384).as_bytes()).unwrap();
    }

    #[test]
    fn junk_is_unreadable_not_a_panic() {
        for junk in [
            &b""[..],
            b"hello",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            &[0x30, 0x82, 0xff, 0xff],
        ] {
            assert!(matches!(
                DeviceCsr::parse(junk),
                Err(CaError::CsrUnreadable { .. })
            ));
        }
        assert!(DeviceCsr::parse(&vec![b'a'; MAX_CSR_BYTES + 1]).is_err());
    }
}
