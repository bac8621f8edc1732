//! The certificate-policy check both commands offer (`tessera-agent doctor`,
//! `tessera-server cert check`): the same files, the same engine, the same report. Only the
//! computer name differs — the agent defaults to its own host name, the server is told.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use tessera_certpolicy::{EvidenceFiles, LoadedEvidence, Policy, Report, UnixTime};

/// The evidence and output flags.
#[derive(Args, Debug, Clone)]
pub struct PolicyCheckArgs {
    /// Device certificate, PEM or DER. Further certificates in a PEM file are used as
    /// intermediates.
    /// Required; optional at the parser so that `tessera-agent doctor` can check its stored
    /// identity when no file is given.
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// Private key of the device certificate, to check that it belongs to it (PEM or DER;
    /// PKCS#8, PKCS#1 or SEC1; unencrypted).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Trusted root certificate(s). Only self-signed roots can end a path.
    #[arg(long = "ca", value_name = "FILE")]
    pub ca: Vec<PathBuf>,
    /// Intermediate CA certificate(s) the path may use.
    #[arg(long, value_name = "FILE")]
    pub intermediate: Vec<PathBuf>,
    /// CRL file(s); give the CRL of every issuing CA (the leaf's and each intermediate's).
    #[arg(long, value_name = "FILE")]
    pub crl: Vec<PathBuf>,
    /// Warn when a certificate expires within this many days [default: 30].
    // No clap default: `tessera-agent doctor` takes these flags as an optional group, and a
    // default would make the group always present.
    #[arg(long, value_name = "DAYS")]
    pub warn_days: Option<u64>,
    /// Evaluate at this time (RFC 3339, e.g. 2026-01-01T00:00:00Z) instead of now.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Print the report as JSON (schema in docs/certpolicy.md).
    #[arg(long)]
    pub json: bool,
}

/// `--at` as a time, or now.
pub fn evaluation_time(at: Option<&str>) -> anyhow::Result<UnixTime> {
    let Some(text) = at else {
        return Ok(UnixTime::now());
    };
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .with_context(|| {
            format!("--at {text:?} is not an RFC 3339 time such as 2026-01-01T00:00:00Z")
        })?;
    let secs = u64::try_from(t.unix_timestamp())
        .with_context(|| format!("--at {text:?} is before 1970"))?;
    Ok(UnixTime::since_unix_epoch(Duration::from_secs(secs)))
}

/// Loads the files, evaluates them for `computer_name` and prints the report to `out`;
/// exit status 0 only when no rule fails.
pub fn check(
    args: &PolicyCheckArgs,
    computer_name: &str,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let now = evaluation_time(args.at.as_deref())?;
    let cert = args
        .cert
        .as_deref()
        .context("give the device certificate with --cert FILE")?;
    anyhow::ensure!(
        !args.ca.is_empty(),
        "give the trusted root certificate(s) with --ca FILE"
    );
    let loaded = LoadedEvidence::from_files(&EvidenceFiles {
        cert,
        key: args.key.as_deref(),
        trust_anchors: &args.ca,
        intermediates: &args.intermediate,
        crls: &args.crl,
    })?;
    let mut policy = Policy::default();
    policy.expiry_warning =
        Duration::from_secs(args.warn_days.unwrap_or(30).saturating_mul(86_400));
    let report = policy.evaluate_evidence(&loaded.evidence(computer_name, now));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(dir: &std::path::Path, json: bool) -> PolicyCheckArgs {
        PolicyCheckArgs {
            cert: Some(dir.join("leaf.der")),
            key: None,
            ca: vec![dir.join("root.der")],
            intermediate: vec![],
            crl: vec![],
            warn_days: None,
            at: Some("2026-01-01T00:00:00Z".into()),
            json,
        }
    }

    #[test]
    fn bad_time_is_a_clear_error() {
        let err = evaluation_time(Some("yesterday")).unwrap_err();
        assert!(format!("{err:#}").contains("RFC 3339"));
        assert_eq!(
            evaluation_time(Some("2026-01-01T00:00:00Z"))
                .unwrap()
                .as_secs(),
            1_767_225_600
        );
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = check(&args(dir.path(), false), "MAC01.local", &mut Vec::new()).unwrap_err();
        assert!(format!("{err:#}").contains("leaf.der"), "{err:#}");
    }

    #[test]
    fn garbage_certificate_fails_in_text_and_json() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("leaf.der"), b"\x30\x03\x02\x01\x00").unwrap();
        std::fs::write(dir.path().join("root.der"), b"\x30\x03\x02\x01\x00").unwrap();
        let mut text = Vec::new();
        assert_eq!(
            check(&args(dir.path(), false), "MAC01.local", &mut text).unwrap(),
            ExitCode::FAILURE
        );
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains("✗ structure") && text.contains("FAIL: rules broken: structure"),
            "{text}"
        );
        let mut json = Vec::new();
        assert_eq!(
            check(&args(dir.path(), true), "MAC01.local", &mut json).unwrap(),
            ExitCode::FAILURE
        );
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            (v["passed"].as_bool(), v["computer_name"].as_str()),
            (Some(false), Some("MAC01.local"))
        );
    }
}
