//! Issue #9's first acceptance item against the real `tessera-server` binary on loopback:
//! every endpoint driven over real TLS, with the device's client certificate where the
//! endpoint needs one.
//!
//! One server serves all five sections (enrollment, mTLS, OCS, package files, Munki
//! repository); every assertion message names its section. The OCS sections send the
//! bytes the spec records for the real Unix agent (`shared/specs/ocs-protocol.md` §2.1
//! PROLOG, §5.1 DOWNLOAD result), zlib-compressed as §1 says.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{
    BIN, ClientIdentity, Response, Server, admin_token, csr, csr_and_key, https_request_as, start,
    stop,
};
use serde_json::{Value, json};
use tessera_protocol::body::{decode, encode_zlib};
use tessera_protocol::xml::{XmlLimits, parse};

/// §2.1: the PROLOG exactly as the Unix agent serialises it (before zlib).
const PROLOG: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<REQUEST>\n  \
    <DEVICEID>myhost-2024-05-01-10-20-30</DEVICEID>\n  <QUERY>PROLOG</QUERY>\n</REQUEST>\n";

/// An INVENTORY in the agent's shape (XML::Simple, child elements), carrying the facts the
/// server keeps.
const INVENTORY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<REQUEST>
  <CONTENT>
    <HARDWARE><NAME>MAC-A</NAME><OSNAME>Debian GNU/Linux 12 (bookworm)</OSNAME><OSVERSION>6.1.0-21-amd64</OSVERSION><ARCH>x86_64</ARCH></HARDWARE>
    <BIOS><SSN>SERIAL-A</SSN></BIOS>
  </CONTENT>
  <DEVICEID>myhost-2024-05-01-10-20-30</DEVICEID>
  <QUERY>INVENTORY</QUERY>
</REQUEST>
"#;

/// §5.1: a DOWNLOAD result exactly as the agent sends it (attributes sorted, no XML
/// declaration, trailing newline).
fn download_result(package: u64) -> String {
    format!(
        "<REQUEST DEVICEID=\"myhost-2024-05-01-10-20-30\" ERR=\"SUCCESS\" ID=\"{package}\" QUERY=\"DOWNLOAD\" />\n"
    )
}

/// What every section shares.
struct Ctx {
    data: PathBuf,
    ca_file: PathBuf,
    server: Server,
    admin: String,
}

/// An enrolled device: its names and the identity it presents.
struct Device {
    name: &'static str,
    serial: &'static str,
    chain_pem: String,
    key_pem: String,
}

impl Device {
    fn identity(&self) -> ClientIdentity<'_> {
        ClientIdentity {
            chain_pem: &self.chain_pem,
            key_pem: &self.key_pem,
        }
    }
}

impl Ctx {
    /// A path for a scratch file beside the data directory.
    fn scratch(&self, name: &str) -> PathBuf {
        self.data.parent().unwrap().join(name)
    }

    /// One request; panics when the connection fails (use [`Ctx::try_request`] to expect that).
    fn request(&self, who: Option<&Device>, head: &str, body: &[u8]) -> Response {
        self.try_request(who, head, body)
            .unwrap_or_else(|error| panic!("{head}: connection failed: {error}"))
    }

    fn try_request(
        &self,
        who: Option<&Device>,
        head: &str,
        body: &[u8],
    ) -> Result<Response, String> {
        https_request_as(
            &self.server.https,
            &self.ca_file,
            who.map(Device::identity),
            head,
            body,
        )
    }

    fn get(&self, who: Option<&Device>, path: &str, extra_headers: &[&str]) -> Response {
        let mut head = format!("GET {path} HTTP/1.1");
        for header in extra_headers {
            head.push_str("\r\n");
            head.push_str(header);
        }
        self.request(who, &head, b"")
    }

    fn post_json(&self, who: Option<&Device>, path: &str, body: &Value) -> Response {
        self.request(
            who,
            &format!("POST {path} HTTP/1.1\r\nContent-Type: application/json"),
            body.to_string().as_bytes(),
        )
    }

    /// An OCS message as the agent sends it: zlib body, `application/x-compress`.
    fn ocs(&self, who: Option<&Device>, xml: &str) -> Result<Response, String> {
        self.try_request(
            who,
            "POST /ocsinventory HTTP/1.1\r\nPragma: no-cache\r\nContent-Type: application/x-compress",
            &encode_zlib(xml.as_bytes()),
        )
    }

