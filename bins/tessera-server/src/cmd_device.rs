//! `tessera-server device …`: enrolled devices, straight on the data directory's database
//! (safe beside a running server: SQLite in WAL mode) and, for `revoke`, the CA directory.
//!
//! `revoke` records the revocation in the CA's ledger and the database and stores a fresh
//! CRL in the CA directory, exactly as `ca revoke` does. A running server does not hear of
//! it at once: its CRL refresher re-reads the stored CRL every 60 seconds and then refuses
//! the certificate at the TLS handshake. `POST /api/v1/devices/{key}/revoke` on the running
//! server takes effect immediately; the command says so.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::json;
use tessera_ca::{CaHome, RandomSerials, RevocationReason, SystemClock};
use tessera_server::app::App;
use tessera_server::config::Config;
use tessera_server::datadir::DataDir;
use tessera_server::enroll::Enrollment;
use tessera_server::revoke::{RevokeError, revoke_device};
use tessera_store::{DeviceKey, SqliteStore, Store};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `device` arguments.
#[derive(Args, Debug, Clone)]
pub(crate) struct DeviceArgs {
    #[command(subcommand)]
    command: DeviceCommand,
}

#[derive(Subcommand, Debug, Clone)]
enum DeviceCommand {
    /// List enrolled devices.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a device: facts, manifest, last contact, certificates and deployments.
    Show {
        /// The device's key (from `device list`).
        key: i64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke every certificate of a device and store a new CRL. A running server applies
    /// it within 60 seconds; use `POST /api/v1/devices/KEY/revoke` for immediate effect.
    Revoke {
        /// The device's key (from `device list`).
        key: i64,
        /// RFC 5280 reason: keyCompromise, superseded, cessationOfOperation, …
        #[arg(long, default_value = "unspecified")]
        reason: String,
    },
}

pub(crate) fn run(data: &Path, args: &DeviceArgs) -> anyhow::Result<ExitCode> {
    let (runtime, store) = crate::local_store::open(data)?;
    runtime.block_on(async {
        match &args.command {
            DeviceCommand::List { json } => list(&store, *json).await,
            DeviceCommand::Show { key, json } => show(&store, *key, *json).await,
            DeviceCommand::Revoke { key, reason } => revoke(data, store, *key, reason).await,
        }?;
        Ok(ExitCode::SUCCESS)
    })
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

async fn list(store: &SqliteStore, json: bool) -> anyhow::Result<()> {
    let devices = store.list_devices().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&devices)?);
        return Ok(());
    }
    if devices.is_empty() {
        eprintln!("no devices enrolled yet");
        return Ok(());
    }
    println!(
        "{:>5}  {:<20} {:<14} {:<21} manifest",
        "key", "computer name", "serial", "last contact"
    );
    for d in devices {
        println!(
            "{:>5}  {:<20} {:<14} {:<21} {}",
            d.key.0,
            d.computer_name,
            d.serial.as_deref().unwrap_or("-"),
            d.last_contact.map_or_else(|| "never".to_owned(), rfc3339),
            d.manifest
        );
    }
    Ok(())
}

