//! Importing packages from an OCS Inventory NG server, so that its administrators keep
//! their existing packages.
//!
//! The console keeps each package as `download/<ID>/info` plus split fragment files
//! `<ID>-1 … <ID>-N`; Tessera keeps one `archive` per package and serves fragments as byte
//! ranges of it. An import concatenates the fragments into the archive in one streaming
//! pass (the builder's [`Digester`](crate::Digester), so memory stays bounded), checks the
//! whole payload against the digest the console's `info` declares, and publishes the
//! package atomically under the same ID. The fragment plan keeps the console's boundaries
//! (`size / N` bytes each, the last takes the remainder), so an unmodified OCS agent that
//! already holds some fragments of a package gets the same bytes for the rest.
//!
//! Nothing of a refused import stays behind: the archive is written into a hidden
//! `.importing-*` directory that is removed on any error.

use std::fmt::Display;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::digest::{DigestAlgorithm, Md5Digest, OcsDigest};
use crate::error::{Error, Result};
use crate::fragment::FragmentPlan;
use crate::info::{Integrity, MAX_INFO_BYTES, PackageInfo};
use crate::model::{Label, PackageId};
use crate::repository::{
    ARCHIVE_FILE, DEFAULT_FRAGMENT_SIZE, Durability, INFO_FILE, PayloadSource, Repository,
    digest_into, sync_dir, write_info,
};

/// A package directory as the OCS console leaves it, checked and ready to import: its
/// `info`, and fragment files that are all present, regular and split the console's way.
#[derive(Debug, Clone)]
pub struct ConsolePackage {
    dir: PathBuf,
    info: PackageInfo,
    /// `<ID>-1 … <ID>-N` with the identity and length they had when checked.
    fragments: Vec<FragmentFile>,
    plan: FragmentPlan,
}

#[derive(Debug, Clone)]
struct FragmentFile {
    path: PathBuf,
    length: u64,
    dev: u64,
    ino: u64,
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImportOutcome {
    /// The package is now in the repository.
    Imported,
    /// The repository already held this very package under this ID: nothing was written.
    Unchanged,
}

/// A package imported (or found already imported).
#[derive(Debug, Clone)]
pub struct Imported {
    /// Imported now, or already there.
    pub outcome: ImportOutcome,
    /// The `info` as the repository holds it (console attributes + Tessera's).
    pub info: PackageInfo,
    /// The package's directory in the repository.
    pub dir: PathBuf,
}

/// The package directories in `dir`: `dir` itself when it holds an `info` file, otherwise
/// every sub-directory named by a package ID (an OCS `download/` directory), by ID.
/// Entries named otherwise are not packages and are left alone.
pub fn find_console_packages(dir: &Path) -> Result<Vec<PathBuf>> {
    if fs::symlink_metadata(dir.join(INFO_FILE)).is_ok() {
        return Ok(vec![dir.to_owned()]);
    }
    let entries = fs::read_dir(dir).map_err(|e| Error::io("listing", dir, e))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("listing", dir, e))?;
        if let Some(id) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<PackageId>().ok())
        {
            found.push((id, entry.path()));
        }
    }
    if found.is_empty() {
        return Err(Error::invalid(
            "package directory",
            format!(
                "{}: no OCS package here; give a package directory (holding info and <ID>-1 …) or the console's download/ directory holding <ID>/ directories",
                dir.display()
            ),
        ));
    }
    found.sort_unstable();
    Ok(found.into_iter().map(|(_, path)| path).collect())
}

