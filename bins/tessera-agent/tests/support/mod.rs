//! Real `tessera-server` and `tessera-agent` processes on loopback, each in its own temp
//! data directory, for the agent's end-to-end tests.
#![allow(dead_code)]

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const AGENT: &str = env!("CARGO_BIN_EXE_tessera-agent");

/// The server binary: built by `cargo test --workspace` beside this one; built here when
/// only this package's tests run.
pub fn server_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = Path::new(AGENT).parent().unwrap();
        let bin = dir.join("tessera-server");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        // Always ask cargo: a stale server binary would test old code.
        let status = Command::new(cargo)
            .args(["build", "-q", "-p", "tessera-server-cli"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .status()
            .expect("run cargo to build tessera-server");
        assert!(status.success(), "building tessera-server failed");
        assert!(bin.exists(), "no {}", bin.display());
        bin
    })
    .clone()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running server.
pub struct Server {
    pub data: PathBuf,
    child: Option<Child>,
    pub https: String,
    pub admin_token: String,
    pub ca_fingerprint: String,
    pub log: PathBuf,
}

impl Server {
    /// Initialises a data dir under `dir` with a fast schedule and starts the server.
    pub fn start(dir: &Path, period_length: u32) -> Self {
        Self::start_with(dir, period_length, "")
    }

