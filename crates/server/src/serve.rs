//! `tessera-server serve`: prepare the data directory, start both listeners, keep the CRL
//! fresh, and stop gracefully.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera_manifest::Repo;
use tessera_store::Store;
use tokio::net::TcpListener;

use crate::Error;
use crate::app::App;
use crate::datadir::{Created, DataDir, Database, Prepared, fingerprint};
use crate::enroll::Enrollment;
use crate::revoke::CrlPublisher;
use crate::tls::TlsConfig;

/// How often the CRL is checked: re-signed when the CA says it is due, and picked up when
/// `tessera-server ca revoke` stored a new one beside the running server.
const CRL_CHECK_INTERVAL: Duration = Duration::from_secs(60);

/// The PostgreSQL advisory lock a serving node holds ("tesserasrv" folded into 64 bits): the
/// check-in cache assumes its node is the only writer (ADR 0006), so a second node on the
/// same database is refused until cross-node invalidation exists.
const SINGLE_NODE_LOCK: i64 = 0x7465_7373_7276_0001;

/// Command-line overrides of `config.toml`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServeOptions {
    /// HTTPS listen address.
    pub https: Option<SocketAddr>,
    /// Plain HTTP listen address.
    pub http: Option<SocketAddr>,
}

/// What a starting server reports once it listens.
#[derive(Debug, Clone)]
pub struct Ready {
    /// What the data directory preparation created (first run: everything).
    pub created: Vec<Created>,
    /// The bound HTTPS address.
    pub https: SocketAddr,
    /// The bound HTTP address.
    pub http: SocketAddr,
    /// The device CA root's SHA-256 fingerprint, for `tessera-agent enroll --ca-fingerprint`.
    pub ca_fingerprint: String,
    /// The CA certificate file for OCS agents' `--ca`.
    pub ca_file: std::path::PathBuf,
}

/// Runs the server on `data` until `shutdown` completes. `ready` is called once both
/// listeners are bound.
pub async fn serve(
    data: &DataDir,
    options: ServeOptions,
    ready: impl FnOnce(&Ready),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let (prepared, database) = data.prepare_any().await?.with_store(());
    match database {
        Database::Sqlite(store) => {
            serve_with(data, prepared.with_store(store).0, options, ready, shutdown).await
        }
        Database::Postgres(store) => {
            let lock = store
                .try_advisory_lock(SINGLE_NODE_LOCK)
                .await
                .map_err(|e| Error::Store(e.to_string()))?;
            let Some(lock) = lock else {
                return Err(Error::Store(
                    "another tessera-server is serving this database; several nodes need \
                     cross-node cache invalidation, not built yet (docs/server.md, PostgreSQL)"
                        .to_owned(),
                ));
            };
            let served =
                serve_with(data, prepared.with_store(store).0, options, ready, shutdown).await;
            // Held until the server has stopped, whatever the outcome.
            drop(lock);
            served
        }
    }
}

/// [`serve`] on an opened store of either engine.
async fn serve_with<S: Store + 'static>(
    data: &DataDir,
    prepared: Prepared<S>,
    options: ServeOptions,
    ready: impl FnOnce(&Ready),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let mut config = prepared.config;
    if let Some(https) = options.https {
        config.listen.https = https;
    }
    if let Some(http) = options.http {
        config.listen.http = http;
    }
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|e| Error::Bind { addr, source: e })
    };
    let https = bind(config.listen.https).await?;
    let http = bind(config.listen.http).await?;
    let tls = TlsConfig::new(&prepared.tls)?;
    let repo = Repo::open(data.repo()).map_err(|e| Error::Repository(e.to_string()))?;

    let ca_file = data.root().join("ca-certificate.pem");
    let ca_pem = DataDir::ca_certificate_pem(&prepared.ca);
    std::fs::write(&ca_file, &ca_pem).map_err(|e| Error::Io {
        path: ca_file.clone(),
        source: e,
    })?;
    let report = Ready {
        created: prepared.created,
        https: https.local_addr().map_err(|e| Error::Bind {
            addr: config.listen.https,
            source: e,
        })?,
        http: http.local_addr().map_err(|e| Error::Bind {
            addr: config.listen.http,
            source: e,
        })?,
        ca_fingerprint: fingerprint(prepared.ca.root_der()),
        ca_file,
    };
    let decisions = Repo::open(data.repo()).map_err(|e| Error::Repository(e.to_string()))?;
    let app = App::new(prepared.store, config, prepared.packages)
        .with_admin_token_hash(prepared.admin_token_hash)
        .with_manifests(decisions)
        .with_enrollment(Enrollment {
            ca: prepared.ca,
            repo,
            publisher: Some(CrlPublisher {
                home: data.ca_home(),
                tls: tls.clone(),
                material: Mutex::new(prepared.tls),
            }),
        })
        .shared();
    app.publish_crl(prepared.crl_der);
    app.publish_root_crl(prepared.root_crl_der);
    let synced = app
        .packages_changed()
        .await
        .map_err(|e| Error::Store(e.to_string()))?;
    if !synced.added.is_empty() {
        tracing::info!(packages = ?synced.added, "packages found in the repository recorded");
    }
    for (id, reason) in &synced.unreadable {
        tracing::warn!(package = %id, %reason, "package directory unreadable; not offered");
    }
    ready(&report);
    tracing::info!(https = %report.https, http = %report.http, "listening");

    let refresher = tokio::spawn(refresh_crls(Arc::clone(&app)));
    let watcher = tokio::spawn(crate::decide::watch(Arc::clone(&app)));
    crate::service::run(app, tls, https, http, shutdown).await;
    refresher.abort();
    watcher.abort();
    Ok(())
}

/// Re-signs the CRL when due and applies it everywhere.
async fn refresh_crls<S: Store + 'static>(app: Arc<App<S>>) {
    loop {
        tokio::time::sleep(CRL_CHECK_INTERVAL).await;
        let Some(enrollment) = app.enrollment.as_ref() else {
            return;
        };
        let Some(publisher) = enrollment.publisher.as_ref() else {
            return;
        };
        let published = match publisher.home.published_crls() {
            Ok(published) => published,
            Err(error) => {
                tracing::error!(%error, "could not read the stored CRL");
                None
            }
        };
        match enrollment.ca.current_crls(published) {
            // Fresh, and what is already served.
            Ok((crls, false)) if crls.issuing.der() == app.published_crl().as_ref() => {}
            Ok((crls, _)) => {
                if let Err(error) = publisher.apply(&app, &crls) {
                    tracing::error!(%error, "could not publish the re-signed CRL");
                }
            }
            Err(error) => tracing::error!(%error, "could not re-sign the CRL"),
        }
    }
}
