//! Plumbing shared by the `tessera-server` and `tessera-agent` commands.
//!
//! Both binaries are thin front ends (the decisions live in the domain crates), but they
//! should feel like one tool: the same `-v/--verbose`, `-q/--quiet` and `--log-format`
//! flags, logs on stderr so that stdout stays clean for PEM, JSON and reports, and the same
//! way of saying that something went wrong. [`policy_check`] is the certificate-policy check
//! both offer (`tessera-agent doctor`, `tessera-server cert check`).
//!
//! ```
//! use clap::Parser;
//! use tessera_cli::LogArgs;
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     log: LogArgs,
//! }
//!
//! let cli = Cli::parse_from(["tool", "-vv", "--log-format", "json"]);
//! assert_eq!(cli.log.level(), tracing::Level::TRACE);
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod policy_check;

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use tracing::Level;

/// How log lines are written to stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One readable line per event (the default).
    #[default]
    Human,
    /// One JSON object per line, for log shippers.
    Json,
}

/// The logging flags every Tessera command accepts.
#[derive(Args, Clone, Debug, Default)]
pub struct LogArgs {
    /// More detail in logs: -v for debug, -vv for trace.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only warnings and errors in logs.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true)]
    pub log_format: LogFormat,
}

impl LogArgs {
    /// The most detailed level these flags let through.
    pub fn level(&self) -> Level {
        match (self.quiet, self.verbose) {
            (true, _) => Level::WARN,
            (false, 0) => Level::INFO,
            (false, 1) => Level::DEBUG,
            (false, _) => Level::TRACE,
        }
    }

    /// Installs the global tracing subscriber. `RUST_LOG`, when set, overrides the level
    /// for fine-grained filters (`RUST_LOG=tessera_server=trace`).
    pub fn init(&self) {
        use tracing_subscriber::EnvFilter;
        let filter = EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new(self.level().as_str().to_ascii_lowercase()));
        // Colours only for a person at a terminal, never into files or journals.
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr);
        // A second init (tests, embedding) keeps the first subscriber: not an error.
        let _ = match self.log_format {
            LogFormat::Human => builder.try_init(),
            LogFormat::Json => builder.json().try_init(),
        };
    }
}

/// The error for a subcommand whose capability has not landed yet. It never pretends to
/// work: it says what is missing and where that work is tracked.
pub fn not_yet_available(command: &str, issue: u32) -> anyhow::Error {
    anyhow::anyhow!(
        "`{command}` is not yet available in this build of Tessera (tracked in issue #{issue})"
    )
}

/// Runs a command body and turns its outcome into a process exit code: errors are printed
/// on stderr with their whole cause chain and exit with status 1.
pub fn finish(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        log: LogArgs,
    }

    #[test]
    fn levels_follow_flags() {
        let level = |args: &[&str]| Cli::parse_from(args).log.level();
        assert_eq!(level(&["t"]), Level::INFO);
        assert_eq!(level(&["t", "-v"]), Level::DEBUG);
        assert_eq!(level(&["t", "-vvv"]), Level::TRACE);
        assert_eq!(level(&["t", "-q"]), Level::WARN);
    }

    #[test]
    fn quiet_and_verbose_conflict() {
        assert!(Cli::try_parse_from(["t", "-q", "-v"]).is_err());
    }

    #[test]
    fn not_yet_available_names_the_issue() {
        let message = not_yet_available("serve", 9).to_string();
        assert!(
            message.contains("`serve`") && message.contains("#9"),
            "{message}"
        );
    }
}
