//! Manifests, pkginfo and catalogs, read from and written to property lists.
//!
//! Keys we model are typed; every other key is kept verbatim and written back, so that
//! admin metadata (`display_name`, `user`, `_metadata`, …) survives a round trip.

use std::fmt;

use plist::{Dictionary, Value};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::plist_io::{read_value, type_name, write_xml};
use crate::predicate::{Predicate, PredicateError};

/// The string-array sections of a manifest, in the order Munki processes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Section {
    /// `managed_installs`.
    ManagedInstalls,
    /// `managed_uninstalls`.
    ManagedUninstalls,
    /// `managed_updates`.
    ManagedUpdates,
    /// `optional_installs`.
    OptionalInstalls,
    /// `featured_items`.
    FeaturedItems,
    /// `default_installs`.
    DefaultInstalls,
}

impl Section {
    /// All sections, in processing order.
    pub const ALL: [Section; 6] = [
        Section::ManagedInstalls,
        Section::ManagedUninstalls,
        Section::ManagedUpdates,
        Section::OptionalInstalls,
        Section::FeaturedItems,
        Section::DefaultInstalls,
    ];

    /// The plist key.
    pub fn key(self) -> &'static str {
        match self {
            Section::ManagedInstalls => "managed_installs",
            Section::ManagedUninstalls => "managed_uninstalls",
            Section::ManagedUpdates => "managed_updates",
            Section::OptionalInstalls => "optional_installs",
            Section::FeaturedItems => "featured_items",
            Section::DefaultInstalls => "default_installs",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

const CATALOGS: &str = "catalogs";
const INCLUDED: &str = "included_manifests";
const CONDITIONAL: &str = "conditional_items";
const CONDITION: &str = "condition";

/// A Munki manifest (or the body of a conditional item, which Munki treats as an embedded
/// manifest).
#[derive(Debug, Clone, Default)]
pub struct Manifest {
    /// Catalogs to search, in order; inherited from the parent when empty.
    pub catalogs: Vec<String>,
    /// Other manifests to process first (names under `manifests/`).
    pub included_manifests: Vec<String>,
    /// Conditional items, processed after includes and before own items.
    pub conditional_items: Vec<ConditionalItem>,
    sections: [Vec<String>; 6],
    /// Keys we do not model, kept verbatim.
    pub other: Dictionary,
    /// Modelled keys present in the source even if empty, so a round trip keeps them.
    declared: Vec<&'static str>,
}

/// A `conditional_items` entry: a condition and the manifest keys that apply when it holds.
#[derive(Debug, Clone)]
pub struct ConditionalItem {
    /// The NSPredicate condition; Munki skips an item without one, with a warning.
    pub condition: Option<Condition>,
    /// The keys that apply when the condition is true.
    pub body: Manifest,
}

/// A condition's text with its parse result, parsed once when the manifest is read.
#[derive(Debug, Clone)]
pub struct Condition {
    text: String,
    parsed: std::result::Result<Predicate, PredicateError>,
}

impl Condition {
    /// Parses a condition; a syntax error is kept (it evaluates false during resolution).
    pub fn new(text: impl Into<String>) -> Self {
        let text = text.into();
        let parsed = Predicate::parse(&text);
        Self { text, parsed }
    }

    /// The condition as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The parsed predicate, or the syntax error.
    pub fn predicate(&self) -> std::result::Result<&Predicate, &PredicateError> {
        self.parsed.as_ref()
    }
}

impl Manifest {
    /// An empty manifest.
    pub fn new() -> Self {
        Self::default()
    }

    /// The items of one section.
    pub fn section(&self, section: Section) -> &[String] {
        &self.sections[section.index()]
    }

    /// The items of one section, to edit.
    pub fn section_mut(&mut self, section: Section) -> &mut Vec<String> {
        &mut self.sections[section.index()]
    }

    /// Reads a manifest from XML, binary or ASCII plist bytes; `name` is used in errors.
    pub fn from_plist_bytes(bytes: &[u8], name: &str) -> Result<Self> {
        let what = format!("manifest `{name}`");
        match read_value(bytes, &what)? {
            Value::Dictionary(dict) => Self::from_dictionary(dict, &what, ""),
            other => Err(Error::WrongRoot {
                what,
                expected: "a dict",
                found: type_name(&other),
            }),
        }
    }

    /// Builds a manifest from a plist dictionary; `path` prefixes key names in errors.
    pub fn from_dictionary(dict: Dictionary, what: &str, path: &str) -> Result<Self> {
        let mut manifest = Manifest::new();
        for (key, value) in dict {
            let at = format!("{path}{key}");
            match key.as_str() {
                CATALOGS => {
                    manifest.catalogs = strings(value, what, &at)?;
                    manifest.declared.push(CATALOGS);
                }
                INCLUDED => {
                    manifest.included_manifests = strings(value, what, &at)?;
                    manifest.declared.push(INCLUDED);
                }
                CONDITIONAL => {
                    manifest.conditional_items = conditional_items(value, what, &at)?;
                    manifest.declared.push(CONDITIONAL);
                }
                _ => {
                    if let Some(section) = Section::ALL.iter().find(|s| s.key() == key) {
                        manifest.sections[section.index()] = strings(value, what, &at)?;
                        manifest.declared.push(section.key());
                    } else {
                        manifest.other.insert(key, value);
                    }
                }
            }
        }
        Ok(manifest)
    }

    /// The manifest as a plist dictionary, every key kept.
    pub fn to_dictionary(&self) -> Dictionary {
        let mut dict = self.other.clone();
        let mut put = |key: &'static str, items: &[String]| {
            if !items.is_empty() || self.declared.contains(&key) {
                dict.insert(
                    key.to_owned(),
                    Value::Array(items.iter().cloned().map(Value::String).collect()),
                );
            }
        };
        put(CATALOGS, &self.catalogs);
        put(INCLUDED, &self.included_manifests);
        for section in Section::ALL {
            put(section.key(), self.section(section));
        }
        if !self.conditional_items.is_empty() || self.declared.contains(&CONDITIONAL) {
            let items = self
                .conditional_items
                .iter()
                .map(|ci| {
                    let mut body = ci.body.to_dictionary();
                    if let Some(condition) = &ci.condition {
                        body.insert(CONDITION.to_owned(), Value::String(condition.text.clone()));
                    }
                    Value::Dictionary(body)
                })
                .collect();
            dict.insert(CONDITIONAL.to_owned(), Value::Array(items));
        }
        dict
    }

    /// The manifest as an XML plist (sorted keys, tab indentation, like Munki's tools).
    pub fn to_xml(&self) -> Result<Vec<u8>> {
        write_xml(&Value::Dictionary(self.to_dictionary()), "manifest")
    }
}

fn strings(value: Value, what: &str, at: &str) -> Result<Vec<String>> {
    let Value::Array(items) = value else {
        return Err(Error::WrongType {
            what: what.to_owned(),
            key: at.to_owned(),
            expected: "an array of strings",
            found: type_name(&value),
        });
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) => Ok(s),
            other => Err(Error::WrongType {
                what: what.to_owned(),
                key: format!("{at}[{i}]"),
                expected: "a string",
                found: type_name(&other),
            }),
        })
        .collect()
}

