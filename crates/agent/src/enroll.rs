//! Enrollment: make the key here, send a CSR and the facts, keep what comes back.
//!
//! The private key never leaves the device. The server is trusted only through what the
//! admin handed over (the CA's SHA-256 fingerprint or its certificate file), and the CA the
//! server returns must be that same CA before anything is stored.
//!
//! Renewal is the same exchange authenticated by the current certificate instead of a
//! token: a new key here, a CSR with the name of the stored certificate, and the new
//! identity replaces the old one in one atomic keystore write, only once the returned CA
//! is one of the stored anchors.

use tessera_keystore::{CertificateDer, Identity, Keystore, PrivateKeyDer};
use tessera_protocol::enroll::{EnrollRequest, EnrollResponse, RenewRequest};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::client::ServerClient;
use crate::config::AgentConfig;
use crate::error::{AgentError, Result};
use crate::facts;
use crate::journal::{AgentState, DataDir};
use crate::tls::{self, ServerTrust};

/// What `enroll` needs beyond the configuration.
#[derive(Debug, Clone)]
pub struct EnrollOptions {
    /// Server base URLs, tried in order (usually the configuration's).
    pub servers: Vec<String>,
    /// The enrollment token (never logged).
    pub token: Zeroizing<String>,
    /// How to recognise the server's CA.
    pub trust: ServerTrust,
}

/// What enrollment produced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Enrolled {
    /// The server that enrolled the device.
    pub server: String,
    /// The computer name in the certificate.
    pub hostname: String,
    /// The OCS DEVICEID the agent uses from now on.
    pub device_id: String,
    /// The device's computer manifest.
    pub manifest: String,
    /// Group manifests it may join.
    pub groups: Vec<String>,
    /// SHA-256 of the device certificate (hex).
    pub certificate_sha256: String,
    /// SHA-256 of the trusted CA certificate (hex).
    pub ca_sha256: String,
}

/// Enrolls the device: key and CSR here, certificate from the server, identity and CA
/// into `keystore`, the enrollment record into the data directory.
pub async fn enroll(
    config: &AgentConfig,
    keystore: &dyn Keystore,
    options: &EnrollOptions,
) -> Result<Enrolled> {
    let device = facts::detect(&config.device)?;
    let hostname = device.facts.hostname.clone();
    let data = DataDir::open(&config.data_dir)?;

    let (key, csr_pem) = key_and_csr(&hostname)?;

    let mut client = ServerClient::new(options.servers.clone(), tls::anonymous(&options.trust)?)?;
    let request = EnrollRequest {
        token: options.token.to_string(),
        csr_pem: csr_pem.to_string(),
        facts: device.facts.clone(),
    };
    let response = client.enroll(&request).await?;
    drop(request);

    let ca = CertificateDer::from_pem(response.ca_pem.as_bytes())?;
    if !options.trust.accepts_ca(ca.as_der()) {
        return Err(AgentError::Trust(format!(
            "the server returned a CA (SHA-256 {}) other than the one this device was told to trust; nothing was stored",
            ca.sha256()
        )));
    }
    let identity = new_identity(&response, &key)?;
    keystore.put_identity(&identity)?;
    match keystore.add_trust_anchor(&ca)? {
        tessera_keystore::AnchorInstall::Installed => {}
        tessera_keystore::AnchorInstall::NeedsAdminOrMdm { instructions } => {
            tracing::warn!("{instructions}");
        }
    }

    let now = OffsetDateTime::now_utc();
    let device_id = device_id(&hostname, now);
    let server = client.current_server().to_owned();
    let previous = data.agent_state()?;
    let state = AgentState {
        device_id: device_id.clone(),
        server: server.clone(),
        manifest: response.manifest.clone(),
        groups: response.groups.clone(),
        enrolled_at: now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        last_check_in: None,
        prolog_freq_hours: previous.as_ref().map_or(12, |p| p.prolog_freq_hours),
        // Re-enrolling keeps what was installed.
        history: previous.map(|p| p.history).unwrap_or_default(),
    };
    data.save_agent_state(&state)?;
    tracing::info!(%server, manifest = %response.manifest, "enrolled");
    Ok(Enrolled {
        server,
        hostname,
        device_id,
        manifest: response.manifest,
        groups: response.groups,
        certificate_sha256: identity.leaf().sha256().to_string(),
        ca_sha256: ca.sha256().to_string(),
    })
}

