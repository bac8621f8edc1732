//! The package repository on disk: `<download dir>/<ID>/` holds `info` and the one stored
//! `archive`; fragments are byte ranges of `archive`, never copies.
//!
//! A package appears atomically: it is written into a hidden temporary directory beside
//! the others and renamed to its ID only when complete, so a server or agent never sees
//! half a package. IDs follow OCS: the Unix time of the build, or the next free number
//! when two builds share a second.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::digester::{Digester, PayloadDigests};
use crate::error::{Error, Result};
use crate::fragment::{Fragment, FragmentPlan};
use crate::info::{Integrity, PackageInfo};
use crate::model::PackageId;
use crate::package::{Package, PackageSpec};

/// File name of the `info` file inside a package directory.
pub const INFO_FILE: &str = "info";
/// File name of the stored archive inside a package directory.
pub const ARCHIVE_FILE: &str = "archive";
/// Default fragment size: 1 MiB keeps one retry cheap on a slow link.
pub const DEFAULT_FRAGMENT_SIZE: u64 = 1024 * 1024;

/// Where the payload comes from.
pub enum PayloadSource<'a> {
    /// An existing archive (`.tar.gz`, `.zip`, or any file), stored as is.
    File(&'a Path),
    /// A directory, archived as a deterministic `.tar.gz` while it is digested.
    Directory(&'a Path),
    /// A stream of unknown length (e.g. stdin), stored as is.
    Reader(&'a mut dyn Read),
}

/// Whether a build waits for the archive to reach the disk before publishing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `fsync` the archive, `info` and directory before and after the rename, flushing the
    /// archive progressively while it is written: a crash never leaves a published package
    /// with missing bytes. Costs the disk's write time for the whole payload.
    #[default]
    Synced,
    /// Leave the files to the kernel's write-back (as `cp` and `split` do; even syncing only
    /// `info` would make ext4 flush the whole archive first). Readers still see the package
    /// appear atomically (rename). After a crash the archive may be short or `info`
    /// missing; `Repository::load` then reports it as incomplete or not found, and agents
    /// refuse a short archive by digest.
    WriteBack,
}

/// A package directory tree (`<data>/repo/download`).
#[derive(Debug, Clone)]
pub struct Repository {
    root: PathBuf,
    durability: Durability,
}

/// A package as found in the repository.
#[derive(Debug, Clone)]
pub struct StoredPackage {
    /// What its `info` says.
    pub info: PackageInfo,
    /// The directory holding `info` and `archive`.
    pub dir: PathBuf,
    /// Size of `archive` on disk (0 when the package has no payload file).
    pub archive_size: u64,
}

impl StoredPackage {
    /// The archive file.
    pub fn archive_path(&self) -> PathBuf {
        self.dir.join(ARCHIVE_FILE)
    }

    /// Fragment `n` (1-based) as a byte range of the archive, for serving `ID/ID-n`
    /// straight from the file. `None` for a number outside the plan, and for an `info`
    /// without Tessera data (its split is unknown).
    pub fn fragment(&self, n: u32) -> Option<Fragment> {
        self.info.integrity.as_ref()?.plan().fragment(n)
    }
}

impl Repository {
    /// A repository rooted at `root` (created on the first build).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            durability: Durability::default(),
        }
    }

    /// The same repository, building with `durability`.
    #[must_use]
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// How builds and imports wait for the disk.
    pub(crate) fn durability(&self) -> Durability {
        self.durability
    }

    /// The repository of a server data directory: `<data>/repo/download`.
    pub fn in_data_dir(data: &Path) -> Self {
        Self::new(data.join("repo").join("download"))
    }

    /// The directory packages live in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of package `id`.
    pub fn package_dir(&self, id: PackageId) -> PathBuf {
        self.root.join(id.to_string())
    }

    /// Reads the payload once, computing MD5, SHA-256 and per-fragment SHA-256 on two
    /// cores while it is stored, then publishes the package atomically. `now` picks the ID;
    /// `progress` receives the number of payload bytes read so far.
    pub fn build(
        &self,
        spec: PackageSpec,
        source: PayloadSource<'_>,
        fragment_size: u64,
        now: SystemTime,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Package> {
        // Validate the plan's parameter before reading anything.
        FragmentPlan::with_fragment_size(0, fragment_size)?;
        fs::create_dir_all(&self.root).map_err(|e| Error::io("creating", &self.root, e))?;
        let staging = tempfile::Builder::new()
            .prefix(".building-")
            .tempdir_in(&self.root)
            .map_err(|e| Error::io("creating a staging directory in", &self.root, e))?;
        let archive_path = staging.path().join(ARCHIVE_FILE);
        let archive =
            File::create(&archive_path).map_err(|e| Error::io("creating", &archive_path, e))?;
        let digests = digest_into(
            archive,
            source,
            fragment_size,
            None,
            self.durability,
            progress,
            &archive_path,
        )?;

        let plan = FragmentPlan::with_fragment_size(digests.size, fragment_size)?;
        let integrity = Integrity::new(plan, digests.sha256, digests.fragment_sha256)?;
        let first_id = PackageId::new(unix_seconds(now).max(1))?;
        let mut package = Package::new(first_id, spec, digests.md5, integrity);

        // Publish: write info for the candidate ID, rename the staging dir onto it; a
        // taken ID (non-empty directory) moves on to the next number.
        let info_path = staging.path().join(INFO_FILE);
        loop {
            let synced = self.durability == Durability::Synced;
            write_info(&info_path, package.to_info_xml().as_bytes(), synced)?;
            // The directory's own entries (archive, info) must be durable before it moves.
            if synced {
                sync_dir(staging.path());
            }
            let target = self.package_dir(package.id());
            match fs::rename(staging.path(), &target) {
                Ok(()) => {
                    // The directory now lives under its ID; nothing left to clean up.
                    let _ = staging.keep();
                    if synced {
                        sync_dir(&self.root);
                    }
                    return Ok(package);
                }
                Err(e) if target.exists() && is_taken(&e) => {
                    let next = package
                        .id()
                        .next()
                        .ok_or_else(|| Error::invalid("ID", "no free package ID left"))?;
                    package = package.with_id(next);
                }
                Err(e) => return Err(Error::io("publishing the package as", target, e)),
            }
        }
    }

    /// Reads package `id`'s `info`.
    pub fn load(&self, id: PackageId) -> Result<StoredPackage> {
        let dir = self.package_dir(id);
        let info_path = dir.join(INFO_FILE);
        let bytes = match fs::read(&info_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NotFound {
                    id: id.to_string(),
                    dir: self.root.clone(),
                });
            }
            Err(e) => return Err(Error::io("reading", info_path, e)),
        };
        let info = PackageInfo::parse(&bytes)?;
        if info.id != id {
            return Err(Error::invalid(
                "ID",
                format!(
                    "{} says ID {} but lives in directory {id}; the agent would report ERR_BAD_ID",
                    info_path.display(),
                    info.id
                ),
            ));
        }
        let archive_size = match fs::metadata(dir.join(ARCHIVE_FILE)) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(Error::io("reading", dir.join(ARCHIVE_FILE), e)),
        };
        if let Some(integrity) = &info.integrity {
            let expected = integrity.plan().payload_size();
            if archive_size != expected {
                return Err(Error::Archive {
                    path: dir.join(ARCHIVE_FILE),
                    reason: format!(
                        "is {archive_size} bytes but info says {expected}; the package is incomplete (a crash during its build?): delete and rebuild it"
                    ),
                });
            }
        }
        Ok(StoredPackage {
            info,
            dir,
            archive_size,
        })
    }

    /// Removes package `id`'s directory; `false` when there is none. The directory is first
    /// renamed into a hidden one beside the packages and only then deleted, so a server
    /// reading the repository sees the whole package or nothing (a file it already has
    /// open stays readable until it closes it).
    pub fn remove(&self, id: PackageId) -> Result<bool> {
        let dir = self.package_dir(id);
        match fs::symlink_metadata(&dir) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io("reading", dir, e)),
        }
        let trash = tempfile::Builder::new()
            .prefix(".removing-")
            .tempdir_in(&self.root)
            .map_err(|e| {
                Error::io(
                    "creating a directory to remove the package in",
                    &self.root,
                    e,
                )
            })?;
        let moved = trash.path().join(id.to_string());
        match fs::rename(&dir, &moved) {
            Ok(()) => {}
            // Removed meanwhile by someone else: the result is the same.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io("moving the package out of sight:", dir, e)),
        }
        if self.durability == Durability::Synced {
            sync_dir(&self.root);
        }
        let trash_path = trash.path().to_owned();
        trash
            .close()
            .map_err(|e| Error::io("removing (the package is already gone from the repository; delete this leftover by hand)", trash_path, e))?;
        Ok(true)
    }

    /// IDs of every package directory, ascending. Staging directories are skipped.
    pub fn list(&self) -> Result<Vec<PackageId>> {
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("listing", &self.root, e)),
        };
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("listing", &self.root, e))?;
            if let Some(id) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<PackageId>().ok())
            {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        Ok(ids)
    }
}

