//! The data directory: everything a server node keeps, created on first use.
//!
//! ```text
//! <data>/
//!   config.toml            settings (written with defaults on first run)
//!   ca/                    the device CA (tessera-ca's layout, see docs/ca.md)
//!   tls/server.pem         the HTTPS certificate and chain (issued by the device CA)
//!   tls/server.key         its key (0600)
//!   admin-token.sha256     SHA-256 of the admin token (the token is printed once)
//!   tessera.db             the SQLite database (WAL), unless config.toml names PostgreSQL
//!   repo/                  the Munki repository (manifests, catalogs, pkgsinfo, pkgs, …)
//!   repo/download/<ID>/    OCS packages: info + archive
//! ```
//!
//! [`DataDir::prepare`] brings a directory to that state and says what it had to do, so
//! that `serve` can tell the admin once, on the first run, what was created and how to
//! enroll a device.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use sha2::{Digest as _, Sha256};
use tessera_ca::{Ca, CaHome, CaSettings, InitOptions, KeyAlgorithm, RandomSerials, SystemClock};
use tessera_manifest::{Manifest, Repo};
use tessera_package::Repository;
use tessera_store::{PgStore, SqliteStore};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer as _, X509Certificate};

use crate::Error;
use crate::config::{Config, DEFAULT_SQLITE_FILE, DatabaseUrl};
use crate::ocs::SITE_DEFAULT_MANIFEST;
use crate::secret;
use crate::server_cert;
use crate::tls::TlsMaterial;

const CONFIG: &str = "config.toml";
const ADMIN_TOKEN: &str = "admin-token.sha256";
const TLS_CERT: &str = "tls/server.pem";
const TLS_KEY: &str = "tls/server.key";

/// Renew the server certificate at start-up when less than this is left.
const RENEW_BEFORE: time::Duration = time::Duration::days(30);

/// A data directory path.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

/// Something [`DataDir::prepare`] created, for the admin to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// The data directory itself.
    Directory(PathBuf),
    /// `config.toml` with the defaults.
    Config(PathBuf),
    /// The device CA.
    CertificateAuthority {
        /// Its directory.
        dir: PathBuf,
        /// SHA-256 fingerprint of the root certificate (what agents pin).
        fingerprint: String,
    },
    /// A new HTTPS certificate (first run, names changed, or expiring).
    ServerCertificate {
        /// The names it is valid for.
        names: Vec<String>,
    },
    /// The database.
    Database(PathBuf),
    /// The admin token; shown here once and never again.
    AdminToken(String),
    /// The Munki repository with the site default and default group manifests.
    Repository(PathBuf),
}

/// The database `config.toml` names, opened and migrated.
#[derive(Debug, Clone)]
pub enum Database {
    /// The embedded SQLite file (the default).
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Postgres(PgStore),
}

/// A prepared data directory: everything `serve` needs. `S` is the store: the embedded
/// [`SqliteStore`] from [`DataDir::prepare`], either engine from [`DataDir::prepare_any`].
pub struct Prepared<S = SqliteStore> {
    /// The configuration.
    pub config: Config,
    /// The device CA.
    pub ca: Ca,
    /// The database.
    pub store: S,
    /// The HTTPS listener's certificates and the client CA with its CRL.
    pub tls: TlsMaterial,
    /// The device CA's current CRL (DER), for the HTTP listener.
    pub crl_der: Vec<u8>,
    /// The root's CRL (DER), for a two-tier CA.
    pub root_crl_der: Option<Vec<u8>>,
    /// SHA-256 of the admin token.
    pub admin_token_hash: String,
    /// The OCS package repository.
    pub packages: Repository,
    /// What had to be created.
    pub created: Vec<Created>,
}

impl<S> Prepared<S> {
    /// The same, with `store` in place of the one opened (which is returned).
    pub fn with_store<T>(self, store: T) -> (Prepared<T>, S) {
        (
            Prepared {
                config: self.config,
                ca: self.ca,
                store,
                tls: self.tls,
                crl_der: self.crl_der,
                root_crl_der: self.root_crl_der,
                admin_token_hash: self.admin_token_hash,
                packages: self.packages,
                created: self.created,
            },
            self.store,
        )
    }
}

impl DataDir {
    /// A data directory at `root` (not touched until [`DataDir::prepare`]).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The Munki repository.
    pub fn repo(&self) -> PathBuf {
        self.root.join("repo")
    }

