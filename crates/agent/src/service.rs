//! Installing the agent as a system service and removing it (issue #10: `install`,
//! `uninstall`): a systemd unit on Linux, a launchd daemon on macOS.
//!
//! Every path goes through a [`Layout`] whose root is `/` on a live system and a temporary
//! directory in tests (or an image being prepared with `install --root`), and every OS
//! command (`systemctl`, `launchctl`) is a declared command run by
//! [`tessera_keystore::privileged::CommandRunner`], which tests point at a recording fake.
//!
//! Re-running `install` is an upgrade: the configuration is kept and only the keys given on
//! the command line change, the binary and service file are replaced when they differ, and
//! the service is restarted.

pub mod fs;
#[cfg(test)]
mod tests;

use std::io::Read as _;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use tessera_keystore::privileged::{CommandRunner, Invocation, NoCredentials, commands};
use tessera_keystore::{EffectiveUid, FileKeystore, Keystore as _, KeystoreError};

use crate::config::edit::{ConfigEditor, EditError, template};
use crate::config::{AgentConfig, KeystoreKind};
use fs::{Mode, replace_file, write_atomically};

/// Where the installed binary goes.
pub const INSTALLED_BINARY: &str = "/usr/local/bin/tessera-agent";
/// The systemd unit name.
pub const SYSTEMD_UNIT: &str = "tessera-agent.service";
/// Where the systemd unit is written.
pub const SYSTEMD_UNIT_PATH: &str = "/etc/systemd/system/tessera-agent.service";
/// The launchd label.
pub const LAUNCHD_LABEL: &str = "com.tessera.agent";
/// Where the launchd plist is written.
pub const LAUNCHD_PLIST_PATH: &str = "/Library/LaunchDaemons/com.tessera.agent.plist";
/// The agent's log file on macOS (stdout and stderr of the daemon).
pub const MACOS_LOG_FILE: &str = "/Library/Logs/Tessera/agent.log";
/// Written into the data directory by `install`: `uninstall` deletes only a data directory
/// that carries it, so a mistaken `data_dir = "/var"` can never wipe a system directory.
pub const DATA_DIR_MARKER: &str = ".tessera-agent-data";

/// The service manager an install targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// Linux with systemd.
    Systemd,
    /// macOS with launchd.
    Launchd,
}

impl Platform {
    /// The service manager of the machine this runs on.
    pub fn current() -> Result<Self, ServiceError> {
        if cfg!(target_os = "macos") {
            Ok(Self::Launchd)
        } else if cfg!(target_os = "linux") {
            Ok(Self::Systemd)
        } else {
            Err(ServiceError::UnsupportedPlatform {
                os: std::env::consts::OS,
            })
        }
    }

    /// Where the service definition lives (absolute, as the system sees it).
    pub fn service_file(self) -> &'static Path {
        Path::new(match self {
            Self::Systemd => SYSTEMD_UNIT_PATH,
            Self::Launchd => LAUNCHD_PLIST_PATH,
        })
    }

    /// Where the agent's logs go, in words.
    pub fn log_destination(self) -> &'static str {
        match self {
            Self::Systemd => "the systemd journal (journalctl -u tessera-agent)",
            Self::Launchd => MACOS_LOG_FILE,
        }
    }
}

/// The paths of an installation. Paths are absolute as the installed system sees them;
/// [`Layout::host`] maps them under [`Layout::root`] for reading and writing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The file-system root (`/` on a live system).
    pub root: PathBuf,
    /// The service manager.
    pub platform: Platform,
    /// The installed binary.
    pub binary: PathBuf,
    /// The configuration file.
    pub config: PathBuf,
}

impl Layout {
    /// A layout under `root` with the default binary path and the given configuration path
    /// (made absolute against the current directory if it is relative).
    pub fn new(
        root: impl Into<PathBuf>,
        platform: Platform,
        config: &Path,
    ) -> Result<Self, ServiceError> {
        let config = std::path::absolute(config).map_err(|source| ServiceError::Io {
            action: "resolve the configuration path",
            path: config.to_owned(),
            source,
        })?;
        Ok(Self {
            root: root.into(),
            platform,
            binary: PathBuf::from(INSTALLED_BINARY),
            config,
        })
    }

