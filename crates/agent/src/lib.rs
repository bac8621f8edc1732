//! The Tessera device agent as a library: enrollment, check-in, scheduled downloads, actions, reports.
//!
//! This crate is a placeholder in the workspace layout: its capability is tracked in
//! issue #10 and it exports nothing yet.
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]
