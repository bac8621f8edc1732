//! `tessera-server cert check`: checks a certificate against the device certificate
//! policy, with the same engine and flags as `tessera-agent doctor` (whose hostname
//! default makes less sense on a server, so `--hostname` names the device here).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use tessera_certpolicy::{EvidenceFiles, LoadedEvidence, Policy, Report, UnixTime};

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
    /// Device certificate, PEM or DER. Further certificates in a PEM file are used as
    /// intermediates.
    #[arg(long, value_name = "FILE")]
    pub cert: PathBuf,
    /// Private key of the device certificate, to check that it belongs to it (PEM or DER;
    /// PKCS#8, PKCS#1 or SEC1; unencrypted).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Trusted root certificate(s). Only self-signed roots can end a path.
    #[arg(long = "ca", value_name = "FILE", required = true)]
    pub ca: Vec<PathBuf>,
    /// Intermediate CA certificate(s) the path may use.
    #[arg(long, value_name = "FILE")]
    pub intermediate: Vec<PathBuf>,
    /// CRL file(s); give the CRL of every issuing CA (the leaf's and each intermediate's).
    #[arg(long, value_name = "FILE")]
    pub crl: Vec<PathBuf>,
    /// The computer name the certificate must carry, exactly.
    #[arg(long, value_name = "NAME")]
    pub hostname: String,
    /// Warn when a certificate expires within this many days.
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    pub warn_days: u64,
    /// Evaluate at this time (RFC 3339, e.g. 2026-01-01T00:00:00Z) instead of now.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Print the report as JSON (schema in docs/certpolicy.md).
    #[arg(long)]
    pub json: bool,
}

fn evaluation_time(at: Option<&str>) -> anyhow::Result<UnixTime> {
    match at {
        None => Ok(UnixTime::now()),
        Some(text) => {
            let t =
                time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                    .with_context(|| {
                    format!("--at {text:?} is not an RFC 3339 time such as 2026-01-01T00:00:00Z")
                })?;
            let secs = u64::try_from(t.unix_timestamp())
                .with_context(|| format!("--at {text:?} is before 1970"))?;
            Ok(UnixTime::since_unix_epoch(Duration::from_secs(secs)))
        }
    }
}

/// Loads the files, evaluates them and prints the report.
fn check(args: &CheckArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let now = evaluation_time(args.at.as_deref())?;
    let loaded = LoadedEvidence::from_files(&EvidenceFiles {
        cert: &args.cert,
        key: args.key.as_deref(),
        trust_anchors: &args.ca,
        intermediates: &args.intermediate,
        crls: &args.crl,
    })?;
    let mut policy = Policy::default();
    policy.expiry_warning = Duration::from_secs(args.warn_days.saturating_mul(86_400));
    let report = policy.evaluate_evidence(&loaded.evidence(&args.hostname, now));
    print_report(&report, args.json, out)?;
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_report(report: &Report, json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    if json {
        serde_json::to_writer_pretty(&mut *out, report)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "Device certificate policy for {:?}:",
            report.computer_name()
        )?;
        write!(out, "{report}")?;
    }
    Ok(())
}

/// `tessera-server cert …`.
pub(crate) fn run(args: &CertArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        CertCommand::Check(check_args) => check(check_args, &mut std::io::stdout().lock()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_certificate_fails_with_a_readable_report() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("leaf.der"), b"\x30\x00").unwrap();
        std::fs::write(dir.path().join("root.der"), b"\x30\x00").unwrap();
        let args = CheckArgs {
            cert: dir.path().join("leaf.der"),
            key: None,
            ca: vec![dir.path().join("root.der")],
            intermediate: vec![],
            crl: vec![],
            hostname: "MAC01.local".into(),
            warn_days: 30,
            at: Some("2026-01-01T00:00:00Z".into()),
            json: false,
        };
        let mut out = Vec::new();
        assert_eq!(check(&args, &mut out).unwrap(), ExitCode::FAILURE);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("✗ structure"), "{text}");
        assert!(text.contains("FAIL: rules broken: structure"), "{text}");
    }
}
