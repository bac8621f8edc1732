//! Properties over random configurations, package sets and outcomes, checked against the
//! naive reference implementation where an exact answer is needed.

use std::collections::BTreeMap;
use std::num::NonZeroU32;

use proptest::prelude::*;
use tessera_schedule::reference::ReferenceScheduler;
use tessera_schedule::simulate::{AllSucceed, Outcomes, run};
use tessera_schedule::{
    Action, FetchOutcome, PackageId, PackageSpec, Priority, ReportOutcome, ResultCode, Rotation,
    ScheduleConfig, Scheduler, Timestamp,
};

const MAX_STEPS: u64 = 20_000;

/// Outcomes drawn in order from a fixed pattern (both implementations see the same answers
/// as long as they ask the same questions).
#[derive(Clone)]
struct Pattern {
    bytes: Vec<u8>,
    at: usize,
    /// Packages whose fetches always fail.
    doomed: Vec<u64>,
    /// Failed reports so far, per package: the server comes back after three.
    report_failures: BTreeMap<PackageId, u32>,
}

impl Pattern {
    fn draw(&mut self) -> u8 {
        let byte = self
            .bytes
            .get(self.at % self.bytes.len().max(1))
            .copied()
            .unwrap_or(1);
        self.at += 1;
        byte
    }
}

impl Outcomes for Pattern {
    fn fetch(&mut self, package: PackageId, _fragment: u32) -> FetchOutcome {
        if self.doomed.contains(&package.0) || self.draw().is_multiple_of(5) {
            FetchOutcome::Failed
        } else {
            FetchOutcome::Verified
        }
    }
    fn execute(&mut self, _package: PackageId) -> ResultCode {
        if self.draw().is_multiple_of(7) {
            ResultCode::ErrExecute
        } else {
            ResultCode::Success
        }
    }
    fn report(&mut self, package: PackageId, _result: ResultCode) -> ReportOutcome {
        let failures = self.report_failures.entry(package).or_default();
        if *failures < 3
            && self
                .bytes
                .get(self.at % self.bytes.len().max(1))
                .is_some_and(|b| b.is_multiple_of(6))
        {
            self.at += 1;
            *failures += 1;
            ReportOutcome::Failed
        } else {
            self.at += 1;
            ReportOutcome::Delivered
        }
    }
}

fn arb_config() -> impl Strategy<Value = ScheduleConfig> {
    (
        1u32..12,
        0u64..50,
        0u64..200,
        0u64..500,
        1u32..4,
        1u32..6,
        0u32..20,
    )
        .prop_map(
            |(period, frag, cycle, period_latency, timeout, failures, backoff)| ScheduleConfig {
                period_length: NonZeroU32::new(period).unwrap_or(NonZeroU32::MIN),
                frag_latency: frag,
                cycle_latency: cycle,
                period_latency,
                timeout,
                max_fetch_failures: NonZeroU32::new(failures).unwrap_or(NonZeroU32::MIN),
                max_backoff_cycles: backoff,
                ..ScheduleConfig::default()
            },
        )
}

fn arb_packages() -> impl Strategy<Value = Vec<PackageSpec>> {
    proptest::collection::btree_map(1u64..40, (0u32..14, 0u32..6), 1..8).prop_map(|map| {
        map.into_iter()
            .map(|(id, (priority, fragments))| PackageSpec {
                id: PackageId(id),
                // Priority 0 less often, so that mixes are common.
                priority: Priority(if priority == 13 { 0 } else { priority }),
                fragments,
            })
            .collect()
    })
}

type Trace = Vec<(Timestamp, Action)>;

fn drive<R: Rotation>(
    config: ScheduleConfig,
    specs: &[PackageSpec],
    outcomes: &mut impl Outcomes,
) -> Result<Trace, String> {
    let mut scheduler: Scheduler<R> = Scheduler::new(config);
    scheduler
        .packages_changed(Timestamp(0), specs)
        .map_err(|e| e.to_string())?;
    let mut trace = Vec::new();
    run(
        &mut scheduler,
        Timestamp(0),
        outcomes,
        MAX_STEPS,
        |at, action| trace.push((at, action)),
    )
    .map_err(|e| e.to_string())?;
    Ok(trace)
}

