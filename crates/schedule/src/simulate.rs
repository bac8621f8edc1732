//! Running the state machine to completion against modelled outcomes: the simulator admins
//! use to see what a deployment will cost, and the driver of the tests and the benchmark.

use serde::{Deserialize, Serialize};

use crate::config::ScheduleConfig;
use crate::error::ScheduleError;
use crate::model::{
    Action, FetchOutcome, PackageId, PackageSpec, ReportOutcome, ResultCode, Timestamp,
};
use crate::rotation::Rotation;
use crate::scheduler::Scheduler;

/// How the outside world answers the scheduler's actions in a simulation.
pub trait Outcomes {
    /// The outcome of fetching `fragment` of `package`.
    fn fetch(&mut self, package: PackageId, fragment: u32) -> FetchOutcome;
    /// The result of running `package`'s action.
    fn execute(&mut self, package: PackageId) -> ResultCode;
    /// Whether sending `result` for `package` reaches the server.
    fn report(&mut self, package: PackageId, result: ResultCode) -> ReportOutcome;
}

/// Every fetch verifies, every action succeeds, every report is delivered.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllSucceed;

impl Outcomes for AllSucceed {
    fn fetch(&mut self, _package: PackageId, _fragment: u32) -> FetchOutcome {
        FetchOutcome::Verified
    }
    fn execute(&mut self, _package: PackageId) -> ResultCode {
        ResultCode::Success
    }
    fn report(&mut self, _package: PackageId, _result: ResultCode) -> ReportOutcome {
        ReportOutcome::Delivered
    }
}

/// One action of a timeline and when it was handed out. Actions take no time in a
/// simulation: the latencies are the whole cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// When.
    pub at: Timestamp,
    /// What (never `Wait` or `Idle`).
    #[serde(flatten)]
    pub action: Action,
}

/// The end of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Actions handed out.
    pub steps: u64,
    /// When the scheduler went idle.
    pub finished_at: Timestamp,
}

/// Drives `scheduler` from `start` until it is idle, answering each action from `outcomes`
/// and passing each to `record`. Refuses to go beyond `max_steps` actions (a report that
/// never gets through would otherwise run forever).
pub fn run<R: Rotation>(
    scheduler: &mut Scheduler<R>,
    start: Timestamp,
    outcomes: &mut impl Outcomes,
    max_steps: u64,
    mut record: impl FnMut(Timestamp, Action),
) -> Result<RunSummary, ScheduleError> {
    let mut now = start;
    let mut steps = 0u64;
    loop {
        let action = scheduler.next(now);
        match action {
            Action::Wait { until } => {
                now = until;
                continue;
            }
            Action::Idle => {
                return Ok(RunSummary {
                    steps,
                    finished_at: now,
                });
            }
            Action::Fetch { package, fragment } => {
                scheduler.fetched(outcomes.fetch(package, fragment))?;
            }
            Action::Execute { package } => scheduler.executed(outcomes.execute(package))?,
            Action::Report { package, result } => {
                scheduler.reported(outcomes.report(package, result))?;
            }
        }
        record(now, action);
        steps += 1;
        if steps >= max_steps {
            return Err(ScheduleError::SimulationTooLong { steps });
        }
    }
}

/// A simulated deployment: every action with its time, and the total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Simulation {
    /// The actions in order.
    pub timeline: Vec<TimelineEntry>,
    /// When the simulation started.
    pub started_at: Timestamp,
    /// When the last package was reported.
    pub finished_at: Timestamp,
}

impl Simulation {
    /// Seconds from start to the last report.
    pub fn total_seconds(&self) -> u64 {
        self.finished_at.seconds_since(self.started_at)
    }
}

/// Simulates delivering `packages` with `config` from `start`, everything succeeding.
pub fn simulate(
    config: ScheduleConfig,
    packages: &[PackageSpec],
    start: Timestamp,
    max_steps: u64,
) -> Result<Simulation, ScheduleError> {
    let mut scheduler: Scheduler = Scheduler::new(config);
    scheduler.packages_changed(start, packages)?;
    let mut timeline = Vec::new();
    let summary = run(
        &mut scheduler,
        start,
        &mut AllSucceed,
        max_steps,
        |at, action| {
            timeline.push(TimelineEntry { at, action });
        },
    )?;
    let finished_at = timeline
        .last()
        .map_or(summary.finished_at, |entry| entry.at);
    Ok(Simulation {
        timeline,
        started_at: start,
        finished_at,
    })
}
