//! Enrollment against a real data directory (real CA, SQLite, Munki repository).

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use rcgen::{CertificateParams, KeyPair};
use serde_json::{Value, json};
use tessera_manifest::{Repo, RepoKind, ResourceName};
use tessera_server::app::App;
use tessera_server::datadir::{Created, DataDir};
use tessera_server::enroll::Enrollment;
use tessera_server::secret;
use tessera_store::{NewToken, Store};
use tower::ServiceExt as _;

fn csr_for(name: &str) -> String {
    let key = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.serialize_request(&key).unwrap().pem().unwrap()
}

fn body(token: &str, csr: &str, hostname: &str, serial: &str) -> Value {
    json!({"token": token, "csr_pem": csr, "facts": {"serial": serial, "hostname": hostname, "os": "macOS", "os_version": "14.5", "arch": "arm64"}})
}

async fn post(router: &axum::Router, value: &Value) -> (StatusCode, Value) {
    let request = Request::post("/enroll")
        .header("content-type", "application/json")
        .body(Body::from(value.to_string()))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn enrollment_end_to_end_with_token_rules() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path().join("data"));
    let prepared = data.prepare().await.unwrap();
    assert!(
        prepared
            .created
            .iter()
            .any(|c| matches!(c, Created::AdminToken(t) if t.starts_with("tsa_")))
    );
    let repo = Repo::open(data.repo()).unwrap();
    let app = App::new(prepared.store, prepared.config, prepared.packages)
        .with_enrollment(Enrollment {
            ca: prepared.ca,
            repo: repo.clone(),
            publisher: None,
        })
        .shared();
    let router = tessera_server::enroll::routes().with_state(Arc::clone(&app));
    let now = app.now();
    let token = |hash: &str, uses, expires_at| NewToken {
        token_hash: secret::hash(hash),
        label: hash.into(),
        expires_at,
        uses,
    };
    app.store
        .create_token(&token("tse_once", Some(1), None), now)
        .await
        .unwrap();
    app.store
        .create_token(
            &token("tse_old", None, Some(now - time::Duration::hours(1))),
            now,
        )
        .await
        .unwrap();
    app.store
        .create_token(&token("tse_many", None, None), now)
        .await
        .unwrap();

    // Refusals that must not consume the single-use token.
    let (status, error) = post(&router, &body("tse_once", "not a csr", "MAC01", "C02A")).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_csr"))
    );
    let (status, error) = post(
        &router,
        &body("tse_once", &csr_for("OTHER"), "MAC01", "C02A"),
    )
    .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("name_mismatch"))
    );
    let (status, error) = post(
        &router,
        &body("tse_once", &csr_for("MAC01"), "MAC01", "../x"),
    )
    .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_serial"))
    );

    let (status, ok) = post(
        &router,
        &body("tse_once", &csr_for("MAC01"), "MAC01", "C02A"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{ok}");
    assert_eq!(ok["manifest"], "computers/C02A");
    assert_eq!(ok["groups"], json!(["groups/default"]));
    let chain = ok["certificate_chain_pem"].as_str().unwrap();
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2, "leaf and CA");
    assert!(ok["ca_pem"].as_str().unwrap().contains("BEGIN CERTIFICATE"));

    // The device, its certificate and its manifest exist.
    let device = app.store.device_by_serial("C02A").await.unwrap().unwrap();
    assert_eq!(
        (device.computer_name.as_str(), device.manifest.as_str()),
        ("MAC01", "computers/C02A")
    );
    assert_eq!(device.facts["os_vers"], "14.5");
    let manifest = repo.read_manifest("computers/C02A").unwrap();
    assert_eq!(
        manifest.included_manifests,
        vec!["groups/default".to_owned()]
    );
    // Without catalogs of its own, Munki would process none of its includes.
    assert_eq!(manifest.catalogs, vec!["production".to_owned()]);
    let resolved =
        tessera_manifest::resolve(&repo, "computers/C02A", &tessera_manifest::Facts::new())
            .unwrap();
    assert!(
        !resolved
            .warnings
            .iter()
            .any(|w| matches!(w, tessera_manifest::Warning::NoCatalogs { .. })),
        "{:?}",
        resolved.warnings
    );
    assert_eq!(resolved.manifests, ["computers/C02A", "groups/default"]);
    assert!(repo.exists(
        RepoKind::Manifests,
        &ResourceName::new("site_default").unwrap()
    ));

    // Single use means single use; expired and unknown tokens are refused alike.
    for token in ["tse_once", "tse_old", "tse_nope"] {
        let (status, error) = post(&router, &body(token, &csr_for("MAC02"), "MAC02", "C02B")).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("token_refused")),
            "{token}"
        );
    }
    assert!(app.store.device_by_serial("C02B").await.unwrap().is_none());

    // Re-enrolling the same serial keeps the device and adds a certificate.
    let (status, _) = post(
        &router,
        &body("tse_many", &csr_for("MAC01"), "MAC01", "C02A"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.store.list_devices().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_second_prepare_creates_nothing_and_name_changes_reissue_the_tls_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path().join("data"));
    let first = data.prepare().await.unwrap();
    assert!(first.created.len() >= 6, "{:?}", first.created);
    let hash = first.admin_token_hash.clone();
    drop(first);
    let second = data.prepare().await.unwrap();
    assert!(second.created.is_empty(), "{:?}", second.created);
    assert_eq!(second.admin_token_hash, hash);
    drop(second);

    let config_path = data.root().join("config.toml");
    let text = std::fs::read_to_string(&config_path)
        .unwrap()
        .replace("\"127.0.0.1\"", "\"127.0.0.1\", \"tessera.example\"");
    std::fs::write(&config_path, text).unwrap();
    let third = data.prepare().await.unwrap();
    assert!(
        matches!(third.created.as_slice(), [Created::ServerCertificate { names }] if names.contains(&"tessera.example".to_owned()))
    );

    use std::os::unix::fs::PermissionsExt as _;
    for secret_file in ["admin-token.sha256", "tls/server.key"] {
        let mode = std::fs::metadata(data.root().join(secret_file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{secret_file} is private");
    }
}
