//! Helpers for tests that run the real `tessera-server` binary on loopback.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_tessera-server");

pub struct Server {
    pub child: Child,
    pub output: Vec<String>,
    pub https: String,
    pub http: String,
}

#[allow(clippy::zombie_processes, reason = "the child is reaped in `stop`")]
pub fn start(data: &Path) -> Server {
    let mut child = Command::new(BIN)
        .args([
            "--data",
            data.to_str().unwrap(),
            "serve",
            "--https",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut output = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut addresses = None;
    loop {
        assert!(
            Instant::now() < deadline,
            "server did not start: {output:?}"
        );
        let line = lines
            .next()
            .expect("server exited before listening")
            .unwrap();
        output.push(line.clone());
        if let Some(rest) = line.strip_prefix("Tessera is listening on https://") {
            let https = rest.split(' ').next().unwrap().to_owned();
            let http = rest
                .split("http://")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .to_owned();
            addresses = Some((https, http));
        }
        if line.starts_with("Stop with Ctrl-C") {
            let (https, http) = addresses.expect("the listening line comes first");
            // Keep draining stdout so the server never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return Server {
                child,
                output,
                https,
                http,
            };
        }
    }
}

pub fn stop(mut server: Server) {
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "graceful shutdown exits 0, got {status}");
            return;
        }
        assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One HTTP/1.1 request over TLS to `addr`, trusting `ca_file`; `Err` when the connection
/// fails (e.g. the server was killed).
pub use tessera_testkit::https::request as https_request;

/// A JSON POST; panics on connection failure.
pub fn https_post(addr: &str, ca_file: &Path, path: &str, body: &str) -> (u16, String) {
    let head = format!("POST {path} HTTP/1.1\r\nContent-Type: application/json");
    let (status, body) = https_request(addr, ca_file, &head, body.as_bytes()).unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A PEM CSR (ECDSA P-256) naming `name` in CN and SAN, as an enrolling device sends it.
pub fn csr(name: &str) -> String {
    csr_and_key(name).0
}

/// [`csr`] with the private key kept: `(csr_pem, key_pem)`, for tests that then present
/// the issued certificate as the device would.
pub fn csr_and_key(name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    (csr, key.serialize_pem())
}

/// One HTTP/1.1 request over TLS presenting an optional client certificate; the whole
/// response with headers. `Err` when the connection or handshake fails.
#[allow(
    unused_imports,
    reason = "each test binary uses its own part of this module"
)]
pub use tessera_testkit::https::{ClientIdentity, Response, request_as as https_request_as};

/// The admin token the first `serve` on an empty data directory printed.
pub fn admin_token(server: &Server) -> String {
    server
        .output
        .iter()
        .find_map(|line| line.split("admin token").nth(1))
        .and_then(|rest| rest.split_whitespace().last())
        .expect("the first run prints the admin token")
        .to_owned()
}
