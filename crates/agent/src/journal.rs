//! The agent's data directory: every fact the agent needs to resume after a crash.
//!
//! ```text
//! <data>/
//!   lock                         held while an agent runs (one agent per directory)
//!   agent.json                   enrollment (device id, server, manifest), last check-in, history
//!   schedule.json                the fragment scheduler's state (tessera-schedule)
//!   packages/<ID>/info           the package's verified `info`
//!   packages/<ID>/<n>            fragment n, verified (SHA-256) before it was renamed here
//!   packages/<ID>/<n>.part       fragment n while it downloads (resumed with HTTP Range)
//!   packages/<ID>/corrupt        a fragment failed its digest since the last verified one
//!   packages/<ID>/action.json    the action's progress: preparing → launching → finished
//!   packages/<ID>/action.pid     written by the action's supervisor as it starts
//!   packages/<ID>/action.status  written by the supervisor when the action ends (exit code)
//!   packages/<ID>/action.log     the action's output
//!   packages/<ID>/work/          the unpacked payload, the action's working directory
//! ```
//!
//! Every state file is replaced atomically (temp file, fsync, rename, directory fsync), and
//! each step of the agent records what it did before it reports it, so that a kill at any
//! instant neither loses a verified fragment nor runs an action twice.

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tessera_schedule::{PackageId, ScheduleConfig, Scheduler};

use crate::error::{AgentError, Result};
use crate::fsio::{create_private_dir, read_optional, write_atomic};

/// Packages remembered as done (for the inventory's history); older ones are dropped.
const HISTORY_LIMIT: usize = 2_000;

/// The agent's data directory, locked for this process.
#[derive(Debug)]
pub struct DataDir {
    root: PathBuf,
    _lock: Option<File>,
}

impl DataDir {
    /// Opens (creating it 0700) and locks the directory; fails if another agent holds it.
    pub fn open(root: &Path) -> Result<Self> {
        create_private_dir(root)?;
        create_private_dir(&root.join("packages"))?;
        let lock_path = root.join("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| AgentError::io("opening", &lock_path, e))?;
        match rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => return Err(AgentError::Busy(root.to_owned())),
            Err(e) => return Err(AgentError::io("locking", &lock_path, e.into())),
        }
        Ok(Self {
            root: root.to_owned(),
            _lock: Some(lock),
        })
    }

    /// Opens the directory to read it only (`status`), without the lock.
    pub fn read_only(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
            _lock: None,
        }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn agent_state_path(&self) -> PathBuf {
        self.root.join("agent.json")
    }

    fn schedule_path(&self) -> PathBuf {
        self.root.join("schedule.json")
    }

    /// The enrollment and check-in record, if the device is enrolled.
    pub fn agent_state(&self) -> Result<Option<AgentState>> {
        read_json(&self.agent_state_path())
    }

    /// Saves the enrollment and check-in record.
    pub fn save_agent_state(&self, state: &AgentState) -> Result<()> {
        let json = serde_json::to_vec_pretty(state).unwrap_or_default();
        write_atomic(&self.agent_state_path(), &json, 0o600)
    }

    /// The saved scheduler, or a fresh one with `config`.
    pub fn scheduler(&self, config: ScheduleConfig) -> Result<Scheduler> {
        let path = self.schedule_path();
        match read_optional(&path)? {
            None => Ok(Scheduler::new(config)),
            Some(bytes) => Scheduler::from_json(&bytes).map_err(|e| AgentError::State {
                path,
                reason: e.to_string(),
            }),
        }
    }

    /// Saves the scheduler (after every event, and after an `Execute` is handed out).
    pub fn save_scheduler(&self, scheduler: &Scheduler) -> Result<()> {
        write_atomic(&self.schedule_path(), &scheduler.to_json(), 0o600)
    }

    /// The directory of one package.
    pub fn package(&self, id: PackageId) -> PackageDir {
        PackageDir {
            root: self.root.join("packages").join(id.0.to_string()),
        }
    }

    /// Package directories present on disk.
    pub fn package_ids(&self) -> Vec<PackageId> {
        let Ok(entries) = std::fs::read_dir(self.root.join("packages")) else {
            return Vec::new();
        };
        let mut ids: Vec<PackageId> = entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok().map(PackageId))
            .collect();
        ids.sort_unstable();
        ids
    }
}

/// A JSON state file that may not exist yet; unreadable content is an error naming it.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match read_optional(path)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| AgentError::State {
                path: path.to_owned(),
                reason: e.to_string(),
            }),
    }
}

/// One package's files.
#[derive(Debug, Clone)]
pub struct PackageDir {
    root: PathBuf,
}

