//! Differential test against OpenSSL (spec pki.md §2.4).
//!
//! A corpus is generated at test time with the `openssl` CLI (`openssl ca` with explicit
//! dates, so it is deterministic): a good chain (RSA root → EC intermediate → RSA leaf, with
//! CRLs for both CAs), one mutation per row of the OpenSSL/webpki table in the spec, and one
//! per policy rule. For each case the oracle
//! `openssl verify -purpose sslclient -auth_level 2 -attime T -crl_check_all …` runs on
//! the same files, and:
//! - where OpenSSL enforces the rule, our verdict must equal OpenSSL's, and OpenSSL's error
//!   code is pinned so a change in the oracle is noticed;
//! - where only the policy enforces it, OpenSSL must accept and we must fail exactly the
//!   expected rule(s).
//!
//! Skipped (with a message) only when `openssl` is not installed; CI installs it.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tessera_certpolicy::load::{certificates_from_file, crls_from_file, private_key_from_file};
use tessera_certpolicy::{Evidence, Outcome, Policy, Report, RuleId, UnixTime};

/// 2026-01-01T00:00:00Z: the evaluation time of every case (`-attime`).
const T: u64 = 1_767_225_600;
const NAME: &str = "MAC01.local";

// Validity periods, in `openssl ca` UTCTime form.
const CERT_FROM: &str = "250101000000Z";
const CERT_TO: &str = "270101000000Z";
const CRL_LAST: &str = "251231000000Z";
const CRL_NEXT: &str = "260107000000Z";

/// Runs `openssl` with `args` in `dir`; panics with its stderr when it fails (a broken
/// corpus must not pass silently).
fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Extension sections used across the corpus.
const EXTENSIONS: &str = r"
[root]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash

[root_no_keycertsign]
basicConstraints = critical,CA:true
keyUsage = critical,cRLSign
subjectKeyIdentifier = hash

[int]
basicConstraints = critical,CA:true,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
crlDistributionPoints = URI:http://pki.example/root.crl

[int_eku_server]
basicConstraints = critical,CA:true,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[int_no_keycertsign]
basicConstraints = critical,CA:true,pathlen:0
keyUsage = critical,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[int_no_crlsign]
basicConstraints = critical,CA:true,pathlen:0
keyUsage = critical,keyCertSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[leaf]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectAltName = DNS:MAC01.local
crlDistributionPoints = URI:http://pki.example/int.crl
authorityKeyIdentifier = keyid:always

[leaf_no_eku]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment
subjectAltName = DNS:MAC01.local
crlDistributionPoints = URI:http://pki.example/int.crl

[leaf_eku_server]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:MAC01.local
crlDistributionPoints = URI:http://pki.example/int.crl

[leaf_eku_any]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = anyExtendedKeyUsage
subjectAltName = DNS:MAC01.local
crlDistributionPoints = URI:http://pki.example/int.crl

[leaf_ku_no_ds]
basicConstraints = critical,CA:false
keyUsage = critical,keyEncipherment
extendedKeyUsage = clientAuth
subjectAltName = DNS:MAC01.local
crlDistributionPoints = URI:http://pki.example/int.crl

[leaf_ku_ds_only]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = DNS:MAC01.local
crlDistributionPoints = URI:http://pki.example/int.crl

[leaf_no_ku]
basicConstraints = critical,CA:false
extendedKeyUsage = clientAuth
subjectAltName = DNS:MAC01.local
crlDistributionPoints = URI:http://pki.example/int.crl

[leaf_ca]
basicConstraints = critical,CA:true
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectAltName = DNS:MAC01.local
crlDistributionPoints = URI:http://pki.example/int.crl

[leaf_no_cdp]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectAltName = DNS:MAC01.local

[leaf_cdp_https]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectAltName = DNS:MAC01.local
crlDistributionPoints = URI:https://pki.example/int.crl

[leaf_cdp_ldap]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectAltName = DNS:MAC01.local
crlDistributionPoints = URI:ldap://pki.example/cn=int

[leaf_no_san]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
crlDistributionPoints = URI:http://pki.example/int.crl

[leaf_san_dot]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectAltName = DNS:MAC01.local.
crlDistributionPoints = URI:http://pki.example/int.crl

