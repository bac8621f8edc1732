//! `tessera-server demo`: a complete deployment on loopback, narrated — a server initialised
//! in a temp directory, a sample package built, a local agent enrolled, the package
//! deployed and its statistics printed — then everything stopped and removed.
//!
//! It drives the server only through what an admin uses (the admin API over HTTPS) and the
//! agent only through its library entry points, so what it shows is what a real setup does.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use anyhow::{Context as _, bail};
use clap::Args;
use serde_json::{Value, json};
use tessera_agent::config::AgentConfig;
use tessera_agent::enroll::{EnrollOptions, enroll};
use tessera_agent::run::{Progress, RunOptions};
use tessera_agent::tls::ServerTrust;
use tessera_package::{
    Action, Label, Notification, PackageSpec, PayloadSource, Priority, Protocol, Repository,
};
use tessera_server::datadir::{Created, DataDir};
use tessera_server::serve::{Ready, ServeOptions, serve};

/// `demo` arguments.
#[derive(Args, Debug, Clone)]
pub(crate) struct DemoArgs {
    /// Keep the demo's directory (server data, agent data) instead of removing it, and
    /// print where it is.
    #[arg(long)]
    keep: bool,
}

/// Prints one step with the time since the start.
struct Narrator {
    started: Instant,
}

impl Narrator {
    fn step(&self, text: &str) {
        println!("[{:>5.1}s] {text}", self.started.elapsed().as_secs_f64());
    }
}

/// Narrates the agent's progress.
struct AgentProgress<'a>(&'a Narrator);

impl Progress for AgentProgress<'_> {
    fn package(&mut self, id: u64, fragments: u32, bytes: Option<u64>) {
        let size = bytes.map_or_else(String::new, |b| format!(", {b} bytes"));
        self.0.step(&format!(
            "   agent: package {id} offered ({fragments} fragments{size})"
        ));
    }
    fn fragment_verified(&mut self, id: u64, fragment: u32, of: u32) {
        self.0.step(&format!(
            "   agent: package {id} fragment {fragment}/{of} downloaded, SHA-256 verified"
        ));
    }
    fn acting(&mut self, id: u64) {
        self.0.step(&format!(
            "   agent: package {id} reassembled, MD5 and SHA-256 verified, unpacked; running its action"
        ));
    }
    fn finished(&mut self, id: u64, result: &str) {
        self.0.step(&format!(
            "   agent: package {id} result {result} acknowledged by the server"
        ));
    }
}

pub(crate) fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let narrator = Narrator {
        started: Instant::now(),
    };
    let scratch = tempfile::Builder::new()
        .prefix("tessera-demo-")
        .tempdir()
        .context("creating the demo directory")?;
    let root = scratch.path().to_owned();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let outcome = runtime.block_on(demo(&root, &narrator));
    if args.keep {
        let kept = scratch.keep();
        println!("Kept the demo directory: {}", kept.display());
    } else {
        drop(scratch);
        narrator.step("stopped the server and removed the demo directory");
    }
    outcome?;
    narrator.step("done");
    Ok(ExitCode::SUCCESS)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn demo(root: &Path, narrator: &Narrator) -> anyhow::Result<()> {
    let data = root.join("server");
    std::fs::create_dir_all(&data)?;
    let (https, http) = (free_port()?, free_port()?);
    // Loopback only, and a schedule without waits so the demo takes seconds, not hours.
    std::fs::write(
        data.join("config.toml"),
        format!(
            "[listen]\nhttps = \"127.0.0.1:{https}\"\nhttp = \"127.0.0.1:{http}\"\n\n\
             [public]\nnames = [\"127.0.0.1\"]\nhttps_authority = \"127.0.0.1:{https}\"\n\
             http_authority = \"127.0.0.1:{http}\"\n\n\
             [ocs.download]\non = true\nperiod_length = 1\nfrag_latency = 0\ncycle_latency = 0\n\
             period_latency = 0\ntimeout_days = 1\nexecution_timeout_minutes = 1\n"
        ),
    )?;
    narrator.step(&format!("initialising a server in {}", data.display()));

    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Ready>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let data_dir = DataDir::new(&data);
    let server = serve(
        &data_dir,
        ServeOptions::default(),
        move |ready| {
            let _ = ready_tx.send(ready.clone());
        },
        async move {
            let _ = stop_rx.await;
        },
    );
    let scenario = async move {
        let result = match ready_rx.await {
            Ok(ready) => scenario(root, &data, &ready, narrator).await,
            Err(_) => Err(anyhow::anyhow!("the server stopped before it listened")),
        };
        let _ = stop_tx.send(());
        result
    };
    let (served, scenario) = tokio::join!(server, scenario);
    served.context("the demo server failed")?;
    scenario
}

