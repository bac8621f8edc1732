//! The OCS Inventory NG fragment scheduler as a pure, deterministic, resumable state machine.
//!
//! The agent asks [`Scheduler::next`] what to do at `now` and reports how each action went
//! ([`Scheduler::fetched`], [`Scheduler::executed`], [`Scheduler::reported`]); the server's
//! package list arrives through [`Scheduler::packages_changed`]. There is no clock, no sleep
//! and no I/O inside, so every trace is reproducible to the last cycle, the simulator
//! ([`simulate()`]) is the real scheduler, and the state ([`Scheduler::to_json`]) resumes
//! exactly after a crash.
//!
//! # The OCS algorithm (spec `ocs-protocol.md` §4.5)
//! Time runs in periods of `PERIOD_LENGTH` cycles. In cycle `i` of a period, a package with
//! priority `p ≥ 1` takes one step when `i mod p == 0`; a step fetches one fragment, or, once
//! all are there, executes the package (so `N` fragments take `N + 1` steps) and reports its
//! result. `FRAG_LATENCY` follows each step, `CYCLE_LATENCY` each cycle and `PERIOD_LATENCY`
//! each period. Priority 0 is absolute: while a priority-0 package is due, cycles serve only
//! priority-0 packages (with no `CYCLE_LATENCY`). Inside a cycle packages go in ID order.
//! `TIMEOUT` days after a package was first seen, it ends with `ERR_TIMEOUT`.
//!
//! # Where Tessera differs (the rules of `docs/schedule.md`)
//! 1. A priority above `PERIOD_LENGTH` counts as `PERIOD_LENGTH` (one step per period; OCS
//!    never serves it).
//! 2. A failing package, priority 0 included, backs off 1, 2, 4, … cycles (at most
//!    `max_backoff_cycles`) so it cannot block the others forever.
//! 3. A fragment failing `max_fetch_failures` times in a row ends the package with
//!    `ERR_DOWNLOAD_PACK`, which is reported (OCS retries silently until `ERR_TIMEOUT`).
//! 4. A finished package is forgotten at once and entirely: no duplicate or stale entry.
//! 5. An action is handed out once only, even across a crash (`ERR_EXECUTE_INTERRUPTED`).
//!
//! # Cost
//! Waiting packages sit in two ordered sets keyed by `(next cycle, ID)`, one for priority 0
//! and one for the rest ([`QueueRotation`]); a step pops the first entry and pushes it back
//! at its next slot, O(log n) in the number of packages, and empty cycles are skipped
//! arithmetically. [`reference::ReferenceScheduler`] implements the same semantics by
//! scanning every package at every step; it is the oracle of the tests and the benchmark's
//! baseline.
//!
//! # Example
//! ```
//! use std::num::NonZeroU32;
//! use tessera_schedule::{
//!     Action, FetchOutcome, PackageId, PackageSpec, Priority, ReportOutcome, ResultCode,
//!     ScheduleConfig, Scheduler, Timestamp,
//! };
//!
//! let config = ScheduleConfig {
//!     frag_latency: 10,
//!     ..ScheduleConfig::without_latencies(NonZeroU32::MIN)
//! };
//! let mut scheduler: Scheduler = Scheduler::new(config);
//! let package = PackageId(1_716_800_000);
//! let spec = PackageSpec { id: package, priority: Priority(1), fragments: 1 };
//! scheduler.packages_changed(Timestamp(0), &[spec])?;
//!
//! assert_eq!(scheduler.next(Timestamp(0)), Action::Fetch { package, fragment: 1 });
//! scheduler.fetched(FetchOutcome::Verified)?;
//! assert_eq!(scheduler.next(Timestamp(0)), Action::Wait { until: Timestamp(10) });
//! assert_eq!(scheduler.next(Timestamp(10)), Action::Execute { package });
//! scheduler.executed(ResultCode::Success)?;
//! let report = Action::Report { package, result: ResultCode::Success };
//! assert_eq!(scheduler.next(Timestamp(10)), report);
//!
//! // Persist, crash, resume: the same answer.
//! let mut resumed: Scheduler = Scheduler::from_json(&scheduler.to_json())?;
//! assert_eq!(resumed.next(Timestamp(10)), report);
//! resumed.reported(ReportOutcome::Delivered)?;
//! assert_eq!(resumed.next(Timestamp(20)), Action::Idle);
//! # Ok::<(), tessera_schedule::ScheduleError>(())
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod config;
mod cycles;
mod error;
pub mod fuzzing;
mod model;
mod package;
mod persist;
pub mod reference;
mod rotation;
mod scheduler;
pub mod simulate;

pub use config::ScheduleConfig;
pub use cycles::{CycleClock, CycleMode};
pub use error::ScheduleError;
pub use model::{
    Action, FetchOutcome, PackageId, PackageSpec, Priority, ReportOutcome, ResultCode, Timestamp,
};
pub use package::{PackageState, Phase};
pub use rotation::{QueueRotation, Rotation};
pub use scheduler::{CurrentStep, Scheduler};
pub use simulate::simulate;
