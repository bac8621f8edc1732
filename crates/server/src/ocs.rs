//! `POST /ocsinventory`: the OCS Inventory NG agent protocol.
//!
//! - PROLOG → the DOWNLOAD option with every package the device still needs; waiting
//!   deployments become notified.
//! - INVENTORY → the facts it carries are stored; `NO_ACCOUNT_UPDATE`.
//! - DOWNLOAD → the result is recorded (success or error by the console's rules); always
//!   `200` with an empty body, as agents only look at the status.
//!
//! Identity: a device that presents a client certificate is the device that certificate
//! was issued to, whatever DEVICEID its message claims. Without a certificate, the
//! DEVICEID is taken at its word — which is why that compatibility path for unmodified
//! OCS agents is off unless `ocs.compat` is set.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use http::StatusCode;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use serde_json::{Map, Value, json};
use tessera_protocol::ocs::{
    DeviceId, Inventory, PackOffer, PackageId, PrologReply, PrologResponse, Request, RequestLimits,
    inventory_reply_xml,
};
use tessera_protocol::{BodyEncoding, body};
use tessera_store::{DeploymentState, DeviceKey, NewDevice, Store};

use crate::app::App;
use crate::metrics::Metrics;
use crate::tls::ClientCertificate;

/// The manifest given to devices first seen through the OCS compatibility path.
pub const SITE_DEFAULT_MANIFEST: &str = "site_default";

/// Largest request body accepted before decompression.
const MAX_BODY: usize = 8 * 1024 * 1024;

/// The route, to be merged into the HTTPS router.
pub fn routes<S: Store + 'static>() -> Router<Arc<App<S>>> {
    Router::new()
        .route("/ocsinventory", axum::routing::post(ocsinventory::<S>))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
}

async fn ocsinventory<S: Store>(
    State(app): State<Arc<App<S>>>,
    certificate: Option<Extension<ClientCertificate>>,
    body: Bytes,
) -> Response {
    let certificate = certificate.and_then(|Extension(ClientCertificate(c))| c);
    let (request, encoding) = match Request::from_body(&body, RequestLimits::default()) {
        Ok(decoded) => decoded,
        Err(error) => {
            tracing::info!(%error, "refused OCS message");
            let status = match error {
                tessera_protocol::Error::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::BAD_REQUEST,
            };
            return (status, format!("{error}\n")).into_response();
        }
    };
    if certificate.is_none() && !app.config.ocs.compat {
        return (
            StatusCode::FORBIDDEN,
            "this server accepts OCS check-ins only with a device certificate; \
             set `ocs.compat = true` in config.toml to serve unmodified OCS agents\n",
        )
            .into_response();
    }
    let caller = match &certificate {
        Some(certificate) => match crate::identity::certified_device(&app.store, certificate).await
        {
            Ok(Some(device)) => Caller::Certified(device),
            Ok(None) => {
                return (
                    StatusCode::FORBIDDEN,
                    "this client certificate was not issued to an enrolled device; enroll again\n",
                )
                    .into_response();
            }
            Err(error) => return unavailable(&error),
        },
        None => Caller::Ocs,
    };
    let result = match request {
        Request::Prolog { device_id } => {
            Metrics::count(&app.metrics.checkins);
            prolog(&app, caller, &device_id)
                .await
                .map(|xml| reply(&xml, encoding))
        }
        Request::Inventory(inventory) => inventory_received(&app, caller, &inventory)
            .await
            .map(|()| reply(inventory_reply_xml(), encoding)),
        Request::DownloadResult {
            device_id,
            package,
            result,
        } => download_result(&app, caller, &device_id, package, &result)
            .await
            .map(|()| empty_ok()),
        Request::Other { query } => {
            tracing::debug!(%query, "OCS query not handled");
            Ok(empty_ok())
        }
    };
    result.unwrap_or_else(|error| unavailable(&error))
}

fn unavailable(error: &tessera_store::Error) -> Response {
    tracing::error!(%error, "OCS request failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the server could not record this message; retry later\n",
    )
        .into_response()
}

/// Who is checking in.
#[derive(Debug, Clone, Copy)]
enum Caller {
    /// A device identified by its verified client certificate.
    Certified(DeviceKey),
    /// An unmodified OCS agent, identified by the DEVICEID it sends.
    Ocs,
}

impl Caller {
    async fn device<S: Store>(
        self,
        app: &App<S>,
        device_id: &DeviceId,
    ) -> tessera_store::Result<DeviceKey> {
        match self {
            Self::Certified(key) => Ok(key),
            Self::Ocs => device_for(app, device_id).await,
        }
    }
}

/// The device behind an OCS DEVICEID, created on first sight with the site default manifest.
async fn device_for<S: Store>(
    app: &App<S>,
    device_id: &DeviceId,
) -> tessera_store::Result<DeviceKey> {
    device_record_for(app, device_id).await.map(|d| d.key)
}

