//! The real `tessera-server` binary on loopback: first run initialises the data directory
//! and says so, a device enrolls over HTTPS, SIGTERM stops it cleanly, and a restart keeps
//! everything.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::Command;

use common::{BIN, csr, https_post, start, stop};

#[test]
fn first_run_enrollment_shutdown_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start(&data);
    let text = server.output.join("\n");
    for expected in [
        "Initialised",
        "created the device CA",
        "admin token",
        "tessera-agent enroll --server https://",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }

    // The CRL on plain HTTP.
    let mut tcp = TcpStream::connect(&server.http).unwrap();
    tcp.write_all(b"GET /crl/device-ca.crl HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = Vec::new();
    tcp.read_to_end(&mut reply).unwrap();
    assert!(
        reply.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&reply[..40.min(reply.len())])
    );

    let token = Command::new(BIN)
        .args([
            "--data",
            data.to_str().unwrap(),
            "token",
            "create",
            "--label",
            "t",
            "--uses",
            "1",
        ])
        .output()
        .unwrap();
    assert!(token.status.success());
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
    let body = serde_json::json!({"token": token, "csr_pem": csr("MAC01"), "facts": {"serial": "C02X", "hostname": "MAC01", "os": "macOS"}});
    let ca_file = data.join("ca-certificate.pem");
    let (status, reply) = https_post(&server.https, &ca_file, "/enroll", &body.to_string());
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains("computers/C02X"));
    stop(server);

    // Restart: nothing to initialise, the token stays used.
    let server = start(&data);
    assert!(
        !server.output.join("\n").contains("Initialised"),
        "{:?}",
        server.output
    );
    let (status, reply) = https_post(&server.https, &ca_file, "/enroll", &body.to_string());
    assert_eq!(status, 403, "{reply}");
    stop(server);
}

/// `tessera-server demo` runs a whole deployment on loopback, says what it did, and
/// leaves nothing behind.
#[test]
fn demo_deploys_a_package_end_to_end_and_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .arg("demo")
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for step in [
        "made a single-use enrollment token",
        "computers/DEMO-0001 -> groups/default and decides: hello 1.0",
        "fragment 5/5 downloaded, SHA-256 verified",
        "result SUCCESS acknowledged by the server",
        "\"hello from a Tessera package\"",
        "success 1, error 0",
        "removed the demo directory",
    ] {
        assert!(stdout.contains(step), "missing {step:?} in:\n{stdout}");
    }
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "the demo left {left:?} behind");
}