/// Stores `source` into `archive` while digesting it; fragments are `fragment_size` long,
/// or cut as `plan` says when the split is known in advance (an import).
pub(crate) fn digest_into(
    archive: File,
    source: PayloadSource<'_>,
    fragment_size: u64,
    plan: Option<&FragmentPlan>,
    durability: Durability,
    progress: &mut dyn FnMut(u64),
    archive_path: &Path,
) -> Result<PayloadDigests> {
    let write_error = |e| Error::io("writing", archive_path, e);
    let mut payload_file = None;
    let mut reserved = 0;
    if let PayloadSource::File(path) = &source {
        let file = File::open(path).map_err(|e| Error::io("opening", path, e))?;
        reserved = preallocate(&archive, &file);
        payload_file = Some(file);
    }
    let archive = SyncingFile::new(archive, durability).map_err(write_error)?;
    let mut digester = match plan {
        Some(plan) => Digester::for_plan(archive, plan),
        None => Digester::new(archive, fragment_size),
    }
    .map_err(write_error)?;
    match source {
        PayloadSource::File(path) => {
            let Some(mut file) = payload_file else {
                return Err(Error::io(
                    "opening",
                    path,
                    io::Error::other("the payload file was not opened"),
                ));
            };
            digester
                .pump(&mut file, progress)
                .map_err(|e| Error::io("reading or storing", path, e))?;
        }
        PayloadSource::Reader(reader) => {
            digester
                .pump(reader, progress)
                .map_err(|e| Error::io("reading the payload stream into", archive_path, e))?;
        }
        PayloadSource::Directory(dir) => {
            let mut progress_writer = ProgressWriter {
                inner: &mut digester,
                written: 0,
                progress,
            };
            archive_directory(dir, &mut progress_writer)
                .map_err(|e| Error::io("archiving", dir, e))?;
        }
    }
    let (digests, archive) = digester.finish().map_err(write_error)?;
    if reserved > digests.size {
        // The payload shrank while it was read: give back the blocks past its end.
        archive.file.set_len(digests.size).map_err(write_error)?;
    }
    archive.finish().map_err(write_error)?;
    Ok(digests)
}

