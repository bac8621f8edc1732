//! FileKeystore against the real file system: round trips, modes, permission refusals and
//! crash safety at every step of every write.

mod common;

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::TestPki;
use tessera_keystore::{
    AnchorInstall, FileKeystore, Identity, InstalledIdentity, Keystore, KeystoreError,
    PrivateKeyAccess, SecretName, SecretValue, WriteHook, WriteStep,
};

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn key_of(installed: &InstalledIdentity) -> &[u8] {
    match &installed.private_key {
        PrivateKeyAccess::Material(k) => k.as_der(),
        PrivateKeyAccess::Keychain { .. } => panic!("file store hands out key material"),
    }
}

fn same_identity(installed: &InstalledIdentity, identity: &Identity) -> bool {
    installed.leaf == *identity.leaf()
        && installed.chain == identity.chain()
        && key_of(installed) == identity.private_key().as_der()
}

fn current_generation(root: &Path) -> PathBuf {
    root.join("identity")
        .join(std::fs::read_link(root.join("identity/current")).unwrap())
}

#[test]
fn identity_round_trip_with_modes_from_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("keystore");
    let store = FileKeystore::open(&root).unwrap();
    assert!(store.identity().unwrap().is_none());
    let pki = TestPki::new("Root A");
    let id = pki.identity("MAC01.local");
    store.put_identity(&id).unwrap();

    let back = store.identity().unwrap().unwrap();
    assert!(same_identity(&back, &id));
    assert_eq!(mode(&root), 0o700);
    for sub in ["identity", "anchors", "secrets"] {
        assert_eq!(mode(&root.join(sub)), 0o700, "{sub}");
    }
    let generation = current_generation(&root);
    assert_eq!(mode(&generation), 0o700);
    assert_eq!(mode(&generation.join("key.pem")), 0o600);
    assert_eq!(mode(&generation.join("cert.pem")), 0o644);
    assert_eq!(mode(&generation.join("chain.pem")), 0o644);

    // A second handle (a restarted agent) reads the same identity.
    let reopened = FileKeystore::open(&root).unwrap();
    assert!(same_identity(&reopened.identity().unwrap().unwrap(), &id));

    assert!(store.remove_identity().unwrap());
    assert!(store.identity().unwrap().is_none());
    assert!(!store.remove_identity().unwrap());
}

#[test]
fn files_are_real_pem_that_openssl_reads() {
    if !tessera_testkit::tool("openssl", "reading keystore files with OpenSSL") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = FileKeystore::open(dir.path().join("ks")).unwrap();
    let pki = TestPki::new("Root A");
    store.put_identity(&pki.identity("MAC01.local")).unwrap();
    let generation = current_generation(store.root());
    // The key and the certificate must carry the same public key.
    let pubkey = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let key = generation.join("key.pem");
    let cert = generation.join("cert.pem");
    let from_key = pubkey(&["pkey", "-pubout", "-in", key.to_str().unwrap()]);
    let from_cert = pubkey(&["x509", "-noout", "-pubkey", "-in", cert.to_str().unwrap()]);
    assert_eq!(from_key, from_cert);
    // The chain verifies to the root as OpenSSL sees it.
    let root_pem = dir.path().join("root.pem");
    std::fs::write(&root_pem, pki.root.to_pem()).unwrap();
    let out = std::process::Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(&root_pem)
        .arg("-untrusted")
        .arg(generation.join("chain.pem"))
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn renewal_replaces_and_cleans_the_old_generation() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileKeystore::open(dir.path().join("ks")).unwrap();
    let pki = TestPki::new("Root A");
    let old = pki.identity("MAC01.local");
    let new = pki.identity("MAC01.local");
    store.put_identity(&old).unwrap();
    store.put_identity(&new).unwrap();
    assert!(same_identity(&store.identity().unwrap().unwrap(), &new));
    let entries: Vec<_> = std::fs::read_dir(store.root().join("identity"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(entries.len(), 2, "current + one generation: {entries:?}");
}

#[test]
fn anchors_and_secrets_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileKeystore::open(dir.path().join("ks")).unwrap();
    let a = TestPki::new("Root A");
    let b = TestPki::new("Root B");
    assert_eq!(
        store.add_trust_anchor(&a.root).unwrap(),
        AnchorInstall::Installed
    );
    assert_eq!(
        store.add_trust_anchor(&b.root).unwrap(),
        AnchorInstall::Installed
    );
    // Adding twice is idempotent.
    assert_eq!(
        store.add_trust_anchor(&a.root).unwrap(),
        AnchorInstall::Installed
    );
    let mut anchors = store.trust_anchors().unwrap();
    anchors.sort_by_key(tessera_keystore::CertificateDer::sha256);
    let mut want = vec![a.root.clone(), b.root.clone()];
    want.sort_by_key(tessera_keystore::CertificateDer::sha256);
    assert_eq!(anchors, want);
    let file = store
        .root()
        .join(format!("anchors/{}.pem", a.root.sha256()));
    assert_eq!(mode(&file), 0o644);
    // An intermediate is not an anchor.
    assert!(matches!(
        store.add_trust_anchor(&a.intermediate),
        Err(KeystoreError::AnchorNotSelfSigned { .. })
    ));
    assert!(store.remove_trust_anchor(&a.root.sha256()).unwrap());
    assert!(!store.remove_trust_anchor(&a.root.sha256()).unwrap());
    assert_eq!(store.trust_anchors().unwrap(), vec![b.root.clone()]);

    let name = SecretName::new("macos.secure-token-admin").unwrap();
    assert!(store.secret(&name).unwrap().is_none());
    let value = SecretValue::new(b"pa ss\nw\0rd".to_vec());
    store.put_secret(&name, &value).unwrap();
    assert_eq!(store.secret(&name).unwrap(), Some(value));
    assert_eq!(
        mode(&store.root().join("secrets/macos.secure-token-admin")),
        0o600
    );
    store
        .put_secret(&name, &SecretValue::new(b"second".to_vec()))
        .unwrap();
    assert_eq!(
        store.secret(&name).unwrap(),
        Some(SecretValue::new(b"second".to_vec()))
    );
    assert!(store.remove_secret(&name).unwrap());
    assert!(store.secret(&name).unwrap().is_none());
}

// ---- permission refusals -------------------------------------------------------------

#[test]
fn world_readable_key_file_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileKeystore::open(dir.path().join("ks")).unwrap();
    store
        .put_identity(&TestPki::new("Root A").identity("MAC01.local"))
        .unwrap();
    let key = current_generation(store.root()).join("key.pem");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = store.identity().unwrap_err();
    assert!(
        matches!(err, KeystoreError::InsecurePermissions { .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("chmod 600 {}", key.display())),
        "{msg}"
    );
    assert!(msg.contains("0644"), "{msg}");
}

#[test]
fn group_readable_secret_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileKeystore::open(dir.path().join("ks")).unwrap();
    let name = SecretName::new("token").unwrap();
    store
        .put_secret(&name, &SecretValue::new(b"x".to_vec()))
        .unwrap();
    let path = store.root().join("secrets/token");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let msg = store.secret(&name).unwrap_err().to_string();
    assert!(msg.contains("chmod 600"), "{msg}");
}

