//! The agent's HTTP side: one connection-reusing client, servers tried in order.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RANGE};
use tessera_protocol::body;
use tessera_protocol::enroll::{ApiError, EnrollRequest, EnrollResponse, RenewRequest};

use crate::error::{AgentError, Result};

/// Largest `info` file accepted (the console's are a few hundred bytes).
const MAX_INFO_BYTES: u64 = 256 * 1024;
/// Largest reply body accepted from `/ocsinventory`.
const MAX_REPLY_BYTES: usize = tessera_protocol::agent::MAX_REPLY_BYTES;

/// An HTTP client for one agent, bound to its TLS configuration.
#[derive(Debug, Clone)]
pub struct ServerClient {
    http: reqwest::Client,
    servers: Vec<String>,
    /// The server that answered last: tried first next time.
    preferred: usize,
}

impl ServerClient {
    /// A client for `servers` (base URLs, tried in order) with `tls` settings.
    pub fn new(servers: Vec<String>, tls: rustls::ClientConfig) -> Result<Self> {
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .user_agent(concat!("tessera-agent/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(120))
            .pool_max_idle_per_host(2)
            .build()
            .map_err(|e| AgentError::Server(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            servers: servers
                .into_iter()
                .map(|s| s.trim_end_matches('/').to_owned())
                .collect(),
            preferred: 0,
        })
    }

    /// The server that answered last.
    pub fn current_server(&self) -> &str {
        self.servers.get(self.preferred).map_or("", String::as_str)
    }

    /// POSTs an OCS message (zlib XML) to `/ocsinventory`, trying each server in turn
    /// until one answers; returns the decompressed reply.
    pub async fn ocs(&mut self, xml: &str) -> Result<Vec<u8>> {
        let payload = body::encode_zlib(xml.as_bytes());
        let mut failures = Vec::new();
        for attempt in 0..self.servers.len() {
            let index = (self.preferred + attempt) % self.servers.len();
            let url = format!("{}/ocsinventory", self.servers[index]);
            match self.post_ocs(&url, payload.clone()).await {
                Ok(reply) => {
                    if index != self.preferred {
                        tracing::info!(server = %self.servers[index], "failed over to this server");
                    }
                    self.preferred = index;
                    return Ok(reply);
                }
                Err(Failure::Fatal(error)) => return Err(error),
                Err(Failure::TryNext(reason)) => {
                    tracing::warn!(%url, %reason, "server did not answer");
                    failures.push(format!("{url}: {reason}"));
                }
            }
        }
        Err(AgentError::Server(format!(
            "no server answered: {}",
            failures.join("; ")
        )))
    }

    async fn post_ocs(&self, url: &str, payload: Vec<u8>) -> Result<Vec<u8>, Failure> {
        let response = self
            .http
            .post(url)
            .header(CONTENT_TYPE, "application/x-compress")
            .body(payload)
            .send()
            .await
            .map_err(|e| Failure::TryNext(describe(&e)))?;
        let status = response.status();
        if status.is_server_error() {
            return Err(Failure::TryNext(format!("HTTP {status}")));
        }
        let bytes = read_limited(response, MAX_REPLY_BYTES as u64)
            .await
            .map_err(Failure::TryNext)?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes);
            return Err(Failure::Fatal(AgentError::Server(format!(
                "{url} answered HTTP {status}: {}",
                text.trim()
            ))));
        }
        if bytes.is_empty() {
            return Ok(Vec::new());
        }
        body::decode(&bytes, MAX_REPLY_BYTES)
            .map(|(xml, _)| xml)
            .map_err(|e| Failure::Fatal(AgentError::Server(format!("{url}: {e}"))))
    }

    /// `POST /enroll` on the first server that answers.
    pub async fn enroll(&mut self, request: &EnrollRequest) -> Result<EnrollResponse> {
        self.post_enrollment("/enroll", "enrollment", request).await
    }

    /// `POST /enroll/renew` on the first server that answers; the device is identified by
    /// the certificate this client presents.
    pub async fn renew(&mut self, request: &RenewRequest) -> Result<EnrollResponse> {
        self.post_enrollment("/enroll/renew", "renewal", request)
            .await
    }

