//! Fuzz the NSPredicate parser and evaluator: arbitrary text must parse or give a syntax
//! error with a position, and evaluation must terminate without panicking (recursion is
//! bounded by `MAX_PREDICATE_DEPTH`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_manifest::predicate::evaluate_text;
use tessera_manifest::{FactValue, Facts};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut facts = Facts::new();
    facts
        .set_os_vers("14.5")
        .set("machine_type", "laptop")
        .set("ipv4_address", FactValue::strings(["10.0.0.1"]))
        .set(
            "applications",
            FactValue::Array(vec![FactValue::Dict(
                [("bundleid".to_owned(), FactValue::from("com.example.app"))]
                    .into_iter()
                    .collect(),
            )]),
        );
    if let Err(error) = evaluate_text(text, &facts) {
        assert!(error.position >= 1 && error.position <= text.chars().count() + 1);
    }
});
