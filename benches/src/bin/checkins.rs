//! OCS PROLOG check-ins per second over TLS with keep-alive, against the server's real
//! HTTPS stack and SQLite store: 10,000 registered devices, 20 packages each (issue #9).
//!
//! Two modes, both run by default, each on a fresh store:
//! - `--manifests` (the main case): each device has its own `computers/<serial>` manifest
//!   including `groups/default`, whose `managed_installs` name `pkg01..pkg10` and whose
//!   conditional item (true for every bench device) names `pkg11..pkg20`; the server
//!   decides offers from them as `serve` does (`App::with_manifests`). A device's first
//!   check-in resolves its manifest and creates and notifies its 20 deployments.
//! - `--assignments`: the 20 packages assigned to every device beforehand, no manifests.
//!
//! Baseline, in the same run: the same TLS listener, HTTP stack and client load answering a
//! fixed body without touching the store — the floor our check-in logic sits on. The ratio
//! is how much slower a real check-in is than that floor.
//!
//! Per mode, two phases: the first round (every device checks in once, so each check-in
//! reads the device from the store and durably writes its 20 notifications), then the
//! steady state (timed, devices round-robin: what a fleet does between deployments), run in
//! one-second slices alternating with the baseline's.
//!
//! Run: `cargo run --release -p tessera-benches --bin checkins [-- [--manifests | --assignments] [DEVICES [CONNECTIONS [SECONDS]]]]`

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tessera_manifest::{Condition, ConditionalItem, Manifest, Repo, Section};
use tessera_protocol::body::encode_zlib;
use tessera_server::app::App;
use tessera_server::config::Config;
use tessera_server::listen::serve_https;
use tessera_server::tls::{TlsConfig, TlsMaterial};
use tessera_store::{NewDevice, PackageRecord, SqliteStore, Store};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

const PACKAGES: i64 = 20;

#[derive(Default)]
struct Load {
    checkins: u64,
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Load {
    fn add(&mut self, other: Self) {
        self.checkins += other.checkins;
        self.latencies.extend(other.latencies);
        self.elapsed += other.elapsed;
    }

    fn rate(&self) -> f64 {
        self.checkins as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&mut self, p: f64) -> Duration {
        self.latencies.sort();
        let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies.get(index).copied().unwrap_or_default()
    }
}

fn tls() -> (TlsMaterial, CertificateDer<'static>) {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::default();
    ca.distinguished_name.push(DnType::CommonName, "Bench CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).expect("ca").der().clone();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("key");
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
    let cert = server.signed_by(&key, &issuer).expect("cert").der().clone();
    let material = TlsMaterial {
        server_chain: vec![cert, ca_cert.clone()],
        server_key: Arc::new(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            key.serialize_der(),
        ))),
        client_roots: vec![ca_cert.clone()],
        crls: Vec::new(),
    };
    (material, ca_cert)
}

fn device_id(i: usize) -> String {
    format!("bench{i}-2024-05-01-10-20-30")
}

/// How long a load runs.
#[derive(Clone, Copy)]
enum Until {
    /// For this many seconds, devices round-robin.
    Seconds(u64),
    /// Until every device has checked in once.
    OneRound,
}

/// `connections` keep-alive clients posting PROLOGs, connection `c` for devices `c`,
/// `c + connections`, ….
async fn load(
    port: u16,
    ca: &CertificateDer<'static>,
    devices: usize,
    connections: usize,
    until: Until,
) -> Load {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).expect("root");
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    let deadline = match until {
        Until::Seconds(seconds) => Some(Instant::now() + Duration::from_secs(seconds)),
        Until::OneRound => None,
    };
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|c| {
            let config = Arc::clone(&config);
            tokio::spawn(async move {
                let tcp = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
                tcp.set_nodelay(true).expect("nodelay");
                let name = ServerName::try_from("127.0.0.1").expect("name");
                let mut tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.expect("tls");
                let mut latencies = Vec::new();
                let mut buffer = vec![0u8; 64 * 1024];
                let mut i = c;
                loop {
                    let more = match deadline {
                        Some(deadline) => Instant::now() < deadline,
                        None => i < devices,
                    };
                    if !more {
                        break;
                    }
                    let xml = format!("<REQUEST><DEVICEID>{}</DEVICEID><QUERY>PROLOG</QUERY></REQUEST>", device_id(i % devices));
                    let body = encode_zlib(xml.as_bytes());
                    let head = format!(
                        "POST /ocsinventory HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-compress\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    let sent = Instant::now();
                    tls.write_all(head.as_bytes()).await.expect("write");
                    tls.write_all(&body).await.expect("write");
                    read_response(&mut tls, &mut buffer).await;
                    latencies.push(sent.elapsed());
                    i += connections;
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("client"));
    }
    Load {
        checkins: latencies.len() as u64,
        latencies,
        elapsed: started.elapsed(),
    }
}

/// Reads one HTTP/1.1 response with a Content-Length body; panics on anything but 200.
async fn read_response(stream: &mut (impl tokio::io::AsyncRead + Unpin), buffer: &mut [u8]) {
    let mut filled = 0;
    loop {
        let n = stream.read(&mut buffer[filled..]).await.expect("read");
        assert!(n > 0, "server closed the connection");
        filled += n;
        let Some(end) = buffer[..filled].windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = std::str::from_utf8(&buffer[..end]).expect("utf-8 head");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(str::to_owned)
            })
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while filled < end + 4 + length {
            let n = stream.read(&mut buffer[filled..]).await.expect("read");
            assert!(n > 0, "short body");
            filled += n;
        }
        return;
    }
}

