//! `MacKeystore`: the macOS System keychain driven through `/usr/bin/security`.
//!
//! It compiles on every Unix and is tested against a fake `security` executable; the path of
//! the tool is injected (default `/usr/bin/security`, never a PATH lookup).
//!
//! - Identity: a PKCS#12 built in memory with a one-time random password is written to a 0600
//!   file in a fresh 0700 directory, imported with `-t agg -f pkcs12 -T <agent>` (never `-x`,
//!   never `-A`), then found again by its certificate SHA-1; only then is the previous identity
//!   deleted. The SHA-1 of the current identity is recorded as a generic-password item.
//! - Trust anchors: `add-trusted-cert -d -r trustRoot`; when macOS demands an interactive
//!   admin (macOS 11+), the outcome is [`AnchorInstall::NeedsAdminOrMdm`].
//! - Secrets: generic-password items written through `security -i` with the command on stdin,
//!   so the value never appears in argv; hex-encoded so no quoting can break.

mod output;
mod pkcs12;

use std::fs::DirBuilder;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use output::{
    ListedIdentity, fuzz_security_output, parse_find_certificate_output, parse_find_identity_output,
};
pub use pkcs12::build_pkcs12;
use zeroize::Zeroizing;

use crate::error::{KeystoreError, Result};
use crate::identity::{CertificateDer, Identity, Sha1Fingerprint, Sha256Fingerprint};
use crate::keystore::{
    AnchorInstall, InstalledIdentity, Keystore, PrivateKeyAccess, SecretName, SecretValue,
};
use crate::privileged::{CommandOutput, CommandRunner, Invocation, NoCredentials, commands};
use crate::system::{EffectiveUid, OsRandomness, ProcessUid, Randomness};

/// The System keychain, where a daemon's identity and roots live.
pub const SYSTEM_KEYCHAIN: &str = "/Library/Keychains/System.keychain";
/// The `security` tool, always by absolute path.
pub const DEFAULT_SECURITY_TOOL: &str = "/usr/bin/security";
/// Generic-password service of named secrets.
const SECRET_SERVICE: &str = "tessera.secret";
/// Generic-password service and account of the current-identity record.
const IDENTITY_SERVICE: &str = "tessera.identity";
const IDENTITY_ACCOUNT: &str = "device";
/// `errSecItemNotFound` as the exit status of `security`.
const EXIT_ITEM_NOT_FOUND: i32 = 44;
/// Longest issuer chain followed when reading the identity back.
const MAX_CHAIN: usize = 8;

/// Where and how the keychain is driven.
#[derive(Debug, Clone)]
pub struct MacKeystoreConfig {
    /// The `security` executable (default `/usr/bin/security`; tests inject a fake).
    pub security_tool: PathBuf,
    /// The keychain file (default the System keychain).
    pub keychain: PathBuf,
    /// The only application allowed to use the private key (`-T`): the agent binary.
    pub trusted_application: PathBuf,
    /// Where the short-lived 0700 import directory is created.
    pub work_dir: PathBuf,
}

impl MacKeystoreConfig {
    /// Production defaults, with the agent's own path as the trusted application.
    pub fn new(trusted_application: impl Into<PathBuf>) -> Self {
        Self {
            security_tool: PathBuf::from(DEFAULT_SECURITY_TOOL),
            keychain: PathBuf::from(SYSTEM_KEYCHAIN),
            trusted_application: trusted_application.into(),
            work_dir: std::env::temp_dir(),
        }
    }
}

/// The keychain-backed store.
#[derive(Debug)]
pub struct MacKeystore {
    config: MacKeystoreConfig,
    runner: CommandRunner,
    random: Arc<dyn Randomness>,
}

impl MacKeystore {
    /// A store using the real effective uid and the OS random generator.
    pub fn new(config: MacKeystoreConfig) -> Result<Self> {
        Self::with_system(config, Arc::new(ProcessUid), Arc::new(OsRandomness))
    }

