//! Resolution keeps no per-device copies of manifest entries and remembers condition results
//! within one resolution; these tests pin that neither changes what Munki would decide.

use tessera_manifest::{
    Catalog, CatalogIndex, Condition, ConditionalItem, Facts, Manifest, MemorySource, PkgInfo,
    Section, resolve,
};

fn manifest(catalogs: &[&str], includes: &[&str], installs: &[&str]) -> Manifest {
    let mut m = Manifest::new();
    m.catalogs = catalogs.iter().map(ToString::to_string).collect();
    m.included_manifests = includes.iter().map(ToString::to_string).collect();
    *m.section_mut(Section::ManagedInstalls) = installs.iter().map(ToString::to_string).collect();
    m
}

fn conditional(condition: &str, body: Manifest) -> ConditionalItem {
    ConditionalItem {
        condition: Some(Condition::new(condition)),
        body,
    }
}

fn pkg(name: &str) -> PkgInfo {
    let mut dict = plist::Dictionary::new();
    dict.insert("name".into(), plist::Value::String(name.into()));
    dict.insert("version".into(), plist::Value::String("1.0".into()));
    PkgInfo::from_dictionary(dict, name).unwrap()
}

fn source_with(names: &[&str]) -> MemorySource {
    let mut source = MemorySource::new();
    for catalog in ["a", "b"] {
        source.insert_catalog(
            catalog,
            CatalogIndex::new(Catalog {
                items: names.iter().map(|n| pkg(n)).collect(),
            }),
        );
    }
    source
}

fn installs(source: &MemorySource, primary: &str, facts: &Facts) -> Vec<String> {
    resolve(source, primary, facts)
        .unwrap()
        .managed_installs
        .into_iter()
        .map(|d| d.name)
        .collect()
}

#[test]
fn nested_conditional_bodies_keep_munkis_order_and_provenance() {
    let mut source = source_with(&["Own", "Outer", "Inner", "Deeper", "Sibling", "Never"]);
    let mut inner = manifest(&[], &[], &["Inner"]);
    inner.conditional_items.push(conditional(
        "TRUEPREDICATE",
        manifest(&[], &[], &["Deeper"]),
    ));
    inner.conditional_items.push(conditional(
        "FALSEPREDICATE",
        manifest(&[], &[], &["Never"]),
    ));
    let mut outer = manifest(&[], &[], &["Outer"]);
    outer
        .conditional_items
        .push(conditional("arch == 'arm64'", inner));
    let mut primary = manifest(&["a"], &[], &["Own"]);
    primary
        .conditional_items
        .push(conditional("TRUEPREDICATE", outer));
    primary.conditional_items.push(conditional(
        "TRUEPREDICATE",
        manifest(&[], &[], &["Sibling"]),
    ));
    source.insert_manifest("primary", primary);
    let mut facts = Facts::new();
    facts.set("arch", "arm64");
    let resolved = resolve(&source, "primary", &facts).unwrap();
    let order: Vec<&str> = resolved
        .managed_installs
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    // Conditional items depth first (each body's own conditional items before its items),
    // then the manifest's own items.
    assert_eq!(order, ["Deeper", "Inner", "Outer", "Sibling", "Own"]);
    let deeper = &resolved.managed_installs[0];
    assert_eq!(
        resolved.source(deeper.source).unwrap().conditions,
        ["TRUEPREDICATE", "arch == 'arm64'", "TRUEPREDICATE"]
    );
    facts.set("arch", "x86_64");
    assert_eq!(
        installs(&source, "primary", &facts),
        ["Outer", "Sibling", "Own"]
    );
}

#[test]
fn a_repeated_condition_is_evaluated_again_under_other_catalogs() {
    // The same text holds in the manifest with catalog `b` and not in the one with `a`.
    let mut source = source_with(&["InA", "InB"]);
    let mut primary = manifest(&["a"], &["child"], &[]);
    primary.conditional_items.push(conditional(
        "catalogs CONTAINS 'b'",
        manifest(&[], &[], &["InA"]),
    ));
    let mut child = manifest(&["b"], &[], &[]);
    child.conditional_items.push(conditional(
        "catalogs CONTAINS 'b'",
        manifest(&[], &[], &["InB"]),
    ));
    source.insert_manifest("primary", primary);
    source.insert_manifest("child", child);
    assert_eq!(installs(&source, "primary", &Facts::new()), ["InB"]);
}

#[test]
fn a_repeated_condition_sees_each_devices_facts() {
    let mut source = source_with(&["Laptop"]);
    let cond = || conditional("machine_type == 'laptop'", manifest(&[], &[], &["Laptop"]));
    let mut primary = manifest(&["a"], &["group"], &[]);
    primary.conditional_items.push(cond());
    let mut group = manifest(&[], &[], &[]);
    group.conditional_items.push(cond());
    source.insert_manifest("primary", primary);
    source.insert_manifest("group", group);
    let mut laptop = Facts::new();
    laptop.set("machine_type", "laptop");
    let mut desktop = Facts::new();
    desktop.set("machine_type", "desktop");
    assert_eq!(installs(&source, "primary", &laptop), ["Laptop"]);
    assert!(installs(&source, "primary", &desktop).is_empty());
    assert_eq!(installs(&source, "primary", &laptop), ["Laptop"]);
}