    /// An admin API call that must succeed; its JSON (null when empty).
    fn admin(&self, method: &str, path: &str, body: &Value) -> Value {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nAuthorization: Bearer {}\r\nContent-Type: application/json",
            self.admin
        );
        let payload = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        let reply = self.request(None, &head, &payload);
        assert!(
            (200..300).contains(&reply.status),
            "admin {method} {path}: {} {}",
            reply.status,
            reply.text()
        );
        if reply.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&reply.body).unwrap()
        }
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--data")
            .arg(&self.data)
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs a CLI command that must succeed; its stdout.
    fn cli_ok(&self, args: &[&str]) -> String {
        let output = self.cli(args);
        assert!(
            output.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// The store key of the device with `serial`, from the admin API.
    fn device_key(&self, serial: &str) -> i64 {
        let devices = self.admin("GET", "/api/v1/devices", &Value::Null);
        devices
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["serial"] == serial)
            .unwrap_or_else(|| panic!("no device {serial} in {devices}"))["key"]
            .as_i64()
            .unwrap()
    }

    fn enroll_body(token: &str, csr_pem: &str, name: &str, serial: &str) -> Value {
        json!({
            "token": token, "csr_pem": csr_pem,
            "facts": {"serial": serial, "hostname": name, "os": "macOS", "os_version": "14.5", "arch": "arm64"}
        })
    }

    /// Enrolls `name`/`serial` with `token`; the device with its issued chain and key.
    fn enroll(&self, token: &str, name: &'static str, serial: &'static str) -> Device {
        let (csr_pem, key_pem) = csr_and_key(name);
        let reply = self.post_json(
            None,
            "/enroll",
            &Self::enroll_body(token, &csr_pem, name, serial),
        );
        assert_eq!(reply.status, 200, "enroll {name}: {}", reply.text());
        let answer: Value = serde_json::from_slice(&reply.body).unwrap();
        Device {
            name,
            serial,
            chain_pem: answer["certificate_chain_pem"].as_str().unwrap().to_owned(),
            key_pem,
        }
    }
}

#[test]
fn every_endpoint_of_the_real_binary_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start(&data);
    let ctx = Ctx {
        ca_file: data.join("ca-certificate.pem"),
        admin: admin_token(&server),
        data,
        server,
    };

    let [a, b, c] = enrollment(&ctx);
    mtls(&ctx, &a, &c);
    let package = ocs(&ctx, &a, dir.path());
    package_files(&ctx, &a, package);
    munki(&ctx, &a, &b);

    stop(ctx.server);
}