    /// Whether this layout is the live system (root `/`): only then are services started.
    pub fn is_live(&self) -> bool {
        self.root == Path::new("/")
    }

    /// `logical` as a path on this machine: under the root.
    pub fn host(&self, logical: &Path) -> PathBuf {
        if self.is_live() {
            return logical.to_owned();
        }
        let relative: PathBuf = logical
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();
        self.root.join(relative)
    }

    /// The service definition (unit or plist), as the system sees it.
    pub fn service_file(&self) -> &'static Path {
        self.platform.service_file()
    }
}

/// Why an install or uninstall stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Not running as root on the live system; nothing was written.
    #[error(
        "{action} needs root: run it with sudo (this process runs as uid {euid}); nothing was changed"
    )]
    NotRoot {
        /// `install` or `uninstall`.
        action: &'static str,
        /// The effective uid.
        euid: u32,
    },
    /// No service manager this agent supports.
    #[error(
        "installing as a service is supported on Linux (systemd) and macOS (launchd), not on {os}"
    )]
    UnsupportedPlatform {
        /// The OS name.
        os: &'static str,
    },
    /// A first install without a server.
    #[error(
        "no agent configuration at {config} yet, so install needs at least one --server https://HOST:PORT"
    )]
    NeedsServer {
        /// The configuration path.
        config: PathBuf,
    },
    /// The existing configuration is not valid (and the command line did not fix it).
    #[error(
        "the agent configuration {path} is invalid: {message}; fix it with `tessera-agent config set KEY=VALUE` (or pass --server) and run install again",
        path = path.display()
    )]
    InvalidConfig {
        /// The configuration path.
        path: PathBuf,
        /// What the loader says.
        message: String,
    },
    /// The configuration could not be read, edited or written.
    #[error(transparent)]
    Config(#[from] EditError),
    /// A path that would be written into the unit or plist is not safe there.
    #[error(
        "{what} {path:?} cannot go into the service definition: use an absolute path without '..', spaces, quotes, '%', '$', ';', backslashes or control characters"
    )]
    UnsafePath {
        /// Which setting.
        what: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// A file operation failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A service-manager command failed.
    #[error("{0}")]
    Command(KeystoreError),
    /// The identity could not be removed from the keystore.
    #[error("cannot remove the device identity: {0}")]
    Identity(KeystoreError),
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ServiceError {
    let path = path.to_owned();
    move |source| ServiceError::Io {
        action,
        path,
        source,
    }
}

/// What `install` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    /// Server URLs; on an upgrade they replace `servers` only when given.
    pub servers: Vec<String>,
    /// A data directory; on an upgrade it replaces `data_dir` only when given.
    pub data_dir: Option<PathBuf>,
    /// The binary to install (normally the running one).
    pub source_binary: PathBuf,
}

/// What `install` did.
#[derive(Debug, Clone, Serialize)]
pub struct InstallReport {
    /// The service manager.
    pub platform: Platform,
    /// Whether an existing installation (configuration or service file) was upgraded.
    pub upgrade: bool,
    /// The installed binary.
    pub binary: PathBuf,
    /// Whether the binary was copied (false: already the same file).
    pub binary_changed: bool,
    /// The configuration file.
    pub config: PathBuf,
    /// Whether the configuration was created by this install.
    pub config_created: bool,
    /// The keys this install set (empty: the configuration was kept as it was).
    pub config_keys_set: Vec<String>,
    /// The unit or plist.
    pub service_file: PathBuf,
    /// Whether the unit or plist was (re)written.
    pub service_file_changed: bool,
    /// The data directory.
    pub data_dir: PathBuf,
    /// Whether the service was started or restarted (false for an install under another root).
    pub service_started: bool,
    /// The service-manager commands run, in order.
    pub commands: Vec<String>,
    /// Where the agent logs.
    pub logs: &'static str,
    /// Things the operator should know (a tolerated command failure, unknown keys).
    pub warnings: Vec<String>,
}

