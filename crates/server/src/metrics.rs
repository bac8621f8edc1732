//! `GET /metrics` in the Prometheus text format: request and check-in counters, bytes
//! served, and deployment states from the store.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use tessera_store::Store;

use crate::app::App;

/// Counters kept while the server runs (reset at restart, as Prometheus expects).
#[derive(Debug, Default)]
pub struct Metrics {
    /// HTTP requests answered.
    pub requests: AtomicU64,
    /// Requests answered with a 4xx or 5xx status.
    pub request_errors: AtomicU64,
    /// OCS PROLOG check-ins.
    pub checkins: AtomicU64,
    /// OCS package results received.
    pub results: AtomicU64,
    /// Body bytes sent (by Content-Length).
    pub bytes_served: AtomicU64,
}

impl Metrics {
    /// Adds one to `counter`.
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Middleware counting every request and the bytes of its response.
pub async fn count_requests<S: Store>(
    State(app): State<Arc<App<S>>>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    Metrics::count(&app.metrics.requests);
    if response.status().is_client_error() || response.status().is_server_error() {
        Metrics::count(&app.metrics.request_errors);
    }
    if let Some(len) = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
    {
        app.metrics.bytes_served.fetch_add(len, Ordering::Relaxed);
    }
    response
}

/// The `/metrics` handler.
pub async fn export<S: Store>(State(app): State<Arc<App<S>>>) -> Response {
    let m = &app.metrics;
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, value: u64| {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
        );
    };
    counter(
        "tessera_http_requests_total",
        "HTTP requests answered.",
        m.requests.load(Ordering::Relaxed),
    );
    counter(
        "tessera_http_request_errors_total",
        "HTTP requests answered with a 4xx or 5xx status.",
        m.request_errors.load(Ordering::Relaxed),
    );
    counter(
        "tessera_ocs_checkins_total",
        "OCS PROLOG check-ins.",
        m.checkins.load(Ordering::Relaxed),
    );
    counter(
        "tessera_ocs_results_total",
        "OCS package results received.",
        m.results.load(Ordering::Relaxed),
    );
    counter(
        "tessera_http_bytes_served_total",
        "Response body bytes sent.",
        m.bytes_served.load(Ordering::Relaxed),
    );
    match app.store.deployment_totals().await {
        Ok(totals) => {
            out.push_str("# HELP tessera_deployments Deployments by state.\n# TYPE tessera_deployments gauge\n");
            for (state, n) in [
                ("waiting", totals.waiting),
                ("notified", totals.notified),
                ("success", totals.success),
                ("error", totals.error),
            ] {
                let _ = writeln!(out, "tessera_deployments{{state=\"{state}\"}} {n}");
            }
        }
        Err(error) => {
            tracing::error!(%error, "metrics: store unavailable");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    }
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
