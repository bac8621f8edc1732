//! `POST /enroll/renew` over real TLS on loopback: the current certificate identifies the
//! device, the new certificate works at once, and the old one is refused from the next
//! handshake on.

mod common;

use rcgen::{CertificateParams, KeyPair};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tessera_store::Store;

/// A new RSA key and a CSR naming `name` (CN and SAN), as the agent makes them.
fn csr_for(name: &str) -> (String, KeyPair) {
    let key = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    (params.serialize_request(&key).unwrap().pem().unwrap(), key)
}

fn copy(identity: &common::Identity) -> common::Identity {
    (identity.0.clone(), identity.1.clone_key())
}

#[tokio::test]
async fn renewal_replaces_the_certificate_and_revokes_the_old_one() {
    let node = common::Node::start().await;
    let (app, ca, port) = (&node.app, node.ca.clone(), node.port);
    let old = common::enroll(port, &ca, "MAC-N", "SERIAL-N").await;

    let renew = |identity: Option<common::Identity>, csr: &str| {
        let body = serde_json::json!({ "csr_pem": csr }).to_string();
        let request = common::post("/enroll/renew", "application/json", body.as_bytes());
        let ca = ca.clone();
        async move { common::https(port, &ca, identity, &request).await }
    };
    let read = |identity: common::Identity| {
        let ca = ca.clone();
        async move {
            common::https(
                port,
                &ca,
                Some(identity),
                &common::get("/repo/manifests/site_default", ""),
            )
            .await
        }
    };

    // Without a certificate there is nobody to renew.
    let (csr, _) = csr_for("MAC-N");
    let reply = renew(None, &csr).await.unwrap();
    assert_eq!(
        reply.status,
        401,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let error: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(error["code"], "certificate_required");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));

    // A CSR for another name is refused, and nothing is issued or revoked.
    let (other, _) = csr_for("MAC-OTHER");
    let reply = renew(Some(copy(&old)), &other).await.unwrap();
    assert_eq!(
        reply.status,
        422,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let error: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(error["code"], "name_mismatch");
    let device = app
        .store
        .device_by_serial("SERIAL-N")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        app.store.certificates_for(device.key).await.unwrap().len(),
        1
    );
    assert_eq!(read(copy(&old)).await.unwrap().status, 200);

    // The real renewal.
    let (csr, key) = csr_for("MAC-N");
    let reply = renew(Some(copy(&old)), &csr).await.unwrap();
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let answer: tessera_protocol::enroll::EnrollResponse =
        serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(answer.manifest, "computers/SERIAL-N");
    assert_eq!(answer.groups, vec!["groups/default".to_owned()]);
    assert_eq!(
        CertificateDer::from_pem_slice(answer.ca_pem.as_bytes()).unwrap(),
        ca
    );
    let chain = CertificateDer::pem_slice_iter(answer.certificate_chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    assert_ne!(chain[0], old.0[0], "a new certificate");
    let new: common::Identity = (
        chain,
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    );

    // The store has both, for the same device, the first revoked as superseded.
    let certificates = app.store.certificates_for(device.key).await.unwrap();
    assert_eq!(certificates.len(), 2, "{certificates:?}");
    let old_serial = tessera_server::identity::serial_hex(&old.0[0]).unwrap();
    let new_serial = tessera_server::identity::serial_hex(&new.0[0]).unwrap();
    for record in &certificates {
        assert_eq!(record.computer_name, "MAC-N");
        if record.serial == old_serial {
            assert_eq!(
                record.revoked.as_ref().map(|r| r.reason.as_str()),
                Some("superseded")
            );
        } else {
            assert_eq!(record.serial, new_serial);
            assert!(record.revoked.is_none());
        }
    }
    assert_eq!(app.store.list_devices().await.unwrap().len(), 1);

    // TLS refuses the old certificate from now on and accepts the new one.
    assert!(
        read(copy(&old)).await.is_err(),
        "the superseded certificate ends the handshake"
    );
    assert!(renew(Some(copy(&old)), &csr).await.is_err());
    assert_eq!(read(copy(&new)).await.unwrap().status, 200);

    // The new certificate renews in turn.
    let (csr, _) = csr_for("MAC-N");
    let reply = renew(Some(copy(&new)), &csr).await.unwrap();
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let certificates = app.store.certificates_for(device.key).await.unwrap();
    assert_eq!(
        certificates.iter().filter(|c| c.revoked.is_none()).count(),
        1,
        "only the newest is valid: {certificates:?}"
    );

    node.stop().await;
}

#[tokio::test]
async fn a_revoked_record_cannot_renew_and_bodies_are_checked() {
    let node = common::Node::start().await;
    let (ca, port) = (node.ca.clone(), node.port);
    let device = common::enroll(port, &ca, "MAC-M", "SERIAL-M").await;
    let post = |body: &'static str| {
        let request = common::post("/enroll/renew", "application/json", body.as_bytes());
        let ca = ca.clone();
        let identity = copy(&device);
        async move {
            common::https(port, &ca, Some(identity), &request)
                .await
                .unwrap()
        }
    };
    let reply = post(r#"{"csr_pem": "not a csr"}"#).await;
    assert_eq!(
        reply.status,
        400,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let error: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(error["code"], "invalid_csr");
    let reply = post(r#"{"token": "tse_t"}"#).await;
    assert!(
        (400..500).contains(&reply.status),
        "{}",
        String::from_utf8_lossy(&reply.body)
    );

    // A certificate the store records as revoked renews nothing, even while the TLS
    // verifier (whose CRL has not been re-signed here) still lets it through.
    let serial = tessera_server::identity::serial_hex(&device.0[0]).unwrap();
    let revocation = tessera_store::Revocation {
        at: node.app.now(),
        reason: "keyCompromise".into(),
    };
    assert!(
        node.app
            .store
            .revoke_certificate(&serial, &revocation)
            .await
            .unwrap()
    );
    let (csr, _) = csr_for("MAC-M");
    let body = serde_json::json!({ "csr_pem": csr }).to_string();
    let request = common::post("/enroll/renew", "application/json", body.as_bytes());
    let reply = common::https(port, &ca, Some(copy(&device)), &request)
        .await
        .unwrap();
    assert_eq!(
        reply.status,
        403,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let error: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(error["code"], "not_enrolled");
    node.stop().await;
}