/// Drives the fast scheduler but persists and reloads it after every event and after every
/// answer of `next` other than `Execute`.
fn drive_resuming(
    config: ScheduleConfig,
    specs: &[PackageSpec],
    outcomes: &mut impl Outcomes,
) -> Result<Trace, String> {
    let mut scheduler: Scheduler = Scheduler::new(config);
    scheduler
        .packages_changed(Timestamp(0), specs)
        .map_err(|e| e.to_string())?;
    let mut now = Timestamp(0);
    let mut trace = Vec::new();
    for _ in 0..MAX_STEPS * 3 {
        let action = scheduler.next(now);
        if !matches!(action, Action::Execute { .. } | Action::Idle) {
            // Also crash between `next` and the event (Execute must be persisted by the
            // agent too, but resuming it reports ERR_EXECUTE_INTERRUPTED by design).
            scheduler = Scheduler::from_json(&scheduler.to_json()).map_err(|e| e.to_string())?;
        }
        let event = match action {
            Action::Idle => return Ok(trace),
            Action::Wait { until } => {
                now = until;
                continue;
            }
            Action::Fetch { package, fragment } => {
                scheduler.fetched(outcomes.fetch(package, fragment))
            }
            Action::Execute { package } => scheduler.executed(outcomes.execute(package)),
            Action::Report { package, result } => {
                scheduler.reported(outcomes.report(package, result))
            }
        };
        event.map_err(|e| e.to_string())?;
        trace.push((now, action));
        // Crash and resume after every event.
        scheduler = Scheduler::from_json(&scheduler.to_json()).map_err(|e| e.to_string())?;
    }
    Err("did not finish".to_owned())
}

