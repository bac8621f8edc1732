//! The `openssl` CLI (3.x) as the oracle: it must accept the chains we issue and reject
//! revoked ones, read every PKCS#12 we write without `-legacy` and see 3DES and a SHA-1 MAC,
//! and write OpenSSL-3-default PKCS#12 files we can read. Skipped (with a message) when
//! `openssl` is not installed; CI installs it.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{NOW, fixture};
use tessera_ca::{
    CaError, ComputerName, DeviceCsr, KeyAlgorithm, Pkcs12Password, Pkcs12Profile,
    RevocationReason, pkcs12,
};
use x509_parser::prelude::{FromDer, X509Certificate};

const PASSWORD_ENV: &str = "TESSERA_TEST_PFX_PASSWORD";

fn openssl_available() -> bool {
    tessera_testkit::tool("openssl", "the OpenSSL oracle tests")
}

fn openssl(dir: &Path, args: &[&str], password: Option<&Pkcs12Password>) -> Output {
    let mut command = Command::new("openssl");
    command.current_dir(dir).args(args);
    if let Some(pw) = password {
        // Passwords go through the environment, never argv.
        command.env(PASSWORD_ENV, pw.expose());
    }
    command.output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) {
    std::fs::write(dir.join(name), contents).unwrap();
}

/// `openssl verify` at the fixture's time, with every CA CRL.
fn verify(dir: &Path, two_tier: bool, at: i64) -> Output {
    let at = at.to_string();
    let mut args = vec![
        "verify",
        "-purpose",
        "sslclient",
        "-auth_level",
        "2",
        "-crl_check_all",
        "-attime",
        &at,
        "-CAfile",
        "root.pem",
        "-CRLfile",
        "crl.pem",
    ];
    if two_tier {
        args.extend(["-untrusted", "int.pem", "-CRLfile", "root-crl.pem"]);
    }
    args.push("leaf.pem");
    openssl(dir, &args, None)
}

fn openssl_csr(dir: &Path, subject: &str, extra: &[&str]) -> DeviceCsr {
    let mut args = vec![
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "device.key",
        "-subj",
        subject,
        "-out",
        "device.csr",
    ];
    args.extend_from_slice(extra);
    let out = openssl(dir, &args, None);
    assert!(out.status.success(), "{}", text(&out));
    DeviceCsr::parse(&std::fs::read(dir.join("device.csr")).unwrap()).unwrap()
}

#[test]
fn openssl_accepts_issued_chains_and_rejects_revoked_ones() {
    if !openssl_available() {
        return;
    }
    let at = (NOW + time::Duration::minutes(1)).unix_timestamp();
    for (algorithm, two_tier, seed) in [
        (KeyAlgorithm::EcdsaP256, true, 21),
        (KeyAlgorithm::Rsa3072, false, 22),
    ] {
        let f = fixture(algorithm, two_tier, seed);
        let dir = tempfile::tempdir().unwrap();
        let chain = f.ca.chain_der();
        let pem_of = |der: &[u8]| pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()));
        write(dir.path(), "root.pem", pem_of(f.ca.root_der()));
        if two_tier {
            write(dir.path(), "int.pem", pem_of(&chain[0]));
        }
        let csr = openssl_csr(dir.path(), "/CN=MAC01.local", &[]);
        let issued =
            f.ca.issue_from_csr(&csr, &ComputerName::new("MAC01.local").unwrap())
                .unwrap();
        write(dir.path(), "leaf.pem", &issued.certificate_pem);

        let crls = f.ca.sign_crls().unwrap();
        write(dir.path(), "crl.pem", crls.issuing.pem());
        if let Some(root) = &crls.root {
            write(dir.path(), "root-crl.pem", root.pem());
        }
        let out = verify(dir.path(), two_tier, at);
        assert!(out.status.success(), "{algorithm:?}: {}", text(&out));
        assert!(text(&out).contains("leaf.pem: OK"));

        // The device's key (made by openssl) matches the certificate.
        let out = openssl(
            dir.path(),
            &["x509", "-in", "leaf.pem", "-noout", "-pubkey"],
            None,
        );
        let from_cert = out.stdout;
        let out = openssl(dir.path(), &["pkey", "-in", "device.key", "-pubout"], None);
        assert_eq!(from_cert, out.stdout);

        f.ca.revoke(&issued.serial, RevocationReason::KeyCompromise)
            .unwrap();
        let crls = f.ca.sign_crls().unwrap();
        write(dir.path(), "crl.pem", crls.issuing.pem());
        if let Some(root) = &crls.root {
            write(dir.path(), "root-crl.pem", root.pem());
        }
        let out = verify(dir.path(), two_tier, at);
        assert!(
            !out.status.success(),
            "{algorithm:?}: revoked certificate accepted"
        );
        assert!(text(&out).contains("certificate revoked"), "{}", text(&out));

        // The CRL as openssl reads it: number, dates, reason.
        let out = openssl(
            dir.path(),
            &["crl", "-in", "crl.pem", "-noout", "-text"],
            None,
        );
        let crl_text = text(&out);
        assert!(crl_text.contains("Key Compromise"), "{crl_text}");
        assert!(crl_text.contains("X509v3 CRL Number"), "{crl_text}");
        assert!(
            crl_text.contains("Next Update: Mar  8 12:00:00 2026 GMT"),
            "{crl_text}"
        );

        // After nextUpdate the CRL has expired and openssl refuses (why we re-sign).
        let late = (NOW + time::Duration::days(8)).unix_timestamp();
        let out = verify(dir.path(), two_tier, late);
        assert!(!out.status.success());
    }
}