impl ConsolePackage {
    /// Reads `dir/info` and checks the fragment files against it, without reading their
    /// contents: `dir` is named by the package's ID (as in the console's `download/<ID>/`)
    /// and is no symbolic link; exactly `FRAGS` fragments `<ID>-1 … <ID>-N` are there, each
    /// a regular file (no symbolic link), and no other file; their sizes are the console's
    /// split or Tessera's.
    pub fn read(dir: &Path) -> Result<Self> {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let id: PackageId = name.parse().map_err(|_| {
            Error::invalid(
                "package directory",
                format!(
                    "{}: the directory's name {name:?} is not a package ID; the OCS console keeps each package in download/<ID>/ (digits only): give that directory",
                    dir.display()
                ),
            )
        })?;
        let meta = fs::symlink_metadata(dir).map_err(|e| Error::io("reading", dir, e))?;
        if !meta.is_dir() {
            return Err(refused(
                dir,
                id,
                "is not a directory (a symbolic link is not followed: give the real directory)",
            ));
        }
        let info_path = dir.join(INFO_FILE);
        let (info_file, _, _) = open_regular(&info_path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => refused(dir, id, "has no info file"),
            _ => Error::io("opening", &info_path, e),
        })?;
        let mut bytes = Vec::new();
        info_file
            .take(MAX_INFO_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("reading", &info_path, e))?;
        let info = PackageInfo::parse(&bytes)?;
        if info.id != id {
            return Err(refused(
                dir,
                id,
                format!(
                    "info says ID {} but the directory is named {id}; the console names both alike, so this directory was renamed or mixed up",
                    info.id
                ),
            ));
        }
        if let Some(digest) = &info.digest
            && digest.algorithm != DigestAlgorithm::Md5
            && info.fragment_count > 0
        {
            return Err(refused(
                dir,
                id,
                "info declares a SHA1 digest, which cannot be verified here (and the Debian OCS agent cannot verify it either): rebuild the package on the console with MD5",
            ));
        }
        let fragments = Self::fragment_files(dir, &info)?;
        let plan = console_plan(dir, id, &fragments)?;
        Ok(Self {
            dir: dir.to_owned(),
            info,
            fragments,
            plan,
        })
    }

    fn fragment_files(dir: &Path, info: &PackageInfo) -> Result<Vec<FragmentFile>> {
        let id = info.id;
        let count = info.fragment_count;
        let prefix = format!("{id}-");
        let mut present = vec![false; count as usize];
        let entries = fs::read_dir(dir).map_err(|e| Error::io("listing", dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("listing", dir, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name == INFO_FILE {
                continue;
            }
            let number = name
                .strip_prefix(&prefix)
                .filter(|n| !n.is_empty() && !n.starts_with('0'))
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| n.parse::<u32>().ok());
            match number {
                Some(n) if n >= 1 && n <= count => present[n as usize - 1] = true,
                Some(_) => {
                    return Err(refused(
                        dir,
                        id,
                        format!(
                            "extra fragment {name}: info says FRAGS={count}; remove it or copy the directory again from the OCS server"
                        ),
                    ));
                }
                None => {
                    return Err(refused(
                        dir,
                        id,
                        format!(
                            "unexpected file {name:?}: an OCS package directory holds only info and {id}-1 … {id}-{count}; move it away"
                        ),
                    ));
                }
            }
        }
        if let Some(missing) = present.iter().position(|p| !p) {
            return Err(refused(
                dir,
                id,
                format!(
                    "fragment {id}-{} is missing (info says FRAGS={count}): copy the whole directory from the OCS server",
                    missing + 1
                ),
            ));
        }
        let mut fragments = Vec::with_capacity(count as usize);
        for n in 1..=count {
            let path = dir.join(format!("{id}-{n}"));
            let meta = fs::symlink_metadata(&path).map_err(|e| Error::io("reading", &path, e))?;
            if meta.file_type().is_symlink() {
                return Err(refused(
                    dir,
                    id,
                    format!(
                        "fragment {id}-{n} is a symbolic link; refusing to follow it (copy the real file)"
                    ),
                ));
            }
            if !meta.is_file() {
                return Err(refused(
                    dir,
                    id,
                    format!("fragment {id}-{n} is not a regular file"),
                ));
            }
            if meta.len() == 0 {
                return Err(refused(
                    dir,
                    id,
                    format!(
                        "fragment {id}-{n} is empty; the console never writes an empty fragment, so the copy is incomplete"
                    ),
                ));
            }
            fragments.push(FragmentFile {
                path,
                length: meta.len(),
                dev: meta.dev(),
                ino: meta.ino(),
            });
        }
        Ok(fragments)
    }

    /// The package directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What the console's `info` says.
    pub fn info(&self) -> &PackageInfo {
        &self.info
    }

    /// How the fragments cut the payload (the console's boundaries).
    pub fn plan(&self) -> &FragmentPlan {
        &self.plan
    }

    /// Bytes in all fragments together.
    pub fn payload_size(&self) -> u64 {
        self.plan.payload_size()
    }
}

