//! The Tessera device certificate authority: issue, renew and revoke device certificates,
//! publish CRLs, and hand out PKCS#12 files.
//!
//! Every device certificate is built from policy, never from what a CSR asks for: CN and
//! SAN dNSName = the computer name, EKU clientAuth, KU digitalSignature + keyEncipherment
//! (critical), an `http://` CRL distribution point, AKI/SKI, 16 random serial bytes and an
//! explicit validity starting 5 minutes in the past. From a CSR only the public key is
//! taken, after its signature verifies; the names it asks for must be the computer's.
//!
//! Time ([`Clock`]), serials ([`SerialSource`]) and the record of what was issued
//! ([`Ledger`]) are injected through [`CaServices`]; [`CaHome`] stores a CA in the server's
//! data directory (see `docs/ca.md`).
//!
//! ```
//! use std::sync::Arc;
//! use tessera_ca::{Ca, CaServices, CaSettings, ComputerName, DeviceCsr, InitOptions,
//!     KeyAlgorithm, ManualClock, MemoryLedger, RandomSerials, RevocationReason};
//!
//! let services = CaServices {
//!     clock: Arc::new(ManualClock::new(time::macros::datetime!(2026-01-01 0:00 UTC))),
//!     serials: Arc::new(RandomSerials::seeded(1)),
//!     ledger: Arc::new(MemoryLedger::new()),
//! };
//! let ca = Ca::init(
//!     &InitOptions {
//!         common_name: "Example Device CA".into(),
//!         key_algorithm: KeyAlgorithm::EcdsaP256,
//!         intermediate: false,
//!         settings: CaSettings::with_crl_base("http://tessera.example:8080")?,
//!     },
//!     services,
//! )?;
//!
//! // The device makes its key and a CSR; the CA certifies the key for the enrolling name.
//! let device_key = rcgen::KeyPair::generate()?;
//! let mut request = rcgen::CertificateParams::new(Vec::<String>::new())?;
//! request.distinguished_name.push(rcgen::DnType::CommonName, "MAC01.local");
//! let csr = DeviceCsr::parse(request.serialize_request(&device_key)?.pem()?.as_bytes())?;
//! let name = ComputerName::new("MAC01.local")?;
//! let issued = ca.issue_from_csr(&csr, &name)?;
//! assert!(issued.certificate_pem.starts_with("-----BEGIN CERTIFICATE-----"));
//!
//! // A request for another computer is refused.
//! assert!(ca.issue_from_csr(&csr, &ComputerName::new("MAC02.local")?).is_err());
//!
//! // Revoked certificates appear in the next CRL.
//! ca.revoke(&issued.serial, RevocationReason::KeyCompromise)?;
//! let crls = ca.sign_crls()?;
//! assert_eq!(crls.issuing.revoked_serials(), [issued.serial]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod authority;
mod clock;
mod crl;
mod csr;
mod error;
mod fsio;
pub mod fuzzing;
mod home;
mod ledger;
mod name;
pub mod pkcs12;
mod profile;
mod serial;

pub use authority::{Ca, CaMaterial, CaServices, InitOptions};
pub use clock::{Clock, ManualClock, SystemClock};
pub use crl::{PublishedCrls, SignedCrl};
pub use csr::{DeviceCsr, MAX_CSR_BYTES, MAX_RSA_BITS, MIN_RSA_BITS};
pub use error::CaError;
pub use home::CaHome;
pub use ledger::{
    FileLedger, IssuedCertificate, Ledger, MemoryLedger, Revocation, RevocationReason,
};
pub use name::ComputerName;
pub use pkcs12::{Pkcs12Identity, Pkcs12Password, Pkcs12Profile};
pub use profile::{BACKDATE, CaSettings, CrlUrl, KeyAlgorithm};
pub use serial::{RandomSerials, SERIAL_BYTES, Serial, SerialSource};

/// PEM with `\n` line endings (the `pem` crate writes `\r\n` by default), like rcgen and
/// OpenSSL, so that concatenated chains have one line ending.
pub(crate) fn pem_lf(block: &pem::Pem) -> String {
    pem::encode_config(
        block,
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}