/// A new key made here and a CSR for `hostname` (CN and SAN dNSName, nothing else).
fn key_and_csr(hostname: &str) -> Result<(rcgen::KeyPair, Zeroizing<String>)> {
    let key = rcgen::KeyPair::generate()
        .map_err(|e| AgentError::Server(format!("cannot make a key: {e}")))?;
    let mut params = rcgen::CertificateParams::new(vec![hostname.to_owned()]).map_err(|e| {
        AgentError::Facts(format!(
            "the computer name {hostname:?} cannot go in a certificate ({e}); set `device.hostname`"
        ))
    })?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, hostname.to_owned());
    let csr_pem = params
        .serialize_request(&key)
        .and_then(|csr| csr.pem())
        .map_err(|e| AgentError::Server(format!("cannot make the CSR: {e}")))?;
    Ok((key, Zeroizing::new(csr_pem)))
}

/// The identity the server's answer and the key made here form.
fn new_identity(response: &EnrollResponse, key: &rcgen::KeyPair) -> Result<Identity> {
    let mut chain = CertificateDer::all_from_pem(response.certificate_chain_pem.as_bytes())?;
    if chain.is_empty() {
        return Err(AgentError::Server(
            "the server returned no certificate".to_owned(),
        ));
    }
    let leaf = chain.remove(0);
    let key_der = PrivateKeyDer::from_pkcs8_der(key.serialize_der())?;
    Ok(Identity::new(leaf, chain, key_der)?)
}

/// When `certificate` stops being valid (its notAfter).
pub fn not_after(certificate: &CertificateDer) -> Result<OffsetDateTime> {
    use x509_parser::prelude::{FromDer as _, X509Certificate};
    let (_, parsed) = X509Certificate::from_der(certificate.as_der()).map_err(|e| {
        AgentError::Trust(format!(
            "the stored device certificate (SHA-256 {}) is unreadable: {e}; enroll again",
            certificate.sha256()
        ))
    })?;
    Ok(parsed.validity().not_after.to_datetime())
}

/// Whether the stored certificate should be renewed at `now`: it expires within
/// `renew_days` days. Returns its notAfter when it should.
pub fn renewal_due(
    certificate: &CertificateDer,
    renew_days: u32,
    now: OffsetDateTime,
) -> Result<Option<OffsetDateTime>> {
    let expires = not_after(certificate)?;
    // A window reaching before the representable past means "always due", not a panic.
    let due = expires
        .checked_sub(time::Duration::days(i64::from(renew_days)))
        .is_none_or(|start| start <= now);
    Ok(due.then_some(expires))
}

/// Renews the device certificate with the current one: a new key here, a CSR with the
/// computer name of the stored certificate, `POST /enroll/renew` over mutual TLS. The
/// returned CA must be one of the stored anchors; then the new identity replaces the old
/// one in one atomic write, and the agent state takes the manifest and groups returned.
pub async fn renew(config: &AgentConfig, keystore: &dyn Keystore) -> Result<Enrolled> {
    let data = DataDir::open(&config.data_dir)?;
    let mut state = data.agent_state()?.ok_or(AgentError::NotEnrolled)?;
    let enrolled = renew_with(config, keystore, &mut state).await?;
    data.save_agent_state(&state)?;
    Ok(enrolled)
}