    /// A store with injected uid and randomness (deterministic tests).
    pub fn with_system(
        config: MacKeystoreConfig,
        uid: Arc<dyn EffectiveUid>,
        random: Arc<dyn Randomness>,
    ) -> Result<Self> {
        // These paths are also written into `security -i` command lines, which are split on
        // whitespace and quotes: refuse anything that could change the command.
        for (setting, path) in [
            ("keychain", &config.keychain),
            ("trusted_application", &config.trusted_application),
        ] {
            let text = path.to_str().unwrap_or("\"");
            if !path.is_absolute() || text.contains(['"', '\'', '\\', '\n', '\r']) {
                return Err(KeystoreError::InvalidConfiguration {
                    setting,
                    value: path.display().to_string(),
                    reason: "use an absolute path without quotes, backslashes or newlines",
                });
            }
        }
        let runner = CommandRunner::new(uid)
            .with_tool_path(DEFAULT_SECURITY_TOOL, config.security_tool.clone());
        Ok(Self {
            config,
            runner,
            random,
        })
    }

    fn keychain(&self) -> &Path {
        &self.config.keychain
    }

    fn run(&self, invocation: &Invocation) -> Result<CommandOutput> {
        self.runner.run(invocation, &NoCredentials)
    }

    /// SHA-1s of the valid client identities in the keychain.
    fn listed_identities(&self) -> Result<Vec<ListedIdentity>> {
        let out = self
            .run(
                &Invocation::new(&commands::SECURITY_FIND_IDENTITY)
                    .args(["-v", "-p", "ssl-client"])
                    .arg(self.keychain()),
            )?
            .success()?;
        Ok(parse_find_identity_output(&out.stdout))
    }

    /// Every certificate in the keychain.
    fn certificates(&self) -> Result<Vec<CertificateDer>> {
        let out = self
            .run(
                &Invocation::new(&commands::SECURITY_FIND_CERTIFICATE)
                    .args(["-a", "-Z", "-p"])
                    .arg(self.keychain()),
            )?
            .success()?;
        Ok(parse_find_certificate_output(&out.stdout))
    }

    /// Reads a generic-password item; None when the keychain has no such item.
    fn read_generic_password(
        &self,
        service: &str,
        account: &str,
    ) -> Result<Option<Zeroizing<String>>> {
        let out = self.run(
            &Invocation::new(&commands::SECURITY_FIND_GENERIC_PASSWORD)
                .args(["-a", account, "-s", service, "-w"])
                .arg(self.keychain()),
        )?;
        if is_not_found(&out) {
            return Ok(None);
        }
        let out = out.success()?;
        Ok(Some(Zeroizing::new(
            out.stdout.trim_end_matches(['\n', '\r']).to_owned(),
        )))
    }

    /// Writes a generic-password item through `security -i`, the command (and the value)
    /// on stdin, then reads it back: interactive mode does not report failures by exit status.
    fn write_generic_password(&self, service: &str, account: &str, value: &str) -> Result<()> {
        // `account`, `service` and `value` are [a-z0-9._-] or hex; paths were validated.
        let line = Zeroizing::new(format!(
            "add-generic-password -U -a {account} -s {service} -T \"{app}\" -w {value} \"{keychain}\"\n",
            app = self.config.trusted_application.display(),
            keychain = self.keychain().display(),
        ));
        let out = self
            .run(
                &Invocation::new(&commands::SECURITY_INTERACTIVE)
                    .stdin(SecretValue::new(line.as_bytes().to_vec())),
            )?
            .success()?;
        match self.read_generic_password(service, account)? {
            Some(stored)
                if bool::from(subtle::ConstantTimeEq::ct_eq(
                    stored.as_bytes(),
                    value.as_bytes(),
                )) =>
            {
                Ok(())
            }
            _ => Err(KeystoreError::CommandFailed {
                command: out.command_line,
                status: "value not found when read back".into(),
                stderr: out.stderr.lines().take(5).collect::<Vec<_>>().join(" / "),
            }),
        }
    }

    /// Deletes a generic-password item; returns whether it existed.
    fn delete_generic_password(&self, service: &str, account: &str) -> Result<bool> {
        let out = self.run(
            &Invocation::new(&commands::SECURITY_DELETE_GENERIC_PASSWORD)
                .args(["-a", account, "-s", service])
                .arg(self.keychain()),
        )?;
        if is_not_found(&out) {
            return Ok(false);
        }
        out.success().map(|_| true)
    }

    fn current_identity_sha1(&self) -> Result<Option<Sha1Fingerprint>> {
        let Some(text) = self.read_generic_password(IDENTITY_SERVICE, IDENTITY_ACCOUNT)? else {
            return Ok(None);
        };
        Sha1Fingerprint::from_hex(&text).map(Some).ok_or_else(|| KeystoreError::Corrupt {
            path: self.keychain().to_path_buf(),
            reason: format!(
                "the generic-password item {IDENTITY_SERVICE}/{IDENTITY_ACCOUNT} is not a SHA-1 hash"
            ),
        })
    }