/// [`device_for`], returning the whole record.
async fn device_record_for<S: Store>(
    app: &App<S>,
    device_id: &DeviceId,
) -> tessera_store::Result<tessera_store::Device> {
    if let Some(device) = app.store.device_by_ocs_id(device_id.as_str()).await? {
        return Ok(device);
    }
    let new = NewDevice {
        computer_name: device_id.hostname().to_owned(),
        serial: None,
        ocs_device_id: Some(device_id.as_str().to_owned()),
        manifest: SITE_DEFAULT_MANIFEST.to_owned(),
        facts: Map::new(),
    };
    match app.store.create_device(&new, app.now()).await {
        // Created, or two first check-ins raced and the other one created it.
        Ok(_) | Err(tessera_store::Error::Conflict { .. }) => app
            .store
            .device_by_ocs_id(device_id.as_str())
            .await?
            .ok_or_else(|| tessera_store::Error::NotFound(format!("device {device_id}"))),
        Err(error) => Err(error),
    }
}

async fn prolog<S: Store>(
    app: &App<S>,
    caller: Caller,
    device_id: &DeviceId,
) -> tessera_store::Result<String> {
    let now = app.now();
    let known = match caller {
        Caller::Certified(key) => app
            .store
            .device(key)
            .await?
            .ok_or_else(|| tessera_store::Error::NotFound(format!("device {}", key.0)))?,
        Caller::Ocs => device_record_for(app, device_id).await?,
    };
    let device = known.key;
    app.store.record_contact(device, None, now).await?;
    let pending: Vec<_> = app
        .store
        .deployments_for(device)
        .await?
        .into_iter()
        .filter(|d| !d.state.is_final())
        .collect();
    let location = app.config.public.download_location();
    let offers: Vec<PackOffer> = pending
        .iter()
        .filter_map(|d| u64::try_from(d.package_id).ok())
        .map(|id| PackOffer {
            id: PackageId(id),
            info_location: location.clone(),
            pack_location: location.clone(),
            force: false,
        })
        .collect();
    let download = app.config.ocs.download;
    if download.on {
        let waiting: Vec<i64> = pending
            .iter()
            .filter(|d| d.state == DeploymentState::Waiting)
            .map(|d| d.package_id)
            .collect();
        if !waiting.is_empty() {
            app.store.mark_notified(device, &waiting, now).await?;
        }
    }
    // Ask for an inventory when the server has none yet, or it is older than the period.
    let inventory_due = known
        .facts
        .get("inventory_at")
        .and_then(Value::as_i64)
        .is_none_or(|at| {
            now.unix_timestamp() - at >= i64::from(app.config.ocs.prolog_freq_hours) * 3600
        });
    let response = if inventory_due {
        PrologResponse::Send
    } else {
        PrologResponse::Stop
    };
    Ok(PrologReply {
        response,
        prolog_freq_hours: app.config.ocs.prolog_freq_hours,
        download: Some((download, offers)),
    }
    .to_xml())
}

async fn inventory_received<S: Store>(
    app: &App<S>,
    caller: Caller,
    inventory: &Inventory,
) -> tessera_store::Result<()> {
    let Some(device_id) = &inventory.device_id else {
        return Ok(());
    };
    let device = caller.device(app, device_id).await?;
    let now = app.now();
    let mut facts = Map::new();
    let mut put = |name: &str, value: &Option<String>| {
        if let Some(value) = value {
            facts.insert(name.to_owned(), Value::String(value.clone()));
        }
    };
    put("hostname", &inventory.hostname);
    put("os_name", &inventory.os_name);
    put("os_version", &inventory.os_version);
    put("arch", &inventory.arch);
    put("ip_address", &inventory.ip_address);
    put("uuid", &inventory.uuid);
    put("serial_number", &inventory.serial);
    facts.insert("inventory_at".into(), json!(now.unix_timestamp()));
    app.store.record_contact(device, Some(&facts), now).await
}

async fn download_result<S: Store>(
    app: &App<S>,
    caller: Caller,
    device_id: &DeviceId,
    package: PackageId,
    result: &tessera_protocol::ocs::ResultCode,
) -> tessera_store::Result<()> {
    // An unknown device or package is acknowledged like the reference server does (200),
    // and changes nothing.
    let device = match caller {
        Caller::Certified(key) => key,
        Caller::Ocs => {
            let Some(device) = app.store.device_by_ocs_id(device_id.as_str()).await? else {
                tracing::info!(%device_id, %package, %result, "result from an unknown device ignored");
                return Ok(());
            };
            device.key
        }
    };
    let Ok(package_id) = i64::try_from(package.0) else {
        return Ok(());
    };
    let state = if result.is_success() {
        DeploymentState::Success
    } else {
        DeploymentState::Error
    };
    let recorded = app
        .store
        .record_result(device, package_id, state, &result.to_string(), app.now())
        .await?;
    if !recorded {
        tracing::info!(%device_id, %package, %result, "result for a deployment that is not pending ignored");
    }
    Ok(())
}

fn reply(xml: &str, encoding: BodyEncoding) -> Response {
    let (content_type, body) = match encoding {
        BodyEncoding::Zlib => (
            "application/x-compressed",
            body::encode_zlib(xml.as_bytes()),
        ),
        BodyEncoding::Gzip => ("application/x-gzip", body::encode_gzip(xml.as_bytes())),
        BodyEncoding::Plain => ("application/xml", xml.as_bytes().to_vec()),
    };
    Response::builder()
        .header(CONTENT_TYPE, content_type)
        .header(CACHE_CONTROL, "no-cache")
        .body(Body::from(body))
        .unwrap_or_default()
}

fn empty_ok() -> Response {
    StatusCode::OK.into_response()
}