/// Reserves the archive's blocks when the payload is a regular file, so that ext4 writes
/// into one preallocated extent instead of allocating as it goes (measured on the
/// reference machine: 1 GiB written and fdatasync'd, median 0.58 s vs 1.32 s of sys time).
/// `KEEP_SIZE`: the archive's length still grows only as bytes are written, so an archive
/// cut short by a crash still shows as shorter than `info` says. Best effort (a file system
/// without `fallocate` only loses the gain). Returns the bytes reserved.
#[cfg(target_os = "linux")]
fn preallocate(archive: &File, payload: &File) -> u64 {
    use rustix::fs::{FallocateFlags, fallocate};
    match payload.metadata() {
        Ok(meta) if meta.is_file() && meta.len() > 0 => {
            match fallocate(archive, FallocateFlags::KEEP_SIZE, 0, meta.len()) {
                Ok(()) => meta.len(),
                Err(_) => 0,
            }
        }
        _ => 0,
    }
}

#[cfg(not(target_os = "linux"))]
fn preallocate(_archive: &File, _payload: &File) -> u64 {
    0
}

/// A deterministic `.tar.gz` of `dir`'s contents (relative paths, no owners or times), so
/// that the same tree always gives the same digests. Symlinks are stored as symlinks.
fn archive_directory(dir: &Path, out: &mut dyn Write) -> io::Result<()> {
    let gz = GzEncoder::new(
        BufWriter::with_capacity(256 * 1024, out),
        Compression::default(),
    );
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    tar.follow_symlinks(false);
    tar.append_dir_all(".", dir)?;
    let gz = tar.into_inner()?;
    gz.finish()?.flush()
}

