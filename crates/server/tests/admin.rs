//! The admin API over a real SQLite store.

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use serde_json::{Value, json};
use tessera_server::app::App;
use tessera_server::config::Config;
use tessera_server::secret;
use tessera_store::{NewDevice, PackageRecord, SqliteStore, Store};
use tower::ServiceExt as _;

const ADMIN: &str = "tsa_test-admin-token";

async fn router() -> (axum::Router, Arc<App<SqliteStore>>) {
    let packages = tessera_package::Repository::new("/nonexistent/tessera-test-repo");
    let app = App::new(
        SqliteStore::in_memory().await.unwrap(),
        Config::default(),
        packages,
    )
    .with_admin_token_hash(secret::hash(ADMIN))
    .shared();
    (
        tessera_server::admin::routes(Arc::clone(&app)).with_state(Arc::clone(&app)),
        app,
    )
}

async fn call(
    router: &axum::Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = match body {
        Some(body) => request
            .header("content-type", "application/json")
            .body(Body::from(body.to_string())),
        None => request.body(Body::empty()),
    }
    .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        },
    )
}

#[tokio::test]
async fn every_route_requires_the_admin_token() {
    let (router, _) = router().await;
    for (method, uri) in [
        ("GET", "/api/v1/devices"),
        ("GET", "/api/v1/tokens"),
        ("POST", "/api/v1/tokens"),
        ("DELETE", "/api/v1/tokens/1"),
        ("GET", "/api/v1/packages"),
        ("GET", "/api/v1/packages/1/stats"),
        ("POST", "/api/v1/assignments"),
    ] {
        for token in [None, Some("wrong"), Some("tsa_test-admin-tokeN")] {
            let (status, body) = call(&router, method, uri, token, None).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {uri} with {token:?}"
            );
            assert_eq!(body["code"], "unauthorized");
        }
    }
}

#[tokio::test]
async fn tokens_are_shown_once_stored_hashed_and_revocable() {
    let (router, app) = router().await;
    let (status, created) = call(
        &router,
        "POST",
        "/api/v1/tokens",
        Some(ADMIN),
        Some(json!({"label": "lab macs", "expires_in_hours": 24, "uses": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("tse_"));
    // The store can redeem it by hash, once.
    assert!(
        app.store
            .consume_token(&secret::hash(&token), app.now())
            .await
            .unwrap()
            .is_ok()
    );

    let (_, listed) = call(&router, "GET", "/api/v1/tokens", Some(ADMIN), None).await;
    let text = listed.to_string();
    assert!(!text.contains(&token), "the secret is never listed");
    assert_eq!(listed[0]["uses_left"], 0);

    let id = created["record"]["id"].as_i64().unwrap();
    let (status, _) = call(
        &router,
        "DELETE",
        &format!("/api/v1/tokens/{id}"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = call(
        &router,
        "DELETE",
        &format!("/api/v1/tokens/{id}"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );

    for bad in [
        json!({"label": " "}),
        json!({"label": "x", "uses": 0}),
        json!({"label": "x", "colour": 1}),
    ] {
        let (status, _) = call(
            &router,
            "POST",
            "/api/v1/tokens",
            Some(ADMIN),
            Some(bad.clone()),
        )
        .await;
        assert!(status.is_client_error(), "{bad} gave {status}");
    }
}

#[tokio::test]
async fn assignments_and_statistics() {
    let (router, app) = router().await;
    let now = app.now();
    let device = app
        .store
        .create_device(
            &NewDevice {
                computer_name: "mac01".into(),
                serial: Some("S1".into()),
                ocs_device_id: None,
                manifest: "computers/S1".into(),
                facts: serde_json::Map::new(),
            },
            now,
        )
        .await
        .unwrap();
    app.store
        .put_package(&PackageRecord {
            id: 42,
            name: "hello".into(),
            version: "1".into(),
            priority: 5,
            action: "EXECUTE".into(),
            fragments: 2,
            size: 20,
            created_at: now,
        })
        .await
        .unwrap();

    let (status, _) = call(
        &router,
        "POST",
        "/api/v1/assignments",
        Some(ADMIN),
        Some(json!({"device": device.0, "package": 42})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = call(
        &router,
        "POST",
        "/api/v1/assignments",
        Some(ADMIN),
        Some(json!({"device": 999, "package": 42})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );

    let (status, stats) = call(
        &router,
        "GET",
        "/api/v1/packages/42/stats",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats["waiting"], 1);
    let (status, _) = call(
        &router,
        "GET",
        "/api/v1/packages/43/stats",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, detail) = call(
        &router,
        "GET",
        &format!("/api/v1/devices/{}", device.0),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(detail["device"]["computer_name"], "mac01");
    assert_eq!(detail["deployments"][0]["state"], "waiting");
    let (_, packages) = call(&router, "GET", "/api/v1/packages", Some(ADMIN), None).await;
    assert_eq!(packages[0]["id"], 42);
}
