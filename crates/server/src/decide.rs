//! Which OCS packages a device's manifest asks for.
//!
//! A device's computer manifest (`computers/<serial>`, or `site_default` for a device first
//! seen through the OCS compatibility path) is resolved exactly as Munki resolves it —
//! included manifests first, conditional items against the device's facts, first
//! occurrence wins, catalogs inherited — by `tessera-manifest`. For OCS delivery, every
//! catalog a manifest searches holds the OCS packages of the repository
//! (`repo/download/<ID>/`), named and versioned by their `info`'s `TESSERA_NAME` and
//! `TESSERA_VERSION` (a package imported from an OCS console, which carries neither, is
//! named by its ID). Each managed install that resolves to such a package is offered; the
//! highest version wins, and `name-version` pins one. Munki clients are not affected: they
//! read the Munki catalogs and resolve for themselves. Why this shape:
//! `docs/decisions/0007-deployments-from-manifests.md`.
//!
//! Decisions are made when the check-in cache fills a device's state (its first check-in
//! after a start, or after anything it depends on changed), not at every check-in. Group
//! manifests are kept parsed; computer manifests, each read by one device only, are read
//! from disk. [`watch`] notices files changed behind the server's back (admins keep the
//! repository in git) and drops what was decided from them.

use std::collections::HashMap;
use std::hash::{Hash as _, Hasher as _};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tessera_manifest::{
    Catalog, CatalogIndex, Facts, Manifest, PkgInfo, Repo, RepoSource, Resolved, Timestamp,
};
use tessera_store::{Device, PackageRecord, Store};
use time::OffsetDateTime;

use crate::app::App;

/// How often [`watch`] looks for files changed behind the server's back.
pub const REPOSITORY_CHECK_INTERVAL: Duration = Duration::from_secs(10);

/// Manifests under this directory belong to one device each: read, not kept.
const COMPUTERS_DIR: &str = "computers/";

/// Decides deployments from manifests; shared by every check-in.
pub struct Decisions {
    repo: Repo,
    /// Parsed group (and other shared) manifests, by name.
    manifests: Mutex<HashMap<String, Arc<Manifest>>>,
    packages: RwLock<Arc<PackageCatalog>>,
}

/// The OCS packages as one catalog, and the package ID of each (name, version).
#[derive(Default)]
struct PackageCatalog {
    index: Arc<CatalogIndex>,
    ids: HashMap<(String, String), i64>,
}

/// What a device's manifest asks for, with why.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Decided {
    /// Package IDs to offer, in Munki's order.
    pub packages: Vec<i64>,
    /// The resolution (what was listed where, warnings); `None` when it failed.
    pub resolved: Option<Resolved>,
    /// Why resolution failed (a missing manifest, an include cycle, an unreadable file).
    pub error: Option<String>,
}

impl Decisions {
    /// Decisions from the manifests of `repo`; no packages until [`set_packages`](Self::set_packages).
    pub fn new(repo: Repo) -> Self {
        Self {
            repo,
            manifests: Mutex::default(),
            packages: RwLock::default(),
        }
    }

    /// Replaces the package catalog. Of several packages with the same name and version
    /// (a package built again), the newest ID is offered.
    pub fn set_packages(&self, records: &[PackageRecord]) {
        let mut newest: HashMap<(String, String), i64> = HashMap::new();
        for record in records {
            newest
                .entry((record.name.clone(), record.version.clone()))
                .and_modify(|id| *id = (*id).max(record.id))
                .or_insert(record.id);
        }
        let mut items = Vec::with_capacity(newest.len());
        for (name, version) in newest.keys() {
            let mut dict = plist::Dictionary::new();
            dict.insert("name".into(), name.clone().into());
            dict.insert("version".into(), version.clone().into());
            // Only fails for a dictionary without a name, which this is not.
            if let Ok(item) = PkgInfo::from_dictionary(dict, "an OCS package") {
                items.push(item);
            }
        }
        let catalog = PackageCatalog {
            index: Arc::new(CatalogIndex::new(Catalog { items })),
            ids: newest,
        };
        *self
            .packages
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(catalog);
    }

