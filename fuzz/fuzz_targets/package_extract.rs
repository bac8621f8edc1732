#![no_main]
//! Untrusted payload archives (tar.gz or zip), extracted under tight caps into a fresh
//! temporary directory; nothing may appear outside it.

use std::sync::atomic::{AtomicU64, Ordering};

use libfuzzer_sys::fuzz_target;
use tessera_package::ExtractLimits;
use tessera_package::extract::extract_bytes;

fuzz_target!(|data: &[u8]| {
    static RUN: AtomicU64 = AtomicU64::new(0);
    let scene = std::env::temp_dir().join(format!(
        "tessera-fuzz-extract-{}-{}",
        std::process::id(),
        RUN.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&scene);
    if std::fs::create_dir_all(&scene).is_err() {
        return;
    }
    let target = scene.join("target");
    let limits = ExtractLimits {
        max_total_bytes: 1 << 20,
        max_entries: 256,
    };
    let _ = extract_bytes(data, &target, limits);
    let stray = std::fs::read_dir(&scene)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path() != target)
                .count()
        })
        .unwrap_or(0);
    let _ = std::fs::remove_dir_all(&scene);
    assert_eq!(stray, 0, "extraction wrote outside its target");
});
