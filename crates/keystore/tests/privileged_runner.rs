//! The command runner against a recording fake tool: class checks happen before anything
//! runs, and credentials reach the tool on stdin or in its environment, never in argv.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tessera_keystore::privileged::{
    CommandRunner, CredentialDelivery, CredentialRequirement, Invocation, NoCredentials,
    PrivilegeClass, PrivilegedCommand, commands,
};
use tessera_keystore::{FileKeystore, FixedUid, Keystore, KeystoreError, SecretName, SecretValue};

const ADMIN_PASSWORD: &[u8] = b"Secure-Token admin pw";

/// A tool that records its argv, stdin and environment into `dir`.
fn recording_tool(dir: &Path) -> PathBuf {
    let tool = dir.join("tool");
    let d = dir.display();
    std::fs::write(
        &tool,
        format!(
            "#!/bin/bash\nprintf '%s\\n' \"$@\" > {d}/argv\ncat > {d}/stdin\nenv > {d}/env\necho done\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    tool
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

fn keystore_with_admin_password(dir: &Path) -> FileKeystore {
    let store = FileKeystore::open(dir.join("ks")).unwrap();
    store
        .put_secret(
            &SecretName::new(commands::SECURE_TOKEN_ADMIN_SECRET).unwrap(),
            &SecretValue::new(ADMIN_PASSWORD.to_vec()),
        )
        .unwrap();
    store
}

fn secure_token_on() -> Invocation {
    Invocation::new(&commands::SYSADMINCTL_SECURE_TOKEN_ON).args([
        "alice",
        "-password",
        "-",
        "-adminUser",
        "admin",
        "-adminPassword",
        "-",
    ])
}

#[test]
fn credential_goes_on_stdin_not_argv() {
    let dir = tempfile::tempdir().unwrap();
    let tool = recording_tool(dir.path());
    let store = keystore_with_admin_password(dir.path());
    let runner =
        CommandRunner::new(Arc::new(FixedUid(0))).with_tool_path("/usr/sbin/sysadminctl", &tool);
    let out = runner
        .run(&secure_token_on(), &store)
        .unwrap()
        .success()
        .unwrap();
    assert_eq!(out.stdout.as_str(), "done\n");
    assert_eq!(
        read(dir.path(), "argv"),
        "-secureTokenOn\nalice\n-password\n-\n-adminUser\nadmin\n-adminPassword\n-\n"
    );
    assert_eq!(
        read(dir.path(), "stdin").as_bytes(),
        [ADMIN_PASSWORD, b"\n"].concat()
    );
    let env = read(dir.path(), "env");
    assert!(
        !env.contains("Secure-Token"),
        "credential leaked into the environment"
    );
    // Nothing inherited: only the fixed PATH and locale (bash adds PWD, SHLVL, _).
    assert!(env.contains("PATH=/usr/bin:/bin:/usr/sbin:/sbin"), "{env}");
    assert!(!env.contains("CARGO"), "{env}");
    assert!(!out.command_line.contains("Secure-Token"));
}

#[test]
fn missing_credential_names_the_setting_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let tool = recording_tool(dir.path());
    let empty = FileKeystore::open(dir.path().join("ks")).unwrap();
    let runner =
        CommandRunner::new(Arc::new(FixedUid(0))).with_tool_path("/usr/sbin/sysadminctl", &tool);
    let err = runner.run(&secure_token_on(), &empty).unwrap_err();
    assert!(
        matches!(err, KeystoreError::MissingCredential { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("`macos.secure-token-admin`"),
        "{err}"
    );
    assert!(!dir.path().join("argv").exists());
}

#[test]
fn root_classes_are_refused_for_non_root_and_run_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let tool = recording_tool(dir.path());
    let store = keystore_with_admin_password(dir.path());
    let runner = CommandRunner::new(Arc::new(FixedUid(501)))
        .with_tool_path("/usr/sbin/sysadminctl", &tool)
        .with_tool_path("/usr/bin/security", &tool);
    for inv in [
        secure_token_on(),
        Invocation::new(&commands::SECURITY_DELETE_IDENTITY).args(["-Z", "00"]),
    ] {
        let err = runner.run(&inv, &store).unwrap_err();
        assert!(
            matches!(err, KeystoreError::NotRoot { euid: 501, .. }),
            "{err}"
        );
    }
    assert!(!dir.path().join("argv").exists());
    // "Root not required" runs for anyone.
    runner
        .run(
            &Invocation::new(&commands::SECURITY_FIND_IDENTITY).arg("-v"),
            &NoCredentials,
        )
        .unwrap()
        .success()
        .unwrap();
    assert_eq!(read(dir.path(), "argv"), "find-identity\n-v\n");
}

static ENV_TOOL: PrivilegedCommand = PrivilegedCommand {
    name: "test env tool",
    program: "/usr/local/bin/test-env-tool",
    subcommand: &["go"],
    class: PrivilegeClass::CredentialsRequired(CredentialRequirement {
        secret: "test.env-credential",
        delivery: CredentialDelivery::Environment("TOOL_PASSWORD"),
    }),
    one_time_secret_on_argv: false,
    platform: "any",
    purpose: "test",
};

#[test]
fn environment_delivery_sets_only_the_childs_variable() {
    let dir = tempfile::tempdir().unwrap();
    let tool = recording_tool(dir.path());
    let store = FileKeystore::open(dir.path().join("ks")).unwrap();
    store
        .put_secret(
            &SecretName::new("test.env-credential").unwrap(),
            &SecretValue::new(b"env-secret".to_vec()),
        )
        .unwrap();
    let runner = CommandRunner::new(Arc::new(FixedUid(0)))
        .with_tool_path("/usr/local/bin/test-env-tool", &tool);
    runner
        .run(&Invocation::new(&ENV_TOOL), &store)
        .unwrap()
        .success()
        .unwrap();
    assert!(
        read(dir.path(), "env")
            .lines()
            .any(|l| l == "TOOL_PASSWORD=env-secret")
    );
    assert_eq!(read(dir.path(), "argv"), "go\n");
    assert_eq!(read(dir.path(), "stdin"), "");
    assert!(
        std::env::var_os("TOOL_PASSWORD").is_none(),
        "parent environment untouched"
    );
}

#[test]
fn failing_tool_error_has_redacted_command_line_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let tool = dir.path().join("security");
    std::fs::write(&tool, "#!/bin/bash\necho 'security: boom' >&2\nexit 3\n").unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    let runner =
        CommandRunner::new(Arc::new(FixedUid(0))).with_tool_path("/usr/bin/security", &tool);
    let inv = Invocation::new(&commands::SECURITY_IMPORT)
        .args(["x.p12", "-P"])
        .one_time_secret(zeroize::Zeroizing::new("ONE-TIME-PW".into()));
    let err = runner
        .run(&inv, &NoCredentials)
        .unwrap()
        .success()
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("security: boom") && msg.contains("<redacted>"),
        "{msg}"
    );
    assert!(!msg.contains("ONE-TIME-PW"), "{msg}");
}

#[test]
fn missing_program_is_a_clear_error() {
    let runner = CommandRunner::new(Arc::new(FixedUid(0)))
        .with_tool_path("/usr/bin/security", "/nonexistent/security");
    let err = runner
        .run(
            &Invocation::new(&commands::SECURITY_FIND_IDENTITY),
            &NoCredentials,
        )
        .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/security"), "{err}");
}

/// docs/privileged-commands.md carries the table generated from the declarations; this keeps
/// the two from drifting. Regenerate with `markdown_table()` when a command is added.
#[test]
fn documented_table_matches_the_declarations() {
    let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/privileged-commands.md");
    let doc = std::fs::read_to_string(&doc_path).unwrap_or_default();
    let table = tessera_keystore::privileged::markdown_table();
    assert!(
        doc.contains(&table),
        "{} is out of date; paste this table into it:\n{table}",
        doc_path.display()
    );
}

#[test]
fn hung_tool_is_killed_with_its_children_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let tool = dir.path().join("security");
    // The grandchild `sleep` holds the output pipes; the whole group must die.
    std::fs::write(&tool, "#!/bin/bash\nsleep 600\n").unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    let runner = CommandRunner::new(Arc::new(FixedUid(0)))
        .with_tool_path("/usr/bin/security", &tool)
        .with_timeout(std::time::Duration::from_millis(300));
    let err = runner
        .run(
            &Invocation::new(&commands::SECURITY_FIND_IDENTITY),
            &NoCredentials,
        )
        .unwrap_err();
    assert!(matches!(err, KeystoreError::TimedOut { .. }), "{err}");
    assert!(err.to_string().contains("was killed"), "{err}");
}
