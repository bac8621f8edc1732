//! MacKeystore against a fake `security` executable (a stateful python3 script written into a
//! tempdir) that records every argument vector. The tests pin the exact vectors and prove that
//! no password or key material reaches argv except the one-time PKCS#12 password.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{TestPki, key_fragments};
use tessera_keystore::{
    AnchorInstall, FixedUid, Keystore, KeystoreError, MacKeystore, MacKeystoreConfig,
    PrivateKeyAccess, Randomness, SYSTEM_KEYCHAIN, SecretName, SecretValue, SequenceRandomness,
};

const AGENT: &str = "/Library/Tessera/tessera-agent";
const SEED: u8 = 7;

struct Fake {
    dir: tempfile::TempDir,
    work: PathBuf,
    tool: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
struct Call {
    argv: Vec<String>,
    stdin: bool,
    raw: serde_json::Value,
}

fn find_tool(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.is_file())
}

impl Fake {
    /// None (test skipped, with a message) when python3 or openssl is missing.
    fn new() -> Option<Self> {
        let python = find_tool(&[
            "/usr/bin/python3",
            "/usr/local/bin/python3",
            "/opt/homebrew/bin/python3",
        ]);
        let openssl = find_tool(&[
            "/usr/bin/openssl",
            "/usr/local/bin/openssl",
            "/opt/homebrew/bin/openssl",
        ]);
        let (Some(python), Some(openssl)) = (python, openssl) else {
            // Reports (and in CI fails) whichever of the two is missing.
            tessera_testkit::tools(&["python3", "openssl"], "the fake `security` tool");
            eprintln!("SKIPPED: the fake `security` needs python3 and openssl at an absolute path");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        std::fs::create_dir(&work).unwrap();
        let tool = dir.path().join("security");
        let script = include_str!("fake_security.py")
            .replace("@PYTHON@", python.to_str().unwrap())
            .replace("@OPENSSL@", openssl.to_str().unwrap())
            .replace("@STATE_DIR@", dir.path().to_str().unwrap());
        std::fs::write(&tool, script).unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        Some(Self { dir, work, tool })
    }

    fn config(&self) -> MacKeystoreConfig {
        let mut config = MacKeystoreConfig::new(AGENT);
        config.security_tool.clone_from(&self.tool);
        config.work_dir.clone_from(&self.work);
        config
    }

    fn store(&self) -> MacKeystore {
        MacKeystore::with_system(
            self.config(),
            Arc::new(FixedUid(0)),
            Arc::new(SequenceRandomness::new(SEED)),
        )
        .unwrap()
    }

    fn calls(&self) -> Vec<Call> {
        let Ok(text) = std::fs::read_to_string(self.dir.path().join("log.jsonl")) else {
            return vec![];
        };
        text.lines()
            .map(|l| {
                let raw: serde_json::Value = serde_json::from_str(l).unwrap();
                Call {
                    argv: raw["argv"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|a| a.as_str().unwrap().to_owned())
                        .collect(),
                    stdin: raw["stdin"].as_bool().unwrap(),
                    raw,
                }
            })
            .collect()
    }

    fn clear_log(&self) {
        let _ = std::fs::remove_file(self.dir.path().join("log.jsonl"));
    }

    fn fail(&self, subcommand: &str, rc: i32, stdout: &str, stderr: &str) {
        let json =
            serde_json::json!({ subcommand: { "rc": rc, "stdout": stdout, "stderr": stderr } });
        std::fs::write(self.dir.path().join("fail.json"), json.to_string()).unwrap();
    }

    fn heal(&self) {
        let _ = std::fs::remove_file(self.dir.path().join("fail.json"));
    }
}

fn v(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| (*s).to_owned()).collect()
}

fn argvs(calls: &[Call]) -> Vec<Vec<String>> {
    calls.iter().map(|c| c.argv.clone()).collect()
}

fn read_record() -> Vec<String> {
    v(&[
        "find-generic-password",
        "-a",
        "device",
        "-s",
        "tessera.identity",
        "-w",
        SYSTEM_KEYCHAIN,
    ])
}

fn find_identity() -> Vec<String> {
    v(&["find-identity", "-v", "-p", "ssl-client", SYSTEM_KEYCHAIN])
}

fn find_certificates() -> Vec<String> {
    v(&["find-certificate", "-a", "-Z", "-p", SYSTEM_KEYCHAIN])
}

/// The names the deterministic randomness will produce: per call, first the one-time
/// password (16 bytes), then the scratch directory (8 bytes).
fn expected_random(calls_before: usize) -> (String, String) {
    let r = SequenceRandomness::new(SEED);
    for _ in 0..calls_before {
        r.hex(1);
    }
    (r.hex(16), r.hex(8))
}