/// Every package's final report, in order of arrival.
fn final_reports(trace: &Trace) -> BTreeMap<PackageId, Vec<ResultCode>> {
    let mut reports: BTreeMap<PackageId, Vec<ResultCode>> = BTreeMap::new();
    for (_, action) in trace {
        if let Action::Report { package, result } = action {
            reports.entry(*package).or_default().push(*result);
        }
    }
    reports
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn fast_scheduler_matches_the_naive_reference(
        config in arb_config(),
        specs in arb_packages(),
        bytes in proptest::collection::vec(any::<u8>(), 1..64),
    ) {
        let pattern = Pattern { bytes, at: 0, doomed: Vec::new(), report_failures: BTreeMap::new() };
        let fast = drive::<tessera_schedule::QueueRotation>(config, &specs, &mut pattern.clone());
        let naive = drive::<tessera_schedule::reference::ScanRotation>(config, &specs, &mut pattern.clone());
        prop_assert_eq!(fast, naive);
    }

    #[test]
    fn with_successful_fetches_every_package_completes_exactly_once(
        config in arb_config(),
        specs in arb_packages(),
    ) {
        // No timeouts: generous TIMEOUT.
        let config = ScheduleConfig { timeout: 10_000, ..config };
        let trace = drive::<tessera_schedule::QueueRotation>(config, &specs, &mut AllSucceed)
            .map_err(TestCaseError::fail)?;
        for spec in &specs {
            let steps: Vec<Action> = trace.iter().map(|(_, a)| *a).filter(|a| a.package() == Some(spec.id)).collect();
            let mut expected: Vec<Action> = (1..=spec.fragments)
                .map(|fragment| Action::Fetch { package: spec.id, fragment })
                .collect();
            expected.push(Action::Execute { package: spec.id });
            expected.push(Action::Report { package: spec.id, result: ResultCode::Success });
            prop_assert_eq!(steps, expected);
        }
    }

    #[test]
    fn order_respects_priority(config in arb_config(), specs in arb_packages()) {
        let config = ScheduleConfig { timeout: 10_000, ..config };
        let period = u64::from(config.period_length.get());
        let mut scheduler: Scheduler = Scheduler::new(config);
        scheduler.packages_changed(Timestamp(0), &specs).map_err(|e| TestCaseError::fail(e.to_string()))?;
        // (cycle, package) of every step; an Execute and its Report are one step.
        let mut steps: Vec<(u64, PackageId)> = Vec::new();
        let mut now = Timestamp(0);
        loop {
            let action = scheduler.next(now);
            match action {
                Action::Idle => break,
                Action::Wait { until } => now = until,
                Action::Fetch { package, .. } => {
                    steps.push((scheduler.clock().cycle, package));
                    scheduler.fetched(FetchOutcome::Verified).map_err(|e| TestCaseError::fail(e.to_string()))?;
                }
                Action::Execute { package } => {
                    steps.push((scheduler.clock().cycle, package));
                    scheduler.executed(ResultCode::Success).map_err(|e| TestCaseError::fail(e.to_string()))?;
                }
                Action::Report { .. } => scheduler.reported(ReportOutcome::Delivered).map_err(|e| TestCaseError::fail(e.to_string()))?,
            }
        }
        let priority = |id: PackageId| specs.iter().find(|s| s.id == id).map_or(1, |s| s.priority.0);
        // Priority 0 is absolute: no other package steps before the last priority-0 step.
        if let Some(last_absolute) = steps.iter().rposition(|&(_, id)| priority(id) == 0) {
            prop_assert!(steps[..last_absolute].iter().all(|&(_, id)| priority(id) == 0));
        }
        // Inside a cycle, packages go in ID order; cycles never go back.
        for pair in steps.windows(2) {
            prop_assert!(pair[0].0 < pair[1].0 || (pair[0].0 == pair[1].0 && pair[0].1 < pair[1].1));
        }
        // A package steps only on its slots (index multiple of min(PRI, PERIOD_LENGTH)),
        // and misses none of them once priority-0 packages are done.
        let absolute_done_at = steps.iter().filter(|&&(_, id)| priority(id) == 0).map(|&(c, _)| c + 1).max().unwrap_or(0);
        for spec in specs.iter().filter(|s| s.priority.0 != 0) {
            let stride = u64::from(spec.priority.0).min(period);
            let cycles: Vec<u64> = steps.iter().filter(|&&(_, id)| id == spec.id).map(|&(c, _)| c).collect();
            prop_assert!(cycles.iter().all(|c| (c % period + 1) % stride == 0));
            let slots: Vec<u64> = (absolute_done_at..).filter(|c| (c % period + 1) % stride == 0).take(cycles.len()).collect();
            prop_assert_eq!(cycles, slots);
        }
    }

    #[test]
    fn no_package_starves_even_when_some_always_fail(
        config in arb_config(),
        specs in arb_packages(),
        doomed_picks in proptest::collection::vec(any::<prop::sample::Index>(), 0..3),
        bytes in proptest::collection::vec(any::<u8>(), 1..64),
    ) {
        let doomed: Vec<u64> = doomed_picks.iter().map(|pick| specs[pick.index(specs.len())].id.0).collect();
        let mut pattern = Pattern { bytes, at: 0, doomed: doomed.clone(), report_failures: BTreeMap::new() };
        let trace = drive::<tessera_schedule::QueueRotation>(config, &specs, &mut pattern)
            .map_err(TestCaseError::fail)?;
        let reports = final_reports(&trace);
        for spec in &specs {
            let codes = reports.get(&spec.id);
            prop_assert!(codes.is_some(), "package {} never reported", spec.id);
            if doomed.contains(&spec.id.0) && spec.fragments > 0 {
                let last = codes.and_then(|c| c.last()).copied();
                prop_assert!(matches!(last, Some(ResultCode::ErrDownloadPack | ResultCode::ErrTimeout)));
            }
        }
        // Nothing is fetched again once verified (fragment numbers never go back), nothing
        // is executed twice.
        let mut last_fragment: BTreeMap<PackageId, u32> = BTreeMap::new();
        let mut executions: BTreeMap<PackageId, u32> = BTreeMap::new();
        for (_, action) in &trace {
            match action {
                Action::Fetch { package, fragment } => {
                    let last = last_fragment.entry(*package).or_insert(1);
                    prop_assert!(*fragment >= *last);
                    *last = *fragment;
                }
                Action::Execute { package } => *executions.entry(*package).or_default() += 1,
                _ => {}
            }
        }
        prop_assert!(executions.values().all(|&n| n == 1));
    }

    #[test]
    fn resuming_after_any_event_gives_the_same_trace(
        config in arb_config(),
        specs in arb_packages(),
        bytes in proptest::collection::vec(any::<u8>(), 1..64),
    ) {
        let pattern = Pattern { bytes, at: 0, doomed: Vec::new(), report_failures: BTreeMap::new() };
        let straight = drive::<tessera_schedule::QueueRotation>(config, &specs, &mut pattern.clone());
        let resumed = drive_resuming(config, &specs, &mut pattern.clone());
        prop_assert_eq!(straight, resumed);
    }

    #[test]
    fn loading_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        tessera_schedule::fuzzing::load_and_step(&bytes);
    }

    #[test]
    fn loading_corrupted_real_states_never_panics(
        config in arb_config(),
        specs in arb_packages(),
        steps in 0usize..40,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), prop::sample::select(b"0123456789-9e\"{}[],:".to_vec())), 1..6),
        tail in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let mut scheduler: Scheduler = Scheduler::new(config);
        scheduler.packages_changed(Timestamp(0), &specs).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut now = Timestamp(0);
        for _ in 0..steps {
            match scheduler.next(now) {
                Action::Idle => break,
                Action::Wait { until } => now = until,
                Action::Fetch { .. } => { let _ = scheduler.fetched(FetchOutcome::Verified); }
                Action::Execute { .. } => { let _ = scheduler.executed(ResultCode::Success); }
                Action::Report { .. } => { let _ = scheduler.reported(ReportOutcome::Delivered); }
            }
        }
        let mut json = scheduler.to_json();
        for (index, byte) in edits {
            let at = index.index(json.len());
            json[at] = byte;
        }
        json.push(0);
        json.extend(tail);
        tessera_schedule::fuzzing::load_and_step(&json);
    }
}

#[test]
fn the_naive_reference_is_exported_for_benchmarks() {
    let mut reference: ReferenceScheduler = Scheduler::new(ScheduleConfig::default());
    assert_eq!(reference.next(Timestamp(0)), Action::Idle);
}
