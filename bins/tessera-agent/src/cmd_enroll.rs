//! `tessera-agent enroll`: key and CSR here, certificate from the server, identity into
//! the keystore.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use tessera_agent::config::AgentConfig;
use tessera_agent::enroll::{EnrollOptions, enroll};
use tessera_agent::tls::ServerTrust;
use zeroize::Zeroizing;

/// Arguments of `enroll`.
#[derive(Args, Debug)]
pub(crate) struct EnrollArgs {
    /// Server base URL (repeat for failover); default: the configuration's `servers`.
    #[arg(long = "server", value_name = "URL")]
    servers: Vec<String>,
    /// The enrollment token. Prefer --token-file or TESSERA_ENROLL_TOKEN: a command line
    /// is visible to every user of the machine.
    #[arg(long, env = "TESSERA_ENROLL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Read the enrollment token from this file.
    #[arg(long, value_name = "FILE", conflicts_with = "token")]
    token_file: Option<PathBuf>,
    /// SHA-256 fingerprint of the server's CA (what `tessera-server serve` prints).
    #[arg(long, value_name = "SHA256", required_unless_present = "ca_file")]
    ca_fingerprint: Option<String>,
    /// The server's CA certificate (PEM), instead of a fingerprint.
    #[arg(long, value_name = "PEM", conflicts_with = "ca_fingerprint")]
    ca_file: Option<PathBuf>,
    /// Also point Munki at this server's repository with the device certificate (macOS:
    /// writes PEM files under the data directory and Munki's ManagedInstalls preferences).
    #[arg(long)]
    configure_munki: bool,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
}

/// Loads the configuration, or starts one from `--server` when there is no file yet.
pub(crate) fn load_or_start(path: &Path, servers: &[String]) -> anyhow::Result<AgentConfig> {
    let mut config = if path.exists() {
        AgentConfig::load(path)?
    } else if let Some(first) = servers.first() {
        let mut config = AgentConfig::for_server(first.clone());
        config.servers.clone_from(&servers.to_vec());
        let parent = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        let text = toml::to_string(&config).context("writing the configuration")?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote a new configuration to {}", path.display());
        config
    } else {
        bail!(
            "no configuration at {} and no --server given; run `tessera-agent install --server URL` or pass --server",
            path.display()
        );
    };
    if !servers.is_empty() {
        config.servers = servers.to_vec();
    }
    Ok(config)
}

/// `tessera-agent enroll`.
pub(crate) fn run(config_path: &Path, args: &EnrollArgs) -> anyhow::Result<ExitCode> {
    let config = load_or_start(config_path, &args.servers)?;
    let token = read_token(args.token.as_deref(), args.token_file.as_deref())?.context(
        "an enrollment token is needed: --token-file FILE, TESSERA_ENROLL_TOKEN or --token",
    )?;
    let trust = server_trust(args.ca_fingerprint.as_deref(), args.ca_file.as_deref())?;
    if args.configure_munki && !cfg!(target_os = "macos") {
        bail!("--configure-munki sets up the Munki client, which runs on macOS only");
    }
    let keystore = tessera_agent::identity::open_keystore(&config)?;
    let options = EnrollOptions {
        servers: config.servers.clone(),
        token,
        trust,
    };
    let runtime = crate::runtime()?;
    let enrolled = runtime.block_on(enroll(&config, &*keystore, &options))?;
    if args.configure_munki {
        configure_munki(&config, &*keystore, &enrolled)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&enrolled)?);
    } else {
        println!("Enrolled {} with {}", enrolled.hostname, enrolled.server);
        println!("  manifest:     {}", enrolled.manifest);
        if enrolled.groups.is_empty() {
            println!("  groups:       (none offered)");
        } else {
            println!("  groups:       {}", enrolled.groups.join(", "));
        }
        println!("  device id:    {}", enrolled.device_id);
        println!("  certificate:  SHA-256 {}", enrolled.certificate_sha256);
        println!("  CA:           SHA-256 {}", enrolled.ca_sha256);
        println!("Next: `tessera-agent run --once` to check in now, or install the service.");
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes Munki's preferences for the identity just stored.
fn configure_munki(
    config: &AgentConfig,
    keystore: &dyn tessera_keystore::Keystore,
    enrolled: &tessera_agent::enroll::Enrolled,
) -> anyhow::Result<()> {
    use tessera_keystore::privileged::CommandRunner;
    let identity = keystore
        .identity()?
        .context("the identity just stored is gone")?;
    let ca = keystore
        .trust_anchors()?
        .into_iter()
        .find(|a| a.sha256().to_string() == enrolled.ca_sha256)
        .context("the CA just stored is gone")?;
    let settings = tessera_agent::munki::MunkiSettings {
        repo_url: format!("{}/repo", enrolled.server.trim_end_matches('/')),
        client_identifier: enrolled.manifest.clone(),
        dir: config.data_dir.join("munki"),
    };
    let runner = CommandRunner::new(std::sync::Arc::new(tessera_keystore::ProcessUid));
    tessera_agent::munki::configure(&runner, &settings, &identity, &ca.to_pem())?;
    eprintln!(
        "Munki now reads {} as {} with the device certificate",
        settings.repo_url, settings.client_identifier
    );
    Ok(())
}

/// The enrollment token from `--token` (or its environment variable) or `--token-file`.
pub(crate) fn read_token(
    token: Option<&str>,
    file: Option<&Path>,
) -> anyhow::Result<Option<Zeroizing<String>>> {
    let token = match (token, file) {
        (Some(token), _) => Zeroizing::new(token.trim().to_owned()),
        (None, Some(file)) => Zeroizing::new(
            std::fs::read_to_string(file)
                .with_context(|| format!("reading the enrollment token from {}", file.display()))?
                .trim()
                .to_owned(),
        ),
        (None, None) => return Ok(None),
    };
    if token.is_empty() {
        bail!("the enrollment token is empty");
    }
    Ok(Some(token))
}

/// How to recognise the server's CA: `--ca-fingerprint` or `--ca-file`.
pub(crate) fn server_trust(
    fingerprint: Option<&str>,
    ca_file: Option<&Path>,
) -> anyhow::Result<ServerTrust> {
    Ok(match (fingerprint, ca_file) {
        (Some(pin), _) => ServerTrust::pin_from_hex(pin)?,
        (None, Some(file)) => {
            let pem = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let anchors = tessera_keystore::CertificateDer::all_from_pem(&pem)
                .with_context(|| format!("{} holds no PEM certificate", file.display()))?;
            ServerTrust::Anchors(anchors.iter().map(|c| c.as_der().to_vec()).collect())
        }
        (None, None) => bail!(
            "enrolling needs to know the server's CA: pass --ca-fingerprint SHA256 (what `tessera-server serve` prints) or --ca-file PEM"
        ),
    })
}
