//! Enrollment: make the key here, send a CSR and the facts, keep what comes back.
//!
//! The private key never leaves the device. The server is trusted only through what the
//! admin handed over (the CA's SHA-256 fingerprint or its certificate file), and the CA the
//! server returns must be that same CA before anything is stored.

use tessera_keystore::{CertificateDer, Identity, Keystore, PrivateKeyDer};
use tessera_protocol::enroll::EnrollRequest;
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

    let key = rcgen::KeyPair::generate()
        .map_err(|e| AgentError::Server(format!("cannot make a key: {e}")))?;
    let mut params = rcgen::CertificateParams::new(vec![hostname.clone()]).map_err(|e| {
        AgentError::Facts(format!(
            "the computer name {hostname:?} cannot go in a certificate ({e}); set `device.hostname`"
        ))
    })?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, hostname.clone());
    let csr_pem = params
        .serialize_request(&key)
        .and_then(|csr| csr.pem())
        .map_err(|e| AgentError::Server(format!("cannot make the CSR: {e}")))?;

    let mut client = ServerClient::new(options.servers.clone(), tls::anonymous(&options.trust)?)?;
    let request = EnrollRequest {
        token: options.token.to_string(),
        csr_pem,
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
    let mut chain = CertificateDer::all_from_pem(response.certificate_chain_pem.as_bytes())?;
    if chain.is_empty() {
        return Err(AgentError::Server(
            "the server returned no certificate".to_owned(),
        ));
    }
    let leaf = chain.remove(0);
    let key_der = PrivateKeyDer::from_pkcs8_der(key.serialize_der())?;
    let identity = Identity::new(leaf, chain, key_der)?;
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

    #[test]
    fn device_ids_are_what_the_ocs_server_accepts() {
        let at = time::macros::datetime!(2026-11-23 16:05:09 UTC);
        let id = device_id("mac 01", at);
        assert_eq!(id, "mac_01-2026-11-23-16-05-09");
        assert!(tessera_protocol::ocs::DeviceId::parse(&id).is_ok());
    }
}
