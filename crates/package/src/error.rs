//! The one error type of the crate.

use std::path::PathBuf;

use crate::fragment::FragmentNumber;

/// Everything that can go wrong while describing, building, reassembling or extracting a
/// package. Messages say what was wrong, where, and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A field of a package has a value OCS or Tessera cannot use.
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The field (as named in the `info` file or on the command line).
        field: &'static str,
        /// What was wrong and what is accepted.
        reason: String,
    },

    /// The `info` file is not well-formed or lacks something required.
    #[error("info file: {reason} (at byte {position})")]
    InfoSyntax {
        /// Byte offset in the input where the problem was noticed.
        position: u64,
        /// What was wrong.
        reason: String,
    },

    /// The `info` file uses an XML feature refused for safety (CVE-2018-14473).
    #[error("info file: {what} is not allowed (DTDs and entities are refused)")]
    InfoForbidden {
        /// The refused construct.
        what: String,
    },

    /// The `info` file is larger than the reader accepts.
    #[error("info file is {size} bytes, more than the limit of {limit} bytes")]
    InfoTooLarge {
        /// Size of the input.
        size: usize,
        /// The limit.
        limit: usize,
    },

    /// A fragment's content does not match the SHA-256 listed in `info`: the agent reports
    /// `ERR_BAD_DIGEST` and downloads that fragment again.
    #[error(
        "fragment {fragment} has SHA-256 {actual}, info says {expected}: download this fragment again"
    )]
    FragmentDigestMismatch {
        /// Which fragment (1-based, as in `ID-n`).
        fragment: FragmentNumber,
        /// The digest from `info`.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },

    /// A fragment has the wrong length for the plan in `info`.
    #[error("fragment {fragment} is {actual} bytes, the plan says {expected}")]
    FragmentLength {
        /// Which fragment (1-based).
        fragment: FragmentNumber,
        /// Planned length.
        expected: u64,
        /// Length that arrived.
        actual: u64,
    },

    /// Fragments were offered out of order, or one that does not exist.
    #[error("fragment {got} was offered, but fragment {expected} is next (plan has {count})")]
    FragmentOrder {
        /// The next fragment the reassembly expects.
        expected: u32,
        /// The fragment that was offered.
        got: u32,
        /// How many fragments the plan has.
        count: u32,
    },

    /// Reassembly finished before every fragment arrived.
    #[error("reassembly incomplete: {received} of {count} fragments received")]
    Incomplete {
        /// Fragments received.
        received: u32,
        /// Fragments planned.
        count: u32,
    },

    /// The whole reassembled payload does not match its digest (`ERR_BAD_DIGEST`).
    #[error(
        "whole payload {algorithm} is {actual}, info says {expected}: the package is corrupt or was altered"
    )]
    PayloadDigestMismatch {
        /// `MD5` or `SHA-256`.
        algorithm: &'static str,
        /// The digest from `info`.
        expected: String,
        /// The digest of the reassembled payload.
        actual: String,
    },

    /// The digest algorithm or encoding named in `info` cannot be checked here.
    #[error("digest {algorithm}/{encoding} is not supported: rebuild the package with MD5/Hexa")]
    UnsupportedDigest {
        /// `DIGEST_ALGO` as written.
        algorithm: String,
        /// `DIGEST_ENCODE` as written.
        encoding: String,
    },

    /// An archive entry was refused by safe extraction; nothing of it was written.
    #[error("archive entry {entry:?} refused: {reason}")]
    EntryRefused {
        /// The entry's name as stored in the archive.
        entry: String,
        /// Why it was refused.
        reason: String,
    },

    /// The archive is neither gzip-compressed tar nor zip, or is corrupt.
    #[error("archive {path}: {reason}")]
    Archive {
        /// The archive file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },

    /// Extraction stopped at a configured cap (archive bomb protection).
    #[error(
        "archive entry {entry:?} exceeds the {what} limit of {limit}: raise the limit only if you trust this package"
    )]
    LimitExceeded {
        /// The entry being processed when the cap was hit.
        entry: String,
        /// Which cap (`total size`, `entry count`).
        what: &'static str,
        /// The cap.
        limit: u64,
    },

    /// No package with this ID in the repository.
    #[error("package {id} not found in {dir}")]
    NotFound {
        /// The ID asked for.
        id: String,
        /// The repository download directory searched.
        dir: PathBuf,
    },

    /// An I/O error, with the file it concerned.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (`reading`, `writing`, …).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    /// The OCS result code an agent reports for this error (`ERR_BAD_DIGEST`, `ERR_BUILD`,
    /// …), or `None` when the error is not a deployment outcome.
    pub fn ocs_code(&self) -> Option<&'static str> {
        match self {
            Self::FragmentDigestMismatch { .. }
            | Self::FragmentLength { .. }
            | Self::PayloadDigestMismatch { .. }
            | Self::UnsupportedDigest { .. } => Some("ERR_BAD_DIGEST"),
            Self::EntryRefused { .. } | Self::Archive { .. } | Self::LimitExceeded { .. } => {
                Some("ERR_BUILD")
            }
            _ => None,
        }
    }

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

    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidField {
            field,
            reason: reason.into(),
        }
    }
}

/// Shorthand for this crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
