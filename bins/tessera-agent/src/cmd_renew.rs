//! `tessera-agent renew`: a new key and certificate now, authenticated by the current
//! certificate (the service also renews by itself when `renew_days` is reached).

use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use tessera_agent::config::AgentConfig;

/// Arguments of `renew`.
#[derive(Args, Debug)]
pub(crate) struct RenewArgs {
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
}

/// `tessera-agent renew`.
pub(crate) fn run(config_path: &Path, args: &RenewArgs) -> anyhow::Result<ExitCode> {
    let config = AgentConfig::load(config_path)?;
    let keystore = tessera_agent::identity::open_keystore(&config)?;
    let runtime = crate::runtime()?;
    let renewed = runtime.block_on(tessera_agent::enroll::renew(&config, &*keystore))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&renewed)?);
    } else {
        println!(
            "Renewed the certificate of {} with {}",
            renewed.hostname, renewed.server
        );
        println!("  certificate:  SHA-256 {}", renewed.certificate_sha256);
        println!("  CA:           SHA-256 {}", renewed.ca_sha256);
        println!("  manifest:     {}", renewed.manifest);
        println!(
            "The previous certificate is revoked; a running service presents the new one at its next connection."
        );
    }
    Ok(ExitCode::SUCCESS)
}
