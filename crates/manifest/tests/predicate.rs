//! Every predicate construct of the spec (munki.md §2.4), each with a true and a false case,
//! plus "never panics" over random input.

use std::collections::BTreeMap;

use proptest::prelude::*;
use tessera_manifest::predicate::{Bindings, evaluate_text};
use tessera_manifest::{FactValue, Facts, Predicate, Timestamp};

fn app(bundleid: &str, version: &str) -> FactValue {
    FactValue::Dict(BTreeMap::from([
        ("bundleid".to_owned(), FactValue::from(bundleid)),
        (
            "name".to_owned(),
            FactValue::from(bundleid.rsplit('.').next().unwrap_or("")),
        ),
        ("version".to_owned(), FactValue::from(version)),
    ]))
}

fn facts() -> Facts {
    let mut facts = Facts::new();
    facts
        .set_os_vers("14.5")
        .set("hostname", "Lab-Mac-01.example.com")
        .set("machine_type", "laptop")
        .set("machine_model", "MacBookPro18,1")
        .set("arch", "arm64")
        .set("serial_number", "C02XYZ")
        .set("x86_64_capable", false)
        .set(
            "ipv4_address",
            FactValue::strings(["192.168.1.1", "10.0.0.5"]),
        )
        .set(
            "applications",
            FactValue::Array(vec![
                app("com.adobe.Photoshop", "25.0"),
                app("com.microsoft.Word", "16.80"),
            ]),
        )
        .set("product_name", "Café Résumé")
        .set_date(Timestamp(1_456_880_400.0)); // 2016-03-02T01:00:00Z
    facts
}

/// (predicate, expected) pairs: a true and a false case per construct.
const CASES: &[(&str, bool)] = &[
    // Comparisons.
    ("machine_type == 'laptop'", true),
    ("machine_type == 'desktop'", false),
    ("machine_type = \"laptop\"", true),
    ("machine_type != 'desktop'", true),
    ("machine_type != 'laptop'", false),
    ("machine_type <> 'desktop'", true),
    ("os_vers_major > 10", true),
    ("os_vers_major > 14", false),
    ("os_vers_major >= 14", true),
    ("os_vers_major >= 15", false),
    ("os_vers_minor < 6", true),
    ("os_vers_minor < 5", false),
    ("os_vers_minor <= 5", true),
    ("os_vers_minor <= 4", false),
    ("os_vers_minor =< 5", true),
    ("os_vers_major => 15", false),
    // String comparison with < is lexicographic ("14.5" < "9").
    ("os_vers < '9'", true),
    ("os_vers > '9'", false),
    // AND / OR / NOT and their symbols.
    ("machine_type == 'laptop' AND os_vers_major > 10", true),
    ("machine_type == 'laptop' AND os_vers_major > 20", false),
    ("machine_type == 'desktop' OR arch == 'arm64'", true),
    ("machine_type == 'desktop' OR arch == 'x86_64'", false),
    ("NOT machine_type == 'desktop'", true),
    ("NOT machine_type == 'laptop'", false),
    ("machine_type == 'laptop' && arch == 'arm64'", true),
    ("machine_type == 'laptop' && arch == 'i386'", false),
    ("machine_type == 'x' || arch == 'arm64'", true),
    ("machine_type == 'x' || arch == 'i386'", false),
    ("!(arch == 'i386')", true),
    ("!(arch == 'arm64')", false),
    (
        "(machine_type == 'x' OR arch == 'arm64') AND os_vers_major == 14",
        true,
    ),
    (
        "machine_type == 'x' OR arch == 'arm64' AND os_vers_major == 13",
        false,
    ),
    // String operators and modifiers.
    ("hostname BEGINSWITH 'Lab-'", true),
    ("hostname BEGINSWITH 'lab-'", false),
    ("hostname BEGINSWITH[c] 'lab-'", true),
    ("hostname BEGINSWITH[c] 'mac'", false),
    ("hostname ENDSWITH '.example.com'", true),
    ("hostname ENDSWITH '.example.org'", false),
    ("hostname CONTAINS 'Mac'", true),
    ("hostname CONTAINS 'mac'", false),
    ("hostname CONTAINS[c] 'mac'", true),
    ("machine_model LIKE 'MacBookPro*'", true),
    ("machine_model LIKE 'MacBookAir*'", false),
    ("machine_model LIKE 'MacBookPro??,?'", true),
    ("machine_model LIKE[c] 'macbookpro*'", true),
    ("machine_model LIKE 'macbookpro*'", false),
    ("serial_number MATCHES 'C02[A-Z]{3}'", true),
    ("serial_number MATCHES 'C02'", false),
    ("serial_number MATCHES[c] 'c02xyz'", true),
    ("product_name ==[cd] 'cafe resume'", true),
    ("product_name ==[c] 'cafe resume'", false),
    ("product_name BEGINSWITH[d] 'Cafe'", true),
    ("product_name CONTAINS[cd] 'RESUME'", true),
    // IN {…} and NOT (x IN {…}).
    ("machine_type IN {'laptop', 'desktop'}", true),
    ("machine_type IN {'server'}", false),
    ("NOT (machine_type IN {'server', 'vm'})", true),
    ("NOT (machine_type IN {'laptop'})", false),
    ("os_vers_major IN {13, 14}", true),
    ("'Mac' IN hostname", true),
    // CONTAINS on an array is membership.
    ("ipv4_address CONTAINS '192.168.1.1'", true),
    ("ipv4_address CONTAINS '192.168.1'", false),
    // ANY / ALL / NONE over arrays and key paths.
    ("ANY ipv4_address BEGINSWITH '10.'", true),
    ("ANY ipv4_address BEGINSWITH '172.'", false),
    ("ALL ipv4_address BEGINSWITH '1'", true),
    ("ALL ipv4_address BEGINSWITH '10.'", false),
    ("NONE ipv4_address BEGINSWITH '172.'", true),
    ("NONE ipv4_address BEGINSWITH '10.'", false),
    ("SOME applications.bundleid == 'com.microsoft.Word'", true),
    ("ANY applications.bundleid BEGINSWITH 'com.adobe.'", true),
    ("ANY applications.bundleid BEGINSWITH 'org.mozilla.'", false),
    ("applications.bundleid CONTAINS 'com.adobe.Photoshop'", true),
    // SUBQUERY(…).@count.
    (
        "SUBQUERY(applications, $app, $app.bundleid == 'com.adobe.Photoshop' AND $app.version == '25.0').@count > 0",
        true,
    ),
    (
        "SUBQUERY(applications, $app, $app.bundleid == 'com.adobe.Photoshop' AND $app.version == '24.0').@count > 0",
        false,
    ),
    ("applications.@count == 2", true),
    ("applications.@count == 3", false),
    // CAST(…, "NSDate"): the spec's literal, and the NSDate reference-date form.
    ("date > CAST(\"2016-03-02T00:00:00Z\", \"NSDate\")", true),
    ("date < CAST(\"2016-03-02T00:00:00Z\", \"NSDate\")", false),
    ("date > CAST(478569600, 'NSDate')", true),
    (
        "date BETWEEN {CAST('2016-01-01T00:00:00Z', 'NSDate'), CAST('2016-12-31T00:00:00Z', 'NSDate')}",
        true,
    ),
    (
        "date BETWEEN {CAST('2017-01-01T00:00:00Z', 'NSDate'), CAST('2017-12-31T00:00:00Z', 'NSDate')}",
        false,
    ),
    // TRUE / FALSE, numbers, quoted strings.
    ("x86_64_capable == FALSE", true),
    ("x86_64_capable == TRUE", false),
    ("x86_64_capable == NO", true),
    ("x86_64_capable == 0", true),
    ("TRUEPREDICATE", true),
    ("FALSEPREDICATE", false),
    ("os_vers_patch == 0", true),
    ("os_vers_major == 14.0", true),
    ("os_vers_major == -14", false),
    ("hostname == \"Lab-Mac-01.example.com\"", true),
    ("hostname == 'Lab-Mac-01.example.com '", false),
    ("'it\\'s' == \"it's\"", true),
    // Unknown keys evaluate false, whatever the operator.
    ("no_such_fact == 'x'", false),
    ("no_such_fact != 'x'", false),
    ("NOT (no_such_fact == 'x')", true),
    ("no_such_fact == nil", true),
    ("hostname == nil", false),
    ("hostname != nil", true),
    // Keywords are case-insensitive.
    ("machine_type == 'laptop' and arch beginswith 'arm'", true),
    ("any ipv4_address like '10.*'", true),
];

