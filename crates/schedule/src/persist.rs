//! The persisted form of a scheduler: everything needed to resume exactly, nothing derived.
//! Queues are rebuilt on load, so a state read from disk cannot hold a stale or duplicate
//! queue entry; whatever else is inconsistent is refused with [`ScheduleError::CorruptState`].

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::config::ScheduleConfig;
use crate::cycles::CycleClock;
use crate::error::ScheduleError;
use crate::model::{PackageId, Timestamp};
use crate::package::{PackageState, Phase};
use crate::rotation::Rotation;
use crate::scheduler::{CurrentStep, Scheduler};

/// The version written in every persisted state.
const FORMAT: u32 = 1;

#[derive(Serialize)]
struct PersistedRef<'a> {
    format: u32,
    config: &'a ScheduleConfig,
    clock: &'a CycleClock,
    pending_delay: u64,
    not_before: Option<Timestamp>,
    current: Option<CurrentStep>,
    packages: &'a BTreeMap<PackageId, PackageState>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Persisted {
    format: u32,
    config: ScheduleConfig,
    clock: CycleClock,
    pending_delay: u64,
    not_before: Option<Timestamp>,
    current: Option<CurrentStep>,
    packages: BTreeMap<PackageId, PackageState>,
}

impl<R: Rotation> Serialize for Scheduler<R> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        PersistedRef {
            format: FORMAT,
            config: &self.config,
            clock: &self.clock,
            pending_delay: self.pending_delay,
            not_before: self.not_before,
            current: self.current,
            packages: &self.packages,
        }
        .serialize(serializer)
    }
}

impl<'de, R: Rotation> Deserialize<'de> for Scheduler<R> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let persisted = Persisted::deserialize(deserializer)?;
        Self::from_persisted(persisted).map_err(serde::de::Error::custom)
    }
}

impl<R: Rotation> Scheduler<R> {
    fn from_persisted(persisted: Persisted) -> Result<Self, ScheduleError> {
        let corrupt = |reason: String| ScheduleError::CorruptState { reason };
        if persisted.format != FORMAT {
            return Err(corrupt(format!(
                "format {} is not the supported format {FORMAT}",
                persisted.format
            )));
        }
        for (id, package) in &persisted.packages {
            if let Phase::Downloading { verified } = package.phase
                && verified > package.fragments
            {
                return Err(corrupt(format!(
                    "package {id} has {verified} fragments verified out of {}",
                    package.fragments
                )));
            }
        }
        if let Some(step) = persisted.current
            && !persisted.packages.contains_key(&step.package)
        {
            return Err(corrupt(format!(
                "the step in flight is for package {}, which the state does not hold",
                step.package
            )));
        }
        let mut scheduler = Self::new(persisted.config);
        scheduler.packages = persisted.packages;
        scheduler.clock = persisted.clock;
        scheduler.pending_delay = persisted.pending_delay;
        scheduler.not_before = persisted.not_before;
        scheduler.current = persisted.current;
        scheduler.set_config(persisted.config);
        Ok(scheduler)
    }

    /// The state as JSON, to be written to disk (atomically) after every event.
    pub fn to_json(&self) -> Vec<u8> {
        // Keys are integers and every value is plain data, so this cannot fail; an empty
        // document would be refused on load rather than silently resuming wrong.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a state written by [`Scheduler::to_json`].
    pub fn from_json(bytes: &[u8]) -> Result<Self, ScheduleError> {
        serde_json::from_slice(bytes).map_err(|err| ScheduleError::CorruptState {
            reason: err.to_string(),
        })
    }
}
