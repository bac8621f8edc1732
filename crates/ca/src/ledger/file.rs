//! A ledger in one JSON file (mode 0600), rewritten atomically on every change: for the
//! stand-alone CLI and small single-node servers. One process at a time: concurrent
//! writers from several processes are not coordinated.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use super::{IssuedCertificate, Ledger, LedgerState, Revocation};
use crate::fsio;
use crate::{CaError, Serial};

/// A [`Ledger`] in a JSON file.
#[derive(Debug)]
pub struct FileLedger {
    path: PathBuf,
    // Serialises this process's read-modify-write cycles.
    lock: Mutex<()>,
}

impl FileLedger {
    /// A ledger at `path`; the file is created on the first change.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            lock: Mutex::new(()),
        }
    }

    /// The ledger file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load(&self) -> Result<LedgerState, CaError> {
        if !self.path.exists() {
            return Ok(LedgerState::default());
        }
        let bytes = fsio::read_private(&self.path)?;
        serde_json::from_slice(&bytes).map_err(|e| CaError::DamagedFile {
            path: self.path.clone(),
            reason: e.to_string(),
        })
    }

    fn save(&self, state: &LedgerState) -> Result<(), CaError> {
        let json = serde_json::to_vec_pretty(state)
            .map_err(|e| CaError::Ledger(format!("cannot encode the ledger: {e}")))?;
        fsio::write_atomic(&self.path, &json, fsio::PRIVATE)
    }

    fn update<T>(
        &self,
        change: impl FnOnce(&mut LedgerState) -> Result<T, CaError>,
    ) -> Result<T, CaError> {
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let mut state = self.load()?;
        let out = change(&mut state)?;
        self.save(&state)?;
        Ok(out)
    }

    fn read<T>(&self, query: impl FnOnce(&LedgerState) -> T) -> Result<T, CaError> {
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(query(&self.load()?))
    }
}

impl Ledger for FileLedger {
    fn record_issued(&self, certificate: &IssuedCertificate) -> Result<(), CaError> {
        self.update(|s| s.record_issued(certificate))
    }

    fn find(&self, serial: &Serial) -> Result<Option<IssuedCertificate>, CaError> {
        self.read(|s| s.certificates.get(serial).cloned())
    }

    fn revoke(
        &self,
        serial: &Serial,
        revocation: &Revocation,
    ) -> Result<IssuedCertificate, CaError> {
        self.update(|s| s.revoke(serial, revocation))
    }

    fn revoked(&self) -> Result<Vec<IssuedCertificate>, CaError> {
        self.read(LedgerState::revoked)
    }

    fn all(&self) -> Result<Vec<IssuedCertificate>, CaError> {
        self.read(|s| s.certificates.values().cloned().collect())
    }

    fn next_crl_number(&self) -> Result<u64, CaError> {
        self.update(LedgerState::next_crl_number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::memory::tests::{check_contract, record};
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn file_ledger_keeps_the_contract_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.json");
        check_contract(&FileLedger::new(&path));
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );

        let reopened = FileLedger::new(&path);
        assert_eq!(reopened.all().unwrap().len(), 2);
        assert_eq!(reopened.revoked().unwrap().len(), 1);
        assert_eq!(
            reopened.next_crl_number().unwrap(),
            3,
            "CRL numbers continue after a restart"
        );
        assert!(matches!(
            reopened.record_issued(&record("0a")),
            Err(CaError::SerialReused { .. })
        ));
    }

    #[test]
    fn a_damaged_ledger_is_reported_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.json");
        fsio::write_atomic(&path, b"{not json", fsio::PRIVATE).unwrap();
        let ledger = FileLedger::new(&path);
        assert!(matches!(
            ledger.record_issued(&record("01")),
            Err(CaError::DamagedFile { .. })
        ));
        assert_eq!(std::fs::read(&path).unwrap(), b"{not json");
    }
}
