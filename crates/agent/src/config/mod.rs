//! The agent's configuration file (TOML, default [`DEFAULT_CONFIG_PATH`]).
//!
//! Every key is optional except `servers`; unknown keys are kept by the editor
//! ([`edit`]) so that an upgrade never resets a site's file, but the loader here refuses
//! them by name, so a typo is not silently ignored.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub mod edit;

/// Where the agent looks for its configuration unless told otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/tessera/agent.toml";
/// The default data directory (journal, downloads, state).
pub const DEFAULT_DATA_DIR: &str = "/var/lib/tessera";

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Server base URLs (`https://host:port`), tried in order until one answers.
    pub servers: Vec<String>,
    /// Journal, downloads and state.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Where the identity and trust anchors live.
    #[serde(default)]
    pub keystore: KeystoreConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// Local overrides of the download schedule the server sends.
    #[serde(default)]
    pub schedule: ScheduleOverrides,
    /// Local overrides of the detected device facts.
    #[serde(default)]
    pub device: DeviceOverrides,
    /// Speak to an unmodified OCS Inventory server: no client certificate, MD5 only.
    #[serde(default)]
    pub ocs_compat: bool,
    /// CA certificates (PEM) trusted for the servers instead of the anchors stored at
    /// enrollment (needed with `ocs_compat`, where there is no enrollment).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Renew the device certificate at a check-in when it expires within this many days.
    #[serde(default = "default_renew_days")]
    pub renew_days: u32,
}

fn default_renew_days() -> u32 {
    30
}

fn default_data_dir() -> PathBuf {
    PathBuf::from(DEFAULT_DATA_DIR)
}

/// Which keystore holds the identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeystoreConfig {
    /// `file` (a 0700 directory; the Linux default) or `system-keychain` (macOS).
    #[serde(default)]
    pub kind: KeystoreKind,
    /// The file keystore's directory (default `<data_dir>/keystore`).
    #[serde(default)]
    pub path: Option<PathBuf>,
}

/// The keystore back ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum KeystoreKind {
    /// A directory of 0600 files.
    #[cfg_attr(not(target_os = "macos"), default)]
    File,
    /// The macOS System keychain.
    #[cfg_attr(target_os = "macos", default)]
    SystemKeychain,
}

/// Logging settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug` or `trace` (command-line `-v`/`-q` win).
    #[serde(default = "default_log_level")]
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: default_log_level(),
        }
    }
}

fn default_log_level() -> String {
    "info".to_owned()
}

/// Local overrides of the OCS download settings; an unset key takes the server's value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleOverrides {
    /// Cycles per period.
    pub period_length: Option<NonZeroU32>,
    /// Seconds after each step of a package.
    pub frag_latency: Option<u32>,
    /// Seconds after each cycle.
    pub cycle_latency: Option<u32>,
    /// Seconds after each period.
    pub period_latency: Option<u32>,
    /// Minutes an action may run before its process group is killed.
    pub execution_timeout_minutes: Option<u32>,
    /// Minutes between check-ins (default: the server's `PROLOG_FREQ` hours).
    pub check_in_minutes: Option<u32>,
}

/// Local overrides of what the agent detects about the device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceOverrides {
    /// The computer name (default: what `hostname` prints).
    pub hostname: Option<String>,
    /// The hardware serial number (default: DMI / `ioreg`, else the machine id).
    pub serial: Option<String>,
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the agent configuration {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for the agent (the message names the key).
    #[error("invalid agent configuration {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, as the TOML parser says it.
        message: String,
    },
}

impl AgentConfig {
    /// A configuration for one server with every other key at its default.
    pub fn for_server(url: impl Into<String>) -> Self {
        Self {
            servers: vec![url.into()],
            data_dir: default_data_dir(),
            keystore: KeystoreConfig::default(),
            log: LogConfig::default(),
            schedule: ScheduleOverrides::default(),
            device: DeviceOverrides::default(),
            ocs_compat: false,
            ca_file: None,
            renew_days: default_renew_days(),
        }
    }

    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses the text of a configuration file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let config: Self = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        if config.servers.is_empty() {
            return Err("`servers` lists no server URL".to_owned());
        }
        for url in &config.servers {
            if !(url.starts_with("https://") || (config.ocs_compat && url.starts_with("http://"))) {
                return Err(format!(
                    "server URL {url:?} must start with https:// (plain http only with ocs_compat = true)"
                ));
            }
        }
        Ok(config)
    }

    /// The file keystore's directory.
    pub fn keystore_dir(&self) -> PathBuf {
        self.keystore
            .path
            .clone()
            .unwrap_or_else(|| self.data_dir.join("keystore"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_file_takes_defaults() {
        let config = AgentConfig::parse("servers = [\"https://a:8443\"]\n").unwrap();
        assert_eq!(config, AgentConfig::for_server("https://a:8443"));
        assert_eq!(
            config.keystore_dir(),
            Path::new("/var/lib/tessera/keystore")
        );
    }

    #[test]
    fn unknown_keys_and_empty_servers_are_named() {
        let error = AgentConfig::parse("servers = [\"https://a\"]\nsevers = 1\n").unwrap_err();
        assert!(error.contains("severs"), "{error}");
        let error = AgentConfig::parse("servers = []\n").unwrap_err();
        assert!(error.contains("servers"), "{error}");
    }

    #[test]
    fn plain_http_only_in_ocs_compat() {
        assert!(AgentConfig::parse("servers = [\"http://a\"]\n").is_err());
        assert!(AgentConfig::parse("servers = [\"http://a\"]\nocs_compat = true\n").is_ok());
    }
}