[leaf_san_wildcard]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectAltName = DNS:*.local
crlDistributionPoints = URI:http://pki.example/int.crl

[leaf_unknown_critical]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectAltName = DNS:MAC01.local
crlDistributionPoints = URI:http://pki.example/int.crl
1.3.6.1.4.1.99999.1 = critical,DER:05:00
";

/// One certificate authority directory for `openssl ca`.
struct Ca {
    dir: PathBuf,
}

impl Ca {
    fn new(root: &Path, name: &str) -> Self {
        let dir = root.join(format!("ca-{name}"));
        fs::create_dir_all(dir.join("newcerts")).unwrap();
        fs::write(dir.join("index.txt"), "").unwrap();
        fs::write(dir.join("index.txt.attr"), "unique_subject = no\n").unwrap();
        fs::write(dir.join("serial"), "1000\n").unwrap();
        fs::write(dir.join("crlnumber"), "01\n").unwrap();
        let config = format!(
            "[ca]\ndefault_ca = CA_default\n[CA_default]\ndir = {}\ndatabase = $dir/index.txt\n\
             new_certs_dir = $dir/newcerts\nserial = $dir/serial\ncrlnumber = $dir/crlnumber\n\
             default_md = sha256\npolicy = policy_any\nunique_subject = no\nemail_in_dn = no\n\
             crl_extensions = crl_ext\n[policy_any]\ncommonName = optional\n\
             [crl_ext]\nauthorityKeyIdentifier = keyid:always\n",
            dir.display()
        );
        fs::write(dir.join("ca.cnf"), config).unwrap();
        Self { dir }
    }

    fn config(&self) -> String {
        self.dir.join("ca.cnf").display().to_string()
    }
}

/// The corpus directory and the commands that fill it.
struct Corpus {
    dir: PathBuf,
}

