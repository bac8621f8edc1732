//! The HTTPS listener over real TCP on loopback with a real TLS client: client
//! certificates are optional, verified when presented, and revocation applies on the next
//! handshake after the CRL is swapped in.

mod common;

use axum::routing::get;
use axum::{Extension, Router};
use common::{client, material, new_pki};
use tessera_server::listen::serve_https;
use tessera_server::tls::{ClientCertificate, TlsConfig};
use tokio::net::TcpListener;

async fn whoami(
    port: u16,
    pki: &common::Pki,
    identity: Option<common::Identity>,
) -> Result<String, String> {
    let reply = common::https(port, &pki.ca_cert, identity, &common::get("/whoami", "")).await?;
    Ok(String::from_utf8_lossy(&reply.body).into_owned())
}

#[tokio::test]
async fn client_certificates_are_optional_verified_and_revocable() {
    let pki = new_pki();
    let tls = TlsConfig::new(&material(&pki, &[])).unwrap();
    let app = Router::new().route(
        "/whoami",
        get(
            |Extension(ClientCertificate(cert)): Extension<ClientCertificate>| async move {
                cert.map_or_else(
                    || "anonymous".to_owned(),
                    |c| format!("certificate of {} bytes", c.len()),
                )
            },
        ),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_https(listener, tls.clone(), app, async {
        let _ = stopped.await;
    }));

    assert_eq!(whoami(port, &pki, None).await.unwrap(), "anonymous");

    let good = client(&pki, "mac01", 1);
    let expected = format!("certificate of {} bytes", good.0[0].len());
    assert_eq!(
        whoami(port, &pki, Some((good.0.clone(), good.1.clone_key())))
            .await
            .unwrap(),
        expected
    );

    // A certificate from another CA ends the handshake.
    let other = new_pki();
    let stranger = client(&other, "mac02", 2);
    assert!(whoami(port, &pki, Some(stranger)).await.is_err());

    // Revoking serial 1 applies to the next handshake.
    tls.update(&material(&pki, &[1])).unwrap();
    assert!(
        whoami(port, &pki, Some((good.0.clone(), good.1.clone_key())))
            .await
            .is_err()
    );
    let fresh = client(&pki, "mac01", 3);
    assert!(
        whoami(port, &pki, Some(fresh))
            .await
            .unwrap()
            .starts_with("certificate of")
    );

    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(15), server)
        .await
        .unwrap()
        .unwrap();
}