#[test]
fn import_find_and_renewal_pin_the_argument_vectors() {
    let Some(fake) = Fake::new() else { return };
    let store = fake.store();
    let pki = TestPki::new("Root A");
    let first = pki.identity("MAC01.local");

    store.put_identity(&first).unwrap();
    let (password, scratch) = expected_random(0);
    let pfx = fake
        .work
        .join(format!("tessera-keystore-{scratch}/identity.p12"));
    let import = v(&[
        "import",
        pfx.to_str().unwrap(),
        "-k",
        SYSTEM_KEYCHAIN,
        "-t",
        "agg",
        "-f",
        "pkcs12",
        "-P",
        &password,
        "-T",
        AGENT,
    ]);
    let calls = fake.calls();
    assert_eq!(
        argvs(&calls),
        vec![
            read_record(),
            import,
            find_identity(),
            v(&["-i"]),
            read_record()
        ]
    );
    // Only the `security -i` call carries stdin; it wrote the record with the leaf's SHA-1.
    assert_eq!(
        calls.iter().map(|c| c.stdin).collect::<Vec<_>>(),
        [false, false, false, true, false]
    );
    let sha1 = first.leaf().sha1().to_string();
    assert_eq!(
        calls[3].raw["commands"],
        serde_json::json!([[
            "add-generic-password",
            "-U",
            "-a",
            "device",
            "-s",
            "tessera.identity",
            "-T",
            AGENT,
            "-w",
            SYSTEM_KEYCHAIN
        ]])
    );
    // The PKCS#12 was 0600 in a 0700 directory while `security` read it, and is gone now.
    assert_eq!(calls[1].raw["file_mode"], "0o600");
    assert_eq!(calls[1].raw["dir_mode"], "0o700");
    assert_eq!(std::fs::read_dir(&fake.work).unwrap().count(), 0);

    // Find the identity again by its hash.
    fake.clear_log();
    let installed = store.identity().unwrap().unwrap();
    assert_eq!(
        argvs(&fake.calls()),
        vec![read_record(), find_identity(), find_certificates()]
    );
    assert_eq!(installed.leaf, *first.leaf());
    assert_eq!(
        installed.chain,
        vec![pki.intermediate.clone(), pki.root.clone()]
    );
    assert!(
        matches!(installed.private_key, PrivateKeyAccess::Keychain { ref keychain } if keychain == Path::new(SYSTEM_KEYCHAIN))
    );

    // Renewal: install and verify the new one, then delete the old one by hash — never first.
    fake.clear_log();
    let second = pki.identity("MAC01.local");
    store.put_identity(&second).unwrap();
    let (password2, scratch2) = expected_random(2);
    assert_ne!(password2, password, "the PKCS#12 password is single-use");
    let pfx2 = fake
        .work
        .join(format!("tessera-keystore-{scratch2}/identity.p12"));
    assert_eq!(
        argvs(&fake.calls()),
        vec![
            read_record(),
            v(&[
                "import",
                pfx2.to_str().unwrap(),
                "-k",
                SYSTEM_KEYCHAIN,
                "-t",
                "agg",
                "-f",
                "pkcs12",
                "-P",
                &password2,
                "-T",
                AGENT
            ]),
            find_identity(),
            v(&["-i"]),
            read_record(),
            v(&["delete-identity", "-Z", &sha1, SYSTEM_KEYCHAIN]),
        ]
    );
    assert_eq!(store.identity().unwrap().unwrap().leaf, *second.leaf());

    // Removal deletes by hash, then the record.
    fake.clear_log();
    assert!(store.remove_identity().unwrap());
    assert_eq!(
        argvs(&fake.calls()),
        vec![
            read_record(),
            v(&[
                "delete-identity",
                "-Z",
                &second.leaf().sha1().to_string(),
                SYSTEM_KEYCHAIN
            ]),
            v(&[
                "delete-generic-password",
                "-a",
                "device",
                "-s",
                "tessera.identity",
                SYSTEM_KEYCHAIN
            ]),
        ]
    );
    assert!(store.identity().unwrap().is_none());
    assert!(!store.remove_identity().unwrap());
}

