//! `GET /repo/{manifests,catalogs,pkgs,icons,client_resources}/…`: a Munki repository for
//! real Munki clients, with access control.
//!
//! Every request needs a device certificate. A device reads catalogs, packages, icons and
//! client resources freely, but of the manifests only its own computer manifest, what it
//! includes (directly, through other manifests, or in any conditional item — the client
//! evaluates those conditions), and `site_default`. Any other manifest is a 404, not a
//! 403, so that a device cannot learn which names exist. `pkgsinfo/` is never served.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use http::{HeaderMap, Method, StatusCode};
use tessera_manifest::{Manifest, Repo, RepoKind, ResourceName};
use tessera_store::Store;

use crate::app::App;
use crate::files;
use crate::identity::certified_device;
use crate::ocs::SITE_DEFAULT_MANIFEST;
use crate::tls::ClientCertificate;

/// Deepest include chain followed when computing what a device may read.
const MAX_INCLUDE_DEPTH: usize = 32;

/// The routes.
pub fn routes<S: Store + 'static>() -> Router<Arc<App<S>>> {
    Router::new().route("/repo/{kind}/{*name}", get(resource::<S>))
}

fn kind(dir: &str) -> Option<RepoKind> {
    Some(match dir {
        "manifests" => RepoKind::Manifests,
        "catalogs" => RepoKind::Catalogs,
        "pkgs" => RepoKind::Pkgs,
        "icons" => RepoKind::Icons,
        "client_resources" => RepoKind::ClientResources,
        _ => return None,
    })
}

async fn resource<S: Store>(
    State(app): State<Arc<App<S>>>,
    certificate: Option<Extension<ClientCertificate>>,
    Path((dir, name)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let not_found = || (StatusCode::NOT_FOUND, "not found\n").into_response();
    let Some(certificate) = certificate.and_then(|Extension(ClientCertificate(c))| c) else {
        return (
            StatusCode::UNAUTHORIZED,
            "the repository needs a device certificate\n",
        )
            .into_response();
    };
    let Some(repo) = app.enrollment.as_ref().map(|e| e.repo.clone()) else {
        return not_found();
    };
    let device = match certified_device(&app.store, &certificate).await {
        Ok(Some(key)) => match app.store.device(key).await {
            Ok(Some(device)) => device,
            Ok(None) => return not_found(),
            Err(error) => return unavailable(&error),
        },
        Ok(None) => {
            return (
                StatusCode::FORBIDDEN,
                "this certificate was not issued to an enrolled device\n",
            )
                .into_response();
        }
        Err(error) => return unavailable(&error),
    };
    let (Some(kind), Ok(name)) = (kind(&dir), ResourceName::new(&name)) else {
        return not_found();
    };
    if kind == RepoKind::Manifests {
        let allowed = {
            let repo = repo.clone();
            let primary = device.manifest.clone();
            tokio::task::spawn_blocking(move || readable_manifests(&repo, &primary))
                .await
                .unwrap_or_default()
        };
        if !allowed.contains(name.as_str()) {
            tracing::info!(device = %device.computer_name, manifest = %name, "manifest not readable by this device");
            return not_found();
        }
    }
    let path = match repo.file_path(kind, &name) {
        Ok(path) => path,
        Err(tessera_manifest::Error::NotFound { .. }) => return not_found(),
        Err(error) => {
            tracing::warn!(%error, "repository path refused");
            return not_found();
        }
    };
    let content_type = match kind {
        RepoKind::Manifests | RepoKind::Catalogs => "application/xml",
        _ => "application/octet-stream",
    };
    files::serve(&path, None, &method, &headers, content_type)
        .await
        .unwrap_or_else(|error| {
            tracing::error!(%error, "serving a repository file failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        })
}

/// The manifests a device with `primary` may read: itself, `site_default`, and everything
/// reachable through `included_manifests`, conditional items included.
pub fn readable_manifests(repo: &Repo, primary: &str) -> BTreeSet<String> {
    let mut readable = BTreeSet::new();
    let mut pending = vec![
        (primary.to_owned(), 0usize),
        (SITE_DEFAULT_MANIFEST.to_owned(), 0),
    ];
    while let Some((name, depth)) = pending.pop() {
        if depth > MAX_INCLUDE_DEPTH || !readable.insert(name.clone()) {
            continue;
        }
        let Ok(manifest) = repo.read_manifest(&name) else {
            continue;
        };
        let mut includes = Vec::new();
        collect_includes(&manifest, &mut includes);
        pending.extend(
            includes
                .into_iter()
                .filter(|i| !readable.contains(i))
                .map(|i| (i, depth + 1)),
        );
    }
    readable
}

fn collect_includes(manifest: &Manifest, out: &mut Vec<String>) {
    out.extend(manifest.included_manifests.iter().cloned());
    for item in &manifest.conditional_items {
        collect_includes(&item.body, out);
    }
}

fn unavailable(error: &tessera_store::Error) -> Response {
    tracing::error!(%error, "repository request failed");
    (StatusCode::SERVICE_UNAVAILABLE, "retry later\n").into_response()
}
