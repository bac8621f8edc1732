//! Golden tests: one per resolution rule of the spec (munki.md §1.4, §2.3, §3.1), built from
//! its examples (the Firefox 120.0/121.0 repo of §5).

use plist::{Dictionary, Value};
use tessera_manifest::{
    Catalog, CatalogIndex, ClientIdentity, Condition, ConditionalItem, Error, Facts, Manifest,
    ManifestCandidates, MemorySource, PkgInfo, Reason, Resolved, Section, Warning,
    choose_primary_manifest, manifest_candidates, resolve,
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

fn pkg(name: &str, version: &str, extra: &[(&str, Value)]) -> PkgInfo {
    let mut dict = Dictionary::new();
    dict.insert("name".into(), Value::String(name.into()));
    dict.insert("version".into(), Value::String(version.into()));
    for (k, v) in extra {
        dict.insert((*k).into(), v.clone());
    }
    PkgInfo::from_dictionary(dict, name).unwrap()
}

fn strings(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|s| Value::String((*s).into())).collect())
}

/// The spec's golden repo: Firefox 120.0 in testing+production, 121.0 in testing; Config
/// (nopkg) in production.
fn golden() -> MemorySource {
    let mut source = MemorySource::new();
    source.insert_catalog(
        "testing",
        CatalogIndex::new(Catalog {
            items: vec![pkg("Firefox", "120.0", &[]), pkg("Firefox", "121.0", &[])],
        }),
    );
    source.insert_catalog(
        "production",
        CatalogIndex::new(Catalog {
            items: vec![pkg("Firefox", "120.0", &[]), pkg("Config", "1.0", &[])],
        }),
    );
    source
}

fn names(list: &[tessera_manifest::Decision]) -> Vec<(String, String)> {
    list.iter()
        .map(|d| (d.name.clone(), d.version.clone()))
        .collect()
}

fn run(source: &MemorySource, primary: &str) -> Resolved {
    resolve(source, primary, &Facts::new()).unwrap()
}

#[test]
fn first_occurrence_wins_and_the_included_manifests_catalogs_decide_the_version() {
    // Case t1.
    let mut source = golden();
    source.insert_manifest(
        "primary",
        manifest(&["testing"], &["inc_prod"], &["Firefox"]),
    );
    source.insert_manifest("inc_prod", manifest(&["production"], &[], &["Firefox"]));
    let resolved = run(&source, "primary");
    assert_eq!(
        names(&resolved.managed_installs),
        [("Firefox".into(), "120.0".into())]
    );
    assert_eq!(resolved.managed_installs[0].catalog, "production");
    assert_eq!(
        resolved
            .source(resolved.managed_installs[0].source)
            .unwrap()
            .manifest,
        "inc_prod"
    );
    assert_eq!(
        resolved
            .source(resolved.managed_installs[0].source)
            .unwrap()
            .include_chain,
        ["primary", "inc_prod"]
    );
}

#[test]
fn installs_beat_uninstalls_across_the_tree() {
    // Case t2: `Firefox-120.0` install plus `Firefox` uninstall gives the install.
    let mut source = golden();
    let mut primary = manifest(&["testing"], &["group"], &["Firefox-120.0"]);
    primary
        .section_mut(Section::ManagedUninstalls)
        .push("Config".into());
    source.insert_manifest("primary", primary);
    let mut group = manifest(&[], &[], &[]);
    group
        .section_mut(Section::ManagedUninstalls)
        .push("Firefox".into());
    source.insert_manifest("group", group);
    let resolved = run(&source, "primary");
    assert_eq!(
        names(&resolved.managed_installs),
        [("Firefox".into(), "120.0".into())]
    );
    assert!(resolved.removals.iter().all(|d| d.name != "Firefox"));
    assert!(
        resolved
            .warnings
            .iter()
            .any(|w| matches!(w, Warning::RemovalRefused { item, .. } if item == "Firefox"))
    );
}

