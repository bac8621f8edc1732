//! The admin API (`/api/v1`, JSON, bearer token).
//!
//! Every route requires `Authorization: Bearer <admin token>`; the token is compared by
//! hash in constant time. Errors are JSON [`ApiError`]s with a stable `code`.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use http::StatusCode;
use http::header::AUTHORIZATION;
use serde::{Deserialize, Serialize};
use tessera_manifest::Repo;
use tessera_protocol::enroll::ApiError;
use tessera_store::{
    Deployment, Device, DeviceKey, EnrollmentToken, NewToken, PackageRecord, PackageStats, Store,
};

use crate::app::App;
use crate::groups::{self, Edited, Group, GroupError};
use crate::secret;

/// The routes under `/api/v1`.
pub fn routes<S: Store + 'static>(app: Arc<App<S>>) -> Router<Arc<App<S>>> {
    Router::new()
        .route("/api/v1/devices", get(list_devices::<S>))
        .route("/api/v1/devices/{key}", get(show_device::<S>))
        .route("/api/v1/devices/{key}/revoke", post(revoke_device::<S>))
        .route(
            "/api/v1/devices/{key}/decisions",
            get(device_decisions::<S>),
        )
        .route(
            "/api/v1/tokens",
            get(list_tokens::<S>).post(create_token::<S>),
        )
        .route("/api/v1/tokens/{id}", delete(revoke_token::<S>))
        .route("/api/v1/packages", get(list_packages::<S>))
        .route(
            "/api/v1/packages/{id}",
            get(show_package::<S>).delete(delete_package::<S>),
        )
        .route("/api/v1/packages/{id}/stats", get(package_stats::<S>))
        .route("/api/v1/assignments", post(assign::<S>))
        .route(
            "/api/v1/groups",
            get(list_groups::<S>).post(create_group::<S>),
        )
        .route("/api/v1/groups/{name}", get(show_group::<S>))
        .route("/api/v1/groups/{name}/items", post(edit_group::<S>))
        .route_layer(axum::middleware::from_fn_with_state(
            app,
            require_admin::<S>,
        ))
}

/// A JSON error response.
pub struct Failure(StatusCode, ApiError);

impl Failure {
    /// A failure with an HTTP status, a stable code and a sentence.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self(
            status,
            ApiError {
                code: code.to_owned(),
                message: message.into(),
            },
        )
    }

    fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} does not exist"),
        )
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

impl From<tessera_store::Error> for Failure {
    fn from(error: tessera_store::Error) -> Self {
        match error {
            tessera_store::Error::NotFound(what) => Self::not_found(&what),
            tessera_store::Error::Conflict { what } => Self::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("{what} already exists"),
            ),
            other => {
                tracing::error!(error = %other, "admin API store error");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the server's database failed; retry",
                )
            }
        }
    }
}

type ApiResult<T> = Result<Json<T>, Failure>;

/// A JSON request body whose rejections are [`ApiError`]s too, so that scripts can rely on
/// every error being JSON.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for JsonBody<T> {
    type Rejection = Failure;

    async fn from_request(request: Request, state: &S) -> Result<Self, Failure> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(Failure::new(
                rejection.status(),
                "invalid_request",
                rejection.body_text(),
            )),
        }
    }
}

/// Middleware: only requests bearing the admin token pass.
pub async fn require_admin<S: Store>(
    State(app): State<Arc<App<S>>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let authorised = match (presented, app.admin_token_hash.as_deref()) {
        (Some(token), Some(stored)) => secret::matches(token.trim(), stored),
        _ => false,
    };
    if !authorised {
        return Failure::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send the admin token as `Authorization: Bearer <token>` (printed once by the first `serve`)",
        )
        .into_response();
    }
    next.run(request).await
}

async fn list_devices<S: Store>(State(app): State<Arc<App<S>>>) -> ApiResult<Vec<Device>> {
    Ok(Json(app.store.list_devices().await?))
}

/// A device with where it stands with each package.
#[derive(Debug, Serialize, Deserialize)]
pub struct DeviceDetail {
    /// The device.
    pub device: Device,
    /// Its deployments.
    pub deployments: Vec<Deployment>,
}

