//! The download configuration the server sends (`PARAM TYPE="CONF"`) plus Tessera's retry policy.

use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

/// Seconds in a day, for `TIMEOUT`.
pub(crate) const SECONDS_PER_DAY: u64 = 86_400;

/// The schedule's knobs. Defaults are what the reference OCS server sends with its shipped
/// configuration (spec §2.2): `PERIOD_LENGTH=10`, `FRAG_LATENCY=60`, `CYCLE_LATENCY=60`,
/// `PERIOD_LATENCY=60`, `TIMEOUT=7`, `EXECUTION_TIMEOUT=120`, `ON=1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    /// `PERIOD_LENGTH`: cycles per period (at least 1).
    pub period_length: NonZeroU32,
    /// `FRAG_LATENCY`: seconds to wait after each step of a package.
    pub frag_latency: u64,
    /// `CYCLE_LATENCY`: seconds to wait after each cycle (not after a priority-0 cycle, as in OCS).
    pub cycle_latency: u64,
    /// `PERIOD_LATENCY`: seconds to wait after each period.
    pub period_latency: u64,
    /// `TIMEOUT`: days after a package was first seen before it ends with `ERR_TIMEOUT`.
    pub timeout: u32,
    /// `EXECUTION_TIMEOUT`: minutes an action may run. Not used by the schedule itself; kept
    /// so that the agent reads one configuration.
    pub execution_timeout: u32,
    /// `ON`: when false nothing is scheduled ([`crate::Action::Idle`]); the state is kept.
    pub on: bool,
    /// Consecutive failures of one fragment before the package ends with
    /// `ERR_DOWNLOAD_PACK` (rule 3). At least 1.
    pub max_fetch_failures: NonZeroU32,
    /// Longest backoff after a failure, in cycles (rule 2 and 3).
    pub max_backoff_cycles: u32,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            period_length: NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN),
            frag_latency: 60,
            cycle_latency: 60,
            period_latency: 60,
            timeout: 7,
            execution_timeout: 120,
            on: true,
            max_fetch_failures: NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN),
            max_backoff_cycles: 64,
        }
    }
}

impl ScheduleConfig {
    /// A configuration with all latencies zero and the given period length, for tests and
    /// quick simulations.
    pub fn without_latencies(period_length: NonZeroU32) -> Self {
        Self {
            period_length,
            frag_latency: 0,
            cycle_latency: 0,
            period_latency: 0,
            ..Self::default()
        }
    }

    /// `PERIOD_LENGTH` as a cycle count.
    pub(crate) fn cycles_per_period(&self) -> u64 {
        u64::from(self.period_length.get())
    }

    /// `TIMEOUT` in seconds.
    pub(crate) fn timeout_seconds(&self) -> u64 {
        u64::from(self.timeout).saturating_mul(SECONDS_PER_DAY)
    }

    /// Cycles to skip after the `failures`-th consecutive failure: 1, 2, 4, … capped.
    pub(crate) fn backoff_cycles(&self, failures: u32) -> u64 {
        if failures == 0 {
            return 0;
        }
        let doubling = 1u64.checked_shl(failures - 1).unwrap_or(u64::MAX);
        doubling.min(u64::from(self.max_backoff_cycles))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_what_the_ocs_server_sends() {
        let config = ScheduleConfig::default();
        assert_eq!(config.period_length.get(), 10);
        assert_eq!(
            (
                config.frag_latency,
                config.cycle_latency,
                config.period_latency
            ),
            (60, 60, 60)
        );
        assert_eq!((config.timeout, config.execution_timeout), (7, 120));
        assert!(config.on);
    }

    #[test]
    fn backoff_doubles_then_caps() {
        let config = ScheduleConfig {
            max_backoff_cycles: 5,
            ..ScheduleConfig::default()
        };
        let seen: Vec<u64> = (0..6).map(|f| config.backoff_cycles(f)).collect();
        assert_eq!(seen, [0, 1, 2, 4, 5, 5]);
        assert_eq!(config.backoff_cycles(200), 5);
    }

    #[test]
    fn zero_period_length_is_refused() {
        let err = serde_json::from_str::<ScheduleConfig>(r#"{"period_length": 0}"#);
        assert!(err.is_err());
        let partial: ScheduleConfig = serde_json::from_str(r#"{"frag_latency": 5}"#)
            .unwrap_or_else(|e| panic!("partial config: {e}"));
        assert_eq!(partial.frag_latency, 5);
        assert_eq!(partial.period_length.get(), 10);
    }
}