#[test]
fn csrs_with_extra_extensions_get_the_policy_and_nothing_else() {
    if !openssl_available() {
        return;
    }
    let f = fixture(KeyAlgorithm::EcdsaP256, false, 23);
    let dir = tempfile::tempdir().unwrap();
    // What Windows/MDM requests carry: a critical CA flag, other EKUs, a Microsoft
    // template-name extension rcgen's own reader refuses.
    let csr = openssl_csr(
        dir.path(),
        "/CN=MAC01.local/O=Evil Corp",
        &[
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "extendedKeyUsage=serverAuth,codeSigning",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-addext",
            "subjectAltName=DNS:MAC01.local",
            "-addext",
            "1.3.6.1.4.1.311.20.2=ASN1:BMPString:Machine",
        ],
    );
    let pem_text = std::fs::read_to_string(dir.path().join("device.csr")).unwrap();
    assert!(
        rcgen::CertificateSigningRequestParams::from_pem(&pem_text).is_err(),
        "rcgen's reader refuses it"
    );

    let issued =
        f.ca.issue_from_csr(&csr, &ComputerName::new("MAC01.local").unwrap())
            .unwrap();
    write(dir.path(), "leaf.pem", &issued.certificate_pem);
    let out = openssl(
        dir.path(),
        &[
            "x509",
            "-in",
            "leaf.pem",
            "-noout",
            "-subject",
            "-ext",
            "basicConstraints,extendedKeyUsage,keyUsage,subjectAltName",
        ],
        None,
    );
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("CA:FALSE"), "{shown}");
    assert!(!shown.contains("CA:TRUE"), "{shown}");
    assert!(shown.contains("TLS Web Client Authentication"), "{shown}");
    assert!(
        !shown.contains("Server") && !shown.contains("Code Signing"),
        "{shown}"
    );
    assert!(!shown.contains("Certificate Sign"), "{shown}");
    assert!(!shown.contains("Evil"), "{shown}");
    assert!(shown.contains("subject=CN = MAC01.local"), "{shown}");

    // Another name is refused clearly.
    let other = openssl_csr(dir.path(), "/CN=SERVER01.corp", &[]);
    let err =
        f.ca.issue_from_csr(&other, &ComputerName::new("MAC01.local").unwrap())
            .unwrap_err();
    assert!(matches!(err, CaError::CsrNameMismatch { .. }), "{err}");
}

#[test]
fn a_csr_with_a_weak_rsa_key_is_refused() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = openssl(
        dir.path(),
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:1024",
            "-nodes",
            "-keyout",
            "k.pem",
            "-subj",
            "/CN=MAC01.local",
            "-out",
            "weak.csr",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    let err = DeviceCsr::parse(&std::fs::read(dir.path().join("weak.csr")).unwrap()).unwrap_err();
    assert!(matches!(err, CaError::CsrKeyUnsupported { .. }), "{err}");
    assert!(err.to_string().contains("1024 bits is too small"), "{err}");
}

#[test]
fn a_csr_with_a_bad_signature_is_refused() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    openssl_csr(dir.path(), "/CN=MAC01.local", &["-outform", "DER"]);
    let mut der = std::fs::read(dir.path().join("device.csr")).unwrap();
    // The signature is the last bytes of the request.
    let last = der.len() - 1;
    der[last] ^= 0x01;
    let err = DeviceCsr::parse(&der).unwrap_err();
    assert!(matches!(err, CaError::CsrBadSignature { .. }), "{err}");
    assert!(err.to_string().contains("does not verify"));
}