    /// Forgets parsed manifests, so that the next decisions read them again.
    pub fn forget_manifests(&self) {
        self.manifests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// What `device`'s manifest asks for, evaluated at `now`.
    pub fn decide(&self, device: &Device, now: OffsetDateTime) -> Decided {
        let packages = Arc::clone(&self.packages.read().unwrap_or_else(PoisonError::into_inner));
        let source = Source {
            decisions: self,
            catalog: &packages.index,
        };
        match tessera_manifest::resolve(&source, &device.manifest, &facts_of(device, now)) {
            Ok(resolved) => Decided {
                packages: resolved
                    .managed_installs
                    .iter()
                    .filter_map(|d| packages.ids.get(&(d.name.clone(), d.version.clone())))
                    .copied()
                    .collect(),
                resolved: Some(resolved),
                error: None,
            },
            Err(error) => Decided {
                error: Some(error.to_string()),
                ..Decided::default()
            },
        }
    }

    /// The package IDs `device`'s manifest asks for; a resolution failure is logged and
    /// asks for nothing (assignments are still offered).
    pub fn packages_for(&self, device: &Device, now: OffsetDateTime) -> Vec<i64> {
        let decided = self.decide(device, now);
        if let Some(error) = &decided.error {
            tracing::warn!(device = device.key.0, manifest = %device.manifest, %error,
                "could not resolve the device's manifest; offering its assignments only");
        }
        decided.packages
    }
}

/// Manifests from the repository, every catalog being the OCS packages.
struct Source<'a> {
    decisions: &'a Decisions,
    catalog: &'a Arc<CatalogIndex>,
}

impl RepoSource for Source<'_> {
    fn manifest(&self, name: &str) -> tessera_manifest::Result<Option<Arc<Manifest>>> {
        if name.starts_with(COMPUTERS_DIR) {
            return self.decisions.repo.manifest(name);
        }
        let cached = self
            .decisions
            .manifests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned();
        if let Some(manifest) = cached {
            return Ok(Some(manifest));
        }
        let read = self.decisions.repo.manifest(name)?;
        if let Some(manifest) = &read {
            self.decisions
                .manifests
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(name.to_owned(), Arc::clone(manifest));
        }
        Ok(read)
    }

    fn catalog(&self, _name: &str) -> tessera_manifest::Result<Option<Arc<CatalogIndex>>> {
        Ok(Some(Arc::clone(self.catalog)))
    }
}

/// The facts conditions see: what the device reported (enrollment, inventories) under
/// Munki's names where they differ, and the date.
pub fn facts_of(device: &Device, now: OffsetDateTime) -> Facts {
    let mut facts = Facts::new();
    for (name, value) in &device.facts {
        match value {
            serde_json::Value::String(text) => {
                facts.set(name.as_str(), text.as_str());
            }
            serde_json::Value::Bool(flag) => {
                facts.set(name.as_str(), *flag);
            }
            serde_json::Value::Number(number) => {
                if let Some(n) = number.as_i64() {
                    facts.set(name.as_str(), n);
                }
            }
            _ => {}
        }
    }
    // Enrollment says `os_vers`, an OCS inventory `os_version`.
    let os_vers = ["os_vers", "os_version"]
        .iter()
        .find_map(|name| device.facts.get(*name).and_then(serde_json::Value::as_str))
        .map(str::to_owned);
    if let Some(os_vers) = os_vers {
        facts.set_os_vers(&os_vers);
    }
    if facts.get("hostname").is_none() {
        facts.set("hostname", device.computer_name.as_str());
    }
    if facts.get("serial_number").is_none()
        && let Some(serial) = &device.serial
    {
        facts.set("serial_number", serial.as_str());
    }
    let seconds = u64::try_from(now.unix_timestamp()).unwrap_or(0);
    facts.set_date(Timestamp::from_system_time(
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds),
    ));
    facts
}

/// What [`watch`] compares: the manifests and the packages on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RepositoryState {
    manifests: u64,
    packages: u64,
}

impl RepositoryState {
    /// Names, sizes and modification times of every file under `repo/manifests` and of
    /// every package's `info` under `repo/download`, hashed.
    pub fn read(repo: &Path, packages: &Path) -> Self {
        let mut manifests = std::collections::hash_map::DefaultHasher::new();
        hash_tree(&repo.join("manifests"), &mut manifests, 0);
        let mut infos = std::collections::hash_map::DefaultHasher::new();
        if let Ok(entries) = std::fs::read_dir(packages) {
            let mut names: Vec<_> = entries.flatten().map(|e| e.path()).collect();
            names.sort();
            for dir in names {
                hash_file(&dir.join("info"), &mut infos);
            }
        }
        Self {
            manifests: manifests.finish(),
            packages: infos.finish(),
        }
    }
}

/// Deep enough for any repository layout; stops a loop of bind mounts.
const MAX_TREE_DEPTH: usize = 16;

fn hash_tree(dir: &Path, hasher: &mut impl std::hash::Hasher, depth: usize) {
    if depth > MAX_TREE_DEPTH {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        // `file_type` does not follow links: a link out of the tree is not walked.
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => hash_tree(&path, hasher, depth + 1),
            Ok(_) => hash_file(&path, hasher),
            Err(_) => {}
        }
    }
}

