//! The state machine: `next(now)` says what to do, events say how it went.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::config::ScheduleConfig;
use crate::cycles::CycleClock;
use crate::error::ScheduleError;
use crate::model::{
    Action, FetchOutcome, PackageId, PackageSpec, ReportOutcome, ResultCode, Timestamp,
};
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
        let step = if let Some(step) = self.current {
            step
        } else {
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
    fn in_flight(
        &mut self,
        event: &'static str,
    ) -> Result<(PackageId, &mut PackageState), ScheduleError> {
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

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;
    use crate::model::Priority;

    fn spec(id: u64, priority: u32, fragments: u32) -> PackageSpec {
        PackageSpec {
            id: PackageId(id),
            priority: Priority(priority),
            fragments,
        }
    }

    fn fast(specs: &[PackageSpec]) -> Scheduler {
        let mut scheduler = Scheduler::new(ScheduleConfig::without_latencies(NonZeroU32::MIN));
        scheduler
            .packages_changed(Timestamp(0), specs)
            .unwrap_or_else(|e| panic!("{e}"));
        scheduler
    }

    #[test]
    fn execute_is_handed_out_once_even_across_a_crash() {
        let mut scheduler = fast(&[spec(1, 1, 0)]);
        let package = PackageId(1);
        assert_eq!(scheduler.next(Timestamp(0)), Action::Execute { package });
        // The agent persists here, then dies while the action runs.
        let mut resumed: Scheduler =
            Scheduler::from_json(&scheduler.to_json()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            resumed.next(Timestamp(5)),
            Action::Report {
                package,
                result: ResultCode::ErrExecuteInterrupted
            }
        );
        assert!(resumed.executed(ResultCode::Success).is_err());
    }

    #[test]
    fn asking_again_repeats_a_fetch_and_a_report() {
        let mut scheduler = fast(&[spec(1, 1, 1)]);
        let fetch = scheduler.next(Timestamp(0));
        assert_eq!(scheduler.next(Timestamp(1)), fetch);
        scheduler
            .fetched(FetchOutcome::Verified)
            .unwrap_or_else(|e| panic!("{e}"));
        scheduler.next(Timestamp(1));
        scheduler
            .executed(ResultCode::ErrExecute)
            .unwrap_or_else(|e| panic!("{e}"));
        let report = scheduler.next(Timestamp(1));
        assert_eq!(scheduler.next(Timestamp(2)), report);
    }

    #[test]
    fn events_that_answer_nothing_are_refused() {
        let mut scheduler = fast(&[spec(1, 1, 1)]);
        let err = scheduler.fetched(FetchOutcome::Verified).err();
        assert!(err.is_some_and(|e| e.to_string().contains("nothing was handed out")));
        scheduler.next(Timestamp(0));
        assert!(scheduler.executed(ResultCode::Success).is_err());
        assert!(scheduler.reported(ReportOutcome::Delivered).is_err());
        assert!(scheduler.fetched(FetchOutcome::Verified).is_ok());
    }

    #[test]
    fn a_finished_package_leaves_nothing_behind() {
        let mut scheduler = fast(&[spec(1, 0, 0), spec(2, 1, 0)]);
        for _ in 0..2 {
            scheduler.next(Timestamp(0));
            scheduler
                .executed(ResultCode::Success)
                .unwrap_or_else(|e| panic!("{e}"));
            scheduler.next(Timestamp(0));
            scheduler
                .reported(ReportOutcome::Delivered)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(scheduler.packages().count(), 0);
        assert_eq!(scheduler.next(Timestamp(0)), Action::Idle);
        let json = String::from_utf8(scheduler.to_json()).unwrap_or_default();
        assert!(json.contains("\"packages\":{}"), "{json}");
        // A new package after the last one starts a fresh period at once.
        scheduler
            .packages_changed(Timestamp(9), &[spec(3, 1, 0)])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(scheduler.clock(), CycleClock::default());
    }

    #[test]
    fn duplicate_ids_and_changed_fragment_counts_are_refused_without_change() {
        let mut scheduler = fast(&[spec(1, 1, 3)]);
        let before = scheduler.to_json();
        assert_eq!(
            scheduler.packages_changed(Timestamp(1), &[spec(2, 1, 1), spec(2, 1, 1)]),
            Err(ScheduleError::DuplicatePackage(PackageId(2)))
        );
        let changed = scheduler.packages_changed(Timestamp(1), &[spec(1, 1, 4)]);
        assert!(matches!(
            changed,
            Err(ScheduleError::FragmentCountChanged { .. })
        ));
        assert_eq!(scheduler.to_json(), before);
    }

    #[test]
    fn withdrawn_packages_are_forgotten_unless_their_action_ran() {
        let mut scheduler = fast(&[spec(1, 1, 0), spec(2, 1, 5)]);
        assert_eq!(
            scheduler.next(Timestamp(0)),
            Action::Execute {
                package: PackageId(1)
            }
        );
        scheduler
            .executed(ResultCode::Success)
            .unwrap_or_else(|e| panic!("{e}"));
        scheduler
            .packages_changed(Timestamp(1), &[])
            .unwrap_or_else(|e| panic!("{e}"));
        let ids: Vec<PackageId> = scheduler.packages().map(|(id, _)| id).collect();
        assert_eq!(ids, [PackageId(1)]);
        assert_eq!(
            scheduler.next(Timestamp(1)),
            Action::Report {
                package: PackageId(1),
                result: ResultCode::Success
            }
        );
    }

    #[test]
    fn a_new_priority_takes_effect_at_the_next_slot() {
        let mut scheduler = fast(&[spec(1, 1, 3), spec(2, 1, 3)]);
        scheduler
            .packages_changed(Timestamp(0), &[spec(1, 1, 3), spec(2, 0, 3)])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            scheduler.next(Timestamp(0)),
            Action::Fetch {
                package: PackageId(2),
                fragment: 1
            }
        );
    }

    #[test]
    fn off_means_idle_and_keeps_the_state() {
        let mut scheduler = fast(&[spec(1, 1, 1)]);
        scheduler.set_config(ScheduleConfig {
            on: false,
            ..*scheduler.config()
        });
        assert_eq!(scheduler.next(Timestamp(0)), Action::Idle);
        assert_eq!(scheduler.packages().count(), 1);
    }

    #[test]
    fn corrupt_states_are_refused_with_the_reason() {
        let bad = br#"{"format":1,"config":{},"clock":{"cycle":0,"mode":null},"pending_delay":0,
            "not_before":null,"current":{"package":9,"began":true},"packages":{}}"#;
        let err = Scheduler::<QueueRotation>::from_json(bad)
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|m| m.contains("package 9")));
        let bad = br#"{"format":1,"config":{},"clock":{"cycle":0,"mode":null},"pending_delay":0,
            "not_before":null,"current":null,"packages":{"4":{"priority":1,"fragments":1,
            "phase":"downloading","verified":3,"first_seen":0,"failures":0,"not_before_cycle":0}}}"#;
        let err = Scheduler::<QueueRotation>::from_json(bad)
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_ref()
                .is_some_and(|m| m.contains("3 fragments verified out of 1")),
            "{err:?}"
        );
        assert!(Scheduler::<QueueRotation>::from_json(b"{").is_err());
    }
}
