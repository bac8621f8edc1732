//! `tessera-agent install` and `uninstall`: the agent as a systemd or launchd service
//! (tessera_agent::service does the work).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::Args;
use tessera_agent::enroll::{EnrollOptions, Enrolled, enroll};
use tessera_agent::service::{
    InstallOptions, InstallReport, Installer, Layout, Platform, UninstallOptions, UninstallReport,
};
use tessera_agent::tls::ServerTrust;
use tessera_keystore::ProcessUid;
use tessera_keystore::privileged::CommandRunner;
use zeroize::Zeroizing;

/// Arguments of `install`.
#[derive(Args, Debug)]
pub(crate) struct InstallArgs {
    /// Server base URL (repeat for failover, tried in order). Needed on a first install; on
    /// an upgrade it replaces `servers` and every other key is kept.
    #[arg(long = "server", value_name = "URL")]
    servers: Vec<String>,
    /// The data directory (journal, downloads, state); on an upgrade it replaces `data_dir`.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Enroll the device with this token after installing. Prefer --token-file or
    /// TESSERA_ENROLL_TOKEN: a command line is visible to every user of the machine.
    #[arg(long, env = "TESSERA_ENROLL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Read the enrollment token from this file.
    #[arg(long, value_name = "FILE", conflicts_with = "token")]
    token_file: Option<PathBuf>,
    /// SHA-256 fingerprint of the server's CA, for enrolling (what `tessera-server serve`
    /// prints).
    #[arg(long, value_name = "SHA256")]
    ca_fingerprint: Option<String>,
    /// The server's CA certificate (PEM), for enrolling, instead of a fingerprint.
    #[arg(long, value_name = "PEM", conflicts_with = "ca_fingerprint")]
    ca_file: Option<PathBuf>,
    /// Write everything under this directory (an image being prepared) and start nothing.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Print what was done as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `uninstall`.
#[derive(Args, Debug)]
pub(crate) struct UninstallArgs {
    /// Keep the configuration file (a later `install` picks it up again).
    #[arg(long)]
    keep_config: bool,
    /// Keep the data directory (journal, downloads); the identity is removed regardless.
    #[arg(long)]
    keep_data: bool,
    /// Remove from an image under this directory instead of the running system.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Print what was done as JSON.
    #[arg(long)]
    json: bool,
}

fn installer(config: &Path, root: Option<&Path>) -> anyhow::Result<Installer> {
    let platform = Platform::current()?;
    let root = match root {
        Some(dir) => std::path::absolute(dir)
            .with_context(|| format!("resolving --root {}", dir.display()))?,
        None => PathBuf::from("/"),
    };
    if !root.is_dir() {
        bail!("--root {} is not a directory", root.display());
    }
    let layout = Layout::new(root, platform, config)?;
    Ok(Installer::new(
        layout,
        CommandRunner::default(),
        Arc::new(ProcessUid),
    ))
}

/// `tessera-agent install`.
pub(crate) fn install(config: &Path, args: &InstallArgs) -> anyhow::Result<ExitCode> {
    // Every refusal comes before anything is written.
    let enrollment = enrollment_request(args)?;
    let installer = installer(config, args.root.as_deref())?;
    let options = InstallOptions {
        servers: args.servers.clone(),
        data_dir: args.data_dir.clone(),
        source_binary: std::env::current_exe()
            .context("finding the running tessera-agent binary to install")?,
    };
    // Enroll first, so the service starts with its identity and a failed enrollment leaves
    // nothing installed.
    let enrolled = match enrollment {
        Some((token, trust)) => {
            let planned = installer.planned_config(&options)?;
            let keystore = tessera_agent::identity::open_keystore(&planned)?;
            let enroll_options = EnrollOptions {
                servers: planned.servers.clone(),
                token,
                trust,
            };
            let enrolled = crate::runtime()?
                .block_on(enroll(&planned, &*keystore, &enroll_options))
                .context("enrolling this device failed, so the service was not installed")?;
            Some(enrolled)
        }
        None => None,
    };
    let report = installer.install(&options)?;
    let out = &mut std::io::stdout().lock();
    if args.json {
        let json = serde_json::json!({ "install": report, "enrolled": enrolled });
        writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
    } else {
        print_install(out, &report, installer.layout(), enrolled.as_ref())?;
    }
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The token and how to trust the server, when install is asked to enroll.
fn enrollment_request(
    args: &InstallArgs,
) -> anyhow::Result<Option<(Zeroizing<String>, ServerTrust)>> {
    let token = crate::cmd_enroll::read_token(args.token.as_deref(), args.token_file.as_deref())?;
    let trust_given = args.ca_fingerprint.is_some() || args.ca_file.is_some();
    let Some(token) = token else {
        if trust_given {
            bail!(
                "--ca-fingerprint/--ca-file are for enrolling: add --token-file FILE (or TESSERA_ENROLL_TOKEN), or enroll later with `tessera-agent enroll`"
            );
        }
        return Ok(None);
    };
    if args.root.is_some() {
        bail!(
            "cannot enroll into an image under --root: the device identity belongs to the machine; install without a token and run `tessera-agent enroll` on first boot"
        );
    }
    let trust =
        crate::cmd_enroll::server_trust(args.ca_fingerprint.as_deref(), args.ca_file.as_deref())?;
    Ok(Some((token, trust)))
}

fn changed(yes: bool, changed: &'static str, kept: &'static str) -> &'static str {
    if yes { changed } else { kept }
}

fn print_install(
    out: &mut dyn std::io::Write,
    report: &InstallReport,
    layout: &Layout,
    enrolled: Option<&Enrolled>,
) -> anyhow::Result<()> {
    let manager = match report.platform {
        Platform::Systemd => "systemd",
        Platform::Launchd => "launchd",
    };
    writeln!(
        out,
        "{} the Tessera agent as a {manager} service{}",
        changed(report.upgrade, "Upgraded", "Installed"),
        if layout.is_live() {
            String::new()
        } else {
            format!(" under {}", layout.root.display())
        }
    )?;
    writeln!(
        out,
        "  binary:   {} ({})",
        report.binary.display(),
        changed(report.binary_changed, "copied", "unchanged")
    )?;
    let config_state = if report.config_created {
        "created".to_owned()
    } else if report.config_keys_set.is_empty() {
        "kept as it was".to_owned()
    } else {
        format!("kept; set {}", report.config_keys_set.join(", "))
    };
    writeln!(
        out,
        "  config:   {} ({config_state})",
        report.config.display()
    )?;
    writeln!(
        out,
        "  service:  {} ({})",
        report.service_file.display(),
        changed(report.service_file_changed, "written", "unchanged")
    )?;
    writeln!(out, "  data:     {}", report.data_dir.display())?;
    for command in &report.commands {
        writeln!(out, "  ran:      {command}")?;
    }
    writeln!(out, "  logs:     {}", report.logs)?;
    if let Some(enrolled) = enrolled {
        writeln!(
            out,
            "  enrolled: {} with {} (manifest {}, certificate SHA-256 {})",
            enrolled.hostname, enrolled.server, enrolled.manifest, enrolled.certificate_sha256
        )?;
        writeln!(out, "Next: `tessera-agent status` shows the agent's state.")?;
    } else if report.service_started {
        writeln!(
            out,
            "Next: enroll this device if it is not yet: sudo tessera-agent enroll --ca-fingerprint SHA256 --token-file FILE\n      then `tessera-agent status` shows its state."
        )?;
    } else {
        let enable = match report.platform {
            Platform::Systemd => format!(
                "systemctl --root {} enable tessera-agent.service",
                layout.root.display()
            ),
            Platform::Launchd => "it loads at boot from /Library/LaunchDaemons".to_owned(),
        };
        writeln!(
            out,
            "Nothing was started (--root). Enable the service in the image ({enable}) and enroll on first boot."
        )?;
    }
    Ok(())
}

/// `tessera-agent uninstall`.
pub(crate) fn uninstall(config: &Path, args: &UninstallArgs) -> anyhow::Result<ExitCode> {
    let installer = installer(config, args.root.as_deref())?;
    let report = installer.uninstall(UninstallOptions {
        keep_config: args.keep_config,
        keep_data: args.keep_data,
    })?;
    let out = &mut std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        print_uninstall(out, &report, installer.layout(), args)?;
    }
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(ExitCode::SUCCESS)
}