/// [`renew`] with the agent state in memory (the caller saves it): what `run` uses, as
/// it holds the state itself.
pub(crate) async fn renew_with(
    config: &AgentConfig,
    keystore: &dyn Keystore,
    state: &mut AgentState,
) -> Result<Enrolled> {
    let current = keystore.identity()?.ok_or(AgentError::NotEnrolled)?;
    let hostname = current.leaf.common_name().ok_or_else(|| {
        AgentError::Trust(format!(
            "the stored device certificate (SHA-256 {}) has no common name to renew; enroll again",
            current.leaf.sha256()
        ))
    })?;
    let (key, csr_pem) = key_and_csr(&hostname)?;
    let anchors = keystore.trust_anchors()?;
    let mut client = ServerClient::new(
        config.servers.clone(),
        crate::identity::device_tls(keystore)?,
    )?;
    let response = client
        .renew(&RenewRequest {
            csr_pem: csr_pem.to_string(),
        })
        .await?;

    let ca = CertificateDer::from_pem(response.ca_pem.as_bytes())?;
    if !anchors.iter().any(|a| a.as_der() == ca.as_der()) {
        return Err(AgentError::Trust(format!(
            "the server returned a CA (SHA-256 {}) that is not one of the stored trust anchors; the current certificate was kept",
            ca.sha256()
        )));
    }
    let identity = new_identity(&response, &key)?;
    if identity.leaf().common_name().as_deref() != Some(hostname.as_str()) {
        return Err(AgentError::Server(format!(
            "the server returned a certificate for another name than {hostname:?}; the current certificate was kept"
        )));
    }
    keystore.put_identity(&identity)?;

    let server = client.current_server().to_owned();
    state.server.clone_from(&server);
    state.manifest.clone_from(&response.manifest);
    state.groups.clone_from(&response.groups);
    tracing::info!(
        %server,
        previous = %current.leaf.sha256(),
        certificate = %identity.leaf().sha256(),
        "device certificate renewed"
    );
    Ok(Enrolled {
        server,
        hostname,
        device_id: state.device_id.clone(),
        manifest: response.manifest,
        groups: response.groups,
        certificate_sha256: identity.leaf().sha256().to_string(),
        ca_sha256: ca.sha256().to_string(),
    })
}

/// The OCS DEVICEID: the computer name and the enrollment time.
pub(crate) fn device_id(hostname: &str, at: OffsetDateTime) -> String {
    let safe: String = hostname
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    format!(
        "{safe}-{:04}-{:02}-{:02}-{:02}-{:02}-{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate_until(not_after: OffsetDateTime) -> CertificateDer {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["mac01".to_owned()]).unwrap();
        params.not_before = not_after - time::Duration::days(365);
        params.not_after = not_after;
        CertificateDer::from_der(params.self_signed(&key).unwrap().der().to_vec()).unwrap()
    }

    #[test]
    fn renewal_is_due_inside_the_window_only() {
        let now = time::macros::datetime!(2026-11-23 12:00 UTC);
        let expires = time::macros::datetime!(2026-12-23 12:00 UTC);
        let certificate = certificate_until(expires);
        assert_eq!(not_after(&certificate).unwrap(), expires);
        assert_eq!(renewal_due(&certificate, 29, now).unwrap(), None);
        assert_eq!(renewal_due(&certificate, 30, now).unwrap(), Some(expires));
        assert_eq!(renewal_due(&certificate, 0, now).unwrap(), None);
        assert_eq!(
            renewal_due(&certificate, u32::MAX, now).unwrap(),
            Some(expires),
            "a huge window is always due, without overflow"
        );
        // Expired already: due (the server will say it cannot be renewed).
        let later = expires + time::Duration::days(1);
        assert_eq!(renewal_due(&certificate, 0, later).unwrap(), Some(expires));
    }

    #[test]
    fn device_ids_are_what_the_ocs_server_accepts() {
        let at = time::macros::datetime!(2026-11-23 16:05:09 UTC);
        let id = device_id("mac 01", at);
        assert_eq!(id, "mac_01-2026-11-23-16-05-09");
        assert!(tessera_protocol::ocs::DeviceId::parse(&id).is_ok());
    }
}
