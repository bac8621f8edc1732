//! Replacing files atomically: the configuration, the unit or plist, the agent binary.
//!
//! A reader (systemd, launchd, the running agent, a person with `cat`) sees the old file or
//! the new one, never half of one, and a crash leaves at most a stray temporary file.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{
    DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The configuration file's mode when it is created: it holds no secrets.
pub const DEFAULT_CONFIG_MODE: u32 = 0o644;

/// Which permission bits the new file gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Those of the file being replaced (and its owner), or these when it is new.
    KeepOr(u32),
    /// Exactly these.
    Exact(u32),
}

/// Replaces `path` with `bytes`, keeping an existing file's mode and owner (else
/// `default_mode`). A symlink is followed, so a linked configuration stays linked.
pub fn write_atomically(path: &Path, default_mode: u32, bytes: &[u8]) -> io::Result<()> {
    replace_file(path, Mode::KeepOr(default_mode), |file| {
        file.write_all(bytes)
    })
}

/// Replaces `path` with what `fill` writes into a temporary file in the same directory:
/// fsync, rename over the old file, fsync the directory. Missing parent directories are
/// created with mode 0755.
pub fn replace_file(
    path: &Path,
    mode: Mode,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let target = resolve_link(path)?;
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&parent)?;
    let existing = match std::fs::metadata(&target) {
        Ok(meta) => Some(meta),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let bits = match (mode, &existing) {
        (Mode::KeepOr(_), Some(meta)) => meta.mode() & 0o7777,
        (Mode::KeepOr(bits) | Mode::Exact(bits), _) => bits,
    };
    let (temp, mut file) = create_temp(&parent, &target)?;
    let result = (|| {
        fill(&mut file)?;
        // Set explicitly: the mode given at creation is filtered by the umask.
        file.set_permissions(std::fs::Permissions::from_mode(bits))?;
        if let (Mode::KeepOr(_), Some(meta)) = (mode, &existing) {
            let ours = file.metadata()?;
            if (ours.uid(), ours.gid()) != (meta.uid(), meta.gid()) {
                std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid()))?;
            }
        }
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, &target)?;
        sync_dir(&parent)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Makes the directory's entries (a rename, a removal) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn resolve_link(path: &Path) -> io::Result<PathBuf> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => std::fs::canonicalize(path),
        Ok(_) => Ok(path.to_owned()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(path.to_owned()),
        Err(e) => Err(e),
    }
}

fn create_temp(dir: &Path, target: &Path) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = target
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!(".{name}.tmp-{}-{nanos}-{n}", std::process::id()));
        // create_new: never follow or reuse something another process put there.
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
        {
            Ok(file) => return Ok((temp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("cannot create a temporary file in {}", dir.display()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn new_file_gets_the_default_mode_and_parents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etc/tessera/agent.toml");
        write_atomically(&path, DEFAULT_CONFIG_MODE, b"a").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"a");
        assert_eq!(mode_of(&path), 0o644);
        assert_eq!(mode_of(path.parent().unwrap()), 0o755);
    }

    #[test]
    fn existing_mode_is_kept_and_no_temp_file_remains() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomically(&path, DEFAULT_CONFIG_MODE, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn failed_fill_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, "old").unwrap();
        let err = replace_file(&path, Mode::Exact(0o644), |_| {
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn symlinked_file_stays_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.toml");
        let link = dir.path().join("agent.toml");
        std::fs::write(&real, "old").unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomically(&link, DEFAULT_CONFIG_MODE, b"new").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
    }
}
