//! The Tessera device agent as a library: enrollment, check-in, scheduled downloads,
//! actions and reports, resumable after a crash at any instant.
//!
//! - [`enroll::enroll`]: key and CSR made here, certificate and CA stored in the keystore.
//! - [`run::run`]: check in over mTLS with the OCS protocol, fetch fragments on the OCS
//!   schedule (tessera-schedule), verify, act exactly once, report until acknowledged.
//! - [`status::status`]: what the agent knows, for people and scripts.
//! - [`config`]: the configuration file and its in-place editor; [`service`]: install as
//!   a system service.
//!
//! ```
//! use tessera_agent::config::AgentConfig;
//!
//! let config = AgentConfig::parse("servers = [\"https://tessera.example.com:8443\"]\n")
//!     .expect("valid configuration");
//! assert_eq!(config.keystore_dir(), std::path::Path::new("/var/lib/tessera/keystore"));
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod action;
pub mod client;
pub mod config;
pub mod doctor;
pub mod enroll;
pub mod error;
pub mod facts;
mod fsio;
pub mod identity;
pub mod journal;
pub mod munki;
pub mod run;
pub mod service;
pub mod status;
pub mod tls;

pub use error::{AgentError, Result};
