//! `enroll --configure-munki`: point the Munki client at the Tessera repository with the
//! device's certificate, so that Munki and the agent share one identity.
//!
//! Munki reads PEM files (`ClientCertificatePath`, `ClientKeyPath`,
//! `SoftwareRepoCACertificate`) and its preferences from the `ManagedInstalls` domain, which
//! is written with `defaults` (through the privileged-command runner) rather than by editing
//! the plist, because `cfprefsd` caches preferences and would overwrite a direct edit.

use std::path::{Path, PathBuf};

use tessera_keystore::privileged::{CommandRunner, Invocation, NoCredentials, commands};
use tessera_keystore::{InstalledIdentity, PrivateKeyAccess};

use crate::error::{AgentError, Result};
use crate::fsio::{create_private_dir, write_atomic};

/// What Munki is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MunkiSettings {
    /// `SoftwareRepoURL`: the server's `/repo`.
    pub repo_url: String,
    /// `ClientIdentifier`: the device's computer manifest.
    pub client_identifier: String,
    /// Where the PEM files go (`<data_dir>/munki`).
    pub dir: PathBuf,
}

/// Writes the PEM files and sets Munki's preferences; returns the files written.
pub fn configure(
    runner: &CommandRunner,
    settings: &MunkiSettings,
    identity: &InstalledIdentity,
    ca_pem: &str,
) -> Result<Vec<PathBuf>> {
    let PrivateKeyAccess::Material(key) = &identity.private_key else {
        return Err(AgentError::Trust(
            "the device key is in the keychain; Munki's preferences need it as a PEM file"
                .to_owned(),
        ));
    };
    create_private_dir(&settings.dir)?;
    let cert_path = settings.dir.join("client.pem");
    let key_path = settings.dir.join("client.key");
    let ca_path = settings.dir.join("ca.pem");
    let mut chain = identity.leaf.to_pem();
    for cert in &identity.chain {
        chain.push_str(&cert.to_pem());
    }
    write_atomic(&cert_path, chain.as_bytes(), 0o644)?;
    write_atomic(&key_path, key.to_pem().as_bytes(), 0o600)?;
    write_atomic(&ca_path, ca_pem.as_bytes(), 0o644)?;

    let path = |p: &Path| p.to_string_lossy().into_owned();
    let settings_list: [(&str, &str, String); 7] = [
        ("SoftwareRepoURL", "-string", settings.repo_url.clone()),
        (
            "ClientIdentifier",
            "-string",
            settings.client_identifier.clone(),
        ),
        ("UseClientCertificate", "-bool", "true".to_owned()),
        // The manifest is `computers/<serial>`, not the certificate's CN.
        (
            "UseClientCertificateCNAsClientIdentifier",
            "-bool",
            "false".to_owned(),
        ),
        ("ClientCertificatePath", "-string", path(&cert_path)),
        ("ClientKeyPath", "-string", path(&key_path)),
        ("SoftwareRepoCACertificate", "-string", path(&ca_path)),
    ];
    for (key, kind, value) in settings_list {
        let invocation = Invocation::new(&commands::DEFAULTS_WRITE_MANAGED_INSTALLS)
            .arg(key)
            .arg(kind)
            .arg(value);
        let output = runner.run(&invocation, &NoCredentials)?;
        if !output.status.success() {
            return Err(AgentError::Server(format!(
                "{} failed: {}",
                output.command_line,
                output.stderr.trim()
            )));
        }
    }
    Ok(vec![cert_path, key_path, ca_path])
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;
    use std::sync::Arc;

    use tessera_keystore::{CertificateDer, FixedUid, PrivateKeyDer};

    use super::*;

    fn identity() -> InstalledIdentity {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["mac01".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        InstalledIdentity {
            leaf: CertificateDer::from_der(cert.der().to_vec()).unwrap(),
            chain: vec![],
            private_key: PrivateKeyAccess::Material(
                PrivateKeyDer::from_pkcs8_der(key.serialize_der()).unwrap(),
            ),
        }
    }

    /// `defaults` cannot run on Linux: a fake records every argument, one line per call.
    fn fake_defaults(dir: &Path) -> PathBuf {
        let fake = dir.join("defaults");
        let log = dir.join("defaults.log");
        std::fs::write(
            &fake,
            format!(
                "#!/bin/sh\nprintf '%s|' \"$@\" >> '{}'\necho >> '{}'\n",
                log.display(),
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        fake
    }

    #[test]
    fn writes_pems_and_every_preference_through_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let runner = CommandRunner::new(Arc::new(FixedUid(0)))
            .with_tool_path("/usr/bin/defaults", fake_defaults(dir.path()));
        let settings = MunkiSettings {
            repo_url: "https://tessera.example.com:8443/repo".into(),
            client_identifier: "computers/C02XYZ".into(),
            dir: dir.path().join("munki"),
        };
        let identity = identity();
        let files = configure(&runner, &settings, &identity, "CA PEM\n").unwrap();
        assert_eq!(files.len(), 3);
        let key_mode = std::fs::metadata(dir.path().join("munki/client.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(key_mode & 0o777, 0o600);
        let cert = std::fs::read(dir.path().join("munki/client.pem")).unwrap();
        assert_eq!(CertificateDer::from_pem(&cert).unwrap(), identity.leaf);

        let log = std::fs::read_to_string(dir.path().join("defaults.log")).unwrap();
        let calls: Vec<&str> = log.lines().collect();
        let munki = dir.path().join("munki");
        let expected = [
            "write|/Library/Preferences/ManagedInstalls|SoftwareRepoURL|-string|https://tessera.example.com:8443/repo|".to_owned(),
            "write|/Library/Preferences/ManagedInstalls|ClientIdentifier|-string|computers/C02XYZ|".to_owned(),
            "write|/Library/Preferences/ManagedInstalls|UseClientCertificate|-bool|true|".to_owned(),
            "write|/Library/Preferences/ManagedInstalls|UseClientCertificateCNAsClientIdentifier|-bool|false|".to_owned(),
            format!("write|/Library/Preferences/ManagedInstalls|ClientCertificatePath|-string|{}|", munki.join("client.pem").display()),
            format!("write|/Library/Preferences/ManagedInstalls|ClientKeyPath|-string|{}|", munki.join("client.key").display()),
            format!("write|/Library/Preferences/ManagedInstalls|SoftwareRepoCACertificate|-string|{}|", munki.join("ca.pem").display()),
        ];
        assert_eq!(calls, expected);
    }

    #[test]
    fn not_root_is_refused_before_anything_runs() {
        let dir = tempfile::tempdir().unwrap();
        let runner = CommandRunner::new(Arc::new(FixedUid(501)))
            .with_tool_path("/usr/bin/defaults", fake_defaults(dir.path()));
        let settings = MunkiSettings {
            repo_url: "https://a/repo".into(),
            client_identifier: "computers/X".into(),
            dir: dir.path().join("munki"),
        };
        assert!(configure(&runner, &settings, &identity(), "CA").is_err());
        assert!(!dir.path().join("defaults.log").exists());
    }
}
