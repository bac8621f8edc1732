//! The Tessera server as a library: enrollment with its CA, manifests and a
//! Munki-compatible repository, package deployment over the OCS protocol, status and
//! statistics, an admin API.
//!
//! This crate is being built up (issue #9). So far:
//! - [`ocs`]: `POST /ocsinventory` — PROLOG, INVENTORY and DOWNLOAD results from OCS agents,
//!   over [`tessera_store`]; deployments move waiting → notified → success/error;
//! - [`checkin_cache`]: the store as handlers see it, answering check-ins from memory;
//! - [`download`]: `GET /download/<ID>/info` and `<ID>-<n>` fragments, served as windows of
//!   the one stored archive;
//! - [`repo`]: the Munki repository under `/repo/`, each device reading only its own
//!   manifests;
//! - [`enroll`]: `POST /enroll`;
//! - [`admin`]: the `/api/v1` admin API behind the admin token; [`groups`]: the group
//!   manifests it and the CLI edit;
//! - [`tls`] and [`listen`]: the HTTPS accept loop with optional, CRL-checked client
//!   certificates that handlers read from each request;
//! - [`files`]: validators, conditional GET and byte ranges for repository files and OCS
//!   fragments;
//! - [`config`]: `config.toml`, loopback by default.
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

pub mod admin;
pub mod app;
pub mod catalog;
pub mod checkin_cache;
pub mod config;
pub mod datadir;
pub mod decide;
pub mod download;
pub mod enroll;
pub mod files;
pub mod groups;
pub mod identity;
pub mod listen;
pub mod metrics;
pub mod ocs;
pub mod repo;
pub mod revoke;
pub mod secret;
pub mod serve;
pub mod server_cert;
pub mod service;
pub mod tls;

/// What can go wrong while setting up or running the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The TLS configuration cannot be built from the given certificates and keys.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The device CA could not be created or opened.
    #[error("device CA: {0}")]
    Ca(#[from] tessera_ca::CaError),
    /// The database could not be opened.
    #[error("database: {0}")]
    Store(String),
    /// The Munki repository could not be created.
    #[error("repository: {0}")]
    Repository(String),
    /// A listener could not bind.
    #[error(
        "cannot listen on {addr}: {source} (is another server running there? choose another address with --https/--http)"
    )]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The configuration file is invalid.
    #[error("{}: {reason}", path.display())]
    Config {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong, with the line and key.
        reason: String,
    },
}
