//! Choosing the primary manifest with Munki's fallback order (`get_primary_manifest`).

use crate::error::{Error, Result};
use crate::resolve::RepoSource;

/// What a client knows about itself when it picks its manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientIdentity {
    /// `managedsoftwareupdate --id`.
    pub alternate_id: Option<String>,
    /// The `UseClientCertificate` preference.
    pub use_client_certificate: bool,
    /// The `UseClientCertificateCNAsClientIdentifier` preference.
    pub use_client_certificate_cn_as_identifier: bool,
    /// The client certificate's common name.
    pub client_certificate_cn: Option<String>,
    /// The `ClientIdentifier` preference.
    pub client_identifier: Option<String>,
    /// `uname` hostname (often the FQDN).
    pub hostname: Option<String>,
    /// Hardware serial number (`UNKNOWN` is skipped).
    pub serial_number: Option<String>,
}

/// The names to try: one explicit identifier, or the fallback list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestCandidates {
    /// An identifier was configured: exactly this manifest, and its absence is an error.
    Exact(String),
    /// No identifier: try these in order (hostname, short hostname, serial, `site_default`).
    Fallback(Vec<String>),
}

/// Munki's order: `--id`, then the certificate CN (only when both certificate preferences
/// are true), then `ClientIdentifier`; if all are empty, the fallback list.
pub fn manifest_candidates(identity: &ClientIdentity) -> ManifestCandidates {
    let non_empty = |s: &Option<String>| s.as_ref().filter(|s| !s.is_empty()).cloned();
    let cn = if identity.use_client_certificate && identity.use_client_certificate_cn_as_identifier
    {
        non_empty(&identity.client_certificate_cn)
    } else {
        None
    };
    if let Some(id) = non_empty(&identity.alternate_id)
        .or(cn)
        .or_else(|| non_empty(&identity.client_identifier))
    {
        return ManifestCandidates::Exact(id);
    }
    let mut names = Vec::new();
    if let Some(host) = non_empty(&identity.hostname) {
        let short = host.split('.').next().unwrap_or(&host).to_owned();
        names.push(host.clone());
        if short != host && !short.is_empty() {
            names.push(short);
        }
    }
    if let Some(serial) = non_empty(&identity.serial_number).filter(|s| s != "UNKNOWN") {
        names.push(serial);
    }
    names.push("site_default".to_owned());
    ManifestCandidates::Fallback(names)
}

/// Picks the first candidate that exists in `source`.
pub fn choose_primary_manifest(
    source: &dyn RepoSource,
    identity: &ClientIdentity,
) -> Result<String> {
    match manifest_candidates(identity) {
        ManifestCandidates::Exact(name) => match source.manifest(&name)? {
            Some(_) => Ok(name),
            None => Err(Error::MissingPrimaryManifest { name }),
        },
        ManifestCandidates::Fallback(names) => {
            for name in &names {
                if source.manifest(name)?.is_some() {
                    return Ok(name.clone());
                }
            }
            Err(Error::NoPrimaryManifest { tried: names })
        }
    }
}