/// Section 1, `POST /enroll`: refusals that do not burn the single-use token, the good
/// enrollment, the reused token, an expired token. Returns devices A, B and C.
fn enrollment(ctx: &Ctx) -> [Device; 3] {
    const S: &str = "enrollment";
    let single = ctx.cli_ok(&["token", "create", "--label", "single", "--uses", "1"]);
    let single = single.trim();
    assert!(single.starts_with("tse_"), "{S}: token {single:?}");

    // A malformed CSR: garbage, and a PEM whose body is cut short.
    let (good_csr, _) = csr_and_key("MAC-A");
    let truncated = format!(
        "{}\n-----END CERTIFICATE REQUEST-----\n",
        &good_csr[..good_csr.len() / 2]
    );
    for bad in ["not a csr", truncated.as_str()] {
        let reply = ctx.post_json(
            None,
            "/enroll",
            &Ctx::enroll_body(single, bad, "MAC-A", "SERIAL-A"),
        );
        let error: Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(
            (reply.status, error["code"].as_str()),
            (400, Some("invalid_csr")),
            "{S}: malformed CSR {bad:?}: {error}"
        );
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("certificate signing request cannot be read"),
            "{S}: the refusal says what is wrong: {error}"
        );
    }

    // A CSR for another name than the computer name in the facts.
    let reply = ctx.post_json(
        None,
        "/enroll",
        &Ctx::enroll_body(single, &csr("OTHER-MAC"), "MAC-A", "SERIAL-A"),
    );
    let error: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(
        (reply.status, error["code"].as_str()),
        (422, Some("name_mismatch")),
        "{S}: name mismatch: {error}"
    );
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("OTHER-MAC") && message.contains("MAC-A"),
        "{S}: the mismatch names both names: {message}"
    );

    // The good token, still unused after the refusals above.
    let (csr_a, key_a) = csr_and_key("MAC-A");
    let reply = ctx.post_json(
        None,
        "/enroll",
        &Ctx::enroll_body(single, &csr_a, "MAC-A", "SERIAL-A"),
    );
    assert_eq!(reply.status, 200, "{S}: good token: {}", reply.text());
    let answer: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(answer["manifest"], "computers/SERIAL-A", "{S}: {answer}");
    assert_eq!(answer["groups"], json!(["groups/default"]), "{S}: {answer}");
    let chain = answer["certificate_chain_pem"].as_str().unwrap();
    assert_eq!(
        chain.matches("BEGIN CERTIFICATE").count(),
        2,
        "{S}: leaf and CA in the chain"
    );
    assert!(
        ctx.data.join("repo/manifests/computers/SERIAL-A").is_file(),
        "{S}: the computer manifest was created"
    );
    if tessera_testkit::tool("openssl", "checking the issued certificate with OpenSSL") {
        let leaf = ctx.scratch("mac-a.pem");
        std::fs::write(&leaf, chain).unwrap();
        let verify = Command::new("openssl")
            .args(["verify", "-purpose", "sslclient", "-CAfile"])
            .arg(&ctx.ca_file)
            .arg(&leaf)
            .output()
            .unwrap();
        assert!(
            verify.status.success(),
            "{S}: openssl verify: {}{}",
            String::from_utf8_lossy(&verify.stdout),
            String::from_utf8_lossy(&verify.stderr)
        );
        let subject = Command::new("openssl")
            .args(["x509", "-noout", "-subject", "-in"])
            .arg(&leaf)
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&subject.stdout).contains("CN=MAC-A")
                || String::from_utf8_lossy(&subject.stdout).contains("CN = MAC-A"),
            "{S}: {}",
            String::from_utf8_lossy(&subject.stdout)
        );
    }
    let a = Device {
        name: "MAC-A",
        serial: "SERIAL-A",
        chain_pem: chain.to_owned(),
        key_pem: key_a,
    };

    // The same single-use token again, and an expired one (zero hours: expired at once).
    let expired = ctx.cli_ok(&["token", "create", "--label", "old", "--expires-in", "0"]);
    for (what, token) in [("reused single-use", single), ("expired", expired.trim())] {
        let reply = ctx.post_json(
            None,
            "/enroll",
            &Ctx::enroll_body(token, &csr("MAC-X"), "MAC-X", "SERIAL-X"),
        );
        let error: Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(
            (reply.status, error["code"].as_str()),
            (403, Some("token_refused")),
            "{S}: {what} token: {error}"
        );
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("expired, used up"),
            "{S}: {what} token: the refusal gives the reasons: {error}"
        );
    }
    // Why each was refused, as the admin sees it (the device is told the same for both).
    let tokens = ctx.admin("GET", "/api/v1/tokens", &Value::Null);
    let by_label = |label: &str| {
        tokens
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["label"] == label)
            .unwrap()
            .clone()
    };
    assert_eq!(by_label("single")["uses_left"], 0, "{S}: {tokens}");
    let old = by_label("old");
    assert!(
        old["expires_at"].as_str().unwrap() <= old["created_at"].as_str().unwrap(),
        "{S}: {old}"
    );
    let devices = ctx.admin("GET", "/api/v1/devices", &Value::Null);
    assert_eq!(
        devices.as_array().unwrap().len(),
        1,
        "{S}: only A was enrolled: {devices}"
    );

    // A multi-use token from the admin API enrolls B and C.
    let created = ctx.admin(
        "POST",
        "/api/v1/tokens",
        &json!({"label": "fleet", "expires_in_hours": 1}),
    );
    let fleet = created["token"].as_str().unwrap();
    let b = ctx.enroll(fleet, "MAC-B", "SERIAL-B");
    let c = ctx.enroll(fleet, "MAC-C", "SERIAL-C");
    [a, b, c]
}

