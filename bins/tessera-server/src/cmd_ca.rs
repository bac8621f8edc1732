//! `tessera-server ca …`: the device certificate authority in `<data>/ca/` (layout in
//! docs/ca.md). Every decision lives in tessera-ca; this module reads files and flags,
//! and prints.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use tessera_ca::{
    Ca, CaHome, CaMaterial, CaSettings, ComputerName, DeviceCsr, InitOptions, IssuedCertificate,
    KeyAlgorithm, Pkcs12Password, Pkcs12Profile, RandomSerials, RevocationReason, Serial,
    SystemClock,
};
use time::format_description::well_known::Rfc3339;

/// `ca` subcommands.
#[derive(Args, Debug, Clone)]
pub(crate) struct CaArgs {
    #[command(subcommand)]
    command: CaCommand,
}

#[derive(Subcommand, Debug, Clone)]
enum CaCommand {
    /// Create the CA in <data>/ca: a root (RSA-3072 by default), optionally an intermediate
    /// that signs devices, and the first CRLs.
    Init(InitArgs),
    /// Print the CA chain as PEM, issuing certificate first, root last.
    Show(JsonFlag),
    /// Issue a device certificate from a CSR, or with a server-made key as PKCS#12.
    Issue(IssueArgs),
    /// List issued certificates.
    List(JsonFlag),
    /// Revoke a certificate and publish a new CRL.
    Revoke(RevokeArgs),
    /// Print the current CRL as PEM (re-signed first when it is due).
    Crl(CrlArgs),
}

#[derive(Args, Debug, Clone)]
struct JsonFlag {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum KeyChoice {
    /// RSA 3072-bit (default).
    Rsa3072,
    /// RSA 2048-bit, for old switches and RADIUS servers.
    Rsa2048,
    /// ECDSA P-256.
    EcdsaP256,
}

impl From<KeyChoice> for KeyAlgorithm {
    fn from(choice: KeyChoice) -> Self {
        match choice {
            KeyChoice::Rsa3072 => KeyAlgorithm::Rsa3072,
            KeyChoice::Rsa2048 => KeyAlgorithm::Rsa2048,
            KeyChoice::EcdsaP256 => KeyAlgorithm::EcdsaP256,
        }
    }
}

#[derive(Args, Debug, Clone)]
struct InitArgs {
    /// The root's common name.
    #[arg(long, value_name = "CN", default_value = "Tessera Device CA")]
    common_name: String,
    /// CA key type.
    #[arg(long, value_enum, default_value_t = KeyChoice::Rsa3072)]
    key: KeyChoice,
    /// Also make an intermediate that signs devices (the root key then signs only it).
    #[arg(long)]
    intermediate: bool,
    /// Base URL under which the server's plain-HTTP listener serves CRLs, as devices reach
    /// it; certificates point at <BASE>/crl/device-ca.crl.
    #[arg(long, value_name = "BASE", default_value = "http://127.0.0.1:8080")]
    crl_base: String,
    /// Device certificate lifetime in days.
    #[arg(long, value_name = "DAYS", default_value_t = 365)]
    leaf_days: u16,
    /// Use the site's own issuing CA instead of making one: its certificate first, then
    /// the certificates above it up to the root (PEM).
    #[arg(long, value_name = "FILE", requires = "import_key", conflicts_with_all = ["key", "intermediate", "common_name"])]
    import_chain: Option<PathBuf>,
    /// The imported issuing CA's private key (unencrypted PKCS#8, PKCS#1 or SEC1 PEM; the
    /// file must not be readable by group or others).
    #[arg(long, value_name = "FILE", requires = "import_chain")]
    import_key: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug, Clone)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["csr", "generate_key"]))]
struct IssueArgs {
    /// The device's CSR (PEM or DER).
    #[arg(long, value_name = "FILE")]
    csr: Option<PathBuf>,
    /// Make the device's key here (RSA-2048) and write it with the chain as PKCS#12.
    #[arg(long, requires = "pkcs12")]
    generate_key: bool,
    /// The computer name: CN and SAN of the certificate; a CSR must ask for exactly it.
    #[arg(long, value_name = "NAME")]
    name: String,
    /// Where to write the PKCS#12 file (created 0600; never overwritten).
    #[arg(long, value_name = "OUT", requires = "generate_key")]
    pkcs12: Option<PathBuf>,
    /// File holding the PKCS#12 password (first line). Without it a random password is
    /// generated and printed once.
    #[arg(long, value_name = "FILE", requires = "generate_key")]
    password_file: Option<PathBuf>,
    /// Encrypt the PKCS#12 with AES-256 and a SHA-256 MAC instead of 3DES/SHA-1 (Linux and
    /// recent macOS only).
    #[arg(long, requires = "generate_key")]
    modern_pkcs12: bool,
    /// Write the certificate (PEM) here instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug, Clone)]
struct RevokeArgs {
    /// Serial of the certificate, hex (as `ca list` or `openssl x509 -serial` prints it).
    serial: String,
    /// RFC 5280 reason: unspecified, keyCompromise, affiliationChanged, superseded,
    /// cessationOfOperation, certificateHold, privilegeWithdrawn.
    #[arg(long, value_name = "R")]
    reason: String,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug, Clone)]
