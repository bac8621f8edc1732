//! Fuzz the manifest and catalog readers: arbitrary bytes (XML, binary or ASCII plists)
//! must give a value or a clear error, never a panic or a stack overflow (nesting is
//! bounded by `MAX_PLIST_DEPTH`). A manifest that parses must also write back and re-read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_manifest::{Catalog, Facts, Manifest, MemorySource, resolve};

fuzz_target!(|data: &[u8]| {
    let _ = Catalog::from_plist_bytes(data, "fuzz");
    if let Ok(manifest) = Manifest::from_plist_bytes(data, "fuzz") {
        if let Ok(xml) = manifest.to_xml() {
            assert!(Manifest::from_plist_bytes(&xml, "fuzz-again").is_ok());
        }
        // Resolution over the fuzzed manifest (self-includes become cycle errors).
        let mut source = MemorySource::new();
        source.insert_manifest("fuzz", manifest);
        let _ = resolve(&source, "fuzz", &Facts::new());
    }
});
