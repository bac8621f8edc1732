//! The vocabulary of the scheduler: packages, instants, result codes and actions.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ScheduleError;

/// An OCS package ID (the FILEID, a Unix timestamp in practice). OCS only schedules
/// directories named by digits, so IDs are numbers; their numeric order is the order in
/// which packages take their turn inside a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PackageId(pub u64);

impl fmt::Display for PackageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A point in time, in whole seconds since the Unix epoch. The scheduler never reads a
/// clock: the caller passes `now` in, which is what makes every trace reproducible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// This instant plus `seconds`, saturating at the end of time rather than wrapping.
    #[must_use]
    pub fn plus_seconds(self, seconds: u64) -> Self {
        Self(self.0.saturating_add(seconds))
    }

    /// Seconds from `earlier` to `self` (zero if `earlier` is later).
    pub fn seconds_since(self, earlier: Self) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0)
    }
}

/// An OCS `PRI`: 0 is absolute priority (served every cycle, before anyone else); `p ≥ 1`
/// takes a step on cycles `p, 2p, …` of each period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Priority(pub u32);

impl Priority {
    /// The absolute priority `PRI=0`.
    pub const ABSOLUTE: Self = Self(0);

    /// Whether this is the absolute priority `PRI=0`.
    pub fn is_absolute(self) -> bool {
        self.0 == 0
    }

    /// Cycles between two slots of this priority in a period of `period_length` cycles.
    /// Rule 1 (docs/schedule.md): a priority above the period length is clamped to it, so
    /// such a package still takes one step per period (OCS never serves it).
    pub(crate) fn stride(self, period_length: u64) -> u64 {
        if self.is_absolute() {
            1
        } else {
            u64::from(self.0).min(period_length).max(1)
        }
    }
}

/// What the server knows about a package to deliver: the part of the PROLOG `PACK` and
/// the `info` file that the schedule depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageSpec {
    /// The package ID.
    pub id: PackageId,
    /// `PRI` from the `info` file.
    pub priority: Priority,
    /// `FRAGS` from the `info` file (0 = nothing to download, execute at the first step).
    pub fragments: u32,
}

/// The result of a package, as sent to the server in a `DOWNLOAD` message (spec §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultCode {
    /// `SUCCESS`: the action ran and succeeded.
    Success,
    /// `SUCCESS_<exit>`: a `LAUNCH` action ran and exited with this code.
    SuccessExit(i32),
    /// `SUCCESS_ALREADY_SETUP`: the package is in the history and not forced.
    SuccessAlreadySetup,
    /// `ERR_BAD_ID`: the `info` file names another package.
    ErrBadId,
    /// `ERR_DOWNLOAD_INFO`: the `info` file could not be fetched.
    ErrDownloadInfo,
    /// `ERR_BAD_DIGEST`: the reassembled archive does not match its digest.
    ErrBadDigest,
    /// `ERR_BUILD`: the archive could not be extracted.
    ErrBuild,
    /// `ERR_EXECUTE`: the action failed.
    ErrExecute,
    /// `ERR_CLEAN`: the package directory could not be removed.
    ErrClean,
    /// `ERR_TIMEOUT`: TIMEOUT days passed since the package was first seen.
    ErrTimeout,
    /// `ERR_DOWNLOAD_PACK`: a fragment kept failing (rule 3; OCS defines it, never sends it).
    ErrDownloadPack,
    /// `ERR_EXECUTE_INTERRUPTED`: the agent stopped while the action ran, so its outcome is
    /// unknown; Tessera never runs an action twice, so it reports this instead.
    ErrExecuteInterrupted,
}

impl ResultCode {
    /// Whether the OCS console counts this result as a success (`SUCCESS%`).
    pub fn is_success(self) -> bool {
        matches!(
            self,
            Self::Success | Self::SuccessExit(_) | Self::SuccessAlreadySetup
        )
    }
}

impl fmt::Display for ResultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Self::Success => "SUCCESS",
            Self::SuccessExit(code) => return write!(f, "SUCCESS_{code}"),
            Self::SuccessAlreadySetup => "SUCCESS_ALREADY_SETUP",
            Self::ErrBadId => "ERR_BAD_ID",
            Self::ErrDownloadInfo => "ERR_DOWNLOAD_INFO",
            Self::ErrBadDigest => "ERR_BAD_DIGEST",
            Self::ErrBuild => "ERR_BUILD",
            Self::ErrExecute => "ERR_EXECUTE",
            Self::ErrClean => "ERR_CLEAN",
            Self::ErrTimeout => "ERR_TIMEOUT",
            Self::ErrDownloadPack => "ERR_DOWNLOAD_PACK",
            Self::ErrExecuteInterrupted => "ERR_EXECUTE_INTERRUPTED",
        };
        f.write_str(text)
    }
}

