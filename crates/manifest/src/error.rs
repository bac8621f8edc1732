//! The crate's error type: every message says what was wrong, where, and what to do.

use std::path::PathBuf;

/// Everything that can go wrong reading, writing or resolving a Munki repository.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a property list the `plist` crate can read.
    #[error(
        "{what} is not a valid property list ({source}); check that it is an XML or binary plist"
    )]
    Plist {
        /// What was being read, e.g. "manifest `groups/lab`".
        what: String,
        /// The parser's complaint.
        #[source]
        source: plist::Error,
    },
    /// The plist nests arrays and dictionaries deeper than we accept.
    #[error(
        "{what} nests arrays and dictionaries more than {limit} levels deep; flatten it (Munki files never need that depth)"
    )]
    TooDeep {
        /// What was being read.
        what: String,
        /// The nesting limit.
        limit: usize,
    },
    /// An XML plist carried an internal DTD subset, which could declare entities.
    #[error(
        "{what} declares an internal DTD subset (`<!DOCTYPE … [ … ]>`); entity declarations are refused, remove the subset"
    )]
    DtdSubset {
        /// What was being read.
        what: String,
    },
    /// The top-level object has the wrong type (a manifest must be a dict, a catalog an array).
    #[error("{what}: the top-level object must be {expected}, found {found}")]
    WrongRoot {
        /// What was being read.
        what: String,
        /// The type required.
        expected: &'static str,
        /// The type found.
        found: &'static str,
    },
    /// A key we model holds a value of the wrong type.
    #[error("{what}: `{key}` must be {expected}, found {found}; fix the value in the file")]
    WrongType {
        /// What was being read.
        what: String,
        /// Path of the key inside the file, e.g. `conditional_items[1].managed_installs[0]`.
        key: String,
        /// The type required.
        expected: &'static str,
        /// The type found.
        found: &'static str,
    },
    /// A pkginfo has no `name`.
    #[error("{what} is missing name; add a `name` string")]
    MissingName {
        /// What was being read.
        what: String,
    },
    /// Serialising a plist failed.
    #[error("could not write {what} as an XML plist: {source}")]
    Write {
        /// What was being written.
        what: String,
        /// The writer's complaint.
        #[source]
        source: plist::Error,
    },
    /// A repository resource name is not a safe relative path.
    #[error("`{name}` is not a valid repository name: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A resource resolves (through a symbolic link) to a place outside the repository.
    #[error(
        "{kind} `{name}` resolves to {target:?}, outside the repository {root:?}; links out of the repository are refused"
    )]
    OutsideRepo {
        /// The kind directory, e.g. `manifests`.
        kind: &'static str,
        /// The resource name.
        name: String,
        /// Where it resolved to.
        target: PathBuf,
        /// The repository root.
        root: PathBuf,
    },
    /// A resource does not exist.
    #[error("{kind} `{name}` does not exist in the repository at {root:?}")]
    NotFound {
        /// The kind directory.
        kind: &'static str,
        /// The resource name.
        name: String,
        /// The repository root.
        root: PathBuf,
    },
    /// A file-system operation failed.
    #[error("{action} {path:?} failed: {source}")]
    Io {
        /// What we were doing ("reading", "writing", …).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The repository root is missing or not a directory.
    #[error("{root:?} is not a Munki repository directory; create it or pass --repo DIR")]
    NotARepo {
        /// The path given.
        root: PathBuf,
    },
    /// An included manifest does not exist (Munki aborts the whole check here).
    #[error(
        "manifest `{missing}` included by {} does not exist; create it or remove it from included_manifests",
        chain_text(chain)
    )]
    MissingIncludedManifest {
        /// The manifest that is missing.
        missing: String,
        /// The include chain from the primary manifest to the manifest naming it.
        chain: Vec<String>,
    },
    /// The primary manifest does not exist.
    #[error("manifest `{name}` does not exist; check the name (it is a path under manifests/)")]
    MissingPrimaryManifest {
        /// The name asked for.
        name: String,
    },
    /// Manifests include each other in a loop (Munki recurses until it crashes).
    #[error("manifests include each other in a cycle: {}; remove one of these includes", cycle.join(" -> "))]
    IncludeCycle {
        /// The chain, starting and ending with the same manifest.
        cycle: Vec<String>,
    },
    /// Includes nest deeper than we follow.
    #[error(
        "includes nest more than {limit} levels deep at {}; flatten the manifest tree",
        chain_text(chain)
    )]
    IncludesTooDeep {
        /// The chain at the point the limit was hit.
        chain: Vec<String>,
        /// The limit.
        limit: usize,
    },
    /// None of the fallback manifest names exists.
    #[error("no primary manifest found; tried {}; create one of them (site_default serves every device)", tried.join(", "))]
    NoPrimaryManifest {
        /// The names tried, in order.
        tried: Vec<String>,
    },
}

fn chain_text(chain: &[String]) -> String {
    if chain.is_empty() {
        "(nothing)".to_owned()
    } else {
        chain
            .iter()
            .map(|m| format!("`{m}`"))
            .collect::<Vec<_>>()
            .join(" -> ")
    }
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
