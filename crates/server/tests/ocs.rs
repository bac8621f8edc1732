//! `POST /ocsinventory` with the bytes real OCS agents send (shared/specs/ocs-protocol.md
//! §2.1 and §5.1), against a real SQLite store.

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use tessera_protocol::body::{decode, encode_zlib};
use tessera_protocol::xml::{XmlLimits, parse};
use tessera_server::app::App;
use tessera_server::config::Config;
use tessera_store::{DeploymentState, PackageRecord, SqliteStore, Store};
use tower::ServiceExt as _;

const DEVICE: &str = "myhost-2024-05-01-10-20-30";
const PROLOG: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<REQUEST>\n  \
    <DEVICEID>myhost-2024-05-01-10-20-30</DEVICEID>\n  <QUERY>PROLOG</QUERY>\n</REQUEST>\n";
const INVENTORY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<REQUEST>
  <CONTENT>
    <HARDWARE><NAME>myhost</NAME><OSNAME>Debian GNU/Linux 12 (bookworm)</OSNAME><OSVERSION>6.1.0</OSVERSION><ARCH>x86_64</ARCH></HARDWARE>
    <BIOS><SSN>SER123</SSN></BIOS>
  </CONTENT>
  <DEVICEID>myhost-2024-05-01-10-20-30</DEVICEID>
  <QUERY>INVENTORY</QUERY>
</REQUEST>
"#;

fn result(code: &str, id: i64) -> String {
    format!("<REQUEST DEVICEID=\"{DEVICE}\" ERR=\"{code}\" ID=\"{id}\" QUERY=\"DOWNLOAD\" />\n")
}

async fn app(compat: bool) -> (axum::Router, Arc<App<SqliteStore>>) {
    let mut config = Config::default();
    config.ocs.compat = compat;
    let packages = tessera_package::Repository::new("/nonexistent/tessera-test-repo");
    let app = App::new(SqliteStore::in_memory().await.unwrap(), config, packages).shared();
    let router = tessera_server::ocs::routes::<SqliteStore>().with_state(Arc::clone(&app));
    (router, app)
}

async fn post(router: &axum::Router, body: Vec<u8>) -> (StatusCode, Vec<u8>) {
    let request = Request::post("/ocsinventory")
        .header("content-type", "application/x-compress")
        .body(Body::from(body))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    (
        status,
        axum::body::to_bytes(response.into_body(), 1 << 24)
            .await
            .unwrap()
            .to_vec(),
    )
}

async fn post_xml(router: &axum::Router, xml: &str) -> (StatusCode, String) {
    let (status, body) = post(router, encode_zlib(xml.as_bytes())).await;
    let text = if body.is_empty() {
        String::new()
    } else {
        String::from_utf8(decode(&body, 1 << 20).unwrap().0).unwrap()
    };
    (status, text)
}

fn package(id: i64) -> PackageRecord {
    PackageRecord {
        id,
        name: "hello".into(),
        version: "1".into(),
        priority: 5,
        action: "EXECUTE".into(),
        fragments: 1,
        size: 10,
        created_at: time::OffsetDateTime::now_utc(),
    }
}