    /// POSTs `request` as JSON to `path` on each server in turn until one answers; a
    /// server's `{code, message}` refusal is final.
    async fn post_enrollment(
        &mut self,
        path: &str,
        what: &str,
        request: &impl serde::Serialize,
    ) -> Result<EnrollResponse> {
        let mut failures = Vec::new();
        for index in 0..self.servers.len() {
            let url = format!("{}{path}", self.servers[index]);
            let body = serde_json::to_vec(request).unwrap_or_default();
            let response = match self
                .http
                .post(&url)
                .header(CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await
            {
                Ok(response) => response,
                Err(e) => {
                    failures.push(format!("{url}: {}", describe(&e)));
                    continue;
                }
            };
            let status = response.status();
            let bytes = read_limited(response, 1024 * 1024)
                .await
                .map_err(AgentError::Server)?;
            if status.is_success() {
                self.preferred = index;
                return serde_json::from_slice(&bytes).map_err(|e| {
                    AgentError::Server(format!("{url}: unreadable {what} answer: {e}"))
                });
            }
            if let Ok(error) = serde_json::from_slice::<ApiError>(&bytes) {
                return Err(AgentError::Refused {
                    code: error.code,
                    message: error.message,
                });
            }
            failures.push(format!("{url}: HTTP {status}"));
        }
        Err(AgentError::Server(format!(
            "{what} failed on every server: {}",
            failures.join("; ")
        )))
    }

    /// GETs a package's `info` file.
    pub async fn info(&self, url: &str) -> Result<Vec<u8>> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| AgentError::Server(format!("{url}: {}", describe(&e))))?;
        let status = response.status();
        if !status.is_success() {
            return Err(AgentError::Server(format!("{url}: HTTP {status}")));
        }
        read_limited(response, MAX_INFO_BYTES)
            .await
            .map_err(|e| AgentError::Server(format!("{url}: {e}")))
    }

    /// GETs a fragment into `part`, resuming after the bytes already there (HTTP Range).
    /// At most `expected_len` bytes are accepted when known. Returns the bytes now in `part`.
    pub async fn fragment(
        &self,
        url: &str,
        part: &Path,
        expected_len: Option<u64>,
        mut progress: impl FnMut(u64),
    ) -> Result<u64> {
        let already = std::fs::metadata(part).map_or(0, |m| m.len());
        let mut request = self.http.get(url);
        if already > 0 {
            request = request.header(RANGE, format!("bytes={already}-"));
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| AgentError::Server(format!("{url}: {}", describe(&e))))?;
        let status = response.status();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(part)
            .map_err(|e| AgentError::io("opening", part, e))?;
        let mut written = match status {
            StatusCode::PARTIAL_CONTENT => already,
            StatusCode::OK => {
                // The server ignored the range: start over.
                file.set_len(0)
                    .map_err(|e| AgentError::io("truncating", part, e))?;
                0
            }
            StatusCode::RANGE_NOT_SATISFIABLE if expected_len == Some(already) => {
                return Ok(already);
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                file.set_len(0)
                    .map_err(|e| AgentError::io("truncating", part, e))?;
                return Err(AgentError::Server(format!(
                    "{url}: the partial download no longer fits; starting over next time"
                )));
            }
            other => return Err(AgentError::Server(format!("{url}: HTTP {other}"))),
        };
        progress(written);
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| AgentError::Server(format!("{url}: {}", describe(&e))))?
        {
            written += chunk.len() as u64;
            if expected_len.is_some_and(|limit| written > limit) {
                file.set_len(0)
                    .map_err(|e| AgentError::io("truncating", part, e))?;
                return Err(AgentError::Server(format!(
                    "{url}: the server sent more bytes than the fragment has"
                )));
            }
            file.write_all(&chunk)
                .map_err(|e| AgentError::io("writing", part, e))?;
            progress(written);
        }
        file.sync_all()
            .map_err(|e| AgentError::io("syncing", part, e))?;
        Ok(written)
    }
}

enum Failure {
    /// The server is unreachable or failing: try the next one.
    TryNext(String),
    /// The server answered and refused: another server would say the same.
    Fatal(AgentError),
}

async fn read_limited(mut response: reqwest::Response, limit: u64) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
        if (out.len() + chunk.len()) as u64 > limit {
            return Err(format!("answer larger than {limit} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// reqwest's errors hide their cause chain in `Display`; people need the cause (refused
/// connection, certificate error).
pub(crate) fn describe(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
