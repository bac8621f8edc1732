//! TLS for the HTTPS listener: the server's own certificate, and client certificates
//! verified against the device CA and its current CRL.
//!
//! Client certificates are *optional at the TLS layer* — unmodified OCS agents and the
//! enrollment endpoint have none — and *required by every native endpoint*, which reads
//! the verified certificate from the request ([`ClientCertificate`]). A certificate that
//! is presented but fails verification (unknown CA, revoked, expired) ends the handshake:
//! a device with a bad identity learns so at once rather than being served anonymously.
//!
//! The acceptable CA names are advertised in the CertificateRequest, which is how Munki
//! (via macOS) picks the identity to present.

use std::sync::{Arc, RwLock};

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

use crate::Error;

/// The verified client certificate of a connection (leaf, DER), or `None` when the client
/// presented none. Inserted into every request's extensions by the accept loop.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientCertificate(pub Option<Arc<CertificateDer<'static>>>);

/// What the HTTPS listener needs to build its TLS configuration.
#[derive(Debug, Clone)]
pub struct TlsMaterial {
    /// The server certificate followed by its issuers.
    pub server_chain: Vec<CertificateDer<'static>>,
    /// The server certificate's private key.
    pub server_key: Arc<PrivateKeyDer<'static>>,
    /// Roots that device certificates must chain to.
    pub client_roots: Vec<CertificateDer<'static>>,
    /// Current CRLs of the device CA (one per issuer).
    pub crls: Vec<CertificateRevocationListDer<'static>>,
}

/// The live TLS configuration: swapped when a CRL is re-published, so that a revocation
/// takes effect on the next handshake without a restart.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    current: Arc<RwLock<Arc<rustls::ServerConfig>>>,
}

impl TlsConfig {
    /// Builds the configuration.
    pub fn new(material: &TlsMaterial) -> Result<Self, Error> {
        Ok(Self {
            current: Arc::new(RwLock::new(build(material)?)),
        })
    }

    /// Replaces the configuration (e.g. with a new CRL) for connections accepted from now on.
    pub fn update(&self, material: &TlsMaterial) -> Result<(), Error> {
        let config = build(material)?;
        match self.current.write() {
            Ok(mut current) => *current = config,
            Err(poisoned) => *poisoned.into_inner() = config,
        }
        Ok(())
    }

    /// The configuration for a connection being accepted now.
    pub fn current(&self) -> Arc<rustls::ServerConfig> {
        match self.current.read() {
            Ok(current) => Arc::clone(&current),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }
}

fn build(material: &TlsMaterial) -> Result<Arc<rustls::ServerConfig>, Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    for root in &material.client_roots {
        roots
            .add(root.clone())
            .map_err(|e| Error::Tls(format!("device CA certificate: {e}")))?;
    }
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .with_crls(material.crls.iter().cloned())
            .allow_unauthenticated()
            .build()
            .map_err(|e| Error::Tls(format!("client certificate verifier: {e}")))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            material.server_chain.clone(),
            material.server_key.clone_key(),
        )
        .map_err(|e| Error::Tls(format!("server certificate and key: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
