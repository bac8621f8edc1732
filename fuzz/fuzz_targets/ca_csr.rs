#![no_main]
//! Untrusted certificate signing requests, as `ca issue --csr` and enrollment receive them:
//! PEM or DER, parsed, signature-checked and name-checked by tessera-ca.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tessera_ca::fuzzing::csr_from_arbitrary_bytes(data);
});
