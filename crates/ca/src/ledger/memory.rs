//! A ledger in memory: for tests and short-lived tools.

use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{IssuedCertificate, Ledger, LedgerState, Revocation};
use crate::{CaError, Serial};

/// A [`Ledger`] kept in memory.
#[derive(Debug, Default)]
pub struct MemoryLedger(Mutex<LedgerState>);

impl MemoryLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty ledger whose next CRL number is `last_crl_number + 1`: for CAs whose
    /// issuer published CRLs before Tessera took over.
    pub fn continuing_crl_numbers(last_crl_number: u64) -> Self {
        Self(Mutex::new(LedgerState {
            last_crl_number,
            ..LedgerState::default()
        }))
    }

    fn state(&self) -> MutexGuard<'_, LedgerState> {
        // A panic while holding the lock cannot leave the map half-updated (every update
        // is a single insert or field write), so a poisoned lock is still consistent.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Ledger for MemoryLedger {
    fn record_issued(&self, certificate: &IssuedCertificate) -> Result<(), CaError> {
        self.state().record_issued(certificate)
    }

    fn find(&self, serial: &Serial) -> Result<Option<IssuedCertificate>, CaError> {
        Ok(self.state().certificates.get(serial).cloned())
    }

    fn revoke(
        &self,
        serial: &Serial,
        revocation: &Revocation,
    ) -> Result<IssuedCertificate, CaError> {
        self.state().revoke(serial, revocation)
    }

    fn revoked(&self) -> Result<Vec<IssuedCertificate>, CaError> {
        Ok(self.state().revoked())
    }

    fn all(&self) -> Result<Vec<IssuedCertificate>, CaError> {
        Ok(self.state().certificates.values().cloned().collect())
    }

    fn next_crl_number(&self) -> Result<u64, CaError> {
        self.state().next_crl_number()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{ComputerName, RevocationReason};
    use time::macros::datetime;

    pub(crate) fn record(serial: &str) -> IssuedCertificate {
        IssuedCertificate {
            serial: Serial::from_hex(serial).unwrap(),
            computer_name: ComputerName::new("MAC01.local").unwrap(),
            not_before: datetime!(2026-01-01 0:00 UTC),
            not_after: datetime!(2027-01-01 0:00 UTC),
            certificate_pem: "-----BEGIN CERTIFICATE-----\n...\n".into(),
            revoked: None,
        }
    }

    /// The contract every ledger keeps; run against each implementation.
    pub(crate) fn check_contract(ledger: &dyn Ledger) {
        let a = record("0a");
        let b = record("0b");
        ledger.record_issued(&a).unwrap();
        ledger.record_issued(&b).unwrap();
        assert!(matches!(
            ledger.record_issued(&a),
            Err(CaError::SerialReused { .. })
        ));
        assert_eq!(ledger.find(&a.serial).unwrap(), Some(a.clone()));
        assert_eq!(ledger.find(&Serial::from_hex("0c").unwrap()).unwrap(), None);
        assert!(ledger.revoked().unwrap().is_empty());

        let revocation = Revocation {
            at: datetime!(2026-02-01 0:00 UTC),
            reason: RevocationReason::KeyCompromise,
        };
        let revoked = ledger.revoke(&b.serial, &revocation).unwrap();
        assert_eq!(revoked.revoked, Some(revocation));
        assert!(matches!(
            ledger.revoke(&b.serial, &revocation),
            Err(CaError::AlreadyRevoked { .. })
        ));
        assert!(matches!(
            ledger.revoke(&Serial::from_hex("0c").unwrap(), &revocation),
            Err(CaError::UnknownSerial { .. })
        ));
        assert_eq!(ledger.revoked().unwrap(), vec![revoked]);
        assert_eq!(ledger.all().unwrap().len(), 2);

        let first = ledger.next_crl_number().unwrap();
        let second = ledger.next_crl_number().unwrap();
        assert!(second > first && first >= 1);
    }

    #[test]
    fn memory_ledger_keeps_the_contract() {
        check_contract(&MemoryLedger::new());
    }

    #[test]
    fn crl_numbers_can_continue_a_previous_sequence() {
        let ledger = MemoryLedger::continuing_crl_numbers(1_000);
        assert_eq!(ledger.next_crl_number().unwrap(), 1_001);
        check_contract(&ledger);
    }
}
