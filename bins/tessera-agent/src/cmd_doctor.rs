//! `tessera-agent doctor`: checks a device identity against the device certificate policy.
//!
//! This is the explicit-files mode (`--cert`, `--ca`, …). Checking the identity the agent
//! has stored is added with the keystore work; the flags here stay as they are.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use tessera_certpolicy::{EvidenceFiles, LoadedEvidence, Policy, Report, UnixTime};

/// Arguments of `doctor` (shared in meaning with `tessera-server cert check`).
#[derive(Args, Debug, Clone)]
pub(crate) struct DoctorArgs {
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
    /// The computer name the certificate must carry, exactly (default: what `hostname`
    /// prints).
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
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

/// The computer name as `hostname` prints it (absolute path: no PATH lookup).
fn system_hostname() -> anyhow::Result<String> {
    for program in ["/bin/hostname", "/usr/bin/hostname"] {
        if let Ok(out) = Command::new(program).output()
            && out.status.success()
        {
            let name = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if !name.is_empty() {
                return Ok(name);
            }
        }
    }
    if let Ok(name) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let name = name.trim().to_owned();
        if !name.is_empty() {
            return Ok(name);
        }
    }
    bail!("cannot determine the computer name (no `hostname` program); pass --hostname NAME")
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

/// Loads the files, evaluates them and prints the report; exit status 0 only when no rule
/// fails.
pub(crate) fn evaluate(args: &DoctorArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let computer_name = match &args.hostname {
        Some(name) => name.clone(),
        None => system_hostname()?,
    };
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
    let report = policy.evaluate_evidence(&loaded.evidence(&computer_name, now));
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

/// `tessera-agent doctor`.
pub(crate) fn run(args: &DoctorArgs) -> anyhow::Result<ExitCode> {
    evaluate(args, &mut std::io::stdout().lock())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(dir: &std::path::Path) -> DoctorArgs {
        DoctorArgs {
            cert: dir.join("leaf.pem"),
            key: None,
            ca: vec![dir.join("root.pem")],
            intermediate: vec![],
            crl: vec![],
            hostname: Some("MAC01.local".into()),
            warn_days: 30,
            at: Some("2026-01-01T00:00:00Z".into()),
            json: true,
        }
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = evaluate(&args(dir.path()), &mut Vec::new()).unwrap_err();
        assert!(format!("{err:#}").contains("leaf.pem"), "{err:#}");
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
    fn garbage_certificate_gives_a_failing_json_report() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("leaf.pem"), b"\x30\x03\x02\x01\x00").unwrap();
        std::fs::write(dir.path().join("root.pem"), b"\x30\x03\x02\x01\x00").unwrap();
        let mut out = Vec::new();
        let code = evaluate(&args(dir.path()), &mut out).unwrap();
        assert_eq!(code, ExitCode::FAILURE);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["passed"], false);
        assert_eq!(v["computer_name"], "MAC01.local");
        assert!(
            v["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["rule"] == "structure" && f["outcome"] == "fail")
        );
    }

    /// Runs `openssl` in `dir`; false when it is missing or fails.
    fn openssl(dir: &std::path::Path, args: &[&str]) -> bool {
        Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Root → leaf with CRL, made with the openssl CLI and valid now.
    fn good_chain(dir: &std::path::Path) -> bool {
        std::fs::write(dir.join("index.txt"), "").unwrap();
        std::fs::write(dir.join("crlnumber"), "01\n").unwrap();
        let config = format!(
            "[ca]\ndefault_ca = d\n[d]\ndatabase = {}/index.txt\ncrlnumber = {}/crlnumber\ndefault_md = sha256\ndefault_crl_days = 7\n",
            dir.display(),
            dir.display()
        );
        std::fs::write(dir.join("ca.cnf"), config).unwrap();
        std::fs::write(
            dir.join("leaf.ext"),
            "basicConstraints = critical,CA:false\nkeyUsage = critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage = clientAuth\nsubjectAltName = DNS:MAC01.local\n\
             crlDistributionPoints = URI:http://pki.example/root.crl\n",
        )
        .unwrap();
        let rsa = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"];
        openssl(dir, &[&["genpkey", "-out", "root.key"][..], &rsa].concat())
            && openssl(dir, &[&["genpkey", "-out", "leaf.key"][..], &rsa].concat())
            && openssl(
                dir,
                &[
                    "req",
                    "-x509",
                    "-new",
                    "-key",
                    "root.key",
                    "-subj",
                    "/CN=Doctor Test Root",
                    "-days",
                    "30",
                    "-addext",
                    "basicConstraints=critical,CA:true",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                    "-out",
                    "root.pem",
                ],
            )
            && openssl(
                dir,
                &[
                    "req",
                    "-new",
                    "-key",
                    "leaf.key",
                    "-subj",
                    "/CN=MAC01.local",
                    "-out",
                    "leaf.csr",
                ],
            )
            && openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    "leaf.csr",
                    "-CA",
                    "root.pem",
                    "-CAkey",
                    "root.key",
                    "-set_serial",
                    "4660",
                    "-days",
                    "20",
                    "-extfile",
                    "leaf.ext",
                    "-out",
                    "leaf.pem",
                ],
            )
            && openssl(
                dir,
                &[
                    "ca", "-gencrl", "-config", "ca.cnf", "-cert", "root.pem", "-keyfile",
                    "root.key", "-out", "root.crl",
                ],
            )
    }

    #[test]
    fn good_identity_exits_zero_and_a_wrong_name_exits_one() {
        let dir = tempfile::tempdir().unwrap();
        if !good_chain(dir.path()) {
            println!("SKIPPED: the `openssl` CLI is not available (CI installs it)");
            return;
        }
        let mut args = args(dir.path());
        args.key = Some(dir.path().join("leaf.key"));
        args.crl = vec![dir.path().join("root.crl")];
        args.at = None;
        args.json = false;
        let mut out = Vec::new();
        let code = evaluate(&args, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(code, ExitCode::SUCCESS, "{text}");
        assert!(text.contains("✓ private-key"), "{text}");
        // 20 days left, inside the 30-day window: a warning, not a failure.
        assert!(text.contains("! validity"), "{text}");
        assert!(text.contains("PASS"), "{text}");

        args.hostname = Some("mac01.local".into());
        let mut out = Vec::new();
        assert_eq!(evaluate(&args, &mut out).unwrap(), ExitCode::FAILURE);
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("FAIL: rules broken: subject-name")
        );
    }
}
