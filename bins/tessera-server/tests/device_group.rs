//! `tessera-server device …` and `group …` as real processes on a data directory that a
//! real server (on loopback) initialised and is serving: the commands work beside it, and
//! the server sees what they wrote.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{BIN, Server, admin_token, csr, https_post, https_request, start, stop};
use serde_json::Value;

fn cli(data: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

/// Runs a command that must succeed; its stdout.
fn ok(data: &Path, args: &[&str]) -> String {
    let output = cli(data, args);
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Runs a command that must fail; its stderr.
fn fails(data: &Path, args: &[&str]) -> String {
    let output = cli(data, args);
    assert!(
        !output.status.success(),
        "{args:?} succeeded: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stderr).unwrap()
}

fn json(data: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&ok(data, args)).unwrap()
}

fn admin_get(server: &Server, data: &Path, path: &str) -> (u16, Value) {
    let head = format!(
        "GET {path} HTTP/1.1\r\nAuthorization: Bearer {}",
        admin_token(server)
    );
    let (status, body) =
        https_request(&server.https, &data.join("ca-certificate.pem"), &head, b"").unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

#[test]
fn device_list_show_and_revoke_beside_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start(&data);

    assert_eq!(
        json(&data, &["device", "list", "--json"]),
        Value::Array(vec![])
    );
    let token = ok(&data, &["token", "create", "--label", "t", "--uses", "1"]);
    let body = serde_json::json!({
        "token": token.trim(), "csr_pem": csr("MAC01"),
        "facts": {"serial": "C02X", "hostname": "MAC01", "os": "macOS", "os_version": "14.5"}
    });
    let (status, reply) = https_post(
        &server.https,
        &data.join("ca-certificate.pem"),
        "/enroll",
        &body.to_string(),
    );
    assert_eq!(status, 200, "{reply}");

    let listed = json(&data, &["device", "list", "--json"]);
    assert_eq!(listed[0]["computer_name"], "MAC01", "{listed}");
    let key = listed[0]["key"].as_i64().unwrap().to_string();
    let table = ok(&data, &["device", "list"]);
    assert!(table.contains("MAC01") && table.contains("C02X"), "{table}");

    let shown = json(&data, &["device", "show", &key, "--json"]);
    assert_eq!(shown["device"]["manifest"], "computers/C02X");
    assert_eq!(shown["device"]["facts"]["os_vers"], "14.5", "{shown}");
    assert_eq!(shown["deployments"], Value::Array(vec![]));
    let serial = shown["certificates"][0]["serial"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(shown["certificates"][0]["revoked"], Value::Null);
    let text = ok(&data, &["device", "show", &key]);
    for expected in [
        "MAC01",
        "computers/C02X",
        "last contact",
        &serial,
        "valid until",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    // The CLI shows what the admin API shows.
    let (status, api) = admin_get(&server, &data, &format!("/api/v1/devices/{key}"));
    assert_eq!(status, 200);
    assert_eq!(api["device"], shown["device"]);

    assert!(fails(&data, &["device", "show", "999"]).contains("no device 999"));
    assert!(fails(&data, &["device", "revoke", &key, "--reason", "stolen"]).contains("reason"));
    assert!(fails(&data, &["device", "revoke", "999"]).contains("no device 999"));

    let revoked = ok(
        &data,
        &["device", "revoke", &key, "--reason", "keyCompromise"],
    );
    assert!(revoked.contains(&serial), "{revoked}");
    assert!(revoked.contains("60 seconds"), "{revoked}");
    // The oracle: the CA's own stored CRL lists the serial.
    let crl = json(&data, &["ca", "crl", "--json"]);
    assert!(
        crl["revoked"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s.as_str() == Some(serial.as_str())),
        "{crl}"
    );
    let shown = json(&data, &["device", "show", &key, "--json"]);
    assert_eq!(
        shown["certificates"][0]["revoked"]["reason"],
        "keyCompromise"
    );
    // Again: nothing left to revoke, and that is not an error.
    let again = cli(&data, &["device", "revoke", &key]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("nothing to revoke"));
    stop(server);
}

#[test]
fn groups_are_created_and_edited_in_the_repository_the_server_serves() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(fails(&data, &["group", "list"]).contains("serve` once"));
    let server = start(&data);

    let listed = json(&data, &["group", "list", "--json"]);
    assert_eq!(listed[0]["manifest"], "groups/default", "{listed}");
    assert!(ok(&data, &["group", "create", "lab"]).contains("groups/lab"));
    assert!(fails(&data, &["group", "create", "lab"]).contains("already exists"));
    for bad in ["a/b", "..", "../x", "tab\there", ".hidden", ""] {
        assert!(
            fails(&data, &["group", "create", bad]).contains("invalid group name"),
            "{bad:?}"
        );
    }
    assert!(!data.join("repo/manifests/a").exists());

    let added = ok(&data, &["group", "add", "lab", "Firefox", "Slack"]);
    assert!(added.contains("Firefox, Slack"), "{added}");
    let again = cli(&data, &["group", "add", "lab", "Firefox"]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already"));
    ok(&data, &["group", "remove", "groups/lab", "Slack"]);
    ok(
        &data,
        &["group", "add", "lab", "--key", "optional_installs", "VLC"],
    );
    assert!(fails(&data, &["group", "add", "lab", "--key", "colour", "x"]).contains("unknown key"));
    assert!(
        fails(&data, &["group", "show", "missing"]).contains("no group manifest groups/missing")
    );
    assert!(fails(&data, &["group", "add", "missing", "x"]).contains("no group manifest"));

    let shown = json(&data, &["group", "show", "lab", "--json"]);
    assert_eq!(shown["managed_installs"], serde_json::json!(["Firefox"]));
    assert_eq!(shown["optional_installs"], serde_json::json!(["VLC"]));
    let text = ok(&data, &["group", "show", "lab"]);
    assert!(text.contains("managed_installs: Firefox"), "{text}");
    // The running server reads the same file.
    let (status, api) = admin_get(&server, &data, "/api/v1/groups/lab");
    assert_eq!(status, 200);
    assert_eq!(api, shown);
    // And the file is a plist the manifest tooling reads.
    let plist = ok(&data, &["manifest", "show", "groups/lab"]);
    assert!(plist.contains("<string>Firefox</string>"), "{plist}");
    stop(server);
}
