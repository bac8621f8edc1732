//! Errors of the scheduler: misuse of the event protocol and invalid persisted state.

use thiserror::Error;

use crate::model::PackageId;

/// Everything the scheduler refuses, with what was wrong and what to do about it.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ScheduleError {
    /// An event arrived that does not answer the action in flight.
    #[error(
        "event `{event}` does not answer the action in flight ({in_flight}); call `next` and \
         report the outcome of the action it returned"
    )]
    UnexpectedEvent {
        /// The event received.
        event: &'static str,
        /// What the scheduler is waiting for.
        in_flight: String,
    },
    /// A package appears twice in one package set.
    #[error("package {0} is listed twice in the package set; list each package ID once")]
    DuplicatePackage(PackageId),
    /// A known package came back with another fragment count.
    #[error(
        "package {package} changed from {was} to {now} fragments while being downloaded; a \
         package's content is immutable, publish the new content under a new ID"
    )]
    FragmentCountChanged {
        /// The package.
        package: PackageId,
        /// The count the scheduler has.
        was: u32,
        /// The count in the new set.
        now: u32,
    },
    /// A result code that is not one of the OCS codes.
    #[error(
        "unknown result code `{text}`; expected SUCCESS, SUCCESS_<exit code> or one of the ERR_* codes"
    )]
    UnknownResultCode {
        /// The text received (truncated).
        text: String,
    },
    /// A simulation did not finish within its step budget.
    #[error(
        "the simulation did not finish within {steps} actions; check for reports that never \
         get through or raise the step limit"
    )]
    SimulationTooLong {
        /// Actions handed out before stopping.
        steps: u64,
    },
    /// A persisted state that cannot be read.
    #[error(
        "persisted schedule state is unreadable: {reason}; delete it to start the downloads afresh"
    )]
    CorruptState {
        /// What is wrong with it.
        reason: String,
    },
}