async fn scenario(
    root: &Path,
    data: &Path,
    ready: &Ready,
    narrator: &Narrator,
) -> anyhow::Result<()> {
    let admin_token = ready
        .created
        .iter()
        .find_map(|c| match c {
            Created::AdminToken(token) => Some(token.clone()),
            _ => None,
        })
        .context("the fresh data directory made no admin token")?;
    narrator.step(&format!(
        "server listening on https://{} (CA SHA-256 {})",
        ready.https, ready.ca_fingerprint
    ));
    let admin = Admin::new(&ready.https.to_string(), &ready.ca_file, admin_token)?;

    // An enrollment token, as `tessera-server token create` or the admin API makes it.
    let created = admin
        .post("/api/v1/tokens", &json!({"label": "demo", "uses": 1}))
        .await?;
    let token = created["token"]
        .as_str()
        .context("no token in the answer")?
        .to_owned();
    narrator.step("made a single-use enrollment token (POST /api/v1/tokens)");

    // A sample package: a script that writes a file, and some bulk to fragment.
    let installed = root.join("installed").join("hello.txt");
    let payload = root.join("payload");
    std::fs::create_dir_all(&payload)?;
    std::fs::write(
        payload.join("install.sh"),
        format!(
            "mkdir -p '{dir}'\necho 'hello from a Tessera package' > '{file}'\n",
            dir = installed.parent().map_or(root, |p| p).display(),
            file = installed.display()
        ),
    )?;
    std::fs::write(payload.join("bulk.bin"), bulk(600_000))?;
    let repo = Repository::in_data_dir(data);
    let spec = PackageSpec {
        label: Label::new("hello", "1.0")?,
        priority: Priority::new(5)?,
        action: Action::execute("sh install.sh")?,
        protocol: Protocol::Https,
        notification: Notification::default(),
    };
    let package = repo.build(
        spec,
        PayloadSource::Directory(&payload),
        128 * 1024,
        SystemTime::now(),
        &mut |_| {},
    )?;
    let id = package.id().get();
    narrator.step(&format!(
        "built package {id} \"hello 1.0\": EXECUTE `sh install.sh`, {} fragments",
        package.info().fragment_count
    ));

    // A local agent in its own directory, enrolled with the CA fingerprint.
    let agent_dir = root.join("agent");
    let mut config = AgentConfig::for_server(format!("https://{}", ready.https));
    config.data_dir = agent_dir.join("data");
    config.keystore.path = Some(agent_dir.join("keystore"));
    config.device.serial = Some("DEMO-0001".to_owned());
    let keystore = tessera_agent::identity::open_keystore(&config)?;
    let enrolled = enroll(
        &config,
        &*keystore,
        &EnrollOptions {
            servers: config.servers.clone(),
            token: zeroize::Zeroizing::new(token),
            trust: ServerTrust::pin_from_hex(&ready.ca_fingerprint)?,
        },
    )
    .await?;
    narrator.step(&format!(
        "enrolled agent \"{}\": key made on the device, certificate issued, manifest {}",
        enrolled.hostname, enrolled.manifest
    ));

    // No assignment: the package is named in the group every computer manifest includes,
    // and the server decides from the manifest (docs/server.md, "What a device is offered").
    admin
        .post("/api/v1/groups/default/items", &json!({"add": ["hello"]}))
        .await?;
    narrator.step(
        "added \"hello\" to the group manifest groups/default (POST /api/v1/groups/default/items)",
    );
    let devices = admin.get("/api/v1/devices").await?;
    let device = devices
        .as_array()
        .and_then(|d| d.iter().find(|d| d["serial"] == "DEMO-0001"))
        .and_then(|d| d["key"].as_i64())
        .context("the enrolled device is not listed")?;
    let why = admin
        .get(&format!("/api/v1/devices/{device}/decisions"))
        .await?;
    let chain = why["resolved"]["manifests"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(serde_json::Value::as_str)
                .collect::<Vec<_>>()
                .join(" -> ")
        })
        .unwrap_or_default();
    if why["packages"][0]["id"] != json!(id) {
        bail!("the server did not decide to offer package {id}: {why}");
    }
    narrator.step(&format!(
        "the server resolves {chain} and decides: hello 1.0 = package {id} (GET /api/v1/devices/{device}/decisions)"
    ));

    narrator.step("agent: checking in over mTLS (OCS PROLOG)");
    let summary = tessera_agent::run::run(
        &config,
        RunOptions {
            once: true,
            ocs_compat: false,
        },
        &mut AgentProgress(narrator),
        std::future::pending(),
    )
    .await?;
    if summary.results.is_empty() {
        bail!("the agent delivered nothing");
    }
    let written = std::fs::read_to_string(&installed)
        .with_context(|| format!("the package did not write {}", installed.display()))?;
    narrator.step(&format!(
        "the package's script wrote {}: {:?}",
        installed.display(),
        written.trim()
    ));

    let stats = admin.get(&format!("/api/v1/packages/{id}/stats")).await?;
    narrator.step(&format!(
        "statistics (GET /api/v1/packages/{id}/stats): waiting {}, notified {}, success {}, error {}, by code {}",
        stats["waiting"], stats["notified"], stats["success"], stats["error"], stats["by_code"]
    ));
    if stats["success"] != 1 {
        bail!("the deployment did not succeed: {stats}");
    }
    Ok(())
}

/// Incompressible bytes, so that the package really has several fragments.
fn bulk(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// The admin API over HTTPS, trusting the server's CA.
struct Admin {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Admin {
    fn new(authority: &str, ca_file: &PathBuf, token: String) -> anyhow::Result<Self> {
        let pem = std::fs::read(ca_file)?;
        let mut roots = rustls::RootCertStore::empty();
        for der in pem::parse_many(&pem)? {
            roots.add(rustls_pki_types::CertificateDer::from(der.into_contents()))?;
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Self {
            http: reqwest::Client::builder()
                .use_preconfigured_tls(tls)
                .build()?,
            base: format!("https://{authority}"),
            token,
        })
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(path, request).await
    }

    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        self.send(path, request).await
    }

    async fn send(&self, path: &str, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let response = request.bearer_auth(&self.token).send().await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        if !status.is_success() {
            bail!("{path}: HTTP {status}: {}", String::from_utf8_lossy(&bytes));
        }
        Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}