/// Section 2, mTLS on native endpoints: no certificate, a certificate from another CA, a
/// revoked certificate. `c` is revoked here.
fn mtls(ctx: &Ctx, a: &Device, c: &Device) {
    const S: &str = "mtls";
    // No certificate: each native endpoint refuses and says why.
    let reply = ctx.post_json(None, "/enroll/join", &json!({"group": "groups/default"}));
    let error: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(
        (reply.status, error["code"].as_str()),
        (401, Some("certificate_required")),
        "{S}: /enroll/join without a certificate: {error}"
    );
    let reply = ctx.get(None, "/repo/manifests/site_default", &[]);
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (401, "the repository needs a device certificate\n"),
        "{S}: /repo without a certificate"
    );
    let reply = ctx.ocs(None, PROLOG).unwrap();
    assert_eq!(
        reply.status, 403,
        "{S}: /ocsinventory without a certificate"
    );
    assert!(
        reply
            .text()
            .contains("accepts OCS check-ins only with a device certificate"),
        "{S}: {}",
        reply.text()
    );

    // The control: A's own certificate is accepted on the same endpoints.
    let reply = ctx.get(Some(a), "/repo/manifests/site_default", &[]);
    assert_eq!(reply.status, 200, "{S}: A's certificate: {}", reply.text());
    let reply = ctx.post_json(Some(a), "/enroll/join", &json!({"group": "groups/default"}));
    assert_eq!(reply.status, 200, "{S}: A joins: {}", reply.text());

    // A certificate for A's name from a CA the server does not know; and from a look-alike
    // CA with the real CA's name, whose signature then fails (rustls: DecryptError).
    for (ca_name, alert) in [
        ("Some Other CA", "UnknownCA"),
        ("Tessera Device CA", "DecryptError"),
    ] {
        let (chain_pem, key_pem) = stranger_identity(ca_name, "MAC-A");
        let stranger = Device {
            name: "MAC-A",
            serial: "SERIAL-A",
            chain_pem,
            key_pem,
        };
        for (head, body) in [
            ("GET /repo/manifests/site_default HTTP/1.1", Vec::new()),
            (
                "POST /ocsinventory HTTP/1.1\r\nContent-Type: application/x-compress",
                encode_zlib(PROLOG.as_bytes()),
            ),
        ] {
            let what = format!("{S}: a certificate from {ca_name:?}, {head}");
            refused(ctx, &stranger, head, &body, alert, &what);
        }
    }

    // C works, is revoked through the admin API, and is refused on the next connection.
    let path = format!("/repo/manifests/computers/{}", c.serial);
    let reply = ctx.get(Some(c), &path, &[]);
    assert_eq!(
        reply.status,
        200,
        "{S}: C before revocation: {}",
        reply.text()
    );
    let key = ctx.device_key(c.serial);
    let revoked = ctx.admin(
        "POST",
        &format!("/api/v1/devices/{key}/revoke"),
        &json!({"reason": "keyCompromise"}),
    );
    let serials = revoked["revoked"].as_array().unwrap();
    assert_eq!(serials.len(), 1, "{S}: one certificate revoked: {revoked}");
    let serial = serials[0].as_str().unwrap().to_owned();
    refused(
        ctx,
        c,
        &format!("GET {path} HTTP/1.1"),
        b"",
        "CertificateRevoked",
        &format!("{S}: revoked {}", c.name),
    );
    refused(
        ctx,
        c,
        "POST /ocsinventory HTTP/1.1\r\nContent-Type: application/x-compress",
        &encode_zlib(PROLOG.as_bytes()),
        "CertificateRevoked",
        &format!("{S}: revoked {} on OCS", c.name),
    );
    let reply = ctx.get(Some(a), "/repo/manifests/site_default", &[]);
    assert_eq!(reply.status, 200, "{S}: A is unaffected");

    // The CRL on plain HTTP lists C's serial (OpenSSL reads it).
    if tessera_testkit::tool("openssl", "reading the published CRL with OpenSSL") {
        let crl = plain_get(&ctx.server.http, "/crl/device-ca.crl");
        assert!(crl.starts_with(b"HTTP/1.1 200"), "{S}: CRL over HTTP");
        let split = crl.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let file = ctx.scratch("device-ca.crl");
        std::fs::write(&file, &crl[split + 4..]).unwrap();
        let text = Command::new("openssl")
            .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
            .arg(&file)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&text.stdout).to_uppercase();
        assert!(
            text.contains(&serial.to_uppercase()),
            "{S}: serial {serial} missing from the CRL:\n{text}"
        );
    }
}

