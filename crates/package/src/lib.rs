//! OCS Inventory NG compatible packages: the `info` file, fragments, digests and safe extraction.
//!
//! This crate is a placeholder in the workspace layout: its capability is tracked in
//! issue #6 and it exports nothing yet.
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]