    fn delete_identity(&self, sha1: &Sha1Fingerprint) -> Result<()> {
        let out = self.run(
            &Invocation::new(&commands::SECURITY_DELETE_IDENTITY)
                .arg("-Z")
                .arg(sha1.to_string())
                .arg(self.keychain()),
        )?;
        if is_not_found(&out) {
            return Ok(());
        }
        out.success().map(|_| ())
    }

    /// A fresh 0700 directory for files handed to `security`, removed on drop.
    fn scratch_dir(&self) -> Result<ScratchDir> {
        let path = self
            .config
            .work_dir
            .join(format!("tessera-keystore-{}", self.random.hex(8)));
        // `create` (not `create_all`) fails if the name exists: no pre-planted directory is used.
        DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|e| KeystoreError::io("create directory", &path, e))?;
        Ok(ScratchDir(path))
    }

    fn import_identity(&self, identity: &Identity) -> Result<()> {
        let alias = identity
            .leaf()
            .common_name()
            .unwrap_or_else(|| "Tessera device identity".to_owned());
        // 128 random bits as hex: single use, never stored, and no shell-special characters.
        let password = Zeroizing::new(self.random.hex(16));
        let pfx = build_pkcs12(identity, &alias, &password)?;
        let scratch = self.scratch_dir()?;
        let pfx_path = scratch.0.join("identity.p12");
        write_private_file(&pfx_path, &pfx)?;
        let out = self.run(
            &Invocation::new(&commands::SECURITY_IMPORT)
                .arg(&pfx_path)
                .arg("-k")
                .arg(self.keychain())
                .args(["-t", "agg", "-f", "pkcs12", "-P"])
                .one_time_secret(password)
                .arg("-T")
                .arg(&self.config.trusted_application),
        )?;
        drop(scratch);
        // Re-importing an identity that is already there is not a failure; find-identity
        // confirms it next.
        if out.status.success() || out.stderr.contains("already exists in the keychain") {
            Ok(())
        } else if out.stderr.contains("MAC verification failed") {
            Err(KeystoreError::Pkcs12Rejected)
        } else {
            Err(out.failure())
        }
    }
}

/// `security` reports a missing item with exit status 44 and this message.
fn is_not_found(out: &CommandOutput) -> bool {
    !out.status.success()
        && (out.status.code() == Some(EXIT_ITEM_NOT_FOUND)
            || out.stderr.contains("could not be found"))
}

fn write_private_file(path: &Path, content: &[u8]) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| KeystoreError::io("create", path, e))?;
    file.write_all(content)
        .and_then(|()| file.sync_all())
        .map_err(|e| KeystoreError::io("write", path, e))
}