fn hash_file(path: &Path, hasher: &mut impl std::hash::Hasher) {
    path.hash(hasher);
    if let Ok(meta) = std::fs::metadata(path) {
        meta.len().hash(hasher);
        meta.modified().ok().hash(hasher);
    }
}

/// Every [`REPOSITORY_CHECK_INTERVAL`], looks at the repository; when manifests changed,
/// forgets them and every decision made from them; when packages appeared or changed,
/// records them (as at start-up) and decides again.
pub async fn watch<S: Store + 'static>(app: Arc<App<S>>) {
    watch_every(app, REPOSITORY_CHECK_INTERVAL).await;
}

/// [`watch`] with another interval (tests).
pub async fn watch_every<S: Store + 'static>(app: Arc<App<S>>, interval: Duration) {
    let Some(decisions) = app.decisions.as_ref() else {
        return;
    };
    let repo = decisions.repo.root().to_owned();
    let packages = app.packages.root().to_owned();
    let read = move || {
        let (repo, packages) = (repo.clone(), packages.clone());
        tokio::task::spawn_blocking(move || RepositoryState::read(&repo, &packages))
    };
    let Ok(mut seen) = read().await else {
        return;
    };
    loop {
        tokio::time::sleep(interval).await;
        let Ok(now) = read().await else {
            return;
        };
        if now.manifests != seen.manifests {
            app.manifests_changed();
            seen.manifests = now.manifests;
        }
        if now.packages != seen.packages {
            match app.packages_changed().await {
                Ok(_) => seen.packages = now.packages,
                Err(error) => {
                    tracing::warn!(%error, "could not record the packages on disk; will retry");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tessera_manifest::FactValue;
    use tessera_store::DeviceKey;
    use time::macros::datetime;

    fn device(facts: &serde_json::Value) -> Device {
        Device {
            key: DeviceKey(1),
            computer_name: "linux01".into(),
            serial: Some("SER1".into()),
            ocs_device_id: None,
            manifest: "site_default".into(),
            facts: facts.as_object().unwrap().clone(),
            created_at: datetime!(2026-11-01 0:00 UTC),
            last_contact: None,
        }
    }

    #[test]
    fn facts_use_munki_names_and_fill_gaps_from_the_record() {
        let now = datetime!(2026-11-23 12:00 UTC);
        let from_inventory = facts_of(
            &device(&json!({"os_version": "12.5", "arch": "x86_64", "inventory_at": 7})),
            now,
        );
        assert_eq!(from_inventory.get_str("os_vers"), Some("12.5"));
        assert_eq!(
            from_inventory.get("os_vers_major"),
            Some(&FactValue::Integer(12))
        );
        assert_eq!(from_inventory.get_str("arch"), Some("x86_64"));
        assert_eq!(from_inventory.get_str("hostname"), Some("linux01"));
        assert_eq!(from_inventory.get_str("serial_number"), Some("SER1"));
        assert!(matches!(
            from_inventory.get("date"),
            Some(FactValue::Date(_))
        ));
        // What the device reported wins over the record.
        let reported = facts_of(
            &device(&json!({"os_vers": "14.5", "hostname": "MAC01", "serial_number": "C02"})),
            now,
        );
        assert_eq!(
            (
                reported.get_str("os_vers"),
                reported.get_str("hostname"),
                reported.get_str("serial_number")
            ),
            (Some("14.5"), Some("MAC01"), Some("C02"))
        );
    }

    #[test]
    fn the_repository_state_changes_with_manifests_and_package_infos() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        let packages = repo.join("download");
        std::fs::create_dir_all(repo.join("manifests/groups")).unwrap();
        std::fs::create_dir_all(packages.join("1")).unwrap();
        std::fs::write(repo.join("manifests/groups/lab"), "a").unwrap();
        std::fs::write(packages.join("1/info"), "x").unwrap();
        let first = RepositoryState::read(&repo, &packages);
        assert_eq!(first, RepositoryState::read(&repo, &packages));

        std::fs::write(repo.join("manifests/groups/lab"), "ab").unwrap();
        let edited = RepositoryState::read(&repo, &packages);
        assert_ne!(edited.manifests, first.manifests);
        assert_eq!(edited.packages, first.packages);

        std::fs::create_dir_all(packages.join("2")).unwrap();
        std::fs::write(packages.join("2/info"), "y").unwrap();
        let added = RepositoryState::read(&repo, &packages);
        assert_eq!(added.manifests, edited.manifests);
        assert_ne!(added.packages, edited.packages);

        std::fs::remove_file(repo.join("manifests/groups/lab")).unwrap();
        assert_ne!(
            RepositoryState::read(&repo, &packages).manifests,
            added.manifests
        );
    }
}
