//! The repository, makecatalogs, and the plist round trip checked by Python's `plistlib`.

use std::fs;
use std::path::Path;
use std::process::Command;

use proptest::prelude::*;
use tessera_manifest::{
    CatalogWarning, Error, MakeCatalogsOptions, Manifest, Repo, RepoKind, ResourceName,
    make_catalogs,
};

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn pkginfo(name: &str, version: &str, catalogs: &[&str], extra: &str) -> String {
    let cats = catalogs.iter().fold(String::new(), |mut out, c| {
        out.push_str("<string>");
        out.push_str(c);
        out.push_str("</string>");
        out
    });
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>name</key><string>{name}</string>
<key>version</key><string>{version}</string>
<key>catalogs</key><array>{cats}</array>
<key>notes</key><string>internal</string>
<key>_metadata</key><dict><key>created_by</key><string>admin</string></dict>
{extra}
</dict></plist>"#
    )
}

/// The spec's golden repo (§5).
fn golden_repo() -> (tempfile::TempDir, Repo) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let repo = Repo::create(root).unwrap();
    write(
        root,
        "pkgsinfo/apps/Firefox-120.0.plist",
        &pkginfo(
            "Firefox",
            "120.0",
            &["testing", "production"],
            "<key>installer_item_location</key><string>apps/Firefox-120.0.dmg</string>",
        ),
    );
    write(
        root,
        "pkgsinfo/apps/Firefox-121.0.plist",
        &pkginfo(
            "Firefox",
            "121.0",
            &["testing"],
            "<key>installer_item_location</key><string>apps/Firefox-121.0.dmg</string>",
        ),
    );
    write(
        root,
        "pkgsinfo/Config.plist",
        &pkginfo(
            "Config",
            "1.0",
            &["production"],
            "<key>installer_type</key><string>nopkg</string>",
        ),
    );
    write(
        root,
        "pkgsinfo/apps/Missing.plist",
        &pkginfo(
            "Missing",
            "1.0",
            &["production"],
            "<key>installer_item_location</key><string>apps/nothere.pkg</string>",
        ),
    );
    write(root, "pkgsinfo/.DS_Store", "junk");
    write(root, "pkgs/apps/Firefox-120.0.dmg", "dmg");
    write(root, "pkgs/apps/Firefox-121.0.dmg", "dmg");
    write(root, "icons/Firefox.png", "png");
    write(
        root,
        "catalogs/stale",
        "<plist version=\"1.0\"><array/></plist>",
    );
    (dir, repo)
}

