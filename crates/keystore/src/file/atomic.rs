//! Crash-safe file writes: temp file created with its final mode, fsync, rename, directory fsync.
//!
//! Every step first asks a [`WriteHook`]; tests use it to fail between any two steps, which is
//! what a crash (kill, power loss) at that point leaves behind.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use crate::error::{KeystoreError, Result};

/// The steps of a store write, in the order they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStep {
    /// Creating a new directory (an identity generation).
    CreateDirectory,
    /// Creating a new file (or a temporary symlink) under a name nobody reads.
    CreateTemp,
    /// Between the first and the second half of a file's content: a torn write.
    MidWrite,
    /// Flushing a file's content to disk.
    SyncFile,
    /// Renaming the new entry over the live name: the commit point.
    Rename,
    /// Flushing a directory so the new entry (or the rename) survives power loss.
    SyncDirectory,
    /// Removing superseded entries after the commit.
    RemoveOld,
}

/// Called before every [`WriteStep`]; an error aborts the write at that point.
pub trait WriteHook: Send + Sync + std::fmt::Debug {
    /// Decides whether `step` on `path` may proceed.
    fn before(&self, step: WriteStep, path: &Path) -> std::io::Result<()>;
}

/// The production hook: every step proceeds.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFailures;

impl WriteHook for NoFailures {
    fn before(&self, _step: WriteStep, _path: &Path) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs the hook, turning a refusal into the error a real failure at that step would give.
pub(crate) fn step(hook: &dyn WriteHook, step: WriteStep, path: &Path) -> Result<()> {
    hook.before(step, path)
        .map_err(|e| KeystoreError::io(step_action(step), path, e))
}

fn step_action(step: WriteStep) -> &'static str {
    match step {
        WriteStep::CreateDirectory => "create directory",
        WriteStep::CreateTemp => "create",
        WriteStep::MidWrite => "write",
        WriteStep::SyncFile => "fsync",
        WriteStep::Rename => "rename into place",
        WriteStep::SyncDirectory => "fsync directory",
        WriteStep::RemoveOld => "remove superseded",
    }
}

/// Creates directory `path` with mode 0700 (failing if it exists).
pub(crate) fn create_private_dir(hook: &dyn WriteHook, path: &Path) -> Result<()> {
    step(hook, WriteStep::CreateDirectory, path)?;
    DirBuilder::new()
        .mode(0o700)
        .create(path)
        .map_err(|e| KeystoreError::io("create directory", path, e))?;
    // The umask may have cleared bits we want; it can only have removed, never added.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| KeystoreError::io("set mode of", path, e))
}

/// Creates `path` (which must not exist) with `mode` set before any byte is written,
/// writes `content` and fsyncs it.
pub(crate) fn write_new_file(
    hook: &dyn WriteHook,
    path: &Path,
    mode: u32,
    content: &[u8],
) -> Result<()> {
    step(hook, WriteStep::CreateTemp, path)?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| KeystoreError::io("create", path, e))?;
    // Pin the exact mode regardless of the umask, before the content exists.
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| KeystoreError::io("set mode of", path, e))?;
    let (first, second) = content.split_at(content.len() / 2);
    file.write_all(first)
        .map_err(|e| KeystoreError::io("write", path, e))?;
    step(hook, WriteStep::MidWrite, path)?;
    file.write_all(second)
        .map_err(|e| KeystoreError::io("write", path, e))?;
    step(hook, WriteStep::SyncFile, path)?;
    file.sync_all()
        .map_err(|e| KeystoreError::io("fsync", path, e))
}

/// fsyncs directory `dir`, so entries created or renamed in it are durable.
pub(crate) fn sync_dir(hook: &dyn WriteHook, dir: &Path) -> Result<()> {
    step(hook, WriteStep::SyncDirectory, dir)?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| KeystoreError::io("fsync directory", dir, e))
}

/// Renames `from` over `to` (atomic within one directory).
pub(crate) fn rename(hook: &dyn WriteHook, from: &Path, to: &Path) -> Result<()> {
    step(hook, WriteStep::Rename, to)?;
    std::fs::rename(from, to).map_err(|e| KeystoreError::io("rename into place", to, e))
}

/// Replaces file `target` atomically with `content` at `mode`, using `temp` (same directory,
/// unique name) as the staging file.
pub(crate) fn replace_file(
    hook: &dyn WriteHook,
    temp: &Path,
    target: &Path,
    mode: u32,
    content: &[u8],
) -> Result<()> {
    write_new_file(hook, temp, mode, content)?;
    rename(hook, temp, target)?;
    let dir = target.parent().unwrap_or_else(|| Path::new("."));
    sync_dir(hook, dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt as _;

    #[test]
    fn new_files_get_the_exact_mode_whatever_the_content() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o600, 0o644] {
            let p = dir.path().join(format!("f{mode:o}"));
            write_new_file(&NoFailures, &p, mode, b"abc").unwrap();
            assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o7777, mode);
            assert_eq!(std::fs::read(&p).unwrap(), b"abc");
        }
    }

    #[test]
    fn write_new_file_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"old").unwrap();
        assert!(write_new_file(&NoFailures, &p, 0o600, b"new").is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
    }

    #[derive(Debug)]
    struct FailAt(WriteStep);
    impl WriteHook for FailAt {
        fn before(&self, step: WriteStep, _: &Path) -> std::io::Result<()> {
            if step == self.0 {
                Err(std::io::Error::other("injected crash"))
            } else {
                Ok(())
            }
        }
    }

    #[test]
    fn replace_file_keeps_old_content_until_the_rename() {
        for (at, expect_new) in [
            (WriteStep::CreateTemp, false),
            (WriteStep::MidWrite, false),
            (WriteStep::SyncFile, false),
            (WriteStep::Rename, false),
            (WriteStep::SyncDirectory, true),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let target = dir.path().join("secret");
            std::fs::write(&target, b"old content").unwrap();
            let err = replace_file(
                &FailAt(at),
                &dir.path().join(".tmp"),
                &target,
                0o600,
                b"new content",
            )
            .unwrap_err();
            assert!(err.to_string().contains("injected crash"), "{err}");
            let now = std::fs::read(&target).unwrap();
            let want: &[u8] = if expect_new {
                b"new content"
            } else {
                b"old content"
            };
            assert_eq!(now, want, "failure at {at:?}");
        }
    }
}
