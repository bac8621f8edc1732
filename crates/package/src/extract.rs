//! Safe extraction of `.tar.gz` and `.zip` payloads into a directory.
//!
//! The OCS agent runs `tar -xvzf` / `unzip` as root with no checks. Here every entry is
//! judged before anything is written: names must stay inside the target (no absolute
//! paths, no `..`), links must point inside it, device nodes and FIFOs are refused, and
//! caps on total bytes and entry count stop archive bombs, both on the sizes the archive
//! declares and on the bytes actually decompressed. No entry is ever written through a
//! symlink, so an in-tree link cannot be used to reach outside later.
//!
//! On error the target may hold the entries extracted before the refused one; the caller
//! deletes it (the agent extracts into a fresh directory per attempt).

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Component, Path, PathBuf};

use flate2::read::GzDecoder;

use crate::error::{Error, Result};

/// Caps that stop archive bombs. Both are checked against what entries declare and what
/// decompression actually produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractLimits {
    /// Most bytes written in total.
    pub max_total_bytes: u64,
    /// Most entries (files, directories and links).
    pub max_entries: u64,
}

impl Default for ExtractLimits {
    /// 4 GiB and 100 000 entries: above any real software package, far below a bomb.
    fn default() -> Self {
        Self {
            max_total_bytes: 4 * 1024 * 1024 * 1024,
            max_entries: 100_000,
        }
    }
}

/// What an extraction wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExtractReport {
    /// Regular files (hard links included).
    pub files: u64,
    /// Directories.
    pub directories: u64,
    /// Symbolic links.
    pub symlinks: u64,
    /// Bytes of file content.
    pub bytes: u64,
}

/// The archive formats the OCS agent can unpack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// gzip-compressed tar.
    TarGz,
    /// zip (stored or deflate).
    Zip,
}

impl ArchiveFormat {
    /// Recognises the format from the first bytes.
    pub fn detect(head: &[u8]) -> Option<Self> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Some(Self::TarGz)
        } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
            Some(Self::Zip)
        } else {
            None
        }
    }
}

/// Extracts the archive file at `archive` into `target` (created if missing).
pub fn extract_file(archive: &Path, target: &Path, limits: ExtractLimits) -> Result<ExtractReport> {
    let archive_error = |reason: String| Error::Archive {
        path: archive.to_owned(),
        reason,
    };
    let mut file = File::open(archive).map_err(|e| Error::io("opening", archive, e))?;
    let mut head = [0u8; 4];
    let n = read_up_to(&mut file, &mut head).map_err(|e| Error::io("reading", archive, e))?;
    file.rewind()
        .map_err(|e| Error::io("reading", archive, e))?;
    match ArchiveFormat::detect(&head[..n]) {
        Some(ArchiveFormat::TarGz) => extract_tar_gz(file, target, limits),
        Some(ArchiveFormat::Zip) => extract_zip(file, target, limits),
        None => Err(archive_error(
            "neither a gzip-compressed tar nor a zip archive".into(),
        )),
    }
}

/// Extracts an archive held in memory (the fuzzing entry point).
pub fn extract_bytes(data: &[u8], target: &Path, limits: ExtractLimits) -> Result<ExtractReport> {
    match ArchiveFormat::detect(data) {
        Some(ArchiveFormat::TarGz) => extract_tar_gz(data, target, limits),
        Some(ArchiveFormat::Zip) => extract_zip(io::Cursor::new(data), target, limits),
        None => Err(Error::Archive {
            path: PathBuf::from("<memory>"),
            reason: "neither a gzip-compressed tar nor a zip archive".into(),
        }),
    }
}

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Extracts a gzip-compressed tar stream.
pub fn extract_tar_gz(
    reader: impl Read,
    target: &Path,
    limits: ExtractLimits,
) -> Result<ExtractReport> {
    let mut writer = TreeWriter::open(target, limits)?;
    let mut archive = tar::Archive::new(GzDecoder::new(reader));
    let tar_error = |reason: String| Error::Archive {
        path: PathBuf::from("tar.gz"),
        reason,
    };
    let entries = archive.entries().map_err(|e| tar_error(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| tar_error(format!("corrupt archive: {e}")))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            continue;
        }
        writer.count_entry(&name)?;
        let path = relative_path(&entry.path_bytes()).map_err(|reason| refused(&name, reason))?;
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mode = entry.header().mode().unwrap_or(0o644);
                let declared = entry.size();
                writer.file(&name, &path, declared, mode, &mut entry)?;
            }
            tar::EntryType::Directory => writer.directory(&name, &path)?,
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| refused(&name, "symlink without a target".into()))?;
                writer.symlink(&name, &path, &link)?;
            }
            tar::EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| refused(&name, "hard link without a target".into()))?;
                writer.hard_link(&name, &path, &link)?;
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                return Err(refused(
                    &name,
                    "device node; packages may only hold files, directories and links".into(),
                ));
            }
            tar::EntryType::Fifo => {
                return Err(refused(
                    &name,
                    "FIFO; packages may only hold files, directories and links".into(),
                ));
            }
            other => {
                return Err(refused(
                    &name,
                    format!("unsupported tar entry type {other:?}"),
                ));
            }
        }
    }
    Ok(writer.report)
}

