//! `service::run` on real loopback sockets: both listeners, OCS over TLS, metrics behind
//! the admin token, the CRL on plain HTTP, and a clean shutdown.

mod common;

use std::time::Duration;

use tessera_protocol::body::{decode, encode_zlib};
use tessera_server::app::App;
use tessera_server::config::Config;
use tessera_server::secret;
use tessera_server::service::{CRL_PATH, ROOT_CRL_PATH, run};
use tessera_server::tls::TlsConfig;
use tessera_store::{SqliteStore, Store};
use tokio::net::TcpListener;

const PROLOG: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<REQUEST>\n  \
    <DEVICEID>myhost-2024-05-01-10-20-30</DEVICEID>\n  <QUERY>PROLOG</QUERY>\n</REQUEST>\n";

#[tokio::test]
async fn both_listeners_serve_and_shut_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let pki = common::new_pki();
    let tls = TlsConfig::new(&common::material(&pki, &[])).unwrap();
    let mut config = Config::default();
    config.ocs.compat = true;
    let store = SqliteStore::open(&dir.path().join("tessera.db"))
        .await
        .unwrap();
    let packages = tessera_package::Repository::new(dir.path().join("repo/download"));
    let app = App::new(store, config, packages)
        .with_admin_token_hash(secret::hash("tsa_admin"))
        .shared();
    let crl = common::crl(&pki, &[7]);
    app.publish_crl(crl.to_vec());

    let https = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (https_port, http_port) = (
        https.local_addr().unwrap().port(),
        http.local_addr().unwrap().port(),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(run(std::sync::Arc::clone(&app), tls, https, http, async {
        let _ = stopped.await;
    }));

    let request = common::post(
        "/ocsinventory",
        "application/x-compress",
        &encode_zlib(PROLOG),
    );
    let reply = common::https(https_port, &pki.ca_cert, None, &request)
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .headers
            .to_ascii_lowercase()
            .contains("content-type: application/x-compressed")
    );
    let xml = String::from_utf8(decode(&reply.body, 1 << 20).unwrap().0).unwrap();
    assert!(xml.contains("<RESPONSE>SEND</RESPONSE>"), "{xml}");
    assert_eq!(app.store.list_devices().await.unwrap().len(), 1);

    let reply = common::https(https_port, &pki.ca_cert, None, &common::get("/metrics", ""))
        .await
        .unwrap();
    assert_eq!(reply.status, 401);
    let auth = "Authorization: Bearer tsa_admin\r\n";
    let reply = common::https(
        https_port,
        &pki.ca_cert,
        None,
        &common::get("/metrics", auth),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200);
    let text = String::from_utf8(reply.body).unwrap();
    assert!(text.contains("tessera_ocs_checkins_total 1"), "{text}");
    assert!(
        text.contains("tessera_deployments{state=\"waiting\"} 0"),
        "{text}"
    );

    let reply = common::http(http_port, &common::get(CRL_PATH, ""))
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, crl.to_vec());
    // A single-tier CA has no root CRL; a two-tier one publishes it beside the device CRL.
    let reply = common::http(http_port, &common::get(ROOT_CRL_PATH, ""))
        .await
        .unwrap();
    assert_eq!(reply.status, 404);
    app.publish_root_crl(Some(b"root crl".to_vec()));
    let reply = common::http(http_port, &common::get(ROOT_CRL_PATH, ""))
        .await
        .unwrap();
    assert_eq!(
        (reply.status, reply.body.as_slice()),
        (200, &b"root crl"[..])
    );
    // The plain listener serves nothing else of value.
    let reply = common::http(
        http_port,
        &common::post("/ocsinventory", "application/x-compress", PROLOG),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 404);

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .unwrap()
        .unwrap();
    assert!(
        common::http(http_port, &common::get(CRL_PATH, ""))
            .await
            .is_err(),
        "listener closed"
    );
}
