//! Manifest resolution as Munki's `process_manifest_for_key` does it, without its failure
//! modes: include cycles and missing includes are errors naming the chain, and nothing
//! partial is returned.
//!
//! Resolution does no I/O itself: manifests and catalogs come from a [`RepoSource`], so a
//! server can keep parsed manifests and indexed catalogs in memory.

use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;

use serde::Serialize;

use crate::catalog_index::{CatalogIndex, find_item};
use crate::error::{Error, Result};
use crate::facts::{FactValue, Facts};
use crate::fast_hash::{FastMap, FastSet};
use crate::model::{Manifest, Section};
use crate::predicate::{Bindings, Predicate};
use crate::version::{manifest_item_basename, split_name_and_version};

/// How deeply included manifests may nest.
pub const MAX_INCLUDE_DEPTH: usize = 64;
/// How deeply `requires` and `update_for` may chain.
const MAX_DEPENDENCY_DEPTH: usize = 32;

/// Where resolution gets manifests and catalogs. `Ok(None)` means "does not exist" (a 404).
pub trait RepoSource {
    /// The parsed manifest called `name` (a path under `manifests/`).
    fn manifest(&self, name: &str) -> Result<Option<Arc<Manifest>>>;
    /// The indexed catalog called `name`.
    fn catalog(&self, name: &str) -> Result<Option<Arc<CatalogIndex>>>;
}

/// An in-memory [`RepoSource`]: parsed once, resolved many times.
#[derive(Debug, Clone, Default)]
pub struct MemorySource {
    manifests: HashMap<String, Arc<Manifest>>,
    catalogs: HashMap<String, Arc<CatalogIndex>>,
}

impl MemorySource {
    /// An empty source.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a manifest.
    pub fn insert_manifest(&mut self, name: impl Into<String>, manifest: Manifest) -> &mut Self {
        self.manifests.insert(name.into(), Arc::new(manifest));
        self
    }

    /// Adds or replaces a catalog.
    pub fn insert_catalog(&mut self, name: impl Into<String>, catalog: CatalogIndex) -> &mut Self {
        self.catalogs.insert(name.into(), Arc::new(catalog));
        self
    }
}

impl RepoSource for MemorySource {
    fn manifest(&self, name: &str) -> Result<Option<Arc<Manifest>>> {
        Ok(self.manifests.get(name).cloned())
    }
    fn catalog(&self, name: &str) -> Result<Option<Arc<CatalogIndex>>> {
        Ok(self.catalogs.get(name).cloned())
    }
}

/// Where an item came from: the manifest that lists it, the include chain from the primary
/// manifest to it, and the conditions that had to hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provenance {
    /// The manifest that lists the item.
    pub manifest: String,
    /// Primary manifest first, then each included manifest down to `manifest`.
    pub include_chain: Vec<String>,
    /// Conditions (outermost first) under which the item was listed.
    pub conditions: Vec<String>,
}

/// Index of a [`Provenance`] in [`Resolved::sources`] (shared by every item it brought).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct SourceId(pub usize);

/// Why an item is in a list besides being listed in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "item", rename_all = "snake_case")]
pub enum Reason {
    /// Listed in a manifest section.
    Listed,
    /// Required (`requires`) by another item being installed.
    RequiredBy(String),
    /// An update (`update_for`) for an item being installed.
    UpdateFor(String),
    /// `autoremove` item in the primary manifest's catalogs, not in managed installs.
    Autoremove,
}

/// One decision about one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The item name (basename, without a pinned version).
    pub name: String,
    /// The version chosen from the catalogs.
    pub version: String,
    /// The catalog that supplied it.
    pub catalog: String,
    /// The manifest entry as written (may carry a pinned version such as `Firefox-120.0`).
    pub requested: String,
    /// Where the entry came from: see [`Resolved::source`].
    pub source: SourceId,
    /// Why it is here.
    pub reason: Reason,
}

/// An item named in `featured_items` or `default_installs` (not looked up in catalogs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    /// The item name.
    pub name: String,
    /// Where it came from: see [`Resolved::source`].
    pub source: SourceId,
}

