//! The `info` file against the OCS console's output and the fixtures of the protocol spec.

use std::time::{Duration, UNIX_EPOCH};

use proptest::prelude::*;
use tessera_package::{
    Action, DigestAlgorithm, DigestEncoding, Error, Label, Notification, OcsDigest, PackageId,
    PackageInfo, PackageSpec, PayloadSource, Priority, Protocol, Repository,
};

/// `PackageBuilder.php::writePackageInfo` output, from ocs-protocol.md §3.1 (with the
/// builder's trailing newline).
const CONSOLE_INFO: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DOWNLOAD ID=\"1716800000\" PRI=\"5\" ACT=\"EXECUTE\" DIGEST=\"9e107d9d372bb6826bd81d3542a419d6\" PROTO=\"HTTPS\" FRAGS=\"1\" DIGEST_ALGO=\"MD5\" DIGEST_ENCODE=\"Hexa\" COMMAND=\"sh bashscript.sh \" NOTIFY_USER=\"0\" NOTIFY_TEXT=\"\" NOTIFY_COUNTDOWN=\"\" NOTIFY_CAN_ABORT=\"0\" NOTIFY_CAN_DELAY=\"0\" NEED_DONE_ACTION=\"0\" NEED_DONE_ACTION_TEXT=\"\" GARDEFOU=\"rien\" />\n";

/// The legacy writer (`function_telediff.php::create_pack`): every argument attribute,
/// empty ones included, user-chosen digest, PROTO HTTP.
const LEGACY_INFO: &str = "<DOWNLOAD ID=\"1500000000\" PRI=\"3\" ACT=\"STORE\" DIGEST=\"nhB9nTcrtoJr2B01QqQZ1g==\" PROTO=\"HTTP\" FRAGS=\"4\" DIGEST_ALGO=\"MD5\" DIGEST_ENCODE=\"Base64\" PATH=\"INSTALL_PATH/files\" NAME=\"\" COMMAND=\"\" NOTIFY_USER=\"1\" NOTIFY_TEXT=\"Installing &lt;tools&gt; &amp; more\" NOTIFY_COUNTDOWN=\"30\" NOTIFY_CAN_ABORT=\"0\" NOTIFY_CAN_DELAY=\"1\" NEED_DONE_ACTION=\"0\" GARDEFOU=\"rien\" />\n";

fn console_package_info() -> PackageInfo {
    PackageInfo {
        id: PackageId::new(1_716_800_000).unwrap(),
        priority: Priority::new(5).unwrap(),
        action: Action::execute("sh bashscript.sh ").unwrap(),
        protocol: Protocol::Https,
        fragment_count: 1,
        digest: Some(
            "9e107d9d372bb6826bd81d3542a419d6"
                .parse()
                .map(OcsDigest::md5_hexa)
                .unwrap(),
        ),
        notification: Notification::default(),
        label: None,
        integrity: None,
    }
}

#[test]
fn writer_reproduces_the_console_byte_for_byte() {
    assert_eq!(console_package_info().to_xml(), CONSOLE_INFO);
}

#[test]
fn built_package_matches_the_console_layout_before_tessera_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let spec = PackageSpec {
        label: Label::new("bashscript", "1.0").unwrap(),
        priority: Priority::new(5).unwrap(),
        action: Action::execute("sh bashscript.sh ").unwrap(),
        protocol: Protocol::Https,
        notification: Notification::default(),
    };
    let payload = b"The quick brown fox jumps over the lazy dog";
    let now = UNIX_EPOCH + Duration::from_secs(1_716_800_000);
    let package = Repository::new(dir.path())
        .build(
            spec,
            PayloadSource::Reader(&mut &payload[..]),
            1 << 20,
            now,
            &mut |_| {},
        )
        .unwrap();
    let xml = package.to_info_xml();
    let tessera_start = xml
        .find(" TESSERA_NAME=")
        .expect("Tessera attributes present");
    let ocs_only = format!("{} />\n", &xml[..tessera_start]);
    assert_eq!(ocs_only, CONSOLE_INFO);
    // Every Tessera attribute comes after GARDEFOU, on the same single line.
    assert_eq!(xml.lines().count(), 2);
    assert!(xml[tessera_start..].contains(
        "TESSERA_SHA256=\"d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592\""
    ));
    // The stored info is what the package says.
    let stored = std::fs::read_to_string(dir.path().join("1716800000/info")).unwrap();
    assert_eq!(stored, xml);
}

