//! `POST /ocsinventory`: the OCS Inventory NG agent protocol.
//!
//! - PROLOG → the DOWNLOAD option with every package the device still needs — those
//!   assigned to it and those its manifest asks for ([`crate::decide`]) that have no result
//!   yet; waiting deployments become notified.
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
use rustls_pki_types::CertificateDer;
use serde_json::{Map, Value, json};
use tessera_protocol::ocs::{
    DeviceId, Inventory, PackOffer, PackageId, PrologReply, PrologResponse, Request, RequestLimits,
    inventory_reply_xml,
};
use tessera_protocol::{BodyEncoding, body};
use tessera_store::{DeploymentState, DeviceKey, NewDevice, Store};

use crate::app::App;
use crate::checkin_cache::CertificateOwner;
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

async fn ocsinventory<S: Store + 'static>(
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
        Some(certificate) => match certificate_owner(&app, certificate).await {
            Ok(CertificateOwner::Device(device)) => Caller::Certified(device),
            Ok(CertificateOwner::Unknown) => {
                return (
                    StatusCode::FORBIDDEN,
                    "this client certificate was not issued to an enrolled device; enroll again\n",
                )
                    .into_response();
            }
            // The TLS layer refuses it from the next handshake; this covers connections
            // kept alive from before the revocation.
            Ok(CertificateOwner::Revoked) => {
                return (
                    StatusCode::FORBIDDEN,
                    "this client certificate has been revoked; enroll again\n",
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
            prolog(&app, caller, &device_id, encoding).await
        }
        Request::Inventory(inventory) => inventory_received(&app, caller, &inventory)
            .await
            .map(|()| reply(inventory_reply_xml(), encoding)),
        Request::DownloadResult {
            device_id,
            package,
            result,
        } => {
            Metrics::count(&app.metrics.results);
            download_result(&app, caller, &device_id, package, &result)
                .await
                .map(|()| empty_ok())
        }
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

/// Who a verified client certificate belongs to, from the ledger (cached).
async fn certificate_owner<S: Store + 'static>(
    app: &App<S>,
    certificate: &CertificateDer<'_>,
) -> tessera_store::Result<CertificateOwner> {
    match crate::identity::serial_hex(certificate) {
        Some(serial) => app.store.certificate_owner(&serial).await,
        None => Ok(CertificateOwner::Unknown),
    }
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
    async fn device<S: Store + 'static>(
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
async fn device_for<S: Store + 'static>(
    app: &App<S>,
    device_id: &DeviceId,
) -> tessera_store::Result<DeviceKey> {
    if let Some(key) = app.store.ocs_device(device_id.as_str()).await? {
        return Ok(key);
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
            .ocs_device(device_id.as_str())
            .await?
            .ok_or_else(|| tessera_store::Error::NotFound(format!("device {device_id}"))),
        Err(error) => Err(error),
    }
}

/// The PROLOG reply. In the common case nothing here waits for the store: the device and
/// its pending deployments come from memory and the contact time is written in the
/// background; only a first offer of a package waits for its (group-committed) write.
async fn prolog<S: Store + 'static>(
    app: &App<S>,
    caller: Caller,
    device_id: &DeviceId,
    encoding: BodyEncoding,
) -> tessera_store::Result<Response> {
    let now = app.now();
    let device = caller.device(app, device_id).await?;
    let snapshot = app
        .store
        .checkin_state(device, &|device| app.decided_packages(device))
        .await?
        .ok_or_else(|| tessera_store::Error::NotFound(format!("device {}", device.0)))?;
    app.store.touch(device, now);
    let download = app.config.ocs.download;
    if download.on {
        let waiting: Vec<i64> = snapshot
            .state
            .pending
            .iter()
            .filter(|&&(_, state)| state == DeploymentState::Waiting)
            .map(|&(id, _)| id)
            .collect();
        if !waiting.is_empty() {
            // Durable before the reply: see docs/decisions/0006-checkin-state-in-memory.md.
            app.store.notified(device, &snapshot, &waiting, now).await?;
        }
    }
    // Ask for an inventory when the server has none yet, or it is older than the period.
    let inventory_due = snapshot.state.inventory_at.is_none_or(|at| {
        now.unix_timestamp() - at >= i64::from(app.config.ocs.prolog_freq_hours) * 3600
    });
    // Besides the state and the configuration, the reply depends only on these two.
    let memo_key = (u8::from(inventory_due) << 2)
        | match encoding {
            BodyEncoding::Zlib => 0,
            BodyEncoding::Gzip => 1,
            BodyEncoding::Plain => 2,
        };
    if let Some(body) = snapshot.state.reply.get(memo_key) {
        return Ok(reply_body(encoding, Body::from(body)));
    }
    let location = app.config.public.download_location();
    let offers: Vec<PackOffer> = snapshot
        .state
        .pending
        .iter()
        .filter_map(|&(id, _)| u64::try_from(id).ok())
        .map(|id| PackOffer {
            id: PackageId(id),
            info_location: location.clone(),
            pack_location: location.clone(),
            force: false,
        })
        .collect();
    let response = if inventory_due {
        PrologResponse::Send
    } else {
        PrologResponse::Stop
    };
    let xml = PrologReply {
        response,
        prolog_freq_hours: app.config.ocs.prolog_freq_hours,
        download: Some((download, offers)),
    }
    .to_xml();
    let body = Bytes::from(encode(&xml, encoding));
    snapshot.state.reply.set(memo_key, body.clone());
    Ok(reply_body(encoding, Body::from(body)))
}

async fn inventory_received<S: Store + 'static>(
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

