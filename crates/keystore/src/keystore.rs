//! The `Keystore` trait and the values it exchanges.

use std::fmt;
use std::path::PathBuf;

use zeroize::Zeroizing;

use crate::error::{KeystoreError, Result};
use crate::identity::{CertificateDer, Identity, PrivateKeyDer, Sha256Fingerprint};

/// Where a device keeps its identity, the roots it trusts and its service credentials.
///
/// Every operation is atomic: after a crash or error the store holds either the old or the
/// new state, never a mix (a new certificate with an old key, a half-written file).
pub trait Keystore: Send + Sync {
    /// Stores `identity` as the device identity, replacing the previous one only once the
    /// new one is fully in place.
    fn put_identity(&self, identity: &Identity) -> Result<()>;
    /// The current device identity, or None if none was stored.
    fn identity(&self) -> Result<Option<InstalledIdentity>>;
    /// Removes the device identity; returns whether there was one.
    fn remove_identity(&self) -> Result<bool>;

    /// The trust anchors (self-signed roots) in the store.
    fn trust_anchors(&self) -> Result<Vec<CertificateDer>>;
    /// Adds a self-signed root as a trust anchor.
    fn add_trust_anchor(&self, root: &CertificateDer) -> Result<AnchorInstall>;
    /// Removes the anchor with this SHA-256 fingerprint; returns whether it was there.
    fn remove_trust_anchor(&self, sha256: &Sha256Fingerprint) -> Result<bool>;

    /// Stores a named secret (for example the macOS Secure Token admin password).
    fn put_secret(&self, name: &SecretName, value: &SecretValue) -> Result<()>;
    /// Reads a named secret.
    fn secret(&self, name: &SecretName) -> Result<Option<SecretValue>>;
    /// Removes a named secret; returns whether it was there.
    fn remove_secret(&self, name: &SecretName) -> Result<bool>;
}

/// The identity as a store gives it back.
#[derive(Debug, Clone)]
pub struct InstalledIdentity {
    /// The leaf certificate.
    pub leaf: CertificateDer,
    /// The issuing chain the store knows, nearest issuer first.
    pub chain: Vec<CertificateDer>,
    /// Where the private key is.
    pub private_key: PrivateKeyAccess,
}

/// How the holder of an [`InstalledIdentity`] reaches its private key.
#[derive(Debug, Clone)]
pub enum PrivateKeyAccess {
    /// The store hands out the key bytes (file store).
    Material(PrivateKeyDer),
    /// The key stays in a macOS keychain, usable only by the applications named at import.
    Keychain {
        /// The keychain file.
        keychain: PathBuf,
    },
}

/// The outcome of adding a trust anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a root that needs an admin or MDM step is not trusted yet"]
pub enum AnchorInstall {
    /// The root is now trusted (or already was).
    Installed,
    /// The platform refused to change trust settings without an administrator
    /// (macOS 11 and later for a headless root daemon): the root must arrive by an MDM
    /// profile (`com.apple.security.root` payload) or by an interactive admin step.
    NeedsAdminOrMdm {
        /// What to tell the operator, including the certificate's SHA-256.
        instructions: String,
    },
}

/// The name of a secret: 1–64 characters from `[a-z0-9._-]`, starting with a letter or digit.
/// The rule keeps names safe as file names and as `security` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretName(String);

impl SecretName {
    /// Validates `name`.
    pub fn new(name: &str) -> Result<Self> {
        let reason = if name.is_empty() {
            Some("it is empty")
        } else if name.len() > 64 {
            Some("it is longer than 64 characters")
        } else if !name.as_bytes()[0].is_ascii_alphanumeric() {
            Some("it does not start with a letter or digit")
        } else if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        {
            Some("it contains a character outside a-z, 0-9, '.', '_' and '-'")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(KeystoreError::InvalidSecretName {
                name: name.chars().take(80).collect(),
                reason,
            }),
            None => Ok(Self(name.to_owned())),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A secret's bytes: wiped on drop, never printed, compared in constant time.
#[derive(Clone)]
pub struct SecretValue(Zeroizing<Vec<u8>>);

impl SecretValue {
    /// Wraps the bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(Zeroizing::new(bytes.into()))
    }

    /// The bytes, for handing to the tool that needs them (stdin or environment).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl PartialEq for SecretValue {
    fn eq(&self, other: &Self) -> bool {
        // Length is not secret; content comparison is constant-time.
        self.0.len() == other.0.len()
            && bool::from(subtle::ConstantTimeEq::ct_eq(&self.0[..], &other.0[..]))
    }
}

impl Eq for SecretValue {}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_follow_the_rule() {
        for ok in ["a", "macos.secure-token-admin", "x_1", &"a".repeat(64)] {
            assert!(SecretName::new(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            (".hidden", "start"),
            ("-x", "start"),
            ("../etc", "start"),
            ("a/b", "outside"),
            ("Upper", "outside"),
            ("a b", "outside"),
            ("a\n", "outside"),
        ] {
            let err = SecretName::new(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        assert!(
            SecretName::new(&"a".repeat(65))
                .unwrap_err()
                .to_string()
                .contains("longer")
        );
    }

    #[test]
    fn secret_values_compare_by_content_and_hide_in_debug() {
        let a = SecretValue::new(b"hunter2".to_vec());
        assert_eq!(a, SecretValue::new(b"hunter2".to_vec()));
        assert_ne!(a, SecretValue::new(b"hunter3".to_vec()));
        assert_ne!(a, SecretValue::new(b"hunter".to_vec()));
        assert!(!format!("{a:?}").contains("hunter"));
    }
}
