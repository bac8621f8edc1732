//! A Munki repository on disk: list, read and atomically write resources by relative name,
//! never leaving the repository.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::catalog_index::CatalogIndex;
use crate::error::{Error, Result};
use crate::model::{Catalog, Manifest};
use crate::resolve::RepoSource;

/// The top-level directories of a Munki repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RepoKind {
    /// `manifests/`.
    Manifests,
    /// `catalogs/`.
    Catalogs,
    /// `pkgsinfo/` (admin side only; clients never read it).
    Pkgsinfo,
    /// `pkgs/`.
    Pkgs,
    /// `icons/`.
    Icons,
    /// `client_resources/`.
    ClientResources,
}

impl RepoKind {
    /// The directory name.
    pub fn dir(self) -> &'static str {
        match self {
            RepoKind::Manifests => "manifests",
            RepoKind::Catalogs => "catalogs",
            RepoKind::Pkgsinfo => "pkgsinfo",
            RepoKind::Pkgs => "pkgs",
            RepoKind::Icons => "icons",
            RepoKind::ClientResources => "client_resources",
        }
    }
}

/// A validated resource name: a relative path of non-empty components, none `.` or `..`.
/// Spaces and Unicode are fine; repeated slashes are collapsed (clients send `//`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceName(String);

impl ResourceName {
    /// Validates a name.
    pub fn new(name: &str) -> Result<Self> {
        let refuse = |reason| {
            Err(Error::InvalidName {
                name: name.to_owned(),
                reason,
            })
        };
        if name.starts_with('/') {
            return refuse(
                "absolute paths are refused; give a path relative to the kind directory",
            );
        }
        if name.contains('\0') {
            return refuse("it contains a NUL byte");
        }
        let parts: Vec<&str> = name.split('/').filter(|p| !p.is_empty()).collect();
        if parts.is_empty() {
            return refuse("it is empty");
        }
        if parts.iter().any(|p| *p == "." || *p == "..") {
            return refuse("`.` and `..` components are refused");
        }
        Ok(Self(parts.join("/")))
    }

    /// The name as a `/`-separated string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ResourceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Munki repository rooted at a directory.
#[derive(Debug, Clone)]
pub struct Repo {
    root: PathBuf,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error + use<> {
    let path = path.to_owned();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}

impl Repo {
    /// Opens an existing repository directory (its root is canonicalised).
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref();
        let canonical = fs::canonicalize(root).map_err(|_| Error::NotARepo {
            root: root.to_owned(),
        })?;
        if !canonical.is_dir() {
            return Err(Error::NotARepo {
                root: root.to_owned(),
            });
        }
        Ok(Self { root: canonical })
    }

    /// Creates the repository directory and its kind directories if missing, then opens it.
    pub fn create(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref();
        for kind in [
            RepoKind::Manifests,
            RepoKind::Catalogs,
            RepoKind::Pkgsinfo,
            RepoKind::Pkgs,
            RepoKind::Icons,
            RepoKind::ClientResources,
        ] {
            let dir = root.join(kind.dir());
            fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
        }
        Self::open(root)
    }

    /// The repository root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn kind_dir(&self, kind: RepoKind) -> PathBuf {
        self.root.join(kind.dir())
    }

    /// Checks a path (which must exist) resolves inside the repository.
    fn inside(&self, kind: RepoKind, name: &ResourceName, path: &Path) -> Result<PathBuf> {
        let target = fs::canonicalize(path).map_err(io("resolving", path))?;
        if target.starts_with(&self.root) {
            Ok(target)
        } else {
            Err(Error::OutsideRepo {
                kind: kind.dir(),
                name: name.to_string(),
                target,
                root: self.root.clone(),
            })
        }
    }

    /// Whether a resource exists (and lies inside the repository).
    pub fn exists(&self, kind: RepoKind, name: &ResourceName) -> bool {
        let path = self.kind_dir(kind).join(name.as_str());
        path.is_file() && self.inside(kind, name, &path).is_ok()
    }

    /// The file of an existing resource, resolved (links followed) and checked to lie
    /// inside the repository: what a server streams from, with ranges.
    pub fn file_path(&self, kind: RepoKind, name: &ResourceName) -> Result<PathBuf> {
        let path = self.kind_dir(kind).join(name.as_str());
        if !path.is_file() {
            return Err(Error::NotFound {
                kind: kind.dir(),
                name: name.to_string(),
                root: self.root.clone(),
            });
        }
        self.inside(kind, name, &path)
    }

    /// Reads a resource.
    pub fn read(&self, kind: RepoKind, name: &ResourceName) -> Result<Vec<u8>> {
        let path = self.kind_dir(kind).join(name.as_str());
        if !path.exists() {
            return Err(Error::NotFound {
                kind: kind.dir(),
                name: name.to_string(),
                root: self.root.clone(),
            });
        }
        let target = self.inside(kind, name, &path)?;
        fs::read(&target).map_err(io("reading", &target))
    }