/// Extracts a zip archive.
pub fn extract_zip(
    reader: impl Read + Seek,
    target: &Path,
    limits: ExtractLimits,
) -> Result<ExtractReport> {
    const S_IFMT: u32 = 0o170_000;
    const S_IFREG: u32 = 0o100_000;
    const S_IFDIR: u32 = 0o040_000;
    const S_IFLNK: u32 = 0o120_000;
    const MAX_LINK: u64 = 4096;
    let zip_error = |reason: String| Error::Archive {
        path: PathBuf::from("zip"),
        reason,
    };
    let mut writer = TreeWriter::open(target, limits)?;
    let mut archive =
        zip::ZipArchive::new(reader).map_err(|e| zip_error(format!("corrupt archive: {e}")))?;
    if archive.len() as u64 > limits.max_entries {
        return Err(Error::LimitExceeded {
            entry: format!("(archive of {} entries)", archive.len()),
            what: "entry count",
            limit: limits.max_entries,
        });
    }
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|e| zip_error(format!("entry {index}: {e}")))?;
        let raw_name = entry.name_raw().to_vec();
        let name = String::from_utf8_lossy(&raw_name).into_owned();
        writer.count_entry(&name)?;
        let path = relative_path(&raw_name).map_err(|reason| refused(&name, reason))?;
        let file_type = entry.unix_mode().map(|m| m & S_IFMT).filter(|t| *t != 0);
        match file_type {
            Some(S_IFLNK) => {
                if entry.size() > MAX_LINK {
                    return Err(refused(
                        &name,
                        "symlink target longer than 4096 bytes".into(),
                    ));
                }
                let mut link = Vec::new();
                (&mut entry)
                    .take(MAX_LINK)
                    .read_to_end(&mut link)
                    .map_err(|e| zip_error(format!("{name}: {e}")))?;
                writer.symlink(&name, &path, &link)?;
            }
            None | Some(S_IFDIR) if entry.is_dir() => writer.directory(&name, &path)?,
            Some(S_IFDIR) => writer.directory(&name, &path)?,
            None | Some(S_IFREG) => {
                let mode = entry.unix_mode().unwrap_or(0o644);
                let declared = entry.size();
                writer.file(&name, &path, declared, mode, &mut entry)?;
            }
            Some(_) => {
                return Err(refused(
                    &name,
                    "device node or FIFO; packages may only hold files, directories and links"
                        .into(),
                ));
            }
        }
    }
    Ok(writer.report)
}

fn refused(entry: &str, reason: String) -> Error {
    Error::EntryRefused {
        entry: entry.to_owned(),
        reason,
    }
}

/// The entry name as a relative path of plain components, or why it is refused.
fn relative_path(raw: &[u8]) -> std::result::Result<PathBuf, String> {
    if raw.contains(&0) {
        return Err("name contains a NUL byte".into());
    }
    let mut clean = PathBuf::new();
    for component in Path::new(OsStr::from_bytes(raw)).components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err("name contains '..' and would leave the target directory".into());
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(
                    "absolute path; entries must be relative to the target directory".into(),
                );
            }
        }
    }
    Ok(clean)
}

/// Writes entries under one root, never following a symlink.
struct TreeWriter {
    root: PathBuf,
    limits: ExtractLimits,
    entries: u64,
    report: ExtractReport,
}

impl TreeWriter {
    fn open(target: &Path, limits: ExtractLimits) -> Result<Self> {
        fs::create_dir_all(target).map_err(|e| Error::io("creating", target, e))?;
        let root = target
            .canonicalize()
            .map_err(|e| Error::io("resolving", target, e))?;
        Ok(Self {
            root,
            limits,
            entries: 0,
            report: ExtractReport::default(),
        })
    }

