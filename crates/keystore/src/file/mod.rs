//! `FileKeystore`: the keystore as a directory of PEM files, for Linux and any Unix.
//!
//! Layout (all owned by the agent's effective uid):
//!
//! ```text
//! <root>/                       0700
//!   identity/                   0700
//!     current -> gen-<hex>      symlink, flipped by an atomic rename
//!     gen-<hex>/                0700  one complete identity, never modified after creation
//!       key.pem                 0600  PKCS#8 private key
//!       cert.pem                0644  leaf certificate
//!       chain.pem               0644  issuing chain (may be empty)
//!   anchors/<sha256>.pem        0644  trust anchors (self-signed roots)
//!   secrets/<name>              0600  named secrets, raw bytes
//! ```
//!
//! The identity lives in a generation directory so the key and certificates change together:
//! a crash at any point leaves `current` on the old, complete generation or the new one.

mod atomic;
mod permissions;

use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

pub use atomic::{NoFailures, WriteHook, WriteStep};
use permissions::{Sensitivity, check_dir, read_checked};

use crate::error::{KeystoreError, Result};
use crate::identity::{CertificateDer, Identity, PrivateKeyDer, Sha256Fingerprint};
use crate::keystore::{
    AnchorInstall, InstalledIdentity, Keystore, PrivateKeyAccess, SecretName, SecretValue,
};
use crate::system::{EffectiveUid, OsRandomness, ProcessUid, Randomness};

/// Where the agent keeps its file keystore unless configured otherwise.
pub const DEFAULT_FILE_KEYSTORE_DIR: &str = "/var/lib/tessera/keystore";

const IDENTITY_DIR: &str = "identity";
const ANCHORS_DIR: &str = "anchors";
const SECRETS_DIR: &str = "secrets";
const CURRENT_LINK: &str = "current";
const GENERATION_PREFIX: &str = "gen-";
const TEMP_PREFIX: &str = ".tmp-";
const KEY_FILE: &str = "key.pem";
const CERT_FILE: &str = "cert.pem";
const CHAIN_FILE: &str = "chain.pem";

/// The file keystore. See the module documentation for the layout and guarantees.
#[derive(Debug)]
pub struct FileKeystore {
    root: PathBuf,
    uid: Arc<dyn EffectiveUid>,
    random: Arc<dyn Randomness>,
    hook: Arc<dyn WriteHook>,
    // Serialises operations within the process (a reader must not see a generation removed
    // under it); one agent process owns the directory.
    serial: Mutex<()>,
}

/// Options for [`FileKeystore`]; the defaults are the production choices.
#[derive(Debug)]
pub struct FileKeystoreBuilder {
    root: PathBuf,
    uid: Arc<dyn EffectiveUid>,
    random: Arc<dyn Randomness>,
    hook: Arc<dyn WriteHook>,
}

impl FileKeystoreBuilder {
    /// Compares owners with this uid instead of the process's effective uid.
    #[must_use]
    pub fn effective_uid(mut self, uid: Arc<dyn EffectiveUid>) -> Self {
        self.uid = uid;
        self
    }

    /// Uses this randomness for generation and temp-file names.
    #[must_use]
    pub fn randomness(mut self, random: Arc<dyn Randomness>) -> Self {
        self.random = random;
        self
    }

    /// Consults `hook` before every write step (crash-safety tests).
    #[must_use]
    pub fn write_hook(mut self, hook: Arc<dyn WriteHook>) -> Self {
        self.hook = hook;
        self
    }

    /// Opens the store, creating missing directories with mode 0700, and refuses a root or
    /// subdirectory that is owned by another uid or open to group or others.
    pub fn open(self) -> Result<FileKeystore> {
        let euid = self.uid.effective_uid();
        if !self.root.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.root)
                .map_err(|e| KeystoreError::io("create keystore directory", &self.root, e))?;
        }
        check_dir(&self.root, euid)?;
        for sub in [IDENTITY_DIR, ANCHORS_DIR, SECRETS_DIR] {
            let path = self.root.join(sub);
            match std::fs::symlink_metadata(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    atomic::create_private_dir(self.hook.as_ref(), &path)?;
                }
                Err(e) => return Err(KeystoreError::io("inspect", &path, e)),
                Ok(meta) => permissions::check(&path, &meta, Sensitivity::Directory, euid)?,
            }
        }
        Ok(FileKeystore {
            root: self.root,
            uid: self.uid,
            random: self.random,
            hook: self.hook,
            serial: Mutex::new(()),
        })
    }
}