/// A scratch directory removed (with its contents) when dropped, whatever happened.
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Keystore for MacKeystore {
    fn put_identity(&self, identity: &Identity) -> Result<()> {
        let new_sha1 = identity.leaf().sha1();
        let previous = self.current_identity_sha1()?;
        // Install, verify, record, and only then delete the old one: never delete first.
        self.import_identity(identity)?;
        if !self.listed_identities()?.iter().any(|l| l.sha1 == new_sha1) {
            return Err(KeystoreError::IdentityNotFoundAfterImport {
                sha1: new_sha1.to_string(),
                keychain: self.keychain().to_path_buf(),
            });
        }
        self.write_generic_password(IDENTITY_SERVICE, IDENTITY_ACCOUNT, &new_sha1.to_string())?;
        if let Some(old) = previous.filter(|old| *old != new_sha1) {
            self.delete_identity(&old)?;
        }
        Ok(())
    }

    fn identity(&self) -> Result<Option<InstalledIdentity>> {
        let Some(sha1) = self.current_identity_sha1()? else {
            return Ok(None);
        };
        // The record alone is not proof: the key must still be in the keychain.
        if !self.listed_identities()?.iter().any(|l| l.sha1 == sha1) {
            return Ok(None);
        }
        let certs = self.certificates()?;
        let Some(leaf) = certs.iter().find(|c| c.sha1() == sha1).cloned() else {
            return Ok(None);
        };
        let mut chain: Vec<CertificateDer> = Vec::new();
        let mut current = leaf.clone();
        while chain.len() < MAX_CHAIN && !current.is_self_signed_root() {
            let Some(issuer) = certs
                .iter()
                .find(|c| **c != current && current.is_issued_by(c) && !chain.contains(c))
            else {
                break;
            };
            chain.push(issuer.clone());
            current = issuer.clone();
        }
        Ok(Some(InstalledIdentity {
            leaf,
            chain,
            private_key: PrivateKeyAccess::Keychain {
                keychain: self.keychain().to_path_buf(),
            },
        }))
    }

    fn remove_identity(&self) -> Result<bool> {
        let Some(sha1) = self.current_identity_sha1()? else {
            return Ok(false);
        };
        self.delete_identity(&sha1)?;
        self.delete_generic_password(IDENTITY_SERVICE, IDENTITY_ACCOUNT)?;
        Ok(true)
    }

    fn trust_anchors(&self) -> Result<Vec<CertificateDer>> {
        Ok(self
            .certificates()?
            .into_iter()
            .filter(CertificateDer::is_self_signed_root)
            .collect())
    }

    fn add_trust_anchor(&self, root: &CertificateDer) -> Result<AnchorInstall> {
        if !root.is_self_signed_root() {
            return Err(KeystoreError::AnchorNotSelfSigned {
                sha256: root.sha256().to_string(),
            });
        }
        let scratch = self.scratch_dir()?;
        let path = scratch.0.join("anchor.cer");
        write_private_file(&path, root.as_der())?;
        let out = self.run(
            &Invocation::new(&commands::SECURITY_ADD_TRUSTED_CERT)
                .args(["-d", "-r", "trustRoot", "-k"])
                .arg(self.keychain())
                .arg(&path),
        )?;
        if out.status.success() {
            return Ok(AnchorInstall::Installed);
        }
        if out.stderr.contains("no user interaction was possible")
            || out.stderr.contains("authorization was denied")
        {
            return Ok(AnchorInstall::NeedsAdminOrMdm {
                instructions: format!(
                    "macOS refused to trust root {} without an administrator (macOS 11 and later): \
                     deliver it in an MDM profile (com.apple.security.root payload) or have an \
                     admin run `security add-trusted-cert -d -r trustRoot -k {} <root.cer>` \
                     interactively; the agent then only checks that it is present",
                    root.sha256(),
                    self.keychain().display()
                ),
            });
        }
        Err(out.failure())
    }

    fn remove_trust_anchor(&self, sha256: &Sha256Fingerprint) -> Result<bool> {
        let Some(root) = self
            .trust_anchors()?
            .into_iter()
            .find(|c| c.sha256() == *sha256)
        else {
            return Ok(false);
        };
        let scratch = self.scratch_dir()?;
        let path = scratch.0.join("anchor.cer");
        write_private_file(&path, root.as_der())?;
        let out = self.run(
            &Invocation::new(&commands::SECURITY_REMOVE_TRUSTED_CERT)
                .arg("-d")
                .arg(&path),
        )?;
        // A root delivered without trust settings has none to remove; deleting it still counts.
        if !out.status.success() && !is_not_found(&out) && !out.stderr.contains("No Trust Settings")
        {
            return Err(out.failure());
        }
        let out = self.run(
            &Invocation::new(&commands::SECURITY_DELETE_CERTIFICATE)
                .arg("-Z")
                .arg(root.sha1().to_string())
                .arg(self.keychain()),
        )?;
        if is_not_found(&out) {
            return Ok(false);
        }
        out.success().map(|_| true)
    }

    fn put_secret(&self, name: &SecretName, value: &SecretValue) -> Result<()> {
        let encoded = Zeroizing::new(hex::encode(value.expose()));
        self.write_generic_password(SECRET_SERVICE, name.as_str(), &encoded)
    }

    fn secret(&self, name: &SecretName) -> Result<Option<SecretValue>> {
        let Some(text) = self.read_generic_password(SECRET_SERVICE, name.as_str())? else {
            return Ok(None);
        };
        let bytes = hex::decode(text.trim()).map_err(|_| KeystoreError::Corrupt {
            path: self.keychain().to_path_buf(),
            reason: format!(
                "the generic-password item {SECRET_SERVICE}/{name} was not written by Tessera (not hex)"
            ),
        })?;
        Ok(Some(SecretValue::new(bytes)))
    }

    fn remove_secret(&self, name: &SecretName) -> Result<bool> {
        self.delete_generic_password(SECRET_SERVICE, name.as_str())
    }
}
