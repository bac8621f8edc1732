//! The fuzzed entry point, shared by the `schedule_state` fuzz target and the crate's
//! property tests: load a persisted state from untrusted bytes, then drive it.

use crate::model::{Action, FetchOutcome, ReportOutcome, ResultCode, Timestamp};
use crate::scheduler::Scheduler;

/// Steps driven after a successful load; enough to cross periods, bounded to stay fast.
const MAX_STEPS: usize = 256;

/// Parses `data` as a persisted state (JSON); if it loads, drives it for a bounded number
/// of steps, answering each action from the bytes after the JSON document (or from a fixed
/// pattern), and checks that the state still persists and reloads. Must never panic.
pub fn load_and_step(data: &[u8]) {
    // Split at the first NUL: the JSON before it, the outcome choices after it.
    let (json, choices) = match data.iter().position(|&byte| byte == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let Ok(mut scheduler) = Scheduler::<crate::QueueRotation>::from_json(json) else {
        return;
    };
    let mut choice = choices.iter().copied().cycle();
    let mut pick = move || choice.next().unwrap_or(0);
    let mut now = scheduler
        .not_before
        .unwrap_or(Timestamp(u64::from(pick()) * 3_600));
    for _ in 0..MAX_STEPS {
        let byte = pick();
        let _ = match scheduler.next(now) {
            Action::Idle => break,
            Action::Wait { until } => {
                now = until;
                Ok(())
            }
            Action::Fetch { .. } => scheduler.fetched(if byte.is_multiple_of(4) {
                FetchOutcome::Failed
            } else {
                FetchOutcome::Verified
            }),
            Action::Execute { .. } => scheduler.executed(if byte.is_multiple_of(3) {
                ResultCode::ErrExecute
            } else {
                ResultCode::Success
            }),
            Action::Report { .. } => scheduler.reported(if byte.is_multiple_of(5) {
                ReportOutcome::Failed
            } else {
                ReportOutcome::Delivered
            }),
        };
        if byte == 0xFF {
            // Also exercise a reload mid-run.
            if let Ok(reloaded) = Scheduler::from_json(&scheduler.to_json()) {
                scheduler = reloaded;
            }
        }
    }
}
