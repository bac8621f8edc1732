//! `makecatalogs`: build `catalogs/` from `pkgsinfo/` as Munki's `makecatalogslib` does,
//! returning warnings as data instead of a bare exit code.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use plist::{Dictionary, Value};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::model::{Catalog, PkgInfo};
use crate::plist_io::{read_value, type_name, write_xml};
use crate::repo::{Repo, RepoKind, ResourceName};

const ICON_HASHES: &str = "_icon_hashes.plist";

/// Options, named after Munki's flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct MakeCatalogsOptions {
    /// `--skip-pkg-check`: do not check that installer items exist.
    pub skip_pkg_check: bool,
    /// `--force`: keep pkginfos whose installer item is missing.
    pub force: bool,
}

/// A problem makecatalogs reports and continues past.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CatalogWarning {
    /// A pkginfo could not be read or parsed; it was skipped.
    Unreadable {
        /// The pkginfo.
        pkginfo: String,
        /// Why.
        error: String,
    },
    /// A pkginfo has no name; it was skipped.
    MissingName {
        /// The pkginfo.
        pkginfo: String,
    },
    /// The installer (or uninstaller) item is missing under `pkgs/`.
    MissingInstallerItem {
        /// The pkginfo.
        pkginfo: String,
        /// The location it names.
        location: String,
        /// Whether the pkginfo was kept anyway (`--force`).
        kept: bool,
    },
    /// The installer item exists only with different letter case.
    DifferentCase {
        /// The pkginfo.
        pkginfo: String,
        /// The location it names.
        location: String,
    },
    /// `uninstall_method` AdobeCCPUninstaller without `uninstaller_item_location`.
    MissingUninstallerItemLocation {
        /// The pkginfo.
        pkginfo: String,
    },
    /// The pkginfo has no `catalogs` array (it still goes into `all`).
    NoCatalogsArray {
        /// The pkginfo.
        pkginfo: String,
    },
    /// The pkginfo's `catalogs` array is empty (it still goes into `all`).
    EmptyCatalogsArray {
        /// The pkginfo.
        pkginfo: String,
    },
    /// A catalog name is empty or not a safe file name; that entry was ignored.
    BadCatalogName {
        /// The pkginfo.
        pkginfo: String,
        /// The name.
        catalog: String,
    },
    /// Catalog names that differ only in case.
    CatalogNamesDifferInCase {
        /// The names.
        names: Vec<String>,
    },
}

impl fmt::Display for CatalogWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreadable { pkginfo, error } => {
                write!(f, "pkgsinfo/{pkginfo} was skipped: {error}")
            }
            Self::MissingName { pkginfo } => {
                write!(f, "pkgsinfo/{pkginfo} is missing name and was skipped")
            }
            Self::MissingInstallerItem {
                pkginfo,
                location,
                kept,
            } => write!(
                f,
                "pkgsinfo/{pkginfo} refers to missing installer item: {location}{}",
                if *kept {
                    " (kept because of --force)"
                } else {
                    "; it was left out of the catalogs (add the item or use --force)"
                }
            ),
            Self::DifferentCase { pkginfo, location } => write!(
                f,
                "pkgsinfo/{pkginfo} refers to installer item {location}, which exists with different case"
            ),
            Self::MissingUninstallerItemLocation { pkginfo } => write!(
                f,
                "pkgsinfo/{pkginfo} uses AdobeCCPUninstaller but has no uninstaller_item_location"
            ),
            Self::NoCatalogsArray { pkginfo } => {
                write!(f, "pkgsinfo/{pkginfo} has no catalogs array!")
            }
            Self::EmptyCatalogsArray { pkginfo } => {
                write!(f, "pkgsinfo/{pkginfo} has an empty catalogs array!")
            }
            Self::BadCatalogName { pkginfo, catalog } => write!(
                f,
                "pkgsinfo/{pkginfo} names catalog {catalog:?}, which is not a valid catalog name; it was ignored"
            ),
            Self::CatalogNamesDifferInCase { names } => {
                write!(f, "catalog names differ only in case: {}", names.join(", "))
            }
        }
    }
}

