//! The ledger's rules on plain data, shared by the in-memory and file ledgers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{IssuedCertificate, Revocation};
use crate::{CaError, Serial};

/// Everything a ledger knows, serializable as the file ledger's JSON document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LedgerState {
    /// The last CRL number handed out; 0 before the first CRL.
    pub(crate) last_crl_number: u64,
    /// Every issued certificate by serial.
    pub(crate) certificates: BTreeMap<Serial, IssuedCertificate>,
}

impl LedgerState {
    pub(crate) fn record_issued(&mut self, certificate: &IssuedCertificate) -> Result<(), CaError> {
        if self.certificates.contains_key(&certificate.serial) {
            return Err(CaError::SerialReused {
                serial: certificate.serial.to_hex(),
            });
        }
        self.certificates
            .insert(certificate.serial.clone(), certificate.clone());
        Ok(())
    }

    pub(crate) fn revoke(
        &mut self,
        serial: &Serial,
        revocation: &Revocation,
    ) -> Result<IssuedCertificate, CaError> {
        let Some(entry) = self.certificates.get_mut(serial) else {
            return Err(CaError::UnknownSerial {
                serial: serial.to_hex(),
            });
        };
        if let Some(previous) = entry.revoked {
            return Err(CaError::AlreadyRevoked {
                serial: serial.to_hex(),
                since: previous
                    .at
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_else(|_| previous.at.to_string()),
            });
        }
        entry.revoked = Some(*revocation);
        Ok(entry.clone())
    }

    pub(crate) fn revoked(&self) -> Vec<IssuedCertificate> {
        self.certificates
            .values()
            .filter(|c| c.revoked.is_some())
            .cloned()
            .collect()
    }

    pub(crate) fn next_crl_number(&mut self) -> Result<u64, CaError> {
        self.last_crl_number = self
            .last_crl_number
            .checked_add(1)
            .ok_or_else(|| CaError::Ledger("the CRL number is exhausted".into()))?;
        Ok(self.last_crl_number)
    }
}
