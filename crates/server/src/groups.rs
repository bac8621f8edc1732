//! Group manifests (`manifests/groups/<name>` in the Munki repository): list, create, show
//! and edit their item lists. Shared by the admin API and `tessera-server group …`, which
//! both write through [`Repo::write_manifest`] (a synced temporary file renamed over the
//! target), so a reader never sees half a manifest.
//!
//! Edits are read-modify-write. Within one process they are serialised; between the CLI
//! and a running server they are not (the last writer wins), which is why the CLI's help
//! points at the admin API while a server runs.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tessera_manifest::{Manifest, Repo, RepoKind, ResourceName, Section};

/// The directory under `manifests/` that holds group manifests.
pub const GROUPS_DIR: &str = "groups";

/// Catalogs a new group searches: the same as the default group the data directory starts
/// with (and the computer manifests enrollment writes).
const NEW_GROUP_CATALOGS: &[&str] = &["production"];

/// Longest group or item name accepted (a file name is at most 255 bytes on common file
/// systems).
const MAX_NAME_BYTES: usize = 255;

/// Serialises read-modify-write edits within this process.
static EDITS: Mutex<()> = Mutex::new(());

/// Why a group operation failed.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    /// The group name is not acceptable.
    #[error("invalid group name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// An item name is not acceptable.
    #[error("invalid item name {name:?}: {reason}")]
    InvalidItem {
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The key to edit is not a list of a manifest.
    #[error(
        "unknown key {0:?}; use one of managed_installs, managed_uninstalls, managed_updates, optional_installs, featured_items, default_installs, included_manifests, catalogs"
    )]
    InvalidKey(String),
    /// The group does not exist.
    #[error("no group manifest groups/{0}")]
    NotFound(String),
    /// The group exists already.
    #[error("the group manifest groups/{0} already exists")]
    Exists(String),
    /// Reading or writing the repository failed.
    #[error(transparent)]
    Repository(#[from] tessera_manifest::Error),
}

/// A group manifest as the admin API and the CLI show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// The group's name, e.g. `lab`.
    pub name: String,
    /// Its manifest name, e.g. `groups/lab` (what computer manifests include).
    pub manifest: String,
    /// Catalogs it searches.
    pub catalogs: Vec<String>,
    /// Manifests it includes.
    pub included_manifests: Vec<String>,
    /// `managed_installs`.
    pub managed_installs: Vec<String>,
    /// `managed_uninstalls`.
    pub managed_uninstalls: Vec<String>,
    /// `managed_updates`.
    pub managed_updates: Vec<String>,
    /// `optional_installs`.
    pub optional_installs: Vec<String>,
    /// `featured_items`.
    pub featured_items: Vec<String>,
    /// `default_installs`.
    pub default_installs: Vec<String>,
    /// How many conditional items it has (edited in the plist, not here).
    pub conditional_items: usize,
}

impl Group {
    fn new(name: &str, manifest: &Manifest) -> Self {
        let list = |section| manifest.section(section).to_vec();
        Self {
            name: name.to_owned(),
            manifest: format!("{GROUPS_DIR}/{name}"),
            catalogs: manifest.catalogs.clone(),
            included_manifests: manifest.included_manifests.clone(),
            managed_installs: list(Section::ManagedInstalls),
            managed_uninstalls: list(Section::ManagedUninstalls),
            managed_updates: list(Section::ManagedUpdates),
            optional_installs: list(Section::OptionalInstalls),
            featured_items: list(Section::FeaturedItems),
            default_installs: list(Section::DefaultInstalls),
            conditional_items: manifest.conditional_items.len(),
        }
    }
}

/// What an edit changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edited {
    /// The group after the edit.
    pub group: Group,
    /// Items added now (those already listed are not repeated).
    pub added: Vec<String>,
    /// Items removed now (those not listed are not reported).
    pub removed: Vec<String>,
}

