//! The naive reference: the same semantics read straight off the rules, scanning every
//! package at every step and walking cycle by cycle (O(n) per step, O(cycles) per gap).
//! It is the oracle of the property tests and the baseline of the benchmark; use
//! [`crate::Scheduler`] (with [`crate::QueueRotation`]) for real work.

use std::collections::BTreeMap;

use crate::config::ScheduleConfig;
use crate::cycles::{CycleClock, CycleMode, is_slot, latency_between};
use crate::model::PackageId;
use crate::package::PackageState;
use crate::rotation::Rotation;
use crate::scheduler::Scheduler;

/// The scheduler driven by [`ScanRotation`].
pub type ReferenceScheduler = Scheduler<ScanRotation>;

/// Scans all packages in ID order for the first one eligible in the current cycle. It keeps
/// no state: the scheduler only asks while no package is stepping, so every package waits.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScanRotation;

/// Cycles the scan walks before giving up; far beyond any backoff or period in practice.
const MAX_CYCLES_WALKED: u64 = 1 << 24;

fn eligible(package: &PackageState, cycle: u64, mode: CycleMode, period_length: u64) -> bool {
    if package.not_before_cycle > cycle {
        return false;
    }
    match mode {
        CycleMode::Absolute => package.priority.is_absolute(),
        CycleMode::Modulo => {
            !package.priority.is_absolute()
                && is_slot(cycle, package.priority.stride(period_length), period_length)
        }
    }
}

impl Rotation for ScanRotation {
    fn enqueue(&mut self, _id: PackageId, _package: &mut PackageState, _config: &ScheduleConfig) {}

    fn dequeue(&mut self, _id: PackageId, _package: &PackageState) {}

    fn select(
        &mut self,
        packages: &mut BTreeMap<PackageId, PackageState>,
        clock: &mut CycleClock,
        config: &ScheduleConfig,
        delay: &mut u64,
    ) -> Option<PackageId> {
        let period_length = config.cycles_per_period();
        if packages.is_empty() {
            return None;
        }
        for _ in 0..MAX_CYCLES_WALKED {
            let cycle = clock.cycle;
            let mode = *clock.mode.get_or_insert_with(|| {
                let absolute_due = packages
                    .values()
                    .any(|p| eligible(p, cycle, CycleMode::Absolute, period_length));
                if absolute_due {
                    CycleMode::Absolute
                } else {
                    CycleMode::Modulo
                }
            });
            let found = packages
                .iter()
                .find(|(_, p)| eligible(p, cycle, mode, period_length))
                .map(|(id, _)| *id);
            if found.is_some() {
                return found;
            }
            let next = cycle.saturating_add(1);
            *delay = delay.saturating_add(latency_between(config, cycle, mode, next));
            *clock = CycleClock {
                cycle: next,
                mode: None,
            };
        }
        None
    }
}
