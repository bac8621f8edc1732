//! Build → serve fragments as byte ranges → reassemble on the agent, checked against the
//! coreutils digests.

use std::fs;
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use proptest::prelude::*;
use tessera_package::{
    Action, Assembler, Error, Label, Notification, PackageSpec, PayloadSource, Priority, Protocol,
    Repository, verify_fragment,
};

fn spec() -> PackageSpec {
    PackageSpec {
        label: Label::new("payload", "1").unwrap(),
        priority: Priority::new(1).unwrap(),
        action: Action::execute("true").unwrap(),
        protocol: Protocol::Https,
        notification: Notification::default(),
    }
}

fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Builds, then plays the agent: fragments cut from the stored archive by their plan.
fn round_trip(data: &[u8], fragment_size: u64) -> Result<Vec<u8>, Error> {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::new(dir.path());
    let package = repo.build(
        spec(),
        PayloadSource::Reader(&mut &data[..]),
        fragment_size,
        UNIX_EPOCH + Duration::from_secs(1000),
        &mut |_| {},
    )?;
    let stored = repo.load(package.id())?;
    let archive = fs::read(stored.archive_path()).unwrap();
    let mut assembler = Assembler::new(&stored.info, Vec::new());
    for n in 1..=stored.info.fragment_count {
        let f = stored.fragment(n).unwrap();
        let bytes = &archive[f.offset as usize..(f.offset + f.length) as usize];
        verify_fragment(&stored.info, n, bytes)?;
        assembler.append(n, bytes)?;
    }
    assembler.finish()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn reassembled_fragments_equal_the_original(len in prop_oneof![Just(0usize), Just(1usize), 0usize..300_000], fragment_size in prop_oneof![Just(1u64 << 40), 1u64..70_000], seed: u64) {
        let data = payload(len, seed);
        prop_assert_eq!(round_trip(&data, fragment_size).unwrap(), data);
    }
}

#[test]
fn zero_byte_and_single_fragment_packages() {
    assert_eq!(round_trip(&[], 1024).unwrap(), Vec::<u8>::new());
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::new(dir.path());
    let empty = repo
        .build(
            spec(),
            PayloadSource::Reader(&mut &[][..]),
            1024,
            UNIX_EPOCH + Duration::from_secs(7),
            &mut |_| {},
        )
        .unwrap();
    assert!(empty.to_info_xml().contains("FRAGS=\"0\""));
    let one = payload(1000, 3);
    assert_eq!(round_trip(&one, 1000).unwrap(), one);
    let built = repo
        .build(
            spec(),
            PayloadSource::Reader(&mut one.as_slice()),
            1000,
            UNIX_EPOCH + Duration::from_secs(8),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(built.integrity().plan().count(), 1);
}

#[test]
fn a_corrupted_fragment_is_named_and_not_appended() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::new(dir.path());
    let data = payload(10_000, 9);
    let package = repo
        .build(
            spec(),
            PayloadSource::Reader(&mut data.as_slice()),
            3000,
            UNIX_EPOCH + Duration::from_secs(1),
            &mut |_| {},
        )
        .unwrap();
    let info = package.info();
    let mut assembler = Assembler::new(&info, Vec::new());
    assembler.append(1, &data[..3000]).unwrap();
    let mut bad = data[3000..6000].to_vec();
    bad[17] ^= 1;
    let err = assembler.append(2, &bad).unwrap_err();
    assert!(
        matches!(&err, Error::FragmentDigestMismatch { fragment, .. } if fragment.get() == 2),
        "{err}"
    );
    assert_eq!(err.ocs_code(), Some("ERR_BAD_DIGEST"));
    assert!(err.to_string().contains("fragment 2"));
    // The good fragment 2 is still expected next; out-of-order ones are refused.
    assert!(matches!(
        assembler.append(3, &data[6000..9000]),
        Err(Error::FragmentOrder {
            expected: 2,
            got: 3,
            ..
        })
    ));
    assembler.append(2, &data[3000..6000]).unwrap();
    assembler.append(3, &data[6000..9000]).unwrap();
    assert!(matches!(
        assembler.append(4, &data[9000..9999]),
        Err(Error::FragmentLength { .. })
    ));
    let incomplete = Assembler::new(&info, Vec::new()).finish().unwrap_err();
    assert!(matches!(
        incomplete,
        Error::Incomplete {
            received: 0,
            count: 4
        }
    ));
}

#[test]
fn whole_digest_mismatch_is_err_bad_digest() {
    // An OCS console package: no per-fragment data, only the whole MD5.
    let xml = "<DOWNLOAD ID=\"5\" PRI=\"1\" ACT=\"EXECUTE\" COMMAND=\"true\" DIGEST=\"9e107d9d372bb6826bd81d3542a419d6\" PROTO=\"HTTP\" FRAGS=\"2\" DIGEST_ALGO=\"MD5\" DIGEST_ENCODE=\"Hexa\"/>";
    let info = tessera_package::PackageInfo::parse(xml.as_bytes()).unwrap();
    let mut good = Assembler::new(&info, Vec::new());
    good.append(1, b"The quick brown fox ").unwrap();
    good.append(2, b"jumps over the lazy dog").unwrap();
    good.finish().unwrap();
    let mut bad = Assembler::new(&info, Vec::new());
    bad.append(1, b"The quick brown fox ").unwrap();
    bad.append(2, b"jumps over the lazy cat").unwrap();
    let err = bad.finish().unwrap_err();
    assert_eq!(err.ocs_code(), Some("ERR_BAD_DIGEST"));
    assert!(err.to_string().contains("MD5"), "{err}");
}

