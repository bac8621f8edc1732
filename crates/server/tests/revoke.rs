//! Revoking a device through the admin API takes effect on the next TLS handshake and in
//! the published CRL, without a restart.

mod common;

use tessera_server::service::CRL_PATH;
use tessera_store::Store;

#[tokio::test]
async fn a_revoked_device_is_refused_at_the_next_handshake() {
    let node = common::Node::start().await;
    let (app, ca, port, http_port) = (&node.app, node.ca.clone(), node.port, node.http_port);

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
    assert_ne!(crl.body, node.initial_crl, "a new CRL is published");
    // Nothing left to revoke the second time.
    let again: serde_json::Value = serde_json::from_slice(&revoke("{}").await.body).unwrap();
    assert_eq!(again["revoked"], serde_json::json!([]));

    node.stop().await;
}
