//! Revoking a device through the admin API takes effect on the next TLS handshake and in
//! the published CRL, without a restart.

mod common;

use std::sync::{Arc, Mutex};

use rustls_pki_types::CertificateDer;
use tessera_manifest::Repo;
use tessera_server::app::App;
use tessera_server::datadir::DataDir;
use tessera_server::enroll::Enrollment;
use tessera_server::revoke::CrlPublisher;
use tessera_server::secret;
use tessera_server::service::{CRL_PATH, run};
use tessera_server::tls::TlsConfig;
use tessera_store::{NewToken, Store};
use tokio::net::TcpListener;

#[tokio::test]
async fn a_revoked_device_is_refused_at_the_next_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path().join("data"));
    let prepared = data.prepare().await.unwrap();
    let ca = CertificateDer::from(prepared.ca.root_der().to_vec());
    let tls = TlsConfig::new(&prepared.tls).unwrap();
    let app = App::new(prepared.store, prepared.config, prepared.packages)
        .with_admin_token_hash(secret::hash("tsa_admin"))
        .with_enrollment(Enrollment {
            ca: prepared.ca,
            repo: Repo::open(data.repo()).unwrap(),
            publisher: Some(CrlPublisher {
                home: data.ca_home(),
                tls: tls.clone(),
                material: Mutex::new(prepared.tls),
            }),
        })
        .shared();
    app.publish_crl(prepared.crl_der.clone());
    app.store
        .create_token(
            &NewToken {
                token_hash: secret::hash("tse_t"),
                label: "t".into(),
                expires_at: None,
                uses: None,
            },
            app.now(),
        )
        .await
        .unwrap();
    let https = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (port, http_port) = (
        https.local_addr().unwrap().port(),
        http.local_addr().unwrap().port(),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(run(Arc::clone(&app), tls, https, http, async {
        let _ = stopped.await;
    }));

    let device = common::enroll(port, &ca, "MAC-R", "SERIAL-R").await;
    let other = common::enroll(port, &ca, "MAC-S", "SERIAL-S").await;
    let read = |identity: &common::Identity| {
        let identity = Some((identity.0.clone(), identity.1.clone_key()));
        let ca = ca.clone();
        async move {
            common::https(
                port,
                &ca,
                identity,
                &common::get("/repo/manifests/site_default", ""),
            )
            .await
        }
    };
    assert_eq!(read(&device).await.unwrap().status, 200);

    let key = app
        .store
        .device_by_serial("SERIAL-R")
        .await
        .unwrap()
        .unwrap()
        .key
        .0;
    let auth = "Authorization: Bearer tsa_admin\r\n";
    let revoke = |body: &'static str| {
        let request = common::post(
            &format!("/api/v1/devices/{key}/revoke"),
            &format!("application/json\r\n{}", auth.trim_end()),
            body.as_bytes(),
        );
        let ca = ca.clone();
        async move { common::https(port, &ca, None, &request).await.unwrap() }
    };
    assert_eq!(revoke(r#"{"reason": "no-such-reason"}"#).await.status, 422);
    let reply = revoke(r#"{"reason": "keyCompromise"}"#).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let revoked: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(revoked["revoked"].as_array().unwrap().len(), 1);

    assert!(
        read(&device).await.is_err(),
        "the revoked certificate ends the handshake"
    );
    assert_eq!(
        read(&other).await.unwrap().status,
        200,
        "other devices are unaffected"
    );
    let crl = common::http(http_port, &common::get(CRL_PATH, ""))
        .await
        .unwrap();
    assert_ne!(crl.body, prepared.crl_der, "a new CRL is published");
    // Nothing left to revoke the second time.
    let again: serde_json::Value = serde_json::from_slice(&revoke("{}").await.body).unwrap();
    assert_eq!(again["revoked"], serde_json::json!([]));

    stop.send(()).unwrap();
    server.await.unwrap();
}
