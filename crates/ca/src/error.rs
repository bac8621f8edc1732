//! The crate's error type: every message says what was wrong, where, and what to do.

use std::path::PathBuf;

/// Everything that can go wrong in the CA.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// A computer name that cannot be put in a certificate.
    #[error(
        "invalid computer name {name:?}: {reason}; use a DNS host name such as MAC01.local \
         (letters, digits, hyphens, dot-separated labels)"
    )]
    InvalidComputerName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The CSR bytes are not a PKCS#10 request.
    #[error(
        "the certificate signing request cannot be read: {reason}; send a PKCS#10 request \
         in PEM (BEGIN CERTIFICATE REQUEST) or DER, as `openssl req -new` writes it"
    )]
    CsrUnreadable {
        /// What the parser said.
        reason: String,
    },

    /// The CSR's signature does not verify with its own public key.
    #[error(
        "the certificate signing request's signature does not verify ({reason}): it was \
         altered or not signed by the key it carries; make a new request with the device key"
    )]
    CsrBadSignature {
        /// What the verifier said.
        reason: String,
    },

    /// The CSR's key type cannot be certified.
    #[error(
        "the certificate signing request's public key cannot be certified: {reason}; use an \
         RSA (2048 bits or more) or ECDSA P-256/P-384 key"
    )]
    CsrKeyUnsupported {
        /// What is wrong with the key.
        reason: String,
    },

    /// The CSR names another computer than the one enrolling.
    #[error(
        "the certificate signing request names {requested:?}, but the device enrolls as \
         {expected:?}: every CN and SAN DNS name in the request must equal the computer name \
         exactly (case-sensitive); make the request with CN={expected}"
    )]
    CsrNameMismatch {
        /// The names the CSR asked for.
        requested: Vec<String>,
        /// The computer name.
        expected: String,
    },

    /// The CSR names no computer at all.
    #[error(
        "the certificate signing request names no computer (no CN and no SAN DNS name); make \
         the request with CN={expected}"
    )]
    CsrNoName {
        /// The computer name.
        expected: String,
    },

    /// A serial number that is not positive hex of at most 20 bytes.
    #[error(
        "invalid serial number {given:?}: {reason}; give the serial as hex, as `ca show` or \
         `openssl x509 -serial` prints it"
    )]
    InvalidSerial {
        /// The serial as given.
        given: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A revocation reason that is not one of RFC 5280's.
    #[error(
        "unknown revocation reason {given:?}; use one of unspecified, keyCompromise, \
         affiliationChanged, superseded, cessationOfOperation, certificateHold, \
         privilegeWithdrawn"
    )]
    InvalidRevocationReason {
        /// The reason as given.
        given: String,
    },

    /// A CRL URL that relying parties could not fetch without TLS.
    #[error(
        "invalid CRL URL {url:?}: {reason}; CRL distribution points must be plain http:// \
         URLs (clients fetch CRLs before they can check TLS certificates)"
    )]
    InvalidCrlUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A validity setting that makes no sense.
    #[error("invalid CA setting {setting}: {reason}")]
    InvalidSetting {
        /// Which setting.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// The serial is not in the ledger.
    #[error(
        "no certificate with serial {serial} was issued by this CA; list issued certificates \
         or check the serial (hex)"
    )]
    UnknownSerial {
        /// The serial, lowercase hex.
        serial: String,
    },

    /// The certificate was revoked before.
    #[error("the certificate with serial {serial} is already revoked (since {since})")]
    AlreadyRevoked {
        /// The serial, lowercase hex.
        serial: String,
        /// When it was revoked, RFC 3339.
        since: String,
    },

    /// Renewal of a certificate that may no longer be renewed.
    #[error(
        "the certificate with serial {serial} cannot be renewed: {reason}; enroll the device \
         again instead"
    )]
    NotRenewable {
        /// The serial, lowercase hex.
        serial: String,
        /// Why.
        reason: &'static str,
    },

    /// The serial source produced a serial that was issued before.
    #[error(
        "the serial source repeated serial {serial}; a CA must never reuse a serial: check \
         the random number generator"
    )]
    SerialReused {
        /// The serial, lowercase hex.
        serial: String,
    },

    /// CA certificate or key material that cannot be used.
    #[error("unusable CA {what}: {reason}")]
    InvalidCaMaterial {
        /// Which piece (e.g. "issuing certificate").
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// rcgen refused to build or sign something.
    #[error("could not {action}: {source}")]
    Signing {
        /// What was being done.
        action: &'static str,
        /// rcgen's error.
        #[source]
        source: rcgen::Error,
    },

    /// A PKCS#12 file could not be written or read.
    #[error(
        "could not {action} the PKCS#12 file: {reason}; check the password and that the file \
         is a PKCS#12 (.p12/.pfx) archive"
    )]
    Pkcs12 {
        /// "write" or "read".
        action: &'static str,
        /// What went wrong.
        reason: String,
    },

    /// An empty PKCS#12 password (macOS refuses such files).
    #[error(
        "the PKCS#12 password is empty; macOS cannot import password-less PKCS#12 files: give \
         a password or let Tessera generate one"
    )]
    EmptyPassword,

    /// The ledger could not record or answer.
    #[error("the certificate ledger failed: {0}")]
    Ledger(String),

    /// Another process holds the ledger's lock file.
    #[error(
        "the ledger is locked by another process (lock file {lock}); retry in a moment, or \
         delete the lock file if no Tessera process is running"
    )]
    LedgerLocked {
        /// The lock file.
        lock: PathBuf,
    },

    /// A file or directory operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done, e.g. "cannot read".
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// A key file readable by other users.
    #[error(
        "the key file {path} has mode {mode:04o}, readable by other users; run \
         `chmod 600 {path}` and consider the key compromised if others could read it"
    )]
    InsecureKeyFile {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// `init` on a directory that already holds a CA.
    #[error(
        "a CA already exists in {path}; use it (`ca show`), or move the directory away to \
         start a new CA"
    )]
    CaExists {
        /// The CA home.
        path: PathBuf,
    },

    /// No CA where one was expected.
    #[error("no CA in {path}; run `tessera-server ca init` first")]
    CaMissing {
        /// The CA home.
        path: PathBuf,
    },

    /// A stored file that cannot be parsed.
    #[error("the CA file {path} is damaged: {reason}; restore it from a backup")]
    DamagedFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl CaError {
    pub(crate) fn signing(action: &'static str) -> impl FnOnce(rcgen::Error) -> Self {
        move |source| Self::Signing { action, source }
    }

    pub(crate) fn io(
        action: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}
