//! Device certificate policy: is this certificate acceptable, and if not, exactly why?
//!
//! This crate is a placeholder in the workspace layout: its capability is tracked in
//! issue #3 and it exports nothing yet.
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]