/// What to remove besides the service.
#[derive(Debug, Clone, Copy, Default)]
pub struct UninstallOptions {
    /// Keep the configuration file.
    pub keep_config: bool,
    /// Keep the data directory (journal, downloads; the identity is removed regardless).
    pub keep_data: bool,
}

/// What `uninstall` did.
#[derive(Debug, Clone, Serialize)]
pub struct UninstallReport {
    /// The service manager.
    pub platform: Platform,
    /// Whether a unit or plist was found and removed.
    pub service_removed: bool,
    /// Whether the configuration file was removed.
    pub config_removed: bool,
    /// Whether a device identity was found and removed.
    pub identity_removed: bool,
    /// Whether the data directory was removed.
    pub data_dir_removed: bool,
    /// Whether the installed binary was removed.
    pub binary_removed: bool,
    /// The service-manager commands run, in order.
    pub commands: Vec<String>,
    /// Things the operator should know.
    pub warnings: Vec<String>,
}

// What an install will write, decided before anything is written.
struct Plan {
    editor: ConfigEditor,
    config_existed: bool,
    keys_set: Vec<String>,
    config: AgentConfig,
    definition: Vec<u8>,
    warnings: Vec<String>,
}

/// Installs, upgrades and removes the agent service under a [`Layout`].
#[derive(Debug, Clone)]
pub struct Installer {
    layout: Layout,
    runner: CommandRunner,
    uid: Arc<dyn EffectiveUid>,
    service_commands: bool,
}

impl Installer {
    /// An installer for `layout` that runs service commands through `runner` and checks
    /// for root with `uid`. Service commands run only when the layout is the live system:
    /// an install under another root (an image) must not touch this machine's services.
    pub fn new(layout: Layout, runner: CommandRunner, uid: Arc<dyn EffectiveUid>) -> Self {
        let service_commands = layout.is_live();
        Self {
            layout,
            runner,
            uid,
            service_commands,
        }
    }

    /// Runs (or not) the service-manager commands whatever the root; tests point the runner
    /// at a recording fake and turn this on under a temporary root.
    #[must_use]
    pub fn with_service_commands(mut self, run: bool) -> Self {
        self.service_commands = run;
        self
    }

    /// The layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    // Root is needed to touch the live system or its service manager; writing into an
    // image directory the caller owns is not.
    fn require_root(&self, action: &'static str) -> Result<(), ServiceError> {
        let euid = self.uid.effective_uid();
        if (self.layout.is_live() || self.service_commands) && euid != 0 {
            return Err(ServiceError::NotRoot { action, euid });
        }
        Ok(())
    }

    /// Checks root and computes the configuration an install would write (nothing is
    /// written): for enrolling before the service is installed and started.
    pub fn planned_config(&self, options: &InstallOptions) -> Result<AgentConfig, ServiceError> {
        self.require_root("install")?;
        Ok(self.plan(options)?.config)
    }

