//! A ledger in one JSON file (mode 0600), rewritten atomically on every change: for the
//! stand-alone CLI and single-node servers. Writers in several processes (a running server
//! and `ca revoke`) take turns through a lock file beside it (`ledger.json.lock`, created
//! with O_EXCL like git's `index.lock`); readers need no lock because every write is an
//! atomic rename.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{IssuedCertificate, Ledger, LedgerState, Revocation};
use crate::fsio;
use crate::{CaError, Serial};

/// A [`Ledger`] in a JSON file.
#[derive(Debug)]
pub struct FileLedger {
    path: PathBuf,
    // Serialises this process's read-modify-write cycles; the lock file serialises processes.
    lock: Mutex<()>,
    lock_timeout: Duration,
}

/// How long a writer waits for another process's lock by default.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// The lock file, removed when dropped.
struct LockFile(PathBuf);

impl LockFile {
    fn acquire(path: PathBuf, timeout: Duration) -> Result<Self, CaError> {
        let start = Instant::now();
        loop {
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(mut file) => {
                    // The holder's pid, for a person deciding whether the lock is stale.
                    let _ = writeln!(file, "{}", std::process::id());
                    return Ok(Self(path));
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    if start.elapsed() >= timeout {
                        return Err(CaError::LedgerLocked { lock: path });
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(CaError::io("cannot create the lock file", &path)(e)),
            }
        }
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl FileLedger {
    /// A ledger at `path`; the file is created on the first change.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            lock: Mutex::new(()),
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
        }
    }

    /// The same ledger, waiting at most `timeout` for another process's lock.
    #[must_use]
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    fn lock_path(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".lock");
        self.path.with_file_name(name)
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
        let _file_lock = LockFile::acquire(self.lock_path(), self.lock_timeout)?;
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
    fn writers_in_separate_ledger_values_do_not_lose_updates() {
        // Two FileLedger values stand for two processes: only the lock file orders them.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.json");
        let writers: Vec<_> = (0..2u8)
            .map(|w| {
                let ledger = FileLedger::new(&path);
                std::thread::spawn(move || {
                    for i in 0..40u8 {
                        ledger
                            .record_issued(&record(&format!("{:02x}{:02x}", w + 1, i)))
                            .unwrap();
                        ledger.next_crl_number().unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        let ledger = FileLedger::new(&path);
        assert_eq!(ledger.all().unwrap().len(), 80);
        assert_eq!(ledger.next_crl_number().unwrap(), 81);
        assert!(!dir.path().join("ledger.json.lock").exists());
    }

    #[test]
    fn a_held_lock_times_out_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.json");
        std::fs::write(dir.path().join("ledger.json.lock"), "12345\n").unwrap();
        let ledger = FileLedger::new(&path).with_lock_timeout(Duration::from_millis(50));
        let err = ledger.record_issued(&record("01")).unwrap_err();
        assert!(matches!(err, CaError::LedgerLocked { .. }), "{err}");
        assert!(err.to_string().contains("ledger.json.lock"));
        // Reads do not need the lock.
        assert!(ledger.all().unwrap().is_empty());
        std::fs::remove_file(dir.path().join("ledger.json.lock")).unwrap();
        ledger.record_issued(&record("01")).unwrap();
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