    /// Writes a resource atomically: a hidden temporary file in the same directory, synced,
    /// then renamed over the target. Creates subdirectories as needed.
    pub fn write(&self, kind: RepoKind, name: &ResourceName, bytes: &[u8]) -> Result<()> {
        let path = self.kind_dir(kind).join(name.as_str());
        let parent = path.parent().unwrap_or(&self.root).to_owned();
        fs::create_dir_all(&parent).map_err(io("creating", &parent))?;
        let parent = self.inside(kind, name, &parent)?;
        let file_name = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = parent.join(format!(
            ".{file_name}.tmp-{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let mut file = fs::File::create_new(&temp).map_err(io("creating", &temp))?;
            file.write_all(bytes).map_err(io("writing", &temp))?;
            file.sync_all().map_err(io("syncing", &temp))?;
            fs::rename(&temp, parent.join(&file_name)).map_err(io("renaming", &temp))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }

    /// Removes a resource.
    pub fn remove(&self, kind: RepoKind, name: &ResourceName) -> Result<()> {
        let path = self.kind_dir(kind).join(name.as_str());
        fs::remove_file(&path).map_err(io("removing", &path))
    }

    /// Lists a kind recursively: files only, names starting with `.` skipped, symbolic links
    /// followed while they stay inside the repository; sorted by name (Munki uses readdir
    /// order, which differs between machines).
    pub fn list(&self, kind: RepoKind) -> Result<Vec<ResourceName>> {
        let base = self.kind_dir(kind);
        let mut out = Vec::new();
        if !base.is_dir() {
            return Ok(out);
        }
        let mut visited = HashSet::new();
        let mut stack = vec![(base.clone(), String::new())];
        while let Some((dir, prefix)) = stack.pop() {
            let Ok(canonical) = fs::canonicalize(&dir) else {
                continue;
            };
            if !canonical.starts_with(&self.root) || !visited.insert(canonical) {
                continue;
            }
            for entry in fs::read_dir(&dir).map_err(io("listing", &dir))? {
                let entry = entry.map_err(io("listing", &dir))?;
                let file_name = entry.file_name().to_string_lossy().into_owned();
                if file_name.starts_with('.') {
                    continue;
                }
                let path = entry.path();
                let rel = if prefix.is_empty() {
                    file_name
                } else {
                    format!("{prefix}/{file_name}")
                };
                // `metadata` follows links; a dangling link is skipped.
                let Ok(meta) = fs::metadata(&path) else {
                    continue;
                };
                if meta.is_dir() {
                    stack.push((path, rel));
                } else if meta.is_file()
                    && fs::canonicalize(&path).is_ok_and(|t| t.starts_with(&self.root))
                    && let Ok(name) = ResourceName::new(&rel)
                {
                    out.push(name);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Reads and parses a manifest.
    pub fn read_manifest(&self, name: &str) -> Result<Manifest> {
        let resource = ResourceName::new(name)?;
        Manifest::from_plist_bytes(&self.read(RepoKind::Manifests, &resource)?, name)
    }

    /// Writes a manifest as an XML plist, atomically.
    pub fn write_manifest(&self, name: &str, manifest: &Manifest) -> Result<()> {
        let resource = ResourceName::new(name)?;
        self.write(RepoKind::Manifests, &resource, &manifest.to_xml()?)
    }

    /// Reads and parses a catalog.
    pub fn read_catalog(&self, name: &str) -> Result<Catalog> {
        let resource = ResourceName::new(name)?;
        Catalog::from_plist_bytes(&self.read(RepoKind::Catalogs, &resource)?, name)
    }
}

/// Reads the repository on every call: what the CLI uses. A server wraps parsed results in
/// its own cache (see [`crate::MemorySource`]).
impl RepoSource for Repo {
    fn manifest(&self, name: &str) -> Result<Option<Arc<Manifest>>> {
        let resource = ResourceName::new(name)?;
        if !self
            .kind_dir(RepoKind::Manifests)
            .join(resource.as_str())
            .exists()
        {
            return Ok(None);
        }
        self.read_manifest(name).map(|m| Some(Arc::new(m)))
    }

    fn catalog(&self, name: &str) -> Result<Option<Arc<CatalogIndex>>> {
        let resource = ResourceName::new(name)?;
        if !self
            .kind_dir(RepoKind::Catalogs)
            .join(resource.as_str())
            .exists()
        {
            return Ok(None);
        }
        self.read_catalog(name)
            .map(|c| Some(Arc::new(CatalogIndex::new(c))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(ResourceName::new("groups/lab").is_ok());
        assert_eq!(ResourceName::new("a//b").unwrap().as_str(), "a/b");
        assert!(ResourceName::new("Grüße mit Leerzeichen").is_ok());
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "a/./b", "x\0y"] {
            assert!(
                matches!(ResourceName::new(bad), Err(Error::InvalidName { .. })),
                "{bad:?} accepted"
            );
        }
    }
}
