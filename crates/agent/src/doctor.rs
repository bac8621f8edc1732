//! `tessera-agent doctor`: is this device able to work, and if not, what exactly is wrong.
//!
//! Each check says what it looked at and what to do; a failing check never stops the
//! others, so one run shows everything.

use std::os::unix::fs::MetadataExt as _;
use std::time::{Duration, SystemTime};

use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use serde::Serialize;
use tessera_certpolicy::{Policy, Report};

use crate::config::AgentConfig;
use crate::facts;
use crate::identity;
use crate::journal::DataDir;

/// Clock skew beyond which certificates and CRLs start to fail.
const SKEW_WARN: Duration = Duration::from_secs(5 * 60);

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Fine.
    Ok,
    /// Works, but needs attention soon.
    Warn,
    /// Broken: the agent cannot work until it is fixed.
    Fail,
}

/// One check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// How it came out.
    pub verdict: Verdict,
    /// What was found, and what to do.
    pub detail: String,
}

/// Every check, in order.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    /// The checks.
    pub checks: Vec<Check>,
    /// The certificate policy report on the stored identity, when there is one.
    pub policy: Option<Report>,
}

impl Diagnosis {
    /// Whether nothing failed.
    pub fn healthy(&self) -> bool {
        self.checks.iter().all(|c| c.verdict != Verdict::Fail)
    }

    fn push(&mut self, name: &'static str, verdict: Verdict, detail: impl Into<String>) {
        self.checks.push(Check {
            name,
            verdict,
            detail: detail.into(),
        });
    }
}

/// Runs every check against the configuration's data directory, keystore and servers.
pub async fn diagnose(config: &AgentConfig) -> Diagnosis {
    let mut diagnosis = Diagnosis {
        checks: Vec::new(),
        policy: None,
    };
    check_permissions(config, &mut diagnosis);

    let data = DataDir::read_only(&config.data_dir);
    match data.agent_state() {
        Ok(Some(state)) => diagnosis.push(
            "enrollment",
            Verdict::Ok,
            format!("enrolled as {} ({})", state.device_id, state.manifest),
        ),
        Ok(None) => diagnosis.push(
            "enrollment",
            Verdict::Fail,
            "not enrolled: run `tessera-agent enroll --token-file FILE --ca-fingerprint SHA256`",
        ),
        Err(e) => diagnosis.push("enrollment", Verdict::Fail, e.to_string()),
    }

    let hostname = match facts::detect(&config.device) {
        Ok(device) => device.facts.hostname,
        Err(e) => {
            diagnosis.push("computer name", Verdict::Fail, e.to_string());
            return diagnosis;
        }
    };

    let keystore = match identity::open_keystore(config) {
        Ok(keystore) => keystore,
        Err(e) => {
            diagnosis.push("keystore", Verdict::Fail, e.to_string());
            return diagnosis;
        }
    };
    let stored = match keystore.identity() {
        Ok(Some(identity)) => identity,
        Ok(None) => {
            diagnosis.push(
                "identity",
                Verdict::Fail,
                "the keystore holds no device identity; enroll",
            );
            return diagnosis;
        }
        Err(e) => {
            diagnosis.push("identity", Verdict::Fail, e.to_string());
            return diagnosis;
        }
    };
    let anchors: Vec<Vec<u8>> = keystore
        .trust_anchors()
        .map(|a| a.iter().map(|c| c.as_der().to_vec()).collect())
        .unwrap_or_default();
    let leaf = stored.leaf.as_der().to_vec();
    let chain: Vec<Vec<u8>> = stored.chain.iter().map(|c| c.as_der().to_vec()).collect();

    let crls = fetch_crls(&leaf, &chain, &mut diagnosis).await;

    let leaf_der = CertificateDer::from(leaf.as_slice());
    let chain_der: Vec<CertificateDer<'_>> = chain
        .iter()
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    let anchor_der: Vec<CertificateDer<'_>> = anchors
        .iter()
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    let crl_der: Vec<CertificateRevocationListDer<'_>> = crls
        .iter()
        .map(|c| CertificateRevocationListDer::from(c.as_slice()))
        .collect();
    let report = Policy::default().evaluate(
        &leaf_der,
        &chain_der,
        &anchor_der,
        &crl_der,
        &hostname,
        UnixTime::now(),
    );
    if report.passed() {
        diagnosis.push(
            "certificate policy",
            Verdict::Ok,
            format!("the stored identity meets the device policy for {hostname:?}"),
        );
    } else {
        let failures: Vec<String> = report.failures().map(|f| f.message.clone()).collect();
        diagnosis.push("certificate policy", Verdict::Fail, failures.join("; "));
    }
    diagnosis.policy = Some(report);

    check_server(config, &mut diagnosis).await;
    diagnosis
}