#[test]
fn console_fixture_parses() {
    let info = PackageInfo::parse(CONSOLE_INFO.as_bytes()).unwrap();
    assert_eq!(info, console_package_info());
}

#[test]
fn legacy_fixture_parses_with_base64_digest_and_empty_arguments() {
    let info = PackageInfo::parse(LEGACY_INFO.as_bytes()).unwrap();
    assert_eq!(info.id.get(), 1_500_000_000);
    assert_eq!(
        info.action,
        Action::Store {
            path: "INSTALL_PATH/files".into()
        }
    );
    assert_eq!(info.protocol, Protocol::Http);
    assert_eq!(info.fragment_count, 4);
    let digest = info.digest.unwrap();
    assert_eq!(
        (digest.algorithm, digest.encoding),
        (DigestAlgorithm::Md5, DigestEncoding::Base64)
    );
    assert!(info.notification.notify_user && info.notification.can_delay);
    assert_eq!(info.notification.text, "Installing <tools> & more");
    assert_eq!(info.notification.countdown, Some(30));
    assert!(info.integrity.is_none() && info.label.is_none());
}

#[test]
fn sha1_variant_parses() {
    let xml = CONSOLE_INFO
        .replace("DIGEST_ALGO=\"MD5\"", "DIGEST_ALGO=\"SHA1\"")
        .replace(
            "DIGEST=\"9e107d9d372bb6826bd81d3542a419d6\"",
            "DIGEST=\"2fd4e1c67a2d28fced849ee1bb76e7391b93eb12\"",
        );
    let info = PackageInfo::parse(xml.as_bytes()).unwrap();
    assert_eq!(info.digest.unwrap().algorithm, DigestAlgorithm::Sha1);
}

#[test]
fn any_attribute_order_unknown_attributes_and_child_elements() {
    let xml = r#"<?xml version='1.0'?>
<!-- written by hand -->
<DOWNLOAD FRAGS="2" FUTURE_FIELD="x" ACT='LAUNCH' ID="42">
  <PRI>7</PRI>
  <NAME>setup.sh</NAME>
  <DIGEST_ALGO>MD5</DIGEST_ALGO><DIGEST_ENCODE>Hexa</DIGEST_ENCODE>
  <DIGEST>9E107D9D372BB6826BD81D3542A419D6</DIGEST>
  <PROTO>https</PROTO>
  <EXTRA><NESTED a="1"/></EXTRA>
</DOWNLOAD>"#;
    let info = PackageInfo::parse(xml.as_bytes()).unwrap();
    assert_eq!(info.id.get(), 42);
    assert_eq!(info.priority.get(), 7);
    assert_eq!(
        info.action,
        Action::Launch {
            name: "setup.sh".into()
        }
    );
    assert_eq!(info.protocol, Protocol::Https);
    assert_eq!(info.fragment_count, 2);
}

#[test]
fn tessera_info_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let spec = PackageSpec {
        label: Label::new("tools & <more>", "2.0-rc1").unwrap(),
        priority: Priority::new(0).unwrap(),
        action: Action::store("INSTALL_PATH/\"quoted\"").unwrap(),
        protocol: Protocol::Http,
        notification: Notification {
            notify_user: true,
            text: "Bitte warten…\tgleich".into(),
            countdown: Some(60),
            can_abort: true,
            can_delay: false,
            need_done_action: true,
            done_action_text: "Fertig".into(),
        },
    };
    let payload: Vec<u8> = (0..10_000u32).flat_map(u32::to_le_bytes).collect();
    let package = Repository::new(dir.path())
        .build(
            spec,
            PayloadSource::Reader(&mut payload.as_slice()),
            4096,
            UNIX_EPOCH + Duration::from_secs(5),
            &mut |_| {},
        )
        .unwrap();
    let parsed = PackageInfo::parse(package.to_info_xml().as_bytes()).unwrap();
    assert_eq!(parsed, package.info());
    let again = tessera_package::Package::try_from(parsed).unwrap();
    assert_eq!(again, package);
}

