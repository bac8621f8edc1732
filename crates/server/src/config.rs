//! The server's configuration file (`<data>/config.toml`).
//!
//! Every key has a default, so a fresh data directory works with an empty file; `serve`
//! writes the defaults out on first run so that an admin sees what can be changed.

use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tessera_protocol::ocs::DownloadConf;

use crate::Error;

/// `config.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the listeners bind. Loopback unless an admin says otherwise.
    pub listen: Listen,
    /// How devices and agents reach this server.
    pub public: Public,
    /// The OCS Inventory NG protocol.
    pub ocs: Ocs,
    /// Enrollment.
    pub enrollment: Enrollment,
    /// Where the server's state is kept.
    pub database: Database,
}

/// Listener addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Listen {
    /// HTTPS: enrollment, the OCS endpoint, packages, the Munki repository, the admin API.
    pub https: SocketAddr,
    /// Plain HTTP: only the CRL and fragments of packages that say `PROTO=HTTP`.
    pub http: SocketAddr,
}

impl Default for Listen {
    fn default() -> Self {
        Self {
            https: SocketAddr::from(([127, 0, 0, 1], 8443)),
            http: SocketAddr::from(([127, 0, 0, 1], 8080)),
        }
    }
}

/// The names and addresses clients use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Public {
    /// DNS names and IP addresses the TLS server certificate is issued for.
    pub names: Vec<String>,
    /// `host:port` of the HTTPS listener as clients reach it (OCS `INFO_LOC`/`PACK_LOC`).
    pub https_authority: String,
    /// `host:port` of the HTTP listener as clients reach it (the CRL distribution point).
    pub http_authority: String,
}

impl Default for Public {
    fn default() -> Self {
        Self {
            names: vec!["localhost".into(), "127.0.0.1".into()],
            https_authority: "127.0.0.1:8443".into(),
            http_authority: "127.0.0.1:8080".into(),
        }
    }
}

impl Public {
    /// The CRL URL written into every device certificate.
    pub fn crl_url(&self) -> String {
        format!("http://{}/crl/device-ca.crl", self.http_authority)
    }

    /// `INFO_LOC` / `PACK_LOC` for OCS agents (no scheme: the agent adds it).
    pub fn download_location(&self) -> String {
        format!("{}/download", self.https_authority)
    }
}

/// OCS protocol settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ocs {
    /// Serve unmodified OCS agents, which cannot present a client certificate. Off by
    /// default: turning it on lets anyone who can reach the server check in.
    pub compat: bool,
    /// Hours between check-ins (`PROLOG_FREQ`).
    pub prolog_freq_hours: u32,
    /// The schedule sent to agents.
    pub download: DownloadConf,
}

impl Default for Ocs {
    fn default() -> Self {
        Self {
            compat: false,
            prolog_freq_hours: 12,
            download: DownloadConf::default(),
        }
    }
}

/// Enrollment settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Enrollment {
    /// The group manifest every new computer manifest includes.
    pub default_group: String,
    /// Days a device certificate is valid.
    pub certificate_days: u32,
}

impl Default for Enrollment {
    fn default() -> Self {
        Self {
            default_group: "groups/default".into(),
            certificate_days: 365,
        }
    }
}

/// The database settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Database {
    /// `sqlite:<file>` (relative to the data directory) for the embedded database, or
    /// `postgres://user@host:port/database` for PostgreSQL. A password is better kept out
    /// of this file: PostgreSQL's `PGPASSWORD` and `~/.pgpass` are read too.
    pub url: String,
}

impl Default for Database {
    fn default() -> Self {
        Self {
            url: format!("sqlite:{DEFAULT_SQLITE_FILE}"),
        }
    }
}

/// The embedded database's file in the data directory.
pub const DEFAULT_SQLITE_FILE: &str = "tessera.db";

/// The engine `[database] url` selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// SQLite, at this path (relative paths are in the data directory).
    Sqlite(std::path::PathBuf),
    /// PostgreSQL, at this URL (which may hold a password: never log it).
    Postgres(String),
}

impl Database {
    /// Which engine the URL names; the error says what is accepted.
    pub fn parse_url(&self) -> Result<DatabaseUrl, String> {
        let url = self.url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_owned()));
        }
        if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if !path.is_empty() {
                return Ok(DatabaseUrl::Sqlite(path.into()));
            }
        }
        // The value is not repeated: a mistyped PostgreSQL URL may hold a password.
        Err(
            "[database] url must be `sqlite:<file>` (the default is `sqlite:tessera.db`, in the \
             data directory) or `postgres://user@host:port/database`"
                .to_owned(),
        )
    }
}

impl Config {
    /// Reads `path`, naming the file and the offending key on error.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
            path: path.to_owned(),
            source: e,
        })?;
        toml::from_str(&text).map_err(|e| Error::Config {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    /// The file's text, with a header comment.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string_pretty(self).unwrap_or_default();
        format!(
            "# Tessera server configuration. Every key is optional; removing one restores its default.\n\
             # Changes take effect at the next start of `tessera-server serve`.\n\n{body}"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_bind_loopback_and_round_trip() {
        let config = Config::default();
        assert!(config.listen.https.ip().is_loopback() && config.listen.http.ip().is_loopback());
        assert!(!config.ocs.compat);
        let back: Config = toml::from_str(&config.to_toml()).unwrap();
        assert_eq!(back, config);
    }

    #[test]
    fn an_empty_file_is_the_default_and_unknown_keys_are_named() {
        assert_eq!(toml::from_str::<Config>("").unwrap(), Config::default());
        let error = toml::from_str::<Config>("[ocs]\ncompatt = true\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("compatt"), "{error}");
    }

    #[test]
    fn the_database_url_selects_the_engine() {
        assert_eq!(
            Config::default().database.parse_url(),
            Ok(DatabaseUrl::Sqlite("tessera.db".into()))
        );
        let config: Config =
            toml::from_str("[database]\nurl = \"postgres://tessera@db.example:5432/tessera\"\n")
                .unwrap();
        assert_eq!(
            config.database.parse_url(),
            Ok(DatabaseUrl::Postgres(
                "postgres://tessera@db.example:5432/tessera".into()
            ))
        );
        for bad in ["mysql://x:secret@h/db", "sqlite:", "", "tessera.db"] {
            let database = Database { url: bad.into() };
            let error = database.parse_url().unwrap_err();
            assert!(error.contains("postgres://"), "{error}");
            assert!(!error.contains("secret"), "{error}");
        }
    }

    #[test]
    fn urls_derive_from_the_public_authorities() {
        let public = Public::default();
        assert_eq!(public.crl_url(), "http://127.0.0.1:8080/crl/device-ca.crl");
        assert_eq!(public.download_location(), "127.0.0.1:8443/download");
    }
}
