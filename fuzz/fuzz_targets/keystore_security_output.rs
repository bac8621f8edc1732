//! Arbitrary bytes as the output of `security find-identity` and `security find-certificate`:
//! the MacKeystore's parsers must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tessera_keystore::fuzzing::security_output(data);
});