impl PackageDir {
    /// Creates the directory.
    pub fn create(&self) -> Result<()> {
        create_private_dir(&self.root)
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The saved `info`.
    pub fn info(&self) -> PathBuf {
        self.root.join("info")
    }

    /// Verified fragment `n`.
    pub fn fragment(&self, n: u32) -> PathBuf {
        self.root.join(n.to_string())
    }

    /// Fragment `n` while it downloads.
    pub fn fragment_part(&self, n: u32) -> PathBuf {
        self.root.join(format!("{n}.part"))
    }

    /// Marker: the last fetch failed its digest.
    pub fn corrupt_marker(&self) -> PathBuf {
        self.root.join("corrupt")
    }

    /// The action record.
    pub fn action_record(&self) -> PathBuf {
        self.root.join("action.json")
    }

    /// Written by the supervisor when the action starts.
    pub fn action_pid(&self) -> PathBuf {
        self.root.join("action.pid")
    }

    /// Written by the supervisor when the action ends.
    pub fn action_status(&self) -> PathBuf {
        self.root.join("action.status")
    }

    /// The action's output.
    pub fn action_log(&self) -> PathBuf {
        self.root.join("action.log")
    }

    /// The unpacked payload.
    pub fn work(&self) -> PathBuf {
        self.root.join("work")
    }

    /// The saved action record.
    pub fn load_action(&self) -> Result<Option<ActionRecord>> {
        read_json(&self.action_record())
    }

    /// Records the action's progress.
    pub fn save_action(&self, record: &ActionRecord) -> Result<()> {
        let json = serde_json::to_vec(record).unwrap_or_default();
        write_atomic(&self.action_record(), &json, 0o600)
    }

    /// How many fragments are verified on disk (for `status`).
    pub fn verified_fragments(&self, count: u32) -> u32 {
        (1..=count).filter(|n| self.fragment(*n).exists()).count() as u32
    }

    /// Removes the package's files once its result is delivered.
    pub fn remove(&self) -> Result<()> {
        match std::fs::remove_dir_all(&self.root) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(AgentError::io("removing", &self.root, e)),
        }
    }
}

/// How far an action got; the agent reads it back after a crash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ActionRecord {
    /// Reassembling, verifying and unpacking: nothing has run; safe to start over.
    Preparing,
    /// The action's process is being started or runs; its supervisor writes
    /// `action.pid` and then `action.status`.
    Launching {
        /// Unix time after which the action is killed.
        deadline: u64,
    },
    /// The action ended with this OCS result code.
    Finished {
        /// `SUCCESS`, `SUCCESS_3`, `ERR_EXECUTE`, …
        result: String,
    },
}

/// What the agent remembers between runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentState {
    /// The OCS DEVICEID (`<hostname>-YYYY-MM-DD-hh-mm-ss`).
    pub device_id: String,
    /// The server it enrolled with.
    pub server: String,
    /// Its computer manifest, e.g. `computers/C02XYZ`.
    #[serde(default)]
    pub manifest: String,
    /// The group manifests it may join.
    #[serde(default)]
    pub groups: Vec<String>,
    /// When it enrolled (RFC 3339).
    #[serde(default)]
    pub enrolled_at: String,
    /// The last check-in.
    #[serde(default)]
    pub last_check_in: Option<CheckInRecord>,
    /// Hours between check-ins, as the server last said.
    #[serde(default = "default_prolog_freq")]
    pub prolog_freq_hours: u32,
    /// Packages done, oldest first.
    #[serde(default)]
    pub history: Vec<u64>,
}

fn default_prolog_freq() -> u32 {
    12
}

impl AgentState {
    /// Remembers a package as done.
    pub fn remember(&mut self, id: PackageId) {
        if !self.history.contains(&id.0) {
            self.history.push(id.0);
        }
        if self.history.len() > HISTORY_LIMIT {
            let excess = self.history.len() - HISTORY_LIMIT;
            self.history.drain(..excess);
        }
    }
}

/// One check-in's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckInRecord {
    /// Unix time.
    pub at: u64,
    /// The server that answered (or the last one tried).
    pub server: String,
    /// `None` when it went well, else what failed.
    pub error: Option<String>,
    /// Packages the server offered.
    pub offered: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_agent_on_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDir::open(dir.path()).unwrap();
        assert!(matches!(
            DataDir::open(dir.path()),
            Err(AgentError::Busy(_))
        ));
        drop(first);
        assert!(DataDir::open(dir.path()).is_ok());
    }

    #[test]
    fn records_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(dir.path()).unwrap();
        assert_eq!(data.agent_state().unwrap(), None);
        let mut state = AgentState {
            device_id: "h-2026-01-01-00-00-00".into(),
            server: "https://a".into(),
            manifest: "computers/S".into(),
            groups: vec![],
            enrolled_at: String::new(),
            last_check_in: None,
            prolog_freq_hours: 12,
            history: vec![],
        };
        state.remember(PackageId(5));
        state.remember(PackageId(5));
        data.save_agent_state(&state).unwrap();
        assert_eq!(data.agent_state().unwrap(), Some(state));

        let package = data.package(PackageId(5));
        package.create().unwrap();
        package
            .save_action(&ActionRecord::Launching { deadline: 9 })
            .unwrap();
        assert_eq!(
            package.load_action().unwrap(),
            Some(ActionRecord::Launching { deadline: 9 })
        );
        assert_eq!(data.package_ids(), vec![PackageId(5)]);
        package.remove().unwrap();
        assert!(data.package_ids().is_empty());
    }

    #[test]
    fn a_corrupt_state_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(dir.path()).unwrap();
        std::fs::write(dir.path().join("agent.json"), b"{").unwrap();
        let error = data.agent_state().unwrap_err().to_string();
        assert!(error.contains("agent.json"), "{error}");
    }
}