async fn show(store: &SqliteStore, key: i64, json: bool) -> anyhow::Result<()> {
    let device = store
        .device(DeviceKey(key))
        .await?
        .with_context(|| format!("no device {key}; `tessera-server device list` shows them"))?;
    let certificates = store.certificates_for(device.key).await?;
    let mut deployments = Vec::new();
    for deployment in store.deployments_for(device.key).await? {
        let package = store.package(deployment.package_id).await?;
        deployments.push((deployment, package));
    }
    if json {
        // The admin API's `{device, deployments}` plus what the CLI can add: certificates
        // (never their keys; the server has none) and package names.
        let value = json!({
            "device": device,
            "deployments": deployments.iter().map(|(d, p)| {
                let mut value = json!(d);
                value["package"] = json!(p.as_ref().map(|p| json!({"name": p.name, "version": p.version})));
                value
            }).collect::<Vec<_>>(),
            "certificates": certificates.iter().map(|c| json!({
                "serial": c.serial,
                "computer_name": c.computer_name,
                "not_before": rfc3339(c.not_before),
                "not_after": rfc3339(c.not_after),
                "revoked": c.revoked,
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    println!("device {}: {}", device.key.0, device.computer_name);
    println!("serial: {}", device.serial.as_deref().unwrap_or("-"));
    if let Some(id) = &device.ocs_device_id {
        println!("OCS device ID: {id}");
    }
    println!("manifest: {}", device.manifest);
    println!("enrolled: {}", rfc3339(device.created_at));
    println!(
        "last contact: {}",
        device
            .last_contact
            .map_or_else(|| "never".to_owned(), rfc3339)
    );
    println!("facts:");
    if device.facts.is_empty() {
        println!("  (none)");
    }
    for (name, value) in &device.facts {
        match value {
            serde_json::Value::String(text) => println!("  {name}: {text}"),
            other => println!("  {name}: {other}"),
        }
    }
    println!("certificates:");
    if certificates.is_empty() {
        println!("  (none)");
    }
    for c in &certificates {
        let state = c.revoked.as_ref().map_or_else(
            || format!("valid until {}", rfc3339(c.not_after)),
            |r| format!("revoked {} ({})", rfc3339(r.at), r.reason),
        );
        println!("  {} {state}", c.serial);
    }
    println!("deployments:");
    if deployments.is_empty() {
        println!("  (none)");
    }
    for (d, package) in &deployments {
        let name = package.as_ref().map_or_else(
            || "(package no longer recorded)".to_owned(),
            |p| format!("{} {}", p.name, p.version),
        );
        let code = d
            .code
            .as_deref()
            .map(|c| format!(" {c}"))
            .unwrap_or_default();
        println!(
            "  package {} {name}: {}{code} since {}",
            d.package_id,
            d.state.as_str(),
            rfc3339(d.updated_at)
        );
    }
    Ok(())
}

async fn revoke(data: &Path, store: SqliteStore, key: i64, reason: &str) -> anyhow::Result<()> {
    let reason: RevocationReason = reason.parse().map_err(|_| {
        anyhow::anyhow!(
            "unknown revocation reason {reason:?}; use an RFC 5280 name such as keyCompromise"
        )
    })?;
    let dir = DataDir::new(data);
    let home = CaHome::in_data_dir(data);
    let ca = home
        .open(Arc::new(SystemClock), Arc::new(RandomSerials::from_os()))
        .with_context(|| format!("opening the device CA in {}", data.display()))?;
    let repo = tessera_manifest::Repo::open(dir.repo())
        .with_context(|| format!("opening the repository {}", dir.repo().display()))?;
    // The server's own revocation path, so the CA ledger and the database agree exactly as
    // when the admin API revokes. Without a publisher it only signs; the CRL is stored below.
    let app = App::new(
        store,
        Config::default(),
        tessera_package::Repository::new(dir.repo().join("download")),
    )
    .with_enrollment(Enrollment {
        ca,
        repo,
        publisher: None,
    });
    let revoked = match revoke_device(&app, DeviceKey(key), reason).await {
        Ok(revoked) => revoked,
        Err(RevokeError::UnknownDevice(key)) => {
            anyhow::bail!("no device {key}; `tessera-server device list` shows them")
        }
        Err(error) => return Err(error.into()),
    };
    let Some(enrollment) = app.enrollment.as_ref() else {
        anyhow::bail!("the device CA was not opened");
    };
    // Stores a CRL listing every revoked serial (re-signed only if the stored one does not).
    let crls = home.current_crls(&enrollment.ca)?;
    if revoked.is_empty() {
        eprintln!("device {key} has no unrevoked certificate; nothing to revoke");
        return Ok(());
    }
    println!(
        "Revoked {} certificate(s) of device {key} ({reason}): {}; CRL number {} stored in {}.",
        revoked.len(),
        revoked.join(", "),
        crls.issuing.number(),
        home.dir().display()
    );
    println!(
        "A running server applies this CRL within 60 seconds (it re-reads the stored CRL every minute); \
         for immediate effect revoke through it instead: POST /api/v1/devices/{key}/revoke."
    );
    Ok(())
}