    fn count_entry(&mut self, name: &str) -> Result<()> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(Error::LimitExceeded {
                entry: name.to_owned(),
                what: "entry count",
                limit: self.limits.max_entries,
            });
        }
        Ok(())
    }

    /// Creates (or checks) every parent directory of `path`; refuses to pass through a
    /// symlink or a file. Returns the absolute path of the entry itself.
    fn prepare_parent(&mut self, name: &str, path: &Path) -> Result<PathBuf> {
        let mut current = self.root.clone();
        let mut components = path.components().peekable();
        while let Some(component) = components.next() {
            current.push(component);
            if components.peek().is_none() {
                break;
            }
            match fs::symlink_metadata(&current) {
                Ok(meta) if meta.file_type().is_dir() => {}
                Ok(_) => {
                    return Err(refused(
                        name,
                        format!(
                            "its parent {} is a symlink or a file, not a directory",
                            display_rel(&self.root, &current)
                        ),
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    create_dir(&current)?;
                    self.report.directories += 1;
                }
                Err(e) => return Err(Error::io("inspecting", &current, e)),
            }
        }
        Ok(current)
    }

    /// Removes a file or symlink already at `dest` (a later tar entry replaces an earlier
    /// one, as tar does); a directory there is an error.
    fn clear(name: &str, dest: &Path) -> Result<()> {
        match fs::symlink_metadata(dest) {
            Ok(meta) if meta.file_type().is_dir() => Err(refused(
                name,
                "a directory of the same name was already extracted".into(),
            )),
            Ok(_) => fs::remove_file(dest).map_err(|e| Error::io("replacing", dest, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("inspecting", dest, e)),
        }
    }

    fn file(
        &mut self,
        name: &str,
        path: &Path,
        declared: u64,
        mode: u32,
        data: &mut dyn Read,
    ) -> Result<()> {
        if path.as_os_str().is_empty() {
            return Err(refused(name, "a file entry with an empty name".into()));
        }
        let remaining = self.limits.max_total_bytes - self.report.bytes;
        if declared > remaining {
            return Err(Error::LimitExceeded {
                entry: name.to_owned(),
                what: "total size",
                limit: self.limits.max_total_bytes,
            });
        }
        let dest = self.prepare_parent(name, path)?;
        Self::clear(name, &dest)?;
        // Executables stay executable; setuid/setgid/sticky and group/other write are dropped.
        let mode = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            // O_CREAT|O_EXCL never follows a symlink in the final component, even one
            // that appeared after `clear`.
            .open(&dest)
            .map_err(|e| Error::io("creating", &dest, e))?;
        // Declared sizes can lie: cap what decompression actually yields too.
        let copied = io::copy(&mut data.take(remaining.saturating_add(1)), &mut out);
        let copied = match copied {
            Ok(n) => n,
            Err(e) => {
                drop(out);
                let _ = fs::remove_file(&dest);
                return Err(Error::Archive {
                    path: PathBuf::from(name),
                    reason: format!("reading entry data: {e}"),
                });
            }
        };
        if copied > remaining {
            drop(out);
            let _ = fs::remove_file(&dest);
            return Err(Error::LimitExceeded {
                entry: name.to_owned(),
                what: "total size",
                limit: self.limits.max_total_bytes,
            });
        }
        self.report.bytes += copied;
        self.report.files += 1;
        Ok(())
    }

    fn directory(&mut self, name: &str, path: &Path) -> Result<()> {
        if path.as_os_str().is_empty() {
            return Ok(()); // "./": the target itself.
        }
        let dest = self.prepare_parent(name, path)?;
        match fs::symlink_metadata(&dest) {
            Ok(meta) if meta.file_type().is_dir() => Ok(()),
            Ok(_) => Err(refused(
                name,
                "a file or symlink of the same name was already extracted".into(),
            )),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                create_dir(&dest)?;
                self.report.directories += 1;
                Ok(())
            }
            Err(e) => Err(Error::io("inspecting", &dest, e)),
        }
    }

    fn symlink(&mut self, name: &str, path: &Path, target: &[u8]) -> Result<()> {
        if path.as_os_str().is_empty() {
            return Err(refused(name, "a symlink entry with an empty name".into()));
        }
        check_link_target(path, target).map_err(|reason| refused(name, reason))?;
        let dest = self.prepare_parent(name, path)?;
        Self::clear(name, &dest)?;
        std::os::unix::fs::symlink(OsStr::from_bytes(target), &dest)
            .map_err(|e| Error::io("creating symlink", &dest, e))?;
        self.report.symlinks += 1;
        Ok(())
    }

    fn hard_link(&mut self, name: &str, path: &Path, target: &[u8]) -> Result<()> {
        if path.as_os_str().is_empty() {
            return Err(refused(name, "a hard link entry with an empty name".into()));
        }
        // Hard link targets are archive paths, relative to the archive root.
        let target_rel = relative_path(target)
            .map_err(|reason| refused(name, format!("hard link target: {reason}")))?;
        let mut source = self.root.clone();
        for component in target_rel.components() {
            source.push(component);
            let meta = fs::symlink_metadata(&source).map_err(|_| {
                refused(
                    name,
                    "hard link to a file that is not in the archive before it".into(),
                )
            })?;
            if meta.file_type().is_symlink() {
                return Err(refused(name, "hard link through a symlink".into()));
            }
        }
        if !fs::symlink_metadata(&source).is_ok_and(|m| m.file_type().is_file()) {
            return Err(refused(
                name,
                "hard link target is not a regular file extracted earlier".into(),
            ));
        }
        let dest = self.prepare_parent(name, path)?;
        Self::clear(name, &dest)?;
        fs::hard_link(&source, &dest).map_err(|e| Error::io("creating hard link", &dest, e))?;
        self.report.files += 1;
        Ok(())
    }
}

/// A symlink may only point inside the tree: relative, with `..` only at its start and no
/// more of them than the link is deep. (A `..` after a name could climb out through another
/// symlink, so it is refused even when it looks harmless.)
fn check_link_target(link: &Path, target: &[u8]) -> std::result::Result<(), String> {
    if target.is_empty() {
        return Err("symlink with an empty target".into());
    }
    if target.contains(&0) {
        return Err("symlink target contains a NUL byte".into());
    }
    let depth = link.components().count().saturating_sub(1);
    let mut climbs = 0usize;
    let mut descended = false;
    for component in Path::new(OsStr::from_bytes(target)).components() {
        match component {
            Component::RootDir | Component::Prefix(_) => {
                return Err("symlink to an absolute path leaves the target directory".into());
            }
            Component::CurDir => {}
            Component::ParentDir if descended => {
                return Err(
                    "symlink target has '..' after a name, which could leave the target directory"
                        .into(),
                );
            }
            Component::ParentDir => {
                climbs += 1;
                if climbs > depth {
                    return Err("symlink target climbs above the target directory".into());
                }
            }
            Component::Normal(_) => descended = true,
        }
    }
    Ok(())
}

fn create_dir(path: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    fs::DirBuilder::new()
        .mode(0o755)
        .create(path)
        .map_err(|e| Error::io("creating", path, e))
}

fn display_rel(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(relative_path(b"a/./b").unwrap(), PathBuf::from("a/b"));
        assert!(relative_path(b"/etc/passwd").is_err());
        assert!(relative_path(b"a/../../x").is_err());
        assert!(relative_path(b"a\0b").is_err());
        assert_eq!(relative_path(b"./").unwrap(), PathBuf::new());
    }

    #[test]
    fn link_targets() {
        assert!(check_link_target(Path::new("a/b/link"), b"../c").is_ok());
        assert!(check_link_target(Path::new("a/b/link"), b"../../c").is_ok());
        assert!(check_link_target(Path::new("a/b/link"), b"../../../c").is_err());
        assert!(check_link_target(Path::new("link"), b"/etc").is_err());
        assert!(check_link_target(Path::new("a/link"), b"d/../..").is_err());
        assert!(check_link_target(Path::new("link"), b"sub/file").is_ok());
        assert!(check_link_target(Path::new("link"), b"").is_err());
    }

    #[test]
    fn formats() {
        assert_eq!(
            ArchiveFormat::detect(&[0x1f, 0x8b, 8, 0]),
            Some(ArchiveFormat::TarGz)
        );
        assert_eq!(
            ArchiveFormat::detect(b"PK\x03\x04"),
            Some(ArchiveFormat::Zip)
        );
        assert_eq!(ArchiveFormat::detect(b"ustar"), None);
    }
}
