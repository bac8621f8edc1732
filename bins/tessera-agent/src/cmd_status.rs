//! `tessera-agent status`: enrollment, server, last check-in and each package's progress.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use tessera_agent::config::AgentConfig;

/// Arguments of `status`.
#[derive(Args, Debug)]
pub(crate) struct StatusArgs {
    /// Print JSON for scripts.
    #[arg(long)]
    json: bool,
}

/// `tessera-agent status`.
pub(crate) fn run(config_path: &Path, args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let config = AgentConfig::load(config_path)?;
    let status = tessera_agent::status::status(&config)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(ExitCode::SUCCESS);
    }
    if !status.enrolled {
        println!("Not enrolled. Servers: {}", status.servers.join(", "));
        println!("Enroll with: tessera-agent enroll --token-file FILE --ca-fingerprint SHA256");
        return Ok(ExitCode::from(3));
    }
    println!("Enrolled as {}", status.device_id.as_deref().unwrap_or("?"));
    println!(
        "  manifest:   {}",
        status.manifest.as_deref().unwrap_or("?")
    );
    println!("  servers:    {}", status.servers.join(", "));
    match &status.last_check_in {
        None => println!("  check-in:   never"),
        Some(check_in) => {
            let when = time::OffsetDateTime::from_unix_timestamp(check_in.at.cast_signed())
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default();
            match &check_in.error {
                None => println!(
                    "  check-in:   {when} with {} ({} packages offered)",
                    check_in.server, check_in.offered
                ),
                Some(error) => println!("  check-in:   {when} FAILED: {error}"),
            }
        }
    }
    if status.packages.is_empty() {
        println!(
            "  packages:   none in progress; {} installed",
            status.installed.len()
        );
    }
    for package in &status.packages {
        let name = package.name.as_deref().unwrap_or("");
        match &package.result {
            Some(result) => println!(
                "  {} {name}: {} ({result} waiting to be reported)",
                package.id, package.phase
            ),
            None => println!(
                "  {} {name}: {} {}/{} fragments",
                package.id, package.phase, package.fragments_verified, package.fragments
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}
