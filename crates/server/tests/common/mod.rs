//! Test helpers shared by the server's integration tests: a throwaway PKI made with rcgen
//! and a minimal HTTP/1.1 client over real TLS.
#![allow(dead_code)]

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SerialNumber,
};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tessera_server::tls::TlsMaterial;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

pub type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

pub struct Pki {
    pub ca_cert: CertificateDer<'static>,
    pub issuer: Issuer<'static, KeyPair>,
    pub server_chain: Vec<CertificateDer<'static>>,
    pub server_key: PrivateKeyDer<'static>,
}

pub fn new_pki() -> Pki {
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

pub fn client(
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

pub fn crl(pki: &Pki, revoked: &[u8]) -> rustls_pki_types::CertificateRevocationListDer<'static> {
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

pub fn material(pki: &Pki, revoked: &[u8]) -> TlsMaterial {
    TlsMaterial {
        server_chain: pki.server_chain.clone(),
        server_key: Arc::new(pki.server_key.clone_key()),
        client_roots: vec![pki.ca_cert.clone()],
        crls: vec![crl(pki, revoked)],
    }
}

/// A response: status code, raw header block, body bytes.
pub struct Reply {
    pub status: u16,
    pub headers: String,
    pub body: Vec<u8>,
}

/// Sends one raw HTTP/1.1 request (which must say `Connection: close`) over TLS to
/// 127.0.0.1:`port`, presenting `identity` if given; `Err` if the handshake or exchange fails.
pub async fn https(
    port: u16,
    ca: &CertificateDer<'static>,
    identity: Option<Identity>,
    request: &[u8],
) -> Result<Reply, String> {
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
    tls.write_all(request).await.map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    // In TLS 1.3 a refused client certificate surfaces on the first read.
    tls.read_to_end(&mut raw).await.map_err(|e| e.to_string())?;
    parse(&raw)
}

/// The same over plain TCP.
pub async fn http(port: u16, request: &[u8]) -> Result<Reply, String> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    tcp.write_all(request).await.map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).await.map_err(|e| e.to_string())?;
    parse(&raw)
}

fn parse(raw: &[u8]) -> Result<Reply, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no header end")?;
    let headers = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = headers
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    Ok(Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    })
}

/// A GET request.
pub fn get(path: &str, extra_headers: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{extra_headers}\r\n")
        .into_bytes()
}

/// A POST request with a body.
pub fn post(path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// Enrolls `hostname`/`serial` through the real `/enroll` and returns its identity.
pub async fn enroll(
    port: u16,
    ca: &CertificateDer<'static>,
    hostname: &str,
    serial: &str,
) -> Identity {
    let key = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let mut params = CertificateParams::new(vec![hostname.to_owned()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, hostname);
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    let body = serde_json::json!({"token": "tse_t", "csr_pem": csr, "facts": {"serial": serial, "hostname": hostname, "os": "macOS"}});
    let reply = https(
        port,
        ca,
        None,
        &post("/enroll", "application/json", body.to_string().as_bytes()),
    )
    .await
    .unwrap();
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let response: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    let chain = CertificateDer::pem_slice_iter(
        response["certificate_chain_pem"]
            .as_str()
            .unwrap()
            .as_bytes(),
    )
    .collect::<Result<Vec<_>, _>>()
    .unwrap();
    (
        chain,
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

/// A whole server node on loopback, as `serve` builds it, from a fresh data directory: real
/// CA, SQLite, repository, CRL publishing, both listeners. Admin token `tsa_admin`, an
/// unlimited enrollment token `tse_t`.
pub struct Node {
    pub _dir: tempfile::TempDir,
    pub data: tessera_server::datadir::DataDir,
    pub app: Arc<tessera_server::app::App<tessera_store::SqliteStore>>,
    pub repo: tessera_manifest::Repo,
    pub ca: CertificateDer<'static>,
    pub port: u16,
    pub http_port: u16,
    /// The CRL published at start.
    pub initial_crl: Vec<u8>,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
}

impl Node {
    pub async fn start() -> Self {
        use tessera_store::Store as _;
        let dir = tempfile::tempdir().unwrap();
        let data = tessera_server::datadir::DataDir::new(dir.path().join("data"));
        let prepared = data.prepare().await.unwrap();
        let repo = tessera_manifest::Repo::open(data.repo()).unwrap();
        let ca = CertificateDer::from(prepared.ca.root_der().to_vec());
        let tls = tessera_server::tls::TlsConfig::new(&prepared.tls).unwrap();
        let app = tessera_server::app::App::new(prepared.store, prepared.config, prepared.packages)
            .with_admin_token_hash(tessera_server::secret::hash("tsa_admin"))
            .with_enrollment(tessera_server::enroll::Enrollment {
                ca: prepared.ca,
                repo: repo.clone(),
                publisher: Some(tessera_server::revoke::CrlPublisher {
                    home: data.ca_home(),
                    tls: tls.clone(),
                    material: std::sync::Mutex::new(prepared.tls),
                }),
            })
            .shared();
        app.publish_crl(prepared.crl_der.clone());
        let token = tessera_store::NewToken {
            token_hash: tessera_server::secret::hash("tse_t"),
            label: "t".into(),
            expires_at: None,
            uses: None,
        };
        app.store.create_token(&token, app.now()).await.unwrap();
        let https = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (port, http_port) = (
            https.local_addr().unwrap().port(),
            http.local_addr().unwrap().port(),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(tessera_server::service::run(
            Arc::clone(&app),
            tls,
            https,
            http,
            async {
                let _ = stopped.await;
            },
        ));
        Self {
            _dir: dir,
            data,
            app,
            repo,
            ca,
            port,
            http_port,
            initial_crl: prepared.crl_der,
            stop,
            server,
        }
    }

    /// Stops the node and waits for it to drain.
    pub async fn stop(self) {
        self.stop.send(()).unwrap();
        self.server.await.unwrap();
    }
}
