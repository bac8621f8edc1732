//! The state machine: `next(now)` says what to do, events say how it went.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::config::ScheduleConfig;
use crate::cycles::CycleClock;
use crate::error::ScheduleError;
use crate::model::{Action, FetchOutcome, PackageId, PackageSpec, ReportOutcome, ResultCode, Timestamp};
use crate::package::{PackageState, Phase};
use crate::rotation::{QueueRotation, Rotation};

/// The package whose step is under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentStep {
    /// The package.
    pub package: PackageId,
    /// Whether its action has been handed out by `next` (events are accepted only then).
    pub began: bool,
}

/// The OCS fragment scheduler as a pure state machine (see the crate documentation).
///
/// Serialises to a compact JSON document ([`Scheduler::to_json`]); persist it after every
/// event and after every [`Action::Execute`], and resume with [`Scheduler::from_json`].
#[derive(Debug, Clone)]
pub struct Scheduler<R: Rotation = QueueRotation> {
    pub(crate) config: ScheduleConfig,
    pub(crate) packages: BTreeMap<PackageId, PackageState>,
    pub(crate) clock: CycleClock,
    /// Seconds to wait before the next action, counted from the next call to `next`
    /// (OCS sleeps after each step returns).
    pub(crate) pending_delay: u64,
    /// The instant the next action is due, once `next` has anchored `pending_delay`.
    pub(crate) not_before: Option<Timestamp>,
    pub(crate) current: Option<CurrentStep>,
    pub(crate) rotation: R,
}

