#![no_main]
//! Untrusted `info` files, as an agent downloads them (and as an admin may import them).

use libfuzzer_sys::fuzz_target;
use tessera_package::{Package, PackageInfo};

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = PackageInfo::parse(data) {
        // Whatever parses must write and parse back to the same thing.
        let again = PackageInfo::parse(info.to_xml().as_bytes());
        assert_eq!(again.ok().as_ref(), Some(&info));
        let _ = Package::try_from(info);
    }
});