/// Asserts that `who` is refused at the TLS layer on a new connection, and by which alert.
fn refused(ctx: &Ctx, who: &Device, head: &str, body: &[u8], alert: &str, what: &str) {
    match ctx.try_request(Some(who), head, body) {
        Ok(reply) => panic!("{what}: served {} {}", reply.status, reply.text()),
        Err(error) => assert!(
            error.contains(alert),
            "{what}: refused, but not with {alert}: {error}"
        ),
    }
}

/// A client certificate and key (PEM) for `name`, issued by a throwaway CA called `ca_name`.
fn stranger_identity(ca_name: &str, name: &str) -> (String, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.distinguished_name.push(DnType::CommonName, ca_name);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let cert = params.signed_by(&key, &issuer).unwrap().pem();
    (format!("{cert}{ca_pem}"), key.serialize_pem())
}

/// A GET over plain TCP; the raw response.
fn plain_get(addr: &str, path: &str) -> Vec<u8> {
    use std::io::{Read as _, Write as _};
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = Vec::new();
    tcp.read_to_end(&mut reply).unwrap();
    reply
}

/// The XML of an OCS reply: zlib as the agent requires, with the content type it sends.
fn ocs_reply(reply: &Response, what: &str) -> tessera_protocol::xml::Element {
    assert_eq!(reply.status, 200, "{what}: {}", reply.text());
    assert_eq!(
        reply.header("content-type"),
        Some("application/x-compressed"),
        "{what}"
    );
    assert_eq!(
        reply.body.first(),
        Some(&0x78),
        "{what}: a zlib stream (RFC 1950) starts 0x78"
    );
    let (xml, _) = decode(&reply.body, 1 << 20).unwrap();
    parse(&xml, XmlLimits::default())
        .unwrap_or_else(|e| panic!("{what}: {e}: {}", String::from_utf8_lossy(&xml)))
}