#[test]
fn uninstalls_beat_later_sections() {
    // A conditional managed_uninstalls of Config removes Config from optional_installs.
    let mut source = golden();
    let mut primary = manifest(&["production"], &[], &[]);
    primary
        .section_mut(Section::OptionalInstalls)
        .extend(["Config".to_owned(), "Firefox".to_owned()]);
    let mut body = Manifest::new();
    body.section_mut(Section::ManagedUninstalls)
        .push("Config".into());
    primary
        .conditional_items
        .push(conditional("TRUEPREDICATE", body));
    source.insert_manifest("primary", primary);
    let resolved = run(&source, "primary");
    assert_eq!(names(&resolved.removals), [("Config".into(), "1.0".into())]);
    assert_eq!(
        names(&resolved.optional_installs),
        [("Firefox".into(), "120.0".into())]
    );
}

#[test]
fn a_top_manifest_without_catalogs_yields_nothing() {
    // Case t4, even though the included manifest has catalogs.
    let mut source = golden();
    source.insert_manifest("primary", manifest(&[], &["inc_prod"], &["Firefox"]));
    source.insert_manifest("inc_prod", manifest(&["production"], &[], &["Config"]));
    let resolved = run(&source, "primary");
    assert!(resolved.managed_installs.is_empty());
    assert_eq!(
        resolved.manifests,
        ["primary"],
        "includes are not even fetched"
    );
    assert!(
        matches!(&resolved.warnings[..], [Warning::NoCatalogs { chain }] if chain == &["primary"])
    );
}

#[test]
fn a_missing_included_manifest_is_an_error_naming_the_chain() {
    // Case t3: Munki aborts the whole check; we return nothing partial.
    let mut source = golden();
    source.insert_manifest(
        "primary",
        manifest(&["testing"], &["groups/lab"], &["Firefox"]),
    );
    source.insert_manifest("groups/lab", manifest(&[], &["groups/gone"], &[]));
    let err = resolve(&source, "primary", &Facts::new()).unwrap_err();
    match &err {
        Error::MissingIncludedManifest { missing, chain } => {
            assert_eq!(missing, "groups/gone");
            assert_eq!(chain, &["primary", "groups/lab"]);
        }
        other => panic!("unexpected {other}"),
    }
    assert!(
        err.to_string().contains("`primary` -> `groups/lab`"),
        "{err}"
    );
}

#[test]
fn include_cycles_are_an_error_not_a_crash() {
    // cyA <-> cyB (munki/munki#474), and a manifest including itself.
    let mut source = golden();
    source.insert_manifest("cyA", manifest(&["testing"], &["cyB"], &[]));
    source.insert_manifest("cyB", manifest(&[], &["cyA"], &[]));
    source.insert_manifest("self", manifest(&["testing"], &["self"], &[]));
    match resolve(&source, "cyA", &Facts::new()).unwrap_err() {
        Error::IncludeCycle { cycle } => assert_eq!(cycle, ["cyA", "cyB", "cyA"]),
        other => panic!("unexpected {other}"),
    }
    assert!(matches!(
        resolve(&source, "self", &Facts::new()),
        Err(Error::IncludeCycle { .. })
    ));
}

#[test]
fn re_included_manifests_are_processed_again_and_items_deduplicated() {
    // A diamond is not a cycle.
    let mut source = golden();
    source.insert_manifest("primary", manifest(&["testing"], &["a", "b"], &[]));
    source.insert_manifest("a", manifest(&[], &["common"], &[]));
    source.insert_manifest("b", manifest(&["production"], &["common"], &[]));
    source.insert_manifest("common", manifest(&[], &[], &["Firefox"]));
    let resolved = run(&source, "primary");
    // First visit (through `a`, inheriting testing) wins: 121.0.
    assert_eq!(
        names(&resolved.managed_installs),
        [("Firefox".into(), "121.0".into())]
    );
    assert_eq!(resolved.manifests, ["primary", "a", "common", "b"]);
}

