//! One HTTP/1.1 request over TLS, for tests that drive a real server on loopback the way
//! an admin script would (no client library between the test and the bytes).

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};

/// Sends `head` (request line and extra header lines, no trailing blank line) and `body`
/// to `addr`, trusting the PEM certificates in `ca_file`; returns the status and body.
/// `Err` when the connection fails (e.g. the server was killed).
pub fn request(
    addr: &str,
    ca_file: &Path,
    head: &str,
    body: &[u8],
) -> Result<(u16, Vec<u8>), String> {
    request_as(addr, ca_file, None, head, body).map(|response| (response.status, response.body))
}

/// A client identity for [`request_as`]: the certificate chain (leaf first) and its private
/// key, both PEM, as an enrolled device holds them.
#[derive(Debug, Clone, Copy)]
pub struct ClientIdentity<'a> {
    /// PEM certificates, the leaf first.
    pub chain_pem: &'a str,
    /// The leaf's private key, PEM (PKCS#8, SEC1 or PKCS#1).
    pub key_pem: &'a str,
}

/// A whole response: status, headers (names lower-cased, in order) and body (de-chunked).
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header lines as (lower-cased name, value).
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy), for assertion messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// [`request`], presenting `client` as the TLS client certificate when given, and returning
/// the headers too. `Err` when the connection or the handshake fails — in TLS 1.3 a client
/// certificate the server refuses surfaces as the server's alert on the first read, so the
/// error text names it (e.g. `received fatal alert: CertificateRevoked`).
pub fn request_as(
    addr: &str,
    ca_file: &Path,
    client: Option<ClientIdentity<'_>>,
    head: &str,
    body: &[u8],
) -> Result<Response, String> {
    use rustls_pki_types::PrivateKeyDer;

    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).map_err(|e| e.to_string())? {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots);
    let config = match client {
        Some(identity) => {
            let chain = CertificateDer::pem_slice_iter(identity.chain_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("client certificate PEM: {e}"))?;
            let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes())
                .map_err(|e| format!("client key PEM: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| e.to_string())?
        }
        None => builder.with_no_client_auth(),
    };
    let name = ServerName::try_from("127.0.0.1").map_err(|e| e.to_string())?;
    let mut connection =
        rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let mut tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let mut request = format!(
        "{head}\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    let mut tls = rustls::Stream::new(&mut connection, &mut tcp);
    // One write: a server that refuses the certificate closes the connection, and a
    // second write would then fail (EPIPE) before the client could read why.
    let written = tls.write_all(&request);
    let mut raw = Vec::new();
    let read = written.and_then(|()| tls.read_to_end(&mut raw));
    if let Err(error) = read {
        return Err(pending_alert(&mut connection, &mut tcp).unwrap_or_else(|| error.to_string()));
    }
    parse_response(&raw)
}

/// The TLS error (typically the server's alert) that is already waiting on `tcp`, if any:
/// after a failed write the alert that explains it may still be unread.
fn pending_alert(connection: &mut rustls::ClientConnection, tcp: &mut TcpStream) -> Option<String> {
    loop {
        if let Err(error) = connection.process_new_packets() {
            return Some(error.to_string());
        }
        match connection.read_tls(tcp) {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no header end")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body)?;
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// The payload of a `Transfer-Encoding: chunked` body.
fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("chunk size line not terminated")?;
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size_hex = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|e| format!("bad chunk size {size_hex:?}: {e}"))?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = raw.get(..size).ok_or("chunk shorter than its size")?;
        out.extend_from_slice(chunk);
        raw = raw.get(size + 2..).ok_or("chunk not terminated")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_parsed_with_headers_and_chunked_bodies() {
        let plain = parse_response(
            b"HTTP/1.1 206 Partial Content\r\nETag: \"a\"\r\nContent-Length: 3\r\n\r\nabc",
        )
        .unwrap();
        assert_eq!(plain.status, 206);
        assert_eq!(plain.header("etag"), Some("\"a\""));
        assert_eq!(plain.header("Content-Length"), Some("3"));
        assert_eq!(plain.body, b"abc");
        let chunked = parse_response(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(chunked.body, b"abcde");
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n9\r\nab")
                .is_err()
        );
        assert!(parse_response(b"no header end").is_err());
    }
}
