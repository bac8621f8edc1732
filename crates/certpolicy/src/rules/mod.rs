//! The policy rules that read certificates with x509-parser (layer (b) and (c) of the
//! spec); path building and revocation through webpki live in `crate::chain`.
//!
//! Each function adds one or more findings for its rule and never stops the evaluation.

pub(crate) mod extensions;
pub(crate) mod key;
pub(crate) mod name;
pub(crate) mod private_key;
pub(crate) mod signature;
pub(crate) mod structure;
pub(crate) mod validity;

#[cfg(test)]
pub(crate) mod testcert;
