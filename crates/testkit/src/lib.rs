//! Test helpers shared by Tessera's crates.
//!
//! Several tests use outside tools as oracles: `openssl` for certificates, CRLs and
//! PKCS#12, `python3` for `plistlib`, `tar`, `md5sum`. On a developer machine without one,
//! such a test says it is skipped and passes; in CI, where `.ci/run` installs every tool
//! and sets `TESSERA_REQUIRE_TOOLS=1`, a missing tool fails the test instead, so nothing is
//! skipped silently.
//!
//! ```
//! // `sh` is on every Unix machine, so this test runs.
//! if !tessera_testkit::tool("sh", "the example") {
//!     return;
//! }
//! ```
#![deny(missing_docs)]

pub mod https;

use std::path::PathBuf;

/// The environment variable that turns a missing tool into a failure.
pub const REQUIRE_TOOLS: &str = "TESSERA_REQUIRE_TOOLS";

/// Where `name` is on `PATH`, if it is.
pub fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// Whether the test that needs `name` (for `purpose`) should run: `true` when the tool is
/// on `PATH`. When it is not, prints a `SKIPPED` line and returns `false` — or panics when
/// `TESSERA_REQUIRE_TOOLS` is set, as in CI.
pub fn tool(name: &str, purpose: &str) -> bool {
    if find(name).is_some() {
        return true;
    }
    let required = std::env::var_os(REQUIRE_TOOLS).is_some_and(|v| !v.is_empty() && v != "0");
    assert!(
        !required,
        "`{name}` is required for {purpose} but is not on PATH ({REQUIRE_TOOLS} is set); install it"
    );
    eprintln!("SKIPPED {purpose}: `{name}` is not on PATH (CI installs it)");
    false
}

/// [`tool`] for several tools at once; every one must be present.
pub fn tools(names: &[&str], purpose: &str) -> bool {
    names.iter().all(|name| tool(name, purpose))
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_shell_and_not_a_made_up_tool() {
        assert!(find("sh").is_some());
        assert!(find("tessera-no-such-tool").is_none());
    }
}
