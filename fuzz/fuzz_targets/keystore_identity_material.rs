//! Arbitrary bytes as the leaf/chain/key PEM files of the file keystore and as raw DER:
//! the loaders must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tessera_keystore::fuzzing::identity_material(data);
});