/// Something Munki would log as a warning; resolution continues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Warning {
    /// A manifest (and everything it includes) was skipped: it has no catalogs and inherits none.
    NoCatalogs {
        /// Include chain to the manifest.
        chain: Vec<String>,
    },
    /// A catalog named in a manifest does not exist.
    MissingCatalog {
        /// The catalog.
        catalog: String,
    },
    /// A conditional item has no `condition` and was skipped.
    MissingCondition {
        /// The manifest holding it.
        manifest: String,
    },
    /// A condition did not parse; it counts as false.
    ConditionSyntax {
        /// The manifest holding it.
        manifest: String,
        /// The condition text.
        condition: String,
        /// The parser's message with its position.
        error: String,
    },
    /// No applicable item was found in the catalogs.
    NotFound {
        /// The section.
        section: String,
        /// The entry as written.
        item: String,
        /// The catalogs searched.
        catalogs: Vec<String>,
        /// Where the entry came from.
        source: Provenance,
    },
    /// A removal was refused because the item is a managed install.
    RemovalRefused {
        /// The item.
        item: String,
        /// Where the removal came from.
        source: Provenance,
    },
    /// An item was not installed because a requirement is unavailable.
    RequirementUnavailable {
        /// The item.
        item: String,
        /// The requirement.
        requires: String,
    },
    /// A featured item is not an optional install.
    FeaturedNotOptional {
        /// The item.
        item: String,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::NoCatalogs { chain } => write!(
                f,
                "manifest {} has no catalogs (and inherits none), so nothing in it was processed; add catalogs to the primary manifest",
                chain.join(" -> ")
            ),
            Warning::MissingCatalog { catalog } => {
                write!(
                    f,
                    "catalog `{catalog}` does not exist; run makecatalogs or fix the name"
                )
            }
            Warning::MissingCondition { manifest } => {
                write!(
                    f,
                    "a conditional item in `{manifest}` has no condition and was skipped"
                )
            }
            Warning::ConditionSyntax {
                manifest,
                condition,
                error,
            } => write!(
                f,
                "condition {condition:?} in `{manifest}` counts as false: {error}"
            ),
            Warning::NotFound {
                section,
                item,
                catalogs,
                source,
            } => write!(
                f,
                "could not process {item} for {section} (listed in `{}`): no applicable pkginfo in catalogs {}",
                source.manifest,
                catalogs.join(", ")
            ),
            Warning::RemovalRefused { item, source } => write!(
                f,
                "will not remove {item} (listed in `{}`) because it is a managed install",
                source.manifest
            ),
            Warning::RequirementUnavailable { item, requires } => {
                write!(
                    f,
                    "{item} was not installed: its requirement {requires} is unavailable"
                )
            }
            Warning::FeaturedNotOptional { item } => {
                write!(f, "featured item {item} is not an optional install")
            }
        }
    }
}

/// The outcome of resolving a primary manifest against a device's facts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Resolved {
    /// The primary manifest.
    pub primary: String,
    /// Manifests processed, in first-visit order.
    pub manifests: Vec<String>,
    /// Items to install and keep up to date, in Munki's order.
    pub managed_installs: Vec<Decision>,
    /// Items to remove (listed uninstalls, then autoremove items).
    pub removals: Vec<Decision>,
    /// Items to update if some version is installed.
    pub managed_updates: Vec<Decision>,
    /// Self-service items.
    pub optional_installs: Vec<Decision>,
    /// Featured self-service items.
    pub featured_items: Vec<Listed>,
    /// Items installed once by default and removable by the user.
    pub default_installs: Vec<Listed>,
    /// Warnings, in the order they arose.
    pub warnings: Vec<Warning>,
    /// Where items came from, indexed by [`SourceId`].
    pub sources: Vec<Provenance>,
}

impl Resolved {
    /// The provenance a decision refers to.
    pub fn source(&self, id: SourceId) -> Option<&Provenance> {
        self.sources.get(id.0)
    }
}

/// The effective catalogs of one manifest level, shared by every entry collected under it
/// (one pointer per entry keeps entries small and their clones cheap).
type Level = Rc<LevelData>;

struct LevelData {
    names: Vec<String>,
    loaded: Vec<(String, Arc<CatalogIndex>)>,
    /// `names` as the `catalogs` fact that manifest conditions see.
    fact: FactValue,
}