#[test]
fn trust_anchor_add_list_remove_pin_the_argument_vectors() {
    let Some(fake) = Fake::new() else { return };
    let store = fake.store();
    let pki = TestPki::new("Root A");

    assert_eq!(
        store.add_trust_anchor(&pki.root).unwrap(),
        AnchorInstall::Installed
    );
    let scratch = SequenceRandomness::new(SEED).hex(8);
    let cer = fake
        .work
        .join(format!("tessera-keystore-{scratch}/anchor.cer"));
    assert_eq!(
        argvs(&fake.calls()),
        vec![v(&[
            "add-trusted-cert",
            "-d",
            "-r",
            "trustRoot",
            "-k",
            SYSTEM_KEYCHAIN,
            cer.to_str().unwrap()
        ])]
    );
    assert_eq!(
        std::fs::read_dir(&fake.work).unwrap().count(),
        0,
        "anchor file removed"
    );
    assert_eq!(store.trust_anchors().unwrap(), vec![pki.root.clone()]);

    fake.clear_log();
    assert!(store.remove_trust_anchor(&pki.root.sha256()).unwrap());
    let calls = argvs(&fake.calls());
    assert_eq!(calls[0], find_certificates());
    assert_eq!(&calls[1][..2], &v(&["remove-trusted-cert", "-d"])[..]);
    assert!(calls[1][2].ends_with("/anchor.cer"));
    assert_eq!(
        calls[2],
        v(&[
            "delete-certificate",
            "-Z",
            &pki.root.sha1().to_string(),
            SYSTEM_KEYCHAIN
        ])
    );
    assert!(store.trust_anchors().unwrap().is_empty());
    assert!(!store.remove_trust_anchor(&pki.root.sha256()).unwrap());

    // An intermediate is refused before any command runs.
    fake.clear_log();
    assert!(matches!(
        store.add_trust_anchor(&pki.intermediate),
        Err(KeystoreError::AnchorNotSelfSigned { .. })
    ));
    assert!(fake.calls().is_empty());
}

#[test]
fn headless_trust_refusal_reports_mdm_or_admin_step() {
    let Some(fake) = Fake::new() else { return };
    let store = fake.store();
    let pki = TestPki::new("Root A");
    fake.fail(
        "add-trusted-cert",
        1,
        "",
        "SecTrustSettingsSetTrustSettings: The authorization was denied since no user interaction was possible.\n",
    );
    match store.add_trust_anchor(&pki.root).unwrap() {
        AnchorInstall::NeedsAdminOrMdm { instructions } => {
            assert!(
                instructions.contains("com.apple.security.root"),
                "{instructions}"
            );
            assert!(
                instructions.contains(&pki.root.sha256().to_string()),
                "{instructions}"
            );
        }
        AnchorInstall::Installed => panic!("expected NeedsAdminOrMdm, got Installed"),
    }
    // Any other failure stays an error with the tool's message.
    fake.fail(
        "add-trusted-cert",
        1,
        "",
        "security: something else broke\n",
    );
    let err = store.add_trust_anchor(&pki.root).unwrap_err();
    assert!(err.to_string().contains("something else broke"), "{err}");
}

#[test]
fn rejected_pkcs12_is_reported_and_the_old_identity_is_kept() {
    let Some(fake) = Fake::new() else { return };
    let store = fake.store();
    let pki = TestPki::new("Root A");
    let old = pki.identity("MAC01.local");
    store.put_identity(&old).unwrap();
    fake.fail(
        "import",
        1,
        "",
        "security: SecKeychainItemImport: MAC verification failed during PKCS12 import (wrong password?)\n",
    );
    fake.clear_log();
    let err = store
        .put_identity(&pki.identity("MAC01.local"))
        .unwrap_err();
    assert!(matches!(err, KeystoreError::Pkcs12Rejected), "{err}");
    assert!(fake.calls().iter().all(|c| c.argv[0] != "delete-identity"));
    assert_eq!(
        std::fs::read_dir(&fake.work).unwrap().count(),
        0,
        "PKCS#12 removed after failure"
    );
    fake.heal();
    assert_eq!(store.identity().unwrap().unwrap().leaf, *old.leaf());
}

