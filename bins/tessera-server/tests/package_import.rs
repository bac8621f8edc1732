//! `tessera-server package import` and `package delete` as real processes: packages laid
//! out as an OCS Inventory NG server keeps them (`download/<ID>/info` + `<ID>-1 … <ID>-N`,
//! split the console's way), checked with `md5sum`/`sha256sum` as oracles, and beside a
//! running server that records the import and forgets the deletion.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{BIN, Server, admin_token, https_request, start, stop};
use serde_json::Value;

fn cli(data: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

/// Runs a command that must succeed; its stdout as JSON.
fn json(data: &Path, args: &[&str]) -> Value {
    let output = cli(data, args);
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Runs a command that must fail; its stderr.
fn fails(data: &Path, args: &[&str]) -> String {
    let output = cli(data, args);
    assert!(
        !output.status.success(),
        "{args:?} should fail: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stderr).unwrap()
}

/// The first word `tool FILE` prints (`md5sum`, `sha256sum`).
fn digest_tool(tool: &str, file: &Path) -> String {
    let output = Command::new(tool).arg(file).output().unwrap();
    assert!(output.status.success(), "{tool} failed");
    String::from_utf8(output.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// A package as the OCS console writes it (spec §3.1 `info`, §3.2 split: N - 1 fragments
/// of `size / N` bytes, the last one the remainder) under `download/<id>/`; returns the
/// payload file it was split from.
fn console_package(download: &Path, id: u64, len: usize, count: usize, seed: u8) -> PathBuf {
    let payload: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed))
        .collect();
    let whole = download.join(format!("payload-{id}.bin"));
    std::fs::create_dir_all(download).unwrap();
    std::fs::write(&whole, &payload).unwrap();
    let md5 = digest_tool("md5sum", &whole);
    let dir = download.join(id.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("info"),
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DOWNLOAD ID=\"{id}\" PRI=\"5\" ACT=\"EXECUTE\" DIGEST=\"{md5}\" PROTO=\"HTTPS\" FRAGS=\"{count}\" DIGEST_ALGO=\"MD5\" DIGEST_ENCODE=\"Hexa\" COMMAND=\"sh bashscript.sh \" NOTIFY_USER=\"0\" NOTIFY_TEXT=\"\" NOTIFY_COUNTDOWN=\"\" NOTIFY_CAN_ABORT=\"0\" NOTIFY_CAN_DELAY=\"0\" NEED_DONE_ACTION=\"0\" NEED_DONE_ACTION_TEXT=\"\" GARDEFOU=\"rien\" />\n"
        ),
    )
    .unwrap();
    let each = len / count;
    for n in 0..count {
        let end = if n + 1 == count { len } else { (n + 1) * each };
        std::fs::write(dir.join(format!("{id}-{}", n + 1)), &payload[n * each..end]).unwrap();
    }
    whole
}

#[test]
fn import_show_reimport_and_delete() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let ocs = tmp.path().join("ocs");
    let download = ocs.join("download");
    let whole = console_package(&download, 1_716_800_000, 100_003, 3, 1);
    // The payload file beside the package directories is not a package: the scan of
    // `download/` only takes `<ID>/` directories.
    let report = json(
        &data,
        &["package", "import", download.to_str().unwrap(), "--json"],
    );
    assert_eq!(report[0]["outcome"], "imported", "{report}");
    assert_eq!(report.as_array().unwrap().len(), 1);

    let shown = json(&data, &["package", "show", "1716800000", "--json"]);
    assert_eq!(shown["fragments"], 3);
    assert_eq!(shown["payload_size"], 100_003);
    // The console's boundaries: 33 334 bytes each, the last one takes the remainder.
    assert_eq!(shown["fragment_size"], 33_334);
    assert_eq!(shown["digest_algo"], "MD5");
    assert_eq!(shown["digest"], digest_tool("md5sum", &whole));
    assert_eq!(shown["sha256"], digest_tool("sha256sum", &whole));
    assert_eq!(shown["action"], "EXECUTE");
    assert_eq!(shown["argument"], "sh bashscript.sh ");
    assert_eq!(shown["name"], Value::Null);
    let archive = data.join("repo/download/1716800000/archive");
    assert_eq!(
        std::fs::read(&archive).unwrap(),
        std::fs::read(&whole).unwrap()
    );

    // Again: the same content under the same ID is a no-op.
    let again = json(
        &data,
        &[
            "package",
            "import",
            download.join("1716800000").to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(again[0]["outcome"], "unchanged", "{again}");

    // A corrupt fragment: refused, named, nothing written.
    let bad = tmp.path().join("bad");
    console_package(&bad, 1_716_800_500, 5000, 2, 2);
    let fragment = bad.join("1716800500/1716800500-2");
    let mut bytes = std::fs::read(&fragment).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&fragment, bytes).unwrap();
    let err = fails(&data, &["package", "import", bad.to_str().unwrap()]);
    assert!(
        err.contains("package 1716800500") && err.contains("MD5") && err.contains("corrupt"),
        "{err}"
    );
    let err = fails(&data, &["package", "show", "1716800500"]);
    assert!(err.contains("not found"), "{err}");
    let leftovers: Vec<_> = std::fs::read_dir(data.join("repo/download"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["1716800000"]);

    // --name/--version for a single package only.
    let err = fails(
        &data,
        &[
            "package",
            "import",
            download.to_str().unwrap(),
            bad.to_str().unwrap(),
            "--name",
            "x",
            "--version",
            "1",
        ],
    );
    assert!(err.contains("one package"), "{err}");

    let deleted = json(&data, &["package", "delete", "1716800000", "--json"]);
    assert_eq!(deleted["directory_removed"], true);
    assert_eq!(deleted["record_removed"], false, "no database yet");
    let err = fails(&data, &["package", "show", "1716800000"]);
    assert!(
        err.contains("package 1716800000 not found"),
        "show after delete: {err}"
    );
    let err = fails(&data, &["package", "delete", "1716800000"]);
    assert!(err.contains("not found"), "{err}");
    assert_eq!(
        std::fs::read_dir(data.join("repo/download"))
            .unwrap()
            .count(),
        0,
        "no staging or removal directory left"
    );
}

fn admin_get(server: &Server, data: &Path, path: &str) -> u16 {
    let head = format!(
        "GET {path} HTTP/1.1\r\nAuthorization: Bearer {}",
        admin_token(server)
    );
    https_request(&server.https, &data.join("ca-certificate.pem"), &head, b"")
        .unwrap()
        .0
}

fn get(server: &Server, data: &Path, path: &str) -> (u16, Vec<u8>) {
    https_request(
        &server.https,
        &data.join("ca-certificate.pem"),
        &format!("GET {path} HTTP/1.1"),
        b"",
    )
    .unwrap()
}

#[test]
fn import_and_delete_beside_a_running_server() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    // The OCS compatibility path: package files for agents without a certificate.
    std::fs::write(data.join("config.toml"), "[ocs]\ncompat = true\n").unwrap();
    let server = start(&data);
    let download = tmp.path().join("download");
    console_package(&download, 1_716_900_000, 50_002, 4, 3);
    let report = json(
        &data,
        &[
            "package",
            "import",
            download.join("1716900000").to_str().unwrap(),
            "--name",
            "tools",
            "--version",
            "2.1",
            "--json",
        ],
    );
    assert_eq!(report[0]["package"]["name"], "tools", "{report}");

    // Served fragments are the console's files byte for byte (an OCS agent holding some of
    // them finishes from Tessera); one past the last does not exist.
    for n in 1..=4 {
        let (status, body) = get(
            &server,
            &data,
            &format!("/download/1716900000/1716900000-{n}"),
        );
        assert_eq!(status, 200, "fragment {n}");
        assert!(
            body == std::fs::read(download.join(format!("1716900000/1716900000-{n}"))).unwrap(),
            "fragment {n} differs from the console's file"
        );
    }
    let (status, _) = get(&server, &data, "/download/1716900000/1716900000-5");
    assert_eq!(status, 404);
    let (status, info) = get(&server, &data, "/download/1716900000/info");
    assert_eq!(status, 200);
    let info = String::from_utf8(info).unwrap();
    assert!(
        info.contains("FRAGS=\"4\"") && info.contains("TESSERA_NAME=\"tools\""),
        "{info}"
    );

    // The server's repository watcher records the new package (it looks every 10 s).
    let deadline = Instant::now() + Duration::from_secs(90);
    while admin_get(&server, &data, "/api/v1/packages/1716900000") != 200 {
        assert!(
            Instant::now() < deadline,
            "the server never recorded the imported package"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    let deleted = json(&data, &["package", "delete", "1716900000", "--json"]);
    assert_eq!(deleted["directory_removed"], true);
    assert_eq!(deleted["record_removed"], true);
    assert_eq!(
        admin_get(&server, &data, "/api/v1/packages/1716900000"),
        404
    );
    let (status, _) = get(&server, &data, "/download/1716900000/info");
    assert_eq!(
        status, 404,
        "the deleted package's files are no longer served"
    );
    let listed = json(&data, &["package", "list", "--json"]);
    assert_eq!(listed, Value::Array(vec![]));
    stop(server);
}