struct ProgressWriter<'a, W: Write> {
    inner: &'a mut W,
    written: u64,
    progress: &'a mut dyn FnMut(u64),
}

impl<W: Write> Write for ProgressWriter<'_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(data)?;
        self.written += n as u64;
        (self.progress)(self.written);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The archive file, flushed to disk while it is written: every `SYNC_EVERY` bytes a
/// helper thread (which waits on the disk, not the CPU) runs `fdatasync` on a second
/// handle, so the final sync before publishing has little left to do instead of writing
/// the whole payload after hashing has finished.
struct SyncingFile {
    file: File,
    durability: Durability,
    unsynced: u64,
    wake: Option<std::sync::mpsc::SyncSender<()>>,
    syncer: Option<std::thread::JoinHandle<io::Result<()>>>,
}

const SYNC_EVERY: u64 = 32 * 1024 * 1024;

impl SyncingFile {
    fn new(file: File, durability: Durability) -> io::Result<Self> {
        if durability == Durability::WriteBack {
            return Ok(Self {
                file,
                durability,
                unsynced: 0,
                wake: None,
                syncer: None,
            });
        }
        let handle = file.try_clone()?;
        // One pending request is enough: a sync covers everything written before it.
        let (wake, requests) = std::sync::mpsc::sync_channel::<()>(1);
        let syncer = std::thread::Builder::new()
            .name("tessera-fsync".into())
            .spawn(move || {
                for () in requests {
                    handle.sync_data()?;
                }
                Ok(())
            })?;
        Ok(Self {
            file,
            durability,
            unsynced: 0,
            wake: Some(wake),
            syncer: Some(syncer),
        })
    }

    fn finish(mut self) -> io::Result<()> {
        if self.durability == Durability::WriteBack {
            return Ok(());
        }
        self.wake = None;
        match self.syncer.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result?,
            Some(Err(_)) => return Err(io::Error::other("the fsync helper thread panicked")),
            None => return Err(io::Error::other("an earlier fsync of the archive failed")),
        }
        self.file.sync_all()
    }
}

impl Write for SyncingFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.file.write(data)?;
        self.unsynced += n as u64;
        if self.unsynced >= SYNC_EVERY {
            self.unsynced = 0;
            if let Some(wake) = &self.wake {
                // Full means a sync is already queued, which will cover these bytes too.
                if let Err(std::sync::mpsc::TrySendError::Disconnected(())) = wake.try_send(()) {
                    // The helper only stops on an fsync error: report that error.
                    self.wake = None;
                    return Err(
                        match self.syncer.take().map(std::thread::JoinHandle::join) {
                            Some(Ok(Err(e))) => e,
                            _ => io::Error::other("the fsync helper thread stopped"),
                        },
                    );
                }
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

fn unix_seconds(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn is_taken(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::AlreadyExists | io::ErrorKind::DirectoryNotEmpty
    )
}

pub(crate) fn write_info(path: &Path, bytes: &[u8], synced: bool) -> Result<()> {
    let mut file = File::create(path).map_err(|e| Error::io("creating", path, e))?;
    file.write_all(bytes)
        .map_err(|e| Error::io("writing", path, e))?;
    if synced {
        file.sync_all().map_err(|e| Error::io("writing", path, e))?;
    }
    Ok(())
}

/// Makes the rename durable; best effort (not every file system supports it).
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}
