//! `tessera-agent`: parses the command line and hands each subcommand to the crates that
//! do the work. No decision is made here.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tessera_cli::{LogArgs, finish};

mod cmd_config;
mod cmd_doctor;
mod cmd_enroll;
mod cmd_install;
mod cmd_renew;
mod cmd_run;
mod cmd_schedule;
mod cmd_status;

/// The Tessera device agent: enrolls this machine, checks in, downloads packages on the
/// schedule, installs them exactly once and reports.
#[derive(Parser, Debug)]
#[command(name = "tessera-agent", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Agent configuration file.
    #[arg(
        long,
        global = true,
        env = "TESSERA_AGENT_CONFIG",
        default_value = "/etc/tessera/agent.toml"
    )]
    config: PathBuf,
    #[command(flatten)]
    log: LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Enroll this device with a server and store its identity.
    Enroll(cmd_enroll::EnrollArgs),
    /// Renew the device certificate now, with the current one.
    Renew(cmd_renew::RenewArgs),
    /// Check in, download and install (service mode; `--once` for one pass).
    Run(cmd_run::RunArgs),
    /// Show enrollment, server and package states.
    Status(cmd_status::StatusArgs),
    /// Check the stored identity, CRL, server reachability, clock and permissions.
    Doctor(cmd_doctor::DoctorArgs),
    /// Read and edit the agent configuration in place.
    Config(cmd_config::ConfigArgs),
    /// Install or upgrade the agent as a system service.
    Install(cmd_install::InstallArgs),
    /// Remove the service, configuration and identity.
    Uninstall(cmd_install::UninstallArgs),
    /// Simulate the fragment download schedule.
    Schedule(cmd_schedule::ScheduleArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.log.init();
    finish(run(&cli))
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    tracing::debug!(config = %cli.config.display(), "configuration file");
    match &cli.command {
        Command::Enroll(args) => cmd_enroll::run(&cli.config, args),
        Command::Renew(args) => cmd_renew::run(&cli.config, args),
        Command::Run(args) => cmd_run::execute(&cli.config, args),
        Command::Status(args) => cmd_status::run(&cli.config, args),
        Command::Doctor(args) => cmd_doctor::run(&cli.config, args),
        Command::Config(args) => cmd_config::run(&cli.config, args),
        Command::Install(args) => cmd_install::install(&cli.config, args),
        Command::Uninstall(args) => cmd_install::uninstall(&cli.config, args),
        Command::Schedule(args) => cmd_schedule::run(args),
    }
}

/// The agent works one step at a time: one thread is enough and keeps the footprint small.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
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
