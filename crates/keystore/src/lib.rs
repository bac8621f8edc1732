//! Device identities, trust anchors and secrets in the macOS System keychain or a Linux file
//! store, and the privileged OS commands that touch them.
//!
//! - [`Keystore`]: put/get/remove the device identity, list/add/remove trust anchors,
//!   put/get/remove named secrets; every operation atomic.
//! - [`FileKeystore`]: a 0700 directory (default [`DEFAULT_FILE_KEYSTORE_DIR`]) with 0600 keys
//!   and secrets and 0644 certificates, written by temp file + fsync + rename + directory
//!   fsync; refuses paths owned by another user or open to group/others.
//! - [`MacKeystore`]: the System keychain through `/usr/bin/security` (path injected).
//! - [`privileged`]: every OS command declared once with its class, and the one runner.
//!
//! Identities come in as DER/PEM bytes (leaf, chain, PKCS#8 key); the crate does not depend
//! on the CA crate.
//!
//! ```
//! use tessera_keystore::{FileKeystore, Keystore, SecretName, SecretValue};
//!
//! # fn main() -> Result<(), tessera_keystore::KeystoreError> {
//! let dir = tempfile::tempdir().expect("tempdir");
//! let store = FileKeystore::open(dir.path().join("keystore"))?;
//! let name = SecretName::new("macos.secure-token-admin")?;
//! store.put_secret(&name, &SecretValue::new(b"correct horse".to_vec()))?;
//! assert_eq!(store.secret(&name)?, Some(SecretValue::new(b"correct horse".to_vec())));
//! assert!(store.identity()?.is_none());
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod error;
mod file;
pub mod fuzzing;
mod identity;
mod keystore;
mod mac;
pub mod privileged;
mod system;
#[cfg(test)]
mod test_support;

pub use error::{KeystoreError, Result};
pub use file::{
    DEFAULT_FILE_KEYSTORE_DIR, FileKeystore, FileKeystoreBuilder, NoFailures, WriteHook, WriteStep,
};
pub use identity::{CertificateDer, Identity, PrivateKeyDer, Sha1Fingerprint, Sha256Fingerprint};
pub use keystore::{
    AnchorInstall, InstalledIdentity, Keystore, PrivateKeyAccess, SecretName, SecretValue,
};
pub use mac::{
    DEFAULT_SECURITY_TOOL, ListedIdentity, MacKeystore, MacKeystoreConfig, SYSTEM_KEYCHAIN,
    build_pkcs12, parse_find_certificate_output, parse_find_identity_output,
};
pub use system::{
    EffectiveUid, FixedUid, OsRandomness, ProcessUid, Randomness, SequenceRandomness,
};