async fn show_device<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(key): Path<i64>,
) -> ApiResult<DeviceDetail> {
    let device = app
        .store
        .device(DeviceKey(key))
        .await?
        .ok_or_else(|| Failure::not_found(&format!("device {key}")))?;
    let deployments = app.store.deployments_for(device.key).await?;
    Ok(Json(DeviceDetail {
        device,
        deployments,
    }))
}

/// What a device's manifest asks for, and why: the answer to "why does (or doesn't) this
/// device get that package?".
#[derive(Debug, Serialize)]
pub struct DeviceDecisions {
    /// The device's primary manifest.
    pub manifest: String,
    /// The packages its manifest asks for, in Munki's order.
    pub packages: Vec<DecidedPackage>,
    /// The full resolution: managed installs with the manifest and conditions that listed
    /// each, and Munki's warnings (items with no package, missing catalogs, bad conditions).
    pub resolved: Option<tessera_manifest::Resolved>,
    /// Why resolution failed (missing manifest, include cycle, unreadable file).
    pub error: Option<String>,
}

/// A package a manifest asks for.
#[derive(Debug, Serialize)]
pub struct DecidedPackage {
    /// Package ID.
    pub id: i64,
    /// Its name and version, when the store knows it.
    pub name: Option<String>,
    /// Its version.
    pub version: Option<String>,
}

async fn device_decisions<S: Store + 'static>(
    State(app): State<Arc<App<S>>>,
    Path(key): Path<i64>,
) -> ApiResult<DeviceDecisions> {
    let device = app
        .store
        .device(DeviceKey(key))
        .await?
        .ok_or_else(|| Failure::not_found(&format!("device {key}")))?;
    let Some(decisions) = app.decisions.as_ref() else {
        return Err(Failure::new(
            StatusCode::CONFLICT,
            "no_manifests",
            "this server decides deployments from assignments only",
        ));
    };
    let decided = decisions.decide(&device, app.now());
    let mut packages = Vec::with_capacity(decided.packages.len());
    for id in decided.packages {
        let record = app.store.package(id).await?;
        packages.push(DecidedPackage {
            id,
            name: record.as_ref().map(|r| r.name.clone()),
            version: record.map(|r| r.version),
        });
    }
    Ok(Json(DeviceDecisions {
        manifest: device.manifest,
        packages,
        resolved: decided.resolved,
        error: decided.error,
    }))
}

/// `POST /api/v1/tokens` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// What the token is for.
    pub label: String,
    /// Hours until it expires; none means never.
    pub expires_in_hours: Option<u32>,
    /// Enrollments it allows; none means unlimited.
    pub uses: Option<u32>,
}

/// A token just created: the secret appears here and nowhere else, ever.
#[derive(Debug, Serialize, Deserialize)]
pub struct CreatedToken {
    /// The secret, shown once.
    pub token: String,
    /// Its stored record.
    pub record: EnrollmentToken,
}

async fn create_token<S: Store>(
    State(app): State<Arc<App<S>>>,
    JsonBody(request): JsonBody<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>), Failure> {
    if request.label.trim().is_empty() {
        return Err(Failure::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_label",
            "give the token a label",
        ));
    }
    if request.uses == Some(0) {
        return Err(Failure::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_uses",
            "a token needs at least one use",
        ));
    }
    let token = secret::generate("tse");
    let now = app.now();
    let record = app
        .store
        .create_token(
            &NewToken {
                token_hash: secret::hash(&token),
                label: request.label,
                expires_at: request
                    .expires_in_hours
                    .map(|h| now + time::Duration::hours(i64::from(h))),
                uses: request.uses.map(i64::from),
            },
            now,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { token, record })))
}

async fn list_tokens<S: Store>(State(app): State<Arc<App<S>>>) -> ApiResult<Vec<EnrollmentToken>> {
    Ok(Json(app.store.list_tokens().await?))
}

async fn revoke_token<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(id): Path<i64>,
) -> Result<StatusCode, Failure> {
    if app.store.revoke_token(id, app.now()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Failure::not_found(&format!("an active token {id}")))
    }
}