/// The plan the fragment files' sizes describe: the console's split (`size / N` each, the
/// last one takes the remainder) or Tessera's (fixed size, shorter last one). Anything
/// else cannot be served as byte ranges with the same boundaries.
fn console_plan(dir: &Path, id: PackageId, fragments: &[FragmentFile]) -> Result<FragmentPlan> {
    let Some((last, others)) = fragments.split_last() else {
        return FragmentPlan::with_fragment_size(0, DEFAULT_FRAGMENT_SIZE);
    };
    let size = fragments
        .iter()
        .try_fold(0u64, |sum, f| sum.checked_add(f.length))
        .ok_or_else(|| refused(dir, id, "the fragments add up to more than 16 EiB"))?;
    let first = others.first().map_or(last.length, |f| f.length);
    let uneven = others.iter().position(|f| f.length != first);
    let count = u32::try_from(fragments.len()).unwrap_or(u32::MAX);
    let plan = match uneven {
        None if last.length <= first => FragmentPlan::with_fragment_size(size, first).ok(),
        None => FragmentPlan::console_split(size, count)
            .ok()
            .filter(|plan| plan.fragment_size() == first),
        Some(_) => None,
    };
    plan.filter(|plan| plan.count() == count).ok_or_else(|| {
        let sizes: Vec<String> = fragments.iter().map(|f| f.length.to_string()).collect();
        refused(
            dir,
            id,
            format!(
                "fragment sizes {} are not an OCS console split (every fragment size / FRAGS bytes, the last one the remainder); a fragment is truncated or from another package: copy the directory again from the OCS server",
                sizes.join(", ")
            ),
        )
    })
}

impl Repository {
    /// Imports an OCS console package under its own ID: concatenates its fragments into
    /// the archive (one streaming pass computing MD5 and Tessera's SHA-256 digests),
    /// checks the whole payload against the `info`'s digest, then publishes `info` (the
    /// console's attributes with Tessera's added, `DIGEST` rewritten as MD5/Hexa) and
    /// `archive` atomically. `label` becomes `TESSERA_NAME`/`TESSERA_VERSION` (default:
    /// the `info`'s own, which a console `info` does not have).
    ///
    /// An ID already in the repository is refused unless it holds this very package, in
    /// which case nothing is written and the outcome is [`ImportOutcome::Unchanged`].
    /// `progress` receives the number of payload bytes read so far.
    pub fn import(
        &self,
        package: &ConsolePackage,
        label: Option<Label>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Imported> {
        let id = package.info.id;
        let target = self.package_dir(id);
        // Cheap refusal before reading anything: another package under this ID.
        if let Ok(existing) = self.load(id)
            && !may_be_same(&existing.info, &package.info)
        {
            return Err(taken(&target, id));
        }

        fs::create_dir_all(self.root()).map_err(|e| Error::io("creating", self.root(), e))?;
        let staging = tempfile::Builder::new()
            .prefix(".importing-")
            .tempdir_in(self.root())
            .map_err(|e| Error::io("creating a staging directory in", self.root(), e))?;
        let archive_path = staging.path().join(ARCHIVE_FILE);
        let archive =
            File::create(&archive_path).map_err(|e| Error::io("creating", &archive_path, e))?;
        let mut reader = FragmentReader::new(&package.fragments);
        let digests = digest_into(
            archive,
            PayloadSource::Reader(&mut reader),
            package.plan.fragment_size(),
            Some(&package.plan),
            self.durability(),
            progress,
            &archive_path,
        )?;
        if digests.size != package.plan.payload_size() {
            return Err(refused(
                &package.dir,
                id,
                format!(
                    "the fragments held {} bytes when read but {} when checked: they changed during the import; try again",
                    digests.size,
                    package.plan.payload_size()
                ),
            ));
        }
        let digest = if package.info.fragment_count == 0 {
            // The console writes DIGEST="" for a package without payload.
            None
        } else {
            verify_digest(package, &digests.md5)?;
            Some(OcsDigest::md5_hexa(digests.md5))
        };
        let integrity = Integrity::new(package.plan, digests.sha256, digests.fragment_sha256)?;
        let info = PackageInfo {
            digest,
            label: label.or_else(|| package.info.label.clone()),
            integrity: Some(integrity),
            ..package.info.clone()
        };

        if fs::symlink_metadata(&target).is_ok() {
            return match self.load(id) {
                Ok(existing) if existing.info == info => Ok(Imported {
                    outcome: ImportOutcome::Unchanged,
                    info,
                    dir: target,
                }),
                _ => Err(taken(&target, id)),
            };
        }
        let synced = self.durability() == Durability::Synced;
        write_info(
            &staging.path().join(INFO_FILE),
            info.to_xml().as_bytes(),
            synced,
        )?;
        if synced {
            sync_dir(staging.path());
        }
        match rename_no_replace(staging.path(), &target) {
            Ok(()) => {
                // The directory now lives under its ID; nothing left to clean up.
                let _ = staging.keep();
                if synced {
                    sync_dir(self.root());
                }
                Ok(Imported {
                    outcome: ImportOutcome::Imported,
                    info,
                    dir: target,
                })
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::AlreadyExists | io::ErrorKind::DirectoryNotEmpty
                ) =>
            {
                Err(taken(&target, id))
            }
            Err(e) => Err(Error::io("publishing the package as", target, e)),
        }
    }
}

/// Whether a package already in the repository could be the one being imported (same
/// fragment count and payload MD5); decided for certain after digesting.
fn may_be_same(existing: &PackageInfo, console: &PackageInfo) -> bool {
    if existing.fragment_count != console.fragment_count {
        return false;
    }
    match (&existing.digest, &console.digest) {
        (Some(stored), Some(declared)) => stored
            .value
            .parse::<Md5Digest>()
            .is_ok_and(|md5| declared.verify_md5(&md5).is_ok()),
        (None, None) => true,
        _ => false,
    }
}

fn verify_digest(package: &ConsolePackage, md5: &Md5Digest) -> Result<()> {
    let id = package.info.id;
    let Some(declared) = &package.info.digest else {
        return Err(refused(
            &package.dir,
            id,
            "info declares fragments but no DIGEST",
        ));
    };
    declared.verify_md5(md5).map_err(|e| match e {
        Error::PayloadDigestMismatch {
            expected, actual, ..
        } => refused(
            &package.dir,
            id,
            format!(
                "the fragments {id}-1 … {id}-{} have MD5 {actual} but info says {expected}: a fragment is corrupt or from another package; copy the directory again from the OCS server",
                package.info.fragment_count
            ),
        ),
        other => other,
    })
}

fn refused(dir: &Path, id: PackageId, reason: impl Display) -> Error {
    Error::invalid(
        "package directory",
        format!("{} (package {id}): {reason}", dir.display()),
    )
}

fn taken(target: &Path, id: PackageId) -> Error {
    Error::invalid(
        "ID",
        format!(
            "package {id} already exists in {} with other content; delete it first (`tessera-server package delete {id}`) if the imported one should replace it",
            target.display()
        ),
    )
}

/// Opens a regular file without following a symbolic link: the file opened must be the
/// one `lstat` saw (a link swapped in between is caught by its device and inode).
fn open_regular(path: &Path) -> io::Result<(File, u64, (u64, u64))> {
    let before = fs::symlink_metadata(path)?;
    if before.file_type().is_symlink() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is a symbolic link; refusing to follow it",
        ));
    }
    if !before.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is not a regular file",
        ));
    }
    let file = File::open(path)?;
    let after = file.metadata()?;
    if (after.dev(), after.ino()) != (before.dev(), before.ino()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "was replaced while it was opened",
        ));
    }
    Ok((file, after.len(), (after.dev(), after.ino())))
}

