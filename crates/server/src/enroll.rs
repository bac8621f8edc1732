//! `POST /enroll`: a device with an enrollment token and a CSR gets its certificate and
//! its place in the manifest tree. `POST /enroll/renew`: a device that presents its
//! current certificate gets a new one for a new key, and the old one is revoked.
//!
//! Order matters: the CSR, the name and the serial are checked first (cheap, bounded), the
//! token is consumed atomically only then — so a malformed request does not burn a
//! single-use token — and the certificate is issued last. Token refusals are deliberately
//! uniform towards the device (`token_refused`); the server log says which reason.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::StatusCode;
use serde_json::{Map, Value};
use tessera_ca::{Ca, ComputerName, DeviceCsr, RevocationReason, Serial};
use tessera_manifest::{Manifest, Repo, RepoKind, ResourceName};
use tessera_protocol::enroll::{EnrollRequest, EnrollResponse, RenewRequest};
use tessera_store::{CertificateRecord, NewDevice, Store};

use crate::admin::{Failure, JsonBody};
use crate::app::App;
use crate::secret;

/// What enrollment needs beyond the store: the CA that signs and the repository that
/// receives the computer manifest.
pub struct Enrollment {
    /// The device CA.
    pub ca: Ca,
    /// The Munki repository.
    pub repo: Repo,
    /// Where new CRLs are applied (files, HTTP, TLS); `None` publishes on HTTP only.
    pub publisher: Option<crate::revoke::CrlPublisher>,
}

/// The route.
pub fn routes<S: Store + 'static>() -> Router<Arc<App<S>>> {
    Router::new()
        .route("/enroll", post(enroll::<S>))
        .route("/enroll/join", post(join::<S>))
        .route("/enroll/renew", post(renew::<S>))
}

/// `POST /enroll/join` body: a device joins or leaves a group manifest.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// The group manifest, e.g. `groups/lab` (one the enrollment answer listed).
    pub group: String,
    /// Leave instead of join.
    #[serde(default)]
    pub leave: bool,
}

/// `POST /enroll/join` answer: the groups the device's manifest now includes.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct JoinResponse {
    /// Included manifests of the device's computer manifest, in order.
    pub included_manifests: Vec<String>,
}

/// The device certificate the TLS layer verified, or 401 saying what it is needed for.
fn presented(
    certificate: Option<axum::Extension<crate::tls::ClientCertificate>>,
    needed_for: &str,
) -> Result<Arc<rustls_pki_types::CertificateDer<'static>>, Failure> {
    certificate
        .and_then(|axum::Extension(crate::tls::ClientCertificate(c))| c)
        .ok_or_else(|| {
            Failure::new(
                StatusCode::UNAUTHORIZED,
                "certificate_required",
                format!("{needed_for} needs the device certificate, presented over HTTPS"),
            )
        })
}

/// Runs CA work (key generation, signing) off the async worker threads.
async fn on_ca<S: Store + 'static, T: Send + 'static>(
    app: &Arc<App<S>>,
    work: impl FnOnce(&Ca) -> T + Send + 'static,
) -> Result<T, Failure> {
    let app = Arc::clone(app);
    tokio::task::spawn_blocking(move || app.enrollment.as_ref().map(|e| work(&e.ca)))
        .await
        .map_err(|_| {
            Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "issuing failed",
            )
        })?
        .ok_or_else(no_ca)
}

/// 503 when this server runs without a CA.
fn no_ca() -> Failure {
    Failure::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "enrollment_disabled",
        "this server has no CA",
    )
}

/// A device (identified by its certificate) adds or removes a `groups/…` manifest in its
/// own computer manifest's `included_manifests`. Only existing manifests under `groups/`
/// can be joined, and only the device's own manifest changes.
async fn join<S: Store>(
    State(app): State<Arc<App<S>>>,
    certificate: Option<axum::Extension<crate::tls::ClientCertificate>>,
    JsonBody(request): JsonBody<JoinRequest>,
) -> Result<axum::Json<JoinResponse>, Failure> {
    let certificate = presented(certificate, "joining a group")?;
    let enrollment = app.enrollment.as_ref().ok_or_else(no_ca)?;
    let key = crate::identity::certified_device(&app.store, &certificate)
        .await?
        .ok_or_else(|| {
            Failure::new(
                StatusCode::FORBIDDEN,
                "not_enrolled",
                "this certificate was not issued to an enrolled device",
            )
        })?;
    let device = app.store.device(key).await?.ok_or_else(|| {
        Failure::new(
            StatusCode::FORBIDDEN,
            "not_enrolled",
            "this certificate was not issued to an enrolled device",
        )
    })?;
    if !device.manifest.starts_with("computers/") {
        return Err(Failure::new(
            StatusCode::CONFLICT,
            "shared_manifest",
            format!(
                "this device uses the shared manifest {:?}; an admin assigns its groups",
                device.manifest
            ),
        ));
    }
    let group = ResourceName::new(&request.group)
        .ok()
        .filter(|name| name.as_str().starts_with("groups/"))
        .filter(|name| enrollment.repo.exists(RepoKind::Manifests, name))
        .ok_or_else(|| {
            Failure::new(
                StatusCode::NOT_FOUND,
                "unknown_group",
                format!("no group manifest {:?}", request.group),
            )
        })?;
    let repo = &enrollment.repo;
    let write_failed = |e: tessera_manifest::Error| {
        tracing::error!(error = %e, "updating a computer manifest failed");
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "manifest_write_failed",
            e.to_string(),
        )
    };
    let mut manifest = repo.read_manifest(&device.manifest).map_err(write_failed)?;
    let included = &mut manifest.included_manifests;
    let present = included.iter().any(|g| g == group.as_str());
    if request.leave && present {
        included.retain(|g| g != group.as_str());
        repo.write_manifest(&device.manifest, &manifest)
            .map_err(write_failed)?;
    } else if !request.leave && !present {
        included.push(group.to_string());
        repo.write_manifest(&device.manifest, &manifest)
            .map_err(write_failed)?;
    }
    tracing::info!(device = %device.computer_name, group = %group, leave = request.leave, "group membership");
    Ok(axum::Json(JoinResponse {
        included_manifests: manifest.included_manifests,
    }))
}

