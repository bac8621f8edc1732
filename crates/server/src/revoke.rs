//! Revoking device certificates, and making a revocation take effect at once: the CA's
//! ledger and the store record it, fresh CRLs are signed and stored, the HTTP listener
//! publishes them, and the TLS verifier refuses the certificate from the next handshake.

use std::sync::Mutex;

use rustls_pki_types::CertificateRevocationListDer;
use tessera_ca::{CaHome, PublishedCrls, RevocationReason, Serial};
use tessera_store::{CertificateRecord, DeviceKey, Revocation, Store};

use crate::app::App;
use crate::tls::{TlsConfig, TlsMaterial};

/// Where new CRLs go: the CA's files and the live TLS configuration.
pub struct CrlPublisher {
    /// The CA directory (CRLs are stored there).
    pub home: CaHome,
    /// The HTTPS listener's TLS configuration.
    pub tls: TlsConfig,
    /// The material it was built from (the CRLs are swapped in).
    pub material: Mutex<TlsMaterial>,
}

impl CrlPublisher {
    /// Stores `crls`, publishes the issuing CRL on `app`, and applies all of them to TLS.
    pub fn apply<S>(&self, app: &App<S>, crls: &PublishedCrls) -> Result<(), crate::Error> {
        self.home.store_crls(crls)?;
        app.publish_crl(crls.issuing.der().to_vec());
        app.publish_root_crl(crls.root.as_ref().map(|root| root.der().to_vec()));
        let mut material = self
            .material
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        material.crls = crls
            .all_der()
            .into_iter()
            .map(CertificateRevocationListDer::from)
            .collect();
        self.tls.update(&material)
    }
}

/// Why a revocation failed.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    /// The device does not exist.
    #[error("device {0} does not exist")]
    UnknownDevice(i64),
    /// This server has no CA.
    #[error("this server has no CA")]
    NoCa,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] tessera_store::Error),
    /// The CA failed.
    #[error(transparent)]
    Ca(#[from] tessera_ca::CaError),
    /// Publishing the CRL failed.
    #[error(transparent)]
    Publish(#[from] crate::Error),
}

/// Revokes every unrevoked certificate of `device` and applies the new CRL. Returns the
/// serials revoked (empty when there was nothing to revoke).
pub async fn revoke_device<S: Store>(
    app: &App<S>,
    device: DeviceKey,
    reason: RevocationReason,
) -> Result<Vec<String>, RevokeError> {
    if app.enrollment.is_none() {
        return Err(RevokeError::NoCa);
    }
    if app.store.device(device).await?.is_none() {
        return Err(RevokeError::UnknownDevice(device.0));
    }
    let certificates = app.store.certificates_for(device).await?;
    let revoked = revoke_records(app, certificates, reason).await?;
    if !revoked.is_empty() {
        tracing::info!(device = device.0, serials = ?revoked, %reason, "device certificates revoked");
    }
    Ok(revoked)
}

/// Revokes the one certificate `serial` (lowercase hex, as the store keys it) and applies
/// the new CRL, exactly as [`revoke_device`] does for each of a device's certificates.
/// Returns whether anything was revoked (`false` when it is unknown or revoked already).
pub async fn revoke_certificate<S: Store>(
    app: &App<S>,
    serial: &str,
    reason: RevocationReason,
) -> Result<bool, RevokeError> {
    if app.enrollment.is_none() {
        return Err(RevokeError::NoCa);
    }
    let certificates = app.store.certificate(serial).await?.into_iter().collect();
    Ok(!revoke_records(app, certificates, reason).await?.is_empty())
}

/// Revokes the unrevoked ones of `certificates` in the CA's ledger and the store, then
/// signs and applies fresh CRLs once (not per certificate).
async fn revoke_records<S: Store>(
    app: &App<S>,
    certificates: Vec<CertificateRecord>,
    reason: RevocationReason,
) -> Result<Vec<String>, RevokeError> {
    let enrollment = app.enrollment.as_ref().ok_or(RevokeError::NoCa)?;
    let mut revoked = Vec::new();
    for certificate in certificates {
        if certificate.revoked.is_some() {
            continue;
        }
        let serial = Serial::from_hex(&certificate.serial)?;
        let issued = match enrollment.ca.revoke(&serial, reason) {
            Ok(issued) => issued,
            // Revoked in the CA already (e.g. with `ca revoke`): record it in the store too.
            Err(tessera_ca::CaError::AlreadyRevoked { .. }) => enrollment
                .ca
                .ledger()
                .find(&serial)?
                .ok_or(RevokeError::NoCa)?,
            Err(error) => return Err(error.into()),
        };
        let at = issued.revoked.as_ref().map_or_else(|| app.now(), |r| r.at);
        app.store
            .revoke_certificate(
                &certificate.serial,
                &Revocation {
                    at,
                    reason: reason.as_str().to_owned(),
                },
            )
            .await?;
        revoked.push(certificate.serial);
    }
    if !revoked.is_empty() {
        let crls = enrollment.ca.sign_crls()?;
        if let Some(publisher) = &enrollment.publisher {
            publisher.apply(app, &crls)?;
        } else {
            app.publish_crl(crls.issuing.der().to_vec());
        }
    }
    Ok(revoked)
}
