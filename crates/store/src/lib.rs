//! Server state (devices, tokens, certificates, packages, statuses) on SQLite or PostgreSQL.
//!
//! This crate is a placeholder in the workspace layout: its capability is tracked in
//! issue #9 and it exports nothing yet.
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]