async fn enroll<S: Store + 'static>(
    State(app): State<Arc<App<S>>>,
    JsonBody(request): JsonBody<EnrollRequest>,
) -> Response {
    match enroll_inner(&app, request).await {
        Ok(response) => (StatusCode::OK, axum::Json(response)).into_response(),
        Err(failure) => failure.into_response(),
    }
}

async fn enroll_inner<S: Store + 'static>(
    app: &Arc<App<S>>,
    request: EnrollRequest,
) -> Result<EnrollResponse, Failure> {
    let enrollment = app.enrollment.as_ref().ok_or_else(no_ca)?;
    let facts = &request.facts;
    let name = ComputerName::new(&facts.hostname).map_err(|e| {
        Failure::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_hostname",
            e.to_string(),
        )
    })?;
    let serial = facts.serial.trim();
    let manifest_name = format!("computers/{serial}");
    if serial.is_empty() || serial.contains('/') || ResourceName::new(&manifest_name).is_err() {
        return Err(Failure::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_serial",
            "the serial number must be non-empty and must not contain `/` or be `.`/`..`",
        ));
    }
    let csr = DeviceCsr::parse(request.csr_pem.as_bytes())
        .map_err(|e| Failure::new(StatusCode::BAD_REQUEST, "invalid_csr", e.to_string()))?;
    csr.check_names(&name).map_err(|e| {
        Failure::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "name_mismatch",
            e.to_string(),
        )
    })?;

    let now = app.now();
    if let Err(reason) = app
        .store
        .consume_token(&secret::hash(&request.token), now)
        .await?
    {
        tracing::info!(hostname = %name, serial, ?reason, "enrollment refused");
        return Err(Failure::new(
            StatusCode::FORBIDDEN,
            "token_refused",
            "the enrollment token is unknown, expired, used up or revoked; ask for a new one",
        ));
    }

    let issued = {
        let name = name.clone();
        on_ca(app, move |ca| ca.issue_from_csr(&csr, &name)).await?
    };
    let issued = issued.map_err(|error| {
        tracing::error!(%error, "issuing a device certificate failed");
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "issue_failed",
            error.to_string(),
        )
    })?;

    let mut device_facts = Map::new();
    for (key, value) in [
        ("hostname", &facts.hostname),
        ("serial_number", &facts.serial),
        ("os", &facts.os),
        ("os_vers", &facts.os_version),
        ("arch", &facts.arch),
    ] {
        if !value.is_empty() {
            device_facts.insert(key.to_owned(), Value::String(value.clone()));
        }
    }
    let device = match app.store.device_by_serial(serial).await? {
        Some(existing) => {
            app.store
                .record_contact(existing.key, Some(&device_facts), now)
                .await?;
            existing.key
        }
        None => {
            app.store
                .create_device(
                    &NewDevice {
                        computer_name: name.to_string(),
                        serial: Some(serial.to_owned()),
                        ocs_device_id: None,
                        manifest: manifest_name.clone(),
                        facts: device_facts,
                    },
                    now,
                )
                .await?
        }
    };
    app.store
        .record_certificate(&CertificateRecord {
            serial: issued.serial.to_hex(),
            device: Some(device),
            computer_name: name.to_string(),
            not_before: issued.not_before,
            not_after: issued.not_after,
            certificate_pem: issued.certificate_pem.clone(),
            revoked: None,
        })
        .await?;

    let repo = &enrollment.repo;
    let manifest_resource = ResourceName::new(&manifest_name).map_err(|e| {
        Failure::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_serial",
            e.to_string(),
        )
    })?;
    if !repo.exists(RepoKind::Manifests, &manifest_resource) {
        let default_group = &app.config.enrollment.default_group;
        let mut manifest = Manifest::new();
        // Munki processes nothing under a primary manifest without catalogs (not even its
        // includes), so the computer manifest names the default group's, as the Munki
        // Enrollment Server's does.
        manifest.catalogs = repo
            .read_manifest(default_group)
            .ok()
            .map(|group| group.catalogs)
            .filter(|catalogs| !catalogs.is_empty())
            .unwrap_or_else(|| vec!["production".to_owned()]);
        manifest.included_manifests = vec![default_group.clone()];
        repo.write_manifest(&manifest_name, &manifest)
            .map_err(|e| {
                tracing::error!(error = %e, "writing the computer manifest failed");
                Failure::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "manifest_write_failed",
                    e.to_string(),
                )
            })?;
    }
    tracing::info!(hostname = %name, serial, certificate = %issued.serial.to_hex(), "device enrolled");
    Ok(answer(enrollment, &issued, manifest_name))
}