#[tokio::test]
async fn without_a_certificate_the_compat_path_must_be_enabled() {
    let (router, _) = app(false).await;
    let (status, _) = post(&router, encode_zlib(PROLOG.as_bytes())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_deployment_goes_from_waiting_to_success() {
    let (router, app) = app(true).await;

    // First sight: the device is created with the site default manifest, asked for an
    // inventory, and told that deployment is on.
    let (status, xml) = post_xml(&router, PROLOG).await;
    assert_eq!(status, StatusCode::OK);
    let reply = parse(xml.as_bytes(), XmlLimits::default()).unwrap();
    assert_eq!(reply.field("RESPONSE"), Some("SEND"));
    let option = reply.child("OPTION").unwrap();
    let params: Vec<_> = option.children_named("PARAM").collect();
    assert_eq!(params.len(), 1);
    assert_eq!(params[0].attribute("ON"), Some("1"));
    let device = app.store.device_by_ocs_id(DEVICE).await.unwrap().unwrap();
    assert_eq!(device.manifest, "site_default");
    assert_eq!(device.computer_name, "myhost");

    // The inventory's facts are kept, and the next PROLOG does not ask again.
    let (status, xml) = post_xml(&router, INVENTORY).await;
    assert_eq!(status, StatusCode::OK);
    assert!(xml.contains("NO_ACCOUNT_UPDATE"));
    let facts = app.store.device(device.key).await.unwrap().unwrap().facts;
    assert_eq!(facts["os_name"], "Debian GNU/Linux 12 (bookworm)");
    assert_eq!(facts["serial_number"], "SER123");

    app.store
        .put_package(&package(1_716_800_000))
        .await
        .unwrap();
    app.store
        .assign(device.key, 1_716_800_000, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    let (_, xml) = post_xml(&router, PROLOG).await;
    let reply = parse(xml.as_bytes(), XmlLimits::default()).unwrap();
    assert_eq!(reply.field("RESPONSE"), Some("STOP"));
    let params: Vec<_> = reply
        .child("OPTION")
        .unwrap()
        .children_named("PARAM")
        .cloned()
        .collect();
    assert_eq!(params.len(), 2);
    assert_eq!(params[1].attribute("TYPE"), Some("PACK"));
    assert_eq!(params[1].attribute("ID"), Some("1716800000"));
    assert_eq!(
        params[1].attribute("INFO_LOC"),
        Some("127.0.0.1:8443/download")
    );
    let stats = app.store.package_stats(1_716_800_000).await.unwrap();
    assert_eq!(stats.notified, 1);

    // Still offered while notified (the agent may not have started yet).
    let (_, xml) = post_xml(&router, PROLOG).await;
    assert!(xml.contains("ID=\"1716800000\""));

    let (status, body) = post(
        &router,
        encode_zlib(result("SUCCESS_3", 1_716_800_000).as_bytes()),
    )
    .await;
    assert_eq!((status, body.len()), (StatusCode::OK, 0));
    let deployments = app.store.deployments_for(device.key).await.unwrap();
    assert_eq!(deployments[0].state, DeploymentState::Success);
    assert_eq!(deployments[0].code.as_deref(), Some("SUCCESS_3"));

    // Finished packages are no longer offered.
    let (_, xml) = post_xml(&router, PROLOG).await;
    assert!(!xml.contains("TYPE=\"PACK\""));
}

#[tokio::test]
async fn results_for_unknown_devices_are_acknowledged_and_ignored() {
    let (router, app) = app(true).await;
    let (status, body) = post(&router, encode_zlib(result("SUCCESS", 5).as_bytes())).await;
    assert_eq!((status, body.len()), (StatusCode::OK, 0));
    assert!(app.store.list_devices().await.unwrap().is_empty());
}

#[tokio::test]
async fn hostile_and_malformed_bodies_get_a_clear_4xx_and_change_nothing() {
    let (router, app) = app(true).await;
    let doctype = "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\
        <REQUEST><DEVICEID>&x;</DEVICEID><QUERY>PROLOG</QUERY></REQUEST>";
    let cases: Vec<(Vec<u8>, StatusCode)> = vec![
        (b"garbage".to_vec(), StatusCode::BAD_REQUEST),
        (
            encode_zlib(b"<REQUEST><QUERY>PROLOG"),
            StatusCode::BAD_REQUEST,
        ),
        (encode_zlib(doctype.as_bytes()), StatusCode::BAD_REQUEST),
        (
            encode_zlib(b"<REQUEST><DEVICEID>bad id</DEVICEID><QUERY>PROLOG</QUERY></REQUEST>"),
            StatusCode::BAD_REQUEST,
        ),
        (
            encode_zlib(&vec![b' '; 64 * 1024 * 1024]),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    for (body, expected) in cases {
        let (status, text) = post(&router, body).await;
        assert_eq!(status, expected, "{}", String::from_utf8_lossy(&text));
        assert!(!text.is_empty(), "a refusal says why");
    }
    assert!(app.store.list_devices().await.unwrap().is_empty());
}
