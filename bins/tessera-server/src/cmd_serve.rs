//! `tessera-server serve`: runs the server; on a fresh data directory, initialises it and
//! says what it did and how to enroll a device.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use tessera_server::datadir::{Created, DataDir};
use tessera_server::serve::{Ready, ServeOptions, serve};

/// `serve` arguments.
#[derive(Args, Debug, Clone)]
pub(crate) struct ServeArgs {
    /// HTTPS listen address (default from config.toml: 127.0.0.1:8443).
    #[arg(long, value_name = "ADDR")]
    https: Option<SocketAddr>,
    /// Plain HTTP listen address for the CRL (default from config.toml: 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
}

pub(crate) fn run(data: &Path, args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let data_dir = DataDir::new(data);
    let options = ServeOptions {
        https: args.https,
        http: args.http,
    };
    runtime
        .block_on(serve(
            &data_dir,
            options,
            |ready| print_ready(data, ready),
            shutdown_signal(),
        ))
        .with_context(|| format!("serving from {}", data.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// Completes on Ctrl-C or SIGTERM (what systemd sends).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

fn print_ready(data: &Path, ready: &Ready) {
    if !ready.created.is_empty() {
        println!("Initialised {}:", data.display());
        for item in &ready.created {
            match item {
                Created::Directory(path) => {
                    println!("  created the data directory {}", path.display());
                }
                Created::Config(path) => {
                    println!("  wrote the default configuration to {}", path.display());
                }
                Created::CertificateAuthority { dir, fingerprint } => {
                    println!(
                        "  created the device CA in {} ({fingerprint})",
                        dir.display()
                    );
                }
                Created::ServerCertificate { names } => {
                    println!("  issued the HTTPS certificate for {}", names.join(", "));
                }
                Created::Database(path) => println!("  created the database {}", path.display()),
                Created::Repository(path) => {
                    println!("  created the Munki repository {}", path.display());
                }
                Created::AdminToken(token) => {
                    println!(
                        "  admin token (shown only now; keep it in a password manager): {token}"
                    );
                }
            }
        }
        println!();
    }
    println!(
        "Tessera is listening on https://{} (HTTPS) and http://{} (CRL).",
        ready.https, ready.http
    );
    println!();
    println!("To enroll a device:");
    println!(
        "  1. make an enrollment token:  tessera-server --data {} token create --label first-devices",
        data.display()
    );
    println!(
        "  2. on the device:             tessera-agent enroll --server https://{} --token <token> --ca-fingerprint {}",
        ready.https, ready.ca_fingerprint
    );
    println!(
        "     (or any HTTPS client: POST https://{}/enroll with a token, a CSR and the device's facts; see docs/server.md)",
        ready.https
    );
    println!(
        "Unmodified OCS agents: set `ocs.compat = true` in config.toml and pass --ca={}",
        ready.ca_file.display()
    );
    println!("Stop with Ctrl-C.");
}
