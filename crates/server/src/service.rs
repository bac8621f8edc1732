//! The running server: both listeners, their routes, background upkeep, and shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use http::header::CONTENT_TYPE;
use tessera_store::Store;
use tokio::net::TcpListener;

use crate::app::App;
use crate::download::{self, Listener};
use crate::tls::TlsConfig;
use crate::{admin, enroll, listen, metrics, ocs, repo};

/// Path of the device CA's CRL on the plain HTTP listener (the CRL distribution point).
pub const CRL_PATH: &str = "/crl/device-ca.crl";
/// Path of the root's CRL, for a two-tier CA (the intermediate's distribution point).
pub const ROOT_CRL_PATH: &str = "/crl/root-ca.crl";

/// How often notified deployments without a result are checked for their timeout.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(600);

/// The HTTPS routes: OCS, packages, admin API, metrics.
pub fn https_router<S: Store + 'static>(app: &Arc<App<S>>) -> Router {
    let admin_only = Router::new()
        .route("/metrics", get(metrics::export::<S>))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(app),
            admin::require_admin::<S>,
        ));
    Router::new()
        .merge(ocs::routes::<S>())
        .merge(enroll::routes::<S>())
        .merge(repo::routes::<S>())
        .merge(download::routes::<S>(Listener::Https))
        .merge(admin::routes(Arc::clone(app)))
        .merge(admin_only)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(app),
            metrics::count_requests::<S>,
        ))
        .with_state(Arc::clone(app))
}

/// The plain HTTP routes: the CRL, and fragments of `PROTO=HTTP` packages.
pub fn http_router<S: Store + 'static>(app: &Arc<App<S>>) -> Router {
    Router::new()
        .route(CRL_PATH, get(crl::<S>))
        .route(ROOT_CRL_PATH, get(root_crl::<S>))
        .merge(download::routes::<S>(Listener::Http))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(app),
            metrics::count_requests::<S>,
        ))
        .with_state(Arc::clone(app))
}

async fn crl<S: Store>(State(app): State<Arc<App<S>>>) -> Response {
    let der = app.published_crl();
    if der.is_empty() {
        return (StatusCode::SERVICE_UNAVAILABLE, "no CRL published yet\n").into_response();
    }
    ([(CONTENT_TYPE, "application/pkix-crl")], der).into_response()
}

async fn root_crl<S: Store>(State(app): State<Arc<App<S>>>) -> Response {
    match app.published_root_crl() {
        Some(der) => ([(CONTENT_TYPE, "application/pkix-crl")], der).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "this CA has no separate root, so no root CRL\n",
        )
            .into_response(),
    }
}

/// Serves both listeners until `shutdown` completes, then drains in-flight requests.
pub async fn run<S: Store + 'static>(
    app: Arc<App<S>>,
    tls: TlsConfig,
    https: TcpListener,
    http: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let wait = move |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let upkeep = tokio::spawn(upkeep(Arc::clone(&app), wait(stopped.clone())));
    let https = tokio::spawn(listen::serve_https(
        https,
        tls,
        https_router(&app),
        wait(stopped.clone()),
    ));
    let http = tokio::spawn(listen::serve_http(http, http_router(&app), wait(stopped)));
    shutdown.await;
    tracing::info!("shutting down");
    let _ = stop.send(true);
    let _ = tokio::join!(https, http, upkeep);
    // Check-in times are buffered in memory (crate::checkin_cache): write what is left.
    if let Err(error) = app.store.flush_contacts().await {
        tracing::warn!(%error, "could not record the last check-in times at shutdown");
    }
}

/// Turns notified deployments that outlived the agents' own timeout into `ERR_TIMEOUT`, so
/// that nothing stays "notified" forever.
async fn upkeep<S: Store>(app: Arc<App<S>>, stopped: impl Future<Output = ()>) {
    tokio::pin!(stopped);
    loop {
        let now = app.now();
        // One day of grace past the agents' TIMEOUT: an agent that finishes at the last
        // moment still gets its result recorded.
        let days = i64::from(app.config.ocs.download.timeout_days) + 1;
        match app
            .store
            .expire_notified(now - time::Duration::days(days), now)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                deployments = n,
                "notified deployments timed out (ERR_TIMEOUT)"
            ),
            Err(error) => tracing::warn!(%error, "could not expire notified deployments"),
        }
        tokio::select! {
            () = tokio::time::sleep(UPKEEP_INTERVAL) => {}
            () = &mut stopped => return,
        }
    }
}
