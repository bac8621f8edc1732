//! The real `tessera-server` binary on loopback: first run initialises the data directory
//! and says so, a device enrolls over HTTPS, SIGTERM stops it cleanly, and a restart keeps
//! everything.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};

const BIN: &str = env!("CARGO_BIN_EXE_tessera-server");

struct Server {
    child: Child,
    output: Vec<String>,
    https: String,
    http: String,
}

#[allow(clippy::zombie_processes, reason = "the child is reaped in `stop`")]
fn start(data: &Path) -> Server {
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

fn stop(mut server: Server) {
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

fn https_post(addr: &str, ca_file: &Path, path: &str, body: &str) -> (u16, String) {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut tcp = TcpStream::connect(addr).unwrap();
    let mut tls = rustls::Stream::new(&mut connection, &mut tcp);
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    (
        status,
        text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned(),
    )
}

fn csr(name: &str) -> String {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.serialize_request(&key).unwrap().pem().unwrap()
}

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
