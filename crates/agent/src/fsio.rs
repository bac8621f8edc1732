//! Durable file writes: a crash leaves the old or the new content, never a mix.

use std::fs;
use std::io::Write as _;
use std::path::Path;

use crate::service::fs::{Mode, replace_file};

use crate::error::{AgentError, Result};

/// Writes `data` to `path` through a temp file in the same directory, fsyncs it, renames it
/// over `path` and fsyncs the directory (one implementation with the service files':
/// [`crate::service::fs::replace_file`]).
pub(crate) fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    replace_file(path, Mode::Exact(mode), |file| file.write_all(data))
        .map_err(|e| AgentError::io("writing", path, e))
}

/// Makes a rename or create in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    crate::service::fs::sync_dir(dir).map_err(|e| AgentError::io("syncing", dir, e))
}

/// Creates `dir` (and parents) with mode 0700 for the leaf.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| AgentError::io("creating", dir, e))
}

/// Reads a file that may not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(data) => Ok(Some(data)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AgentError::io("reading", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"one", 0o600).unwrap();
        write_atomic(&path, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        assert_eq!(read_optional(&dir.path().join("absent")).unwrap(), None);
    }
}
