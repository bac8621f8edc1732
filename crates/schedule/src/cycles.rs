//! Cycle arithmetic. Cycles are numbered from 0 since the schedule started; cycle `c` is
//! cycle `c % PERIOD_LENGTH + 1` of period `c / PERIOD_LENGTH` in OCS's 1-based terms.

use serde::{Deserialize, Serialize};

use crate::config::ScheduleConfig;

/// Which packages a cycle serves, decided when the cycle starts (spec §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CycleMode {
    /// A priority-0 package is due: only priority-0 packages step, and no `CYCLE_LATENCY`
    /// follows (as in OCS).
    Absolute,
    /// Packages whose priority divides the cycle number step, then `CYCLE_LATENCY`.
    Modulo,
}

/// Where the schedule is: the current cycle and, once it has started, its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CycleClock {
    /// The current cycle, counted from 0.
    pub cycle: u64,
    /// `None` until the cycle has started (its mode is decided at its start).
    pub mode: Option<CycleMode>,
}

/// The first cycle at or after `cycle` that is a slot for a package with `stride`
/// (`1 ≤ stride ≤ period_length`): its 1-based index in the period is a multiple of `stride`.
pub(crate) fn next_slot_at_or_after(cycle: u64, stride: u64, period_length: u64) -> u64 {
    let period_length = period_length.max(1);
    let stride = stride.clamp(1, period_length);
    let index = cycle % period_length + 1;
    let slot_index = index.div_ceil(stride).saturating_mul(stride);
    if slot_index <= period_length {
        cycle.saturating_add(slot_index - index)
    } else {
        (cycle / period_length)
            .saturating_add(1)
            .saturating_mul(period_length)
            .saturating_add(stride - 1)
    }
}

/// Whether `cycle` is a slot for `stride`.
pub(crate) fn is_slot(cycle: u64, stride: u64, period_length: u64) -> bool {
    let period_length = period_length.max(1);
    (cycle % period_length + 1).is_multiple_of(stride.clamp(1, period_length))
}

/// Seconds waited between the end of cycle `from` (in `mode`) and the start of cycle `to`
/// (`to > from`), every cycle in between being empty: `CYCLE_LATENCY` after each modulo
/// cycle, `PERIOD_LATENCY` after each period that ends.
pub(crate) fn latency_between(config: &ScheduleConfig, from: u64, mode: CycleMode, to: u64) -> u64 {
    let period_length = config.cycles_per_period();
    let empty_cycles = to.saturating_sub(from).saturating_sub(1);
    let modulo_cycles = empty_cycles + u64::from(mode == CycleMode::Modulo);
    let periods_ended = (to / period_length).saturating_sub(from / period_length);
    modulo_cycles
        .saturating_mul(config.cycle_latency)
        .saturating_add(periods_ended.saturating_mul(config.period_latency))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn slots_follow_the_ocs_modulo_rule() {
        // PERIOD_LENGTH 10, PRI 3: cycles 3, 6, 9 of each period (0-based 2, 5, 8, 12, ...).
        let slots: Vec<u64> = (0..25).filter(|&c| is_slot(c, 3, 10)).collect();
        assert_eq!(slots, [2, 5, 8, 12, 15, 18, 22]);
        assert_eq!(next_slot_at_or_after(0, 3, 10), 2);
        assert_eq!(next_slot_at_or_after(2, 3, 10), 2);
        assert_eq!(next_slot_at_or_after(9, 3, 10), 12);
        assert_eq!(next_slot_at_or_after(9, 10, 10), 9);
        assert_eq!(next_slot_at_or_after(7, 1, 1), 7);
    }

    #[test]
    fn latency_counts_cycles_and_periods_that_end() {
        let config = ScheduleConfig {
            cycle_latency: 10,
            period_latency: 1000,
            ..ScheduleConfig::default()
        };
        // Cycle 8 (modulo) ends, cycle 9 empty, period 0 ends, cycle 10 starts.
        assert_eq!(
            latency_between(&config, 8, CycleMode::Modulo, 10),
            2 * 10 + 1000
        );
        assert_eq!(latency_between(&config, 8, CycleMode::Absolute, 9), 0);
        assert_eq!(latency_between(&config, 9, CycleMode::Absolute, 10), 1000);
    }

    #[test]
    fn arithmetic_saturates_at_the_end_of_time() {
        assert_eq!(next_slot_at_or_after(u64::MAX, 7, 10), u64::MAX);
        assert!(next_slot_at_or_after(u64::MAX - 3, 3, 10) >= u64::MAX - 3);
    }

    proptest! {
        #[test]
        fn next_slot_is_the_first_slot(cycle in 0u64..10_000, period in 1u64..20, pri in 1u64..30) {
            let stride = pri.min(period);
            let found = next_slot_at_or_after(cycle, stride, period);
            let scanned = (cycle..cycle + 2 * period).find(|&c| is_slot(c, stride, period));
            prop_assert_eq!(Some(found), scanned);
        }
    }
}