#[test]
fn dtds_and_entities_are_refused() {
    let dtd = "<?xml version=\"1.0\"?><!DOCTYPE DOWNLOAD [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><DOWNLOAD ID=\"1\" PRI=\"1\" ACT=\"EXECUTE\" COMMAND=\"&x;\" FRAGS=\"0\"/>";
    assert!(matches!(
        PackageInfo::parse(dtd.as_bytes()),
        Err(Error::InfoForbidden { .. })
    ));
    let entity_attr = "<DOWNLOAD ID=\"1\" PRI=\"1\" ACT=\"EXECUTE\" COMMAND=\"&x;\" FRAGS=\"0\"/>";
    assert!(matches!(
        PackageInfo::parse(entity_attr.as_bytes()),
        Err(Error::InfoForbidden { .. })
    ));
    let entity_child = "<DOWNLOAD ID=\"1\" PRI=\"1\" ACT=\"EXECUTE\" FRAGS=\"0\"><COMMAND>&x;</COMMAND></DOWNLOAD>";
    assert!(matches!(
        PackageInfo::parse(entity_child.as_bytes()),
        Err(Error::InfoForbidden { .. })
    ));
}

#[test]
fn clear_errors_for_broken_files() {
    let cases = [
        ("<REPLY/>", "expected <DOWNLOAD>"),
        ("<DOWNLOAD PRI=\"1\" ACT=\"EXECUTE\"/>", "no ID"),
        (
            "<DOWNLOAD ID=\"abc\" PRI=\"1\" ACT=\"EXECUTE\"/>",
            "digits only",
        ),
        ("<DOWNLOAD ID=\"1\" PRI=\"11\" ACT=\"EXECUTE\"/>", "0-10"),
        (
            "<DOWNLOAD ID=\"1\" PRI=\"1\" ACT=\"RUN\"/>",
            "STORE, LAUNCH or EXECUTE",
        ),
        (
            "<DOWNLOAD ID=\"1\" PRI=\"1\" ACT=\"EXECUTE\" FRAGS=\"3\"/>",
            "needs DIGEST",
        ),
        ("<DOWNLOAD ID=\"1\" PRI=\"1\" ACT=\"EXECUTE\"", "info file"),
        ("", "no DOWNLOAD element"),
    ];
    for (xml, expected) in cases {
        let err = PackageInfo::parse(xml.as_bytes()).unwrap_err().to_string();
        assert!(
            err.contains(expected),
            "{xml:?}: {err:?} lacks {expected:?}"
        );
    }
}

#[test]
fn inconsistent_tessera_data_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = PackageSpec {
        label: Label::new("x", "1").unwrap(),
        priority: Priority::default(),
        action: Action::execute("true").unwrap(),
        protocol: Protocol::Https,
        notification: Notification::default(),
    };
    let package = Repository::new(dir.path())
        .build(
            spec,
            PayloadSource::Reader(&mut &[1u8; 100][..]),
            10,
            UNIX_EPOCH + Duration::from_secs(9),
            &mut |_| {},
        )
        .unwrap();
    let xml = package.to_info_xml().replace("FRAGS=\"10\"", "FRAGS=\"9\"");
    let err = PackageInfo::parse(xml.as_bytes()).unwrap_err().to_string();
    assert!(err.contains("FRAGS"), "{err}");
}

proptest! {
    #[test]
    fn reader_never_panics_on_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = PackageInfo::parse(&data);
    }

    #[test]
    fn reader_never_panics_on_mutated_info(position in 0usize..CONSOLE_INFO.len(), byte: u8, cut in 0usize..CONSOLE_INFO.len()) {
        let mut data = CONSOLE_INFO.as_bytes().to_vec();
        data[position] = byte;
        for input in [&data[..], &data[..cut]] {
            // What parses writes back to an equivalent file (the fuzz target's property).
            if let Ok(info) = PackageInfo::parse(input) {
                prop_assert_eq!(PackageInfo::parse(info.to_xml().as_bytes()).unwrap(), info);
            }
        }
    }
}
