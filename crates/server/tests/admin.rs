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
        ("DELETE", "/api/v1/packages/1"),
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

/// Builds a package with ID `id` into `packages` (the clock picks the ID).
fn build_package(packages: &tessera_package::Repository, id: u64) {
    let spec = tessera_package::PackageSpec {
        label: tessera_package::Label::new("hello", "1").unwrap(),
        priority: tessera_package::Priority::new(5).unwrap(),
        action: tessera_package::Action::execute("sh hello.sh").unwrap(),
        protocol: tessera_package::Protocol::Https,
        notification: tessera_package::Notification::default(),
    };
    let built = packages
        .build(
            spec,
            tessera_package::PayloadSource::Reader(&mut &b"hello payload"[..]),
            4,
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(id),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(built.id().get(), id);
}

#[tokio::test]
async fn deleting_a_package_removes_its_directory_record_and_deployments() {
    let dir = tempfile::tempdir().unwrap();
    let packages = tessera_package::Repository::new(dir.path().join("download"))
        .with_durability(tessera_package::Durability::WriteBack);
    build_package(&packages, 1_716_800_000);
    let app = App::new(
        SqliteStore::in_memory().await.unwrap(),
        Config::default(),
        packages.clone(),
    )
    .with_admin_token_hash(secret::hash(ADMIN))
    .shared();
    let router = tessera_server::admin::routes(Arc::clone(&app)).with_state(Arc::clone(&app));
    app.packages_changed().await.unwrap();
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
    app.store.assign(device, 1_716_800_000, now).await.unwrap();
    assert_eq!(app.store.deployments_for(device).await.unwrap().len(), 1);

    let uri = "/api/v1/packages/1716800000";
    let (status, body) = call(&router, "DELETE", uri, Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(!dir.path().join("download/1716800000").exists());
    assert_eq!(
        std::fs::read_dir(dir.path().join("download"))
            .unwrap()
            .count(),
        0,
        "nothing left behind in the repository"
    );
    assert!(app.store.package(1_716_800_000).await.unwrap().is_none());
    assert!(app.store.deployments_for(device).await.unwrap().is_empty());
    let (status, _) = call(&router, "GET", uri, Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = call(&router, "DELETE", uri, Some(ADMIN), None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, body) = call(&router, "DELETE", "/api/v1/packages/12x", Some(ADMIN), None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );

    // A package built since the last sync (on disk only) and a record whose directory is
    // already gone are both deleted.
    build_package(&packages, 1_716_800_100);
    let (status, _) = call(
        &router,
        "DELETE",
        "/api/v1/packages/1716800100",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(packages.list().unwrap().is_empty());
    app.store
        .put_package(&PackageRecord {
            id: 77,
            name: "gone".into(),
            version: "1".into(),
            priority: 5,
            action: "EXECUTE".into(),
            fragments: 0,
            size: 0,
            created_at: now,
        })
        .await
        .unwrap();
    let (status, _) = call(&router, "DELETE", "/api/v1/packages/77", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(app.store.package(77).await.unwrap().is_none());
}

/// A router over a freshly prepared data directory: a real CA and Munki repository.
async fn router_with_repo() -> (tempfile::TempDir, axum::Router, tessera_manifest::Repo) {
    let dir = tempfile::tempdir().unwrap();
    let data = tessera_server::datadir::DataDir::new(dir.path().join("data"));
    let prepared = data.prepare().await.unwrap();
    let repo = tessera_manifest::Repo::open(data.repo()).unwrap();
    let app = App::new(prepared.store, prepared.config, prepared.packages)
        .with_admin_token_hash(secret::hash(ADMIN))
        .with_enrollment(tessera_server::enroll::Enrollment {
            ca: prepared.ca,
            repo: repo.clone(),
            publisher: None,
        })
        .shared();
    let router = tessera_server::admin::routes(Arc::clone(&app)).with_state(app);
    (dir, router, repo)
}

#[tokio::test]
async fn group_routes_require_the_admin_token() {
    let (_dir, router, _) = router_with_repo().await;
    for (method, uri) in [
        ("GET", "/api/v1/groups"),
        ("POST", "/api/v1/groups"),
        ("GET", "/api/v1/groups/default"),
        ("POST", "/api/v1/groups/default/items"),
    ] {
        let (status, body) = call(&router, method, uri, Some("wrong"), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        assert_eq!(body["code"], "unauthorized");
    }
}

#[tokio::test]
async fn groups_are_created_listed_shown_and_edited_in_the_repository() {
    let (_dir, router, repo) = router_with_repo().await;
    let (status, listed) = call(&router, "GET", "/api/v1/groups", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed[0]["manifest"], "groups/default", "{listed}");

    let (status, created) = call(
        &router,
        "POST",
        "/api/v1/groups",
        Some(ADMIN),
        Some(json!({"name": "lab"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["manifest"], "groups/lab");
    assert_eq!(created["catalogs"], json!(["production"]));
    let (status, body) = call(
        &router,
        "POST",
        "/api/v1/groups",
        Some(ADMIN),
        Some(json!({"name": "lab"})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );

    let (status, edited) = call(
        &router,
        "POST",
        "/api/v1/groups/lab/items",
        Some(ADMIN),
        Some(json!({"add": ["Firefox", "Slack"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["added"], json!(["Firefox", "Slack"]));
    let (status, edited) = call(
        &router,
        "POST",
        "/api/v1/groups/lab/items",
        Some(ADMIN),
        Some(json!({"add": ["Zoom"], "remove": ["Slack"], "key": "managed_installs"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(
        edited["group"]["managed_installs"],
        json!(["Firefox", "Zoom"])
    );

    // What the API says is what the repository holds, as Munki's plist.
    let manifest = repo.read_manifest("groups/lab").unwrap();
    assert_eq!(
        manifest.section(tessera_manifest::Section::ManagedInstalls),
        ["Firefox", "Zoom"]
    );
    let (status, shown) = call(&router, "GET", "/api/v1/groups/lab", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown, edited["group"]);
    let (_, listed) = call(&router, "GET", "/api/v1/groups", Some(ADMIN), None).await;
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["name"].as_str())
        .collect();
    assert_eq!(names, ["default", "lab"]);
}

#[tokio::test]
async fn group_refusals_name_the_problem() {
    let (dir, router, _) = router_with_repo().await;
    for name in ["a/b", "..", "../../etc", "x\u{1b}y", "", ".hidden"] {
        let (status, body) = call(
            &router,
            "POST",
            "/api/v1/groups",
            Some(ADMIN),
            Some(json!({ "name": name })),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_group_name")),
            "{name:?}: {body}"
        );
    }
    // Nothing escaped the groups directory.
    assert!(!dir.path().join("data/repo/etc").exists());
    assert!(!dir.path().join("data/repo/manifests/a").exists());

    let (status, body) = call(&router, "GET", "/api/v1/groups/missing", Some(ADMIN), None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, body) = call(
        &router,
        "POST",
        "/api/v1/groups/missing/items",
        Some(ADMIN),
        Some(json!({"add": ["x"]})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    // An encoded `..` in the path is refused like any other bad name.
    let (status, body) = call(&router, "GET", "/api/v1/groups/%2E%2E", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    for (bad, code) in [
        (json!({"add": ["x"], "key": "colour"}), "invalid_key"),
        (json!({"add": ["two\nlines"]}), "invalid_item"),
        (json!({"add": ["x"], "extra": 1}), "invalid_request"),
    ] {
        let (status, body) = call(
            &router,
            "POST",
            "/api/v1/groups/default/items",
            Some(ADMIN),
            Some(bad.clone()),
        )
        .await;
        assert!(status.is_client_error(), "{bad} gave {status}");
        assert_eq!(body["code"], code, "{bad}: {body}");
    }
}

#[tokio::test]
async fn groups_need_a_repository() {
    let (router, _) = router().await;
    let (status, body) = call(&router, "GET", "/api/v1/groups", Some(ADMIN), None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("repository_unavailable")
        )
    );
}
