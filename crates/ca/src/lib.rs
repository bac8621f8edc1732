//! The device certificate authority: issue, renew and revoke device certificates, publish CRLs, write PKCS#12.
//!
//! This crate is a placeholder in the workspace layout: its capability is tracked in
//! issue #4 and it exports nothing yet.
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]