async fn download_result<S: Store + 'static>(
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
            let Some(device) = app.store.ocs_device(device_id.as_str()).await? else {
                tracing::info!(%device_id, %package, %result, "result from an unknown device ignored");
                return Ok(());
            };
            device
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
    reply_body(encoding, Body::from(encode(xml, encoding)))
}

fn encode(xml: &str, encoding: BodyEncoding) -> Vec<u8> {
    match encoding {
        BodyEncoding::Zlib => body::encode_zlib(xml.as_bytes()),
        BodyEncoding::Gzip => body::encode_gzip(xml.as_bytes()),
        BodyEncoding::Plain => xml.as_bytes().to_vec(),
    }
}

fn reply_body(encoding: BodyEncoding, body: Body) -> Response {
    let content_type = match encoding {
        BodyEncoding::Zlib => "application/x-compressed",
        BodyEncoding::Gzip => "application/x-gzip",
        BodyEncoding::Plain => "application/xml",
    };
    Response::builder()
        .header(CONTENT_TYPE, content_type)
        .header(CACHE_CONTROL, "no-cache")
        .body(body)
        .unwrap_or_default()
}

fn empty_ok() -> Response {
    StatusCode::OK.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_store::{CertificateRecord, Revocation, SqliteStore};
    use tower::ServiceExt as _;

    const PROLOG: &str =
        "<REQUEST><DEVICEID>host-2024-05-01-10-20-30</DEVICEID><QUERY>PROLOG</QUERY></REQUEST>";

    #[tokio::test]
    async fn a_certificate_revoked_while_its_connection_is_open_is_refused() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["host".to_owned()]).unwrap();
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x0a, 0x1b]));
        let der = params.self_signed(&key).unwrap().der().clone();
        let packages = tessera_package::Repository::new("/nonexistent/tessera-test-repo");
        let app = App::new(
            SqliteStore::in_memory().await.unwrap(),
            crate::config::Config::default(),
            packages,
        )
        .shared();
        let now = app.now();
        let device = app
            .store
            .create_device(
                &NewDevice {
                    computer_name: "host".into(),
                    serial: Some("SER".into()),
                    ocs_device_id: None,
                    manifest: "computers/SER".into(),
                    facts: Map::new(),
                },
                now,
            )
            .await
            .unwrap();
        app.store
            .record_certificate(&CertificateRecord {
                serial: "0a1b".into(),
                device: Some(device),
                computer_name: "host".into(),
                not_before: now,
                not_after: now + time::Duration::days(1),
                certificate_pem: String::new(),
                revoked: None,
            })
            .await
            .unwrap();
        let router = routes::<SqliteStore>().with_state(Arc::clone(&app));
        // What the TLS layer attaches to every request of a connection it verified.
        let check_in = || {
            let mut request = http::Request::post("/ocsinventory")
                .body(Body::from(body::encode_zlib(PROLOG.as_bytes())))
                .unwrap();
            request
                .extensions_mut()
                .insert(ClientCertificate(Some(Arc::new(der.clone()))));
            let router = router.clone();
            async move { router.oneshot(request).await.unwrap().status() }
        };
        assert_eq!(check_in().await, StatusCode::OK);
        app.store
            .revoke_certificate(
                "0a1b",
                &Revocation {
                    at: now,
                    reason: "keyCompromise".into(),
                },
            )
            .await
            .unwrap();
        assert_eq!(check_in().await, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn a_remembered_reply_is_reused_only_for_the_same_state_and_encoding() {
        let mut config = crate::config::Config::default();
        config.ocs.compat = true;
        let packages = tessera_package::Repository::new("/nonexistent/tessera-test-repo");
        let app = App::new(SqliteStore::in_memory().await.unwrap(), config, packages).shared();
        let router = routes::<SqliteStore>().with_state(Arc::clone(&app));
        let post = |body: Vec<u8>| {
            let request = http::Request::post("/ocsinventory")
                .body(Body::from(body))
                .unwrap();
            let router = router.clone();
            async move {
                let response = router.oneshot(request).await.unwrap();
                axum::body::to_bytes(response.into_body(), 1 << 20)
                    .await
                    .unwrap()
            }
        };
        let zlib = post(body::encode_zlib(PROLOG.as_bytes())).await;
        assert_eq!(zlib, post(body::encode_zlib(PROLOG.as_bytes())).await);
        let plain = post(PROLOG.as_bytes().to_vec()).await;
        let text = std::str::from_utf8(&plain).unwrap();
        assert!(text.contains("<RESPONSE>SEND</RESPONSE>"), "{text}");
        assert!(!text.contains("TYPE=\"PACK\""), "{text}");

        let device = app
            .store
            .ocs_device("host-2024-05-01-10-20-30")
            .await
            .unwrap()
            .unwrap();
        app.store
            .put_package(&tessera_store::PackageRecord {
                id: 7,
                name: "p".into(),
                version: "1".into(),
                priority: 5,
                action: "STORE".into(),
                fragments: 1,
                size: 1,
                created_at: app.now(),
            })
            .await
            .unwrap();
        app.store.assign(device, 7, app.now()).await.unwrap();
        let plain = post(PROLOG.as_bytes().to_vec()).await;
        assert!(std::str::from_utf8(&plain).unwrap().contains("ID=\"7\""));
        let mut facts = Map::new();
        facts.insert("inventory_at".into(), json!(app.now().unix_timestamp()));
        app.store
            .record_contact(device, Some(&facts), app.now())
            .await
            .unwrap();
        let plain = post(PROLOG.as_bytes().to_vec()).await;
        let text = std::str::from_utf8(&plain).unwrap();
        assert!(
            text.contains("<RESPONSE>STOP</RESPONSE>") && text.contains("ID=\"7\""),
            "{text}"
        );
    }
}