impl Corpus {
    fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    fn key(&self, file: &str, spec: &str) {
        let mut args = vec!["genpkey", "-out", file, "-algorithm"];
        match spec {
            "ec256" => args.extend(["EC", "-pkeyopt", "ec_paramgen_curve:P-256"]),
            "ec384" => args.extend(["EC", "-pkeyopt", "ec_paramgen_curve:P-384"]),
            "ec521" => args.extend(["EC", "-pkeyopt", "ec_paramgen_curve:P-521"]),
            "rsa1024" => args.extend(["RSA", "-pkeyopt", "rsa_keygen_bits:1024"]),
            _ => args.extend(["RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
        }
        openssl(&self.dir, &args);
    }

    fn csr(&self, key: &str, subject: &str, out: &str) {
        openssl(
            &self.dir,
            &["req", "-new", "-key", key, "-subj", subject, "-out", out],
        );
    }

    /// Issues `out` from `csr` with extension section `ext`, signed by `ca` (or self-signed
    /// with `ca_key` when `ca_cert` is None).
    #[allow(clippy::too_many_arguments)]
    fn issue(
        &self,
        ca: &Ca,
        ca_cert: Option<&str>,
        ca_key: &str,
        csr: &str,
        ext: &str,
        (from, to): (&str, &str),
        md: &str,
        out: &str,
    ) {
        let config = ca.config();
        let mut args = vec![
            "ca",
            "-batch",
            "-notext",
            "-preserveDN",
            "-config",
            &config,
            "-keyfile",
            ca_key,
            "-in",
            csr,
            "-out",
            out,
            "-startdate",
            from,
            "-enddate",
            to,
            "-md",
            md,
        ];
        match ca_cert {
            Some(cert) => args.extend(["-cert", cert]),
            None => args.push("-selfsign"),
        }
        // No extension section: `openssl ca` then writes an X.509 v1 certificate.
        if !ext.is_empty() {
            args.extend(["-extfile", "ext.cnf", "-extensions", ext]);
        }
        openssl(&self.dir, &args);
    }

    fn crl(&self, ca: &Ca, ca_cert: &str, ca_key: &str, (last, next): (&str, &str), out: &str) {
        let config = ca.config();
        openssl(
            &self.dir,
            &[
                "ca",
                "-gencrl",
                "-config",
                &config,
                "-cert",
                ca_cert,
                "-keyfile",
                ca_key,
                "-crl_lastupdate",
                last,
                "-crl_nextupdate",
                next,
                "-out",
                out,
            ],
        );
    }

    fn revoke(&self, ca: &Ca, ca_cert: &str, ca_key: &str, cert: &str) {
        let config = ca.config();
        openssl(
            &self.dir,
            &[
                "ca",
                "-config",
                &config,
                "-cert",
                ca_cert,
                "-keyfile",
                ca_key,
                "-revoke",
                cert,
                "-crl_reason",
                "keyCompromise",
            ],
        );
    }

    /// Builds every file the cases use.
    fn generate(dir: &Path) -> Self {
        let c = Self {
            dir: dir.to_owned(),
        };
        fs::write(dir.join("ext.cnf"), EXTENSIONS).unwrap();
        let root_ca = Ca::new(dir, "root");
        let int_ca = Ca::new(dir, "int");
        let impostor_ca = Ca::new(dir, "impostor");
        let valid = (CERT_FROM, CERT_TO);

        c.key("root.key", "rsa2048");
        c.key("int.key", "ec256");
        c.key("impostor.key", "ec256");
        c.key("leaf.key", "rsa2048");
        c.key("other.key", "rsa2048");
        c.key("leaf1024.key", "rsa1024");
        c.key("leaf384.key", "ec384");
        c.key("leaf256.key", "ec256");
        c.key("int1024.key", "rsa1024");
        c.key("leaf521.key", "ec521");

        // Root and its variants (same key and name, so CRLs and signatures still match).
        c.csr("root.key", "/CN=Tessera Test Root", "root.csr");
        c.issue(
            &root_ca, None, "root.key", "root.csr", "root", valid, "sha256", "root.pem",
        );
        c.issue(
            &root_ca,
            None,
            "root.key",
            "root.csr",
            "root",
            ("200101000000Z", "251201000000Z"),
            "sha256",
            "root-expired.pem",
        );
        c.issue(
            &root_ca,
            None,
            "root.key",
            "root.csr",
            "root_no_keycertsign",
            valid,
            "sha256",
            "root-no-keycertsign.pem",
        );
        c.issue(
            &root_ca,
            None,
            "root.key",
            "root.csr",
            "root",
            valid,
            "sha1",
            "root-sha1.pem",
        );

        // Intermediate and its variants.
        c.csr("int.key", "/CN=Tessera Test Intermediate", "int.csr");
        let by_root = |ext: &str, dates: (&str, &str), md: &str, out: &str| {
            c.issue(
                &root_ca,
                Some("root.pem"),
                "root.key",
                "int.csr",
                ext,
                dates,
                md,
                out,
            );
        };
        by_root("int", valid, "sha256", "int.pem");
        by_root("int_eku_server", valid, "sha256", "int-eku-server.pem");
        by_root(
            "int_no_keycertsign",
            valid,
            "sha256",
            "int-no-keycertsign.pem",
        );
        by_root("int_no_crlsign", valid, "sha256", "int-no-crlsign.pem");
        by_root(
            "int",
            ("240101000000Z", "251201000000Z"),
            "sha256",
            "int-expired.pem",
        );
        by_root("int", valid, "sha1", "int-sha1.pem");

        // An impostor with the intermediate's name but another key.
        c.csr(
            "impostor.key",
            "/CN=Tessera Test Intermediate",
            "impostor.csr",
        );
        c.issue(
            &impostor_ca,
            None,
            "impostor.key",
            "impostor.csr",
            "int",
            valid,
            "sha256",
            "impostor.pem",
        );

        // Leaves.
        c.csr("leaf.key", "/CN=MAC01.local", "leaf.csr");
        let by_int = |csr: &str, ext: &str, dates: (&str, &str), md: &str, out: &str| {
            c.issue(
                &int_ca,
                Some("int.pem"),
                "int.key",
                csr,
                ext,
                dates,
                md,
                out,
            );
        };
        for (ext, out) in [
            ("leaf", "leaf.pem"),
            ("leaf_no_eku", "leaf-no-eku.pem"),
            ("leaf_eku_server", "leaf-eku-server.pem"),
            ("leaf_eku_any", "leaf-eku-any.pem"),
            ("leaf_ku_no_ds", "leaf-ku-no-ds.pem"),
            ("leaf_ku_ds_only", "leaf-ku-ds-only.pem"),
            ("leaf_no_ku", "leaf-no-ku.pem"),
            ("leaf_ca", "leaf-ca.pem"),
            ("leaf_no_cdp", "leaf-no-cdp.pem"),
            ("leaf_cdp_https", "leaf-cdp-https.pem"),
            ("leaf_cdp_ldap", "leaf-cdp-ldap.pem"),
            ("leaf_no_san", "leaf-cn-only.pem"),
            ("leaf_san_dot", "leaf-san-dot.pem"),
            ("leaf_san_wildcard", "leaf-san-wildcard.pem"),
            ("leaf_unknown_critical", "leaf-unknown-critical.pem"),
        ] {
            by_int("leaf.csr", ext, valid, "sha256", out);
        }
        by_int(
            "leaf.csr",
            "leaf",
            ("240101000000Z", "251201000000Z"),
            "sha256",
            "leaf-expired.pem",
        );
        by_int(
            "leaf.csr",
            "leaf",
            ("260201000000Z", "270101000000Z"),
            "sha256",
            "leaf-not-yet.pem",
        );
        by_int(
            "leaf.csr",
            "leaf",
            (CERT_FROM, "260115000000Z"),
            "sha256",
            "leaf-expiring.pem",
        );
        by_int("leaf.csr", "leaf", valid, "sha1", "leaf-sha1.pem");
        by_int("leaf.csr", "", valid, "sha256", "leaf-v1.pem");
        c.csr(
            "leaf.key",
            "/CN=MAC01.local/CN=EVIL01.local",
            "leaf-two-cn.csr",
        );
        by_int(
            "leaf-two-cn.csr",
            "leaf_no_san",
            valid,
            "sha256",
            "leaf-two-cn.pem",
        );
        c.csr("leaf.key", "/CN=Some Other Name", "leaf-other-cn.csr");
        by_int(
            "leaf-other-cn.csr",
            "leaf_san_dot",
            valid,
            "sha256",
            "leaf-san-dot-other-cn.pem",
        );
        for (key, out) in [
            ("leaf1024.key", "leaf-rsa1024.pem"),
            ("leaf384.key", "leaf-p384.pem"),
            ("leaf256.key", "leaf-p256.pem"),
            ("leaf521.key", "leaf-p521.pem"),
        ] {
            let csr = format!("{out}.csr");
            c.csr(key, "/CN=MAC01.local", &csr);
            by_int(&csr, "leaf", valid, "sha256", out);
        }
        c.issue(
            &impostor_ca,
            Some("impostor.pem"),
            "impostor.key",
            "leaf.csr",
            "leaf",
            valid,
            "sha256",
            "leaf-impostor.pem",
        );

        // An RSA-1024 intermediate with its own leaf and CRL (same CA database).
        c.csr(
            "int1024.key",
            "/CN=Tessera Weak Intermediate",
            "int1024.csr",
        );
        c.issue(
            &root_ca,
            Some("root.pem"),
            "root.key",
            "int1024.csr",
            "int",
            valid,
            "sha256",
            "int1024.pem",
        );
        c.issue(
            &int_ca,
            Some("int1024.pem"),
            "int1024.key",
            "leaf.csr",
            "leaf",
            valid,
            "sha256",
            "leaf-under-int1024.pem",
        );
        c.crl(
            &int_ca,
            "int1024.pem",
            "int1024.key",
            (CRL_LAST, CRL_NEXT),
            "int1024.crl",
        );

        // CRLs before any revocation.
        c.crl(
            &root_ca,
            "root.pem",
            "root.key",
            (CRL_LAST, CRL_NEXT),
            "root.crl",
        );
        c.crl(
            &int_ca,
            "int.pem",
            "int.key",
            (CRL_LAST, CRL_NEXT),
            "int.crl",
        );
        c.crl(
            &int_ca,
            "int.pem",
            "int.key",
            ("251201000000Z", "251208000000Z"),
            "int-expired.crl",
        );
        c.crl(
            &int_ca,
            "int.pem",
            "int.key",
            ("260102000000Z", "260109000000Z"),
            "int-future.crl",
        );
        c.crl(
            &int_ca,
            "int.pem",
            "int.key",
            ("251230000000Z", CRL_NEXT),
            "int-older.crl",
        );
        // Then revoke the leaf and the intermediate.
        c.revoke(&int_ca, "int.pem", "int.key", "leaf.pem");
        c.crl(
            &int_ca,
            "int.pem",
            "int.key",
            (CRL_LAST, CRL_NEXT),
            "int-revoking.crl",
        );
        c.revoke(&root_ca, "root.pem", "root.key", "int.pem");
        c.crl(
            &root_ca,
            "root.pem",
            "root.key",
            (CRL_LAST, CRL_NEXT),
            "root-revoking.crl",
        );
        c
    }

    /// `openssl verify` as the spec's oracle: exit status and the first error code.
    fn openssl_verdict(&self, case: &Case) -> (bool, Option<u32>) {
        let attime = T.to_string();
        let mut args = vec![
            "verify".to_owned(),
            "-purpose".into(),
            "sslclient".into(),
            "-auth_level".into(),
            "2".into(),
            "-attime".into(),
            attime,
            "-crl_check_all".into(),
        ];
        for f in case.anchors {
            args.extend(["-CAfile".into(), self.path(f)]);
        }
        for f in case.intermediates {
            args.extend(["-untrusted".into(), self.path(f)]);
        }
        for f in case.crls {
            args.extend(["-CRLfile".into(), self.path(f)]);
        }
        args.push(self.path(case.leaf));
        let out = Command::new("openssl")
            .args(&args)
            .output()
            .expect("run openssl verify");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // "error 26 at 0 depth lookup: unsuitable certificate purpose"
        let code = text.lines().find_map(|l| {
            let rest = l.split("error ").nth(1)?;
            let (n, tail) = rest.split_once(' ')?;
            tail.starts_with("at ").then(|| n.parse().ok()).flatten()
        });
        (out.status.success(), code)
    }

    fn ours(&self, case: &Case) -> Report {
        let load_certs = |files: &[&str]| {
            files
                .iter()
                .flat_map(|f| certificates_from_file(&self.dir.join(f)).unwrap())
                .collect::<Vec<_>>()
        };
        let leaf = load_certs(&[case.leaf]).remove(0);
        let intermediates = load_certs(case.intermediates);
        let anchors = load_certs(case.anchors);
        let crls: Vec<_> = case
            .crls
            .iter()
            .flat_map(|f| crls_from_file(&self.dir.join(f)).unwrap())
            .collect();
        let key = case
            .key
            .map(|k| private_key_from_file(&self.dir.join(k)).unwrap());
        Policy::default().evaluate_evidence(&Evidence {
            leaf: &leaf,
            intermediates: &intermediates,
            trust_anchors: &anchors,
            crls: &crls,
            private_key: key.as_ref(),
            computer_name: case.name,
            now: UnixTime::since_unix_epoch(Duration::from_secs(T)),
        })
    }
}

/// What a case expects.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Both accept.
    Pass,
    /// OpenSSL enforces it: it fails with this error code, and we fail these rules.
    Parity(u32, &'static [RuleId]),
    /// Only the policy (or webpki, stricter than OpenSSL) enforces it: OpenSSL accepts,
    /// we fail these rules.
    PolicyOnly(&'static [RuleId]),
}

struct Case {
    title: &'static str,
    leaf: &'static str,
    intermediates: &'static [&'static str],
    anchors: &'static [&'static str],
    crls: &'static [&'static str],
    name: &'static str,
    key: Option<&'static str>,
    expect: Expect,
}

