//! Install, upgrade and uninstall under a temporary root, with `systemctl` and `launchctl`
//! replaced by a fake that records every call (systemd and launchd cannot run here).

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tessera_keystore::privileged::CommandRunner;
use tessera_keystore::{
    CertificateDer, FileKeystore, FixedUid, Identity, Keystore as _, PrivateKeyDer,
};

use super::*;
use crate::config::edit::ConfigEditor;

struct Rig {
    dir: tempfile::TempDir,
    platform: Platform,
}

impl Rig {
    fn new(platform: Platform) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rig = Self { dir, platform };
        std::fs::create_dir_all(rig.root()).unwrap();
        std::fs::create_dir_all(rig.tools()).unwrap();
        // The runner clears the environment, so the log path is written into the script.
        let script = format!(
            "#!/bin/bash\n\
             echo \"$(basename \"$0\") $*\" >> {log}\n\
             if [ -f {fail} ] && grep -qxF -- \"$*\" {fail}; then echo \"simulated failure of $*\" >&2; exit 5; fi\n",
            log = rig.log().display(),
            fail = rig.tools().join("fail").display(),
        );
        for tool in ["systemctl", "launchctl"] {
            let path = rig.tools().join(tool);
            std::fs::write(&path, &script).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::write(rig.source_binary(), b"agent binary v1").unwrap();
        rig
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn tools(&self) -> PathBuf {
        self.dir.path().join("tools")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("calls.log")
    }

    fn source_binary(&self) -> PathBuf {
        self.dir.path().join("tessera-agent-new")
    }

    fn fail_on(&self, args: &str) {
        std::fs::write(self.tools().join("fail"), format!("{args}\n")).unwrap();
    }

    /// The recorded calls since the last take.
    fn take_calls(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        let _ = std::fs::remove_file(self.log());
        text.lines().map(str::to_owned).collect()
    }

    fn installer_as(&self, uid: u32) -> Installer {
        let layout = Layout::new(
            self.root(),
            self.platform,
            Path::new("/etc/tessera/agent.toml"),
        )
        .unwrap();
        let runner = CommandRunner::new(Arc::new(FixedUid(uid)))
            .with_tool_path("/bin/systemctl", self.tools().join("systemctl"))
            .with_tool_path("/bin/launchctl", self.tools().join("launchctl"));
        Installer::new(layout, runner, Arc::new(FixedUid(uid))).with_service_commands(true)
    }

    fn installer(&self) -> Installer {
        self.installer_as(0)
    }

    fn options(&self, servers: &[&str]) -> InstallOptions {
        InstallOptions {
            servers: servers.iter().map(|s| (*s).to_owned()).collect(),
            data_dir: None,
            source_binary: self.source_binary(),
        }
    }

    fn path(&self, logical: &str) -> PathBuf {
        self.root().join(logical.trim_start_matches('/'))
    }

    fn config_text(&self) -> String {
        std::fs::read_to_string(self.path("/etc/tessera/agent.toml")).unwrap()
    }

    /// What `tessera-agent config set` does.
    fn config_set(&self, assignments: &[(&str, &str)]) {
        let path = self.path("/etc/tessera/agent.toml");
        let (mut editor, existed) = ConfigEditor::open(&path).unwrap();
        assert!(existed);
        editor.set_all(assignments).unwrap();
        editor.save(&path).unwrap();
    }

    fn files_under_root(&self) -> Vec<String> {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                out.push(path.strip_prefix(base).unwrap().display().to_string());
                if path.is_dir() {
                    walk(&path, base, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root(), &self.root(), &mut out);
        out.sort();
        out
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn test_identity() -> Identity {
    let certified = rcgen::generate_simple_self_signed(vec!["dev-01".to_owned()]).unwrap();
    Identity::new(
        CertificateDer::from_der(certified.cert.der().to_vec()).unwrap(),
        vec![],
        PrivateKeyDer::from_pkcs8_der(certified.signing_key.serialize_der()).unwrap(),
    )
    .unwrap()
}

#[test]
fn fresh_systemd_install_writes_everything_and_starts_the_service() {
    let rig = Rig::new(Platform::Systemd);
    let report = rig
        .installer()
        .install(&rig.options(&["https://tessera.example:8443"]))
        .unwrap();
    assert!(!report.upgrade);
    assert!(report.binary_changed && report.config_created && report.service_file_changed);
    assert!(report.service_started);
    assert_eq!(
        rig.take_calls(),
        [
            "systemctl daemon-reload",
            "systemctl enable --now tessera-agent.service"
        ]
    );
    assert_eq!(
        report.commands,
        [
            "/bin/systemctl daemon-reload",
            "/bin/systemctl enable --now tessera-agent.service"
        ]
    );

    let binary = rig.path(INSTALLED_BINARY);
    assert_eq!(std::fs::read(&binary).unwrap(), b"agent binary v1");
    assert_eq!(mode(&binary), 0o755);
    let config_path = rig.path("/etc/tessera/agent.toml");
    assert_eq!(mode(&config_path), 0o644);
    let config = AgentConfig::parse(&rig.config_text()).unwrap();
    assert_eq!(
        config,
        AgentConfig::for_server("https://tessera.example:8443")
    );
    assert!(rig.config_text().contains("# log.level") || rig.config_text().contains("# level: "));

    let data = rig.path("/var/lib/tessera");
    assert_eq!(mode(&data), 0o700);
    assert!(data.join(DATA_DIR_MARKER).is_file());

    let unit = std::fs::read_to_string(rig.path(SYSTEMD_UNIT_PATH)).unwrap();
    for line in [
        "ExecStart=/usr/local/bin/tessera-agent --config /etc/tessera/agent.toml run",
        "Restart=on-failure",
        "KillMode=process",
        "StandardOutput=journal",
        "WantedBy=multi-user.target",
    ] {
        assert!(unit.contains(line), "{line} missing from\n{unit}");
    }
}

#[test]
fn second_install_keeps_config_edits_and_restarts() {
    let rig = Rig::new(Platform::Systemd);
    rig.installer()
        .install(&rig.options(&["https://a:8443"]))
        .unwrap();
    rig.take_calls();
    // What a site does between installs: edit with `config set` and by hand.
    rig.config_set(&[("log.level", "debug"), ("schedule.frag_latency", "30")]);
    let edited = format!(
        "{}\n# our note: keep frag_latency at 30\n",
        rig.config_text()
    );
    std::fs::write(rig.path("/etc/tessera/agent.toml"), &edited).unwrap();

    let report = rig.installer().install(&rig.options(&[])).unwrap();
    assert!(report.upgrade);
    assert!(!report.config_created && report.config_keys_set.is_empty());
    assert!(!report.binary_changed && !report.service_file_changed);
    assert_eq!(
        rig.config_text(),
        edited,
        "an upgrade without flags must not touch the file"
    );
    assert_eq!(
        rig.take_calls(),
        [
            "systemctl daemon-reload",
            "systemctl enable --now tessera-agent.service",
            "systemctl restart tessera-agent.service"
        ]
    );

    // A new binary and a new server list: only `servers` changes in the file.
    std::fs::write(rig.source_binary(), b"agent binary v2").unwrap();
    let report = rig
        .installer()
        .install(&rig.options(&["https://b:8443", "https://c:8443"]))
        .unwrap();
    assert!(report.binary_changed);
    assert_eq!(report.config_keys_set, ["servers"]);
    assert_eq!(
        std::fs::read(rig.path(INSTALLED_BINARY)).unwrap(),
        b"agent binary v2"
    );
    let text = rig.config_text();
    assert_eq!(
        text,
        edited.replace(
            "servers = [\"https://a:8443\"]",
            "servers = [\"https://b:8443\", \"https://c:8443\"]"
        )
    );
    let config = AgentConfig::parse(&text).unwrap();
    assert_eq!(config.log.level, "debug");
    assert_eq!(config.schedule.frag_latency, Some(30));
}

#[test]
fn the_unit_leaves_packages_free_and_actions_running_across_restarts() {
    let rig = Rig::new(Platform::Systemd);
    let mut options = rig.options(&["https://a"]);
    options.data_dir = Some("/srv/tessera".into());
    rig.installer().install(&options).unwrap();
    let unit = std::fs::read_to_string(rig.path(SYSTEMD_UNIT_PATH)).unwrap();
    // Installers write to /usr and /etc and use setuid helpers: no sandbox by default.
    for absent in [
        "ProtectSystem",
        "NoNewPrivileges",
        "PrivateTmp",
        "UMask",
        "ReadWritePaths",
    ] {
        assert!(!unit.contains(absent), "{absent} in\n{unit}");
    }
    // A restart (upgrade) must not kill a running action.
    assert!(unit.contains("KillMode=process\n"), "{unit}");
    assert!(rig.path("/srv/tessera").join(DATA_DIR_MARKER).is_file());
}

#[test]
fn unsafe_paths_are_refused_before_anything_is_written() {
    let rig = Rig::new(Platform::Systemd);
    let mut options = rig.options(&["https://a"]);
    options.data_dir = Some("/srv/my data\nExecStartPre=/bin/sh".into());
    let err = rig.installer().install(&options).unwrap_err();
    assert!(
        matches!(
            err,
            ServiceError::UnsafePath {
                what: "data_dir",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        rig.files_under_root().is_empty(),
        "{:?}",
        rig.files_under_root()
    );
    assert!(rig.take_calls().is_empty());
    for bad in [
        "/var/lib/../../etc",
        "relative/dir",
        "/srv/100%",
        "/srv/$HOME",
    ] {
        options.data_dir = Some(bad.into());
        let err = rig.installer().install(&options).unwrap_err();
        assert!(
            matches!(err, ServiceError::UnsafePath { .. }),
            "{bad}: {err}"
        );
    }
    assert!(rig.files_under_root().is_empty());
}

#[test]
fn not_root_is_refused_before_anything_is_written() {
    let rig = Rig::new(Platform::Systemd);
    let err = rig
        .installer_as(1000)
        .install(&rig.options(&["https://a"]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "install needs root: run it with sudo (this process runs as uid 1000); nothing was changed"
    );
    assert!(rig.files_under_root().is_empty());
    assert!(rig.take_calls().is_empty());
    let err = rig
        .installer_as(1000)
        .uninstall(UninstallOptions::default())
        .unwrap_err();
    assert!(err.to_string().starts_with("uninstall needs root"), "{err}");
}

#[test]
fn fresh_install_needs_a_server() {
    let rig = Rig::new(Platform::Systemd);
    let err = rig.installer().install(&rig.options(&[])).unwrap_err();
    assert!(err.to_string().contains("--server"), "{err}");
    assert!(rig.files_under_root().is_empty());
}

#[test]
fn failing_systemctl_is_reported_with_its_command_line() {
    let rig = Rig::new(Platform::Systemd);
    rig.fail_on("enable --now tessera-agent.service");
    let err = rig
        .installer()
        .install(&rig.options(&["https://a"]))
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("enable --now tessera-agent.service"),
        "{text}"
    );
    assert!(text.contains("simulated failure"), "{text}");
}

#[test]
fn install_under_an_image_root_runs_no_commands() {
    let rig = Rig::new(Platform::Systemd);
    let installer = rig.installer().with_service_commands(false);
    let report = installer.install(&rig.options(&["https://a"])).unwrap();
    assert!(!report.service_started && report.commands.is_empty());
    assert!(rig.take_calls().is_empty());
    assert!(rig.path(SYSTEMD_UNIT_PATH).is_file());
}

#[test]
fn launchd_install_writes_the_plist_and_bootstraps_then_kickstarts() {
    let rig = Rig::new(Platform::Launchd);
    let report = rig
        .installer()
        .install(&rig.options(&["https://a"]))
        .unwrap();
    assert_eq!(report.logs, MACOS_LOG_FILE);
    assert_eq!(
        rig.take_calls(),
        ["launchctl bootstrap system /Library/LaunchDaemons/com.tessera.agent.plist"]
    );
    let plist = plist::Value::from_file(rig.path(LAUNCHD_PLIST_PATH)).unwrap();
    let dict = plist.as_dictionary().unwrap();
    assert_eq!(dict["Label"].as_string(), Some(LAUNCHD_LABEL));
    let args: Vec<_> = dict["ProgramArguments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_string().unwrap())
        .collect();
    assert_eq!(
        args,
        [
            "/usr/local/bin/tessera-agent",
            "--config",
            "/etc/tessera/agent.toml",
            "run"
        ]
    );
    assert_eq!(dict["RunAtLoad"].as_boolean(), Some(true));
    assert_eq!(dict["KeepAlive"].as_boolean(), Some(true));
    assert_eq!(dict["StandardOutPath"].as_string(), Some(MACOS_LOG_FILE));
    assert_eq!(dict["StandardErrorPath"].as_string(), Some(MACOS_LOG_FILE));
    assert!(rig.path("/Library/Logs/Tessera").is_dir());

    // Unchanged plist: a restart.
    rig.installer().install(&rig.options(&[])).unwrap();
    assert_eq!(
        rig.take_calls(),
        ["launchctl kickstart -k system/com.tessera.agent"]
    );

    // Not loaded any more: kickstart fails, so it is loaded again.
    rig.fail_on("kickstart -k system/com.tessera.agent");
    rig.installer().install(&rig.options(&[])).unwrap();
    assert_eq!(
        rig.take_calls(),
        [
            "launchctl kickstart -k system/com.tessera.agent",
            "launchctl bootstrap system /Library/LaunchDaemons/com.tessera.agent.plist"
        ]
    );
}

#[test]
fn launchd_changed_plist_is_booted_out_and_loaded_again() {
    let rig = Rig::new(Platform::Launchd);
    rig.installer()
        .install(&rig.options(&["https://a"]))
        .unwrap();
    rig.take_calls();
    // An older version's plist on disk.
    std::fs::write(rig.path(LAUNCHD_PLIST_PATH), "<plist/>").unwrap();
    let report = rig.installer().install(&rig.options(&[])).unwrap();
    assert!(report.service_file_changed);
    assert_eq!(
        rig.take_calls(),
        [
            "launchctl bootout system/com.tessera.agent",
            "launchctl bootstrap system /Library/LaunchDaemons/com.tessera.agent.plist"
        ]
    );
}

#[test]
fn uninstall_removes_service_config_identity_data_and_binary() {
    let rig = Rig::new(Platform::Systemd);
    rig.installer()
        .install(&rig.options(&["https://a"]))
        .unwrap();
    let keystore = FileKeystore::open(rig.path("/var/lib/tessera/keystore")).unwrap();
    keystore.put_identity(&test_identity()).unwrap();
    rig.take_calls();

    let report = rig
        .installer()
        .uninstall(UninstallOptions::default())
        .unwrap();
    assert_eq!(
        rig.take_calls(),
        [
            "systemctl disable --now tessera-agent.service",
            "systemctl daemon-reload"
        ]
    );
    assert!(report.service_removed && report.config_removed && report.identity_removed);
    assert!(report.data_dir_removed && report.binary_removed);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    // Only the emptied parent directories remain.
    let left = rig.files_under_root();
    assert!(left.iter().all(|p| rig.root().join(p).is_dir()), "{left:?}");
    assert!(!rig.path("/etc/tessera").exists());

    // Nothing left: a second uninstall succeeds and does nothing.
    let report = rig
        .installer()
        .uninstall(UninstallOptions::default())
        .unwrap();
    assert!(!report.service_removed && !report.config_removed && !report.identity_removed);
    assert!(rig.take_calls().is_empty());
}

#[test]
fn uninstall_keep_config_then_install_again_keeps_the_edits() {
    let rig = Rig::new(Platform::Systemd);
    let mut options = rig.options(&["https://a"]);
    options.data_dir = Some("/srv/tessera".into());
    rig.installer().install(&options).unwrap();
    rig.config_set(&[("device.hostname", "mac-01")]);
    let keystore = FileKeystore::open(rig.path("/srv/tessera/keystore")).unwrap();
    keystore.put_identity(&test_identity()).unwrap();
    let edited = rig.config_text();

    let report = rig
        .installer()
        .uninstall(UninstallOptions {
            keep_config: true,
            keep_data: true,
        })
        .unwrap();
    assert!(report.service_removed && report.identity_removed);
    assert!(!report.config_removed && !report.data_dir_removed);
    assert_eq!(rig.config_text(), edited);
    assert!(rig.path("/srv/tessera").join(DATA_DIR_MARKER).is_file());
    let keystore = FileKeystore::open(rig.path("/srv/tessera/keystore")).unwrap();
    assert!(keystore.identity().unwrap().is_none());
    assert!(!rig.path(SYSTEMD_UNIT_PATH).exists());

    rig.take_calls();
    let report = rig.installer().install(&rig.options(&[])).unwrap();
    assert!(report.upgrade && report.service_file_changed);
    assert_eq!(rig.config_text(), edited);
}

#[test]
fn uninstall_keeps_a_data_dir_it_did_not_create() {
    let rig = Rig::new(Platform::Systemd);
    rig.installer()
        .install(&rig.options(&["https://a"]))
        .unwrap();
    std::fs::create_dir_all(rig.path("/var/lib/other")).unwrap();
    std::fs::write(rig.path("/var/lib/other/precious"), "x").unwrap();
    rig.config_set(&[("data_dir", "/var/lib/other")]);
    let report = rig
        .installer()
        .uninstall(UninstallOptions::default())
        .unwrap();
    assert!(!report.data_dir_removed);
    assert!(rig.path("/var/lib/other/precious").is_file());
    assert!(
        report.warnings[0].contains("/var/lib/other"),
        "{:?}",
        report.warnings
    );
}

#[test]
fn launchd_uninstall_boots_out_and_tolerates_a_daemon_that_is_not_loaded() {
    let rig = Rig::new(Platform::Launchd);
    rig.installer()
        .install(&rig.options(&["https://a"]))
        .unwrap();
    rig.take_calls();
    rig.fail_on("bootout system/com.tessera.agent");
    let report = rig
        .installer()
        .uninstall(UninstallOptions::default())
        .unwrap();
    assert_eq!(
        rig.take_calls(),
        ["launchctl bootout system/com.tessera.agent"]
    );
    assert!(report.service_removed);
    assert!(!rig.path(LAUNCHD_PLIST_PATH).exists());
    assert!(
        report.warnings[0].contains("simulated failure"),
        "{:?}",
        report.warnings
    );
}

#[test]
fn planned_config_is_what_install_writes_and_writes_nothing() {
    let rig = Rig::new(Platform::Systemd);
    let mut options = rig.options(&["https://a:8443"]);
    options.data_dir = Some("/srv/tessera".into());
    // What `install --token` enrolls with, before anything is written.
    let planned = rig.installer().planned_config(&options).unwrap();
    assert!(rig.files_under_root().is_empty());
    assert!(rig.take_calls().is_empty());
    rig.installer().install(&options).unwrap();
    assert_eq!(AgentConfig::parse(&rig.config_text()).unwrap(), planned);
    assert_eq!(planned.data_dir, Path::new("/srv/tessera"));

    let err = rig.installer_as(501).planned_config(&options).unwrap_err();
    assert!(
        matches!(err, ServiceError::NotRoot { euid: 501, .. }),
        "{err}"
    );
}

#[test]
fn an_invalid_existing_config_is_named_and_nothing_is_written() {
    let rig = Rig::new(Platform::Systemd);
    let config = rig.path("/etc/tessera/agent.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, "servers = [\"http://plain\"]\n").unwrap();
    let err = rig.installer().install(&rig.options(&[])).unwrap_err();
    assert!(matches!(err, ServiceError::InvalidConfig { .. }), "{err}");
    assert!(err.to_string().contains("https://"), "{err}");
    assert_eq!(
        rig.files_under_root(),
        ["etc", "etc/tessera", "etc/tessera/agent.toml"]
    );
    // The command line can repair it.
    rig.installer()
        .install(&rig.options(&["https://fixed"]))
        .unwrap();
    assert!(rig.config_text().contains("https://fixed"));
}
