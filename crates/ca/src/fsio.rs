//! Atomic, permission-correct file writes: the temporary file is created in the target's
//! directory with its final mode, synced, renamed over the target, and the directory is
//! synced, so a crash leaves either the old file or the new one, never a torn or
//! briefly world-readable one.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::CaError;

/// Mode of private keys and the ledger.
pub(crate) const PRIVATE: u32 = 0o600;
/// Mode of certificates, CRLs and settings.
pub(crate) const PUBLIC: u32 = 0o644;

/// Writes `contents` to `path` atomically with permission bits `mode`.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), CaError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut attempt = 0u32;
    let (tmp_path, mut file) = loop {
        let candidate = dir.join(format!(".{file_name}.tmp{}-{attempt}", std::process::id()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&candidate)
        {
            Ok(file) => break (candidate, file),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1;
            }
            Err(e) => return Err(CaError::io("cannot create", &candidate)(e)),
        }
    };
    let result = (|| {
        // The umask may have narrowed the mode at creation; widening it to `mode` before any
        // content is written is safe (it never exceeds what the caller asked for).
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(CaError::io("cannot set permissions on", &tmp_path))?;
        file.write_all(contents)
            .map_err(CaError::io("cannot write", &tmp_path))?;
        file.sync_all()
            .map_err(CaError::io("cannot sync", &tmp_path))?;
        fs::rename(&tmp_path, path).map_err(CaError::io("cannot replace", path))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp_path);
    }
    result
}

/// Makes a rename in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), CaError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(CaError::io("cannot sync directory", dir))
}

/// Reads a file, naming it in the error.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, CaError> {
    fs::read(path).map_err(CaError::io("cannot read", path))
}

/// Reads a private key file after checking that no other user can read it (the ssh rule).
pub(crate) fn read_private(path: &Path) -> Result<Vec<u8>, CaError> {
    let meta = fs::metadata(path).map_err(CaError::io("cannot read", path))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CaError::InsecureKeyFile {
            path: path.to_path_buf(),
            mode,
        });
    }
    read(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_atomically_with_the_requested_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.key");
        write_atomic(&path, b"one", PRIVATE).unwrap();
        write_atomic(&path, b"two", PRIVATE).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary files left behind");
        write_atomic(&dir.path().join("root.pem"), b"cert", PUBLIC).unwrap();
        assert_eq!(
            fs::metadata(dir.path().join("root.pem"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o644
        );
    }

    #[test]
    fn group_or_world_readable_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_atomic(&path, b"secret", 0o640).unwrap();
        assert!(matches!(
            read_private(&path),
            Err(CaError::InsecureKeyFile { mode: 0o640, .. })
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_private(&path).unwrap(), b"secret");
        assert!(matches!(
            read_private(&dir.path().join("missing")),
            Err(CaError::Io { .. })
        ));
    }
}
