//! Munki manifests, pkginfo and catalogs, NSPredicate conditions, and resolution exactly as Munki does it.
//!
//! This crate is a placeholder in the workspace layout: its capability is tracked in
//! issue #5 and it exports nothing yet.
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]
