//! The real `tessera-server` binary on PostgreSQL (`[database] url`), when
//! `TESSERA_TEST_POSTGRES_URL` names a server (`scripts/postgres-test-server` starts one; CI
//! does): first run, enrollment, restart, and a second node on the same database refused.

mod common;

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, csr, https_post, start, stop};
use sqlx::Connection as _;
use tessera_store::{NewToken, PgStore, Store as _};

const POSTGRES_URL: &str = "TESSERA_TEST_POSTGRES_URL";

/// A database of its own on the test server, dropped when the test ends.
struct TestDatabase {
    runtime: tokio::runtime::Runtime,
    admin_url: String,
    url: String,
    name: String,
}

impl TestDatabase {
    fn create() -> Option<Self> {
        let Some(admin_url) = std::env::var(POSTGRES_URL).ok().filter(|u| !u.is_empty()) else {
            let required = std::env::var_os(tessera_testkit::REQUIRE_TOOLS)
                .is_some_and(|v| !v.is_empty() && v != "0");
            assert!(
                !required,
                "{POSTGRES_URL} is required ({} is set): start a server with \
                 scripts/postgres-test-server",
                tessera_testkit::REQUIRE_TOOLS
            );
            eprintln!("SKIPPED (no PostgreSQL): set {POSTGRES_URL}");
            return None;
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let name = format!("tessera_serve_test_{}", std::process::id());
        runtime.block_on(async {
            let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
            // Left over from a killed run of this process id, if any. (One statement each:
            // neither may run inside the implicit transaction of a multi-statement query.)
            for statement in [
                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                format!("CREATE DATABASE {name}"),
            ] {
                sqlx::raw_sql(&statement).execute(&mut admin).await.unwrap();
            }
        });
        Some(Self {
            url: with_database(&admin_url, &name),
            runtime,
            admin_url,
            name,
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let dropped = self.runtime.block_on(async {
            let mut admin = sqlx::PgConnection::connect(&self.admin_url).await?;
            sqlx::raw_sql(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin)
            .await
        });
        if let Err(error) = dropped {
            eprintln!("could not drop test database {}: {error}", self.name);
        }
    }
}

/// `url` with its database replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    let mut out = format!("{}/{database}", &base[..path]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// A data directory whose config.toml points at `url` (everything else is created by the
/// first `serve`).
fn data_dir_on(root: &std::path::Path, url: &str) -> std::path::PathBuf {
    let data = root.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(
        data.join("config.toml"),
        format!("[database]\nurl = \"{url}\"\n"),
    )
    .unwrap();
    data
}

#[test]
fn a_server_on_postgresql_enrolls_restarts_and_refuses_a_second_node() {
    let Some(database) = TestDatabase::create() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir_on(dir.path(), &database.url);
    let server = start(&data);
    let text = server.output.join("\n");
    assert!(text.contains("Initialised"), "{text}");
    assert!(
        !data.join("tessera.db").exists(),
        "no SQLite file beside PostgreSQL"
    );

    // A token, written straight into the server's database as `token create` would.
    let token = "tse_postgres_test";
    database.runtime.block_on(async {
        let store = PgStore::open(&database.url).await.unwrap();
        let new = NewToken {
            token_hash: tessera_server::secret::hash(token),
            label: "t".into(),
            expires_at: None,
            uses: Some(1),
        };
        store
            .create_token(&new, time::OffsetDateTime::now_utc())
            .await
            .unwrap();
    });
    let body = serde_json::json!({"token": token, "csr_pem": csr("MAC01"), "facts": {"serial": "C02X", "hostname": "MAC01", "os": "macOS"}});
    let ca_file = data.join("ca-certificate.pem");
    let (status, reply) = https_post(&server.https, &ca_file, "/enroll", &body.to_string());
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains("computers/C02X"));

    // A second node on the same database (its own data directory) is refused, and says why.
    let other = tempfile::tempdir().unwrap();
    let other_data = data_dir_on(other.path(), &database.url);
    let mut second = Command::new(BIN)
        .args(["--data", other_data.to_str().unwrap(), "serve"])
        .args(["--https", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A deadline only for failing: a second node that starts would otherwise run forever.
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            let _ = second.wait();
            panic!("a second node on the same database started");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    second
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("another tessera-server is serving this database"),
        "{stderr}"
    );
    stop(server);

    // Restart: nothing to initialise, the device is in PostgreSQL, the token stays used.
    let server = start(&data);
    assert!(
        !server.output.join("\n").contains("Initialised"),
        "{:?}",
        server.output
    );
    let (status, reply) = https_post(&server.https, &ca_file, "/enroll", &body.to_string());
    assert_eq!(status, 403, "{reply}");
    let device = database.runtime.block_on(async {
        let store = PgStore::open(&database.url).await.unwrap();
        store.device_by_serial("C02X").await.unwrap()
    });
    assert_eq!(device.map(|d| d.computer_name).as_deref(), Some("MAC01"));
    stop(server);

    // Once the first node has stopped, the lock is free: another node may serve, and it
    // serves the same state (the token is used up there too).
    let server = start(&other_data);
    let other_ca = other_data.join("ca-certificate.pem");
    let (status, reply) = https_post(&server.https, &other_ca, "/enroll", &body.to_string());
    assert_eq!(status, 403, "{reply}");
    stop(server);
}