struct CrlArgs {
    /// Print the root's CRL instead of the issuing CA's (two-tier CAs).
    #[arg(long)]
    root: bool,
    /// Write the CRL (PEM) here instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs a `ca` subcommand against the data directory `data`.
pub(crate) fn run(data: &Path, args: &CaArgs) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    run_with(data, args, &mut out)
}

fn run_with(data: &Path, args: &CaArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let home = CaHome::in_data_dir(data);
    match &args.command {
        CaCommand::Init(a) => init(&home, a, out),
        CaCommand::Show(a) => show(&open(&home)?, a.json, out),
        CaCommand::Issue(a) => issue(&open(&home)?, a, out),
        CaCommand::List(a) => list(&open(&home)?, a.json, out),
        CaCommand::Revoke(a) => revoke(&home, a, out),
        CaCommand::Crl(a) => crl(&home, a, out),
    }?;
    Ok(ExitCode::SUCCESS)
}

fn open(home: &CaHome) -> anyhow::Result<Ca> {
    Ok(home.open(Arc::new(SystemClock), Arc::new(RandomSerials::from_os()))?)
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

fn print_json(out: &mut dyn Write, value: &serde_json::Value) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

fn init(home: &CaHome, args: &InitArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut settings = CaSettings::with_crl_base(&args.crl_base)?;
    settings.leaf_validity_days = args.leaf_days;
    let options = InitOptions {
        common_name: args.common_name.clone(),
        key_algorithm: args.key.into(),
        intermediate: args.intermediate,
        settings,
    };
    let ca = if let (Some(chain), Some(key)) = (&args.import_chain, &args.import_key) {
        tracing::info!(dir = %home.dir().display(), chain = %chain.display(), "importing the CA");
        home.import(
            &CaMaterial::from_files(chain, key)?,
            options.settings,
            Arc::new(SystemClock),
            Arc::new(RandomSerials::from_os()),
        )?
    } else {
        tracing::info!(dir = %home.dir().display(), key = ?options.key_algorithm, "creating the CA");
        home.initialise(
            &options,
            Arc::new(SystemClock),
            Arc::new(RandomSerials::from_os()),
        )?
    };
    if args.json {
        print_json(
            out,
            &json!({
                "dir": home.dir(),
                "chain_pem": ca.chain_pem(),
                "crl_url": ca.settings().crl_url.as_str(),
                "intermediate": ca.chain_der().len() > 1,
                "imported": args.import_chain.is_some(),
            }),
        )
    } else {
        eprintln!(
            "Created the device CA in {} (CRL URL {}); its chain follows.",
            home.dir().display(),
            ca.settings().crl_url.as_str()
        );
        write!(out, "{}", ca.chain_pem())?;
        Ok(())
    }
}

fn show(ca: &Ca, json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    if json {
        print_json(
            out,
            &json!({ "chain_pem": ca.chain_pem(), "settings": ca.settings() }),
        )
    } else {
        write!(out, "{}", ca.chain_pem())?;
        Ok(())
    }
}

fn issue(ca: &Ca, args: &IssueArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let name = ComputerName::new(&args.name)?;
    let mut generated_password = None;
    let (issued, pkcs12_path) = if let Some(csr_path) = &args.csr {
        let bytes = std::fs::read(csr_path)
            .with_context(|| format!("cannot read the CSR {}", csr_path.display()))?;
        let csr = DeviceCsr::parse(&bytes).with_context(|| format!("in {}", csr_path.display()))?;
        (ca.issue_from_csr(&csr, &name)?, None)
    } else {
        let Some(pkcs12_path) = &args.pkcs12 else {
            anyhow::bail!("--generate-key needs --pkcs12 OUT: where to write the key and chain");
        };
        let password = if let Some(path) = &args.password_file {
            read_password(path)?
        } else {
            let password = Pkcs12Password::generate_from_os();
            generated_password = Some(password.clone());
            password
        };
        let profile = if args.modern_pkcs12 {
            Pkcs12Profile::Modern
        } else {
            Pkcs12Profile::Compatible
        };
        // Refuse an existing file before spending a key generation on it.
        let mut file = create_private_file(pkcs12_path)?;
        let (issued, pfx) = match ca.issue_with_new_key(&name, &password, profile) {
            Ok(done) => done,
            Err(e) => {
                drop(file);
                let _ = std::fs::remove_file(pkcs12_path);
                return Err(e.into());
            }
        };
        file.write_all(&pfx)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write {}", pkcs12_path.display()))?;
        (issued, Some(pkcs12_path.clone()))
    };
    tracing::info!(serial = %issued.serial, name = %issued.computer_name, "issued a device certificate");
    if let Some(path) = &args.out {
        std::fs::write(path, &issued.certificate_pem)
            .with_context(|| format!("cannot write the certificate to {}", path.display()))?;
    }
    if args.json {
        let mut value = record_json(&issued);
        value["pkcs12"] = json!(pkcs12_path);
        value["certificate_file"] = json!(args.out);
        if let Some(pw) = &generated_password {
            value["pkcs12_password"] = json!(pw.expose());
        }
        return print_json(out, &value);
    }
    if let Some(pw) = &generated_password {
        // Shown once: it is not stored anywhere.
        writeln!(out, "PKCS#12 password (shown once): {}", pw.expose())?;
    }
    if args.out.is_none() {
        write!(out, "{}", issued.certificate_pem)?;
    }
    eprintln!(
        "Issued serial {} to {}.",
        issued.serial, issued.computer_name
    );
    Ok(())
}

fn read_password(path: &Path) -> anyhow::Result<Pkcs12Password> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the password file {}", path.display()))?;
    let first_line = text.lines().next().unwrap_or_default();
    Pkcs12Password::new(first_line.to_owned())
        .with_context(|| format!("in the password file {}", path.display()))
}