#[test]
fn includes_first_then_conditional_items_then_own_items() {
    let mut source = golden();
    let mut primary = manifest(&["production"], &["inc"], &["Firefox"]);
    primary.conditional_items.push(conditional(
        "TRUEPREDICATE",
        manifest(&[], &[], &["Config"]),
    ));
    source.insert_manifest("primary", primary);
    source.insert_manifest("inc", manifest(&["testing"], &[], &[]));
    let mut inc = manifest(&[], &[], &[]);
    inc.section_mut(Section::OptionalInstalls)
        .push("Config".into());
    source.insert_manifest("inc", inc);
    // Order check with distinct names: put Firefox in the conditional, Config own.
    let mut ordered = manifest(&["production"], &["inc2"], &["Config"]);
    ordered.conditional_items.push(conditional(
        "TRUEPREDICATE",
        manifest(&[], &[], &["Firefox"]),
    ));
    source.insert_manifest("ordered", ordered);
    let mut inc2 = Manifest::new();
    inc2.section_mut(Section::ManagedInstalls)
        .push("Firefox-120.0".into());
    source.insert_manifest("inc2", inc2);
    let resolved = run(&source, "ordered");
    let order: Vec<_> = resolved
        .managed_installs
        .iter()
        .map(|d| d.requested.as_str())
        .collect();
    assert_eq!(order, ["Firefox-120.0", "Config"]);
    assert_eq!(
        resolved
            .source(resolved.managed_installs[0].source)
            .unwrap()
            .manifest,
        "inc2"
    );
    let resolved = run(&source, "primary");
    assert_eq!(
        resolved
            .source(resolved.managed_installs[0].source)
            .unwrap()
            .conditions,
        ["TRUEPREDICATE"]
    );
}

#[test]
fn catalogs_are_inherited_when_empty_and_overridden_when_set() {
    let mut source = golden();
    source.insert_manifest(
        "primary",
        manifest(&["testing"], &["inherits", "overrides"], &[]),
    );
    source.insert_manifest("inherits", manifest(&[], &[], &["Firefox"]));
    source.insert_manifest("overrides", manifest(&["production"], &[], &["Config"]));
    let resolved = run(&source, "primary");
    assert_eq!(
        names(&resolved.managed_installs),
        [
            ("Firefox".into(), "121.0".into()),
            ("Config".into(), "1.0".into())
        ]
    );
    // A conditional item may set its own catalogs too (an embedded manifest).
    let mut cond = manifest(&["testing"], &[], &[]);
    cond.conditional_items.push(conditional(
        "TRUEPREDICATE",
        manifest(&["production"], &[], &["Firefox"]),
    ));
    source.insert_manifest("cond", cond);
    assert_eq!(run(&source, "cond").managed_installs[0].version, "120.0");
}

#[test]
fn the_first_catalog_with_the_item_wins_over_a_higher_version_later() {
    let mut source = golden();
    source.insert_manifest(
        "primary",
        manifest(&["production", "testing"], &[], &["Firefox"]),
    );
    let resolved = run(&source, "primary");
    assert_eq!(
        names(&resolved.managed_installs),
        [("Firefox".into(), "120.0".into())]
    );
}

#[test]
fn within_a_catalog_the_highest_loose_version_wins() {
    let mut source = MemorySource::new();
    source.insert_catalog(
        "c",
        CatalogIndex::new(Catalog {
            items: vec![
                pkg("App", "10.9", &[]),
                pkg("App", "10.10", &[]),
                pkg("App", "2.0", &[]),
            ],
        }),
    );
    source.insert_manifest("primary", manifest(&["c"], &[], &["App"]));
    assert_eq!(run(&source, "primary").managed_installs[0].version, "10.10");
}

#[test]
fn name_version_pins_select_the_trimmed_version() {
    let mut source = MemorySource::new();
    source.insert_catalog(
        "c",
        CatalogIndex::new(Catalog {
            items: vec![
                pkg("App", "1.0.0", &[]),
                pkg("App", "2.0", &[]),
                pkg("Tool", "3.1", &[]),
            ],
        }),
    );
    source.insert_manifest("a", manifest(&["c"], &[], &["App-1.0.0.0", "Tool--3.1"]));
    let resolved = run(&source, "a");
    assert_eq!(
        names(&resolved.managed_installs),
        [
            ("App".into(), "1.0.0".into()),
            ("Tool".into(), "3.1".into())
        ]
    );
    source.insert_manifest("b", manifest(&["c"], &[], &["App-9.9"]));
    let resolved = run(&source, "b");
    assert!(resolved.managed_installs.is_empty());
    assert!(
        matches!(&resolved.warnings[..], [Warning::NotFound { item, .. }] if item == "App-9.9")
    );
}