/// A manifest or conditional body that listed items: the file it is in, the path of
/// conditional-item indexes from the file to the body, and what its items share.
struct Node {
    file: Arc<Manifest>,
    path: Vec<usize>,
    level: Level,
    source: SourceId,
}

impl Node {
    fn manifest(&self) -> Option<&Manifest> {
        body_of(&self.file, &self.path)
    }
}

/// The conditional body at `path` inside `file` (the file itself for an empty path).
fn body_of<'m>(file: &'m Manifest, path: &[usize]) -> Option<&'m Manifest> {
    path.iter().try_fold(file, |manifest, &i| {
        manifest.conditional_items.get(i).map(|item| &item.body)
    })
}

/// An entry as collected: item `index` of its section in node `node`. Entries point into
/// the parsed manifests instead of copying each item name per device.
struct Slot {
    node: usize,
    index: usize,
}

/// The entries `slots` of `section`, borrowed from the parsed manifests.
fn entries<'n>(
    nodes: &'n [Node],
    section: Section,
    slots: &'n [Slot],
) -> impl Iterator<Item = Entry<'n>> + 'n {
    slots.iter().filter_map(move |slot| {
        let node = nodes.get(slot.node)?;
        let item = node.manifest()?.section(section).get(slot.index)?;
        Some(Entry {
            item,
            level: &node.level,
            source: node.source,
        })
    })
}

/// An entry as processed, borrowed from the parsed manifest.
struct Entry<'m> {
    item: &'m str,
    level: &'m Level,
    source: SourceId,
}

struct Resolver<'a> {
    source: &'a dyn RepoSource,
    facts: &'a Facts,
    catalog_cache: FastMap<String, Option<Arc<CatalogIndex>>>,
    nodes: Vec<Node>,
    entries: [Vec<Slot>; 6],
    out: Resolved,
    seen_manifests: FastSet<String>,
    installed: FastSet<String>,
    /// Items whose requirements are being installed (a short stack; guards `requires` cycles).
    in_progress: Vec<String>,
    removed: FastSet<String>,
    /// Results of conditions already evaluated for this device, by condition text, with the
    /// effective catalogs they saw. A condition depends only on the facts and `catalogs`, and
    /// group and department manifests often repeat the same conditions.
    condition_results: FastMap<String, Vec<(Level, bool)>>,
}

/// Resolves `primary` for a device with `facts`.
///
/// Errors (nothing partial is returned): the primary manifest or an included manifest is
/// missing, manifests include each other in a cycle, or the source fails.
pub fn resolve(source: &dyn RepoSource, primary: &str, facts: &Facts) -> Result<Resolved> {
    let manifest = source
        .manifest(primary)?
        .ok_or_else(|| Error::MissingPrimaryManifest {
            name: primary.to_owned(),
        })?;
    let mut resolver = Resolver {
        source,
        facts,
        catalog_cache: FastMap::default(),
        // Room for a typical tree's entries at once: growing them by doubling cost more
        // (reallocations of large blocks) than the entries themselves.
        nodes: Vec::new(),
        entries: std::array::from_fn(|_| Vec::with_capacity(16)),
        out: Resolved {
            primary: primary.to_owned(),
            manifests: vec![primary.to_owned()],
            ..Resolved::default()
        },
        seen_manifests: FastSet::from_iter([primary.to_owned()]),
        installed: FastSet::default(),
        in_progress: Vec::new(),
        removed: FastSet::default(),
        condition_results: FastMap::default(),
    };
    let root = Rc::new(LevelData {
        names: Vec::new(),
        loaded: Vec::new(),
        fact: FactValue::Array(Vec::new()),
    });
    let mut chain = vec![primary.to_owned()];
    let top_level = resolver.walk(
        &manifest,
        &mut Vec::new(),
        &root,
        &mut chain,
        &mut Vec::new(),
    )?;
    resolver.finish(top_level.as_ref());
    Ok(resolver.out)
}