fn print_uninstall(
    out: &mut dyn std::io::Write,
    report: &UninstallReport,
    layout: &Layout,
    args: &UninstallArgs,
) -> anyhow::Result<()> {
    writeln!(out, "Uninstalled the Tessera agent")?;
    let line = |done: bool, what: String, kept: bool| {
        if kept {
            format!("  kept:     {what}")
        } else if done {
            format!("  removed:  {what}")
        } else {
            format!("  absent:   {what}")
        }
    };
    writeln!(
        out,
        "{}",
        line(
            report.service_removed,
            format!("service {}", layout.service_file().display()),
            false
        )
    )?;
    for command in &report.commands {
        writeln!(out, "  ran:      {command}")?;
    }
    writeln!(
        out,
        "{}",
        line(report.identity_removed, "device identity".to_owned(), false)
    )?;
    writeln!(
        out,
        "{}",
        line(
            report.config_removed,
            format!("configuration {}", layout.config.display()),
            args.keep_config
        )
    )?;
    writeln!(
        out,
        "{}",
        line(
            report.data_dir_removed,
            "data directory".to_owned(),
            args.keep_data
        )
    )?;
    writeln!(
        out,
        "{}",
        line(
            report.binary_removed,
            format!("binary {}", layout.binary.display()),
            false
        )
    )?;
    if report.platform == Platform::Launchd {
        writeln!(out, "  kept:     logs in /Library/Logs/Tessera")?;
    }
    Ok(())
}