#[test]
fn applicability_falls_back_to_a_lower_version() {
    let mut source = MemorySource::new();
    source.insert_catalog(
        "c",
        CatalogIndex::new(Catalog {
            items: vec![
                pkg("OS", "1.0", &[]),
                pkg(
                    "OS",
                    "2.0",
                    &[("minimum_os_version", Value::String("15.0".into()))],
                ),
                pkg("Old", "1.0", &[]),
                pkg(
                    "Old",
                    "2.0",
                    &[("maximum_os_version", Value::String("13.9".into()))],
                ),
                pkg("Arch", "1.0", &[]),
                pkg(
                    "Arch",
                    "2.0",
                    &[("supported_architectures", strings(&["x86_64"]))],
                ),
                pkg("Cond", "1.0", &[]),
                pkg(
                    "Cond",
                    "2.0",
                    &[(
                        "installable_condition",
                        Value::String("machine_type == 'desktop'".into()),
                    )],
                ),
                pkg("Munki", "1.0", &[]),
                pkg(
                    "Munki",
                    "2.0",
                    &[("minimum_munki_version", Value::String("7.0".into()))],
                ),
            ],
        }),
    );
    source.insert_manifest(
        "m",
        manifest(&["c"], &[], &["OS", "Old", "Arch", "Cond", "Munki"]),
    );
    let mut facts = Facts::new();
    facts
        .set_os_vers("14.5")
        .set("arch", "arm64")
        .set("machine_type", "laptop")
        .set("munki_version", "6.7.0");
    let resolved = resolve(&source, "m", &facts).unwrap();
    assert!(
        resolved.managed_installs.iter().all(|d| d.version == "1.0"),
        "{:?}",
        names(&resolved.managed_installs)
    );
    facts
        .set_os_vers("15.1")
        .set("arch", "x86_64")
        .set("machine_type", "desktop")
        .set("munki_version", "7.1");
    let resolved = resolve(&source, "m", &facts).unwrap();
    let versions: Vec<_> = resolved
        .managed_installs
        .iter()
        .map(|d| d.version.as_str())
        .collect();
    assert_eq!(versions, ["2.0", "1.0", "2.0", "2.0", "2.0"]);
}

#[test]
fn conditions_see_the_effective_catalogs_and_bad_syntax_counts_as_false() {
    let mut source = golden();
    let mut primary = manifest(&["testing"], &[], &[]);
    primary.conditional_items.push(conditional(
        "catalogs CONTAINS 'testing'",
        manifest(&[], &[], &["Firefox"]),
    ));
    primary.conditional_items.push(conditional(
        "machine_type == ",
        manifest(&["production"], &[], &["Config"]),
    ));
    source.insert_manifest("primary", primary);
    let resolved = run(&source, "primary");
    assert_eq!(
        names(&resolved.managed_installs),
        [("Firefox".into(), "121.0".into())]
    );
    assert!(resolved.warnings.iter().any(
        |w| matches!(w, Warning::ConditionSyntax { error, .. } if error.contains("character 17"))
    ));
}

#[test]
fn requires_come_first_and_updates_follow() {
    let mut source = MemorySource::new();
    source.insert_catalog(
        "c",
        CatalogIndex::new(Catalog {
            items: vec![
                pkg("App", "1.0", &[("requires", strings(&["Runtime"]))]),
                pkg("Runtime", "3.0", &[]),
                pkg("AppPlugin", "1.0", &[("update_for", strings(&["App"]))]),
                pkg("Broken", "1.0", &[("requires", strings(&["Nowhere"]))]),
            ],
        }),
    );
    source.insert_manifest("m", manifest(&["c"], &[], &["App", "Broken"]));
    let resolved = run(&source, "m");
    let order: Vec<_> = resolved
        .managed_installs
        .iter()
        .map(|d| (d.name.as_str(), d.reason.clone()))
        .collect();
    assert_eq!(
        order,
        [
            ("Runtime", Reason::RequiredBy("App".into())),
            ("App", Reason::Listed),
            ("AppPlugin", Reason::UpdateFor("App".into())),
        ]
    );
    assert!(
        resolved
            .warnings
            .iter()
            .any(|w| matches!(w, Warning::RequirementUnavailable { item, .. } if item == "Broken"))
    );
}