/// Section 3, `POST /ocsinventory` over mTLS with A's certificate: PROLOG offers the
/// package assigned to A, INVENTORY stores facts, the DOWNLOAD result counts as success.
/// The messages carry the spec's DEVICEID (`myhost-…`): over mTLS the certificate, not
/// the message, says who the device is. Returns the package ID.
fn ocs(ctx: &Ctx, a: &Device, scratch: &Path) -> u64 {
    const S: &str = "ocs";
    // A payload directory of 20,000 bytes that do not compress, in 4 KiB fragments.
    let payload = scratch.join("payload");
    std::fs::create_dir_all(&payload).unwrap();
    let mut x = 0x2545_f491_u32;
    let bytes: Vec<u8> = (0..20_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect();
    std::fs::write(payload.join("blob.bin"), bytes).unwrap();
    let built = ctx.cli_ok(&[
        "package",
        "build",
        payload.to_str().unwrap(),
        "--name",
        "hello",
        "--version",
        "1.0",
        "--execute",
        "true",
        "--fragment-size",
        "4K",
        "--json",
    ]);
    let built: Value = serde_json::from_str(&built).unwrap();
    let package = built["id"].as_u64().unwrap();
    assert!(
        built["fragments"].as_u64().unwrap() >= 3,
        "{S}: several fragments: {built}"
    );

    let key = ctx.device_key(a.serial);
    ctx.admin(
        "POST",
        "/api/v1/assignments",
        &json!({"device": key, "package": package}),
    );
    let stats_path = format!("/api/v1/packages/{package}/stats");
    let stats = ctx.admin("GET", &stats_path, &Value::Null);
    assert_eq!(
        (&stats["waiting"], &stats["notified"]),
        (&json!(1), &json!(0)),
        "{S}: assigned, not yet offered: {stats}"
    );

    // PROLOG → REPLY with PROLOG_FREQ, RESPONSE (SEND: no inventory yet) and DOWNLOAD.
    let reply = ocs_reply(&ctx.ocs(Some(a), PROLOG).unwrap(), "ocs: PROLOG");
    assert_eq!(reply.field("RESPONSE"), Some("SEND"), "{S}: {reply:?}");
    assert_eq!(reply.field("PROLOG_FREQ"), Some("12"), "{S}: {reply:?}");
    let option = reply.child("OPTION").expect("a DOWNLOAD option");
    assert_eq!(option.field("NAME"), Some("DOWNLOAD"), "{S}: {option:?}");
    let params: Vec<_> = option.children_named("PARAM").collect();
    assert_eq!(params.len(), 2, "{S}: CONF and one PACK: {option:?}");
    assert_eq!(
        (params[0].attribute("TYPE"), params[0].attribute("ON")),
        (Some("CONF"), Some("1")),
        "{S}: {option:?}"
    );
    assert!(
        params[0].attribute("TIMEOUT").is_some(),
        "{S}: §2.3 TIMEOUT"
    );
    let id = package.to_string();
    assert_eq!(
        (params[1].attribute("TYPE"), params[1].attribute("ID")),
        (Some("PACK"), Some(id.as_str())),
        "{S}: {option:?}"
    );
    assert_eq!(
        params[1].attribute("INFO_LOC"),
        Some("127.0.0.1:8443/download"),
        "{S}: INFO_LOC is the configured public authority (config.toml [public])"
    );
    let stats = ctx.admin("GET", &stats_path, &Value::Null);
    assert_eq!(
        (&stats["waiting"], &stats["notified"]),
        (&json!(0), &json!(1)),
        "{S}: offered means notified: {stats}"
    );

    // INVENTORY → NO_ACCOUNT_UPDATE, and A's facts are what it carried.
    let reply = ocs_reply(&ctx.ocs(Some(a), INVENTORY).unwrap(), "ocs: INVENTORY");
    assert_eq!(
        reply.field("RESPONSE"),
        Some("NO_ACCOUNT_UPDATE"),
        "{S}: {reply:?}"
    );
    let detail = ctx.admin("GET", &format!("/api/v1/devices/{key}"), &Value::Null);
    let facts = &detail["device"]["facts"];
    assert_eq!(
        (&facts["os_name"], &facts["os_version"], &facts["arch"]),
        (
            &json!("Debian GNU/Linux 12 (bookworm)"),
            &json!("6.1.0-21-amd64"),
            &json!("x86_64")
        ),
        "{S}: facts from the inventory: {detail}"
    );
    assert!(facts["inventory_at"].is_i64(), "{S}: {detail}");
    assert_eq!(
        detail["device"]["computer_name"], a.name,
        "{S}: the certificate's device, not the message's DEVICEID"
    );
    let devices = ctx.admin("GET", "/api/v1/devices", &Value::Null);
    assert!(
        devices
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["ocs_device_id"].is_null()),
        "{S}: no device was made from the DEVICEID: {devices}"
    );
    // With an inventory on file, the next PROLOG says STOP and still offers the package.
    let reply = ocs_reply(&ctx.ocs(Some(a), PROLOG).unwrap(), "ocs: second PROLOG");
    assert_eq!(reply.field("RESPONSE"), Some("STOP"), "{S}: {reply:?}");
    assert!(
        reply
            .child("OPTION")
            .unwrap()
            .children_named("PARAM")
            .any(|p| p.attribute("ID") == Some(id.as_str())),
        "{S}: still offered while notified: {reply:?}"
    );

    // DOWNLOAD result SUCCESS → 200, empty body; the package's statistics count it.
    let reply = ctx.ocs(Some(a), &download_result(package)).unwrap();
    assert_eq!(
        (reply.status, reply.body.len()),
        (200, 0),
        "{S}: DOWNLOAD result: {}",
        reply.text()
    );
    let stats = ctx.admin("GET", &stats_path, &Value::Null);
    assert_eq!(
        (&stats["notified"], &stats["success"], &stats["error"]),
        (&json!(0), &json!(1), &json!(0)),
        "{S}: {stats}"
    );
    assert_eq!(stats["by_code"], json!({"SUCCESS": 1}), "{S}: {stats}");
    let detail = ctx.admin("GET", &format!("/api/v1/devices/{key}"), &Value::Null);
    assert_eq!(
        (
            &detail["deployments"][0]["state"],
            &detail["deployments"][0]["code"]
        ),
        (&json!("success"), &json!("SUCCESS")),
        "{S}: {detail}"
    );
    // Finished: no longer offered.
    let reply = ocs_reply(
        &ctx.ocs(Some(a), PROLOG).unwrap(),
        "ocs: PROLOG after SUCCESS",
    );
    assert!(
        !reply
            .child("OPTION")
            .unwrap()
            .children_named("PARAM")
            .any(|p| p.attribute("TYPE") == Some("PACK")),
        "{S}: {reply:?}"
    );

    // /metrics is for the admin only, and counts what happened above: A's three PROLOGs
    // (the refused ones in the mTLS section never reached the handler) and one success.
    let reply = ctx.get(None, "/metrics", &[]);
    assert_eq!(reply.status, 401, "{S}: /metrics without the admin token");
    let auth = format!("Authorization: Bearer {}", ctx.admin);
    let reply = ctx.get(None, "/metrics", &[&auth]);
    assert_eq!(reply.status, 200, "{S}: /metrics");
    let text = reply.text();
    for line in [
        "tessera_ocs_checkins_total 3\n",
        "tessera_ocs_results_total 1\n",
        "tessera_deployments{state=\"success\"} 1\n",
        "tessera_deployments{state=\"notified\"} 0\n",
    ] {
        assert!(text.contains(line), "{S}: {line:?} missing from:\n{text}");
    }
    package
}

