//! The OCS Inventory NG fragment scheduler as a pure, deterministic state machine.
//!
//! This crate is a placeholder in the workspace layout: its capability is tracked in
//! issue #7 and it exports nothing yet.
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]