impl FileKeystore {
    /// Opens (creating if needed) the store at `root` with production settings.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        Self::builder(root).open()
    }

    /// Starts configuring a store at `root`.
    pub fn builder(root: impl Into<PathBuf>) -> FileKeystoreBuilder {
        FileKeystoreBuilder {
            root: root.into(),
            uid: Arc::new(ProcessUid),
            random: Arc::new(OsRandomness),
            hook: Arc::new(NoFailures),
        }
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn euid(&self) -> u32 {
        self.uid.effective_uid()
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        // A panic while holding the lock cannot leave files inconsistent (writes are atomic).
        self.serial
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Checks the root and one subdirectory again: permissions may have changed since open.
    fn checked_subdir(&self, sub: &str) -> Result<PathBuf> {
        let euid = self.euid();
        check_dir(&self.root, euid)?;
        let path = self.root.join(sub);
        let meta =
            std::fs::symlink_metadata(&path).map_err(|e| KeystoreError::io("inspect", &path, e))?;
        permissions::check(&path, &meta, Sensitivity::Directory, euid)?;
        Ok(path)
    }

    fn temp_name(&self) -> String {
        format!("{TEMP_PREFIX}{}", self.random.hex(8))
    }

    /// The generation `current` points to, validated to be a plain child name.
    fn current_generation(identity_dir: &Path) -> Result<Option<String>> {
        let link = identity_dir.join(CURRENT_LINK);
        let target = match std::fs::read_link(&link) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(KeystoreError::io("read link", &link, e)),
        };
        match target.to_str() {
            Some(name) if is_generation_name(name) => Ok(Some(name.to_owned())),
            _ => Err(KeystoreError::Corrupt {
                path: link,
                reason: format!(
                    "points to {}, not to a generation directory of this store",
                    target.display()
                ),
            }),
        }
    }

    fn read_identity(&self, generation_dir: &Path) -> Result<InstalledIdentity> {
        let euid = self.euid();
        check_dir(generation_dir, euid)?;
        let read = |name: &str, what: Sensitivity| -> Result<zeroize::Zeroizing<Vec<u8>>> {
            let path = generation_dir.join(name);
            read_checked(&path, what, euid)?.ok_or_else(|| KeystoreError::Corrupt {
                path: path.clone(),
                reason: "missing from the identity generation".into(),
            })
        };
        let corrupt = |name: &str, e: KeystoreError| KeystoreError::Corrupt {
            path: generation_dir.join(name),
            reason: e.to_string(),
        };
        let key = PrivateKeyDer::from_pem(&read(KEY_FILE, Sensitivity::Private)?)
            .map_err(|e| corrupt(KEY_FILE, e))?;
        let leaf = CertificateDer::from_pem(&read(CERT_FILE, Sensitivity::Public)?)
            .map_err(|e| corrupt(CERT_FILE, e))?;
        let chain = CertificateDer::all_from_pem(&read(CHAIN_FILE, Sensitivity::Public)?)
            .map_err(|e| corrupt(CHAIN_FILE, e))?;
        let identity = Identity::new(leaf, chain, key).map_err(|e| corrupt(KEY_FILE, e))?;
        Ok(InstalledIdentity {
            leaf: identity.leaf().clone(),
            chain: identity.chain().to_vec(),
            private_key: PrivateKeyAccess::Material(identity.private_key().clone()),
        })
    }

    /// Removes generations other than `keep` and stale temp entries. Best effort: leftovers
    /// are harmless (nothing reads them) and the next write retries.
    fn remove_superseded(&self, identity_dir: &Path, keep: Option<&str>) {
        if atomic::step(self.hook.as_ref(), WriteStep::RemoveOld, identity_dir).is_err() {
            return;
        }
        let Ok(entries) = std::fs::read_dir(identity_dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if Some(name) == keep || name == CURRENT_LINK {
                continue;
            }
            let path = entry.path();
            if is_generation_name(name) {
                let _ = std::fs::remove_dir_all(&path);
            } else if name.starts_with(TEMP_PREFIX) {
                let _ = std::fs::remove_file(&path);
            }
        }
    }

    fn anchor_path(dir: &Path, sha256: &Sha256Fingerprint) -> PathBuf {
        dir.join(format!("{sha256}.pem"))
    }
}