fn conditional_items(value: Value, what: &str, at: &str) -> Result<Vec<ConditionalItem>> {
    let Value::Array(items) = value else {
        return Err(Error::WrongType {
            what: what.to_owned(),
            key: at.to_owned(),
            expected: "an array of dicts",
            found: type_name(&value),
        });
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let item_at = format!("{at}[{i}]");
            let Value::Dictionary(mut dict) = item else {
                return Err(Error::WrongType {
                    what: what.to_owned(),
                    key: item_at,
                    expected: "a dict",
                    found: type_name(&item),
                });
            };
            let condition = match dict.remove(CONDITION) {
                None => None,
                Some(Value::String(text)) => Some(Condition::new(text)),
                Some(other) => {
                    return Err(Error::WrongType {
                        what: what.to_owned(),
                        key: format!("{item_at}.condition"),
                        expected: "a string",
                        found: type_name(&other),
                    });
                }
            };
            let body = Manifest::from_dictionary(dict, what, &format!("{item_at}."))?;
            Ok(ConditionalItem { condition, body })
        })
        .collect()
}

impl Serialize for Manifest {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_dictionary().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Manifest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let dict = Dictionary::deserialize(deserializer)?;
        Manifest::from_dictionary(dict, "manifest", "").map_err(serde::de::Error::custom)
    }
}