#[test]
fn identity_missing_after_import_is_an_error_not_a_delete() {
    let Some(fake) = Fake::new() else { return };
    let store = fake.store();
    let pki = TestPki::new("Root A");
    let old = pki.identity("MAC01.local");
    store.put_identity(&old).unwrap();
    fake.fail("find-identity", 0, "     0 valid identities found\n", "");
    fake.clear_log();
    let err = store
        .put_identity(&pki.identity("MAC01.local"))
        .unwrap_err();
    assert!(
        matches!(err, KeystoreError::IdentityNotFoundAfterImport { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("find-identity -v -p ssl-client"),
        "{err}"
    );
    assert!(
        fake.calls()
            .iter()
            .all(|c| c.argv[0] != "delete-identity" && c.argv[0] != "-i")
    );
}

#[test]
fn no_password_or_key_material_in_any_argv() {
    let Some(fake) = Fake::new() else { return };
    let store = fake.store();
    let pki = TestPki::new("Root A");
    let identities = [pki.identity("MAC01.local"), pki.identity("MAC01.local")];
    let secret = SecretValue::new(b"Tr0ub4dor&3 admin password".to_vec());
    let name = SecretName::new("macos.secure-token-admin").unwrap();

    for id in &identities {
        store.put_identity(id).unwrap();
    }
    store.put_secret(&name, &secret).unwrap();
    assert_eq!(store.secret(&name).unwrap(), Some(secret.clone()));
    let _ = store.add_trust_anchor(&pki.root).unwrap();
    store.remove_trust_anchor(&pki.root.sha256()).unwrap();
    assert!(store.remove_secret(&name).unwrap());
    assert!(store.secret(&name).unwrap().is_none());
    store.remove_identity().unwrap();

    let calls = fake.calls();
    assert!(
        calls.len() > 20,
        "the scenario ran {} commands",
        calls.len()
    );
    let forbidden: Vec<String> = [
        String::from_utf8_lossy(secret.expose()).into_owned(),
        hex::encode(secret.expose()),
    ]
    .into_iter()
    .chain(identities.iter().flat_map(key_fragments))
    .collect();
    let mut one_time_passwords = Vec::new();
    for call in &calls {
        for arg in &call.argv {
            for bad in &forbidden {
                assert!(
                    !arg.contains(bad.as_str()),
                    "secret material in argv {:?}",
                    call.argv
                );
            }
        }
        if call.argv[0] == "import" {
            let pw = call.argv[call.argv.iter().position(|a| a == "-P").unwrap() + 1].clone();
            assert!(pw.len() >= 32, "one-time password too short");
            one_time_passwords.push(pw);
        } else {
            assert!(
                !call
                    .argv
                    .iter()
                    .any(|a| a == "-P" || (a == "-w" && call.argv[0] != "find-generic-password")),
                "password option outside import: {:?}",
                call.argv
            );
        }
        // Never the flags the spec forbids.
        assert!(
            !call.argv.iter().any(|a| a == "-x" || a == "-A"),
            "{:?}",
            call.argv
        );
    }
    assert_eq!(one_time_passwords.len(), 2);
    assert_ne!(one_time_passwords[0], one_time_passwords[1]);
    // Each one-time password appears in exactly one argv.
    for pw in &one_time_passwords {
        let uses = calls
            .iter()
            .filter(|c| c.argv.iter().any(|a| a.contains(pw.as_str())))
            .count();
        assert_eq!(uses, 1);
    }
    // The secret went on stdin of `security -i`, whose logged commands omit the value.
    let interactive: Vec<_> = calls.iter().filter(|c| c.argv == ["-i"]).collect();
    assert!(interactive.iter().all(|c| c.stdin));
    assert!(
        interactive
            .iter()
            .any(|c| c.raw["commands"][0][5] == "tessera.secret")
    );
}

#[test]
fn non_root_is_refused_before_security_runs() {
    let Some(fake) = Fake::new() else { return };
    let store = MacKeystore::with_system(
        fake.config(),
        Arc::new(FixedUid(501)),
        Arc::new(SequenceRandomness::new(SEED)),
    )
    .unwrap();
    let err = store
        .put_identity(&TestPki::new("Root A").identity("MAC01.local"))
        .unwrap_err();
    assert!(
        matches!(err, KeystoreError::NotRoot { euid: 501, .. }),
        "{err}"
    );
    assert!(fake.calls().is_empty());
}

#[test]
fn unsafe_configured_paths_are_refused() {
    for bad in ["relative/agent", "/Applications/Evil\" -A \"x", "/x\n/y"] {
        let err = MacKeystore::new(MacKeystoreConfig::new(bad)).unwrap_err();
        assert!(
            matches!(
                err,
                KeystoreError::InvalidConfiguration {
                    setting: "trusted_application",
                    ..
                }
            ),
            "{bad}: {err}"
        );
    }
}

#[test]
fn putting_the_same_identity_again_keeps_it_and_deletes_nothing() {
    let Some(fake) = Fake::new() else { return };
    let store = fake.store();
    let id = TestPki::new("Root A").identity("MAC01.local");
    store.put_identity(&id).unwrap();
    fake.clear_log();
    // The fake answers the second import like the real tool: "already exists".
    store.put_identity(&id).unwrap();
    let calls = fake.calls();
    assert!(calls.iter().any(|c| c.argv[0] == "import"));
    assert!(
        calls.iter().all(|c| c.argv[0] != "delete-identity"),
        "{calls:?}"
    );
    assert_eq!(store.identity().unwrap().unwrap().leaf, *id.leaf());
}