fn is_generation_name(name: &str) -> bool {
    name.strip_prefix(GENERATION_PREFIX)
        .is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl Keystore for FileKeystore {
    fn put_identity(&self, identity: &Identity) -> Result<()> {
        let _guard = self.lock();
        let dir = self.checked_subdir(IDENTITY_DIR)?;
        let hook = self.hook.as_ref();
        let generation = format!("{GENERATION_PREFIX}{}", self.random.hex(8));
        let gen_dir = dir.join(&generation);
        atomic::create_private_dir(hook, &gen_dir)?;
        atomic::write_new_file(
            hook,
            &gen_dir.join(KEY_FILE),
            Sensitivity::Private.mode(),
            identity.private_key().to_pem().as_bytes(),
        )?;
        atomic::write_new_file(
            hook,
            &gen_dir.join(CERT_FILE),
            Sensitivity::Public.mode(),
            identity.leaf().to_pem().as_bytes(),
        )?;
        let chain: String = identity
            .chain()
            .iter()
            .map(CertificateDer::to_pem)
            .collect();
        atomic::write_new_file(
            hook,
            &gen_dir.join(CHAIN_FILE),
            Sensitivity::Public.mode(),
            chain.as_bytes(),
        )?;
        atomic::sync_dir(hook, &gen_dir)?;

        // Commit: a fresh symlink renamed over `current`.
        let temp_link = dir.join(self.temp_name());
        atomic::step(hook, WriteStep::CreateTemp, &temp_link)?;
        std::os::unix::fs::symlink(&generation, &temp_link)
            .map_err(|e| KeystoreError::io("create symlink", &temp_link, e))?;
        atomic::rename(hook, &temp_link, &dir.join(CURRENT_LINK))?;
        atomic::sync_dir(hook, &dir)?;
        self.remove_superseded(&dir, Some(&generation));
        Ok(())
    }

    fn identity(&self) -> Result<Option<InstalledIdentity>> {
        let _guard = self.lock();
        let dir = self.checked_subdir(IDENTITY_DIR)?;
        match Self::current_generation(&dir)? {
            None => Ok(None),
            Some(generation) => self.read_identity(&dir.join(generation)).map(Some),
        }
    }

    fn remove_identity(&self) -> Result<bool> {
        let _guard = self.lock();
        let dir = self.checked_subdir(IDENTITY_DIR)?;
        if Self::current_generation(&dir)?.is_none() {
            return Ok(false);
        }
        let link = dir.join(CURRENT_LINK);
        std::fs::remove_file(&link).map_err(|e| KeystoreError::io("remove", &link, e))?;
        atomic::sync_dir(self.hook.as_ref(), &dir)?;
        self.remove_superseded(&dir, None);
        Ok(true)
    }

    fn trust_anchors(&self) -> Result<Vec<CertificateDer>> {
        let dir = self.checked_subdir(ANCHORS_DIR)?;
        let entries = std::fs::read_dir(&dir).map_err(|e| KeystoreError::io("list", &dir, e))?;
        let mut anchors = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| KeystoreError::io("list", &dir, e))?;
            let name = entry.file_name();
            let Some(fingerprint) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".pem"))
                .and_then(Sha256Fingerprint::from_hex)
            else {
                continue; // temp files and foreign files are not anchors
            };
            let path = entry.path();
            let Some(bytes) = read_checked(&path, Sensitivity::Public, self.euid())? else {
                continue; // removed meanwhile
            };
            let cert = CertificateDer::from_pem(&bytes).map_err(|e| KeystoreError::Corrupt {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            if cert.sha256() != fingerprint {
                return Err(KeystoreError::Corrupt {
                    path,
                    reason: "the certificate's SHA-256 differs from the file name".into(),
                });
            }
            anchors.push((fingerprint, cert));
        }
        anchors.sort_by_key(|(f, _)| *f);
        Ok(anchors.into_iter().map(|(_, c)| c).collect())
    }

    fn add_trust_anchor(&self, root: &CertificateDer) -> Result<AnchorInstall> {
        if !root.is_self_signed_root() {
            return Err(KeystoreError::AnchorNotSelfSigned {
                sha256: root.sha256().to_string(),
            });
        }
        let _guard = self.lock();
        let dir = self.checked_subdir(ANCHORS_DIR)?;
        atomic::replace_file(
            self.hook.as_ref(),
            &dir.join(self.temp_name()),
            &Self::anchor_path(&dir, &root.sha256()),
            Sensitivity::Public.mode(),
            root.to_pem().as_bytes(),
        )?;
        Ok(AnchorInstall::Installed)
    }

    fn remove_trust_anchor(&self, sha256: &Sha256Fingerprint) -> Result<bool> {
        let _guard = self.lock();
        let dir = self.checked_subdir(ANCHORS_DIR)?;
        remove_file_if_present(self.hook.as_ref(), &Self::anchor_path(&dir, sha256), &dir)
    }

    fn put_secret(&self, name: &SecretName, value: &SecretValue) -> Result<()> {
        let _guard = self.lock();
        let dir = self.checked_subdir(SECRETS_DIR)?;
        atomic::replace_file(
            self.hook.as_ref(),
            &dir.join(self.temp_name()),
            &dir.join(name.as_str()),
            Sensitivity::Private.mode(),
            value.expose(),
        )
    }

    fn secret(&self, name: &SecretName) -> Result<Option<SecretValue>> {
        let dir = self.checked_subdir(SECRETS_DIR)?;
        Ok(
            read_checked(&dir.join(name.as_str()), Sensitivity::Private, self.euid())?
                .map(|bytes| SecretValue::new(bytes.to_vec())),
        )
    }

    fn remove_secret(&self, name: &SecretName) -> Result<bool> {
        let _guard = self.lock();
        let dir = self.checked_subdir(SECRETS_DIR)?;
        remove_file_if_present(self.hook.as_ref(), &dir.join(name.as_str()), &dir)
    }
}