const GOOD_CRLS: &[&str] = &["int.crl", "root.crl"];

const fn case(title: &'static str, leaf: &'static str, expect: Expect) -> Case {
    Case {
        title,
        leaf,
        intermediates: &["int.pem"],
        anchors: &["root.pem"],
        crls: GOOD_CRLS,
        name: NAME,
        key: None,
        expect,
    }
}

#[allow(clippy::too_many_lines)]
fn cases() -> Vec<Case> {
    use Expect::{Parity, Pass, PolicyOnly};
    use RuleId as R;
    vec![
        // The good chain, with and without its key.
        case("good chain", "leaf.pem", Pass),
        Case {
            key: Some("leaf.key"),
            ..case("good chain with its private key", "leaf.pem", Pass)
        },
        Case {
            key: Some("other.key"),
            ..case(
                "private key of another certificate",
                "leaf.pem",
                PolicyOnly(&[R::PrivateKey]),
            )
        },
        // Rows of the OpenSSL/webpki table (spec §2.2).
        case("leaf has no EKU", "leaf-no-eku.pem", PolicyOnly(&[R::Eku])),
        case(
            "leaf EKU serverAuth only",
            "leaf-eku-server.pem",
            Parity(26, &[R::Eku]),
        ),
        case(
            "leaf EKU anyExtendedKeyUsage only",
            "leaf-eku-any.pem",
            Parity(26, &[R::Eku]),
        ),
        Case {
            intermediates: &["int-eku-server.pem"],
            ..case(
                "intermediate EKU serverAuth only",
                "leaf.pem",
                Parity(26, &[R::Eku]),
            )
        },
        case(
            "leaf KU without digitalSignature",
            "leaf-ku-no-ds.pem",
            Parity(26, &[R::KeyUsage]),
        ),
        case(
            "leaf has no KU",
            "leaf-no-ku.pem",
            PolicyOnly(&[R::KeyUsage]),
        ),
        case(
            "leaf KU digitalSignature only",
            "leaf-ku-ds-only.pem",
            PolicyOnly(&[R::KeyUsage]),
        ),
        Case {
            intermediates: &["int-no-keycertsign.pem"],
            ..case(
                "intermediate KU without keyCertSign",
                "leaf.pem",
                Parity(79, &[R::Chain]),
            )
        },
        Case {
            intermediates: &["int-no-crlsign.pem"],
            ..case(
                "intermediate KU without cRLSign, with its CRL",
                "leaf.pem",
                Parity(35, &[R::Revocation]),
            )
        },
        case("leaf with cA=TRUE", "leaf-ca.pem", PolicyOnly(&[R::NotCa])),
        case(
            "leaf expired",
            "leaf-expired.pem",
            Parity(10, &[R::Validity]),
        ),
        case(
            "leaf not yet valid",
            "leaf-not-yet.pem",
            Parity(9, &[R::Validity]),
        ),
        Case {
            anchors: &["root-expired.pem"],
            ..case("root expired", "leaf.pem", Parity(10, &[R::Validity]))
        },
        Case {
            anchors: &["root-no-keycertsign.pem"],
            ..case(
                "root KU without keyCertSign",
                "leaf.pem",
                Parity(79, &[R::Chain]),
            )
        },
        // A root's own signature is not relied on, by OpenSSL or by the policy.
        Case {
            intermediates: &["int1024.pem"],
            crls: &["int1024.crl", "root.crl"],
            ..case(
                "RSA-1024 intermediate",
                "leaf-under-int1024.pem",
                Parity(67, &[R::KeyStrength]),
            )
        },
        case(
            "EC P-256 leaf (keyEncipherment on an EC key)",
            "leaf-p256.pem",
            Pass,
        ),
        Case {
            anchors: &["root-sha1.pem"],
            ..case("SHA-1 self-signed root", "leaf.pem", Pass)
        },
        Case {
            intermediates: &["int-expired.pem"],
            ..case(
                "intermediate expired",
                "leaf.pem",
                Parity(10, &[R::Validity]),
            )
        },
        Case {
            intermediates: &[],
            anchors: &["int.pem"],
            ..case(
                "intermediate used as trust anchor",
                "leaf.pem",
                Parity(2, &[R::Chain]),
            )
        },
        Case {
            crls: &["int-revoking.crl", "root.crl"],
            ..case("leaf revoked", "leaf.pem", Parity(23, &[R::Revocation]))
        },
        Case {
            crls: &["int.crl", "root-revoking.crl"],
            ..case(
                "intermediate revoked",
                "leaf.pem",
                Parity(23, &[R::Revocation]),
            )
        },
        Case {
            crls: &["int.crl"],
            ..case(
                "no CRL for the intermediate",
                "leaf.pem",
                Parity(3, &[R::Revocation]),
            )
        },
        Case {
            crls: &[],
            ..case("no CRL at all", "leaf.pem", Parity(3, &[R::Revocation]))
        },
        Case {
            crls: &["int-expired.crl", "root.crl"],
            ..case(
                "CRL past nextUpdate",
                "leaf.pem",
                Parity(12, &[R::Revocation]),
            )
        },
        Case {
            crls: &["int-future.crl", "root.crl"],
            ..case(
                "CRL thisUpdate in the future",
                "leaf.pem",
                Parity(11, &[R::Revocation]),
            )
        },
        Case {
            crls: &["int-older.crl", "int-revoking.crl", "root.crl"],
            ..case(
                "newest CRL of an issuer wins",
                "leaf.pem",
                Parity(23, &[R::Revocation]),
            )
        },
        case(
            "SHA-1-signed leaf",
            "leaf-sha1.pem",
            Parity(68, &[R::SignatureAlgorithm]),
        ),
        Case {
            intermediates: &["int-sha1.pem"],
            ..case(
                "SHA-1-signed intermediate",
                "leaf.pem",
                Parity(68, &[R::SignatureAlgorithm]),
            )
        },
        case(
            "RSA-1024 leaf",
            "leaf-rsa1024.pem",
            Parity(66, &[R::KeyStrength]),
        ),
        // OpenSSL picks issuers by name and key identifier, so a leaf whose AKI names
        // another key finds no issuer (20) rather than a bad signature (7).
        case(
            "leaf signed by an impostor CA",
            "leaf-impostor.pem",
            Parity(20, &[R::Chain]),
        ),
        Case {
            name: "mac01.local",
            ..case(
                "computer name differs in case",
                "leaf.pem",
                PolicyOnly(&[R::SubjectName]),
            )
        },
        // One per policy rule.
        case(
            "no CRL distribution point",
            "leaf-no-cdp.pem",
            PolicyOnly(&[R::CrlDp]),
        ),
        case(
            "https CRL distribution point only",
            "leaf-cdp-https.pem",
            PolicyOnly(&[R::CrlDp]),
        ),
        case(
            "ldap CRL distribution point only",
            "leaf-cdp-ldap.pem",
            PolicyOnly(&[R::CrlDp]),
        ),
        case(
            "CN only, equal to the computer name",
            "leaf-cn-only.pem",
            Pass,
        ),
        case("two CNs", "leaf-two-cn.pem", PolicyOnly(&[R::SubjectName])),
        case(
            "SAN with a trailing dot, other CN",
            "leaf-san-dot-other-cn.pem",
            PolicyOnly(&[R::SubjectName]),
        ),
        Case {
            name: "*.local",
            ..case(
                "wildcard SAN and computer name",
                "leaf-san-wildcard.pem",
                PolicyOnly(&[R::SubjectName]),
            )
        },
        case("EC P-384 leaf", "leaf-p384.pem", Pass),
        case(
            "EC P-521 leaf",
            "leaf-p521.pem",
            PolicyOnly(&[R::KeyStrength]),
        ),
        case(
            "unknown critical extension",
            "leaf-unknown-critical.pem",
            Parity(34, &[R::Structure]),
        ),
        case(
            "leaf expires within 30 days (warning only)",
            "leaf-expiring.pem",
            Pass,
        ),
        // OpenSSL accepts a v1 leaf (no extensions, so no EKU or KU limits); the policy
        // needs v3 extensions.
        case(
            "X.509 v1 leaf",
            "leaf-v1.pem",
            PolicyOnly(&[R::Structure, R::Eku, R::KeyUsage, R::CrlDp]),
        ),
    ]
}

