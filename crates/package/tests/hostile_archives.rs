//! Hostile archives, generated here with raw headers: each is refused with the entry named,
//! and nothing appears outside the target directory.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::Command;

use flate2::Compression;
use flate2::write::{DeflateEncoder, GzEncoder};
use tessera_package::extract::extract_bytes;
use tessera_package::{Error, ExtractLimits, extract_file};

/// A scratch area: `target/` is where extraction goes, `outside/` must stay empty.
struct Scene {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Scene {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        fs::create_dir(root.join("outside")).unwrap();
        Self { _dir: dir, root }
    }
    fn target(&self) -> PathBuf {
        self.root.join("target")
    }
    fn outside(&self) -> PathBuf {
        self.root.join("outside")
    }
    /// Everything under the scene except `target/` and `outside/` themselves.
    fn stray_files(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for entry in fs::read_dir(&self.root).unwrap() {
            let path = entry.unwrap().path();
            if path != self.target() && path != self.outside() {
                found.push(path);
            }
        }
        found.extend(
            fs::read_dir(self.outside())
                .unwrap()
                .map(|e| e.unwrap().path()),
        );
        found
    }
}

/// One tar entry with the name and link name written straight into the header (the tar
/// crate's setters refuse `..` and absolute paths, which is exactly what we need to write).
fn raw_entry(
    name: &[u8],
    kind: tar::EntryType,
    link: &[u8],
    data: &[u8],
    declared: Option<u64>,
) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_size(declared.unwrap_or(data.len() as u64));
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.as_old_mut().linkname[..link.len()].copy_from_slice(link);
    if matches!(kind, tar::EntryType::Char | tar::EntryType::Block) {
        header.set_device_major(1).unwrap();
        header.set_device_minor(3).unwrap();
    }
    header.set_cksum();
    let mut out = header.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn tar_gz(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    for entry in entries {
        gz.write_all(entry).unwrap();
    }
    gz.write_all(&[0u8; 1024]).unwrap();
    gz.finish().unwrap()
}

fn file(name: &str, data: &[u8]) -> Vec<u8> {
    raw_entry(name.as_bytes(), tar::EntryType::Regular, b"", data, None)
}

fn zip_with(entries: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, mode, data) in entries {
        if mode & 0o170_000 == 0o120_000 {
            zip.add_symlink(
                *name,
                std::str::from_utf8(data).unwrap(),
                zip::write::SimpleFileOptions::default(),
            )
            .unwrap();
        } else {
            let options = zip::write::SimpleFileOptions::default().unix_permissions(*mode);
            zip.start_file(*name, options).unwrap();
            zip.write_all(data).unwrap();
        }
    }
    zip.finish().unwrap().into_inner()
}

