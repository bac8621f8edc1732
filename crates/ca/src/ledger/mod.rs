//! The ledger: every certificate the CA issued, its revocation, and the CRL number. The
//! server's store implements [`Ledger`] over its database; [`MemoryLedger`] and
//! [`FileLedger`] are the implementations for tests and for the stand-alone CLI.

mod file;
mod memory;
mod state;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{CaError, ComputerName, Serial};

pub use file::FileLedger;
pub use memory::MemoryLedger;
pub(crate) use state::LedgerState;

/// Where the CA records what it issued. Implementations must be safe to share between
/// threads; each call is one atomic step.
pub trait Ledger: Send + Sync {
    /// Records a newly issued certificate. Fails with [`CaError::SerialReused`] if the
    /// serial is already recorded: a CA never issues a serial twice.
    fn record_issued(&self, certificate: &IssuedCertificate) -> Result<(), CaError>;
    /// The certificate with this serial, if this CA issued it.
    fn find(&self, serial: &Serial) -> Result<Option<IssuedCertificate>, CaError>;
    /// Marks a certificate revoked and returns it. Fails with [`CaError::UnknownSerial`] or
    /// [`CaError::AlreadyRevoked`].
    fn revoke(
        &self,
        serial: &Serial,
        revocation: &Revocation,
    ) -> Result<IssuedCertificate, CaError>;
    /// Every revoked certificate: what the CRL lists.
    fn revoked(&self) -> Result<Vec<IssuedCertificate>, CaError>;
    /// Every certificate, in serial order.
    fn all(&self) -> Result<Vec<IssuedCertificate>, CaError>;
    /// The next CRL number: strictly greater than every number returned before.
    fn next_crl_number(&self) -> Result<u64, CaError>;
}

/// One issued certificate as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCertificate {
    /// Its serial.
    pub serial: Serial,
    /// The computer it was issued to (its CN and SAN).
    pub computer_name: ComputerName,
    /// Start of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// The certificate, PEM.
    pub certificate_pem: String,
    /// When and why it was revoked, if it was.
    pub revoked: Option<Revocation>,
}

/// When and why a certificate was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// When the CA processed the revocation.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Why.
    pub reason: RevocationReason,
}

/// RFC 5280 §5.3.1 revocation reasons (those that apply to device certificates; the CRL
/// writes them as the reasonCode entry extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RevocationReason {
    /// No reason given (written as no reasonCode, as RFC 5280 asks).
    Unspecified,
    /// The device's key is, or may be, known to someone else.
    KeyCompromise,
    /// The device changed owner or organisation.
    AffiliationChanged,
    /// A newer certificate replaces this one (renewal).
    Superseded,
    /// The device was retired.
    CessationOfOperation,
    /// Suspended; may be released later.
    CertificateHold,
    /// The device lost its right to the certificate.
    PrivilegeWithdrawn,
}

impl RevocationReason {
    /// Every reason, in RFC order.
    pub const ALL: [Self; 7] = [
        Self::Unspecified,
        Self::KeyCompromise,
        Self::AffiliationChanged,
        Self::Superseded,
        Self::CessationOfOperation,
        Self::CertificateHold,
        Self::PrivilegeWithdrawn,
    ];

    /// The RFC 5280 name, e.g. `keyCompromise`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "keyCompromise",
            Self::AffiliationChanged => "affiliationChanged",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessationOfOperation",
            Self::CertificateHold => "certificateHold",
            Self::PrivilegeWithdrawn => "privilegeWithdrawn",
        }
    }

    pub(crate) fn to_rcgen(self) -> rcgen::RevocationReason {
        match self {
            Self::Unspecified => rcgen::RevocationReason::Unspecified,
            Self::KeyCompromise => rcgen::RevocationReason::KeyCompromise,
            Self::AffiliationChanged => rcgen::RevocationReason::AffiliationChanged,
            Self::Superseded => rcgen::RevocationReason::Superseded,
            Self::CessationOfOperation => rcgen::RevocationReason::CessationOfOperation,
            Self::CertificateHold => rcgen::RevocationReason::CertificateHold,
            Self::PrivilegeWithdrawn => rcgen::RevocationReason::PrivilegeWithdrawn,
        }
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RevocationReason {
    type Err = CaError;
    /// Accepts the RFC name in any case, with or without hyphens (`key-compromise`).
    fn from_str(text: &str) -> Result<Self, CaError> {
        let folded: String = text
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .flat_map(char::to_lowercase)
            .collect();
        Self::ALL
            .into_iter()
            .find(|r| r.as_str().to_lowercase() == folded)
            .ok_or_else(|| CaError::InvalidRevocationReason {
                given: text.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_parse_in_common_spellings() {
        for reason in RevocationReason::ALL {
            assert_eq!(reason.as_str().parse::<RevocationReason>().unwrap(), reason);
        }
        assert_eq!(
            "key-compromise".parse::<RevocationReason>().unwrap(),
            RevocationReason::KeyCompromise
        );
        assert_eq!(
            "SUPERSEDED".parse::<RevocationReason>().unwrap(),
            RevocationReason::Superseded
        );
        assert!(matches!(
            "stolen".parse::<RevocationReason>(),
            Err(CaError::InvalidRevocationReason { .. })
        ));
    }

    #[test]
    fn reasons_serialize_as_rfc_names() {
        assert_eq!(
            serde_json::to_string(&RevocationReason::KeyCompromise).unwrap(),
            "\"keyCompromise\""
        );
    }
}
