//! The ssh-style ownership and mode checks every path of the file store passes before use.

use std::fs::{File, Metadata, OpenOptions};
use std::io::Read as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::{KeystoreError, Result};

/// What a path in the store is, which decides the modes it may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sensitivity {
    /// A directory of the store: 0700.
    Directory,
    /// A private key or secret: 0600, nothing for group or others.
    Private,
    /// A certificate: 0644, nobody but the owner may write it.
    Public,
}

impl Sensitivity {
    /// The mode the keystore creates such paths with.
    pub(crate) fn mode(self) -> u32 {
        match self {
            Self::Directory => 0o700,
            Self::Private => 0o600,
            Self::Public => 0o644,
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Self::Directory => "keystore directory",
            Self::Private => "private key or secret file",
            Self::Public => "certificate file",
        }
    }

    /// Bits that must be clear, and how to say who they let in.
    fn forbidden(self) -> (u32, &'static str) {
        match self {
            Self::Directory | Self::Private => (0o077, "group or others"),
            Self::Public => (0o022, "group or others write"),
        }
    }
}

/// Refuses `meta` (of `path`) if it is of the wrong type, owned by another uid or too open.
pub(crate) fn check(path: &Path, meta: &Metadata, what: Sensitivity, euid: u32) -> Result<()> {
    let type_ok = match what {
        Sensitivity::Directory => meta.is_dir(),
        Sensitivity::Private | Sensitivity::Public => meta.is_file(),
    };
    if !type_ok {
        return Err(KeystoreError::UnexpectedFileType {
            path: path.to_path_buf(),
            expected: match what {
                Sensitivity::Directory => "a directory",
                _ => "a regular file (not a symlink)",
            },
        });
    }
    if meta.uid() != euid {
        return Err(KeystoreError::WrongOwner {
            kind: what.kind(),
            path: path.to_path_buf(),
            owner: meta.uid(),
            euid,
        });
    }
    let mode = meta.mode() & 0o7777;
    let (forbidden, who) = what.forbidden();
    if mode & forbidden != 0 {
        return Err(KeystoreError::InsecurePermissions {
            kind: what.kind(),
            path: path.to_path_buf(),
            mode,
            wanted: what.mode(),
            who,
        });
    }
    Ok(())
}

/// Checks a directory (following a symlink only for the configured root).
pub(crate) fn check_dir(path: &Path, euid: u32) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| KeystoreError::io("inspect", path, e))?;
    check(path, &meta, Sensitivity::Directory, euid)
}

/// Opens a file without following symlinks and checks the opened file itself, so the check
/// and the read see the same inode. Returns None when the file does not exist.
pub(crate) fn open_checked(path: &Path, what: Sensitivity, euid: u32) -> Result<Option<File>> {
    let nofollow = rustix::fs::OFlags::NOFOLLOW.bits().cast_signed();
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(nofollow)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        // ELOOP: the path is a symlink, which the store never creates for files.
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return Err(KeystoreError::UnexpectedFileType {
                path: path.to_path_buf(),
                expected: "a regular file (not a symlink)",
            });
        }
        Err(e) => return Err(KeystoreError::io("open", path, e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| KeystoreError::io("inspect", path, e))?;
    check(path, &meta, what, euid)?;
    Ok(Some(file))
}

/// Reads a checked file into memory that is wiped on drop.
pub(crate) fn read_checked(
    path: &Path,
    what: Sensitivity,
    euid: u32,
) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let Some(mut file) = open_checked(path, what, euid)? else {
        return Ok(None);
    };
    let mut buf = Zeroizing::new(Vec::new());
    file.read_to_end(&mut buf)
        .map_err(|e| KeystoreError::io("read", path, e))?;
    Ok(Some(buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn file_with_mode(dir: &Path, name: &str, mode: u32) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, b"x").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn private_files_must_be_closed_to_group_and_others() {
        let dir = tempfile::tempdir().unwrap();
        let euid = rustix::process::geteuid().as_raw();
        let ok = file_with_mode(dir.path(), "ok", 0o600);
        assert!(
            read_checked(&ok, Sensitivity::Private, euid)
                .unwrap()
                .is_some()
        );
        for mode in [0o640, 0o604, 0o644, 0o666] {
            let p = file_with_mode(dir.path(), &format!("m{mode:o}"), mode);
            let err = read_checked(&p, Sensitivity::Private, euid).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(&format!("chmod 600 {}", p.display())), "{msg}");
            assert!(msg.contains(&format!("{mode:04o}")), "{msg}");
        }
    }

    #[test]
    fn public_files_may_be_world_readable_but_not_writable() {
        let dir = tempfile::tempdir().unwrap();
        let euid = rustix::process::geteuid().as_raw();
        let ok = file_with_mode(dir.path(), "ok", 0o644);
        assert!(
            read_checked(&ok, Sensitivity::Public, euid)
                .unwrap()
                .is_some()
        );
        let bad = file_with_mode(dir.path(), "bad", 0o664);
        let msg = read_checked(&bad, Sensitivity::Public, euid)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("chmod 644"), "{msg}");
    }

    #[test]
    fn other_owner_is_refused_with_chown_hint() {
        let dir = tempfile::tempdir().unwrap();
        let ok = file_with_mode(dir.path(), "ok", 0o600);
        // Pretend the agent runs as uid 4242: the file's real owner is then "another user".
        let msg = read_checked(&ok, Sensitivity::Private, 4242)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("chown 4242"), "{msg}");
    }

    #[test]
    fn symlinks_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let euid = rustix::process::geteuid().as_raw();
        let target = file_with_mode(dir.path(), "target", 0o600);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = read_checked(&link, Sensitivity::Private, euid).unwrap_err();
        assert!(
            matches!(err, KeystoreError::UnexpectedFileType { .. }),
            "{err}"
        );
    }

    #[test]
    fn missing_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            read_checked(&dir.path().join("nope"), Sensitivity::Private, 0)
                .unwrap()
                .is_none()
        );
    }
}
