//! Arbitrary bytes as leaf, intermediate, trust anchor, CRL, private key and computer name
//! (length-prefixed pieces, see `tessera_certpolicy::fuzzing`): the evaluation and the
//! PEM/DER loaders must never panic, and garbage must never pass.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let report = tessera_certpolicy::fuzzing::evaluate_arbitrary_bytes(data);
    // Nothing random is signed by a trusted root.
    assert!(!report.passed());
});