/// Section 4, `GET /download/<ID>/info` and `/download/<ID>/<ID>-<n>`: exact lengths,
/// strong validators, 304, 206 with the same ETag, bytes equal to the stored files.
fn package_files(ctx: &Ctx, a: &Device, package: u64) {
    const S: &str = "package files";
    let dir = ctx.data.join(format!("repo/download/{package}"));
    let info = std::fs::read(dir.join("info")).unwrap();
    let archive = std::fs::read(dir.join("archive")).unwrap();
    let fragment_size = 4096;
    let fragments = archive.len().div_ceil(fragment_size);

    // (path, the bytes it must serve)
    let mut files = vec![(format!("/download/{package}/info"), info.clone())];
    for n in 1..=fragments {
        let start = (n - 1) * fragment_size;
        let end = (start + fragment_size).min(archive.len());
        files.push((
            format!("/download/{package}/{package}-{n}"),
            archive[start..end].to_vec(),
        ));
    }
    let mut reassembled = Vec::new();
    for (path, expected) in &files {
        // Without the OCS compatibility path, package files are for enrolled devices.
        let anonymous = ctx.get(None, path, &[]);
        assert_eq!(anonymous.status, 401, "{S}: {path} without a certificate");
        let full = ctx.get(Some(a), path, &[]);
        assert_eq!(full.status, 200, "{S}: {path}: {}", full.text());
        assert_eq!(
            full.header("content-length"),
            Some(expected.len().to_string().as_str()),
            "{S}: {path}: exact Content-Length"
        );
        assert!(
            full.body == *expected,
            "{S}: {path}: bytes of the stored file"
        );
        let etag = full.header("etag").expect("an ETag").to_owned();
        assert!(
            etag.starts_with('"') && etag.ends_with('"'),
            "{S}: {path}: a strong ETag, got {etag}"
        );
        assert!(
            full.header("last-modified").is_some(),
            "{S}: {path}: Last-Modified"
        );

        let again = ctx.get(Some(a), path, &[&format!("If-None-Match: {etag}")]);
        assert_eq!(
            (again.status, again.body.len()),
            (304, 0),
            "{S}: {path}: If-None-Match"
        );
        assert_eq!(again.header("etag"), Some(etag.as_str()), "{S}: {path}");

        let part = ctx.get(Some(a), path, &["Range: bytes=0-9"]);
        assert_eq!(part.status, 206, "{S}: {path}: Range");
        assert_eq!(
            part.header("content-range"),
            Some(format!("bytes 0-9/{}", expected.len()).as_str()),
            "{S}: {path}"
        );
        assert_eq!(
            (part.header("content-length"), part.header("etag")),
            (Some("10"), Some(etag.as_str())),
            "{S}: {path}: the same validator on 206"
        );
        assert_eq!(
            part.body,
            expected[..10],
            "{S}: {path}: the first ten bytes"
        );
        if path.ends_with("info") {
            let text = String::from_utf8_lossy(&full.body).into_owned();
            assert!(
                text.contains(&format!("ID=\"{package}\"")) && text.contains("DIGEST_ALGO=\"MD5\""),
                "{S}: {text}"
            );
        } else {
            reassembled.extend_from_slice(&full.body);
        }
    }
    assert!(
        reassembled == archive,
        "{S}: the fragments make the archive"
    );

    // The archive's MD5, by md5sum, is the DIGEST the info file announces.
    if tessera_testkit::tool("md5sum", "checking the package digest") {
        let file = ctx.scratch("reassembled");
        std::fs::write(&file, &reassembled).unwrap();
        let sum = Command::new("md5sum").arg(&file).output().unwrap();
        let sum = String::from_utf8_lossy(&sum.stdout);
        let digest = sum.split_whitespace().next().unwrap();
        assert!(
            String::from_utf8_lossy(&info).contains(&format!("DIGEST=\"{digest}\"")),
            "{S}: md5sum {digest} not in the info file"
        );
    }

    for path in [
        format!("/download/{package}/{package}-{}", fragments + 1),
        format!("/download/{package}/{package}-0"),
        format!("/download/{package}/archive"),
        format!("/download/{package}/..%2F..%2F..%2Fconfig.toml"),
        "/download/..%2F..%2Fconfig.toml/info".to_owned(),
    ] {
        let reply = ctx.get(Some(a), &path, &[]);
        assert_eq!(reply.status, 404, "{S}: {path}: {}", reply.text());
    }
}