fn create_private_file(path: &Path) -> anyhow::Result<std::fs::File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| {
            format!(
                "cannot create {} (it must not exist yet; Tessera never overwrites a key file)",
                path.display()
            )
        })
}

fn record_json(issued: &IssuedCertificate) -> serde_json::Value {
    json!({
        "serial": issued.serial,
        "computer_name": issued.computer_name,
        "not_before": rfc3339(issued.not_before),
        "not_after": rfc3339(issued.not_after),
        "certificate_pem": issued.certificate_pem,
        "revoked": issued.revoked.map(|r| json!({ "at": rfc3339(r.at), "reason": r.reason })),
    })
}

fn list(ca: &Ca, json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let all = ca.ledger().all()?;
    if json {
        return print_json(out, &json!(all.iter().map(record_json).collect::<Vec<_>>()));
    }
    for c in &all {
        let status = match c.revoked {
            Some(r) => format!("revoked {} ({})", rfc3339(r.at), r.reason),
            None => "valid".to_owned(),
        };
        writeln!(
            out,
            "{}  {}  until {}  {}",
            c.serial,
            c.computer_name,
            rfc3339(c.not_after),
            status
        )?;
    }
    Ok(())
}

fn revoke(home: &CaHome, args: &RevokeArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let serial = Serial::from_hex(&args.serial)?;
    let reason: RevocationReason = args.reason.parse()?;
    let ca = open(home)?;
    let revoked = ca.revoke(&serial, reason)?;
    // Publish at once, so the revocation takes effect without waiting for the schedule.
    let crls = home.current_crls(&ca)?;
    tracing::info!(serial = %serial, %reason, crl_number = crls.issuing.number(), "revoked");
    if args.json {
        let mut value = record_json(&revoked);
        value["crl_number"] = json!(crls.issuing.number());
        return print_json(out, &value);
    }
    writeln!(
        out,
        "Revoked {} ({}, {}); CRL number {} published.",
        revoked.serial,
        revoked.computer_name,
        reason,
        crls.issuing.number()
    )?;
    Ok(())
}