/// The enrollment answer for a certificate just issued.
fn answer(
    enrollment: &Enrollment,
    issued: &tessera_ca::IssuedCertificate,
    manifest: String,
) -> EnrollResponse {
    let groups = enrollment
        .repo
        .list(RepoKind::Manifests)
        .map(|names| {
            names
                .into_iter()
                .map(|n| n.to_string())
                .filter(|n| n.starts_with("groups/"))
                .collect()
        })
        .unwrap_or_default();
    EnrollResponse {
        certificate_chain_pem: format!("{}{}", issued.certificate_pem, enrollment.ca.chain_pem()),
        ca_pem: crate::datadir::DataDir::ca_certificate_pem(&enrollment.ca),
        manifest,
        groups,
    }
}

/// A device renews with the certificate it presents (the TLS verifier has checked chain,
/// validity and CRL already): a new certificate for the key in the CSR, for the same
/// computer name, recorded for the same device. The previous certificate is revoked
/// (`superseded`) only once the new one is stored, so that a failure on the way never
/// leaves the device without a valid certificate.
async fn renew<S: Store + 'static>(
    State(app): State<Arc<App<S>>>,
    certificate: Option<axum::Extension<crate::tls::ClientCertificate>>,
    JsonBody(request): JsonBody<RenewRequest>,
) -> Result<axum::Json<EnrollResponse>, Failure> {
    let certificate = presented(certificate, "renewal")?;
    let enrollment = app.enrollment.as_ref().ok_or_else(no_ca)?;
    let not_enrolled = || {
        Failure::new(
            StatusCode::FORBIDDEN,
            "not_enrolled",
            "this certificate was not issued to an enrolled device, or it is revoked; \
             enroll the device again",
        )
    };
    let old_serial = crate::identity::serial_hex(&certificate).ok_or_else(not_enrolled)?;
    let old = app
        .store
        .certificate(&old_serial)
        .await?
        .filter(|record| record.revoked.is_none())
        .ok_or_else(not_enrolled)?;
    let device_key = old.device.ok_or_else(not_enrolled)?;
    let device = app
        .store
        .device(device_key)
        .await?
        .ok_or_else(not_enrolled)?;
    let name = ComputerName::new(&old.computer_name).map_err(|e| {
        tracing::error!(serial = %old_serial, error = %e, "a recorded certificate has an invalid name");
        Failure::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    })?;
    let csr = DeviceCsr::parse(request.csr_pem.as_bytes())
        .map_err(|e| Failure::new(StatusCode::BAD_REQUEST, "invalid_csr", e.to_string()))?;
    csr.check_names(&name).map_err(|e| {
        Failure::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "name_mismatch",
            format!("{e}; a renewal keeps the name of the current certificate"),
        )
    })?;
    let previous = Serial::from_hex(&old_serial).map_err(|_| not_enrolled())?;

    let issued = match on_ca(&app, move |ca| ca.renew(&previous, &csr)).await? {
        Ok(issued) => issued,
        Err(error @ tessera_ca::CaError::NotRenewable { .. }) => {
            return Err(Failure::new(
                StatusCode::FORBIDDEN,
                "not_renewable",
                error.to_string(),
            ));
        }
        Err(error) => {
            tracing::error!(%error, "renewing a device certificate failed");
            return Err(Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "issue_failed",
                error.to_string(),
            ));
        }
    };
    let new_serial = issued.serial.to_hex();
    app.store
        .record_certificate(&CertificateRecord {
            serial: new_serial.clone(),
            device: Some(device_key),
            computer_name: name.to_string(),
            not_before: issued.not_before,
            not_after: issued.not_after,
            certificate_pem: issued.certificate_pem.clone(),
            revoked: None,
        })
        .await?;
    // The device gets its new certificate even if revoking the old one fails: the old one
    // then stays valid until it expires, as it would have without renewal, and the error
    // is in the log for an admin (who can revoke it by hand).
    if let Err(error) =
        crate::revoke::revoke_certificate(&app, &old_serial, RevocationReason::Superseded).await
    {
        tracing::error!(%error, serial = %old_serial, "revoking a renewed certificate failed");
    }
    tracing::info!(hostname = %name, previous = %old_serial, certificate = %new_serial, "device certificate renewed");
    Ok(axum::Json(answer(enrollment, &issued, device.manifest)))
}