/// Section 5, `GET /repo/…`: each device reads its own manifest, `site_default` and what it
/// includes, never another device's; traversal leaks nothing.
fn munki(ctx: &Ctx, a: &Device, b: &Device) {
    const S: &str = "munki";
    let manifests = ctx.data.join("repo/manifests");
    for (who, other) in [(a, b), (b, a)] {
        let own = format!("/repo/manifests/computers/{}", who.serial);
        let reply = ctx.get(Some(who), &own, &[]);
        assert_eq!(reply.status, 200, "{S}: {} reads {own}", who.name);
        let on_disk = std::fs::read(manifests.join(format!("computers/{}", who.serial))).unwrap();
        assert!(reply.body == on_disk, "{S}: {own} is the file on disk");
        assert!(
            reply.text().contains("groups/default"),
            "{S}: {}",
            reply.text()
        );
        for shared in ["site_default", "groups/default"] {
            let reply = ctx.get(Some(who), &format!("/repo/manifests/{shared}"), &[]);
            assert_eq!(reply.status, 200, "{S}: {} reads {shared}", who.name);
        }
        let theirs = format!("/repo/manifests/computers/{}", other.serial);
        let reply = ctx.get(Some(who), &theirs, &[]);
        assert_eq!(
            reply.status,
            404,
            "{S}: {} must not read {theirs}: {}",
            who.name,
            reply.text()
        );
        assert!(
            !reply.text().contains("plist"),
            "{S}: nothing of {theirs} leaks"
        );
    }

    let secrets = [
        "[listen]",
        "https_authority",
        "PRIVATE KEY",
        "SQLite format",
    ];
    for path in [
        "/repo/manifests/..%2F..%2Fconfig.toml",
        "/repo/manifests/..%2f..%2fconfig.toml",
        "/repo/manifests/computers/..%2F..%2F..%2Fconfig.toml",
        "/repo/manifests/%2E%2E/%2E%2E/config.toml",
        "/repo/manifests/../../config.toml",
        "/repo/pkgs/..%2F..%2Ftls%2Fserver.key",
        "/repo/catalogs/..%2F..%2Ftessera.db",
        "/repo/manifests/%2Fetc%2Fpasswd",
    ] {
        let reply = ctx.get(Some(a), path, &[]);
        assert!(
            (400..500).contains(&reply.status),
            "{S}: {path}: 4xx, got {} {}",
            reply.status,
            reply.text()
        );
        let text = reply.text();
        assert!(
            secrets.iter().all(|s| !text.contains(s)) && !text.contains("root:"),
            "{S}: {path} leaked: {text}"
        );
    }
}
