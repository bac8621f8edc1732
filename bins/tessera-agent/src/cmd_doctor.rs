//! `tessera-agent doctor`: is this device able to work?
//!
//! Without flags it checks what the agent has stored (permissions, enrollment, the identity
//! against the device certificate policy with the CRLs fetched from their distribution
//! points, each server over mTLS, the clock). With `--cert`/`--ca`/… it checks those files
//! instead, exactly as `tessera-server cert check` does.

use std::io::Write;

use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::bail;
use clap::Args;
use tessera_agent::config::AgentConfig;
use tessera_agent::doctor::{Verdict, diagnose};
use tessera_cli::policy_check::{self, PolicyCheckArgs};

/// Arguments of `doctor` (shared in meaning with `tessera-server cert check`).
#[derive(Args, Debug, Clone)]
pub(crate) struct DoctorArgs {
    /// With --cert: check these files instead of the stored identity.
    #[command(flatten)]
    pub evidence: PolicyCheckArgs,
    /// The computer name the certificate must carry, exactly (default: what `hostname`
    /// prints).
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
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

/// Loads the files, evaluates them and prints the report; exit status 0 only when no rule
/// fails.
pub(crate) fn evaluate(
    evidence: &PolicyCheckArgs,
    hostname: Option<&str>,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let computer_name = match hostname {
        Some(name) => name.to_owned(),
        None => system_hostname()?,
    };
    policy_check::check(evidence, &computer_name, out)
}

/// `tessera-agent doctor`.
pub(crate) fn run(config_path: &Path, args: &DoctorArgs) -> anyhow::Result<ExitCode> {
    if args.evidence.cert.is_some() {
        return evaluate(
            &args.evidence,
            args.hostname.as_deref(),
            &mut std::io::stdout().lock(),
        );
    }
    let mut config = AgentConfig::load(config_path)?;
    if let Some(name) = &args.hostname {
        config.device.hostname = Some(name.clone());
    }
    let diagnosis = crate::runtime()?.block_on(diagnose(&config));
    let mut out = std::io::stdout().lock();
    let code = if diagnosis.healthy() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
    if args.evidence.json {
        serde_json::to_writer_pretty(&mut out, &diagnosis)?;
        writeln!(out)?;
        return Ok(code);
    }
    for check in &diagnosis.checks {
        let mark = match check.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        };
        writeln!(out, "{mark} {:<20} {}", check.name, check.detail)?;
    }
    if let Some(report) = &diagnosis.policy
        && !report.passed()
    {
        writeln!(out, "\n{report}")?;
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(args: &DoctorArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
        evaluate(&args.evidence, args.hostname.as_deref(), out)
    }

    fn args(dir: &std::path::Path) -> DoctorArgs {
        DoctorArgs {
            evidence: PolicyCheckArgs {
                cert: Some(dir.join("leaf.pem")),
                key: None,
                ca: vec![dir.join("root.pem")],
                intermediate: vec![],
                crl: vec![],
                warn_days: None,
                at: Some("2026-01-01T00:00:00Z".into()),
                json: true,
            },
            hostname: Some("MAC01.local".into()),
        }
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = files(&args(dir.path()), &mut Vec::new()).unwrap_err();
        assert!(format!("{err:#}").contains("leaf.pem"), "{err:#}");
    }

    #[test]
    fn garbage_certificate_gives_a_failing_json_report() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("leaf.pem"), b"\x30\x03\x02\x01\x00").unwrap();
        std::fs::write(dir.path().join("root.pem"), b"\x30\x03\x02\x01\x00").unwrap();
        let mut out = Vec::new();
        let code = files(&args(dir.path()), &mut out).unwrap();
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
        args.evidence.key = Some(dir.path().join("leaf.key"));
        args.evidence.crl = vec![dir.path().join("root.crl")];
        args.evidence.at = None;
        args.evidence.json = false;
        let mut out = Vec::new();
        let code = files(&args, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(code, ExitCode::SUCCESS, "{text}");
        assert!(text.contains("✓ private-key"), "{text}");
        // 20 days left, inside the 30-day window: a warning, not a failure.
        assert!(text.contains("! validity"), "{text}");
        assert!(text.contains("PASS"), "{text}");

        args.hostname = Some("mac01.local".into());
        let mut out = Vec::new();
        assert_eq!(files(&args, &mut out).unwrap(), ExitCode::FAILURE);
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("FAIL: rules broken: subject-name")
        );
    }
}