/// The fragment files one after the other, each opened only when reached (one open file
/// at a time) and held to the identity and length checked before.
struct FragmentReader<'a> {
    fragments: &'a [FragmentFile],
    next: usize,
    current: Option<(io::Take<File>, &'a FragmentFile)>,
}

impl<'a> FragmentReader<'a> {
    fn new(fragments: &'a [FragmentFile]) -> Self {
        Self {
            fragments,
            next: 0,
            current: None,
        }
    }

    fn changed(fragment: &FragmentFile, what: &str) -> io::Error {
        io::Error::other(format!(
            "fragment {} {what} during the import; try again",
            fragment.path.display()
        ))
    }
}

impl Read for FragmentReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some((file, fragment)) = &mut self.current {
                let n = file.read(out)?;
                if n > 0 {
                    return Ok(n);
                }
                if file.limit() > 0 {
                    return Err(Self::changed(fragment, "shrank"));
                }
                if file.get_mut().read(&mut [0u8; 1])? > 0 {
                    return Err(Self::changed(fragment, "grew"));
                }
                self.current = None;
            }
            let Some(fragment) = self.fragments.get(self.next) else {
                return Ok(0);
            };
            self.next += 1;
            let (file, _, identity) = open_regular(&fragment.path).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("opening fragment {}: {e}", fragment.path.display()),
                )
            })?;
            if identity != (fragment.dev, fragment.ino) {
                return Err(Self::changed(fragment, "was replaced"));
            }
            self.current = Some((file.take(fragment.length), fragment));
        }
    }
}