/// Checks a group name and returns it without a `groups/` prefix (accepted because that is
/// how enrollment answers and `included_manifests` spell groups).
pub fn group_name(name: &str) -> Result<String, GroupError> {
    let short = name.strip_prefix("groups/").unwrap_or(name);
    let refuse = |reason| {
        Err(GroupError::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if short.is_empty() {
        return refuse("it is empty");
    }
    if short.len() > MAX_NAME_BYTES {
        return refuse("it is longer than 255 bytes");
    }
    if short.contains('/') || short.contains('\\') {
        return refuse("a group name is one path component: no `/` or `\\`");
    }
    if short.contains("..") {
        return refuse("`..` is refused");
    }
    if short.starts_with('.') {
        // Hidden files are skipped by repository listings (and are our temporary files).
        return refuse("it starts with `.`");
    }
    if short.chars().any(char::is_control) {
        return refuse("it contains control characters");
    }
    if short.trim() != short {
        return refuse("it starts or ends with white space");
    }
    Ok(short.to_owned())
}

fn item_name(name: &str) -> Result<(), GroupError> {
    let refuse = |reason| {
        Err(GroupError::InvalidItem {
            name: name.to_owned(),
            reason,
        })
    };
    if name.trim().is_empty() {
        return refuse("it is empty");
    }
    if name.len() > MAX_NAME_BYTES * 4 {
        return refuse("it is longer than 1020 bytes");
    }
    if name.chars().any(char::is_control) {
        return refuse("it contains control characters");
    }
    if name.trim() != name {
        return refuse("it starts or ends with white space");
    }
    Ok(())
}

fn resource(name: &str) -> Result<ResourceName, GroupError> {
    Ok(ResourceName::new(&format!("{GROUPS_DIR}/{name}"))?)
}

/// Every group manifest, by name. An unreadable manifest is reported as an error rather
/// than skipped, so that a broken file is noticed.
pub fn list(repo: &Repo) -> Result<Vec<Group>, GroupError> {
    let mut groups = Vec::new();
    for resource in repo.list(RepoKind::Manifests)? {
        let Some(short) = resource.as_str().strip_prefix("groups/") else {
            continue;
        };
        // Nested directories under groups/ are not groups this API manages.
        if short.contains('/') {
            continue;
        }
        let manifest = repo.read_manifest(resource.as_str())?;
        groups.push(Group::new(short, &manifest));
    }
    Ok(groups)
}

/// One group.
pub fn show(repo: &Repo, name: &str) -> Result<Group, GroupError> {
    let name = group_name(name)?;
    let resource = resource(&name)?;
    if !repo.exists(RepoKind::Manifests, &resource) {
        return Err(GroupError::NotFound(name));
    }
    Ok(Group::new(&name, &repo.read_manifest(resource.as_str())?))
}

/// Creates an empty group that searches the `production` catalog.
pub fn create(repo: &Repo, name: &str) -> Result<Group, GroupError> {
    let name = group_name(name)?;
    let resource = resource(&name)?;
    let _guard = EDITS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if repo.exists(RepoKind::Manifests, &resource) {
        return Err(GroupError::Exists(name));
    }
    let mut manifest = Manifest::new();
    manifest.catalogs = NEW_GROUP_CATALOGS.iter().map(|&c| c.to_owned()).collect();
    repo.write_manifest(resource.as_str(), &manifest)?;
    Ok(Group::new(&name, &manifest))
}

/// Adds `add` to and removes `remove` from the list `key` (`managed_installs` when `None`).
/// Adding a listed item or removing an unlisted one changes nothing; the file is rewritten
/// only when something changed, keeping every key it had.
pub fn edit(
    repo: &Repo,
    name: &str,
    key: Option<&str>,
    add: &[String],
    remove: &[String],
) -> Result<Edited, GroupError> {
    let name = group_name(name)?;
    for item in add.iter().chain(remove) {
        item_name(item)?;
    }
    let resource = resource(&name)?;
    let _guard = EDITS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !repo.exists(RepoKind::Manifests, &resource) {
        return Err(GroupError::NotFound(name));
    }
    let mut manifest = repo.read_manifest(resource.as_str())?;
    let list = list_mut(&mut manifest, key.unwrap_or("managed_installs"))?;
    let mut removed = Vec::new();
    for item in remove {
        if list.contains(item) {
            list.retain(|listed| listed != item);
            removed.push(item.clone());
        }
    }
    let mut added = Vec::new();
    for item in add {
        if !list.contains(item) {
            list.push(item.clone());
            added.push(item.clone());
        }
    }
    if !added.is_empty() || !removed.is_empty() {
        repo.write_manifest(resource.as_str(), &manifest)?;
    }
    Ok(Edited {
        group: Group::new(&name, &manifest),
        added,
        removed,
    })
}

fn list_mut<'a>(manifest: &'a mut Manifest, key: &str) -> Result<&'a mut Vec<String>, GroupError> {
    match key {
        "included_manifests" => Ok(&mut manifest.included_manifests),
        "catalogs" => Ok(&mut manifest.catalogs),
        _ => match Section::ALL.into_iter().find(|s| s.key() == key) {
            Some(section) => Ok(manifest.section_mut(section)),
            None => Err(GroupError::InvalidKey(key.to_owned())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> (tempfile::TempDir, Repo) {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::create(dir.path()).unwrap();
        (dir, repo)
    }

    #[test]
    fn names_are_one_safe_component() {
        assert_eq!(group_name("lab").unwrap(), "lab");
        assert_eq!(group_name("groups/lab").unwrap(), "lab");
        assert_eq!(group_name("Räume 2").unwrap(), "Räume 2");
        for bad in [
            "",
            "groups/",
            "a/b",
            "groups/a/b",
            "..",
            "a..b",
            ".hidden",
            "tab\there",
            "nl\n",
            "nul\0",
            " padded",
            "back\\slash",
            &"x".repeat(256),
        ] {
            assert!(
                matches!(group_name(bad), Err(GroupError::InvalidName { .. })),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn create_edit_show_list_round_trip_keeps_other_keys() {
        let (_dir, repo) = repo();
        let created = create(&repo, "lab").unwrap();
        assert_eq!(created.catalogs, ["production"]);
        assert!(matches!(create(&repo, "lab"), Err(GroupError::Exists(_))));

        // A key this module does not model survives an edit.
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>catalogs</key><array><string>production</string></array>
<key>display_name</key><string>Lab</string></dict></plist>"#;
        repo.write(
            RepoKind::Manifests,
            &resource("lab").unwrap(),
            xml.as_bytes(),
        )
        .unwrap();

        let edited = edit(
            &repo,
            "lab",
            None,
            &["Firefox".into(), "Slack".into(), "Firefox".into()],
            &[],
        )
        .unwrap();
        assert_eq!(edited.added, ["Firefox", "Slack"]);
        let edited = edit(
            &repo,
            "groups/lab",
            Some("managed_installs"),
            &["Zoom".into()],
            &["Slack".into(), "absent".into()],
        )
        .unwrap();
        assert_eq!(
            (edited.added, edited.removed),
            (vec!["Zoom".into()], vec!["Slack".into()])
        );
        assert_eq!(edited.group.managed_installs, ["Firefox", "Zoom"]);
        let edited = edit(
            &repo,
            "lab",
            Some("optional_installs"),
            &["VLC".into()],
            &[],
        )
        .unwrap();
        assert_eq!(edited.group.optional_installs, ["VLC"]);

        let shown = show(&repo, "lab").unwrap();
        assert_eq!(shown, edited.group);
        let written = repo
            .read(RepoKind::Manifests, &resource("lab").unwrap())
            .unwrap();
        assert!(String::from_utf8_lossy(&written).contains("<key>display_name</key>"));
        create(&repo, "alpha").unwrap();
        let names: Vec<String> = list(&repo).unwrap().into_iter().map(|g| g.name).collect();
        assert_eq!(names, ["alpha", "lab"]);
    }

    #[test]
    fn refusals_are_specific() {
        let (_dir, repo) = repo();
        assert!(matches!(show(&repo, "nope"), Err(GroupError::NotFound(_))));
        assert!(matches!(
            edit(&repo, "nope", None, &["x".into()], &[]),
            Err(GroupError::NotFound(_))
        ));
        create(&repo, "lab").unwrap();
        assert!(matches!(
            edit(&repo, "lab", Some("colour"), &["x".into()], &[]),
            Err(GroupError::InvalidKey(_))
        ));
        for bad in ["", " x", "a\nb"] {
            assert!(matches!(
                edit(&repo, "lab", None, &[bad.into()], &[]),
                Err(GroupError::InvalidItem { .. })
            ));
        }
        assert!(matches!(
            create(&repo, "../etc"),
            Err(GroupError::InvalidName { .. })
        ));
    }
}