    // Everything an install decides before it writes anything.
    fn plan(&self, options: &InstallOptions) -> Result<Plan, ServiceError> {
        let layout = &self.layout;
        let (mut editor, config_existed) = ConfigEditor::open(&layout.host(&layout.config))?;
        // Configuration: keep what is there, change only what was asked.
        let servers_toml = (!options.servers.is_empty()).then(|| {
            options
                .servers
                .iter()
                .map(String::as_str)
                .collect::<toml_edit::Array>()
                .to_string()
        });
        let data_dir_text = options.data_dir.as_ref().map(|d| d.display().to_string());
        if !config_existed {
            if options.servers.is_empty() {
                return Err(ServiceError::NeedsServer {
                    config: layout.config.clone(),
                });
            }
            editor = ConfigEditor::from_text(&template(&options.servers))?;
        }
        let mut assignments: Vec<(&str, &str)> = Vec::new();
        if let Some(servers) = &servers_toml {
            assignments.push(("servers", servers));
        }
        if let Some(dir) = &data_dir_text {
            assignments.push(("data_dir", dir));
        }
        editor.set_all(&assignments)?;
        let config = editor
            .check()
            .map_err(|message| ServiceError::InvalidConfig {
                path: layout.config.clone(),
                message,
            })?;
        let mut warnings = Vec::new();
        let unknown = editor.unknown_keys();
        if !unknown.is_empty() {
            warnings.push(format!(
                "{} has keys this agent does not know ({}); the agent will not start until they are removed with `tessera-agent config unset`",
                layout.config.display(),
                unknown.join(", ")
            ));
        }
        let definition = self.service_definition(&config)?;
        let keys_set = assignments.iter().map(|(k, _)| (*k).to_owned()).collect();
        Ok(Plan {
            editor,
            config_existed,
            keys_set,
            config,
            definition,
            warnings,
        })
    }

    /// Installs or upgrades: binary, configuration, data directory, service file, then
    /// (on the live system) reload, enable and start, or restart on an upgrade.
    pub fn install(&self, options: &InstallOptions) -> Result<InstallReport, ServiceError> {
        self.require_root("install")?;
        let layout = &self.layout;
        let config_host = layout.host(&layout.config);
        let service_host = layout.host(layout.service_file());
        let Plan {
            editor,
            config_existed,
            keys_set,
            config,
            definition,
            warnings,
        } = self.plan(options)?;
        let service_existed = service_host.exists();
        let upgrade = config_existed || service_existed;

        // Everything is checked; now write.
        let binary_changed = self.install_binary(&options.source_binary)?;
        if !config_existed || editor.is_modified() {
            editor.save(&config_host)?;
        }
        self.prepare_data_dir(&config)?;
        let service_file_changed =
            std::fs::read(&service_host).ok().as_deref() != Some(definition.as_slice());
        if service_file_changed {
            write_atomically(&service_host, 0o644, &definition)
                .map_err(io_error("write the service definition", &service_host))?;
        }

        let mut report = InstallReport {
            platform: layout.platform,
            upgrade,
            binary: layout.binary.clone(),
            binary_changed,
            config: layout.config.clone(),
            config_created: !config_existed,
            config_keys_set: keys_set,
            service_file: layout.service_file().to_owned(),
            service_file_changed,
            data_dir: config.data_dir.clone(),
            service_started: false,
            commands: Vec::new(),
            logs: layout.platform.log_destination(),
            warnings,
        };
        if self.service_commands {
            self.start(&mut report, service_existed)?;
            report.service_started = true;
        }
        Ok(report)
    }

    fn run(
        &self,
        invocation: &Invocation,
        commands_run: &mut Vec<String>,
    ) -> Result<(), ServiceError> {
        commands_run
            .push(invocation.redacted_command_line(Path::new(invocation.command().program)));
        self.runner
            .run(invocation, &NoCredentials)
            .and_then(tessera_keystore::privileged::CommandOutput::success)
            .map(|_| ())
            .map_err(ServiceError::Command)
    }

    // A failure that does not stop the operation (stopping a service that is not loaded).
    fn run_tolerated(
        &self,
        invocation: &Invocation,
        commands_run: &mut Vec<String>,
        warnings: &mut Vec<String>,
    ) {
        if let Err(e) = self.run(invocation, commands_run) {
            warnings.push(format!("{e} (continuing)"));
        }
    }