    /// The device CA's home.
    pub fn ca_home(&self) -> CaHome {
        CaHome::in_data_dir(&self.root)
    }

    /// The default SQLite database file (`config.toml` may name another, or PostgreSQL).
    pub fn database(&self) -> PathBuf {
        self.root.join(DEFAULT_SQLITE_FILE)
    }

    /// The root CA certificate (PEM), for agents' `--ca`.
    pub fn ca_certificate_pem(ca: &Ca) -> String {
        let der = ca.root_der();
        pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))
    }

    /// [`DataDir::prepare`] for a data directory on the embedded SQLite database; one whose
    /// `config.toml` names PostgreSQL is refused (use [`DataDir::prepare_any`]).
    pub async fn prepare(&self) -> Result<Prepared, Error> {
        let (prepared, store) = self.prepare_any().await?.with_store(());
        match store {
            Database::Sqlite(store) => Ok(prepared.with_store(store).0),
            Database::Postgres(_) => Err(Error::Config {
                path: self.root.join(CONFIG),
                reason: "[database] url names PostgreSQL; this needs the embedded SQLite database"
                    .to_owned(),
            }),
        }
    }

    /// Creates whatever is missing and opens the rest, with the database `[database] url`
    /// names.
    pub async fn prepare_any(&self) -> Result<Prepared<Database>, Error> {
        let mut created = Vec::new();
        if !self.root.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.root)
                .map_err(|e| io(&self.root, e))?;
            created.push(Created::Directory(self.root.clone()));
        }

        let config_path = self.root.join(CONFIG);
        let config = if config_path.exists() {
            Config::load(&config_path)?
        } else {
            let config = Config::default();
            write_file(&config_path, config.to_toml().as_bytes(), 0o644)?;
            created.push(Created::Config(config_path.clone()));
            config
        };

        let home = self.ca_home();
        let clock = Arc::new(SystemClock);
        let serials = Arc::new(RandomSerials::from_os());
        let ca = if home.exists() {
            home.open(clock, serials)?
        } else {
            let base = format!("http://{}", config.public.http_authority);
            let mut settings = CaSettings::with_crl_base(&base)?;
            settings.leaf_validity_days =
                u16::try_from(config.enrollment.certificate_days).unwrap_or(u16::MAX);
            let options = InitOptions {
                common_name: "Tessera Device CA".into(),
                key_algorithm: KeyAlgorithm::default(),
                intermediate: false,
                settings,
            };
            let ca = home.initialise(&options, clock, serials)?;
            created.push(Created::CertificateAuthority {
                dir: home.dir().to_owned(),
                fingerprint: fingerprint(ca.root_der()),
            });
            ca
        };
        let crls = home.current_crls(&ca)?;

        let (server_chain, server_key, renewed) = self.server_identity(&ca, &config)?;
        if renewed {
            created.push(Created::ServerCertificate {
                names: config.public.names.clone(),
            });
        }

        let url = config
            .database
            .parse_url()
            .map_err(|reason| Error::Config {
                path: config_path.clone(),
                reason,
            })?;
        let store = match url {
            DatabaseUrl::Sqlite(file) => {
                let database = self.root.join(file);
                let new_database = !database.exists();
                let store = SqliteStore::open(&database)
                    .await
                    .map_err(|e| Error::Store(format!("{}: {e}", database.display())))?;
                if new_database {
                    created.push(Created::Database(database));
                }
                Database::Sqlite(store)
            }
            // The URL stays out of the message: it may hold a password.
            DatabaseUrl::Postgres(url) => {
                Database::Postgres(PgStore::open(&url).await.map_err(|e| {
                    Error::Store(format!(
                        "PostgreSQL named by [database] url in {}: {e}",
                        config_path.display()
                    ))
                })?)
            }
        };

        let token_path = self.root.join(ADMIN_TOKEN);
        let admin_token_hash = if token_path.exists() {
            fs::read_to_string(&token_path)
                .map_err(|e| io(&token_path, e))?
                .trim()
                .to_owned()
        } else {
            let token = secret::generate("tsa");
            let hash = secret::hash(&token);
            write_file(&token_path, hash.as_bytes(), 0o600)?;
            created.push(Created::AdminToken(token));
            hash
        };

        if !self.repo().exists() {
            self.create_repo(&config)?;
            created.push(Created::Repository(self.repo()));
        }

        let tls = TlsMaterial {
            server_chain,
            server_key: Arc::new(server_key),
            client_roots: vec![CertificateDer::from(ca.root_der().to_vec())],
            crls: crls
                .all_der()
                .into_iter()
                .map(CertificateRevocationListDer::from)
                .collect(),
        };
        Ok(Prepared {
            config,
            crl_der: crls.issuing.der().to_vec(),
            root_crl_der: crls.root.as_ref().map(|root| root.der().to_vec()),
            ca,
            store,
            tls,
            admin_token_hash,
            packages: Repository::in_data_dir(&self.root),
            created,
        })
    }

    /// Loads the server certificate, or issues one when missing, expiring or no longer
    /// valid for the configured names.
    fn server_identity(
        &self,
        ca: &Ca,
        config: &Config,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>, bool), Error> {
        let cert_path = self.root.join(TLS_CERT);
        let key_path = self.root.join(TLS_KEY);
        if cert_path.exists() && key_path.exists() {
            let chain = CertificateDer::pem_file_iter(&cert_path)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(|e| Error::Tls(format!("{}: {e}", cert_path.display())))?;
            let current = chain
                .first()
                .is_some_and(|leaf| still_good(leaf, &config.public.names));
            if current {
                let key = PrivateKeyDer::from_pem_file(&key_path)
                    .map_err(|e| Error::Tls(format!("{}: {e}", key_path.display())))?;
                return Ok((chain, key, false));
            }
        }
        let identity = server_cert::issue(ca, &config.public.names, OffsetDateTime::now_utc())?;
        let tls_dir = self.root.join("tls");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&tls_dir)
            .map_err(|e| io(&tls_dir, e))?;
        write_file(&key_path, identity.key_pem.as_bytes(), 0o600)?;
        write_file(&cert_path, identity.chain_pem.as_bytes(), 0o644)?;
        let chain = CertificateDer::pem_slice_iter(identity.chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::Tls(e.to_string()))?;
        let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes())
            .map_err(|e| Error::Tls(e.to_string()))?;
        Ok((chain, key, true))
    }

    fn create_repo(&self, config: &Config) -> Result<(), Error> {
        let repo = Repo::create(self.repo()).map_err(|e| Error::Repository(e.to_string()))?;
        let mut default_group = Manifest::new();
        default_group.catalogs = vec!["production".into()];
        let mut site_default = Manifest::new();
        site_default.catalogs = vec!["production".into()];
        site_default.included_manifests = vec![config.enrollment.default_group.clone()];
        for (name, manifest) in [
            (config.enrollment.default_group.as_str(), &default_group),
            (SITE_DEFAULT_MANIFEST, &site_default),
        ] {
            repo.write_manifest(name, manifest)
                .map_err(|e| Error::Repository(e.to_string()))?;
        }
        let download = self.repo().join("download");
        fs::create_dir_all(&download).map_err(|e| io(&download, e))
    }
}