/// `rename` that never replaces an existing target (an empty directory would otherwise
/// be replaced silently). Falls back to plain `rename` where `RENAME_NOREPLACE` is not
/// supported, which still refuses a non-empty directory.
#[cfg(target_os = "linux")]
fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {
            fs::rename(from, to)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(target_os = "linux"))]
fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    fs::rename(from, to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Md5Hasher;
    use proptest::prelude::*;
    use std::io::Write as _;
    use std::time::{Duration, UNIX_EPOCH};

    const ID: u64 = 1_716_800_000;

    /// The fragment split of `PackageBuilder.php::fragmentPackage`: N - 1 fragments of
    /// `size / N` bytes, the last one the remainder.
    fn console_fragments(payload: &[u8], count: usize) -> Vec<&[u8]> {
        let each = payload.len() / count;
        let mut out = Vec::new();
        for i in 0..count - 1 {
            out.push(&payload[i * each..(i + 1) * each]);
        }
        out.push(&payload[(count - 1) * each..]);
        out
    }

    /// The `info` exactly as the console writes it (spec §3.1), for `payload` in `count`
    /// fragments.
    fn console_info(id: u64, payload: &[u8], count: usize) -> String {
        let digest = if count == 0 {
            String::new()
        } else {
            Md5Hasher::digest(payload).to_hex()
        };
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DOWNLOAD ID=\"{id}\" PRI=\"5\" ACT=\"EXECUTE\" DIGEST=\"{digest}\" PROTO=\"HTTPS\" FRAGS=\"{count}\" DIGEST_ALGO=\"MD5\" DIGEST_ENCODE=\"Hexa\" COMMAND=\"sh bashscript.sh \" NOTIFY_USER=\"0\" NOTIFY_TEXT=\"\" NOTIFY_COUNTDOWN=\"\" NOTIFY_CAN_ABORT=\"0\" NOTIFY_CAN_DELAY=\"0\" NEED_DONE_ACTION=\"0\" NEED_DONE_ACTION_TEXT=\"\" GARDEFOU=\"rien\" />\n"
        )
    }

    /// An OCS `download/<id>/` directory under `parent`.
    fn console_dir(parent: &Path, id: u64, payload: &[u8], count: usize) -> PathBuf {
        let dir = parent.join(id.to_string());
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("info"), console_info(id, payload, count)).unwrap();
        if count > 0 {
            for (i, fragment) in console_fragments(payload, count).iter().enumerate() {
                fs::write(dir.join(format!("{id}-{}", i + 1)), fragment).unwrap();
            }
        }
        dir
    }

    fn payload(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    fn repo(dir: &Path) -> Repository {
        Repository::new(dir.join("repo")).with_durability(Durability::WriteBack)
    }

    fn import(repo: &Repository, dir: &Path) -> Result<Imported> {
        repo.import(&ConsolePackage::read(dir)?, None, &mut |_| {})
    }

    /// Nothing but published packages: no staging directory left behind.
    fn leftovers(repo: &Repository) -> Vec<String> {
        fs::read_dir(repo.root())
            .map(|entries| {
                entries
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|name| name.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn console_package_becomes_one_archive_with_the_console_boundaries() {
        let tmp = tempfile::tempdir().unwrap();
        let data = payload(10_007, 1);
        let dir = console_dir(tmp.path(), ID, &data, 3);
        let repo = repo(tmp.path());
        let imported = import(&repo, &dir).unwrap();
        assert_eq!(imported.outcome, ImportOutcome::Imported);

        let stored = repo.load(PackageId::new(ID).unwrap()).unwrap();
        assert_eq!(fs::read(stored.archive_path()).unwrap(), data);
        assert_eq!(stored.info, imported.info);
        assert_eq!(stored.info.fragment_count, 3);
        // Served fragment n = the console's file ID-n, byte for byte, so an agent holding
        // some of them from the OCS server can finish from Tessera.
        for n in 1..=3u32 {
            let fragment = stored.fragment(n).unwrap();
            let start = usize::try_from(fragment.offset).unwrap();
            let end = start + usize::try_from(fragment.length).unwrap();
            let console = fs::read(dir.join(format!("{ID}-{n}"))).unwrap();
            assert_eq!(&data[start..end], console.as_slice(), "fragment {n}");
        }
        assert_eq!(stored.fragment(3).unwrap().length, 3337);
        // The console's attributes survive; the digest is the MD5 the console declared.
        assert_eq!(
            stored.info.action,
            crate::Action::Execute {
                command: "sh bashscript.sh ".into()
            }
        );
        assert_eq!(stored.info.priority.get(), 5);
        assert_eq!(
            stored.info.digest.as_ref().unwrap().value,
            Md5Hasher::digest(&data).to_hex()
        );
        assert!(stored.info.label.is_none());
        // Tessera agents verify every fragment: the reassembly of the served ranges passes.
        let mut assembler = crate::Assembler::new(&stored.info, Vec::new());
        for n in 1..=3u32 {
            let f = stored.fragment(n).unwrap();
            let range = f.offset as usize..(f.offset + f.length) as usize;
            assembler.append(n, &data[range]).unwrap();
        }
        assert_eq!(assembler.finish().unwrap(), data);
        assert!(leftovers(&repo).is_empty());
    }

    #[test]
    fn reimporting_the_same_package_is_a_no_op_and_another_one_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = repo(tmp.path());
        let data = payload(5000, 2);
        let dir = console_dir(&tmp.path().join("a"), ID, &data, 2);
        import(&repo, &dir).unwrap();
        let info_before = fs::read(repo.package_dir(PackageId::new(ID).unwrap()).join("info"));
        let again = import(&repo, &dir).unwrap();
        assert_eq!(again.outcome, ImportOutcome::Unchanged);
        let info_after = fs::read(repo.package_dir(PackageId::new(ID).unwrap()).join("info"));
        assert_eq!(info_before.unwrap(), info_after.unwrap());

        let other = console_dir(&tmp.path().join("b"), ID, &payload(5000, 3), 2);
        let err = import(&repo, &other).unwrap_err().to_string();
        assert!(
            err.contains("already exists") && err.contains("package delete"),
            "{err}"
        );
        // Same MD5 and count but a name given: the info would differ, refused as well.
        let named = repo.import(
            &ConsolePackage::read(&dir).unwrap(),
            Some(Label::new("x", "1").unwrap()),
            &mut |_| {},
        );
        assert!(named.unwrap_err().to_string().contains("already exists"));
        assert!(leftovers(&repo).is_empty());
    }

    #[test]
    fn a_tessera_built_package_under_the_same_id_is_not_identical() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = repo(tmp.path());
        let data = payload(100, 4);
        let spec = crate::PackageSpec {
            label: Label::new("built", "1").unwrap(),
            priority: crate::Priority::new(5).unwrap(),
            action: crate::Action::execute("sh bashscript.sh ").unwrap(),
            protocol: crate::Protocol::Https,
            notification: crate::Notification::default(),
        };
        repo.build(
            spec,
            PayloadSource::Reader(&mut &data[..]),
            50,
            UNIX_EPOCH + Duration::from_secs(ID),
            &mut |_| {},
        )
        .unwrap();
        let dir = console_dir(tmp.path(), ID, &data, 2);
        let err = import(&repo, &dir).unwrap_err().to_string();
        assert!(err.contains("already exists"), "{err}");
    }

    #[test]
    fn corrupt_fragment_is_refused_and_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let data = payload(3000, 5);
        let dir = console_dir(tmp.path(), ID, &data, 3);
        let fragment = dir.join(format!("{ID}-2"));
        let mut bytes = fs::read(&fragment).unwrap();
        bytes[10] ^= 0xff;
        fs::write(&fragment, bytes).unwrap();
        let repo = repo(tmp.path());
        let err = import(&repo, &dir).unwrap_err().to_string();
        assert!(
            err.contains(&format!("package {ID}"))
                && err.contains("MD5")
                && err.contains("corrupt"),
            "{err}"
        );
        assert!(repo.list().unwrap().is_empty());
        assert!(leftovers(&repo).is_empty(), "{:?}", leftovers(&repo));
    }

    #[test]
    fn base64_console_digest_is_verified_and_rewritten_as_hex() {
        use base64::Engine as _;
        let tmp = tempfile::tempdir().unwrap();
        let data = payload(999, 6);
        let dir = console_dir(tmp.path(), ID, &data, 2);
        let md5 = Md5Hasher::digest(&data);
        let b64 = base64::engine::general_purpose::STANDARD.encode(md5.as_bytes());
        let info = console_info(ID, &data, 2)
            .replace(&md5.to_hex(), &b64)
            .replace("DIGEST_ENCODE=\"Hexa\"", "DIGEST_ENCODE=\"Base64\"");
        fs::write(dir.join("info"), info).unwrap();
        let imported = import(&repo(tmp.path()), &dir).unwrap();
        assert_eq!(imported.info.digest, Some(OcsDigest::md5_hexa(md5)));

        let sha1 = console_info(ID, &data, 2).replace("\"MD5\"", "\"SHA1\"");
        fs::write(dir.join("info"), sha1).unwrap();
        let err = ConsolePackage::read(&dir).unwrap_err().to_string();
        assert!(err.contains("SHA1"), "{err}");
    }

    #[test]
    fn missing_and_extra_fragments_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let data = payload(3000, 7);
        let dir = console_dir(tmp.path(), ID, &data, 3);
        fs::remove_file(dir.join(format!("{ID}-2"))).unwrap();
        let err = ConsolePackage::read(&dir).unwrap_err().to_string();
        assert!(
            err.contains(&format!("fragment {ID}-2 is missing")) && err.contains("FRAGS=3"),
            "{err}"
        );

        let dir = console_dir(&tmp.path().join("x"), ID, &data, 3);
        fs::write(dir.join(format!("{ID}-4")), b"more").unwrap();
        let err = ConsolePackage::read(&dir).unwrap_err().to_string();
        assert!(err.contains(&format!("extra fragment {ID}-4")), "{err}");

        let dir = console_dir(&tmp.path().join("y"), ID, &data, 3);
        fs::write(dir.join(format!("{ID}-01")), b"x").unwrap();
        assert!(ConsolePackage::read(&dir).is_err());

        let dir = console_dir(&tmp.path().join("z"), ID, &data, 3);
        fs::write(dir.join("notes.txt"), b"x").unwrap();
        let err = ConsolePackage::read(&dir).unwrap_err().to_string();
        assert!(err.contains("unexpected file \"notes.txt\""), "{err}");
    }

    #[test]
    fn truncated_fragment_is_caught_by_its_size() {
        let tmp = tempfile::tempdir().unwrap();
        let data = payload(3000, 8);
        let dir = console_dir(tmp.path(), ID, &data, 3);
        let first = dir.join(format!("{ID}-1"));
        let bytes = fs::read(&first).unwrap();
        fs::write(&first, &bytes[..bytes.len() - 1]).unwrap();
        let err = ConsolePackage::read(&dir).unwrap_err().to_string();
        assert!(err.contains("not an OCS console split"), "{err}");
    }

    #[test]
    fn hostile_names_and_symlinks_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let data = payload(3000, 9);
        let dir = console_dir(tmp.path(), ID, &data, 3);
        // A directory not named by an ID: `..`, `ID/..`, a name with dots.
        for bad in [
            dir.join(".."),
            tmp.path().join(".."),
            tmp.path().join(format!("{ID}..")),
        ] {
            let err = ConsolePackage::read(&bad).unwrap_err().to_string();
            assert!(err.contains("not a package ID"), "{}: {err}", bad.display());
        }
        // A fragment that is a symbolic link to a file outside.
        let secret = tmp.path().join("secret");
        fs::write(&secret, vec![b's'; 1000]).unwrap();
        let link = dir.join(format!("{ID}-3"));
        fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        let err = ConsolePackage::read(&dir).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        // The info file as a link, and the package directory as a link.
        let dir2 = console_dir(&tmp.path().join("b"), ID, &data, 3);
        fs::remove_file(dir2.join("info")).unwrap();
        std::os::unix::fs::symlink(dir.join("info"), dir2.join("info")).unwrap();
        let err = ConsolePackage::read(&dir2).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        let linked = tmp.path().join("c");
        fs::create_dir(&linked).unwrap();
        std::os::unix::fs::symlink(&dir, linked.join(ID.to_string())).unwrap();
        let err = ConsolePackage::read(&linked.join(ID.to_string()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a directory"), "{err}");
        // An info naming another ID than its directory.
        let dir3 = console_dir(&tmp.path().join("d"), ID, &data, 3);
        fs::write(dir3.join("info"), console_info(ID + 1, &data, 3)).unwrap();
        let err = ConsolePackage::read(&dir3).unwrap_err().to_string();
        assert!(err.contains("info says ID"), "{err}");
    }

    #[test]
    fn a_fragment_replaced_after_the_check_is_not_read() {
        let tmp = tempfile::tempdir().unwrap();
        let data = payload(3000, 10);
        let dir = console_dir(tmp.path(), ID, &data, 3);
        let package = ConsolePackage::read(&dir).unwrap();
        // Swap fragment 2 for a symlink of the same size between check and read.
        let secret = tmp.path().join("secret");
        fs::write(&secret, vec![b's'; 1000]).unwrap();
        let fragment = dir.join(format!("{ID}-2"));
        fs::remove_file(&fragment).unwrap();
        std::os::unix::fs::symlink(&secret, &fragment).unwrap();
        let repo = repo(tmp.path());
        let err = repo
            .import(&package, None, &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert!(repo.list().unwrap().is_empty());
        assert!(leftovers(&repo).is_empty());
    }

    #[test]
    fn command_only_package_imports_with_an_empty_archive() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = console_dir(tmp.path(), ID, b"", 0);
        let repo = repo(tmp.path());
        let imported = repo
            .import(
                &ConsolePackage::read(&dir).unwrap(),
                Some(Label::new("cmd", "2").unwrap()),
                &mut |_| {},
            )
            .unwrap();
        let stored = repo.load(PackageId::new(ID).unwrap()).unwrap();
        assert_eq!(stored.archive_size, 0);
        assert_eq!(stored.info, imported.info);
        assert_eq!(stored.info.fragment_count, 0);
        assert_eq!(stored.info.digest, None);
        assert_eq!(stored.info.label, Some(Label::new("cmd", "2").unwrap()));
        let xml = fs::read_to_string(stored.dir.join("info")).unwrap();
        assert!(
            xml.contains("FRAGS=\"0\"") && xml.contains("TESSERA_NAME=\"cmd\""),
            "{xml}"
        );
        // Any fragment file is an extra one.
        fs::write(dir.join(format!("{ID}-1")), b"x").unwrap();
        assert!(ConsolePackage::read(&dir).is_err());
    }

    #[test]
    fn finds_one_package_or_every_package_of_a_download_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let download = tmp.path().join("download");
        let a = console_dir(&download, 20, b"aaaa", 1);
        let b = console_dir(&download, 3, b"bbbbbbbb", 2);
        fs::create_dir(download.join("temp")).unwrap();
        assert_eq!(find_console_packages(&download).unwrap(), [b, a.clone()]);
        assert_eq!(find_console_packages(&a).unwrap(), [a]);
        assert!(find_console_packages(tmp.path()).is_err());
    }

    #[test]
    fn remove_takes_the_package_away_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = repo(tmp.path());
        let dir = console_dir(tmp.path(), ID, b"payload bytes", 2);
        import(&repo, &dir).unwrap();
        let id = PackageId::new(ID).unwrap();
        assert!(repo.remove(id).unwrap());
        assert!(repo.list().unwrap().is_empty());
        assert!(leftovers(&repo).is_empty());
        assert!(!repo.remove(id).unwrap());
        assert!(matches!(repo.load(id), Err(Error::NotFound { .. })));
    }

    /// `build` of payload P with the same fragment size gives the same MD5 and SHA-256,
    /// and the imported archive is P.
    fn build_equivalence(data: &[u8], count: usize) -> std::result::Result<(), TestCaseError> {
        let tmp = tempfile::tempdir().unwrap();
        let dir = console_dir(tmp.path(), ID, data, count);
        let repo = repo(tmp.path());
        let imported = import(&repo, &dir).unwrap();
        let stored = repo.load(PackageId::new(ID).unwrap()).unwrap();
        prop_assert_eq!(fs::read(stored.archive_path()).unwrap(), data);
        let integrity = imported.info.integrity.as_ref().unwrap();
        let mut built = crate::Digester::new(Vec::new(), integrity.plan().fragment_size()).unwrap();
        built.write_all(data).unwrap();
        let (digests, _) = built.finish().unwrap();
        prop_assert_eq!(imported.info.digest, Some(OcsDigest::md5_hexa(digests.md5)));
        prop_assert_eq!(integrity.sha256(), &digests.sha256);
        let chunks = console_fragments(data, count);
        for ((fragment, sha), chunk) in integrity.fragments().zip(&chunks) {
            prop_assert_eq!(fragment.length as usize, chunk.len());
            let expected = crate::Sha256Digest::from_bytes(
                <sha2::Sha256 as sha2::Digest>::digest(chunk).into(),
            );
            prop_assert_eq!(sha, &expected);
        }
        prop_assert_eq!(integrity.plan().count() as usize, count);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn import_of_a_console_split_is_the_payload(len in 1usize..40_000, count in 1usize..12, seed: u8) {
            prop_assume!(len >= count);
            build_equivalence(&payload(len, seed), count)?;
        }
    }

    #[test]
    fn large_payload_in_many_fragments() {
        // More than the digester's 1 MiB buffers, with an uneven last fragment.
        build_equivalence(&payload(3 * 1024 * 1024 + 17, 11), 7).unwrap();
    }
}