impl FromStr for ResultCode {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "SUCCESS" => Self::Success,
            "SUCCESS_ALREADY_SETUP" => Self::SuccessAlreadySetup,
            "ERR_BAD_ID" => Self::ErrBadId,
            "ERR_DOWNLOAD_INFO" => Self::ErrDownloadInfo,
            "ERR_BAD_DIGEST" => Self::ErrBadDigest,
            "ERR_BUILD" => Self::ErrBuild,
            "ERR_EXECUTE" => Self::ErrExecute,
            "ERR_CLEAN" => Self::ErrClean,
            "ERR_TIMEOUT" => Self::ErrTimeout,
            "ERR_DOWNLOAD_PACK" => Self::ErrDownloadPack,
            "ERR_EXECUTE_INTERRUPTED" => Self::ErrExecuteInterrupted,
            other => match other.strip_prefix("SUCCESS_").map(str::parse::<i32>) {
                Some(Ok(code)) => Self::SuccessExit(code),
                _ => {
                    return Err(ScheduleError::UnknownResultCode {
                        text: other.chars().take(64).collect(),
                    });
                }
            },
        })
    }
}

impl Serialize for ResultCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ResultCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What the agent should do next, as answered by [`crate::Scheduler::next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Download and verify fragment `fragment` (1-based, file `<ID>-<fragment>`), then call
    /// [`crate::Scheduler::fetched`].
    Fetch {
        /// The package.
        package: PackageId,
        /// The fragment number, 1-based.
        fragment: u32,
    },
    /// Reassemble, verify and run the package's action, then call
    /// [`crate::Scheduler::executed`]. Persist the state before running it: this action is
    /// handed out once only.
    Execute {
        /// The package.
        package: PackageId,
    },
    /// Send `result` to the server, then call [`crate::Scheduler::reported`].
    Report {
        /// The package.
        package: PackageId,
        /// The code to send.
        result: ResultCode,
    },
    /// Nothing is due before `until`; call `next` again then.
    Wait {
        /// When the next action is due.
        until: Timestamp,
    },
    /// Nothing to do until the package set changes.
    Idle,
}

impl Action {
    /// The package this action is about, if any.
    pub fn package(&self) -> Option<PackageId> {
        match self {
            Self::Fetch { package, .. }
            | Self::Execute { package }
            | Self::Report { package, .. } => Some(*package),
            Self::Wait { .. } | Self::Idle => None,
        }
    }
}

/// How a fetch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FetchOutcome {
    /// The fragment arrived and its digest matched: it is never fetched again.
    Verified,
    /// The transfer failed or the digest did not match; it is retried (rule 3).
    Failed,
}

/// How sending a result to the server ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportOutcome {
    /// The server answered 2xx: the package is finished and forgotten.
    Delivered,
    /// No 2xx answer: the report is retried at the package's next slot, with backoff.
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_codes_round_trip_through_their_ocs_spelling() {
        let codes = [
            ResultCode::Success,
            ResultCode::SuccessExit(3),
            ResultCode::SuccessExit(-1),
            ResultCode::SuccessAlreadySetup,
            ResultCode::ErrBadId,
            ResultCode::ErrDownloadInfo,
            ResultCode::ErrBadDigest,
            ResultCode::ErrBuild,
            ResultCode::ErrExecute,
            ResultCode::ErrClean,
            ResultCode::ErrTimeout,
            ResultCode::ErrDownloadPack,
            ResultCode::ErrExecuteInterrupted,
        ];
        for code in codes {
            assert_eq!(code.to_string().parse::<ResultCode>().ok(), Some(code));
        }
        assert_eq!(ResultCode::SuccessExit(3).to_string(), "SUCCESS_3");
    }

    #[test]
    fn unknown_result_codes_are_refused_with_the_text() {
        let err = "EXIT_CODE_1"
            .parse::<ResultCode>()
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|m| m.contains("EXIT_CODE_1")));
        assert!("SUCCESS_x".parse::<ResultCode>().is_err());
    }

    #[test]
    fn only_success_codes_count_as_success() {
        assert!(ResultCode::SuccessExit(2).is_success());
        assert!(!ResultCode::ErrTimeout.is_success());
    }

    #[test]
    fn priority_above_the_period_is_clamped_to_it() {
        assert_eq!(Priority(0).stride(10), 1);
        assert_eq!(Priority(3).stride(10), 3);
        assert_eq!(Priority(25).stride(10), 10);
    }
}