/// `SHA256:` + uppercase colon-separated hex, as `openssl x509 -fingerprint -sha256` prints it.
pub fn fingerprint(der: &[u8]) -> String {
    let hex: Vec<String> = Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    format!("SHA256:{}", hex.join(":"))
}

fn still_good(leaf: &CertificateDer<'_>, names: &[String]) -> bool {
    let Ok((_, cert)) = X509Certificate::from_der(leaf.as_ref()) else {
        return false;
    };
    let expires = cert.validity().not_after.timestamp();
    if expires - OffsetDateTime::now_utc().unix_timestamp() < RENEW_BEFORE.whole_seconds() {
        return false;
    }
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return false;
    };
    let present: Vec<String> = san
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            x509_parser::extensions::GeneralName::DNSName(dns) => Some((*dns).to_owned()),
            x509_parser::extensions::GeneralName::IPAddress(bytes) => ip_text(bytes),
            _ => None,
        })
        .collect();
    names.iter().all(|name| present.contains(name))
}

fn ip_text(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv4Addr::from(b).to_string()),
        16 => <[u8; 16]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv6Addr::from(b).to_string()),
        _ => None,
    }
}

/// Writes a file atomically with its mode set at creation (never briefly world-readable).
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| io(&tmp, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| io(&tmp, e))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).map_err(|e| io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| io(path, e))
}

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_owned(),
        source,
    }
}
