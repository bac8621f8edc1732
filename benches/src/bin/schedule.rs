//! Scheduler throughput: simulate 1,000 packages × 1,000 fragments to completion with
//! `tessera-schedule`'s queue rotation (O(log n) per step) and with its naive reference
//! (a scan of every package at every step, the same semantics), then show how the cost of a
//! step changes from 10 to 1,000 packages.
//!
//! Run: `cargo run --release -p tessera-benches --bin schedule`

use std::time::Duration;

use anyhow::{Context, bail};
use tessera_benches::{Measurement, ratio_line};
use tessera_schedule::simulate::{AllSucceed, run};
use tessera_schedule::{
    PackageId, PackageSpec, Priority, QueueRotation, Rotation, ScheduleConfig, Scheduler,
    Timestamp, reference::ScanRotation,
};

/// Priorities 1..=10 spread over the packages, as OCS consoles assign them.
fn packages(count: u64, fragments: u32) -> Vec<PackageSpec> {
    (0..count)
        .map(|n| PackageSpec {
            id: PackageId(1_716_800_000 + n),
            priority: Priority((n % 10) as u32 + 1),
            fragments,
        })
        .collect()
}

/// Runs a whole deployment; returns the number of actions handed out.
fn simulate<R: Rotation>(specs: &[PackageSpec]) -> anyhow::Result<u64> {
    let config = ScheduleConfig {
        // Deployments last months at OCS's default latencies; only the timeout matters here.
        timeout: 100_000,
        ..ScheduleConfig::default()
    };
    let mut scheduler: Scheduler<R> = Scheduler::new(config);
    scheduler
        .packages_changed(Timestamp(0), specs)
        .context("package set")?;
    let summary = run(
        &mut scheduler,
        Timestamp(0),
        &mut AllSucceed,
        u64::MAX,
        |_, _| {},
    )
    .context("simulation")?;
    Ok(summary.steps)
}

fn expected_steps(specs: &[PackageSpec]) -> u64 {
    // N fragments, one execute, one report per package.
    specs.iter().map(|s| u64::from(s.fragments) + 2).sum()
}

fn per_step(duration: Duration, steps: u64) -> f64 {
    duration.as_secs_f64() * 1e9 / steps as f64
}

fn measure<R: Rotation>(
    name: &str,
    specs: &[PackageSpec],
    runs: usize,
) -> anyhow::Result<Measurement> {
    let expected = expected_steps(specs);
    let mut failure = None;
    let measurement = Measurement::run(name, runs, || match simulate::<R>(specs) {
        Ok(steps) if steps == expected => {}
        Ok(steps) => failure = Some(format!("{name}: {steps} steps, expected {expected}")),
        Err(err) => failure = Some(format!("{name}: {err:#}")),
    });
    if let Some(failure) = failure {
        bail!(failure);
    }
    Ok(measurement)
}

fn main() -> anyhow::Result<()> {
    let specs = packages(1_000, 1_000);
    let steps = expected_steps(&specs);
    println!(
        "schedule: {} packages x 1000 fragments = {steps} steps to completion",
        specs.len()
    );
    let ours = measure::<QueueRotation>("tessera-schedule (queues)", &specs, 5)?;
    let naive = measure::<ScanRotation>("naive reference (scan)", &specs, 1)?;
    for m in [&ours, &naive] {
        println!(
            "  {:<28} {:>12.0} steps/s ({:.1} ns/step, median {:.3?})",
            m.name,
            steps as f64 / m.median().as_secs_f64(),
            per_step(m.median(), steps),
            m.median()
        );
    }
    println!("  goal >= 1,000,000 steps/s");
    println!("{}", ratio_line(&ours, &naive));

    println!("\nper-step cost by package count (about 200,000 steps each):");
    println!(
        "  {:>8} {:>14} {:>14}",
        "packages", "queues ns/step", "naive ns/step"
    );
    for count in [10u64, 100, 1_000] {
        let specs = packages(count, (200_000 / count) as u32);
        let steps = expected_steps(&specs);
        let ours = measure::<QueueRotation>("queues", &specs, 5)?;
        let naive = measure::<ScanRotation>("naive", &specs, 3)?;
        println!(
            "  {count:>8} {:>14.1} {:>14.1}",
            per_step(ours.median(), steps),
            per_step(naive.median(), steps)
        );
    }
    Ok(())
}
