#![no_main]
//! A persisted scheduler state read from untrusted bytes (the agent's state file may be
//! truncated or damaged), then driven for a bounded number of steps: never a panic.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tessera_schedule::fuzzing::load_and_step(data);
});
