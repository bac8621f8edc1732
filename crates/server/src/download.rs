//! `GET /download/<ID>/info` and `GET /download/<ID>/<ID>-<n>`: OCS package files.
//!
//! A fragment is served as a window of the one stored archive (no split copies), with an
//! exact `Content-Length`, validators and range support from [`crate::files`]. The path
//! parameters are parsed as numbers before any file is touched, so no request can name a
//! file outside the package directory. Over HTTPS a device certificate is required unless
//! the OCS compatibility path (`ocs.compat`) is on; plain HTTP serves `PROTO=HTTP`
//! fragments to anyone, as OCS does.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use http::{HeaderMap, Method, StatusCode};
use tessera_package::{INFO_FILE, PackageId, Protocol};
use tessera_store::Store;

use crate::app::App;
use crate::files::{self, Window};
use crate::tls::ClientCertificate;

/// Which listener a route set is for: plain HTTP serves only fragments of packages whose
/// `info` says `PROTO=HTTP`; `info` itself always goes over HTTPS, as OCS agents expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The HTTPS listener: everything.
    Https,
    /// The plain HTTP listener: `PROTO=HTTP` fragments only.
    Http,
}

/// The download routes for `listener`.
pub fn routes<S: Store + 'static>(listener: Listener) -> Router<Arc<App<S>>> {
    let handler = move |state, certificate, path, method, headers| {
        file::<S>(state, certificate, path, method, headers, listener)
    };
    Router::new().route("/download/{id}/{file}", get(handler))
}

async fn file<S: Store>(
    State(app): State<Arc<App<S>>>,
    certificate: Option<Extension<ClientCertificate>>,
    Path((id, file)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    listener: Listener,
) -> Response {
    // Over HTTPS, package files are for enrolled devices, like the Munki repository —
    // unless unmodified OCS agents, which have no certificate, are served.
    let certified = certificate.is_some_and(|Extension(ClientCertificate(c))| c.is_some());
    if listener == Listener::Https && !certified && !app.config.ocs.compat {
        return (
            StatusCode::UNAUTHORIZED,
            "package files need a device certificate; set `ocs.compat = true` in config.toml \
             to serve unmodified OCS agents\n",
        )
            .into_response();
    }
    let Ok(id) = id.parse::<PackageId>() else {
        return (StatusCode::NOT_FOUND, "no such package: IDs are numbers\n").into_response();
    };
    let result = if file == INFO_FILE {
        if listener == Listener::Http {
            return (
                StatusCode::NOT_FOUND,
                "info files are served over HTTPS only\n",
            )
                .into_response();
        }
        tracing::info!(package = %id, "info requested");
        let path = app.packages.package_dir(id).join(INFO_FILE);
        files::serve(&path, None, &method, &headers, "application/xml").await
    } else {
        let Some(number) = fragment_number(id, &file) else {
            return (StatusCode::NOT_FOUND, "no such package file\n").into_response();
        };
        // At info level so that operators (and the interop script) can follow an agent's
        // download schedule from the log alone.
        tracing::info!(package = %id, fragment = number, ?listener, "fragment requested");
        let packages = app.packages.clone();
        let stored = match tokio::task::spawn_blocking(move || packages.load(id)).await {
            Ok(Ok(stored)) => stored,
            Ok(Err(tessera_package::Error::NotFound { .. })) => {
                return (StatusCode::NOT_FOUND, format!("no package {id}\n")).into_response();
            }
            Ok(Err(error)) => {
                tracing::error!(%id, %error, "package unreadable");
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the package cannot be read\n",
                )
                    .into_response();
            }
            Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        };
        if listener == Listener::Http && stored.info.protocol != Protocol::Http {
            return (
                StatusCode::NOT_FOUND,
                "this package is served over HTTPS only\n",
            )
                .into_response();
        }
        let Some(fragment) = stored.fragment(number) else {
            return (
                StatusCode::NOT_FOUND,
                format!("package {id} has no fragment {number}\n"),
            )
                .into_response();
        };
        let window = Window {
            offset: fragment.offset,
            len: fragment.length,
        };
        files::serve(
            &stored.archive_path(),
            Some(window),
            &method,
            &headers,
            "application/octet-stream",
        )
        .await
    };
    result.unwrap_or_else(|error| {
        tracing::error!(%id, %error, "serving a package file failed");
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    })
}

/// `n` from a fragment file name `<ID>-<n>` of package `id`.
fn fragment_number(id: PackageId, file: &str) -> Option<u32> {
    let rest = file.strip_prefix(&id.to_string())?.strip_prefix('-')?;
    if rest.starts_with('+') || rest.starts_with('0') {
        return None;
    }
    rest.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_names() {
        let id: PackageId = "1716800000".parse().unwrap();
        assert_eq!(fragment_number(id, "1716800000-1"), Some(1));
        assert_eq!(fragment_number(id, "1716800000-12"), Some(12));
        for bad in [
            "1716800000-0",
            "1716800000-01",
            "1716800000-+1",
            "1716800001-1",
            "1716800000-",
            "x",
            "1716800000-1/../x",
        ] {
            assert_eq!(fragment_number(id, bad), None, "{bad}");
        }
    }
}