async fn list_packages<S: Store>(State(app): State<Arc<App<S>>>) -> ApiResult<Vec<PackageRecord>> {
    Ok(Json(app.store.list_packages().await?))
}

async fn show_package<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(id): Path<i64>,
) -> ApiResult<PackageRecord> {
    Ok(Json(app.store.package(id).await?.ok_or_else(|| {
        Failure::not_found(&format!("package {id}"))
    })?))
}

/// `DELETE /api/v1/packages/{id}`: removes the package's directory from the repository
/// (moved out of sight first, so a concurrent reader sees all of it or nothing), then its
/// record and deployments, and decides again without it; 404 when neither exists.
async fn delete_package<S: Store + 'static>(
    State(app): State<Arc<App<S>>>,
    Path(id): Path<String>,
) -> Result<StatusCode, Failure> {
    let Ok(package) = id.parse::<tessera_package::PackageId>() else {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("{id:?} is not a package ID (digits only)"),
        ));
    };
    let Ok(key) = i64::try_from(package.get()) else {
        return Err(Failure::not_found(&format!("package {package}")));
    };
    let packages = app.packages.clone();
    // Directory first: the repository watcher would otherwise record it again from disk.
    let removed = match tokio::task::spawn_blocking(move || packages.remove(package)).await {
        Ok(Ok(removed)) => removed,
        Ok(Err(error)) => {
            tracing::error!(%package, %error, "removing a package directory failed");
            return Err(Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "repository_failed",
                format!("the package's directory could not be removed: {error}"),
            ));
        }
        Err(error) => {
            tracing::error!(%package, %error, "package removal task failed");
            return Err(Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "repository_failed",
                "the package removal did not finish; retry",
            ));
        }
    };
    let recorded = app.store.delete_package(key).await?;
    if !removed && !recorded {
        return Err(Failure::not_found(&format!("package {package}")));
    }
    if let Err(error) = app.packages_changed().await {
        tracing::warn!(%error, "could not decide again without the package; the watcher will retry");
    }
    tracing::info!(%package, removed, recorded, "package deleted");
    Ok(StatusCode::NO_CONTENT)
}

async fn package_stats<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(id): Path<i64>,
) -> ApiResult<PackageStats> {
    if app.store.package(id).await?.is_none() {
        return Err(Failure::not_found(&format!("package {id}")));
    }
    Ok(Json(app.store.package_stats(id).await?))
}

/// `POST /api/v1/assignments` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assign {
    /// The device's key.
    pub device: i64,
    /// The package's ID.
    pub package: i64,
}

