//! The one error type of the crate.

use std::path::PathBuf;

/// Everything that can go wrong while storing or reading identities, anchors and secrets,
/// or while running a privileged command. Messages say what was wrong, where, and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeystoreError {
    /// A certificate was not a parseable X.509 DER/PEM certificate.
    #[error(
        "{what} is not a valid X.509 certificate: {reason}; supply the DER or PEM certificate as issued by the Tessera CA"
    )]
    InvalidCertificate {
        /// Which certificate (leaf, chain entry n, trust anchor).
        what: String,
        /// The parser's complaint.
        reason: String,
    },
    /// The private key was not a PKCS#8 key of a supported algorithm.
    #[error(
        "the private key is not a usable PKCS#8 key ({reason}); supply an unencrypted PKCS#8 RSA, EC P-256/P-384 or Ed25519 key"
    )]
    InvalidPrivateKey {
        /// Why it was rejected (never contains key material).
        reason: String,
    },
    /// The private key does not belong to the leaf certificate.
    #[error(
        "the private key does not match the public key of the leaf certificate {leaf_sha256}; the identity was not stored, re-enroll to get a matching pair"
    )]
    KeyDoesNotMatchCertificate {
        /// SHA-256 fingerprint (hex) of the leaf certificate.
        leaf_sha256: String,
    },
    /// A trust anchor must be a self-signed root.
    #[error(
        "certificate {sha256} is not a self-signed root (issuer differs from subject or the self-signature does not verify); only roots can be trust anchors, intermediates belong in the identity chain"
    )]
    AnchorNotSelfSigned {
        /// SHA-256 fingerprint (hex) of the rejected certificate.
        sha256: String,
    },
    /// A secret name was empty, too long or used characters outside `[a-z0-9._-]`.
    #[error(
        "invalid secret name {name:?}: {reason}; use 1 to 64 characters from a-z, 0-9, '.', '_' and '-', starting with a letter or digit"
    )]
    InvalidSecretName {
        /// The rejected name (names are not secret).
        name: String,
        /// What rule it broke.
        reason: &'static str,
    },
    /// A file or directory grants access to group or others.
    #[error("{kind} {path} has mode {mode:04o}, which lets {who} access it; run `chmod {wanted:o} {path}` (and check whether the material leaked)", path = path.display())]
    InsecurePermissions {
        /// What the path is (keystore directory, private key file, ...).
        kind: &'static str,
        /// The offending path.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// The mode it should have.
        wanted: u32,
        /// "group or others" / "others to write", in words.
        who: &'static str,
    },
    /// A file or directory belongs to someone other than the effective user.
    #[error("{kind} {path} is owned by uid {owner}, but the agent runs as uid {euid}; run `chown {euid} {path}` if the directory is really the agent's, or configure a keystore directory the agent owns", path = path.display())]
    WrongOwner {
        /// What the path is.
        kind: &'static str,
        /// The offending path.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The effective uid of this process.
        euid: u32,
    },
    /// A path has the wrong type (a symlink or file where a directory belongs, ...).
    #[error("{path} should be {expected} but is not; move it away so the keystore can recreate it", path = path.display())]
    UnexpectedFileType {
        /// The offending path.
        path: PathBuf,
        /// What it should be.
        expected: &'static str,
    },
    /// An I/O operation on the keystore failed.
    #[error("could not {action} {path}: {source}", path = path.display())]
    Io {
        /// What was being done ("create", "rename", "fsync directory", ...).
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Stored material could not be read back as what it should be.
    #[error("stored file {path} is corrupt: {reason}; remove it and store the item again (re-enroll for an identity)", path = path.display())]
    Corrupt {
        /// Where.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Building the PKCS#12 bundle for the keychain import failed.
    #[error("could not build the PKCS#12 bundle for the keychain import: {reason}")]
    Pkcs12 {
        /// The library's complaint.
        reason: String,
    },
    /// macOS rejected the PKCS#12 file (its MAC/cipher profile or the password).
    #[error(
        "the keychain rejected the PKCS#12 import (\"MAC verification failed\"): this macOS does not accept the file's cipher or MAC profile; the agent writes 3DES + HMAC-SHA1, so report the macOS version"
    )]
    Pkcs12Rejected,
    /// After an import the identity could not be found again by its certificate hash.
    #[error("the identity with certificate SHA-1 {sha1} was imported but `security find-identity` does not list it in {keychain}; check the keychain with `security find-identity -v -p ssl-client {keychain}`", keychain = keychain.display())]
    IdentityNotFoundAfterImport {
        /// SHA-1 fingerprint (hex, upper case) of the leaf.
        sha1: String,
        /// The keychain searched.
        keychain: PathBuf,
    },
    /// A `security` (or other tool) invocation failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    CommandFailed {
        /// The command line with every secret argument redacted.
        command: String,
        /// Exit status in words.
        status: String,
        /// The tool's standard error (first lines).
        stderr: String,
    },
    /// A command could not be started.
    #[error("could not start {program}: {source}; check that the tool exists at this absolute path", program = program.display())]
    Spawn {
        /// The program path.
        program: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A command ran longer than the runner allows and was killed.
    #[error(
        "`{command}` did not finish within {timeout:?} and was killed; check whether the tool is waiting for input or a GUI prompt"
    )]
    TimedOut {
        /// The command line with every secret argument redacted.
        command: String,
        /// The limit.
        timeout: std::time::Duration,
    },
    /// A command of class "root required" was about to run without root.
    #[error(
        "`{command}` needs root but the agent runs as uid {euid}; run the agent as root (the launchd daemon / systemd service does)"
    )]
    NotRoot {
        /// The declared command.
        command: &'static str,
        /// The effective uid of this process.
        euid: u32,
    },
    /// A command of class "credentials required" was about to run but no credential is stored.
    #[error(
        "`{command}` needs the credential `{setting}` but the keystore has no secret of that name; store it with the keystore's put_secret (never in the agent's config file)"
    )]
    MissingCredential {
        /// The declared command.
        command: &'static str,
        /// The secret name (the setting) that must be configured.
        setting: &'static str,
    },
    /// A configured value cannot be used safely.
    #[error("setting {setting} = {value:?} cannot be used: {reason}")]
    InvalidConfiguration {
        /// Which setting.
        setting: &'static str,
        /// Its value (never a secret).
        value: String,
        /// Why, and what to use instead.
        reason: &'static str,
    },
    /// A secret argument was passed to a command that is not declared to accept one on argv.
    #[error(
        "refusing to put a secret on the command line of `{command}`: only the one-time PKCS#12 import password may appear in argv; pass it on stdin or by environment"
    )]
    SecretOnArgvRefused {
        /// The declared command.
        command: &'static str,
    },
}

impl KeystoreError {
    /// Shorthand for [`KeystoreError::Io`].
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = KeystoreError> = std::result::Result<T, E>;
