//! Who steps next: the rotation over packages waiting for their slot.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::config::ScheduleConfig;
use crate::cycles::{CycleClock, CycleMode, latency_between, next_slot_at_or_after};
use crate::model::PackageId;
use crate::package::PackageState;

/// A strategy for picking the next package to step. [`QueueRotation`] is the one to use;
/// [`crate::reference::ScanRotation`] is the naive executable specification it is tested
/// and benchmarked against. Both must give the same answers on the same inputs.
pub trait Rotation: Default + Clone + fmt::Debug {
    /// `package` waits for its next slot (at or after its `not_before_cycle`).
    fn enqueue(&mut self, id: PackageId, package: &mut PackageState, config: &ScheduleConfig);

    /// `package` no longer waits (removed, or its priority changes).
    fn dequeue(&mut self, id: PackageId, package: &PackageState);

    /// Takes the next package to step out of the rotation, advancing `clock` over the
    /// cycles that end on the way and adding the latencies they cost to `delay`. `None` when
    /// no package waits.
    fn select(
        &mut self,
        packages: &mut BTreeMap<PackageId, PackageState>,
        clock: &mut CycleClock,
        config: &ScheduleConfig,
        delay: &mut u64,
    ) -> Option<PackageId>;
}

/// Two ordered queues keyed by `(due cycle, package ID)`: one for priority-0 packages, one
/// for the others. A step costs O(log n): pop the first entry, push it back at its next slot.
/// Empty cycles are skipped arithmetically. Slots that priority-0 cycles took from other
/// packages are noticed lazily, when such an entry reaches the front (amortised O(log n)).
#[derive(Debug, Clone, Default)]
pub struct QueueRotation {
    absolute: BTreeSet<(u64, PackageId)>,
    modulo: BTreeSet<(u64, PackageId)>,
}

impl QueueRotation {
    fn queue_of(&mut self, package: &PackageState) -> &mut BTreeSet<(u64, PackageId)> {
        if package.priority.is_absolute() {
            &mut self.absolute
        } else {
            &mut self.modulo
        }
    }

    /// Moves every modulo entry due before `cycle` (its slot went to priority-0 cycles) to
    /// its next slot at or after `cycle`.
    fn reschedule_missed(
        &mut self,
        cycle: u64,
        packages: &mut BTreeMap<PackageId, PackageState>,
        period_length: u64,
    ) {
        while let Some(&(due, id)) = self.modulo.first()
            && due < cycle
        {
            self.modulo.pop_first();
            if let Some(package) = packages.get_mut(&id) {
                let stride = package.priority.stride(period_length);
                package.due_cycle = next_slot_at_or_after(cycle, stride, period_length);
                self.modulo.insert((package.due_cycle, id));
            }
        }
    }
}

fn first_due(queue: &BTreeSet<(u64, PackageId)>) -> Option<u64> {
    queue.first().map(|&(due, _)| due)
}

impl Rotation for QueueRotation {
    fn enqueue(&mut self, id: PackageId, package: &mut PackageState, config: &ScheduleConfig) {
        let period_length = config.cycles_per_period();
        let stride = package.priority.stride(period_length);
        package.due_cycle = next_slot_at_or_after(package.not_before_cycle, stride, period_length);
        let due = package.due_cycle;
        self.queue_of(package).insert((due, id));
    }

    fn dequeue(&mut self, id: PackageId, package: &PackageState) {
        let due = package.due_cycle;
        self.queue_of(package).remove(&(due, id));
    }

    fn select(
        &mut self,
        packages: &mut BTreeMap<PackageId, PackageState>,
        clock: &mut CycleClock,
        config: &ScheduleConfig,
        delay: &mut u64,
    ) -> Option<PackageId> {
        let period_length = config.cycles_per_period();
        // Three rounds suffice: finish the current cycle, jump to the next busy one, serve it.
        // The bound only matters for states at the end of time, where cycles saturate.
        for _ in 0..4 {
            if self.absolute.is_empty() && self.modulo.is_empty() {
                return None;
            }
            let cycle = clock.cycle;
            let mode = *clock.mode.get_or_insert_with(|| {
                if first_due(&self.absolute).is_some_and(|due| due <= cycle) {
                    CycleMode::Absolute
                } else {
                    CycleMode::Modulo
                }
            });
            let queue = match mode {
                CycleMode::Absolute => &mut self.absolute,
                CycleMode::Modulo => {
                    self.reschedule_missed(cycle, packages, period_length);
                    &mut self.modulo
                }
            };
            if let Some(&(due, id)) = queue.first()
                && due <= cycle
            {
                queue.pop_first();
                return Some(id);
            }
            // This cycle is over: jump to the next cycle in which someone is due.
            let next = cycle.saturating_add(1);
            self.reschedule_missed(next, packages, period_length);
            let target = [first_due(&self.absolute), first_due(&self.modulo)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(next)
                .max(next);
            *delay = delay.saturating_add(latency_between(config, cycle, mode, target));
            *clock = CycleClock {
                cycle: target,
                mode: None,
            };
        }
        None
    }
}