    fn start(&self, report: &mut InstallReport, service_existed: bool) -> Result<(), ServiceError> {
        let mut ran = Vec::new();
        let result = match self.layout.platform {
            Platform::Systemd => (|| {
                self.run(
                    &Invocation::new(&commands::SYSTEMCTL_DAEMON_RELOAD),
                    &mut ran,
                )?;
                self.run(
                    &Invocation::new(&commands::SYSTEMCTL_ENABLE_NOW).arg(SYSTEMD_UNIT),
                    &mut ran,
                )?;
                if report.upgrade {
                    // Picks up the new binary and configuration.
                    self.run(
                        &Invocation::new(&commands::SYSTEMCTL_RESTART).arg(SYSTEMD_UNIT),
                        &mut ran,
                    )?;
                }
                Ok(())
            })(),
            Platform::Launchd => {
                let plist = LAUNCHD_PLIST_PATH;
                let target = format!("system/{LAUNCHD_LABEL}");
                let bootstrap =
                    Invocation::new(&commands::LAUNCHCTL_BOOTSTRAP).args(["system", plist]);
                (|| {
                    if service_existed && !report.service_file_changed {
                        let kick = Invocation::new(&commands::LAUNCHCTL_KICKSTART).arg(&target);
                        if self.run(&kick, &mut ran).is_err() {
                            // Not loaded (stopped by hand, or after a reboot that failed
                            // to load it): load it.
                            self.run(&bootstrap, &mut ran)?;
                        }
                    } else {
                        if service_existed {
                            // launchd reads a plist only when loading it.
                            self.run_tolerated(
                                &Invocation::new(&commands::LAUNCHCTL_BOOTOUT).arg(&target),
                                &mut ran,
                                &mut report.warnings,
                            );
                        }
                        self.run(&bootstrap, &mut ran)?;
                    }
                    Ok(())
                })()
            }
        };
        report.commands = ran;
        result
    }

    /// Copies `source` to the installed binary path unless it is that file already or has
    /// the same content. Returns whether it copied.
    fn install_binary(&self, source: &Path) -> Result<bool, ServiceError> {
        let dest = self.layout.host(&self.layout.binary);
        if let (Ok(a), Ok(b)) = (std::fs::canonicalize(source), std::fs::canonicalize(&dest))
            && a == b
        {
            return Ok(false);
        }
        let mut input =
            std::fs::File::open(source).map_err(io_error("read the agent binary", source))?;
        if same_content(source, &dest).map_err(io_error("compare the agent binary with", &dest))? {
            return Ok(false);
        }
        replace_file(&dest, Mode::Exact(0o755), |out| {
            std::io::copy(&mut input, out).map(|_| ())
        })
        .map_err(io_error("install the agent binary to", &dest))?;
        Ok(true)
    }

