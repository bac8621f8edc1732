//! Exact traces for small configurations, derived by hand from the OCS algorithm
//! (spec `ocs-protocol.md` §4.5–4.6) and from Tessera's rules (docs/schedule.md).
//! Each line is `time action`; `F id#n` fetch, `X id` execute, `R id CODE` report.

use std::num::NonZeroU32;

use tessera_schedule::simulate::{Outcomes, run};
use tessera_schedule::{
    Action, FetchOutcome, PackageId, PackageSpec, Priority, ReportOutcome, ResultCode,
    ScheduleConfig, Scheduler, Timestamp,
};

fn config(period_length: u32, frag: u64, cycle: u64, period: u64) -> ScheduleConfig {
    ScheduleConfig {
        frag_latency: frag,
        cycle_latency: cycle,
        period_latency: period,
        ..ScheduleConfig::without_latencies(NonZeroU32::new(period_length).expect("non-zero"))
    }
}

fn spec(id: u64, priority: u32, fragments: u32) -> PackageSpec {
    PackageSpec {
        id: PackageId(id),
        priority: Priority(priority),
        fragments,
    }
}

/// Fetches of the listed packages always fail; everything else succeeds.
struct FailingPackages(Vec<u64>);

impl Outcomes for FailingPackages {
    fn fetch(&mut self, package: PackageId, _fragment: u32) -> FetchOutcome {
        if self.0.contains(&package.0) {
            FetchOutcome::Failed
        } else {
            FetchOutcome::Verified
        }
    }
    fn execute(&mut self, _package: PackageId) -> ResultCode {
        ResultCode::Success
    }
    fn report(&mut self, _package: PackageId, _result: ResultCode) -> ReportOutcome {
        ReportOutcome::Delivered
    }
}

fn line(at: Timestamp, action: Action) -> String {
    match action {
        Action::Fetch { package, fragment } => format!("{} F {package}#{fragment}", at.0),
        Action::Execute { package } => format!("{} X {package}", at.0),
        Action::Report { package, result } => format!("{} R {package} {result}", at.0),
        other => format!("{} unexpected {other:?}", at.0),
    }
}

fn trace_with(
    config: ScheduleConfig,
    specs: &[PackageSpec],
    outcomes: &mut impl Outcomes,
    max: u64,
) -> Vec<String> {
    let mut scheduler: Scheduler = Scheduler::new(config);
    scheduler
        .packages_changed(Timestamp(0), specs)
        .expect("valid package set");
    let mut lines = Vec::new();
    match run(&mut scheduler, Timestamp(0), outcomes, max, |at, action| {
        lines.push(line(at, action));
    }) {
        Ok(_) => {}
        Err(err) => lines.push(format!("stopped: {err}")),
    }
    lines
}

fn trace(config: ScheduleConfig, specs: &[PackageSpec]) -> Vec<String> {
    trace_with(config, specs, &mut FailingPackages(Vec::new()), 10_000)
}

#[test]
fn period_length_1_zero_latencies_one_package() {
    // Every cycle is a whole period; 2 fragments take 3 steps.
    assert_eq!(
        trace(config(1, 0, 0, 0), &[spec(7, 1, 2)]),
        ["0 F 7#1", "0 F 7#2", "0 X 7", "0 R 7 SUCCESS"]
    );
}

#[test]
fn period_length_1_latencies_add_up_per_step_cycle_and_period() {
    // Each step: +2 (frag); each cycle: +10; each period (= cycle): +100.
    assert_eq!(
        trace(config(1, 2, 10, 100), &[spec(7, 1, 2)]),
        ["0 F 7#1", "112 F 7#2", "224 X 7", "224 R 7 SUCCESS"]
    );
}

#[test]
fn zero_fragments_execute_at_the_first_step() {
    assert_eq!(
        trace(config(10, 5, 5, 5), &[spec(3, 1, 0)]),
        ["0 X 3", "0 R 3 SUCCESS"]
    );
}

#[test]
fn period_length_10_mixed_priorities_in_id_order() {
    // Cycle 1: A#1 (+1) then +10. Cycle 2: A#2, B#1 (+1 each) then +10.
    // Cycle 3: A executes. Cycle 4: B executes.
    assert_eq!(
        trace(config(10, 1, 10, 100), &[spec(1, 1, 2), spec(2, 2, 1)]),
        [
            "0 F 1#1",
            "11 F 1#2",
            "12 F 2#1",
            "23 X 1",
            "23 R 1 SUCCESS",
            "34 X 2",
            "34 R 2 SUCCESS",
        ]
    );
}

