//! `tessera-server`: parses the command line and hands each subcommand to the crates that
//! do the work. No decision is made here.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tessera_cli::{LogArgs, finish, not_yet_available};

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

/// Arguments of a subcommand that has not landed yet; accepted so that `--help` shows the
/// command, refused with a clear error when run.
#[derive(clap::Args, Debug)]
struct Pending {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (initialises an empty data directory first).
    Serve(Pending),
    /// Manage the device certificate authority (init, show, issue, revoke, crl).
    Ca(Pending),
    /// Check a certificate against the device policy.
    Cert(Pending),
    /// Build, list, show and delete packages.
    Package(Pending),
    /// Show and resolve Munki manifests.
    Manifest(Pending),
    /// Rebuild the Munki catalogs from pkgsinfo.
    Makecatalogs(Pending),
    /// List, show and revoke devices.
    Device(Pending),
    /// Manage group manifests.
    Group(Pending),
    /// Manage enrollment tokens.
    Token(Pending),
    /// Run a complete local demonstration on loopback.
    Demo(Pending),
}

impl Command {
    /// The subcommand's name as typed, and the issue that brings it.
    fn pending(&self) -> (&'static str, u32) {
        match self {
            Self::Serve(_) => ("serve", 9),
            Self::Ca(_) => ("ca", 4),
            Self::Cert(_) => ("cert", 3),
            Self::Package(_) => ("package", 6),
            Self::Manifest(_) => ("manifest", 5),
            Self::Makecatalogs(_) => ("makecatalogs", 5),
            Self::Device(_) => ("device", 9),
            Self::Group(_) => ("group", 9),
            Self::Token(_) => ("token", 9),
            Self::Demo(_) => ("demo", 11),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.log.init();
    finish(run(&cli))
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    tracing::debug!(data = %cli.data.display(), "data directory");
    let (name, issue) = cli.command.pending();
    Err(not_yet_available(name, issue))
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