    fn prepare_data_dir(&self, config: &AgentConfig) -> Result<(), ServiceError> {
        let dir = self.layout.host(&config.data_dir);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io_error("create the data directory", &dir))?;
        let marker = dir.join(DATA_DIR_MARKER);
        if !marker.exists() {
            write_atomically(
                &marker,
                0o644,
                b"Created by `tessera-agent install`; `tessera-agent uninstall` removes this directory.\n",
            )
            .map_err(io_error("write", &marker))?;
        }
        if self.layout.platform == Platform::Launchd {
            let logs = self.layout.host(Path::new(MACOS_LOG_FILE));
            if let Some(parent) = logs.parent() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(parent)
                    .map_err(io_error("create the log directory", parent))?;
            }
        }
        Ok(())
    }

    /// The unit or plist for `config`.
    pub fn service_definition(&self, config: &AgentConfig) -> Result<Vec<u8>, ServiceError> {
        check_unit_path("the binary path", &self.layout.binary)?;
        check_unit_path("the configuration path", &self.layout.config)?;
        check_unit_path("data_dir", &config.data_dir)?;
        match self.layout.platform {
            Platform::Systemd => Ok(systemd_unit(&self.layout).into_bytes()),
            Platform::Launchd => launchd_plist(&self.layout),
        }
    }

    /// Stops and removes the service, the identity, and (unless kept) the configuration and
    /// the data directory, then the installed binary.
    pub fn uninstall(&self, options: UninstallOptions) -> Result<UninstallReport, ServiceError> {
        self.require_root("uninstall")?;
        let layout = &self.layout;
        let config_host = layout.host(&layout.config);
        // The configuration says where the identity and data are; without one, the defaults.
        let config = match ConfigEditor::open(&config_host) {
            Ok((editor, true)) => editor.check().ok(),
            _ => None,
        };
        let mut report = UninstallReport {
            platform: layout.platform,
            service_removed: false,
            config_removed: false,
            identity_removed: false,
            data_dir_removed: false,
            binary_removed: false,
            commands: Vec::new(),
            warnings: Vec::new(),
        };
        let service_host = layout.host(layout.service_file());
        let run_commands = self.service_commands;
        if service_host.exists() {
            let mut ran = Vec::new();
            if run_commands {
                match layout.platform {
                    Platform::Systemd => self.run_tolerated(
                        &Invocation::new(&commands::SYSTEMCTL_DISABLE_NOW).arg(SYSTEMD_UNIT),
                        &mut ran,
                        &mut report.warnings,
                    ),
                    Platform::Launchd => self.run_tolerated(
                        &Invocation::new(&commands::LAUNCHCTL_BOOTOUT)
                            .arg(format!("system/{LAUNCHD_LABEL}")),
                        &mut ran,
                        &mut report.warnings,
                    ),
                }
            }
            remove_file(&service_host)?;
            report.service_removed = true;
            if run_commands && layout.platform == Platform::Systemd {
                self.run(
                    &Invocation::new(&commands::SYSTEMCTL_DAEMON_RELOAD),
                    &mut ran,
                )?;
            }
            report.commands = ran;
        }

        // Without a readable configuration, the defaults say where things are.
        let config = config.unwrap_or_else(|| AgentConfig::for_server("https://unused.invalid"));
        let (keystore_kind, keystore_dir, data_dir) = (
            config.keystore.kind,
            config.keystore_dir(),
            config.data_dir.clone(),
        );
        report.identity_removed =
            self.remove_identity(keystore_kind, &keystore_dir, &mut report.warnings)?;

        if !options.keep_config && config_host.exists() {
            remove_file(&config_host)?;
            report.config_removed = true;
            if let Some(parent) = config_host.parent() {
                // Only when empty: the directory may hold other files of the site's.
                let _ = std::fs::remove_dir(parent);
            }
        }
        if !options.keep_data {
            let dir = layout.host(&data_dir);
            if dir.join(DATA_DIR_MARKER).is_file() {
                std::fs::remove_dir_all(&dir)
                    .map_err(io_error("remove the data directory", &dir))?;
                report.data_dir_removed = true;
            } else if dir.exists() {
                report.warnings.push(format!(
                    "kept the data directory {}: it was not created by `tessera-agent install` (no {DATA_DIR_MARKER}); remove it by hand if it is the agent's",
                    data_dir.display()
                ));
            }
        }
        let binary = layout.host(&layout.binary);
        if binary.exists() {
            remove_file(&binary)?;
            report.binary_removed = true;
        }
        Ok(report)
    }

    fn remove_identity(
        &self,
        kind: KeystoreKind,
        keystore_dir: &Path,
        warnings: &mut Vec<String>,
    ) -> Result<bool, ServiceError> {
        match kind {
            KeystoreKind::File => {
                let dir = self.layout.host(keystore_dir);
                if !dir.exists() {
                    return Ok(false);
                }
                FileKeystore::open(&dir)
                    .and_then(|store| store.remove_identity())
                    .map_err(ServiceError::Identity)
            }
            KeystoreKind::SystemKeychain if self.layout.is_live() => {
                let config = tessera_keystore::MacKeystoreConfig::new(&self.layout.binary);
                tessera_keystore::MacKeystore::new(config)
                    .and_then(|store| store.remove_identity())
                    .map_err(ServiceError::Identity)
            }
            KeystoreKind::SystemKeychain => {
                warnings.push(
                    "the identity in the System keychain was not removed: the keychain is not under --root".to_owned(),
                );
                Ok(false)
            }
        }
    }
}

