//! `tessera-server cert check`: checks a certificate against the device certificate
//! policy, with the same engine and flags as `tessera-agent doctor` (whose hostname
//! default makes less sense on a server, so `--hostname` names the device here).

use std::process::ExitCode;

use clap::{Args, Subcommand};
use tessera_cli::policy_check::{PolicyCheckArgs, check};

/// `cert` subcommands.
#[derive(Args, Debug, Clone)]
pub(crate) struct CertArgs {
    #[command(subcommand)]
    command: CertCommand,
}

#[derive(Subcommand, Debug, Clone)]
enum CertCommand {
    /// Evaluate a device certificate, its chain and CRLs against the device policy;
    /// exit status 0 only when no rule fails.
    Check(CheckArgs),
}

/// Arguments of `cert check` (the flags of `tessera-agent doctor`).
#[derive(Args, Debug, Clone)]
pub(crate) struct CheckArgs {
    #[command(flatten)]
    evidence: PolicyCheckArgs,
    /// The computer name the certificate must carry, exactly.
    #[arg(long, value_name = "NAME")]
    hostname: String,
}

/// `tessera-server cert …`.
pub(crate) fn run(args: &CertArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        CertCommand::Check(args) => check(
            &args.evidence,
            &args.hostname,
            &mut std::io::stdout().lock(),
        ),
    }
}
