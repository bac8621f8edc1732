//! Device identities, trust anchors and secrets in the macOS System keychain or a Linux file store.
//!
//! This crate is a placeholder in the workspace layout: its capability is tracked in
//! issue #8 and it exports nothing yet.
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]