impl Resolver<'_> {
    fn level_for(&mut self, names: &[String]) -> Result<Level> {
        let mut loaded = Vec::with_capacity(names.len());
        for name in names {
            let index = if let Some(cached) = self.catalog_cache.get(name) {
                cached.clone()
            } else {
                let found = self.source.catalog(name)?;
                if found.is_none() {
                    self.out.warnings.push(Warning::MissingCatalog {
                        catalog: name.clone(),
                    });
                }
                self.catalog_cache.insert(name.clone(), found.clone());
                found
            };
            if let Some(index) = index {
                loaded.push((name.clone(), index));
            }
        }
        Ok(Rc::new(LevelData {
            names: names.to_vec(),
            loaded,
            fact: FactValue::strings(names.iter().cloned()),
        }))
    }

    /// Evaluates a parsed condition against the facts and the level's catalogs, or returns
    /// the result it had for the same text and catalogs earlier in this resolution.
    fn condition_holds(&mut self, text: &str, predicate: &Predicate, level: &Level) -> bool {
        let same_catalogs = |seen: &Level| Rc::ptr_eq(seen, level) || seen.names == level.names;
        if let Some(&(_, holds)) = self
            .condition_results
            .get(text)
            .and_then(|seen| seen.iter().find(|(seen, _)| same_catalogs(seen)))
        {
            return holds;
        }
        let holds = predicate.evaluate_with(&Bindings::with_catalogs(self.facts, &level.fact));
        self.condition_results
            .entry(text.to_owned())
            .or_default()
            .push((Rc::clone(level), holds));
        holds
    }

    /// Collects the entries of one manifest (or conditional body) in Munki's order:
    /// includes, then conditional items, then own items. Returns the level it used, or
    /// `None` when it had no catalogs.
    /// `path` leads from `file` to the body being walked (empty for the file itself).
    fn walk(
        &mut self,
        file: &Arc<Manifest>,
        path: &mut Vec<usize>,
        parent: &Level,
        chain: &mut Vec<String>,
        conditions: &mut Vec<String>,
    ) -> Result<Option<Level>> {
        let Some(manifest) = body_of(file, path) else {
            // Unreachable: paths are built from the indexes of this very file.
            return Ok(None);
        };
        let level = if manifest.catalogs.is_empty() {
            parent.clone()
        } else {
            self.level_for(&manifest.catalogs)?
        };
        if level.names.is_empty() {
            self.out.warnings.push(Warning::NoCatalogs {
                chain: chain.clone(),
            });
            return Ok(None);
        }
        for include in manifest.included_manifests.iter().filter(|i| !i.is_empty()) {
            if let Some(start) = chain.iter().position(|m| m == include) {
                let mut cycle = chain[start..].to_vec();
                cycle.push(include.clone());
                return Err(Error::IncludeCycle { cycle });
            }
            if chain.len() >= MAX_INCLUDE_DEPTH {
                return Err(Error::IncludesTooDeep {
                    chain: chain.clone(),
                    limit: MAX_INCLUDE_DEPTH,
                });
            }
            let child =
                self.source
                    .manifest(include)?
                    .ok_or_else(|| Error::MissingIncludedManifest {
                        missing: include.clone(),
                        chain: chain.clone(),
                    })?;
            if self.seen_manifests.insert(include.clone()) {
                self.out.manifests.push(include.clone());
            }
            chain.push(include.clone());
            self.walk(&child, &mut Vec::new(), &level, chain, conditions)?;
            chain.pop();
        }
        // Cloned only where it is kept (warnings, provenance): most walks need it once or never.
        let manifest_name = |chain: &[String]| chain.last().cloned().unwrap_or_default();
        for (i, item) in manifest.conditional_items.iter().enumerate() {
            let Some(condition) = &item.condition else {
                self.out.warnings.push(Warning::MissingCondition {
                    manifest: manifest_name(chain),
                });
                continue;
            };
            let holds = match condition.predicate() {
                Ok(predicate) => self.condition_holds(condition.text(), predicate, &level),
                Err(error) => {
                    self.out.warnings.push(Warning::ConditionSyntax {
                        manifest: manifest_name(chain),
                        condition: condition.text().to_owned(),
                        error: error.to_string(),
                    });
                    false
                }
            };
            if holds {
                conditions.push(condition.text().to_owned());
                path.push(i);
                self.walk(file, path, &level, chain, conditions)?;
                path.pop();
                conditions.pop();
            }
        }
        let has_items = Section::ALL
            .iter()
            .any(|s| !manifest.section(*s).is_empty());
        if has_items {
            let source = SourceId(self.out.sources.len());
            self.out.sources.push(Provenance {
                manifest: manifest_name(chain),
                include_chain: chain.clone(),
                conditions: conditions.clone(),
            });
            let node = self.nodes.len();
            self.nodes.push(Node {
                file: Arc::clone(file),
                path: path.clone(),
                level: level.clone(),
                source,
            });
            for section in Section::ALL {
                let count = manifest.section(section).len();
                let slots = &mut self.entries[section as usize];
                slots.reserve(count);
                slots.extend((0..count).map(|index| Slot { node, index }));
            }
        }
        Ok(Some(level))
    }

    fn finish(&mut self, primary_level: Option<&Level>) {
        let nodes = std::mem::take(&mut self.nodes);
        let [installs, uninstalls, updates, optionals, featured, defaults] =
            std::mem::take(&mut self.entries);
        let view = |section, slots| entries(&nodes, section, slots);
        // Entries bound the decisions (requirements aside): growing these step by step cost
        // more reallocations than the decisions themselves.
        self.out.managed_installs.reserve(installs.len());
        self.installed.reserve(installs.len());
        self.out.optional_installs.reserve(optionals.len());
        for entry in view(Section::ManagedInstalls, &installs) {
            self.install(entry.item, entry.level, entry.source, &Reason::Listed, 0);
        }
        for entry in view(Section::ManagedUninstalls, &uninstalls) {
            self.remove(&entry);
        }
        if let Some(level) = primary_level {
            self.autoremove(level);
        }
        let mut updated = FastSet::default();
        for entry in view(Section::ManagedUpdates, &updates) {
            self.lookup_into(&entry, Section::ManagedUpdates, &mut updated);
        }
        let mut optional = FastSet::default();
        for entry in view(Section::OptionalInstalls, &optionals) {
            self.lookup_into(&entry, Section::OptionalInstalls, &mut optional);
        }
        let mut seen = FastSet::default();
        for entry in view(Section::FeaturedItems, &featured) {
            let name = manifest_item_basename(entry.item).to_owned();
            if seen.insert(name.clone()) {
                if !optional.contains(&name) {
                    self.out
                        .warnings
                        .push(Warning::FeaturedNotOptional { item: name.clone() });
                }
                self.out.featured_items.push(Listed {
                    name,
                    source: entry.source,
                });
            }
        }
        let mut seen = FastSet::default();
        for entry in view(Section::DefaultInstalls, &defaults) {
            let name = manifest_item_basename(entry.item).to_owned();
            if seen.insert(name.clone()) {
                self.out.default_installs.push(Listed {
                    name,
                    source: entry.source,
                });
            }
        }
    }

    fn provenance(&self, id: SourceId) -> Provenance {
        self.out
            .sources
            .get(id.0)
            .cloned()
            .unwrap_or_else(|| Provenance {
                manifest: self.out.primary.clone(),
                include_chain: vec![self.out.primary.clone()],
                conditions: Vec::new(),
            })
    }

    fn not_found(&mut self, section: Section, item: &str, level: &Level, source: SourceId) {
        let source = self.provenance(source);
        self.out.warnings.push(Warning::NotFound {
            section: section.key().to_owned(),
            item: item.to_owned(),
            catalogs: level.names.clone(),
            source,
        });
    }

    /// Munki's `process_install`: first occurrence wins, requirements first, then updates.
    fn install(
        &mut self,
        requested: &str,
        level: &Level,
        source: SourceId,
        reason: &Reason,
        depth: usize,
    ) -> bool {
        let (name, pin) = split_name_and_version(manifest_item_basename(requested));
        if self.installed.contains(name) || self.in_progress.iter().any(|n| n == name) {
            return true;
        }
        if depth > MAX_DEPENDENCY_DEPTH {
            return false;
        }
        let Some(found) = find_item(&level.loaded, name, pin, self.facts) else {
            self.not_found(Section::ManagedInstalls, requested, level, source);
            return false;
        };
        let version = found.item.version.clone();
        let catalog = found.catalog.to_owned();
        let requires = if found.item.requires.is_empty() {
            Vec::new()
        } else {
            found.item.requires.clone()
        };
        // Only an item with requirements can be re-entered, so only it goes on the stack.
        if !requires.is_empty() {
            self.in_progress.push(name.to_owned());
            for requirement in &requires {
                let why = Reason::RequiredBy(name.to_owned());
                if !self.install(requirement, level, source, &why, depth + 1) {
                    self.in_progress.pop();
                    self.out.warnings.push(Warning::RequirementUnavailable {
                        item: requested.to_owned(),
                        requires: requirement.clone(),
                    });
                    return false;
                }
            }
            self.in_progress.pop();
        }
        self.installed.insert(name.to_owned());
        self.out.managed_installs.push(Decision {
            name: name.to_owned(),
            version,
            catalog,
            requested: requested.to_owned(),
            source,
            reason: reason.clone(),
        });
        let updates: Vec<String> = level
            .loaded
            .iter()
            .flat_map(|(_, index)| index.updates_for(name).map(|u| u.name.clone()))
            .collect();
        for update in updates {
            let why = Reason::UpdateFor(name.to_owned());
            self.install(&update, level, source, &why, depth + 1);
        }
        true
    }

    /// Munki's `process_removal`: installs beat removals; the first occurrence wins.
    fn remove(&mut self, entry: &Entry<'_>) {
        let (name, pin) = split_name_and_version(manifest_item_basename(entry.item));
        if self.installed.contains(name) {
            let source = self.provenance(entry.source);
            self.out.warnings.push(Warning::RemovalRefused {
                item: entry.item.to_owned(),
                source,
            });
            return;
        }
        if self.removed.contains(name) {
            return;
        }
        // Removal needs the uninstall details of any version in the catalogs, applicable or not.
        let found = entry.level.loaded.iter().find_map(|(catalog, index)| {
            index
                .candidates(name, pin)
                .next()
                .map(|item| (catalog.clone(), item.version.clone()))
        });
        let Some((catalog, version)) = found else {
            self.not_found(
                Section::ManagedUninstalls,
                entry.item,
                entry.level,
                entry.source,
            );
            return;
        };
        self.removed.insert(name.to_owned());
        self.out.removals.push(Decision {
            name: name.to_owned(),
            version,
            catalog,
            requested: entry.item.to_owned(),
            source: entry.source,
            reason: Reason::Listed,
        });
    }

    fn autoremove(&mut self, level: &Level) {
        let source = SourceId(self.out.sources.len());
        self.out.sources.push(Provenance {
            manifest: self.out.primary.clone(),
            include_chain: vec![self.out.primary.clone()],
            conditions: Vec::new(),
        });
        for (catalog, index) in &level.loaded {
            for item in index.autoremove_items() {
                if self.installed.contains(&item.name) || !self.removed.insert(item.name.clone()) {
                    continue;
                }
                self.out.removals.push(Decision {
                    name: item.name.clone(),
                    version: item.version.clone(),
                    catalog: catalog.clone(),
                    requested: item.name.clone(),
                    source,
                    reason: Reason::Autoremove,
                });
            }
        }
    }

    /// `managed_updates` and `optional_installs`: skip names already installed or removed.
    fn lookup_into(&mut self, entry: &Entry<'_>, section: Section, seen: &mut FastSet<String>) {
        let (name, pin) = split_name_and_version(manifest_item_basename(entry.item));
        if self.installed.contains(name) || self.removed.contains(name) || seen.contains(name) {
            return;
        }
        let Some(found) = find_item(&entry.level.loaded, name, pin, self.facts) else {
            self.not_found(section, entry.item, entry.level, entry.source);
            return;
        };
        seen.insert(name.to_owned());
        let decision = Decision {
            name: name.to_owned(),
            version: found.item.version.clone(),
            catalog: found.catalog.to_owned(),
            requested: entry.item.to_owned(),
            source: entry.source,
            reason: Reason::Listed,
        };
        match section {
            Section::ManagedUpdates => self.out.managed_updates.push(decision),
            _ => self.out.optional_installs.push(decision),
        }
    }
}
