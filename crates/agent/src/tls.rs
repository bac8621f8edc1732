//! The agent's TLS settings: whom it trusts and what it presents.
//!
//! Before enrollment the agent knows only a fingerprint (or a CA file) from the admin, so
//! the first connection trusts the CA in the server's own chain *if* its SHA-256 is the
//! pinned one, and then checks the chain as usual. After enrollment it trusts the anchors in
//! its keystore and presents its device certificate.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use sha2::{Digest as _, Sha256};

use crate::error::{AgentError, Result};

/// What the agent trusts to be its server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerTrust {
    /// These root certificates (DER), as from a CA file or the keystore.
    Anchors(Vec<Vec<u8>>),
    /// The CA certificate with this SHA-256, which the server must present in its chain.
    Pin([u8; 32]),
}

impl ServerTrust {
    /// Parses a SHA-256 fingerprint as printed by `openssl x509 -fingerprint -sha256`
    /// (colons optional, any case).
    pub fn pin_from_hex(text: &str) -> Result<Self> {
        let cleaned: String = text
            .trim()
            .trim_start_matches("sha256:")
            .trim_start_matches("SHA256:")
            .chars()
            .filter(|c| *c != ':')
            .collect();
        let mut pin = [0u8; 32];
        hex::decode_to_slice(&cleaned, &mut pin).map_err(|_| {
            AgentError::Trust(format!(
                "{text:?} is not a SHA-256 fingerprint (64 hex digits, colons allowed); `tessera-server serve` prints the CA's"
            ))
        })?;
        Ok(Self::Pin(pin))
    }

    /// Whether `der` is a certificate this trust accepts as the CA.
    pub fn accepts_ca(&self, der: &[u8]) -> bool {
        match self {
            Self::Anchors(anchors) => anchors.iter().any(|a| a == der),
            Self::Pin(pin) => sha256(der) == *pin,
        }
    }
}

/// SHA-256 of some bytes (certificate fingerprints).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A client configuration that trusts `trust` and presents no certificate.
pub fn anonymous(trust: &ServerTrust) -> Result<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?;
    Ok(match trust {
        ServerTrust::Anchors(anchors) => builder
            .with_root_certificates(root_store(anchors)?)
            .with_no_client_auth(),
        ServerTrust::Pin(pin) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedCa {
                pin: *pin,
                provider: provider(),
            }))
            .with_no_client_auth(),
    })
}

/// A configuration that trusts nothing: for clients that only speak plain HTTP (CRL
/// distribution points), which still need one.
pub fn plain_http_only() -> Result<ClientConfig> {
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth())
}

/// A client configuration that trusts `anchors` and presents the device identity
/// (`chain` = leaf first, then issuers; `key` = PKCS#8 DER).
pub fn device(anchors: &[Vec<u8>], chain: Vec<Vec<u8>>, key: &[u8]) -> Result<ClientConfig> {
    let chain = chain.into_iter().map(CertificateDer::from).collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_vec()));
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_root_certificates(root_store(anchors)?)
        .with_client_auth_cert(chain, key)
        .map_err(tls_error)
}

fn root_store(anchors: &[Vec<u8>]) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for der in anchors {
        roots
            .add(CertificateDer::from(der.clone()))
            .map_err(|e| AgentError::Trust(format!("a trust anchor is unusable: {e}")))?;
    }
    if roots.is_empty() {
        return Err(AgentError::Trust(
            "no trust anchor: the keystore holds no CA certificate (enroll again)".to_owned(),
        ));
    }
    Ok(roots)
}

#[allow(clippy::needless_pass_by_value, reason = "used as a map_err function")]
fn tls_error(error: rustls::Error) -> AgentError {
    AgentError::Trust(format!("TLS configuration: {error}"))
}

/// Trusts the CA certificate in the server's chain whose SHA-256 is pinned.
#[derive(Debug)]
struct PinnedCa {
    pin: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let anchor = intermediates
            .iter()
            .find(|c| sha256(c) == self.pin)
            .ok_or_else(|| {
                rustls::Error::General(format!(
                    "the server's chain holds no CA with the pinned SHA-256 {}; check the fingerprint (`tessera-server serve` prints it) and the server URL",
                    hex::encode(self.pin)
                ))
            })?;
        let mut roots = RootCertStore::empty();
        roots.add(anchor.clone().into_owned())?;
        let inner = WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::clone(&self.provider),
        )
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))?;
        inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_in_the_usual_spellings() {
        let hex64 = "AB".repeat(32);
        let colons = vec!["ab"; 32].join(":");
        for text in [hex64.clone(), colons, format!("sha256:{hex64}")] {
            assert_eq!(
                ServerTrust::pin_from_hex(&text).unwrap(),
                ServerTrust::Pin([0xAB; 32])
            );
        }
        assert!(ServerTrust::pin_from_hex("abcd").is_err());
        assert!(ServerTrust::pin_from_hex(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn pins_accept_only_their_certificate() {
        let trust = ServerTrust::Pin(sha256(b"ca"));
        assert!(trust.accepts_ca(b"ca"));
        assert!(!trust.accepts_ca(b"other"));
        assert!(anonymous(&ServerTrust::Anchors(vec![])).is_err());
    }
}