#[test]
fn our_verdicts_match_openssl_and_the_policy() {
    if !tessera_testkit::tool("openssl", "the OpenSSL parity suite") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let corpus = Corpus::generate(tmp.path());
    let mut mismatches = Vec::new();
    let cases = cases();
    for case in &cases {
        let report = corpus.ours(case);
        let (openssl_ok, openssl_code) = corpus.openssl_verdict(case);
        let failed: BTreeSet<RuleId> = report.failed_rules().into_iter().collect();
        let problem = match case.expect {
            Expect::Pass => (!(openssl_ok && report.passed()))
                .then(|| format!("expected both to pass; openssl {openssl_ok} ({openssl_code:?})")),
            Expect::Parity(code, rules) => {
                let want: BTreeSet<RuleId> = rules.iter().copied().collect();
                if openssl_ok || openssl_code != Some(code) {
                    Some(format!(
                        "openssl: expected error {code}, got ok={openssl_ok} code={openssl_code:?}"
                    ))
                } else if report.passed() != openssl_ok {
                    Some("verdicts differ".to_owned())
                } else {
                    (failed != want).then(|| format!("failed rules {failed:?}, expected {want:?}"))
                }
            }
            Expect::PolicyOnly(rules) => {
                let want: BTreeSet<RuleId> = rules.iter().copied().collect();
                if openssl_ok {
                    (failed != want).then(|| format!("failed rules {failed:?}, expected {want:?}"))
                } else {
                    Some(format!(
                        "openssl was expected to accept, got error {openssl_code:?}"
                    ))
                }
            }
        };
        if let Some(problem) = problem {
            mismatches.push(format!("{}: {problem}\n{report}", case.title));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} cases disagree:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.join("\n")
    );
}