#[test]
fn directory_owned_by_another_user_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ks");
    std::fs::create_dir(&root).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).unwrap();
    let euid = std::fs::metadata(dir.path()).unwrap().uid();
    if euid != 0 {
        eprintln!("SKIPPED: chown to another uid needs root");
        return;
    }
    std::os::unix::fs::chown(&root, Some(65534), None).unwrap();
    let err = FileKeystore::open(&root).unwrap_err();
    assert!(
        matches!(err, KeystoreError::WrongOwner { owner: 65534, .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("owned by uid 65534"), "{msg}");
    assert!(
        msg.contains(&format!("chown {euid} {}", root.display())),
        "{msg}"
    );

    // A store opened earlier also refuses once a subdirectory changes hands.
    std::os::unix::fs::chown(&root, Some(euid), None).unwrap();
    let store = FileKeystore::open(&root).unwrap();
    std::os::unix::fs::chown(root.join("secrets"), Some(65534), None).unwrap();
    let err = store.secret(&SecretName::new("x").unwrap()).unwrap_err();
    assert!(matches!(err, KeystoreError::WrongOwner { .. }), "{err}");
}

#[test]
fn loose_directory_mode_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ks");
    std::fs::create_dir(&root).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let msg = FileKeystore::open(&root).unwrap_err().to_string();
    assert!(
        msg.contains(&format!("chmod 700 {}", root.display())),
        "{msg}"
    );
}

#[test]
fn symlinked_key_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileKeystore::open(dir.path().join("ks")).unwrap();
    store
        .put_identity(&TestPki::new("Root A").identity("MAC01.local"))
        .unwrap();
    let key = current_generation(store.root()).join("key.pem");
    let elsewhere = dir.path().join("elsewhere.pem");
    std::fs::rename(&key, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &key).unwrap();
    assert!(matches!(
        store.identity().unwrap_err(),
        KeystoreError::UnexpectedFileType { .. }
    ));
}

// ---- crash safety ----------------------------------------------------------------------

/// Fails the n-th step after being armed, like a kill at that point; records every step.
#[derive(Debug, Default)]
struct CrashAt {
    calls: AtomicUsize,
    target: Mutex<Option<usize>>,
    steps: Mutex<Vec<WriteStep>>,
}

impl CrashAt {
    fn arm(&self, after: usize) {
        *self.target.lock().unwrap() = Some(self.calls.load(Ordering::SeqCst) + after);
        self.steps.lock().unwrap().clear();
    }
    fn disarm(&self) {
        *self.target.lock().unwrap() = None;
        self.steps.lock().unwrap().clear();
    }
}