fn crl(home: &CaHome, args: &CrlArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let ca = open(home)?;
    let crls = home.current_crls(&ca)?;
    let crl = if args.root {
        crls.root.as_ref().context(
            "this CA has no separate root CRL (single-tier, or the root key is not held here)",
        )?
    } else {
        &crls.issuing
    };
    if let Some(path) = &args.out {
        std::fs::write(path, crl.pem())
            .with_context(|| format!("cannot write the CRL to {}", path.display()))?;
    }
    if args.json {
        return print_json(
            out,
            &json!({
                "number": crl.number(),
                "this_update": rfc3339(crl.this_update()),
                "next_update": rfc3339(crl.next_update()),
                "revoked": crl.revoked_serials(),
                "crl_pem": crl.pem(),
            }),
        );
    }
    if args.out.is_none() {
        write!(out, "{}", crl.pem())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Harness {
        #[command(subcommand)]
        ca: Wrapped,
    }

    #[derive(clap::Subcommand)]
    enum Wrapped {
        Ca(CaArgs),
    }

    fn run_cli(data: &Path, argv: &[&str]) -> anyhow::Result<String> {
        let Harness {
            ca: Wrapped::Ca(args),
        } = Harness::try_parse_from(
            std::iter::once("t")
                .chain(std::iter::once("ca"))
                .chain(argv.iter().copied()),
        )?;
        let mut out = Vec::new();
        run_with(data, &args, &mut out)?;
        Ok(String::from_utf8(out)?)
    }

    /// A CSR made by the openssl CLI, or `None` (with a message) where it is not installed.
    fn csr_file(dir: &Path, cn: &str) -> Option<PathBuf> {
        let path = dir.join(format!("{cn}.csr"));
        let made = std::process::Command::new("openssl")
            .args([
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
            ])
            .arg("-keyout")
            .arg(dir.join(format!("{cn}.key")))
            .args(["-subj", &format!("/CN={cn}")])
            .arg("-out")
            .arg(&path)
            .output()
            .is_ok_and(|o| o.status.success());
        if !made {
            eprintln!("SKIPPED: the openssl CLI is not installed; it makes the test CSR");
        }
        made.then_some(path)
    }

    #[test]
    fn init_issue_list_revoke_crl_round_trip() {
        let data = tempfile::tempdir().unwrap();
        let d = data.path();
        let chain = run_cli(d, &["init", "--key", "ecdsa-p256", "--intermediate"]).unwrap();
        assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
        assert!(
            run_cli(d, &["init", "--key", "ecdsa-p256"])
                .unwrap_err()
                .to_string()
                .contains("already exists")
        );
        assert_eq!(run_cli(d, &["show"]).unwrap(), chain);

        let Some(csr) = csr_file(d, "MAC01.local") else {
            return;
        };
        let csr_arg = csr.to_str().unwrap();
        let cert = run_cli(d, &["issue", "--csr", csr_arg, "--name", "MAC01.local"]).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
        let err = run_cli(d, &["issue", "--csr", csr_arg, "--name", "MAC02.local"]).unwrap_err();
        assert!(format!("{err:#}").contains("MAC02.local"), "{err:#}");

        let issued: serde_json::Value = serde_json::from_str(
            &run_cli(
                d,
                &["issue", "--csr", csr_arg, "--name", "MAC01.local", "--json"],
            )
            .unwrap(),
        )
        .unwrap();
        let serial = issued["serial"].as_str().unwrap().to_owned();
        let listed = run_cli(d, &["list"]).unwrap();
        assert_eq!(listed.lines().count(), 2);
        assert!(listed.contains(&serial));

        let before: serde_json::Value =
            serde_json::from_str(&run_cli(d, &["crl", "--json"]).unwrap()).unwrap();
        let revoked = run_cli(d, &["revoke", &serial, "--reason", "key-compromise"]).unwrap();
        assert!(revoked.contains("Revoked"), "{revoked}");
        let after: serde_json::Value =
            serde_json::from_str(&run_cli(d, &["crl", "--json"]).unwrap()).unwrap();
        assert!(after["number"].as_u64() > before["number"].as_u64());
        assert_eq!(after["revoked"], json!([serial]));
        assert!(
            run_cli(d, &["crl"])
                .unwrap()
                .starts_with("-----BEGIN X509 CRL-----")
        );
        assert!(
            run_cli(d, &["crl", "--root"])
                .unwrap()
                .starts_with("-----BEGIN X509 CRL-----")
        );
        let again = run_cli(d, &["revoke", &serial, "--reason", "keyCompromise"]).unwrap_err();
        assert!(again.to_string().contains("already revoked"), "{again}");
        assert!(run_cli(d, &["revoke", "zz", "--reason", "keyCompromise"]).is_err());
        assert!(run_cli(d, &["revoke", &serial, "--reason", "stolen"]).is_err());
    }

    #[test]
    fn generated_keys_go_to_a_private_pkcs12_with_the_given_or_a_printed_password() {
        use std::os::unix::fs::PermissionsExt;
        let data = tempfile::tempdir().unwrap();
        let d = data.path();
        run_cli(d, &["init", "--key", "ecdsa-p256"]).unwrap();
        let pw_file = d.join("pw");
        std::fs::write(&pw_file, "from-a-file\n").unwrap();
        let p12 = d.join("device.p12");
        let cert_file = d.join("device.pem");
        let printed = run_cli(
            d,
            &[
                "issue",
                "--generate-key",
                "--name",
                "WORKGROUP-PC",
                "--pkcs12",
                p12.to_str().unwrap(),
                "--password-file",
                pw_file.to_str().unwrap(),
                "--out",
                cert_file.to_str().unwrap(),
            ],
        )
        .unwrap();
        assert!(printed.is_empty(), "certificate went to --out: {printed}");
        assert_eq!(
            std::fs::metadata(&p12).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let identity = tessera_ca::pkcs12::read(
            &std::fs::read(&p12).unwrap(),
            &Pkcs12Password::new("from-a-file".into()).unwrap(),
        )
        .unwrap();
        assert_eq!(identity.friendly_name, "WORKGROUP-PC");
        assert_eq!(identity.certificates.len(), 2);
        assert!(
            std::fs::read_to_string(&cert_file)
                .unwrap()
                .contains("BEGIN CERTIFICATE")
        );

        // Never overwrites.
        let again = run_cli(
            d,
            &[
                "issue",
                "--generate-key",
                "--name",
                "WORKGROUP-PC",
                "--pkcs12",
                p12.to_str().unwrap(),
                "--password-file",
                pw_file.to_str().unwrap(),
            ],
        );
        assert!(again.unwrap_err().to_string().contains("never overwrites"));

        // Without a password file, one is generated and printed once.
        let p12b = d.join("b.p12");
        let json: serde_json::Value = serde_json::from_str(
            &run_cli(
                d,
                &[
                    "issue",
                    "--generate-key",
                    "--name",
                    "PC2",
                    "--pkcs12",
                    p12b.to_str().unwrap(),
                    "--json",
                ],
            )
            .unwrap(),
        )
        .unwrap();
        let password = json["pkcs12_password"].as_str().unwrap();
        assert_eq!(password.len(), 32);
        tessera_ca::pkcs12::read(
            &std::fs::read(&p12b).unwrap(),
            &Pkcs12Password::new(password.into()).unwrap(),
        )
        .unwrap();

        // An empty password file is refused.
        std::fs::write(&pw_file, "\n").unwrap();
        let err = run_cli(
            d,
            &[
                "issue",
                "--generate-key",
                "--name",
                "PC3",
                "--pkcs12",
                d.join("c.p12").to_str().unwrap(),
                "--password-file",
                pw_file.to_str().unwrap(),
            ],
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("password is empty"), "{err:#}");
    }

    #[test]
    fn a_sites_issuing_ca_is_imported_with_its_chain() {
        let site = tempfile::tempdir().unwrap();
        let chain = run_cli(
            site.path(),
            &["init", "--key", "ecdsa-p256", "--intermediate"],
        )
        .unwrap();
        let chain_file = site.path().join("chain.pem");
        std::fs::write(&chain_file, &chain).unwrap();
        let key_file = site.path().join("ca").join("issuing.key");

        let data = tempfile::tempdir().unwrap();
        let (chain_arg, key_arg) = (chain_file.to_str().unwrap(), key_file.to_str().unwrap());
        let conflicting = run_cli(
            data.path(),
            &[
                "init",
                "--import-chain",
                chain_arg,
                "--import-key",
                key_arg,
                "--intermediate",
            ],
        );
        assert!(conflicting.is_err(), "an import makes no intermediate");
        let json: serde_json::Value = serde_json::from_str(
            &run_cli(
                data.path(),
                &[
                    "init",
                    "--import-chain",
                    chain_arg,
                    "--import-key",
                    key_arg,
                    "--json",
                ],
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(json["imported"], json!(true));
        assert_eq!(run_cli(data.path(), &["show"]).unwrap(), chain);
        assert!(
            run_cli(data.path(), &["crl", "--root"]).is_err(),
            "the site keeps its root key and root CRL"
        );
        assert!(!data.path().join("ca").join("root.key").exists());
    }

    #[test]
    fn commands_on_a_missing_ca_say_to_run_init() {
        let data = tempfile::tempdir().unwrap();
        let err = run_cli(data.path(), &["show"]).unwrap_err();
        assert!(err.to_string().contains("ca init"), "{err}");
        assert!(
            run_cli(data.path(), &["issue", "--name", "x"]).is_err(),
            "a CSR or --generate-key is required"
        );
    }
}