#[test]
fn makecatalogs_builds_what_munki_builds() {
    let (_dir, repo) = golden_repo();
    let report = make_catalogs(&repo, MakeCatalogsOptions::default()).unwrap();
    assert_eq!(report.catalogs.get("all"), Some(&3));
    assert_eq!(report.catalogs.get("testing"), Some(&2));
    assert_eq!(report.catalogs.get("production"), Some(&2));
    assert_eq!(report.removed, ["stale"]);
    assert!(report.icon_hashes_written);
    assert_eq!(
        report.warnings,
        [CatalogWarning::MissingInstallerItem {
            pkginfo: "apps/Missing.plist".into(),
            location: "apps/nothere.pkg".into(),
            kept: false
        }]
    );
    assert!(
        report.warnings[0]
            .to_string()
            .contains("refers to missing installer item: apps/nothere.pkg")
    );
    let all = fs::read_to_string(repo.root().join("catalogs/all")).unwrap();
    assert!(
        !all.contains("_metadata") && !all.contains("notes"),
        "{all}"
    );
    let catalog = repo.read_catalog("production").unwrap();
    let names: Vec<_> = catalog.items.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["Config", "Firefox"]);
    let hashes = fs::read_to_string(repo.root().join("icons/_icon_hashes.plist")).unwrap();
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(b"png"));
    assert!(
        hashes.contains(&format!(
            "<key>Firefox.png</key>\n\t<string>{digest}</string>"
        )),
        "{hashes}"
    );

    let forced = make_catalogs(
        &repo,
        MakeCatalogsOptions {
            force: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(forced.catalogs.get("all"), Some(&4));
    let skipped = make_catalogs(
        &repo,
        MakeCatalogsOptions {
            skip_pkg_check: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(skipped.warnings.is_empty());
}

#[test]
fn makecatalogs_reports_bad_pkginfos_as_data() {
    let (_dir, repo) = golden_repo();
    let root = repo.root().to_owned();
    write(&root, "pkgsinfo/broken.plist", "not a plist");
    write(
        &root,
        "pkgsinfo/noname.plist",
        "<plist version=\"1.0\"><dict><key>version</key><string>1</string></dict></plist>",
    );
    write(
        &root,
        "pkgsinfo/escape.plist",
        &pkginfo(
            "Esc",
            "1",
            &["../../etc"],
            "<key>installer_type</key><string>nopkg</string>",
        ),
    );
    write(
        &root,
        "pkgsinfo/nocats.plist",
        "<plist version=\"1.0\"><dict><key>name</key><string>NoCats</string><key>installer_type</key><string>nopkg</string></dict></plist>",
    );
    write(
        &root,
        "pkgsinfo/case.plist",
        &pkginfo(
            "Case",
            "1",
            &["Testing"],
            "<key>installer_item_location</key><string>APPS/firefox-120.0.dmg</string>",
        ),
    );
    let report = make_catalogs(&repo, MakeCatalogsOptions::default()).unwrap();
    let kinds: Vec<String> = report
        .warnings
        .iter()
        .map(|w| {
            format!("{w:?}")
                .split([' ', '{'])
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    for expected in [
        "Unreadable",
        "MissingName",
        "BadCatalogName",
        "NoCatalogsArray",
        "DifferentCase",
        "CatalogNamesDifferInCase",
    ] {
        assert!(
            kinds.iter().any(|k| k == expected),
            "no {expected} in {kinds:?}"
        );
    }
    assert!(!root.join("etc").exists() && !root.parent().unwrap().join("etc").exists());
    assert_eq!(report.catalogs.get("all"), Some(&6));
}

#[test]
fn names_never_escape_the_repository() {
    let (dir, repo) = golden_repo();
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret"), "s").unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret"),
        dir.path().join("manifests/link"),
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("manifests/dirlink")).unwrap();
    let name = ResourceName::new("link").unwrap();
    assert!(matches!(
        repo.read(RepoKind::Manifests, &name),
        Err(Error::OutsideRepo { .. })
    ));
    assert!(matches!(
        repo.write(
            RepoKind::Manifests,
            &ResourceName::new("dirlink/new").unwrap(),
            b"x"
        ),
        Err(Error::OutsideRepo { .. })
    ));
    assert!(!outside.path().join("new").exists());
    assert!(repo.list(RepoKind::Manifests).unwrap().is_empty());
    assert!(matches!(
        repo.read_manifest("../pkgs/apps/Firefox-120.0.dmg"),
        Err(Error::InvalidName { .. })
    ));
    assert!(matches!(
        repo.read_manifest("/etc/passwd"),
        Err(Error::InvalidName { .. })
    ));
    // A link inside the tree is followed.
    std::os::unix::fs::symlink(
        dir.path().join("pkgsinfo"),
        dir.path().join("manifests/inside"),
    )
    .unwrap();
    assert!(!repo.list(RepoKind::Manifests).unwrap().is_empty());
}

#[test]
fn names_with_subdirectories_spaces_and_unicode_round_trip() {
    let (_dir, repo) = golden_repo();
    let mut manifest = Manifest::new();
    manifest.catalogs = vec!["production".into()];
    for name in ["groups/Lab Ünïcödé", "computers/C02 XYZ"] {
        repo.write_manifest(name, &manifest).unwrap();
        assert_eq!(repo.read_manifest(name).unwrap().catalogs, ["production"]);
    }
    let listed: Vec<String> = repo
        .list(RepoKind::Manifests)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(listed, ["computers/C02 XYZ", "groups/Lab Ünïcödé"]);
}

const RICH_MANIFEST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict>
<key>catalogs</key><array><string>production</string></array>
<key>included_manifests</key><array><string>groups/lab</string></array>
<key>managed_installs</key><array><string>Firefox</string></array>
<key>managed_uninstalls</key><array/>
<key>managed_updates</key><array><string>Word</string></array>
<key>optional_installs</key><array><string>Config</string></array>
<key>featured_items</key><array><string>Config</string></array>
<key>default_installs</key><array><string>Config</string></array>
<key>conditional_items</key><array><dict>
  <key>condition</key><string>date &gt; CAST("2016-03-02T00:00:00Z", "NSDate")</string>
  <key>managed_installs</key><array><string>VPN</string></array>
  <key>conditional_items</key><array><dict><key>condition</key><string>arch == "arm64"</string><key>x_nested</key><true/></dict></array>
</dict></array>
<key>display_name</key><string>Lab Mac</string>
<key>user</key><string>jdoe</string>
<key>_metadata</key><dict><key>created</key><date>2024-01-02T03:04:05Z</date><key>blob</key><data>AAEC</data><key>n</key><integer>-3</integer><key>r</key><real>1.5</real></dict>
</dict></plist>"#;

#[test]
fn every_key_survives_a_round_trip_and_python_plistlib_reads_what_we_write() {
    let (_dir, repo) = golden_repo();
    make_catalogs(&repo, MakeCatalogsOptions::default()).unwrap();
    let manifest = Manifest::from_plist_bytes(RICH_MANIFEST.as_bytes(), "rich").unwrap();
    repo.write_manifest("computers/rich", &manifest).unwrap();
    let again = repo.read_manifest("computers/rich").unwrap();
    assert_eq!(again.to_dictionary(), manifest.to_dictionary());
    let original = plist::Value::from_reader_xml(RICH_MANIFEST.as_bytes()).unwrap();
    let written = plist::Value::from_file(repo.root().join("manifests/computers/rich")).unwrap();
    assert_eq!(sorted(original), sorted(written), "a key or value changed");

    if !tessera_testkit::tool("python3", "checking our plists with plistlib") {
        return;
    }
    let files = [
        "manifests/computers/rich",
        "catalogs/all",
        "catalogs/testing",
        "catalogs/production",
        "icons/_icon_hashes.plist",
    ];
    let script = r"
import plistlib, sys, json
out = {}
for path in sys.argv[1:]:
    with open(path, 'rb') as f:
        value = plistlib.load(f)
    out[path] = sorted(value.keys()) if isinstance(value, dict) else len(value)
print(json.dumps(out))
";
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(files.iter().map(|f| repo.root().join(f)))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "plistlib refused our output: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    for key in [
        "_metadata",
        "conditional_items",
        "default_installs",
        "display_name",
        "featured_items",
        "managed_uninstalls",
        "user",
    ] {
        assert!(
            stdout.contains(&format!("\"{key}\"")),
            "plistlib did not see {key}: {stdout}"
        );
    }
    assert!(stdout.contains("catalogs/all\": 3"), "{stdout}");
}

#[test]
fn binary_plists_written_by_python_are_read() {
    if !tessera_testkit::tool("python3", "reading binary plists written by plistlib") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bin.plist");
    let status = Command::new("python3")
        .arg("-c")
        .arg("import plistlib,sys; plistlib.dump({'catalogs':['production'],'managed_installs':['Firefox'],'user':'x'}, open(sys.argv[1],'wb'), fmt=plistlib.FMT_BINARY)")
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = fs::read(&path).unwrap();
    assert!(bytes.starts_with(b"bplist00"));
    let manifest = Manifest::from_plist_bytes(&bytes, "bin").unwrap();
    assert_eq!(manifest.catalogs, ["production"]);
    assert!(manifest.other.contains_key("user"));
}

fn sorted(mut value: plist::Value) -> plist::Value {
    fn walk(v: &mut plist::Value) {
        match v {
            plist::Value::Dictionary(d) => {
                d.sort_keys();
                d.values_mut().for_each(walk);
            }
            plist::Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut value);
    value
}

proptest! {
    #[test]
    fn manifest_parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Manifest::from_plist_bytes(&bytes, "fuzz");
    }

    #[test]
    fn plist_shaped_input_never_panics(parts in proptest::collection::vec(
        prop_oneof![Just("<dict>"), Just("</dict>"), Just("<array>"), Just("</array>"),
            Just("<key>conditional_items</key>"), Just("<key>managed_installs</key>"),
            Just("<key>condition</key>"), Just("<string>a == 1</string>"), Just("<integer>1</integer>")],
        0..60))
    {
        let xml = format!("<plist version=\"1.0\">{}</plist>", parts.concat());
        let _ = Manifest::from_plist_bytes(xml.as_bytes(), "fuzz");
    }
}
