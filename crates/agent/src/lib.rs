//! The Tessera device agent as a library: enrollment, check-in, scheduled downloads, actions, reports.
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod config;
pub mod service;