#[test]
fn our_pkcs12_files_open_in_openssl_3_without_legacy() {
    if !openssl_available() {
        return;
    }
    let f = fixture(KeyAlgorithm::EcdsaP256, true, 24);
    let dir = tempfile::tempdir().unwrap();
    let password =
        Pkcs12Password::generate(&mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(5));
    let name = ComputerName::new("MAC01.local").unwrap();
    let (issued, pfx) =
        f.ca.issue_with_new_key(&name, &password, Pkcs12Profile::Compatible)
            .unwrap();
    write(dir.path(), "device.p12", &pfx);
    let env_pass = format!("env:{PASSWORD_ENV}");

    let out = openssl(
        dir.path(),
        &[
            "pkcs12",
            "-info",
            "-noout",
            "-in",
            "device.p12",
            "-passin",
            &env_pass,
        ],
        Some(&password),
    );
    let info = text(&out);
    assert!(out.status.success(), "{info}");
    assert!(info.contains("MAC: sha1, Iteration 2048"), "{info}");
    assert!(
        info.contains("PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048"),
        "{info}"
    );
    assert!(
        info.contains("Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048"),
        "{info}"
    );
    assert!(!info.to_lowercase().contains("rc2"), "{info}");

    // Full chain, the friendly name, and an RSA-2048 key matching the certificate.
    let out = openssl(
        dir.path(),
        &[
            "pkcs12",
            "-in",
            "device.p12",
            "-passin",
            &env_pass,
            "-nokeys",
        ],
        Some(&password),
    );
    let certs = text(&out);
    assert_eq!(certs.matches("BEGIN CERTIFICATE").count(), 3, "{certs}");
    // p12-keystore names certificate bags after their subject; the key bag carries the alias.
    assert!(certs.contains("friendlyName: CN=MAC01.local"), "{certs}");
    let out = openssl(
        dir.path(),
        &[
            "pkcs12",
            "-in",
            "device.p12",
            "-passin",
            &env_pass,
            "-nocerts",
            "-nodes",
            "-out",
            "key.pem",
        ],
        Some(&password),
    );
    assert!(out.status.success(), "{}", text(&out));
    let key_pem = std::fs::read_to_string(dir.path().join("key.pem")).unwrap();
    assert!(key_pem.contains("friendlyName: MAC01.local"), "{key_pem}");
    let out = openssl(
        dir.path(),
        &["pkey", "-in", "key.pem", "-noout", "-text"],
        None,
    );
    assert!(
        text(&out).contains("Private-Key: (2048 bit"),
        "{}",
        text(&out)
    );
    let identity = pkcs12::read(&pfx, &password).unwrap();
    assert_eq!(
        identity.certificates[0],
        common::der_of(&issued.certificate_pem)
    );

    // A wrong password is refused by openssl too.
    let wrong = Pkcs12Password::new("wrong".into()).unwrap();
    let out = openssl(
        dir.path(),
        &[
            "pkcs12",
            "-info",
            "-noout",
            "-in",
            "device.p12",
            "-passin",
            &env_pass,
        ],
        Some(&wrong),
    );
    assert!(!out.status.success());
}

#[test]
fn openssl_3_default_pkcs12_files_can_be_read() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let password = Pkcs12Password::new("s3cret-import".into()).unwrap();
    let out = openssl(
        dir.path(),
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "k.pem",
            "-subj",
            "/CN=MAC09.local",
            "-days",
            "30",
            "-out",
            "c.pem",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    let env_pass = format!("env:{PASSWORD_ENV}");
    let out = openssl(
        dir.path(),
        &[
            "pkcs12",
            "-export",
            "-inkey",
            "k.pem",
            "-in",
            "c.pem",
            "-name",
            "MAC09.local",
            "-passout",
            &env_pass,
            "-out",
            "o.p12",
        ],
        Some(&password),
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = openssl(
        dir.path(),
        &[
            "pkcs12", "-info", "-noout", "-in", "o.p12", "-passin", &env_pass,
        ],
        Some(&password),
    );
    let info = text(&out);
    assert!(
        info.contains("MAC: sha256") && info.contains("AES-256-CBC"),
        "OpenSSL 3 defaults expected: {info}"
    );

    let identity =
        pkcs12::read(&std::fs::read(dir.path().join("o.p12")).unwrap(), &password).unwrap();
    assert_eq!(identity.friendly_name, "MAC09.local");
    let cert_der = common::der_of(&std::fs::read_to_string(dir.path().join("c.pem")).unwrap());
    assert_eq!(identity.certificates, vec![cert_der.clone()]);
    // The key read back is the certificate's key.
    let key = rcgen::KeyPair::try_from(identity.private_key_pkcs8.as_slice()).unwrap();
    let (_, cert) = X509Certificate::from_der(&cert_der).unwrap();
    assert_eq!(
        rcgen::PublicKeyData::der_bytes(&key),
        cert.public_key().subject_public_key.data.as_ref()
    );
}
