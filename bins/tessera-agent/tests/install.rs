//! `tessera-agent install/uninstall --root DIR` as a real process: the files an install
//! writes into an image, and the acceptance item of issue #10 — a second install keeps the
//! edits made with `config set` in between. (Starting services is tested in the library
//! against a recording fake `systemctl`/`launchctl`; here nothing is started.)
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::Output;

struct Image {
    dir: tempfile::TempDir,
}

fn agent(args: &[&str]) -> Output {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn run(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tessera-agent"))
        .args(args)
        .env_remove("TESSERA_AGENT_CONFIG")
        .env_remove("TESSERA_ENROLL_TOKEN")
        .output()
        .unwrap()
}

impl Image {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn path(&self, logical: &str) -> PathBuf {
        self.root().join(logical.trim_start_matches('/'))
    }

    fn install(&self, extra: &[&str]) -> serde_json::Value {
        let root = self.root().display().to_string();
        let mut args = vec!["install", "--root", &root, "--json"];
        args.extend_from_slice(extra);
        let json: serde_json::Value = serde_json::from_slice(&agent(&args).stdout).unwrap();
        assert_eq!(json["enrolled"], serde_json::Value::Null);
        json["install"].clone()
    }

    fn config_set(&self, assignments: &[&str]) {
        let config = self.path("/etc/tessera/agent.toml").display().to_string();
        let mut args = vec!["--config", &config, "config", "set"];
        args.extend_from_slice(assignments);
        agent(&args);
    }

    fn config_text(&self) -> String {
        std::fs::read_to_string(self.path("/etc/tessera/agent.toml")).unwrap()
    }
}

#[test]
fn install_twice_keeps_config_edits() {
    let image = Image::new();
    let first = image.install(&["--server", "https://tessera.example:8443"]);
    assert_eq!(first["upgrade"], false);
    assert_eq!(first["config_created"], true);
    assert_eq!(first["service_started"], false);
    assert_eq!(first["commands"], serde_json::json!([]));
    let binary = std::fs::read(image.path("/usr/local/bin/tessera-agent")).unwrap();
    assert_eq!(
        binary,
        std::fs::read(env!("CARGO_BIN_EXE_tessera-agent")).unwrap()
    );
    let unit =
        std::fs::read_to_string(image.path("/etc/systemd/system/tessera-agent.service")).unwrap();
    assert!(
        unit.contains(
            "ExecStart=/usr/local/bin/tessera-agent --config /etc/tessera/agent.toml run\n"
        ),
        "{unit}"
    );

    image.config_set(&["log.level=debug", "schedule.check_in_minutes=15"]);
    let edited = format!("{}# pinned by the desktop team\n", image.config_text());
    std::fs::write(image.path("/etc/tessera/agent.toml"), &edited).unwrap();

    let second = image.install(&[]);
    assert_eq!(second["upgrade"], true);
    assert_eq!(second["binary_changed"], false);
    assert_eq!(second["config_keys_set"], serde_json::json!([]));
    assert_eq!(image.config_text(), edited);

    // Giving a server on an upgrade changes `servers` and nothing else.
    let third = image.install(&["--server", "https://new.example:8443"]);
    assert_eq!(third["config_keys_set"], serde_json::json!(["servers"]));
    assert_eq!(
        image.config_text(),
        edited.replace("https://tessera.example:8443", "https://new.example:8443")
    );
}

#[test]
fn uninstall_with_and_without_keep_config() {
    let image = Image::new();
    let root = image.root().display().to_string();
    image.install(&[
        "--server",
        "https://a.example",
        "--data-dir",
        "/srv/tessera",
    ]);
    image.config_set(&["device.hostname=mac-01"]);
    let edited = image.config_text();

    let out = agent(&["uninstall", "--root", &root, "--keep-config", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["service_removed"], true);
    assert_eq!(report["config_removed"], false);
    assert_eq!(report["data_dir_removed"], true);
    assert_eq!(image.config_text(), edited);
    assert!(
        !image
            .path("/etc/systemd/system/tessera-agent.service")
            .exists()
    );
    assert!(!image.path("/srv/tessera").exists());
    assert!(!image.path("/usr/local/bin/tessera-agent").exists());

    // Installing again picks the kept configuration up.
    let again = image.install(&[]);
    assert_eq!(again["upgrade"], true);
    assert_eq!(image.config_text(), edited);

    let out = agent(&["uninstall", "--root", &root]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("removed:  configuration /etc/tessera/agent.toml"),
        "{text}"
    );
    assert!(!image.path("/etc/tessera/agent.toml").exists());
}

#[test]
fn install_refusals_change_nothing() {
    let image = Image::new();
    let root = image.root().display().to_string();
    // Outside the root, which must stay empty.
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("token");
    std::fs::write(&token_file, "secret-token-value\n").unwrap();
    let token = token_file.display().to_string();
    for (args, says) in [
        (vec!["install", "--root", &root], "--server"),
        (
            vec![
                "install",
                "--root",
                &root,
                "--server",
                "http://plain.example",
            ],
            "https://",
        ),
        (
            vec![
                "install",
                "--root",
                &root,
                "--server",
                "https://a",
                "--data-dir",
                "/srv/my data",
            ],
            "data_dir",
        ),
        (
            vec![
                "install",
                "--root",
                &root,
                "--server",
                "https://a",
                "--token-file",
                &token,
            ],
            "--root",
        ),
        (
            vec![
                "install",
                "--root",
                &root,
                "--server",
                "https://a",
                "--ca-fingerprint",
                "ab",
            ],
            "--token-file",
        ),
    ] {
        let out = run(&args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("secret-token-value"), "{err}");
        assert_eq!(
            std::fs::read_dir(image.root()).unwrap().count(),
            0,
            "{args:?}"
        );
    }
}