/// What makecatalogs did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MakeCatalogsReport {
    /// Catalogs written, with their item counts.
    pub catalogs: BTreeMap<String, usize>,
    /// Stale catalog files removed.
    pub removed: Vec<String>,
    /// Whether `icons/_icon_hashes.plist` was written.
    pub icon_hashes_written: bool,
    /// Warnings, in the order they arose.
    pub warnings: Vec<CatalogWarning>,
}

/// Builds `catalogs/all` plus one catalog per name, removes stale catalogs, and writes
/// `icons/_icon_hashes.plist`.
pub fn make_catalogs(repo: &Repo, options: MakeCatalogsOptions) -> Result<MakeCatalogsReport> {
    let mut report = MakeCatalogsReport::default();
    let pkgs: HashSet<String> = repo
        .list(RepoKind::Pkgs)?
        .into_iter()
        .map(|n| n.as_str().to_owned())
        .collect();
    let pkgs_lower: HashSet<String> = pkgs.iter().map(|p| p.to_lowercase()).collect();
    let mut catalogs: BTreeMap<String, Vec<PkgInfo>> = BTreeMap::new();
    catalogs.insert("all".to_owned(), Vec::new());

    for name in repo.list(RepoKind::Pkgsinfo)? {
        let reference = name.as_str().to_owned();
        let dict = match repo
            .read(RepoKind::Pkgsinfo, &name)
            .and_then(|bytes| read_dictionary(&bytes, &reference))
        {
            Ok(dict) => dict,
            Err(error) => {
                report.warnings.push(CatalogWarning::Unreadable {
                    pkginfo: reference,
                    error: error.to_string(),
                });
                continue;
            }
        };
        let dict = strip_admin_keys(dict);
        let pkginfo = match PkgInfo::from_dictionary(dict, &format!("pkgsinfo/{reference}")) {
            Ok(p) => p,
            Err(Error::MissingName { .. }) => {
                report
                    .warnings
                    .push(CatalogWarning::MissingName { pkginfo: reference });
                continue;
            }
            Err(error) => {
                report.warnings.push(CatalogWarning::Unreadable {
                    pkginfo: reference,
                    error: error.to_string(),
                });
                continue;
            }
        };
        if !options.skip_pkg_check
            && !installer_items_ok(
                &pkginfo,
                &reference,
                &pkgs,
                &pkgs_lower,
                options,
                &mut report,
            )
        {
            continue;
        }
        match &pkginfo.catalogs {
            None => report.warnings.push(CatalogWarning::NoCatalogsArray {
                pkginfo: reference.clone(),
            }),
            Some(list) if list.is_empty() => {
                report.warnings.push(CatalogWarning::EmptyCatalogsArray {
                    pkginfo: reference.clone(),
                });
            }
            Some(_) => {}
        }
        for catalog in pkginfo.catalogs.iter().flatten() {
            if catalog.is_empty() || catalog.contains('/') || ResourceName::new(catalog).is_err() {
                report.warnings.push(CatalogWarning::BadCatalogName {
                    pkginfo: reference.clone(),
                    catalog: catalog.clone(),
                });
                continue;
            }
            catalogs
                .entry(catalog.clone())
                .or_default()
                .push(pkginfo.clone());
        }
        if let Some(all) = catalogs.get_mut("all") {
            all.push(pkginfo);
        }
    }

    let mut by_lower: HashMap<String, Vec<String>> = HashMap::new();
    for name in catalogs.keys() {
        by_lower
            .entry(name.to_lowercase())
            .or_default()
            .push(name.clone());
    }
    let mut clashes: Vec<Vec<String>> = by_lower.into_values().filter(|v| v.len() > 1).collect();
    clashes.sort();
    for names in clashes {
        report
            .warnings
            .push(CatalogWarning::CatalogNamesDifferInCase { names });
    }

    for existing in repo.list(RepoKind::Catalogs)? {
        if !catalogs.contains_key(existing.as_str()) {
            repo.remove(RepoKind::Catalogs, &existing)?;
            report.removed.push(existing.as_str().to_owned());
        }
    }
    for (name, items) in catalogs {
        let count = items.len();
        let catalog = Catalog { items };
        repo.write(
            RepoKind::Catalogs,
            &ResourceName::new(&name)?,
            &catalog.to_xml()?,
        )?;
        report.catalogs.insert(name, count);
    }
    report.icon_hashes_written = write_icon_hashes(repo)?;
    Ok(report)
}