#[test]
fn the_expiring_leaf_warns_and_the_good_chain_reports_every_rule() {
    if !tessera_testkit::tool("openssl", "the OpenSSL parity suite") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let corpus = Corpus::generate(tmp.path());
    let good = corpus.ours(&Case {
        key: Some("leaf.key"),
        ..case("good", "leaf.pem", Expect::Pass)
    });
    for rule in RuleId::ALL {
        assert!(
            good.findings()
                .iter()
                .any(|f| f.rule == rule && f.outcome == Outcome::Pass),
            "no passing finding for {rule}:\n{good}"
        );
    }
    let expiring = corpus.ours(&case("expiring", "leaf-expiring.pem", Expect::Pass));
    assert!(expiring.passed());
    assert!(
        expiring
            .findings()
            .iter()
            .any(|f| f.rule == RuleId::Validity && f.outcome == Outcome::Warn),
        "{expiring}"
    );
}

#[test]
fn revocation_failures_name_the_certificate_or_crl_concerned() {
    if !tessera_testkit::tool("openssl", "the OpenSSL parity suite") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let corpus = Corpus::generate(tmp.path());
    let revocation_failures = |crls: &'static [&'static str]| {
        let report = corpus.ours(&Case {
            crls,
            ..case("revocation", "leaf.pem", Expect::Pass)
        });
        report
            .failures()
            .filter(|f| f.rule == RuleId::Revocation)
            .map(|f| (f.subject.kind, f.message.clone()))
            .collect::<Vec<_>>()
    };
    use tessera_certpolicy::SubjectKind as K;

    let leaf_revoked = revocation_failures(&["int-revoking.crl", "root.crl"]);
    assert_eq!(leaf_revoked.len(), 1, "{leaf_revoked:?}");
    assert_eq!(leaf_revoked[0].0, K::Leaf);
    assert!(leaf_revoked[0].1.contains("revoked on"), "{leaf_revoked:?}");
    assert!(
        leaf_revoked[0].1.contains("Key Compromise") || leaf_revoked[0].1.contains("KeyCompromise"),
        "{leaf_revoked:?}"
    );

    let int_revoked = revocation_failures(&["int.crl", "root-revoking.crl"]);
    assert_eq!(int_revoked.len(), 1, "{int_revoked:?}");
    assert_eq!(int_revoked[0].0, K::Intermediate);

    let missing_root_crl = revocation_failures(&["int.crl"]);
    assert_eq!(missing_root_crl.len(), 1, "{missing_root_crl:?}");
    assert_eq!(missing_root_crl[0].0, K::Intermediate);
    assert!(
        missing_root_crl[0].1.contains("Tessera Test Root"),
        "{missing_root_crl:?}"
    );

    let expired = revocation_failures(&["int-expired.crl", "root.crl"]);
    assert_eq!(expired.len(), 1, "{expired:?}");
    assert_eq!(expired[0].0, K::Crl);
    assert!(expired[0].1.contains("expired on"), "{expired:?}");
}
