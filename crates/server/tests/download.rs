//! Package files served from a real repository built by tessera-package.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use http::{Request, StatusCode};
use tessera_package::{
    Action, Label, Notification, PackageSpec, PayloadSource, Priority, Protocol, Repository,
};
use tessera_server::app::App;
use tessera_server::config::Config;
use tessera_server::download::{Listener, routes};
use tessera_store::SqliteStore;
use tower::ServiceExt as _;

struct Fixture {
    dir: tempfile::TempDir,
    payload: Vec<u8>,
    id: String,
    https: axum::Router,
    http: axum::Router,
}

/// Builds package `hello` (version, priority, action, protocol) from `payload` in 4 KiB
/// fragments with the real builder.
fn build(
    dir: &std::path::Path,
    repository: &Repository,
    payload: &[u8],
    (version, priority, action, protocol): (&str, u8, Action, Protocol),
) -> tessera_package::Package {
    let source = dir.join("payload.tar.gz");
    std::fs::write(&source, payload).unwrap();
    let spec = PackageSpec {
        label: Label::new("hello", version).unwrap(),
        priority: Priority::new(priority).unwrap(),
        action,
        protocol,
        notification: Notification::default(),
    };
    repository
        .build(
            spec,
            PayloadSource::File(&source),
            4096,
            SystemTime::now(),
            &mut |_| {},
        )
        .unwrap()
}

async fn fixture(protocol: Protocol) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let payload: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let repository = Repository::new(dir.path().join("repo/download"));
    let action = Action::Execute {
        command: "true".into(),
    };
    let package = build(
        dir.path(),
        &repository,
        &payload,
        ("1.0", 5, action, protocol),
    );
    // Requests here carry no client certificate: the OCS compatibility path serves them.
    let mut config = Config::default();
    config.ocs.compat = true;
    let app = App::new(SqliteStore::in_memory().await.unwrap(), config, repository).shared();
    Fixture {
        dir,
        payload,
        id: package.id().to_string(),
        https: routes::<SqliteStore>(Listener::Https).with_state(Arc::clone(&app)),
        http: routes::<SqliteStore>(Listener::Http).with_state(app),
    }
}

async fn get(
    router: &axum::Router,
    uri: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, http::HeaderMap, Vec<u8>) {
    let mut request = Request::get(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    (
        parts.status,
        parts.headers,
        axum::body::to_bytes(body, 1 << 24).await.unwrap().to_vec(),
    )
}

#[tokio::test]
async fn fragments_are_windows_of_the_archive_with_validators_and_ranges() {
    let f = fixture(Protocol::Https).await;
    let (status, _, info) = get(&f.https, &format!("/download/{}/info", f.id), &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        String::from_utf8(info)
            .unwrap()
            .contains(&format!("ID=\"{}\"", f.id))
    );

    // 10,000 bytes in 4 KiB fragments: 3 fragments, the last 1,808 bytes.
    let mut reassembled = Vec::new();
    for n in 1..=3 {
        let (status, headers, body) =
            get(&f.https, &format!("/download/{}/{}-{n}", f.id, f.id), &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-length"], body.len().to_string());
        reassembled.extend(body);
    }
    assert_eq!(reassembled, f.payload);
    let (status, _, _) = get(&f.https, &format!("/download/{}/{}-4", f.id, f.id), &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Resume inside fragment 2, and revalidate it.
    let uri = format!("/download/{}/{}-2", f.id, f.id);
    let (status, headers, body) = get(&f.https, &uri, &[("range", "bytes=100-")]).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(headers["content-range"], "bytes 100-4095/4096");
    assert_eq!(body, f.payload[4096 + 100..8192]);
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let (status, _, body) = get(&f.https, &uri, &[("if-none-match", &etag)]).await;
    assert_eq!((status, body.len()), (StatusCode::NOT_MODIFIED, 0));
}

#[tokio::test]
async fn hostile_and_unknown_paths_are_404() {
    let f = fixture(Protocol::Https).await;
    for uri in [
        "/download/..%2F..%2Fetc/passwd".to_owned(),
        "/download/1/info".to_owned(),
        format!("/download/{}/..%2Finfo", f.id),
        format!("/download/{}/archive", f.id),
        format!("/download/{}/{}-0", f.id, f.id),
        format!("/download/-1/{}-1", f.id),
    ] {
        let (status, _, _) = get(&f.https, &uri, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
    }
}

#[tokio::test]
async fn plain_http_serves_only_proto_http_fragments_and_never_info() {
    let https_only = fixture(Protocol::Https).await;
    let (status, _, _) = get(
        &https_only.http,
        &format!("/download/{0}/{0}-1", https_only.id),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let http = fixture(Protocol::Http).await;
    let (status, _, body) = get(&http.http, &format!("/download/{0}/{0}-1", http.id), &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, http.payload[..4096]);
    let (status, _, _) = get(&http.http, &format!("/download/{}/info", http.id), &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn packages_on_disk_are_recorded_once_and_broken_ones_reported() {
    use tessera_store::Store;
    let dir = tempfile::tempdir().unwrap();
    let repository = Repository::new(dir.path().join("download"));
    let action = Action::Launch {
        name: "run.sh".into(),
    };
    let built = build(
        dir.path(),
        &repository,
        b"payload",
        ("2.0", 3, action, Protocol::Https),
    );
    std::fs::create_dir_all(dir.path().join("download/42")).unwrap();
    std::fs::write(dir.path().join("download/42/info"), b"<not xml").unwrap();

    let store = SqliteStore::in_memory().await.unwrap();
    let now = time::OffsetDateTime::now_utc();
    let report = tessera_server::catalog::sync_packages(&store, &repository, now)
        .await
        .unwrap();
    let id = i64::try_from(built.id().get()).unwrap();
    assert_eq!(report.added, vec![id]);
    assert_eq!(report.unreadable.len(), 1);
    assert_eq!(report.unreadable[0].0, "42");
    let record = store.package(id).await.unwrap().unwrap();
    assert_eq!(
        (
            record.name.as_str(),
            record.version.as_str(),
            record.priority
        ),
        ("hello", "2.0", 3)
    );
    assert_eq!(
        (record.action.as_str(), record.fragments, record.size),
        ("LAUNCH", 1, 7)
    );
    let again = tessera_server::catalog::sync_packages(&store, &repository, now)
        .await
        .unwrap();
    assert!(again.added.is_empty());
}

/// Without the OCS compatibility path, package files over HTTPS are for devices with a
/// certificate, like the Munki repository.
#[tokio::test]
async fn https_package_files_need_a_certificate_unless_ocs_compat() {
    let f = fixture(Protocol::Https).await;
    let app = App::new(
        SqliteStore::in_memory().await.unwrap(),
        Config::default(),
        Repository::new(f.dir.path().join("repo/download")),
    )
    .shared();
    let strict = routes::<SqliteStore>(Listener::Https).with_state(app);
    for file in ["info".to_owned(), format!("{}-1", f.id)] {
        let uri = format!("/download/{}/{file}", f.id);
        let (status, _, body) = get(&strict, &uri, &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
        assert!(
            String::from_utf8_lossy(&body).contains("ocs.compat"),
            "{uri}"
        );
        let (status, _, _) = get(&f.https, &uri, &[]).await;
        assert_eq!(status, StatusCode::OK, "{uri} with ocs.compat");
    }
}
