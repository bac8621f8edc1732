//! The HTTPS listener over real TCP on loopback with a real TLS client: client
//! certificates are optional, verified when presented, and revocation applies on the next
//! handshake after the CRL is swapped in.

use std::sync::Arc;

use axum::routing::get;
use axum::{Extension, Router};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SerialNumber,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tessera_server::listen::serve_https;
use tessera_server::tls::{ClientCertificate, TlsConfig, TlsMaterial};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

struct Pki {
    ca_cert: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
}

fn new_pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "Test Device CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap().der().clone();
    let issuer = Issuer::new(ca, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let mut server = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server
        .signed_by(&server_key, &issuer)
        .unwrap()
        .der()
        .clone();
    Pki {
        ca_cert: ca_cert.clone(),
        server_chain: vec![server_cert, ca_cert],
        server_key: PrivatePkcs8KeyDer::from(server_key.serialize_der()).into(),
        issuer,
    }
}

fn client(
    pki: &Pki,
    name: &str,
    serial: u8,
) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.serial_number = Some(SerialNumber::from_slice(&[serial]));
    let cert = params.signed_by(&key, &pki.issuer).unwrap().der().clone();
    (
        vec![cert],
        PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
    )
}

fn crl(pki: &Pki, revoked: &[u8]) -> rustls_pki_types::CertificateRevocationListDer<'static> {
    let now = time::OffsetDateTime::now_utc();
    let params = CertificateRevocationListParams {
        this_update: now - time::Duration::minutes(1),
        next_update: now + time::Duration::days(7),
        crl_number: SerialNumber::from_slice(&[revoked.len() as u8 + 1]),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|&s| RevokedCertParams {
                serial_number: SerialNumber::from_slice(&[s]),
                revocation_time: now - time::Duration::minutes(1),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    params.signed_by(&pki.issuer).unwrap().der().clone()
}

fn material(pki: &Pki, revoked: &[u8]) -> TlsMaterial {
    TlsMaterial {
        server_chain: pki.server_chain.clone(),
        server_key: Arc::new(pki.server_key.clone_key()),
        client_roots: vec![pki.ca_cert.clone()],
        crls: vec![crl(pki, revoked)],
    }
}

/// GETs /whoami; `Err` when the handshake or the exchange fails.
async fn whoami(
    port: u16,
    ca: &CertificateDer<'static>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<String, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    tls.write_all(b"GET /whoami HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    // In TLS 1.3 a refused client certificate surfaces on the first read.
    tls.read_to_string(&mut response)
        .await
        .map_err(|e| e.to_string())?;
    Ok(response
        .rsplit("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_owned())
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

    assert_eq!(whoami(port, &pki.ca_cert, None).await.unwrap(), "anonymous");

    let good = client(&pki, "mac01", 1);
    let expected = format!("certificate of {} bytes", good.0[0].len());
    assert_eq!(
        whoami(
            port,
            &pki.ca_cert,
            Some((good.0.clone(), good.1.clone_key()))
        )
        .await
        .unwrap(),
        expected
    );

    // A certificate from another CA ends the handshake.
    let other = new_pki();
    let stranger = client(&other, "mac02", 2);
    assert!(whoami(port, &pki.ca_cert, Some(stranger)).await.is_err());

    // Revoking serial 1 applies to the next handshake.
    tls.update(&material(&pki, &[1])).unwrap();
    assert!(
        whoami(
            port,
            &pki.ca_cert,
            Some((good.0.clone(), good.1.clone_key()))
        )
        .await
        .is_err()
    );
    let fresh = client(&pki, "mac01", 3);
    assert!(
        whoami(port, &pki.ca_cert, Some(fresh))
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