/// The machine's load average, to judge the figures by (other work shares the cores).
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".to_owned(),
        |text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        },
    )
}

/// CPU time (user, system) in clock ticks of each thread of this process, by thread ID,
/// with the thread's name: says whether a phase was bound by the CPU or by one thread.
fn thread_times() -> HashMap<String, (String, u64, u64)> {
    let mut times = HashMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return times;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`: the name may hold spaces, so split at the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let tick = |i: usize| fields.get(i).and_then(|f| f.parse().ok()).unwrap_or(0);
        times.insert(
            task.file_name().to_string_lossy().into_owned(),
            (stat[open + 1..close].to_owned(), tick(11), tick(12)),
        );
    }
    times
}

/// Where the CPU went between two [`thread_times`] samples, as one line.
fn cpu_summary(
    before: &HashMap<String, (String, u64, u64)>,
    after: &HashMap<String, (String, u64, u64)>,
    elapsed: Duration,
) -> String {
    // USER_HZ is 100 on Linux whatever the kernel's tick rate.
    const TICK: f64 = 0.01;
    let (mut user, mut system, mut sqlite_busiest) = (0, 0, 0);
    for (tid, (name, u, s)) in after {
        let (u0, s0) = before.get(tid).map_or((0, 0), |(_, u0, s0)| (*u0, *s0));
        let (du, ds) = (u.saturating_sub(u0), s.saturating_sub(s0));
        user += du;
        system += ds;
        if name.starts_with("sqlx-sqlite") {
            sqlite_busiest = sqlite_busiest.max(du + ds);
        }
    }
    let seconds = elapsed.as_secs_f64();
    format!(
        "process CPU user {:.2} s + system {:.2} s in {seconds:.2} s ({:.0}% of 2 cores); busiest SQLite worker thread {:.2} s ({:.0}% of one core)",
        user as f64 * TICK,
        system as f64 * TICK,
        (user + system) as f64 * TICK / seconds / 2.0 * 100.0,
        sqlite_busiest as f64 * TICK,
        sqlite_busiest as f64 * TICK / seconds * 100.0,
    )
}

/// Which decisions the bench exercises.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Each device has its own `computers/<serial>` manifest including `groups/default`,
    /// which lists the 20 packages (10 behind a condition every device meets): the first
    /// check-in resolves the manifest and creates and notifies 20 deployments.
    Manifests,
    /// 20 packages explicitly assigned to each device beforehand (no manifests): the first
    /// check-in notifies 20 waiting deployments.
    Assignments,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Self::Manifests => "manifests",
            Self::Assignments => "assignments",
        }
    }

    fn first_round(self) -> &'static str {
        match self {
            Self::Manifests => {
                "each device once: manifest resolved, 20 deployments created and notified"
            }
            Self::Assignments => "each device once: 20 assigned deployments notified",
        }
    }
}

/// Writes the repository: `groups/default` listing `pkg01..pkg10` and, behind a condition
/// every bench device meets, `pkg11..pkg20`; `site_default` and one computer manifest per
/// device including it, as enrollment writes them.
fn write_repository(root: &Path, devices: usize) -> Repo {
    let repo = Repo::create(root).expect("repository");
    let mut group = Manifest::new();
    group.catalogs = vec!["production".into()];
    let half = PACKAGES / 2;
    *group.section_mut(Section::ManagedInstalls) = (1..=half).map(package_name).collect();
    let mut body = Manifest::new();
    *body.section_mut(Section::ManagedInstalls) = (half + 1..=PACKAGES).map(package_name).collect();
    group.conditional_items.push(ConditionalItem {
        // Evaluated per device against its facts (`os_vers` from enrollment, `hostname`).
        condition: Some(Condition::new(
            r#"os_vers_major >= 12 AND hostname BEGINSWITH "bench""#,
        )),
        body,
    });
    repo.write_manifest("groups/default", &group)
        .expect("group manifest");
    let mut computer = Manifest::new();
    computer.catalogs = vec!["production".into()];
    computer.included_manifests = vec!["groups/default".into()];
    repo.write_manifest("site_default", &computer)
        .expect("site_default");
    // 10,000 small files, one per device, as enrollment leaves them. Written without the
    // repository's per-file fsync, which only slows the set-up.
    let bytes = computer.to_xml().expect("manifest xml");
    let computers = root.join("manifests/computers");
    std::fs::create_dir_all(&computers).expect("computers dir");
    for i in 0..devices {
        std::fs::write(computers.join(serial(i)), &bytes).expect("computer manifest");
    }
    repo
}

fn package_name(id: i64) -> String {
    format!("pkg{id:02}")
}

fn serial(i: usize) -> String {
    format!("BENCH{i:06}")
}

/// A store with the 20 packages and `devices` devices, set up for `mode`; the server state
/// on it, as `serve` builds it.
async fn prepare(mode: Mode, dir: &Path, devices: usize) -> Arc<App<SqliteStore>> {
    let store = SqliteStore::open(&dir.join("bench.db"))
        .await
        .expect("store");
    let now = time::OffsetDateTime::now_utc();
    for id in 1..=PACKAGES {
        let record = PackageRecord {
            id,
            name: package_name(id),
            version: "1.0".into(),
            priority: 5,
            action: "EXECUTE".into(),
            fragments: 4,
            size: 4 << 20,
            created_at: now,
        };
        store.put_package(&record).await.expect("package");
    }
    let repo = (mode == Mode::Manifests).then(|| write_repository(&dir.join("repo"), devices));
    eprintln!("{}: registering {devices} devices…", mode.label());
    for i in 0..devices {
        let mut facts = serde_json::Map::new();
        if mode == Mode::Manifests {
            // What enrollment records.
            for (name, value) in [
                ("hostname", format!("bench{i}")),
                ("serial_number", serial(i)),
                ("os", "Darwin".to_owned()),
                ("os_vers", "14.5".to_owned()),
                ("arch", "arm64".to_owned()),
            ] {
                facts.insert(name.into(), value.into());
            }
        }
        let key = store
            .create_device(
                &NewDevice {
                    computer_name: format!("bench{i}"),
                    serial: Some(serial(i)),
                    ocs_device_id: Some(device_id(i)),
                    manifest: format!("computers/{}", serial(i)),
                    facts,
                },
                now,
            )
            .await
            .expect("device");
        if mode == Mode::Assignments {
            for id in 1..=PACKAGES {
                store.assign(key, id, now).await.expect("assign");
            }
        }
    }
    let mut config = Config::default();
    config.ocs.compat = true;
    let app = App::new(
        store,
        config,
        tessera_package::Repository::new(dir.join("repo/download")),
    );
    let app = match repo {
        Some(repo) => app.with_manifests(repo),
        None => app,
    }
    .shared();
    app.packages_changed().await.expect("packages");
    app
}

/// What one mode measured.
struct Measured {
    mode: Mode,
    first: Load,
    first_cpu: String,
    steady: Load,
    floor: Load,
    loadavg_before: String,
    loadavg_after: String,
}

async fn run(
    mode: Mode,
    devices: usize,
    connections: usize,
    seconds: u64,
    floor_port: u16,
    tls: &TlsConfig,
    ca: &CertificateDer<'static>,
) -> Measured {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = prepare(mode, dir.path(), devices).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let router = tessera_server::service::https_router(&app);
    let server = tokio::spawn(serve_https(
        listener,
        tls.clone(),
        router,
        std::future::pending(),
    ));
    let loadavg_before = loadavg();
    let cpu_before = thread_times();
    let first = load(port, ca, devices, connections, Until::OneRound).await;
    let first_cpu = cpu_summary(&cpu_before, &thread_times(), first.elapsed);
    // The first round did what it says: every device has its 20 packages notified.
    let totals = app.store.deployment_totals().await.expect("totals");
    assert_eq!(
        (totals.notified, totals.waiting),
        (devices as u64 * PACKAGES as u64, 0),
        "{}: after the first round every device should have {PACKAGES} notified deployments",
        mode.label()
    );
    // Floor and steady state in alternating one-second slices, so that other work on the
    // machine starting or stopping weighs on both alike.
    let mut floor = Load::default();
    let mut steady = Load::default();
    for _ in 0..seconds {
        floor.add(load(floor_port, ca, devices, connections, Until::Seconds(1)).await);
        steady.add(load(port, ca, devices, connections, Until::Seconds(1)).await);
    }
    server.abort();
    let _ = server.await;
    Measured {
        mode,
        first,
        first_cpu,
        steady,
        floor,
        loadavg_before,
        loadavg_after: loadavg(),
    }
}

fn print(m: &mut Measured) {
    println!("[{}]", m.mode.label());
    println!(
        "  first round ({}): {:.0}/s, p50 {:.2?}, p99 {:.2?} ({} check-ins)",
        m.mode.first_round(),
        m.first.rate(),
        m.first.percentile(0.50),
        m.first.percentile(0.99),
        m.first.checkins
    );
    println!("  first round CPU: {}", m.first_cpu);
    if m.steady.checkins > 0 {
        println!(
            "  steady state: {:.0}/s, p50 {:.2?}, p99 {:.2?} ({} check-ins)",
            m.steady.rate(),
            m.steady.percentile(0.50),
            m.steady.percentile(0.99),
            m.steady.checkins
        );
        println!(
            "  floor (same TLS/HTTP stack, fixed reply, interleaved): {:.0}/s, p50 {:.2?}, p99 {:.2?}",
            m.floor.rate(),
            m.floor.percentile(0.50),
            m.floor.percentile(0.99)
        );
        println!(
            "  ratio (floor rate / steady-state rate): {:.2}x",
            m.floor.rate() / m.steady.rate().max(f64::MIN_POSITIVE)
        );
    }
    println!(
        "  load average (1, 5, 15 min) before: {}; after: {}",
        m.loadavg_before, m.loadavg_after
    );
}

const USAGE: &str =
    "usage: checkins [--manifests | --assignments] [DEVICES [CONNECTIONS [SECONDS]]]
  (no mode flag: both modes, manifests first; defaults 10000 32 10)";

fn main() {
    let mut modes = Vec::new();
    let mut numbers = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--manifests" => modes.push(Mode::Manifests),
            "--assignments" => modes.push(Mode::Assignments),
            other => {
                let Ok(n) = other.parse::<usize>() else {
                    eprintln!("unknown argument {other:?}\n{USAGE}");
                    std::process::exit(2);
                };
                numbers.push(n);
            }
        }
    }
    if modes.is_empty() {
        modes = vec![Mode::Manifests, Mode::Assignments];
    }
    let devices = numbers.first().copied().unwrap_or(10_000).max(1);
    let connections = numbers.get(1).copied().unwrap_or(32).max(1);
    let seconds = numbers.get(2).copied().unwrap_or(10) as u64;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let (material, ca) = tls();
        let tls = TlsConfig::new(&material).expect("tls");
        // Baseline: same listener and TLS, a fixed reply.
        let reply = encode_zlib(b"<REPLY><RESPONSE>STOP</RESPONSE></REPLY>");
        // The body is read, as the real handler does: hyper reuses a connection only then.
        let floor = Router::new().route(
            "/ocsinventory",
            post(move |_body: axum::body::Bytes| {
                let reply = reply.clone();
                async move { reply }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let floor_port = listener.local_addr().expect("addr").port();
        let floor_server = tokio::spawn(serve_https(listener, tls.clone(), floor, std::future::pending()));
        let mut measured = Vec::new();
        for mode in modes {
            measured.push(run(mode, devices, connections, seconds, floor_port, &tls, &ca).await);
        }
        floor_server.abort();
        println!("devices {devices}, packages per device {PACKAGES}, connections {connections}, {seconds} s steady state and {seconds} s floor, interleaved");
        for m in &mut measured {
            print(m);
        }
    });
}