fn check_permissions(config: &AgentConfig, diagnosis: &mut Diagnosis) {
    let euid = rustix::process::geteuid().as_raw();
    for (name, dir) in [
        ("data directory", config.data_dir.clone()),
        ("keystore directory", config.keystore_dir()),
    ] {
        match std::fs::metadata(&dir) {
            Ok(meta) if meta.uid() != euid => diagnosis.push(
                name,
                Verdict::Fail,
                format!(
                    "{} belongs to uid {}, the agent runs as {euid}: `chown -R {euid} {}`",
                    dir.display(),
                    meta.uid(),
                    dir.display()
                ),
            ),
            Ok(meta) if meta.mode() & 0o077 != 0 => diagnosis.push(
                name,
                Verdict::Fail,
                format!(
                    "{} is open to other users (mode {:o}): `chmod 700 {}`",
                    dir.display(),
                    meta.mode() & 0o777,
                    dir.display()
                ),
            ),
            Ok(_) => diagnosis.push(name, Verdict::Ok, format!("{} is private", dir.display())),
            Err(e) => diagnosis.push(name, Verdict::Fail, format!("{}: {e}", dir.display())),
        }
    }
}

/// The CRLs the leaf and its issuers point at, fetched over plain HTTP as relying parties do.
async fn fetch_crls(leaf: &[u8], chain: &[Vec<u8>], diagnosis: &mut Diagnosis) -> Vec<Vec<u8>> {
    let mut urls = Vec::new();
    for der in std::iter::once(leaf).chain(chain.iter().map(Vec::as_slice)) {
        for url in distribution_points(der) {
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
    }
    let http = match crate::tls::plain_http_only().and_then(|tls| {
        reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| crate::AgentError::Server(e.to_string()))
    }) {
        Ok(http) => http,
        Err(e) => {
            diagnosis.push("CRL", Verdict::Fail, e.to_string());
            return Vec::new();
        }
    };
    let mut crls = Vec::new();
    for url in urls {
        match http.get(&url).send().await {
            Ok(response) if response.status().is_success() => match response.bytes().await {
                Ok(bytes) => {
                    diagnosis.push("CRL", Verdict::Ok, format!("fetched {url} ({} bytes)", bytes.len()));
                    crls.push(bytes.to_vec());
                }
                Err(e) => diagnosis.push("CRL", Verdict::Fail, format!("{url}: {e}")),
            },
            Ok(response) => diagnosis.push(
                "CRL",
                Verdict::Fail,
                format!("{url} answered HTTP {}", response.status()),
            ),
            Err(e) => diagnosis.push(
                "CRL",
                Verdict::Fail,
                format!("{url} unreachable: {e}; the server's plain-HTTP listener must be reachable from devices"),
            ),
        }
    }
    crls
}

/// `http://` CRL distribution point URIs of a certificate.
fn distribution_points(der: &[u8]) -> Vec<String> {
    use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let mut urls = Vec::new();
    for extension in cert.extensions() {
        if let ParsedExtension::CRLDistributionPoints(points) = extension.parsed_extension() {
            for point in points.iter() {
                if let Some(DistributionPointName::FullName(names)) = &point.distribution_point {
                    for name in names {
                        if let GeneralName::URI(uri) = name
                            && uri.starts_with("http://")
                        {
                            urls.push((*uri).to_owned());
                        }
                    }
                }
            }
        }
    }
    urls
}

/// Reaches each server over mTLS and compares its clock with ours.
async fn check_server(config: &AgentConfig, diagnosis: &mut Diagnosis) {
    let tls = match identity::open_keystore(config).and_then(|k| identity::device_tls(&*k)) {
        Ok(tls) => tls,
        Err(e) => {
            diagnosis.push("server", Verdict::Fail, e.to_string());
            return;
        }
    };
    let http = match reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(15))
        .build()
    {
        Ok(http) => http,
        Err(e) => {
            diagnosis.push("server", Verdict::Fail, e.to_string());
            return;
        }
    };
    for server in &config.servers {
        let sent = SystemTime::now();
        match http
            .get(format!("{}/ocsinventory", server.trim_end_matches('/')))
            .send()
            .await
        {
            Ok(response) => {
                diagnosis.push(
                    "server",
                    Verdict::Ok,
                    format!("{server} answered over mTLS (HTTP {})", response.status()),
                );
                let date = response
                    .headers()
                    .get(reqwest::header::DATE)
                    .and_then(|d| d.to_str().ok())
                    .and_then(|d| httpdate::parse_http_date(d).ok());
                if let Some(date) = date {
                    let skew = date
                        .duration_since(sent)
                        .or_else(|e| Ok::<_, ()>(e.duration()))
                        .unwrap_or_default();
                    // The Date header has whole seconds.
                    let verdict = if skew > SKEW_WARN {
                        Verdict::Warn
                    } else {
                        Verdict::Ok
                    };
                    diagnosis.push(
                        "clock",
                        verdict,
                        format!("{}s from {server}'s clock", skew.as_secs()),
                    );
                }
            }
            Err(e) => diagnosis.push(
                "server",
                Verdict::Fail,
                format!("{server}: {}", crate::client::describe(&e)),
            ),
        }
    }
}