impl<R: Rotation> Scheduler<R> {
    /// An empty scheduler with this configuration.
    pub fn new(config: ScheduleConfig) -> Self {
        Self {
            config,
            packages: BTreeMap::new(),
            clock: CycleClock::default(),
            pending_delay: 0,
            not_before: None,
            current: None,
            rotation: R::default(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &ScheduleConfig {
        &self.config
    }

    /// The packages not finished yet, in ID order.
    pub fn packages(&self) -> impl Iterator<Item = (PackageId, &PackageState)> {
        self.packages.iter().map(|(id, state)| (*id, state))
    }

    /// Where the schedule is in its periods and cycles.
    pub fn clock(&self) -> CycleClock {
        self.clock
    }

    /// Replaces the configuration (a new PROLOG's `CONF`). Latencies apply from the next
    /// step; a new period length re-places every waiting package on the new grid.
    pub fn set_config(&mut self, config: ScheduleConfig) {
        self.config = config;
        self.rebuild_rotation();
    }

    fn rebuild_rotation(&mut self) {
        self.rotation = R::default();
        let current = self.current.map(|step| step.package);
        for (id, package) in &mut self.packages {
            if Some(*id) != current {
                self.rotation.enqueue(*id, package, &self.config);
            }
        }
    }

    /// Back to the start of a period, as a fresh OCS download process would be.
    fn reset_clock(&mut self) {
        self.clock = CycleClock::default();
        self.pending_delay = 0;
        self.not_before = None;
    }

    /// What to do at `now`. Never sleeps: when nothing is due it answers
    /// [`Action::Wait`]. Asking again before reporting the outcome returns the same action,
    /// except for [`Action::Execute`], which is handed out once only: asking again means the
    /// outcome was lost, and the package is reported as `ERR_EXECUTE_INTERRUPTED`.
    pub fn next(&mut self, now: Timestamp) -> Action {
        if !self.config.on {
            return Action::Idle;
        }
        let step = match self.current {
            Some(step) => step,
            None => {
                let selected = self.rotation.select(
                    &mut self.packages,
                    &mut self.clock,
                    &self.config,
                    &mut self.pending_delay,
                );
                let Some(package) = selected else {
                    if self.packages.is_empty() {
                        self.reset_clock();
                    }
                    return Action::Idle;
                };
                let step = CurrentStep {
                    package,
                    began: false,
                };
                self.current = Some(step);
                step
            }
        };
        if self.pending_delay > 0 {
            self.not_before = Some(now.plus_seconds(self.pending_delay));
            self.pending_delay = 0;
        }
        if let Some(until) = self.not_before {
            if now < until {
                return Action::Wait { until };
            }
            self.not_before = None;
        }
        let Some(package) = self.packages.get_mut(&step.package) else {
            // Unreachable with a validated state; answer without panicking all the same.
            self.current = None;
            return Action::Idle;
        };
        let action = if step.began && package.phase != Phase::Executing {
            package.current_action(step.package)
        } else {
            package.begin_step(step.package, now, &self.config)
        };
        self.current = Some(CurrentStep {
            package: step.package,
            began: true,
        });
        action
    }

    /// The step in flight and its package, if the event `event` may answer it.
    fn in_flight(&mut self, event: &'static str) -> Result<(PackageId, &mut PackageState), ScheduleError> {
        let describe = |what: String| ScheduleError::UnexpectedEvent {
            event,
            in_flight: what,
        };
        let Some(step) = self.current.filter(|step| step.began) else {
            return Err(describe("nothing was handed out".to_owned()));
        };
        match self.packages.get_mut(&step.package) {
            Some(package) => Ok((step.package, package)),
            None => Err(describe(format!("package {} is gone", step.package))),
        }
    }

    /// The fetch handed out by `next` ended with `outcome`.
    pub fn fetched(&mut self, outcome: FetchOutcome) -> Result<(), ScheduleError> {
        let max_failures = self.config.max_fetch_failures.get();
        let (id, package) = self.in_flight("fetched")?;
        let verified = match package.phase {
            Phase::Downloading { verified } if verified < package.fragments => verified,
            _ => {
                let in_flight = format!("{:?}", package.current_action(id));
                return Err(ScheduleError::UnexpectedEvent {
                    event: "fetched",
                    in_flight,
                });
            }
        };
        match outcome {
            FetchOutcome::Verified => {
                package.phase = Phase::Downloading {
                    verified: verified + 1,
                };
                package.failures = 0;
            }
            FetchOutcome::Failed => {
                package.failures = package.failures.saturating_add(1);
                if package.failures >= max_failures {
                    // Rule 3: give up on this fragment and say so now, in the same slot.
                    package.phase = Phase::Reporting {
                        result: ResultCode::ErrDownloadPack,
                    };
                    package.failures = 0;
                    self.current = Some(CurrentStep {
                        package: id,
                        began: false,
                    });
                    return Ok(());
                }
            }
        }
        self.end_step(id);
        Ok(())
    }

    /// The action handed out by `next` ended with `result`; it is reported at once.
    pub fn executed(&mut self, result: ResultCode) -> Result<(), ScheduleError> {
        let (id, package) = self.in_flight("executed")?;
        if package.phase != Phase::Executing {
            let in_flight = format!("{:?}", package.current_action(id));
            return Err(ScheduleError::UnexpectedEvent {
                event: "executed",
                in_flight,
            });
        }
        package.phase = Phase::Reporting { result };
        package.failures = 0;
        self.current = Some(CurrentStep {
            package: id,
            began: false,
        });
        Ok(())
    }

    /// The report handed out by `next` ended with `outcome`. Once delivered the package is
    /// forgotten entirely (rule 4).
    pub fn reported(&mut self, outcome: ReportOutcome) -> Result<(), ScheduleError> {
        let (id, package) = self.in_flight("reported")?;
        if !matches!(package.phase, Phase::Reporting { .. }) {
            let in_flight = format!("{:?}", package.current_action(id));
            return Err(ScheduleError::UnexpectedEvent {
                event: "reported",
                in_flight,
            });
        }
        match outcome {
            ReportOutcome::Delivered => {
                self.packages.remove(&id);
                self.current = None;
                self.pending_delay = self.pending_delay.saturating_add(self.config.frag_latency);
                if self.packages.is_empty() {
                    self.reset_clock();
                }
            }
            ReportOutcome::Failed => {
                package.failures = package.failures.saturating_add(1);
                self.end_step(id);
            }
        }
        Ok(())
    }

    /// The step of `id` is over: it waits for its next slot, after `FRAG_LATENCY`.
    fn end_step(&mut self, id: PackageId) {
        if let Some(package) = self.packages.get_mut(&id) {
            package.finish_step(self.clock.cycle, &self.config);
            self.rotation.enqueue(id, package, &self.config);
        }
        self.current = None;
        self.pending_delay = self.pending_delay.saturating_add(self.config.frag_latency);
    }

    /// The server's list of packages for this device changed (a PROLOG reply), seen at `now`.
    ///
    /// New packages start downloading from the next cycle; known ones keep their progress
    /// and take the new priority; packages no longer listed are forgotten unless their
    /// action has been handed out, whose result is still reported. Nothing changes if the
    /// set is refused.
    pub fn packages_changed(
        &mut self,
        now: Timestamp,
        specs: &[PackageSpec],
    ) -> Result<(), ScheduleError> {
        let mut listed = BTreeSet::new();
        for spec in specs {
            if !listed.insert(spec.id) {
                return Err(ScheduleError::DuplicatePackage(spec.id));
            }
            if let Some(known) = self.packages.get(&spec.id)
                && known.fragments != spec.fragments
                && !known.has_started_executing()
            {
                return Err(ScheduleError::FragmentCountChanged {
                    package: spec.id,
                    was: known.fragments,
                    now: spec.fragments,
                });
            }
        }
        let current = self.current.map(|step| step.package);
        let withdrawn: Vec<PackageId> = self
            .packages
            .iter()
            .filter(|(id, package)| !listed.contains(*id) && !package.has_started_executing())
            .map(|(id, _)| *id)
            .collect();
        for id in withdrawn {
            if let Some(package) = self.packages.remove(&id) {
                if Some(id) == current {
                    self.current = None;
                } else {
                    self.rotation.dequeue(id, &package);
                }
            }
        }
        let first_cycle = if self.clock.mode.is_some() {
            self.clock.cycle.saturating_add(1)
        } else {
            self.clock.cycle
        };
        for spec in specs {
            match self.packages.get_mut(&spec.id) {
                Some(package) if package.priority != spec.priority => {
                    if Some(spec.id) == current {
                        package.priority = spec.priority;
                    } else {
                        self.rotation.dequeue(spec.id, package);
                        package.priority = spec.priority;
                        self.rotation.enqueue(spec.id, package, &self.config);
                    }
                }
                Some(_) => {}
                None => {
                    let mut package =
                        PackageState::new(spec.priority, spec.fragments, now, first_cycle);
                    self.rotation.enqueue(spec.id, &mut package, &self.config);
                    self.packages.insert(spec.id, package);
                }
            }
        }
        if self.packages.is_empty() {
            self.reset_clock();
        }
        Ok(())
    }
}
