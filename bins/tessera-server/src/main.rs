//! `tessera-server`: parses the command line and hands each subcommand to the crates that
//! do the work. No decision is made here.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tessera_cli::{LogArgs, finish};

mod cmd_ca;
mod cmd_cert;
mod cmd_demo;
mod cmd_device;
mod cmd_group;
mod cmd_manifest;
mod cmd_package;
mod cmd_serve;
mod cmd_token;
mod local_store;

/// The Tessera server: device enrollment and PKI, Munki manifests and repository, and OCS
/// Inventory NG compatible package delivery.
#[derive(Parser, Debug)]
#[command(name = "tessera-server", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Data directory: configuration, CA, database and repository. Created and initialised
    /// on first use.
    #[arg(
        long,
        global = true,
        env = "TESSERA_DATA",
        default_value = "tessera-data"
    )]
    data: PathBuf,
    #[command(flatten)]
    log: LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (initialises an empty data directory first).
    Serve(cmd_serve::ServeArgs),
    /// Manage the device certificate authority (init, show, issue, revoke, crl).
    Ca(cmd_ca::CaArgs),
    /// Check a certificate against the device policy.
    Cert(cmd_cert::CertArgs),
    /// Build, import, list, show and delete packages.
    Package(cmd_package::PackageArgs),
    /// Show and resolve Munki manifests.
    Manifest(cmd_manifest::ManifestArgs),
    /// Rebuild the Munki catalogs from pkgsinfo.
    Makecatalogs(cmd_manifest::MakecatalogsArgs),
    /// List, show and revoke devices.
    Device(cmd_device::DeviceArgs),
    /// List, create, show and edit group manifests.
    Group(cmd_group::GroupArgs),
    /// Manage enrollment tokens.
    Token(cmd_token::TokenArgs),
    /// Run a complete local demonstration on loopback: server, package, enrolled agent,
    /// deployment, statistics; everything removed afterwards.
    Demo(cmd_demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut log = cli.log.clone();
    // The demo narrates each step itself; the server's and agent's info lines would bury
    // the story (-v brings them back).
    if matches!(cli.command, Command::Demo(_)) && log.verbose == 0 {
        log.quiet = true;
    }
    log.init();
    finish(run(&cli))
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    tracing::debug!(data = %cli.data.display(), "data directory");
    match &cli.command {
        Command::Serve(args) => cmd_serve::run(&cli.data, args),
        Command::Ca(args) => cmd_ca::run(&cli.data, args),
        Command::Cert(args) => cmd_cert::run(args),
        Command::Package(args) => cmd_package::run(&cli.data, args),
        Command::Manifest(args) => cmd_manifest::run(args, &cli.data),
        Command::Makecatalogs(args) => cmd_manifest::run_makecatalogs(args, &cli.data),
        Command::Device(args) => cmd_device::run(&cli.data, args),
        Command::Group(args) => cmd_group::run(&cli.data, args),
        Command::Token(args) => cmd_token::run(&cli.data, args),
        Command::Demo(args) => cmd_demo::run(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