    /// As [`Server::start`], with more TOML appended to `config.toml`.
    pub fn start_with(dir: &Path, period_length: u32, extra: &str) -> Self {
        let data = dir.join("server");
        for attempt in 0..3 {
            let _ = std::fs::remove_dir_all(&data);
            std::fs::create_dir_all(&data).unwrap();
            let https_port = free_port();
            let http_port = free_port();
            std::fs::write(
                data.join("config.toml"),
                format!(
                    "[listen]\nhttps = \"127.0.0.1:{https_port}\"\nhttp = \"127.0.0.1:{http_port}\"\n\
                     [public]\nnames = [\"127.0.0.1\"]\nhttps_authority = \"127.0.0.1:{https_port}\"\n\
                     http_authority = \"127.0.0.1:{http_port}\"\n\
                     [ocs.download]\non = true\nperiod_length = {period_length}\nfrag_latency = 0\n\
                     cycle_latency = 0\nperiod_latency = 0\ntimeout_days = 7\nexecution_timeout_minutes = 5\n{extra}"
                ),
            )
            .unwrap();
            let out = data.join("server.out");
            let log = data.join("server.log");
            let child = Command::new(server_bin())
                .args(["--log-format", "json", "--data"])
                .arg(&data)
                .arg("serve")
                .stdout(std::fs::File::create(&out).unwrap())
                .stderr(std::fs::File::create(&log).unwrap())
                .stdin(Stdio::null())
                .spawn()
                .unwrap();
            let mut server = Self {
                data: data.clone(),
                child: Some(child),
                https: format!("127.0.0.1:{https_port}"),
                admin_token: String::new(),
                ca_fingerprint: String::new(),
                log,
            };
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                let text = std::fs::read_to_string(&out).unwrap_or_default();
                if text.contains("Stop with Ctrl-C") {
                    for line in text.lines() {
                        if let Some(token) = line.split("password manager): ").nth(1) {
                            token.trim().clone_into(&mut server.admin_token);
                        }
                        if let Some(pin) = line.split("--ca-fingerprint ").nth(1) {
                            pin.trim().clone_into(&mut server.ca_fingerprint);
                        }
                    }
                    assert!(!server.admin_token.is_empty(), "no admin token in {text}");
                    return server;
                }
                if let Some(status) = server.child.as_mut().unwrap().try_wait().unwrap() {
                    // Most likely a port taken between probing and binding: try again.
                    eprintln!("server exited with {status} on attempt {attempt}; retrying");
                    server.child = None;
                    break;
                }
                assert!(Instant::now() < deadline, "server did not start: {text}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("the server would not start");
    }

    /// `tessera-server --data D ARGS`, which must succeed.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new(server_bin())
            .arg("--data")
            .arg(&self.data)
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "tessera-server {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// A single-use enrollment token.
    pub fn token(&self) -> String {
        let out = self.cli(&["token", "create", "--label", "e2e", "--json"]);
        let value: Value = serde_json::from_str(&out).unwrap();
        value["token"].as_str().unwrap().to_owned()
    }

    /// Builds a package from `payload` with extra `args`; returns its ID.
    pub fn package(&self, payload: &Path, name: &str, args: &[&str]) -> u64 {
        let mut all = vec![
            "package",
            "build",
            payload.to_str().unwrap(),
            "--name",
            name,
            "--version",
            "1.0",
            "--json",
        ];
        all.extend_from_slice(args);
        let out = self.cli(&all);
        let value: Value = serde_json::from_str(&out).unwrap();
        value["id"].as_u64().unwrap()
    }

    /// An admin API call: status and JSON body.
    pub fn api(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let body = body.map(Value::to_string).unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nAuthorization: Bearer {}\r\nContent-Type: application/json",
            self.admin_token
        );
        let (status, bytes) = tessera_testkit::https::request(
            &self.https,
            &self.data.join("ca-certificate.pem"),
            &head,
            body.as_bytes(),
        )
        .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// The one device's store key.
    pub fn device_key(&self) -> i64 {
        let (status, devices) = self.api("GET", "/api/v1/devices", None);
        assert_eq!(status, 200, "{devices}");
        devices[0]["key"].as_i64().unwrap()
    }

    pub fn assign(&self, device: i64, package: u64) {
        let body = serde_json::json!({"device": device, "package": package});
        let (status, answer) = self.api("POST", "/api/v1/assignments", Some(&body));
        assert!(
            matches!(status, 200 | 201 | 204),
            "assign: {status} {answer}"
        );
    }

    /// The package's final codes, e.g. `{"SUCCESS": 1}`.
    pub fn codes(&self, package: u64) -> Value {
        let (status, stats) = self.api("GET", &format!("/api/v1/packages/{package}/stats"), None);
        assert_eq!(status, 200, "{stats}");
        stats["by_code"].clone()
    }

    /// Fragment requests in the server log, in order: (package, fragment).
    pub fn fragment_requests(&self) -> Vec<(u64, u32)> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|v| v["fields"]["message"] == "fragment requested")
            .map(|v| {
                let fields = &v["fields"];
                let package = match &fields["package"] {
                    Value::String(s) => s.parse().unwrap(),
                    other => other.as_u64().unwrap(),
                };
                (package, fields["fragment"].as_u64().unwrap() as u32)
            })
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An agent with its own configuration and data directory.
pub struct Agent {
    pub config: PathBuf,
    pub data: PathBuf,
}

impl Agent {
    /// Writes a configuration for `server` under `dir`.
    pub fn new(dir: &Path, server: &Server) -> Self {
        let home = dir.join("agent");
        std::fs::create_dir_all(&home).unwrap();
        let data = home.join("data");
        let config = home.join("agent.toml");
        let mut file = std::fs::File::create(&config).unwrap();
        writeln!(
            file,
            "servers = [\"https://{}\"]\ndata_dir = \"{}\"\n[device]\nserial = \"E2E-SERIAL-1\"",
            server.https,
            data.display()
        )
        .unwrap();
        Self { config, data }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(AGENT);
        command.arg("--config").arg(&self.config).args(args);
        command
    }

    /// Runs the agent to completion; panics with its output on failure.
    pub fn run(&self, args: &[&str]) -> Output {
        let output = self.command(args).output().unwrap();
        assert!(
            output.status.success(),
            "tessera-agent {args:?} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Enrolls with a fresh token, the token passed in a file as an admin would.
    pub fn enroll(&self, server: &Server) {
        let token_file = self.config.with_file_name("token");
        std::fs::write(&token_file, server.token()).unwrap();
        self.run(&[
            "enroll",
            "--token-file",
            token_file.to_str().unwrap(),
            "--ca-fingerprint",
            &server.ca_fingerprint,
        ]);
    }
}

/// A payload directory holding `install.sh` with `script`.
pub fn script_payload(dir: &Path, name: &str, script: &str) -> PathBuf {
    let payload = dir.join(name);
    std::fs::create_dir_all(&payload).unwrap();
    std::fs::write(payload.join("install.sh"), script).unwrap();
    payload
}