#[test]
fn period_length_10_modulo_rule_across_periods() {
    // PRI 3 steps on cycles 3, 6, 9; PRI 5 on 5, 10; only CYCLE_LATENCY=1 so the time is
    // the number of cycles ended; PERIOD_LATENCY 100 after cycle 10.
    assert_eq!(
        trace(config(10, 0, 1, 100), &[spec(1, 3, 3), spec(2, 5, 1)]),
        [
            "2 F 1#1",
            "4 F 2#1",
            "5 F 1#2",
            "8 F 1#3",
            "9 X 2",
            "9 R 2 SUCCESS",
            "112 X 1",
            "112 R 1 SUCCESS",
        ]
    );
}

#[test]
fn priority_0_is_absolute_and_skips_cycle_latency() {
    // PERIOD_LENGTH 3: the PRI 0 package takes cycles 1-3 (no CYCLE_LATENCY), the period
    // ends (+100), then the PRI 1 package runs in the next period.
    assert_eq!(
        trace(config(3, 1, 10, 100), &[spec(1, 1, 1), spec(5, 0, 2)]),
        [
            "0 F 5#1",
            "1 F 5#2",
            "2 X 5",
            "2 R 5 SUCCESS",
            "103 F 1#1",
            "114 X 1",
            "114 R 1 SUCCESS",
        ]
    );
}

#[test]
fn others_resume_in_the_cycle_after_priority_0_finishes() {
    // PERIOD_LENGTH 4: PRI 0 finishes in cycle 1; PRI 2 steps on cycles 2 and 4.
    assert_eq!(
        trace(config(4, 1, 10, 100), &[spec(1, 2, 1), spec(5, 0, 0)]),
        [
            "0 X 5",
            "0 R 5 SUCCESS",
            "1 F 1#1",
            "22 X 1",
            "22 R 1 SUCCESS"
        ]
    );
}

#[test]
fn several_priority_0_packages_share_each_cycle_in_id_order() {
    assert_eq!(
        trace(
            config(10, 0, 0, 0),
            &[spec(9, 0, 1), spec(4, 0, 1), spec(1, 1, 0)]
        ),
        [
            "0 F 4#1",
            "0 F 9#1",
            "0 X 4",
            "0 R 4 SUCCESS",
            "0 X 9",
            "0 R 9 SUCCESS",
            "0 X 1",
            "0 R 1 SUCCESS",
        ]
    );
}

#[test]
fn rule_1_priority_above_period_length_steps_once_per_period() {
    // PERIOD_LENGTH 2, PRI 5 → one step per period, on its last cycle. OCS: never.
    assert_eq!(
        trace(config(2, 1, 10, 100), &[spec(1, 5, 1)]),
        ["10 F 1#1", "131 X 1", "131 R 1 SUCCESS"]
    );
}

#[test]
fn rule_2_failing_priority_0_backs_off_and_lets_others_progress() {
    let failing = &mut FailingPackages(vec![9]);
    let lines = trace_with(
        config(1, 0, 0, 0),
        &[spec(9, 0, 1), spec(1, 1, 1)],
        failing,
        10_000,
    );
    // Cycle 0: P fails (backs off 1 cycle); cycle 1: N; cycle 2: P fails (backs off 2);
    // cycles 3-4: N executes and reports; P keeps failing until rule 3 ends it.
    assert_eq!(
        lines[..5],
        ["0 F 9#1", "0 F 1#1", "0 F 9#1", "0 X 1", "0 R 1 SUCCESS"]
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("0 R 9 ERR_DOWNLOAD_PACK")
    );
    assert_eq!(lines.iter().filter(|l| l.as_str() == "0 F 9#1").count(), 10);
}

#[test]
fn rule_3_bounded_retries_with_backoff_then_report() {
    let config = ScheduleConfig {
        max_fetch_failures: NonZeroU32::new(3).expect("non-zero"),
        ..config(1, 1, 10, 0)
    };
    // Fail at cycle 0 (+1, skip cycle 1), at cycle 2 (+1, skip 3-4), at cycle 5: give up.
    assert_eq!(
        trace_with(config, &[spec(1, 1, 2)], &mut FailingPackages(vec![1]), 100),
        [
            "0 F 1#1",
            "21 F 1#1",
            "52 F 1#1",
            "52 R 1 ERR_DOWNLOAD_PACK"
        ]
    );
}

#[test]
fn timeout_ends_a_package_first_seen_more_than_timeout_days_ago() {
    let config = ScheduleConfig {
        timeout: 1,
        ..config(1, 0, 50_000, 0)
    };
    assert_eq!(
        trace(config, &[spec(1, 1, 5)]),
        ["0 F 1#1", "50000 F 1#2", "100000 R 1 ERR_TIMEOUT"]
    );
}

#[test]
fn empty_cycles_before_the_first_slot_cost_cycle_latency() {
    // PRI 4 in a period of 4: cycles 1-3 are empty (3 × 7 s).
    assert_eq!(
        trace(config(4, 0, 7, 0), &[spec(1, 4, 0)]),
        ["21 X 1", "21 R 1 SUCCESS"]
    );
}