/// One pkginfo: the keys resolution needs, typed, plus the whole dictionary as read.
#[derive(Debug, Clone)]
pub struct PkgInfo {
    /// `name`.
    pub name: String,
    /// `version` (empty when absent).
    pub version: String,
    /// `catalogs`, in order, or `None` when the key is absent.
    pub catalogs: Option<Vec<String>>,
    /// `minimum_munki_version`.
    pub minimum_munki_version: Option<String>,
    /// `minimum_os_version`.
    pub minimum_os_version: Option<String>,
    /// `maximum_os_version`.
    pub maximum_os_version: Option<String>,
    /// `supported_architectures`.
    pub supported_architectures: Vec<String>,
    /// `installable_condition`, parsed.
    pub installable_condition: Option<Condition>,
    /// `requires`: items to install first.
    pub requires: Vec<String>,
    /// `update_for`: items this one updates.
    pub update_for: Vec<String>,
    /// `autoremove`.
    pub autoremove: bool,
    /// `installer_type`.
    pub installer_type: Option<String>,
    /// `installer_item_location` (relative to `pkgs/`).
    pub installer_item_location: Option<String>,
    /// `uninstaller_item_location` (relative to `pkgs/`).
    pub uninstaller_item_location: Option<String>,
    /// `uninstall_method`.
    pub uninstall_method: Option<String>,
    /// `PackageURL`.
    pub package_url: Option<String>,
    /// `PackageCompleteURL`.
    pub package_complete_url: Option<String>,
    dict: Dictionary,
}

impl PkgInfo {
    /// Reads a pkginfo from plist bytes; `what` names it in errors.
    pub fn from_plist_bytes(bytes: &[u8], what: &str) -> Result<Self> {
        match read_value(bytes, what)? {
            Value::Dictionary(dict) => Self::from_dictionary(dict, what),
            other => Err(Error::WrongRoot {
                what: what.to_owned(),
                expected: "a dict",
                found: type_name(&other),
            }),
        }
    }

    /// Builds a pkginfo from a dictionary.
    pub fn from_dictionary(dict: Dictionary, what: &str) -> Result<Self> {
        let text = |key: &str| -> Result<Option<String>> {
            match dict.get(key) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(Error::WrongType {
                    what: what.to_owned(),
                    key: key.to_owned(),
                    expected: "a string",
                    found: type_name(other),
                }),
            }
        };
        let list = |key: &str| -> Result<Option<Vec<String>>> {
            dict.get(key)
                .map(|v| strings(v.clone(), what, key))
                .transpose()
        };
        let name = text("name")?.ok_or_else(|| Error::MissingName {
            what: what.to_owned(),
        })?;
        let autoremove = match dict.get("autoremove") {
            None => false,
            Some(Value::Boolean(b)) => *b,
            Some(other) => {
                return Err(Error::WrongType {
                    what: what.to_owned(),
                    key: "autoremove".to_owned(),
                    expected: "a boolean",
                    found: type_name(other),
                });
            }
        };
        Ok(Self {
            version: text("version")?.unwrap_or_default(),
            catalogs: list("catalogs")?,
            minimum_munki_version: text("minimum_munki_version")?,
            minimum_os_version: text("minimum_os_version")?,
            maximum_os_version: text("maximum_os_version")?,
            supported_architectures: list("supported_architectures")?.unwrap_or_default(),
            installable_condition: text("installable_condition")?.map(Condition::new),
            requires: list("requires")?.unwrap_or_default(),
            update_for: list("update_for")?.unwrap_or_default(),
            autoremove,
            installer_type: text("installer_type")?,
            installer_item_location: text("installer_item_location")?,
            uninstaller_item_location: text("uninstaller_item_location")?,
            uninstall_method: text("uninstall_method")?,
            package_url: text("PackageURL")?,
            package_complete_url: text("PackageCompleteURL")?,
            name,
            dict,
        })
    }

    /// The whole dictionary as read (after makecatalogs' stripping, for catalog items).
    pub fn dictionary(&self) -> &Dictionary {
        &self.dict
    }
}