fn remove_file_if_present(hook: &dyn WriteHook, path: &Path, dir: &Path) -> Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => {
            atomic::sync_dir(hook, dir)?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(KeystoreError::io("remove", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TestPki;

    #[test]
    fn generation_names_are_strict() {
        assert!(is_generation_name("gen-0123456789abcdef"));
        for bad in [
            "gen-",
            "gen-../../etc",
            "gen-0123456789abcdeg",
            "x-0123456789abcdef",
            "/etc",
        ] {
            assert!(!is_generation_name(bad), "{bad}");
        }
    }

    #[test]
    fn current_pointing_outside_is_corrupt_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileKeystore::open(dir.path().join("ks")).unwrap();
        std::os::unix::fs::symlink("/etc", store.root().join("identity/current")).unwrap();
        let err = store.identity().unwrap_err();
        assert!(matches!(err, KeystoreError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn anchor_must_be_self_signed() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileKeystore::open(dir.path().join("ks")).unwrap();
        let pki = TestPki::new();
        let (leaf, _) = pki.leaf("MAC01.local", false);
        let err = store.add_trust_anchor(&leaf).unwrap_err();
        assert!(matches!(err, KeystoreError::AnchorNotSelfSigned { .. }));
        assert!(store.trust_anchors().unwrap().is_empty());
    }
}