#[test]
fn every_construct_has_a_true_and_a_false_case() {
    let facts = facts();
    let mut failures = Vec::new();
    for (text, expected) in CASES {
        match evaluate_text(text, &facts) {
            Ok(got) if got == *expected => {}
            other => failures.push(format!("{text:?}: expected {expected}, got {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn catalogs_fact_comes_from_the_manifest_being_processed() {
    let facts = facts();
    let catalogs = FactValue::strings(["testing", "production"]);
    let predicate = Predicate::parse("catalogs CONTAINS 'testing'").unwrap();
    assert!(predicate.evaluate_with(&Bindings::with_catalogs(&facts, &catalogs)));
    assert!(
        !predicate.evaluate(&facts),
        "installable_condition has no catalogs"
    );
}

#[test]
fn syntax_errors_carry_positions() {
    let facts = facts();
    for (text, position) in [
        ("machine_type == 'laptop' AND", 29),
        ("machine_type 'laptop'", 14),
        ("ANY ipv4_address BEGINSWITH", 28),
        ("SUBQUERY(applications, app, TRUEPREDICATE).@count > 0", 24),
        ("(machine_type == 'laptop'", 26),
        ("hostname == 'x' )", 17),
        ("machine_type ==[q] 'x'", 16),
    ] {
        let err = evaluate_text(text, &facts).unwrap_err();
        assert_eq!(err.position, position, "{text:?}: {err}");
    }
}

proptest! {
    #[test]
    fn never_panics_on_random_text(text in "\\PC{0,200}") {
        let _ = evaluate_text(&text, &facts());
    }

    #[test]
    fn never_panics_on_predicate_shaped_text(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("("), Just(")"), Just(" AND "), Just(" OR "), Just("NOT "), Just("ANY "),
                Just("applications.bundleid"), Just(" == "), Just(" IN "), Just("{1,'a'}"),
                Just("SUBQUERY(applications, $a, $a.version > '1')"), Just(".@count"),
                Just("CAST('2020-01-01T00:00:00Z', 'NSDate')"), Just(" MATCHES[cd] "), Just("'(['"),
                Just("$a"), Just("date"), Just(" BETWEEN "), Just("nil"), Just(" LIKE "), Just("'*?'"),
            ],
            0..40,
        )
    ) {
        let _ = evaluate_text(&parts.concat(), &facts());
    }
}