#[test]
fn autoremove_items_not_installed_are_removed() {
    let mut source = MemorySource::new();
    source.insert_catalog(
        "c",
        CatalogIndex::new(Catalog {
            items: vec![
                pkg("Kept", "1.0", &[("autoremove", Value::Boolean(true))]),
                pkg("Dropped", "1.0", &[("autoremove", Value::Boolean(true))]),
            ],
        }),
    );
    source.insert_manifest("m", manifest(&["c"], &[], &["Kept"]));
    let resolved = run(&source, "m");
    assert_eq!(
        names(&resolved.removals),
        [("Dropped".into(), "1.0".into())]
    );
    assert_eq!(resolved.removals[0].reason, Reason::Autoremove);
}

#[test]
fn featured_items_must_be_optional() {
    let mut source = golden();
    let mut m = manifest(&["production"], &[], &[]);
    m.section_mut(Section::OptionalInstalls)
        .push("Firefox".into());
    m.section_mut(Section::FeaturedItems)
        .extend(["Firefox".to_owned(), "Config".to_owned()]);
    m.section_mut(Section::DefaultInstalls)
        .push("Firefox".into());
    source.insert_manifest("m", m);
    let resolved = run(&source, "m");
    assert_eq!(resolved.featured_items.len(), 2);
    assert_eq!(resolved.default_installs[0].name, "Firefox");
    assert_eq!(
        resolved.warnings,
        [Warning::FeaturedNotOptional {
            item: "Config".into()
        }]
    );
}

#[test]
fn primary_manifest_fallback_order() {
    let identity = ClientIdentity {
        hostname: Some("mac-01.lab.example.com".into()),
        serial_number: Some("C02XYZ".into()),
        ..ClientIdentity::default()
    };
    assert_eq!(
        manifest_candidates(&identity),
        ManifestCandidates::Fallback(vec![
            "mac-01.lab.example.com".into(),
            "mac-01".into(),
            "C02XYZ".into(),
            "site_default".into()
        ])
    );
    let unknown_serial = ClientIdentity {
        serial_number: Some("UNKNOWN".into()),
        ..ClientIdentity::default()
    };
    assert_eq!(
        manifest_candidates(&unknown_serial),
        ManifestCandidates::Fallback(vec!["site_default".into()])
    );
    // The certificate CN counts only when both preferences are true.
    let mut cert = ClientIdentity {
        client_certificate_cn: Some("computers/C02XYZ".into()),
        use_client_certificate: true,
        client_identifier: Some("fallback-id".into()),
        ..ClientIdentity::default()
    };
    assert_eq!(
        manifest_candidates(&cert),
        ManifestCandidates::Exact("fallback-id".into())
    );
    cert.use_client_certificate_cn_as_identifier = true;
    assert_eq!(
        manifest_candidates(&cert),
        ManifestCandidates::Exact("computers/C02XYZ".into())
    );
    cert.alternate_id = Some("alt".into());
    assert_eq!(
        manifest_candidates(&cert),
        ManifestCandidates::Exact("alt".into())
    );

    let mut source = golden();
    source.insert_manifest("C02XYZ", manifest(&["testing"], &[], &[]));
    source.insert_manifest("site_default", manifest(&["testing"], &[], &[]));
    assert_eq!(
        choose_primary_manifest(&source, &identity).unwrap(),
        "C02XYZ"
    );
    assert!(matches!(
        choose_primary_manifest(&source, &cert),
        Err(Error::MissingPrimaryManifest { .. })
    ));
}

#[test]
fn requires_cycles_terminate() {
    let mut source = MemorySource::new();
    source.insert_catalog(
        "c",
        CatalogIndex::new(Catalog {
            items: vec![
                pkg("A", "1.0", &[("requires", strings(&["B"]))]),
                pkg("B", "1.0", &[("requires", strings(&["A"]))]),
            ],
        }),
    );
    source.insert_manifest("m", manifest(&["c"], &[], &["A"]));
    let resolved = run(&source, "m");
    let order: Vec<_> = resolved
        .managed_installs
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(order, ["B", "A"]);
}