/// A zip whose only entry declares `declared` uncompressed bytes in zip64 extra fields,
/// while its deflate data (1 MiB of zeros) is about a kilobyte.
fn zip64_bomb(name: &str, declared: u64) -> Vec<u8> {
    let mut deflate = DeflateEncoder::new(Vec::new(), Compression::best());
    deflate.write_all(&vec![0u8; 1 << 20]).unwrap();
    let data = deflate.finish().unwrap();
    let mut zip64_extra = Vec::new();
    zip64_extra.extend_from_slice(&1u16.to_le_bytes());
    zip64_extra.extend_from_slice(&16u16.to_le_bytes());
    zip64_extra.extend_from_slice(&declared.to_le_bytes());
    zip64_extra.extend_from_slice(&(data.len() as u64).to_le_bytes());
    let mut out = Vec::new();
    // Local file header.
    out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    for v in [45u16, 0, 8, 0, 0x21] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&0u32.to_le_bytes()); // CRC of 10 GB of zeros: never reached
    out.extend_from_slice(&u32::MAX.to_le_bytes());
    out.extend_from_slice(&u32::MAX.to_le_bytes());
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(&(zip64_extra.len() as u16).to_le_bytes());
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&zip64_extra);
    out.extend_from_slice(&data);
    // Central directory.
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    for v in [(3u16 << 8) | 0x2d, 45, 0, 8, 0, 0x21] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&u32::MAX.to_le_bytes());
    out.extend_from_slice(&u32::MAX.to_le_bytes());
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(&(zip64_extra.len() as u16).to_le_bytes());
    for v in [0u16, 0, 0] {
        out.extend_from_slice(&v.to_le_bytes()); // comment length, disk, internal attributes
    }
    out.extend_from_slice(&(0o100_644u32 << 16).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // local header offset
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&zip64_extra);
    let cd_size = out.len() as u32 - cd_offset;
    // End of central directory.
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    for v in [0u16, 0, 1, 1] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// Extracts through a file (the agent's path) and checks the refusal names `entry`.
fn assert_refused(scene: &Scene, archive: &[u8], entry: &str, limits: ExtractLimits) -> Error {
    let path = scene.root.join("archive.bin");
    fs::write(&path, archive).unwrap();
    let err = extract_file(&path, &scene.target(), limits).expect_err("hostile archive accepted");
    fs::remove_file(&path).unwrap();
    let named = match &err {
        Error::EntryRefused { entry: e, .. } | Error::LimitExceeded { entry: e, .. } => e.clone(),
        other => panic!("unexpected error kind: {other}"),
    };
    assert_eq!(named, entry, "{err}");
    assert!(err.to_string().contains(entry));
    assert!(
        scene.stray_files().is_empty(),
        "written outside: {:?}",
        scene.stray_files()
    );
    err
}

#[test]
fn tar_dot_dot_is_refused() {
    let scene = Scene::new();
    let archive = tar_gz(&[
        file("ok.txt", b"fine"),
        file("../outside/evil.txt", b"pwned"),
    ]);
    let err = assert_refused(
        &scene,
        &archive,
        "../outside/evil.txt",
        ExtractLimits::default(),
    );
    assert!(err.to_string().contains(".."));
    assert_eq!(err.ocs_code(), Some("ERR_BUILD"));
}

#[test]
fn tar_absolute_path_is_refused() {
    let scene = Scene::new();
    let evil = format!("{}/evil.txt", scene.outside().display());
    let archive = tar_gz(&[file(&evil, b"pwned")]);
    assert_refused(&scene, &archive, &evil, ExtractLimits::default());
}

#[test]
fn zip_slip_is_refused() {
    let scene = Scene::new();
    let archive = zip_with(&[
        ("good.txt", 0o644, b"fine"),
        ("../outside/evil.txt", 0o644, b"pwned"),
    ]);
    assert_refused(
        &scene,
        &archive,
        "../outside/evil.txt",
        ExtractLimits::default(),
    );
    let absolute = format!("{}/evil.txt", scene.outside().display());
    let archive = zip_with(&[(absolute.as_str(), 0o644, b"pwned")]);
    assert_refused(&scene, &archive, &absolute, ExtractLimits::default());
}

#[test]
fn symlink_escapes_are_refused() {
    let scene = Scene::new();
    let outside = scene.outside();
    // Classic: a link to outside, then a file written through it.
    let archive = tar_gz(&[
        raw_entry(
            b"escape",
            tar::EntryType::Symlink,
            outside.to_str().unwrap().as_bytes(),
            b"",
            None,
        ),
        file("escape/evil.txt", b"pwned"),
    ]);
    assert_refused(&scene, &archive, "escape", ExtractLimits::default());
    let archive = tar_gz(&[raw_entry(
        b"sub/up",
        tar::EntryType::Symlink,
        b"../../outside",
        b"",
        None,
    )]);
    assert_refused(&scene, &archive, "sub/up", ExtractLimits::default());
    // A link that looks in-tree lexically but climbs after a name.
    let archive = tar_gz(&[raw_entry(
        b"a/sneaky",
        tar::EntryType::Symlink,
        b"x/../../..",
        b"",
        None,
    )]);
    assert_refused(&scene, &archive, "a/sneaky", ExtractLimits::default());
    // An in-tree link is fine, but nothing is written through it.
    let archive = tar_gz(&[
        raw_entry(b"real/", tar::EntryType::Directory, b"", b"", None),
        raw_entry(b"alias", tar::EntryType::Symlink, b"real", b"", None),
        file("alias/x.txt", b"through the link"),
    ]);
    assert_refused(&scene, &archive, "alias/x.txt", ExtractLimits::default());
    // Zip symlinks too.
    let archive = zip_with(&[("zlink", 0o120_777, b"../outside")]);
    assert_refused(&scene, &archive, "zlink", ExtractLimits::default());
}

