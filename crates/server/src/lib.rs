//! The Tessera server as a library: enrollment with its CA, manifests and a
//! Munki-compatible repository, package deployment over the OCS protocol, status and
//! statistics, an admin API.
//!
//! This crate is being built up: so far it holds the HTTP building blocks
//! ([`files`]: validators, conditional GET and byte ranges for repository files and
//! OCS fragments). The service itself is tracked in issue #9.
//!
//! ```
//! use http::HeaderMap;
//! use std::time::{Duration, UNIX_EPOCH};
//! use tessera_server::files::{decide, Decision, FileVersion};
//!
//! let version = FileVersion { len: 100, modified: UNIX_EPOCH + Duration::from_secs(1) };
//! let mut headers = HeaderMap::new();
//! headers.insert("range", "bytes=90-".parse().unwrap());
//! assert_eq!(decide(&headers, &version), Decision::Partial { start: 90, end: 99 });
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod files;
pub mod listen;
pub mod tls;

/// What can go wrong while setting up or running the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The TLS configuration cannot be built from the given certificates and keys.
    #[error("TLS configuration: {0}")]
    Tls(String),
}