async fn assign<S: Store + 'static>(
    State(app): State<Arc<App<S>>>,
    JsonBody(request): JsonBody<Assign>,
) -> Result<StatusCode, Failure> {
    // A package built since start-up is on disk but not yet in the store.
    if app.store.package(request.package).await?.is_none() {
        app.packages_changed().await?;
    }
    app.store
        .assign(DeviceKey(request.device), request.package, app.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/devices/{key}/revoke` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revoke {
    /// RFC 5280 reason name (`keyCompromise`, `superseded`, …); default `unspecified`.
    #[serde(default)]
    pub reason: Option<String>,
}

/// What a revocation did.
#[derive(Debug, Serialize, Deserialize)]
pub struct Revoked {
    /// Serials revoked now (empty when the device had none left to revoke).
    pub revoked: Vec<String>,
}

async fn revoke_device<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(key): Path<i64>,
    JsonBody(request): JsonBody<Revoke>,
) -> ApiResult<Revoked> {
    let reason = match request.reason.as_deref() {
        None => tessera_ca::RevocationReason::Unspecified,
        Some(text) => text.parse().map_err(|_| {
            Failure::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_reason",
                format!(
                    "unknown revocation reason {text:?}; use an RFC 5280 name such as keyCompromise"
                ),
            )
        })?,
    };
    match crate::revoke::revoke_device(&app, DeviceKey(key), reason).await {
        Ok(revoked) => Ok(Json(Revoked { revoked })),
        Err(crate::revoke::RevokeError::UnknownDevice(key)) => {
            Err(Failure::not_found(&format!("device {key}")))
        }
        Err(crate::revoke::RevokeError::Store(error)) => Err(error.into()),
        Err(error) => {
            tracing::error!(%error, "revocation failed");
            Err(Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "revocation_failed",
                error.to_string(),
            ))
        }
    }
}

/// `POST /api/v1/groups` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateGroup {
    /// The group's name (`lab` makes `groups/lab`).
    pub name: String,
}

/// `POST /api/v1/groups/{name}/items` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditGroup {
    /// Items to add (those already listed are left as they are).
    #[serde(default)]
    pub add: Vec<String>,
    /// Items to remove (applied before `add`).
    #[serde(default)]
    pub remove: Vec<String>,
    /// The list to edit; `managed_installs` when absent.
    #[serde(default)]
    pub key: Option<String>,
}

impl From<GroupError> for Failure {
    fn from(error: GroupError) -> Self {
        match error {
            GroupError::InvalidName { .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_group_name",
                error.to_string(),
            ),
            GroupError::InvalidItem { .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_item",
                error.to_string(),
            ),
            GroupError::InvalidKey(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_key",
                error.to_string(),
            ),
            GroupError::NotFound(_) => {
                Self::new(StatusCode::NOT_FOUND, "not_found", error.to_string())
            }
            GroupError::Exists(_) => Self::new(StatusCode::CONFLICT, "conflict", error.to_string()),
            GroupError::Repository(_) => {
                tracing::error!(%error, "group manifest operation failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "repository_failed",
                    error.to_string(),
                )
            }
        }
    }
}

/// Runs a group operation on the server's repository, off the async workers (it reads and
/// writes files).
async fn on_repo<S, T>(
    app: &App<S>,
    operation: impl FnOnce(&Repo) -> Result<T, GroupError> + Send + 'static,
) -> Result<T, Failure>
where
    T: Send + 'static,
{
    let repo = app
        .enrollment
        .as_ref()
        .map(|enrollment| enrollment.repo.clone())
        .ok_or_else(|| {
            Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "repository_unavailable",
                "this server has no Munki repository",
            )
        })?;
    match tokio::task::spawn_blocking(move || operation(&repo)).await {
        Ok(result) => Ok(result?),
        Err(error) => {
            tracing::error!(%error, "group manifest task failed");
            Err(Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "repository_failed",
                "the group manifest operation did not finish; retry",
            ))
        }
    }
}

async fn list_groups<S: Store>(State(app): State<Arc<App<S>>>) -> ApiResult<Vec<Group>> {
    Ok(Json(on_repo(&app, groups::list).await?))
}

async fn create_group<S: Store + 'static>(
    State(app): State<Arc<App<S>>>,
    JsonBody(request): JsonBody<CreateGroup>,
) -> Result<(StatusCode, Json<Group>), Failure> {
    let group = on_repo(&app, move |repo| groups::create(repo, &request.name)).await?;
    app.manifests_changed();
    tracing::info!(group = %group.manifest, "group manifest created");
    Ok((StatusCode::CREATED, Json(group)))
}

async fn show_group<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(name): Path<String>,
) -> ApiResult<Group> {
    Ok(Json(
        on_repo(&app, move |repo| groups::show(repo, &name)).await?,
    ))
}

async fn edit_group<S: Store + 'static>(
    State(app): State<Arc<App<S>>>,
    Path(name): Path<String>,
    JsonBody(request): JsonBody<EditGroup>,
) -> ApiResult<Edited> {
    let edited = on_repo(&app, move |repo| {
        groups::edit(
            repo,
            &name,
            request.key.as_deref(),
            &request.add,
            &request.remove,
        )
    })
    .await?;
    app.manifests_changed();
    // The items may name packages built since the watcher last looked: record them now, so
    // the next check-in is offered what the group asks for.
    if let Err(error) = app.packages_changed().await {
        tracing::warn!(%error, "could not record new packages; the watcher will retry");
    }
    tracing::info!(group = %edited.group.manifest, added = ?edited.added, removed = ?edited.removed, "group manifest edited");
    Ok(Json(edited))
}