fn coreutils_digest(tool: &str, path: &std::path::Path) -> Option<String> {
    let out = Command::new(tool).arg(path).output().ok()?;
    Some(
        String::from_utf8(out.stdout)
            .ok()?
            .split_whitespace()
            .next()?
            .to_owned(),
    )
}

#[test]
fn digests_agree_with_md5sum_and_sha256sum() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("payload.bin");
    let data = payload(3 * 1024 * 1024 + 17, 42);
    fs::write(&input, &data).unwrap();
    let repo = Repository::new(dir.path().join("repo"));
    let package = repo
        .build(
            spec(),
            PayloadSource::File(&input),
            1 << 20,
            UNIX_EPOCH + Duration::from_secs(2),
            &mut |_| {},
        )
        .unwrap();
    let (Some(md5), Some(sha)) = (
        coreutils_digest("md5sum", &input),
        coreutils_digest("sha256sum", &input),
    ) else {
        tessera_testkit::tools(&["md5sum", "sha256sum"], "digests checked by coreutils");
        eprintln!("SKIPPED: md5sum/sha256sum not installed");
        return;
    };
    assert_eq!(package.md5().to_hex(), md5);
    assert_eq!(package.integrity().sha256().to_hex(), sha);
    // The OCS agent's view: fragments as `split` would cut them, concatenated, have the MD5.
    let stored = repo.load(package.id()).unwrap();
    assert_eq!(fs::read(stored.archive_path()).unwrap(), data);
    // The archive was preallocated from the payload's size: no blocks reserved past it.
    {
        use std::os::unix::fs::MetadataExt as _;
        let meta = fs::metadata(stored.archive_path()).unwrap();
        assert!(
            meta.blocks() * 512 < data.len() as u64 + (64 << 10),
            "{} bytes allocated for {}",
            meta.blocks() * 512,
            data.len()
        );
    }
    for (fragment, digest) in package.integrity().fragments() {
        let piece = dir.path().join(format!("piece-{}", fragment.number));
        fs::write(
            &piece,
            &data[fragment.offset as usize..(fragment.offset + fragment.length) as usize],
        )
        .unwrap();
        assert_eq!(
            coreutils_digest("sha256sum", &piece).unwrap(),
            digest.to_hex()
        );
    }
}

#[test]
fn ids_follow_the_clock_and_never_collide() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::new(dir.path());
    let now = UNIX_EPOCH + Duration::from_secs(1_716_800_000);
    let a = repo
        .build(
            spec(),
            PayloadSource::Reader(&mut &b"a"[..]),
            10,
            now,
            &mut |_| {},
        )
        .unwrap();
    let b = repo
        .build(
            spec(),
            PayloadSource::Reader(&mut &b"b"[..]),
            10,
            now,
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(a.id().get(), 1_716_800_000);
    assert_eq!(b.id().get(), 1_716_800_001);
    assert_eq!(repo.list().unwrap(), vec![a.id(), b.id()]);
    // Nothing but the two package directories: no staging leftovers.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    let loaded = repo.load(b.id()).unwrap();
    assert_eq!(loaded.info.id, b.id());
    assert_eq!(loaded.archive_size, 1);
    let missing = repo
        .load(tessera_package::PackageId::new(3).unwrap())
        .unwrap_err();
    assert!(missing.to_string().contains("not found"), "{missing}");
}

#[test]
fn a_directory_becomes_a_deterministic_tar_gz_that_extracts_back() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    fs::create_dir_all(tree.join("bin")).unwrap();
    fs::write(tree.join("bin/install.sh"), "#!/bin/sh\necho hi\n").unwrap();
    fs::write(tree.join("README"), "hello").unwrap();
    let repo = Repository::new(dir.path().join("repo"));
    let mut calls = 0;
    let a = repo
        .build(
            spec(),
            PayloadSource::Directory(&tree),
            1 << 20,
            UNIX_EPOCH + Duration::from_secs(10),
            &mut |_| calls += 1,
        )
        .unwrap();
    let b = repo
        .build(
            spec(),
            PayloadSource::Directory(&tree),
            1 << 20,
            UNIX_EPOCH + Duration::from_secs(10),
            &mut |_| {},
        )
        .unwrap();
    assert!(calls > 0, "progress reported");
    assert_eq!(a.md5(), b.md5(), "same tree, same archive");
    let out = dir.path().join("out");
    let archive = repo.load(a.id()).unwrap().archive_path();
    let report =
        tessera_package::extract_file(&archive, &out, tessera_package::ExtractLimits::default())
            .unwrap();
    assert_eq!(report.files, 2);
    assert_eq!(
        fs::read_to_string(out.join("bin/install.sh")).unwrap(),
        "#!/bin/sh\necho hi\n"
    );
    // The system tar (what the OCS agent runs) reads it too.
    if let Ok(listing) = Command::new("tar").arg("-tzf").arg(&archive).output() {
        let listing = String::from_utf8_lossy(&listing.stdout);
        assert!(listing.contains("bin/install.sh"), "{listing}");
    }
}

#[test]
fn payload_file_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::new(dir.path().join("repo"));
    let missing = dir.path().join("nope.tar.gz");
    let err = repo
        .build(
            spec(),
            PayloadSource::File(&missing),
            1024,
            UNIX_EPOCH,
            &mut |_| {},
        )
        .unwrap_err();
    assert!(err.to_string().contains("nope.tar.gz"), "{err}");
    let err = repo
        .build(
            spec(),
            PayloadSource::File(&missing),
            0,
            UNIX_EPOCH,
            &mut |_| {},
        )
        .unwrap_err();
    assert!(err.to_string().contains("fragment size"), "{err}");
    // A failed build leaves no staging directory behind.
    assert_eq!(
        fs::read_dir(dir.path().join("repo")).map_or(0, Iterator::count),
        0
    );
}