#[test]
fn hardlink_escapes_are_refused() {
    let scene = Scene::new();
    fs::write(scene.root.join("secret"), "top secret").unwrap();
    let secret = scene.root.join("secret");
    let archive = tar_gz(&[raw_entry(
        b"hl",
        tar::EntryType::Link,
        b"../secret",
        b"",
        None,
    )]);
    let path = scene.root.join("a.tgz");
    fs::write(&path, &archive).unwrap();
    let err = extract_file(&path, &scene.target(), ExtractLimits::default()).unwrap_err();
    assert!(
        matches!(&err, Error::EntryRefused { entry, .. } if entry == "hl"),
        "{err}"
    );
    let archive = tar_gz(&[raw_entry(
        b"hl2",
        tar::EntryType::Link,
        secret.to_str().unwrap().as_bytes(),
        b"",
        None,
    )]);
    fs::write(&path, &archive).unwrap();
    let err = extract_file(&path, &scene.target(), ExtractLimits::default()).unwrap_err();
    assert!(
        matches!(&err, Error::EntryRefused { entry, .. } if entry == "hl2"),
        "{err}"
    );
    // Through an in-tree symlink that points out is impossible (the link is refused first);
    // a link to something not extracted before is refused too.
    let archive = tar_gz(&[
        raw_entry(b"hl3", tar::EntryType::Link, b"later.txt", b"", None),
        file("later.txt", b"x"),
    ]);
    fs::write(&path, &archive).unwrap();
    let err = extract_file(&path, &scene.target(), ExtractLimits::default()).unwrap_err();
    assert!(
        matches!(&err, Error::EntryRefused { entry, .. } if entry == "hl3"),
        "{err}"
    );
    fs::remove_file(&path).unwrap();
    fs::remove_file(&secret).unwrap();
    assert!(scene.stray_files().is_empty());
    assert!(!scene.target().join("hl").exists());
}

#[test]
fn device_nodes_and_fifos_are_refused() {
    let scene = Scene::new();
    let archive = tar_gz(&[raw_entry(
        b"dev/null2",
        tar::EntryType::Char,
        b"",
        b"",
        None,
    )]);
    let err = assert_refused(&scene, &archive, "dev/null2", ExtractLimits::default());
    assert!(err.to_string().contains("device"));
    let archive = tar_gz(&[raw_entry(b"disk", tar::EntryType::Block, b"", b"", None)]);
    assert_refused(&scene, &archive, "disk", ExtractLimits::default());
    let archive = tar_gz(&[raw_entry(b"pipe", tar::EntryType::Fifo, b"", b"", None)]);
    assert_refused(&scene, &archive, "pipe", ExtractLimits::default());
    // The zip writer only stores permission bits, so the file type is patched in raw.
    let mut archive = zip_with(&[("zdev", 0o644, b"")]);
    patch_zip_central_mode(&mut archive, 0o020_644);
    assert_refused(&scene, &archive, "zdev", ExtractLimits::default());
}

#[test]
fn ten_gigabyte_bombs_in_small_files_are_refused() {
    let scene = Scene::new();
    const TEN_GB: u64 = 10_000_000_000;
    // tar.gz: a header declaring 10 GB followed by the first MiB of zeros.
    let archive = tar_gz(&[raw_entry(
        b"bomb.bin",
        tar::EntryType::Regular,
        b"",
        &vec![0u8; 1 << 20],
        Some(TEN_GB),
    )]);
    assert!(
        archive.len() < 64 * 1024,
        "bomb file is {} bytes",
        archive.len()
    );
    let err = assert_refused(&scene, &archive, "bomb.bin", ExtractLimits::default());
    assert!(err.to_string().contains("total size"), "{err}");
    assert!(
        !scene.target().join("bomb.bin").exists(),
        "nothing of the bomb written"
    );
    // zip with zip64 sizes.
    let archive = zip64_bomb("zbomb.bin", TEN_GB);
    assert!(archive.len() < 64 * 1024);
    assert_refused(&scene, &archive, "zbomb.bin", ExtractLimits::default());
    assert!(!scene.target().join("zbomb.bin").exists());
}