impl WriteHook for CrashAt {
    fn before(&self, step: WriteStep, _path: &Path) -> std::io::Result<()> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        self.steps.lock().unwrap().push(step);
        if *self.target.lock().unwrap() == Some(n) {
            return Err(std::io::Error::other("simulated crash"));
        }
        Ok(())
    }
}

fn store_with_hook(root: &Path, hook: &Arc<CrashAt>) -> FileKeystore {
    FileKeystore::builder(root)
        .write_hook(hook.clone())
        .open()
        .unwrap()
}

/// The steps of one identity replacement, learnt by running it once.
fn identity_write_steps(pki: &TestPki) -> Vec<WriteStep> {
    let dir = tempfile::tempdir().unwrap();
    let hook = Arc::new(CrashAt::default());
    let store = store_with_hook(&dir.path().join("ks"), &hook);
    store.put_identity(&pki.identity("MAC01.local")).unwrap();
    hook.disarm();
    store.put_identity(&pki.identity("MAC01.local")).unwrap();
    hook.steps.lock().unwrap().clone()
}

#[test]
fn crash_at_any_step_of_an_identity_write_leaves_a_complete_identity() {
    let pki = TestPki::new("Root A");
    let steps = identity_write_steps(&pki);
    let commit = steps.iter().position(|s| *s == WriteStep::Rename).unwrap();
    assert!(
        steps.contains(&WriteStep::MidWrite) && steps.len() > 10,
        "{steps:?}"
    );

    let mut torn_write_seen = false;
    for (k, step) in steps.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ks");
        let hook = Arc::new(CrashAt::default());
        let store = store_with_hook(&root, &hook);
        let old = pki.identity("MAC01.local");
        let new = pki.identity("MAC01.local");
        store.put_identity(&old).unwrap();

        hook.arm(k);
        let result = store.put_identity(&new);
        if *step == WriteStep::RemoveOld {
            // Cleanup after the commit is best effort; the write itself succeeded.
            result.unwrap();
        } else {
            let err = result.unwrap_err();
            assert!(
                err.to_string().contains("simulated crash"),
                "step {k} {step:?}: {err}"
            );
        }

        // "Restart": a fresh handle with no hook reads what is on disk.
        let after = FileKeystore::open(&root)
            .unwrap()
            .identity()
            .unwrap()
            .unwrap();
        // The hook runs before its step, so a failure at the rename itself keeps the old one.
        if k <= commit {
            assert!(
                same_identity(&after, &old),
                "step {k} {step:?}: old identity lost"
            );
        } else {
            assert!(
                same_identity(&after, &new),
                "step {k} {step:?}: new identity incomplete"
            );
        }
        if *step == WriteStep::MidWrite {
            // Prove the torn file really exists on disk (and is simply not reachable).
            torn_write_seen |= std::fs::read_dir(root.join("identity"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.is_dir() && !p.is_symlink())
                .flat_map(|g| std::fs::read_dir(g).unwrap().map(|e| e.unwrap().path()))
                .any(|f| {
                    let text = std::fs::read_to_string(f).unwrap_or_default();
                    text.starts_with("-----BEGIN") && !text.trim_end().ends_with("-----")
                });
        }

        // The store recovers: the next write succeeds and leaves no leftovers.
        let third = pki.identity("MAC01.local");
        let store = FileKeystore::open(&root).unwrap();
        store.put_identity(&third).unwrap();
        assert!(same_identity(&store.identity().unwrap().unwrap(), &third));
        let left = std::fs::read_dir(root.join("identity")).unwrap().count();
        assert_eq!(left, 2, "step {k} {step:?}: leftovers not cleaned");
    }
    assert!(
        torn_write_seen,
        "no step produced a torn key/certificate file"
    );
}

#[test]
fn crash_at_any_step_of_a_secret_or_anchor_write_keeps_the_old_value() {
    let pki = TestPki::new("Root A");
    let name = SecretName::new("token").unwrap();
    for k in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ks");
        let hook = Arc::new(CrashAt::default());
        let store = store_with_hook(&root, &hook);
        store
            .put_secret(&name, &SecretValue::new(b"old secret".to_vec()))
            .unwrap();
        hook.arm(k);
        let err = store
            .put_secret(&name, &SecretValue::new(b"new secret".to_vec()))
            .unwrap_err();
        assert!(err.to_string().contains("simulated crash"));
        let step = hook.steps.lock().unwrap()[k];
        let value = FileKeystore::open(&root)
            .unwrap()
            .secret(&name)
            .unwrap()
            .unwrap();
        // Only a failure after the rename (the directory fsync) leaves the new value.
        let want: &[u8] = if step == WriteStep::SyncDirectory {
            b"new secret"
        } else {
            b"old secret"
        };
        assert_eq!(value.expose(), want, "step {k} {step:?}");

        hook.arm(k);
        assert!(store.add_trust_anchor(&pki.root).is_err());
        let anchors = FileKeystore::open(&root).unwrap().trust_anchors().unwrap();
        // Either absent or complete, never a torn certificate.
        assert!(
            anchors.is_empty() || anchors == vec![pki.root.clone()],
            "step {k}"
        );
    }
}
