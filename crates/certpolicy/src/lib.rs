//! Device certificate policy: is this certificate acceptable, and if not, exactly why?
//!
//! [`Policy::evaluate`] checks a device (leaf) certificate, the intermediates and trust
//! anchors it may chain through, and the CRLs it is checked against, at a given time, and
//! returns a [`Report`] with every finding: one per rule and certificate, each with a
//! stable [`RuleId`], an [`Outcome`], a sentence a person can act on and the certificate it
//! is about. It never stops at the first failure.
//!
//! Three layers (see `docs/certpolicy.md` and the PKI spec):
//! 1. rustls-webpki builds the path and checks signatures, validity, EKU and CRLs
//!    (revocation depth: the whole chain; unknown status denied; expired CRLs fail);
//! 2. OpenSSL-parity checks where webpki is laxer than `openssl verify -purpose sslclient
//!    -auth_level 2 -crl_check_all` (expired root, non-root anchor, CA without keyCertSign,
//!    leaf KU without digitalSignature, CRL thisUpdate in the future);
//! 3. the device policy itself (EKU and KU present, http CRL distribution point, exact
//!    computer name, key strength, no SHA-1/MD5, leaf not a CA, clean structure).
//!
//! The library does no I/O; [`load`] turns PEM or DER bytes (or files) into the DER types.
//!
//! ```
//! use rcgen::{CertificateParams, CertificateRevocationListParams, DnType, IsCa, BasicConstraints,
//!     Issuer, KeyPair, KeyUsagePurpose, ExtendedKeyUsagePurpose, CrlDistributionPoint,
//!     SanType, SerialNumber, KeyIdMethod};
//! use tessera_certpolicy::{Policy, RuleId, UnixTime, CertificateDer, CertificateRevocationListDer};
//! use time::macros::datetime;
//!
//! // A root CA and a device certificate issued by it, as the Tessera CA would issue them.
//! let root_key = KeyPair::generate()?;
//! let mut root = CertificateParams::new(Vec::<String>::new())?;
//! root.distinguished_name.push(DnType::CommonName, "Example Device Root");
//! root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
//! root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
//! root.not_before = datetime!(2025-01-01 0:00 UTC);
//! root.not_after = datetime!(2035-01-01 0:00 UTC);
//! let root_der = root.self_signed(&root_key)?.der().clone();
//! let issuer = Issuer::new(root, &root_key);
//!
//! let mut leaf = CertificateParams::new(vec!["MAC01.local".to_owned()])?;
//! leaf.distinguished_name.push(DnType::CommonName, "MAC01.local");
//! leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
//! leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
//! leaf.crl_distribution_points =
//!     vec![CrlDistributionPoint { uris: vec!["http://pki.example/root.crl".into()] }];
//! leaf.not_before = datetime!(2025-01-01 0:00 UTC);
//! leaf.not_after = datetime!(2027-01-01 0:00 UTC);
//! leaf.serial_number = Some(SerialNumber::from_slice(&[0x01, 0x23]));
//! let leaf_der = leaf.signed_by(&KeyPair::generate()?, &issuer)?.der().clone();
//!
//! let crl = CertificateRevocationListParams {
//!     this_update: datetime!(2025-12-30 0:00 UTC),
//!     next_update: datetime!(2026-01-06 0:00 UTC),
//!     crl_number: SerialNumber::from_slice(&[1]),
//!     issuing_distribution_point: None,
//!     revoked_certs: vec![],
//!     key_identifier_method: KeyIdMethod::Sha256,
//! }
//! .signed_by(&issuer)?;
//! let crls = [CertificateRevocationListDer::from(crl.der().to_vec())];
//!
//! let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_767_225_600)); // 2026-01-01
//! let report = Policy::default().evaluate(&leaf_der, &[], &[root_der], &crls, "MAC01.local", now);
//! assert!(report.passed(), "{report}");
//!
//! // The same certificate on a machine called mac01.local: names compare byte for byte.
//! let report = Policy::default().evaluate(&leaf_der, &[], &[], &crls, "mac01.local", now);
//! assert!(!report.passed());
//! assert!(report.failed_rules().contains(&RuleId::SubjectName));
//! assert!(report.failed_rules().contains(&RuleId::Chain)); // and no trust anchor was given
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod chain;
mod findings;
pub mod fuzzing;
mod input;
pub mod load;
mod policy;
mod report;
mod revocation;
mod rule;
mod rules;

pub use load::{EvidenceFiles, LoadError, LoadedEvidence};
pub use policy::{Evidence, Policy};
pub use report::{Finding, Report, Subject, SubjectKind};
pub use rule::{Outcome, RuleId};
/// The DER input types and the time type, re-exported so callers need not depend on
/// `rustls-pki-types` themselves.
pub use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};