fn remove_file(path: &Path) -> Result<(), ServiceError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(ServiceError::Io {
            action: "remove",
            path: path.to_owned(),
            source,
        }),
    }
}

fn same_content(a: &Path, b: &Path) -> std::io::Result<bool> {
    let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) else {
        return Ok(false);
    };
    if ma.len() != mb.len() {
        return Ok(false);
    }
    let mut fa = std::io::BufReader::new(std::fs::File::open(a)?);
    let mut fb = std::io::BufReader::new(std::fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            return Ok(true);
        }
        fb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

/// Paths are written into unit files and plists unquoted: refuse anything that systemd
/// would split, expand (`%`, `$`) or that could start a new directive (a newline).
fn check_unit_path(what: &'static str, path: &Path) -> Result<(), ServiceError> {
    // `..` would make the path mean one thing to systemd and another under a --root.
    let ok = path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
        && path.to_str().is_some_and(|s| {
            !s.chars().any(|c| {
                c.is_whitespace()
                    || c.is_control()
                    || matches!(c, '"' | '\'' | '\\' | '%' | '$' | ';')
            })
        });
    if ok {
        Ok(())
    } else {
        Err(ServiceError::UnsafePath {
            what,
            path: path.to_owned(),
        })
    }
}

/// The systemd unit. The agent runs as root without a sandbox: its job is to run package
/// actions, and installers write to /usr, /etc and /opt, load kernel modules, use setuid
/// helpers and create files other services must read, so `ProtectSystem`,
/// `NoNewPrivileges`, a private /tmp or a strict umask would break ordinary packages (a
/// site that wants them adds a drop-in, which upgrades keep). `KillMode=process`: stopping
/// or restarting the agent (an upgrade) must not kill an action half-way; the restarted
/// agent finds the action's supervisor and waits for its result.
pub fn systemd_unit(layout: &Layout) -> String {
    format!(
        "# Written by `tessera-agent install`; an upgrade rewrites it. Local changes belong in\n\
         # a drop-in: systemctl edit tessera-agent\n\
         [Unit]\n\
         Description=Tessera device agent\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart={binary} --config {config} run\n\
         Restart=on-failure\n\
         RestartSec=30\n\
         # Logs go to the journal: journalctl -u tessera-agent\n\
         StandardOutput=journal\n\
         StandardError=journal\n\
         SyslogIdentifier=tessera-agent\n\
         KillMode=process\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        binary = layout.binary.display(),
        config = layout.config.display(),
    )
}

/// The launchd daemon plist (XML).
pub fn launchd_plist(layout: &Layout) -> Result<Vec<u8>, ServiceError> {
    use plist::{Dictionary, Value};
    let mut dict = Dictionary::new();
    dict.insert("Label".into(), Value::String(LAUNCHD_LABEL.into()));
    dict.insert(
        "ProgramArguments".into(),
        Value::Array(
            [
                layout.binary.display().to_string(),
                "--config".into(),
                layout.config.display().to_string(),
                "run".into(),
            ]
            .into_iter()
            .map(Value::String)
            .collect(),
        ),
    );
    dict.insert("RunAtLoad".into(), Value::Boolean(true));
    dict.insert("KeepAlive".into(), Value::Boolean(true));
    // Do not respawn faster than this after a crash.
    dict.insert("ThrottleInterval".into(), Value::Integer(30.into()));
    dict.insert(
        "StandardOutPath".into(),
        Value::String(MACOS_LOG_FILE.into()),
    );
    dict.insert(
        "StandardErrorPath".into(),
        Value::String(MACOS_LOG_FILE.into()),
    );
    dict.insert("Umask".into(), Value::Integer(0o077.into()));
    let mut out = Vec::new();
    Value::Dictionary(dict)
        .to_writer_xml(&mut out)
        .map_err(|e| ServiceError::Io {
            action: "serialise the launchd plist for",
            path: PathBuf::from(LAUNCHD_PLIST_PATH),
            source: std::io::Error::other(e.to_string()),
        })?;
    out.push(b'\n');
    Ok(out)
}