#[test]
fn caps_are_configurable_and_count_real_bytes() {
    let scene = Scene::new();
    let limits = ExtractLimits {
        max_total_bytes: 1000,
        max_entries: 3,
    };
    // Each file fits, together they do not.
    let archive = tar_gz(&[file("a", &[1; 600]), file("b", &[2; 600])]);
    assert_refused(&scene, &archive, "b", limits);
    assert!(!scene.target().join("b").exists());
    let archive = tar_gz(&[
        file("1", b""),
        file("2", b""),
        file("3", b""),
        file("4", b""),
    ]);
    let err = assert_refused(&scene, &archive, "4", limits);
    assert!(err.to_string().contains("entry count"));
    // A zip entry whose declared size is within the cap but whose data is larger is cut off
    // by the real byte count (here: declared sizes patched down to 10 bytes).
    let mut archive = zip_with(&[("liar", 0o644, &[7u8; 5000])]);
    patch_zip_uncompressed_size(&mut archive, 10);
    let path = scene.root.join("liar.zip");
    fs::write(&path, &archive).unwrap();
    let err = extract_file(
        &path,
        &scene.target(),
        ExtractLimits {
            max_total_bytes: 1000,
            max_entries: 10,
        },
    )
    .unwrap_err();
    fs::remove_file(&path).unwrap();
    assert!(
        matches!(&err, Error::LimitExceeded { entry, what: "total size", .. } if entry == "liar"),
        "{err}"
    );
    assert!(
        !scene.target().join("liar").exists(),
        "the partial file is removed"
    );
}

/// Rewrites the Unix mode (external attributes, high half) of every central header, and
/// marks the entry as made on Unix so that the mode is honoured.
fn patch_zip_central_mode(zip: &mut [u8], mode: u32) {
    let mut i = 0;
    while i + 4 <= zip.len() {
        if u32::from_le_bytes([zip[i], zip[i + 1], zip[i + 2], zip[i + 3]]) == 0x0201_4b50 {
            zip[i + 5] = 3;
            zip[i + 38..i + 42].copy_from_slice(&(mode << 16).to_le_bytes());
        }
        i += 1;
    }
}

/// Rewrites the uncompressed size in every local and central header.
fn patch_zip_uncompressed_size(zip: &mut [u8], size: u32) {
    let mut i = 0;
    while i + 4 <= zip.len() {
        let sig = u32::from_le_bytes([zip[i], zip[i + 1], zip[i + 2], zip[i + 3]]);
        if sig == 0x0403_4b50 {
            zip[i + 22..i + 26].copy_from_slice(&size.to_le_bytes());
        } else if sig == 0x0201_4b50 {
            zip[i + 24..i + 28].copy_from_slice(&size.to_le_bytes());
        }
        i += 1;
    }
}