fn read_dictionary(bytes: &[u8], reference: &str) -> Result<Dictionary> {
    let what = format!("pkgsinfo/{reference}");
    match read_value(bytes, &what)? {
        Value::Dictionary(dict) => Ok(dict),
        other => Err(Error::WrongRoot {
            what,
            expected: "a dict",
            found: type_name(&other),
        }),
    }
}

/// makecatalogs drops `notes` and every key starting with `_` from catalog items.
fn strip_admin_keys(dict: Dictionary) -> Dictionary {
    dict.into_iter()
        .filter(|(k, _)| k != "notes" && !k.starts_with('_'))
        .collect()
}

fn installer_items_ok(
    pkginfo: &PkgInfo,
    reference: &str,
    pkgs: &HashSet<String>,
    pkgs_lower: &HashSet<String>,
    options: MakeCatalogsOptions,
    report: &mut MakeCatalogsReport,
) -> bool {
    let payload_free = matches!(
        pkginfo.installer_type.as_deref(),
        Some("nopkg" | "apple_update_metadata")
    ) || pkginfo.package_complete_url.is_some()
        || pkginfo.package_url.is_some();
    let mut check = |location: &str| -> bool {
        let normalised = ResourceName::new(location).map(|n| n.as_str().to_owned());
        let Ok(normalised) = normalised else {
            report.warnings.push(CatalogWarning::MissingInstallerItem {
                pkginfo: reference.to_owned(),
                location: location.to_owned(),
                kept: options.force,
            });
            return options.force;
        };
        if pkgs.contains(&normalised) {
            return true;
        }
        if pkgs_lower.contains(&normalised.to_lowercase()) {
            report.warnings.push(CatalogWarning::DifferentCase {
                pkginfo: reference.to_owned(),
                location: location.to_owned(),
            });
            return true;
        }
        report.warnings.push(CatalogWarning::MissingInstallerItem {
            pkginfo: reference.to_owned(),
            location: location.to_owned(),
            kept: options.force,
        });
        options.force
    };
    if !payload_free {
        let location = pkginfo.installer_item_location.as_deref().unwrap_or("");
        if !check(location) {
            return false;
        }
    }
    if let Some(location) = &pkginfo.uninstaller_item_location
        && !check(location)
    {
        return false;
    }
    if pkginfo.uninstall_method.as_deref() == Some("AdobeCCPUninstaller")
        && pkginfo.uninstaller_item_location.is_none()
    {
        report
            .warnings
            .push(CatalogWarning::MissingUninstallerItemLocation {
                pkginfo: reference.to_owned(),
            });
        return options.force;
    }
    true
}

/// `icons/_icon_hashes.plist`: icon name → sha256 hex, written when any icon exists.
fn write_icon_hashes(repo: &Repo) -> Result<bool> {
    let mut hashes = Dictionary::new();
    for icon in repo.list(RepoKind::Icons)? {
        if icon.as_str() == ICON_HASHES {
            continue;
        }
        let bytes = repo.read(RepoKind::Icons, &icon)?;
        hashes.insert(
            icon.as_str().to_owned(),
            Value::String(hex::encode(Sha256::digest(&bytes))),
        );
    }
    if hashes.is_empty() {
        return Ok(false);
    }
    let xml = write_xml(&Value::Dictionary(hashes), "icon hashes")?;
    repo.write(RepoKind::Icons, &ResourceName::new(ICON_HASHES)?, &xml)?;
    Ok(true)
}
