//! A catalog indexed for lookup the way Munki's `make_catalog_db` and `get_item_detail` do.

use std::cmp::Ordering;

use crate::facts::{FactValue, Facts, names};
use crate::fast_hash::FastMap;
use crate::model::{Catalog, PkgInfo};
use crate::predicate::Bindings;
use crate::version::{compare_versions, trim_version};

/// A catalog with its items grouped by name and trimmed version, highest version first.
#[derive(Debug, Clone, Default)]
pub struct CatalogIndex {
    items: Vec<PkgInfo>,
    /// name -> (trimmed version, item indexes in catalog order), sorted by version descending.
    by_name: FastMap<String, Vec<(String, Vec<usize>)>>,
    /// name -> indexes of items whose `update_for` names it.
    updates_for: FastMap<String, Vec<usize>>,
    /// Indexes of `autoremove` items in catalog order: resolution asks for them on every
    /// device, and scanning every item each time cost more than the rest of `finish`.
    autoremove: Vec<usize>,
}

impl CatalogIndex {
    /// Indexes a catalog.
    pub fn new(catalog: Catalog) -> Self {
        let mut by_name: FastMap<String, Vec<(String, Vec<usize>)>> = FastMap::default();
        let mut updates_for: FastMap<String, Vec<usize>> = FastMap::default();
        for (index, item) in catalog.items.iter().enumerate() {
            let versions = by_name.entry(item.name.clone()).or_default();
            let trimmed = trim_version(&item.version);
            match versions.iter_mut().find(|(v, _)| *v == trimmed) {
                Some((_, indexes)) => indexes.push(index),
                None => versions.push((trimmed, vec![index])),
            }
            for target in &item.update_for {
                updates_for.entry(target.clone()).or_default().push(index);
            }
        }
        // Stable sort, descending: equal versions keep catalog order, as Python's
        // `sort(key=MunkiLooseVersion, reverse=True)` does.
        for versions in by_name.values_mut() {
            versions.sort_by(|a, b| compare_versions(&b.0, &a.0));
        }
        let autoremove = catalog
            .items
            .iter()
            .enumerate()
            .filter(|(_, item)| item.autoremove)
            .map(|(index, _)| index)
            .collect();
        Self {
            items: catalog.items,
            by_name,
            updates_for,
            autoremove,
        }
    }

    /// All items, in catalog order.
    pub fn items(&self) -> &[PkgInfo] {
        &self.items
    }

    /// Items with `autoremove` set, in catalog order.
    pub fn autoremove_items(&self) -> impl Iterator<Item = &PkgInfo> {
        self.autoremove.iter().filter_map(|&i| self.items.get(i))
    }

    /// Items named `name`, pinned to `version` (trimmed) if given, else highest version first.
    pub fn candidates<'s>(
        &'s self,
        name: &str,
        version: Option<&str>,
    ) -> impl Iterator<Item = &'s PkgInfo> + 's {
        let wanted = version.map(trim_version);
        self.by_name
            .get(name)
            .into_iter()
            .flatten()
            .filter(move |(v, _)| wanted.as_ref().is_none_or(|w| w == v))
            .flat_map(|(_, indexes)| indexes.iter())
            .filter_map(|&i| self.items.get(i))
    }

    /// Names of items that declare `update_for` `name`.
    pub fn updates_for(&self, name: &str) -> impl Iterator<Item = &PkgInfo> {
        self.updates_for
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(|&i| self.items.get(i))
    }
}

/// Whether an item applies to this device: Munki's `munki_version_ok`, `os_version_ok`,
/// `cpu_arch_ok` and `installable_condition_ok`, in that order.
pub fn item_applies(item: &PkgInfo, facts: &Facts) -> bool {
    let loose_lt = |a: &str, b: &str| compare_versions(a, b) == Ordering::Less;
    // Facts are looked up only for the checks an item asks for: most items ask for none.
    if let Some(minimum) = &item.minimum_munki_version
        && facts
            .get_str(names::MUNKI_VERSION)
            .is_some_and(|have| loose_lt(have, minimum))
    {
        return false;
    }
    if (item.minimum_os_version.is_some() || item.maximum_os_version.is_some())
        && let Some(os) = facts.get_str(names::OS_VERS)
    {
        if item
            .minimum_os_version
            .as_deref()
            .is_some_and(|min| loose_lt(os, min))
        {
            return false;
        }
        if item
            .maximum_os_version
            .as_deref()
            .is_some_and(|max| loose_lt(max, os))
        {
            return false;
        }
    }
    if !item.supported_architectures.is_empty() {
        let arch = facts.get_str(names::ARCH);
        let native = arch.is_some_and(|a| item.supported_architectures.iter().any(|s| s == a));
        let x86_64_on_i386 = arch == Some("i386")
            && item.supported_architectures.iter().any(|s| s == "x86_64")
            && facts.get(names::X86_64_CAPABLE) == Some(&FactValue::Bool(true));
        if !native && !x86_64_on_i386 {
            return false;
        }
    }
    if let Some(condition) = &item.installable_condition {
        // A syntax error counts as false, as in Munki.
        return condition
            .predicate()
            .is_ok_and(|p| p.evaluate_with(&Bindings::new(facts)));
    }
    true
}

/// A found item and the catalog it came from.
#[derive(Debug, Clone, Copy)]
pub struct Found<'a> {
    /// The pkginfo.
    pub item: &'a PkgInfo,
    /// The catalog's name.
    pub catalog: &'a str,
}

/// Munki's `get_item_detail`: the first catalog (in manifest order) holding an applicable
/// item wins; within it the highest `MunkiLooseVersion` that applies.
pub fn find_item<'a>(
    catalogs: &'a [(String, std::sync::Arc<CatalogIndex>)],
    name: &str,
    version: Option<&str>,
    facts: &Facts,
) -> Option<Found<'a>> {
    catalogs.iter().find_map(|(catalog, index)| {
        index
            .candidates(name, version)
            .find(|item| item_applies(item, facts))
            .map(|item| Found { item, catalog })
    })
}