/// A catalog: the pkginfo items makecatalogs collected, in repository order.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// The items.
    pub items: Vec<PkgInfo>,
}

impl Catalog {
    /// Reads a catalog (a plist array of pkginfo dicts).
    pub fn from_plist_bytes(bytes: &[u8], name: &str) -> Result<Self> {
        let what = format!("catalog `{name}`");
        let Value::Array(items) = read_value(bytes, &what)? else {
            return Err(Error::WrongRoot {
                what,
                expected: "an array",
                found: "another type",
            });
        };
        let items = items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Dictionary(dict) => {
                    PkgInfo::from_dictionary(dict, &format!("{what} item {i}"))
                }
                other => Err(Error::WrongType {
                    what: what.clone(),
                    key: format!("[{i}]"),
                    expected: "a dict",
                    found: type_name(&other),
                }),
            })
            .collect::<Result<_>>()?;
        Ok(Self { items })
    }

    /// The catalog as an XML plist.
    pub fn to_xml(&self) -> Result<Vec<u8>> {
        let array = self
            .items
            .iter()
            .map(|item| Value::Dictionary(item.dict.clone()))
            .collect();
        write_xml(&Value::Array(array), "catalog")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>catalogs</key><array><string>production</string></array>
	<key>display_name</key><string>Lab</string>
	<key>managed_uninstalls</key><array/>
	<key>conditional_items</key>
	<array><dict>
		<key>condition</key><string>machine_type == "laptop"</string>
		<key>managed_installs</key><array><string>VPN</string></array>
		<key>_note</key><string>kept</string>
	</dict></array>
	<key>_metadata</key><dict><key>created_by</key><string>admin</string></dict>
</dict>
</plist>"#;

    #[test]
    fn unknown_keys_and_empty_arrays_survive_a_round_trip() {
        let manifest = Manifest::from_plist_bytes(SAMPLE.as_bytes(), "lab").unwrap();
        assert_eq!(manifest.catalogs, ["production"]);
        assert_eq!(manifest.conditional_items.len(), 1);
        let written = manifest.to_xml().unwrap();
        let again = Manifest::from_plist_bytes(&written, "lab").unwrap();
        let dict = again.to_dictionary();
        for key in [
            "catalogs",
            "display_name",
            "managed_uninstalls",
            "conditional_items",
            "_metadata",
        ] {
            assert!(dict.contains_key(key), "lost {key}");
        }
        assert!(!dict.contains_key("managed_installs"));
        let ci = dict["conditional_items"].as_array().unwrap()[0]
            .as_dictionary()
            .unwrap();
        assert_eq!(ci["_note"].as_string(), Some("kept"));
        assert_eq!(
            ci["condition"].as_string(),
            Some("machine_type == \"laptop\"")
        );
    }

    #[test]
    fn wrong_types_name_the_key() {
        let xml = r#"<plist version="1.0"><dict><key>conditional_items</key><array><dict>
            <key>condition</key><string>TRUEPREDICATE</string>
            <key>managed_installs</key><array><integer>3</integer></array></dict></array></dict></plist>"#;
        let err = Manifest::from_plist_bytes(xml.as_bytes(), "x").unwrap_err();
        assert!(
            err.to_string()
                .contains("conditional_items[0].managed_installs[0]"),
            "{err}"
        );
        let not_dict = Manifest::from_plist_bytes(b"<plist version=\"1.0\"><array/></plist>", "x");
        assert!(matches!(not_dict, Err(Error::WrongRoot { .. })));
    }

    #[test]
    fn pkginfo_needs_a_name() {
        let err = PkgInfo::from_plist_bytes(
            b"<plist version=\"1.0\"><dict><key>version</key><string>1</string></dict></plist>",
            "pkgsinfo/x",
        )
        .unwrap_err();
        assert!(matches!(err, Error::MissingName { .. }));
    }
}