#[test]
fn benign_archives_extract_with_sensible_permissions() {
    let scene = Scene::new();
    let mut setuid = tar::Header::new_gnu();
    setuid.set_path("bin/tool").unwrap();
    setuid.set_size(4);
    setuid.set_mode(0o4777);
    setuid.set_entry_type(tar::EntryType::Regular);
    setuid.set_cksum();
    let mut tool = setuid.as_bytes().to_vec();
    tool.extend_from_slice(b"tool");
    tool.resize(1024, 0);
    let archive = tar_gz(&[
        raw_entry(b"./", tar::EntryType::Directory, b"", b"", None),
        tool,
        file("share/doc/readme", b"read me"),
        raw_entry(
            b"share/link",
            tar::EntryType::Symlink,
            b"doc/readme",
            b"",
            None,
        ),
        raw_entry(
            b"bin/up",
            tar::EntryType::Symlink,
            b"../share/doc",
            b"",
            None,
        ),
        raw_entry(
            b"share/hard",
            tar::EntryType::Link,
            b"share/doc/readme",
            b"",
            None,
        ),
    ]);
    let report = extract_bytes(&archive, &scene.target(), ExtractLimits::default()).unwrap();
    assert_eq!((report.files, report.symlinks), (3, 2));
    let t = scene.target();
    assert_eq!(
        fs::metadata(t.join("bin/tool"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o755 & !umask()
    );
    assert_eq!(
        fs::metadata(t.join("share/doc/readme"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o644 & !umask()
    );
    assert_eq!(fs::read_to_string(t.join("share/link")).unwrap(), "read me");
    assert_eq!(fs::read_to_string(t.join("share/hard")).unwrap(), "read me");
    assert!(scene.stray_files().is_empty());
}

fn umask() -> u32 {
    let probe = tempfile::tempdir().unwrap();
    let f = probe.path().join("p");
    fs::write(&f, b"").unwrap();
    0o666 & !(fs::metadata(&f).unwrap().permissions().mode() & 0o777)
}

/// Archives made by the real tools the OCS console and admins use.
#[test]
fn archives_from_system_tar_and_python_zipfile_extract() {
    let scene = Scene::new();
    let src = scene.root.join("src");
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("d/f.txt"), "payload").unwrap();
    let tgz = scene.root.join("p.tar.gz");
    let zip = scene.root.join("p.zip");
    let tar_ok = Command::new("tar")
        .arg("-czf")
        .arg(&tgz)
        .arg("-C")
        .arg(&src)
        .arg(".")
        .status()
        .is_ok_and(|s| s.success());
    let py = "import zipfile,sys\nwith zipfile.ZipFile(sys.argv[1],'w',zipfile.ZIP_DEFLATED) as z: z.writestr('d/f.txt','payload'); z.writestr('d/sub/','')";
    let zip_ok = Command::new("python3")
        .arg("-c")
        .arg(py)
        .arg(&zip)
        .status()
        .is_ok_and(|s| s.success());
    if !tar_ok || !zip_ok {
        // Reports (and in CI fails) whichever tool is missing.
        tessera_testkit::tools(&["tar", "python3"], "archives made by the system's tools");
        eprintln!("SKIPPED: system tar or python3 missing");
        return;
    }
    for (archive, out) in [(&tgz, "from_tar"), (&zip, "from_zip")] {
        let target = scene.root.join(out);
        extract_file(archive, &target, ExtractLimits::default()).unwrap();
        assert_eq!(
            fs::read_to_string(target.join("d/f.txt")).unwrap(),
            "payload"
        );
    }
    assert!(scene.root.join("from_zip/d/sub").is_dir());
}

#[test]
fn garbage_is_an_archive_error_not_a_panic() {
    let scene = Scene::new();
    for data in [
        &b"not an archive"[..],
        &[0x1f, 0x8b, 8, 0, 1, 2, 3][..],
        b"PK\x03\x04garbage",
    ] {
        let err = extract_bytes(data, &scene.target(), ExtractLimits::default()).unwrap_err();
        assert!(matches!(err, Error::Archive { .. }), "{err}");
    }
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// The fuzz entry point over random bytes and over mutated valid archives.
        #[test]
        fn extraction_of_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..2048), flip in any::<(usize, u8)>(), zip: bool) {
            let scene = Scene::new();
            let limits = ExtractLimits { max_total_bytes: 1 << 20, max_entries: 64 };
            let _ = extract_bytes(&data, &scene.target(), limits);
            let mut valid = if zip {
                zip_with(&[("a/b.txt", 0o644, b"hello"), ("l", 0o120_777, b"a")])
            } else {
                tar_gz(&[file("a/b.txt", b"hello"), raw_entry(b"l", tar::EntryType::Symlink, b"a", b"", None)])
            };
            let at = flip.0 % valid.len();
            valid[at] ^= flip.1;
            let _ = extract_bytes(&valid, &scene.root.join("second"), limits);
            prop_assert!(scene.stray_files().iter().all(|p| p.ends_with("second")));
        }
    }
}
