//! One package's progress through its life: download, execute, report.

use serde::{Deserialize, Serialize};

use crate::config::ScheduleConfig;
use crate::model::{Action, PackageId, Priority, ResultCode, Timestamp};

/// Where a package is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Fragments `1..=verified` are on disk and verified; the next step fetches
    /// `verified + 1`, or executes once all are there.
    Downloading {
        /// Fragments fetched and verified so far.
        verified: u32,
    },
    /// [`Action::Execute`] was handed out and its outcome is not known yet.
    Executing,
    /// The result is known and must reach the server.
    Reporting {
        /// The result to send.
        result: ResultCode,
    },
}

/// A package the scheduler is working on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageState {
    /// `PRI`.
    pub priority: Priority,
    /// `FRAGS`.
    pub fragments: u32,
    /// Progress.
    #[serde(flatten)]
    pub phase: Phase,
    /// When the package was first seen (the base of `TIMEOUT`, OCS's `since`).
    pub first_seen: Timestamp,
    /// Consecutive failures of the current fetch or report (reset by a success).
    pub failures: u32,
    /// The package takes no step before this cycle (set after each step, with backoff).
    pub not_before_cycle: u64,
    /// The cycle of its next step, kept by the queue rotation (a slot at or after
    /// `not_before_cycle`; may lie in the past when absolute-priority cycles took it).
    /// Derived, so not persisted: it is recomputed when a state is loaded.
    #[serde(skip)]
    pub due_cycle: u64,
}

impl PackageState {
    /// A package first seen at `now`, eligible from `cycle` on.
    pub(crate) fn new(priority: Priority, fragments: u32, now: Timestamp, cycle: u64) -> Self {
        Self {
            priority,
            fragments,
            phase: Phase::Downloading { verified: 0 },
            first_seen: now,
            failures: 0,
            not_before_cycle: cycle,
            due_cycle: cycle,
        }
    }

    /// Whether the package's action has been handed out (it is past the point of no return:
    /// it will be reported even if the server stops listing it, and TIMEOUT no longer applies).
    pub fn has_started_executing(&self) -> bool {
        !matches!(self.phase, Phase::Downloading { .. })
    }

    /// The action this package's step takes at `now`, updating the phase for the actions
    /// that are handed out once only.
    pub(crate) fn begin_step(
        &mut self,
        id: PackageId,
        now: Timestamp,
        config: &ScheduleConfig,
    ) -> Action {
        match self.phase {
            Phase::Downloading { verified } => {
                // OCS: `(now - since) / 86400 > TIMEOUT` ends the package.
                if now.seconds_since(self.first_seen) > config.timeout_seconds() {
                    self.phase = Phase::Reporting {
                        result: ResultCode::ErrTimeout,
                    };
                    self.failures = 0;
                    self.report_action(id)
                } else if verified < self.fragments {
                    Action::Fetch {
                        package: id,
                        fragment: verified + 1,
                    }
                } else {
                    self.phase = Phase::Executing;
                    Action::Execute { package: id }
                }
            }
            Phase::Executing => {
                // Handed out before and never answered: the agent stopped during the action.
                self.phase = Phase::Reporting {
                    result: ResultCode::ErrExecuteInterrupted,
                };
                self.report_action(id)
            }
            Phase::Reporting { .. } => self.report_action(id),
        }
    }

    /// The action in flight for this package, without changing anything (`None` while the
    /// step has not begun).
    pub(crate) fn current_action(&self, id: PackageId) -> Action {
        match self.phase {
            Phase::Downloading { verified } => Action::Fetch {
                package: id,
                fragment: verified.saturating_add(1),
            },
            Phase::Executing => Action::Execute { package: id },
            Phase::Reporting { result } => Action::Report {
                package: id,
                result,
            },
        }
    }

    fn report_action(&self, id: PackageId) -> Action {
        self.current_action(id)
    }

    /// Marks the step just finished and computes the first cycle the next may take:
    /// the next cycle, plus the backoff after a failure.
    pub(crate) fn finish_step(&mut self, cycle: u64, config: &ScheduleConfig) {
        self.not_before_cycle = cycle
            .saturating_add(1)
            .saturating_add(config.backoff_cycles(self.failures));
    }
}
