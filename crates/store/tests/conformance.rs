//! One conformance suite for both engines: every case runs on SQLite (a real database file)
//! and, when `TESSERA_TEST_POSTGRES_URL` names a PostgreSQL server, on PostgreSQL too, each
//! in a fresh database created and dropped by the test. `scripts/postgres-test-server`
//! starts a throwaway server and prints the URL to set; CI does so, and there (with
//! `TESSERA_REQUIRE_TOOLS` set) a missing URL fails the PostgreSQL tests instead of skipping.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection as _;
use tessera_store::{
    CertificateRecord, DeploymentState, DeviceKey, Error, NewDevice, NewToken, PackageRecord,
    PgStore, Revocation, SqliteStore, Store, TokenRefusal,
};
use time::{Duration, OffsetDateTime, macros::datetime};

const T0: OffsetDateTime = datetime!(2026-11-01 12:00 UTC);

/// The variable naming the PostgreSQL server for tests (any database on it: each test
/// creates its own beside it).
const POSTGRES_URL: &str = "TESSERA_TEST_POSTGRES_URL";

/// An engine under test: one fresh, empty database, opened as often as a case likes.
trait Engine {
    type Store: Store + Clone + std::fmt::Debug + 'static;
    async fn open(&self) -> tessera_store::Result<Self::Store>;
    async fn schema_version(store: &Self::Store) -> i64;
    /// Records `version` as applied, as a newer Tessera would have.
    async fn claim_version(&self, version: i64);
}

struct Sqlite {
    dir: tempfile::TempDir,
}

impl Sqlite {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }
}

impl Engine for Sqlite {
    type Store = SqliteStore;

    async fn open(&self) -> tessera_store::Result<SqliteStore> {
        SqliteStore::open(&self.dir.path().join("tessera.db")).await
    }

    async fn schema_version(store: &SqliteStore) -> i64 {
        store.schema_version().await.unwrap()
    }

    async fn claim_version(&self, version: i64) {
        let path = self.dir.path().join("tessera.db");
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::query("INSERT INTO schema_migrations VALUES (?, 0)")
            .bind(version)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
}

/// A database of its own on the test server, dropped (with any connection still open to
/// it) when the test ends, passed or not.
struct Postgres {
    admin_url: String,
    url: String,
    name: String,
}

impl Postgres {
    /// `None` (after saying so) when no server is configured; a failure in CI.
    async fn new() -> Option<Self> {
        let Some(admin_url) = std::env::var(POSTGRES_URL).ok().filter(|u| !u.is_empty()) else {
            let required = std::env::var_os("TESSERA_REQUIRE_TOOLS")
                .is_some_and(|v| !v.is_empty() && v != "0");
            assert!(
                !required,
                "{POSTGRES_URL} is required (TESSERA_REQUIRE_TOOLS is set): \
                 start a server with scripts/postgres-test-server"
            );
            eprintln!("SKIPPED (no PostgreSQL): set {POSTGRES_URL}");
            return None;
        };
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "tessera_test_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        Some(Self {
            url: with_database(&admin_url, &name),
            admin_url,
            name,
        })
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Drop cannot await, and may run inside the test's runtime: a thread of its own
        // with a runtime of its own drops the database.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
                    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut admin)
                        .await?;
                    admin.close().await
                })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}: {dropped:?}", self.name);
        }
    }
}

impl Engine for Postgres {
    type Store = PgStore;

    async fn open(&self) -> tessera_store::Result<PgStore> {
        PgStore::open(&self.url).await
    }

    async fn schema_version(store: &PgStore) -> i64 {
        store.schema_version().await.unwrap()
    }

    async fn claim_version(&self, version: i64) {
        let mut connection = sqlx::PgConnection::connect(&self.url).await.unwrap();
        sqlx::query("INSERT INTO schema_migrations VALUES ($1, 0)")
            .bind(version)
            .execute(&mut connection)
            .await
            .unwrap();
        connection.close().await.unwrap();
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

#[test]
fn test_urls_name_the_test_database() {
    assert_eq!(
        with_database("postgres://u@127.0.0.1:5/postgres", "t"),
        "postgres://u@127.0.0.1:5/t"
    );
    assert_eq!(
        with_database("postgres://u@127.0.0.1:5?sslmode=disable", "t"),
        "postgres://u@127.0.0.1:5/t?sslmode=disable"
    );
}

/// Runs each case on both engines: `stores` cases take a freshly opened store, `engines`
/// cases the engine itself (they reopen it).
macro_rules! conformance {
    (stores: $($store_case:ident),* $(,)?; engines: $($engine_case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $store_case() {
                    let engine = super::Sqlite::new();
                    super::$store_case(super::Engine::open(&engine).await.unwrap()).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $engine_case() {
                    super::$engine_case(super::Sqlite::new()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $store_case() {
                    let Some(engine) = super::Postgres::new().await else { return };
                    super::$store_case(super::Engine::open(&engine).await.unwrap()).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $engine_case() {
                    let Some(engine) = super::Postgres::new().await else { return };
                    super::$engine_case(engine).await;
                }
            )*
        }
    };
}

conformance! {
    stores:
        devices_are_found_by_serial_and_deviceid_and_facts_merge,
        facts_merge_as_a_json_merge_patch,
        concurrent_fact_merges_keep_every_key,
        tokens_refuse_with_the_right_reason,
        racing_enrollments_cannot_overuse_a_token,
        certificates_are_recorded_and_revoked_once,
        deployments_move_forward_only_and_are_counted,
        unknown_devices_and_packages_are_not_found,
        packages_update_in_place,
        concurrent_notifications_are_each_durable_and_recorded_once,
        batched_contacts_never_move_backwards,
        a_device_is_read_with_all_its_deployments,
        notifying_a_package_without_a_deployment_starts_one;
    engines:
        a_restart_keeps_everything,
        a_database_from_a_newer_version_is_refused,
}

/// Two servers starting together on one PostgreSQL database: the migration lock makes one
/// apply the schema and the other find it applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_opens_migrate_once() {
    let Some(engine) = Postgres::new().await else {
        return;
    };
    let (a, b) = tokio::join!(engine.open(), engine.open());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.schema_version().await.unwrap(), 1);
    assert_eq!(b.schema_version().await.unwrap(), 1);
}

fn new_device(serial: &str) -> NewDevice {
    NewDevice {
        computer_name: format!("host-{serial}"),
        serial: Some(serial.to_owned()),
        ocs_device_id: None,
        manifest: format!("computers/{serial}"),
        facts: serde_json::json!({"os_vers": "14.5"})
            .as_object()
            .unwrap()
            .clone(),
    }
}

fn package(id: i64) -> PackageRecord {
    PackageRecord {
        id,
        name: format!("pkg{id}"),
        version: "1.0".into(),
        priority: 5,
        action: "EXECUTE".into(),
        fragments: 3,
        size: 3000,
        created_at: T0,
    }
}

fn facts(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match value {
        serde_json::Value::Object(map) => map,
        other => panic!("facts are an object, not {other}"),
    }
}

/// SQLite merges with `json_patch`; PostgreSQL must give the same result: nested objects
/// merge, `null` removes, other values replace.
async fn facts_merge_as_a_json_merge_patch<S: Store + Clone + 'static>(store: S) {
    let mut device = new_device("M1");
    device.facts = facts(serde_json::json!({
        "os_vers": "14.5", "gone": "soon", "disk": {"free": 10, "total": 100}, "list": [1, 2],
        "nul": "a\u{0}b"
    }));
    let key = store.create_device(&device, T0).await.unwrap();
    let patch = facts(serde_json::json!({
        "gone": null, "disk": {"free": 5, "unit": "GB"}, "list": [3], "new": {"x": null, "y": 1}
    }));
    store.record_contact(key, Some(&patch), T0).await.unwrap();
    assert_eq!(
        serde_json::Value::Object(store.device(key).await.unwrap().unwrap().facts),
        serde_json::json!({
            "os_vers": "14.5", "disk": {"free": 5, "total": 100, "unit": "GB"}, "list": [3],
            "new": {"y": 1}, "nul": "a\u{0}b"
        })
    );
    // A contact without facts keeps them.
    store.record_contact(key, None, T0).await.unwrap();
    assert_eq!(
        store.device(key).await.unwrap().unwrap().facts["os_vers"],
        "14.5"
    );
}

/// Check-ins of one device racing with different facts: none is lost.
async fn concurrent_fact_merges_keep_every_key<S: Store + Clone + 'static>(store: S) {
    let key = store.create_device(&new_device("F1"), T0).await.unwrap();
    let calls: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let patch = facts(serde_json::json!({ format!("k{i}"): i }));
                store.record_contact(key, Some(&patch), T0).await
            })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let stored = store.device(key).await.unwrap().unwrap().facts;
    for i in 0..16 {
        assert_eq!(stored[&format!("k{i}")], i, "{stored:?}");
    }
}

/// Foreign keys are enforced and reported as `NotFound`, whichever side is missing.
async fn unknown_devices_and_packages_are_not_found<S: Store + Clone + 'static>(store: S) {
    store.put_package(&package(1)).await.unwrap();
    let key = store.create_device(&new_device("U1"), T0).await.unwrap();
    assert!(matches!(
        store.assign(key, 404, T0).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.assign(DeviceKey(999), 1, T0).await,
        Err(Error::NotFound(_))
    ));
    // Nothing of the failed assignment is left behind.
    assert!(store.deployment_history(key, 404).await.unwrap().is_empty());
    // A notification for an unknown device writes nothing and fails nothing.
    store.mark_notified(DeviceKey(999), &[1], T0).await.unwrap();
    assert_eq!(
        store.package_stats(1).await.unwrap(),
        tessera_store::PackageStats::default()
    );
    assert!(store.device(DeviceKey(999)).await.unwrap().is_none());
    assert_eq!(store.list_devices().await.unwrap().len(), 1);
}

async fn a_restart_keeps_everything<E: Engine>(engine: E) {
    let key = {
        let store = engine.open().await.unwrap();
        store.put_package(&package(7)).await.unwrap();
        let key = store.create_device(&new_device("R1"), T0).await.unwrap();
        store.assign(key, 7, T0).await.unwrap();
        store
            .record_result(key, 7, DeploymentState::Success, "SUCCESS", T0)
            .await
            .unwrap();
        key
    };
    let store = engine.open().await.unwrap();
    assert_eq!(E::schema_version(&store).await, 1);
    assert_eq!(store.package(7).await.unwrap(), Some(package(7)));
    assert_eq!(
        store.deployments_for(key).await.unwrap()[0].code.as_deref(),
        Some("SUCCESS")
    );
    // Keys keep counting after a restart.
    let next = store.create_device(&new_device("R2"), T0).await.unwrap();
    assert!(next > key);
}

async fn a_database_from_a_newer_version_is_refused<E: Engine>(engine: E) {
    drop(engine.open().await.unwrap());
    engine.claim_version(99).await;
    let err = engine.open().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::SchemaTooNew {
                found: 99,
                known: 1
            }
        ),
        "{err}"
    );
}

async fn devices_are_found_by_serial_and_deviceid_and_facts_merge<S: Store + Clone + 'static>(
    store: S,
) {
    let a = store.create_device(&new_device("A1"), T0).await.unwrap();
    let ocs = NewDevice {
        serial: None,
        ocs_device_id: Some("h-2024-05-01-10-20-30".into()),
        ..new_device("unused")
    };
    let b = store.create_device(&ocs, T0).await.unwrap();
    assert_ne!(a, b);
    assert_eq!(
        store
            .device_by_ocs_id("h-2024-05-01-10-20-30")
            .await
            .unwrap()
            .unwrap()
            .key,
        b
    );
    assert!(store.device_by_serial("nope").await.unwrap().is_none());

    let err = store
        .create_device(&new_device("A1"), T0)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");

    let patch = serde_json::json!({"hostname": "mac01"})
        .as_object()
        .unwrap()
        .clone();
    store
        .record_contact(a, Some(&patch), T0 + Duration::hours(1))
        .await
        .unwrap();
    let device = store.device(a).await.unwrap().unwrap();
    assert_eq!(device.facts["os_vers"], "14.5");
    assert_eq!(device.facts["hostname"], "mac01");
    assert_eq!(device.last_contact, Some(T0 + Duration::hours(1)));
    assert!(matches!(
        store.record_contact(DeviceKey(999), None, T0).await,
        Err(Error::NotFound(_))
    ));
}

async fn tokens_refuse_with_the_right_reason<S: Store + Clone + 'static>(store: S) {
    let single = NewToken {
        token_hash: "h1".into(),
        label: "one".into(),
        expires_at: None,
        uses: Some(1),
    };
    store.create_token(&single, T0).await.unwrap();
    assert!(store.consume_token("h1", T0).await.unwrap().is_ok());
    assert_eq!(
        store.consume_token("h1", T0).await.unwrap(),
        Err(TokenRefusal::UsedUp)
    );

    let expiring = NewToken {
        token_hash: "h2".into(),
        label: "day".into(),
        expires_at: Some(T0 + Duration::days(1)),
        uses: None,
    };
    store.create_token(&expiring, T0).await.unwrap();
    for _ in 0..3 {
        assert!(store.consume_token("h2", T0).await.unwrap().is_ok());
    }
    assert_eq!(
        store
            .consume_token("h2", T0 + Duration::days(1))
            .await
            .unwrap(),
        Err(TokenRefusal::Expired)
    );

    let revocable = NewToken {
        token_hash: "h3".into(),
        label: "r".into(),
        expires_at: None,
        uses: None,
    };
    let token = store.create_token(&revocable, T0).await.unwrap();
    assert!(store.revoke_token(token.id, T0).await.unwrap());
    assert!(!store.revoke_token(token.id, T0).await.unwrap());
    assert_eq!(
        store.consume_token("h3", T0).await.unwrap(),
        Err(TokenRefusal::Revoked)
    );
    assert_eq!(
        store.consume_token("nope", T0).await.unwrap(),
        Err(TokenRefusal::Unknown)
    );
    assert_eq!(store.list_tokens().await.unwrap().len(), 3);
}

async fn racing_enrollments_cannot_overuse_a_token<S: Store + Clone + 'static>(store: S) {
    let store = Arc::new(store);
    let five = NewToken {
        token_hash: "h".into(),
        label: "five".into(),
        expires_at: None,
        uses: Some(5),
    };
    store.create_token(&five, T0).await.unwrap();
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.consume_token("h", T0).await.unwrap().is_ok() })
        })
        .collect();
    let mut granted = 0;
    for task in tasks {
        granted += usize::from(task.await.unwrap());
    }
    assert_eq!(granted, 5);
}

async fn certificates_are_recorded_and_revoked_once<S: Store + Clone + 'static>(store: S) {
    let device = store.create_device(&new_device("C1"), T0).await.unwrap();
    let record = CertificateRecord {
        serial: "0a1b".into(),
        device: Some(device),
        computer_name: "host-C1".into(),
        not_before: T0,
        not_after: T0 + Duration::days(365),
        certificate_pem: "-----BEGIN CERTIFICATE-----".into(),
        revoked: None,
    };
    store.record_certificate(&record).await.unwrap();
    assert!(matches!(
        store.record_certificate(&record).await,
        Err(Error::Conflict { .. })
    ));
    assert!(store.revoked_certificates().await.unwrap().is_empty());
    let revocation = Revocation {
        at: T0 + Duration::hours(2),
        reason: "keyCompromise".into(),
    };
    assert!(store.revoke_certificate("0a1b", &revocation).await.unwrap());
    assert!(!store.revoke_certificate("0a1b", &revocation).await.unwrap());
    assert!(!store.revoke_certificate("ffff", &revocation).await.unwrap());
    let revoked = store.revoked_certificates().await.unwrap();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].revoked, Some(revocation));
    assert_eq!(
        store.certificate("0a1b").await.unwrap().unwrap().device,
        Some(device)
    );
}

async fn deployments_move_forward_only_and_are_counted<S: Store + Clone + 'static>(store: S) {
    store.put_package(&package(100)).await.unwrap();
    let devices: Vec<_> = futures_keys(&store, 4).await;
    for &d in &devices {
        store.assign(d, 100, T0).await.unwrap();
    }
    store.mark_notified(devices[0], &[100], T0).await.unwrap();
    store.mark_notified(devices[1], &[100], T0).await.unwrap();
    store
        .mark_notified(devices[2], &[100], T0 + Duration::hours(5))
        .await
        .unwrap();

    let t1 = T0 + Duration::hours(1);
    assert!(
        store
            .record_result(devices[0], 100, DeploymentState::Success, "SUCCESS_3", t1)
            .await
            .unwrap()
    );
    // The agent retries until acknowledged: the same result is acknowledged again…
    assert!(
        store
            .record_result(devices[0], 100, DeploymentState::Success, "SUCCESS_3", t1)
            .await
            .unwrap()
    );
    // …but a different one after a final state changes nothing.
    assert!(
        !store
            .record_result(devices[0], 100, DeploymentState::Error, "ERR_EXECUTE", t1)
            .await
            .unwrap()
    );
    // Non-final states are not results.
    assert!(
        !store
            .record_result(devices[1], 100, DeploymentState::Notified, "X", t1)
            .await
            .unwrap()
    );

    // Device 1 never answers: it times out; device 2 was notified later and stays.
    let expired = store
        .expire_notified(T0 + Duration::hours(2), T0 + Duration::hours(6))
        .await
        .unwrap();
    assert_eq!(expired, 1);

    let stats = store.package_stats(100).await.unwrap();
    assert_eq!(
        (stats.waiting, stats.notified, stats.success, stats.error),
        (1, 1, 1, 1)
    );
    assert_eq!(stats.by_code.get("SUCCESS_3"), Some(&1));
    assert_eq!(stats.by_code.get("ERR_TIMEOUT"), Some(&1));
    store.put_package(&package(101)).await.unwrap();
    store.assign(devices[3], 101, T0).await.unwrap();
    let totals = store.deployment_totals().await.unwrap();
    assert_eq!((totals.waiting, totals.success, totals.error), (2, 1, 1));

    let history: Vec<_> = store
        .deployment_history(devices[0], 100)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.state, d.code))
        .collect();
    assert_eq!(
        history,
        vec![
            (DeploymentState::Waiting, None),
            (DeploymentState::Notified, None),
            (DeploymentState::Success, Some("SUCCESS_3".into())),
        ]
    );

    // Re-assigning restarts the deployment.
    store
        .assign(devices[0], 100, T0 + Duration::days(1))
        .await
        .unwrap();
    let now = store.deployments_for(devices[0]).await.unwrap();
    assert_eq!(now[0].state, DeploymentState::Waiting);
    assert_eq!(now[0].code, None);

    assert!(matches!(
        store.assign(DeviceKey(999), 100, T0).await,
        Err(Error::NotFound(_))
    ));
    assert!(store.delete_package(100).await.unwrap());
    assert!(store.deployments_for(devices[0]).await.unwrap().is_empty());
}

async fn futures_keys(store: &impl Store, n: usize) -> Vec<DeviceKey> {
    let mut keys = Vec::new();
    for i in 0..n {
        keys.push(
            store
                .create_device(&new_device(&format!("D{i}")), T0)
                .await
                .unwrap(),
        );
    }
    keys
}

async fn packages_update_in_place<S: Store + Clone + 'static>(store: S) {
    store.put_package(&package(1)).await.unwrap();
    let mut changed = package(1);
    changed.version = "2.0".into();
    store.put_package(&changed).await.unwrap();
    assert_eq!(store.list_packages().await.unwrap(), vec![changed]);
    assert!(!store.delete_package(2).await.unwrap());
}

async fn concurrent_notifications_are_each_durable_and_recorded_once<S: Store + Clone + 'static>(
    store: S,
) {
    for id in 1..=5 {
        store.put_package(&package(id)).await.unwrap();
    }
    let devices = futures_keys(&store, 12).await;
    for &d in &devices {
        for id in 1..=5 {
            store.assign(d, id, T0).await.unwrap();
        }
    }
    // Every device twice at once (two check-ins racing), packages 1–4 only: the group
    // commit writes each pair once and leaves package 5 waiting.
    let calls: Vec<_> = devices
        .iter()
        .chain(devices.iter())
        .enumerate()
        .map(|(i, &d)| {
            let store = store.clone();
            let at = T0 + Duration::seconds(i64::try_from(i).unwrap());
            tokio::spawn(async move { store.mark_notified(d, &[1, 2, 3, 4], at).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    for &d in &devices {
        let states: Vec<_> = store
            .deployments_for(d)
            .await
            .unwrap()
            .iter()
            .map(|x| x.state)
            .collect();
        assert_eq!(
            states,
            [
                DeploymentState::Notified,
                DeploymentState::Notified,
                DeploymentState::Notified,
                DeploymentState::Notified,
                DeploymentState::Waiting
            ]
        );
        for id in 1..=4 {
            let history = store.deployment_history(d, id).await.unwrap();
            let notified = history
                .iter()
                .filter(|h| h.state == DeploymentState::Notified)
                .count();
            assert_eq!(notified, 1, "device {d:?} package {id}: {history:?}");
        }
    }
    // A notification never undoes a result.
    store
        .record_result(devices[0], 1, DeploymentState::Success, "SUCCESS", T0)
        .await
        .unwrap();
    store.mark_notified(devices[0], &[1], T0).await.unwrap();
    assert_eq!(
        store.deployments_for(devices[0]).await.unwrap()[0].state,
        DeploymentState::Success
    );
}

async fn batched_contacts_never_move_backwards<S: Store + Clone + 'static>(store: S) {
    let keys = futures_keys(&store, 2).await;
    let later = T0 + Duration::hours(2);
    store
        .record_contacts(&[(keys[0], later), (keys[1], T0), (DeviceKey(999), T0)])
        .await
        .unwrap();
    store
        .record_contacts(&[(keys[0], T0 + Duration::hours(1))])
        .await
        .unwrap();
    let contact = |i: usize| {
        let store = store.clone();
        let key = keys[i];
        async move { store.device(key).await.unwrap().unwrap().last_contact }
    };
    assert_eq!(contact(0).await, Some(later));
    assert_eq!(contact(1).await, Some(T0));
    store.record_contacts(&[]).await.unwrap();
}

async fn a_device_is_read_with_all_its_deployments<S: Store + Clone + 'static>(store: S) {
    for id in 1..=3 {
        store.put_package(&package(id)).await.unwrap();
    }
    let keys = futures_keys(&store, 2).await;
    for id in 1..=3 {
        store.assign(keys[0], id, T0).await.unwrap();
    }
    store.mark_notified(keys[0], &[2], T0).await.unwrap();
    store
        .record_result(keys[0], 3, DeploymentState::Error, "ERR_X", T0)
        .await
        .unwrap();
    let (device, deployments) = store
        .device_with_deployments(keys[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(device, store.device(keys[0]).await.unwrap().unwrap());
    assert_eq!(deployments, store.deployments_for(keys[0]).await.unwrap());
    let states: Vec<_> = deployments.iter().map(|d| d.state).collect();
    assert_eq!(
        states,
        [
            DeploymentState::Waiting,
            DeploymentState::Notified,
            DeploymentState::Error
        ]
    );
    let (_, none) = store
        .device_with_deployments(keys[1])
        .await
        .unwrap()
        .unwrap();
    assert!(none.is_empty());
    assert!(
        store
            .device_with_deployments(DeviceKey(999))
            .await
            .unwrap()
            .is_none()
    );
}

/// A package a manifest asks for has no deployment until it is first offered: the
/// notification starts one (history: waiting, then notified), leaves results alone and
/// skips packages that do not exist.
async fn notifying_a_package_without_a_deployment_starts_one<S: Store + Clone + 'static>(store: S) {
    for id in 1..=3 {
        store.put_package(&package(id)).await.unwrap();
    }
    let keys = futures_keys(&store, 1).await;
    let device = keys[0];
    store.assign(device, 3, T0).await.unwrap();
    store
        .record_result(device, 3, DeploymentState::Success, "SUCCESS", T0)
        .await
        .unwrap();
    let later = T0 + Duration::minutes(5);
    store
        .mark_notified(device, &[1, 2, 3, 404], later)
        .await
        .unwrap();
    let deployments = store.deployments_for(device).await.unwrap();
    let summary: Vec<_> = deployments
        .iter()
        .map(|d| (d.package_id, d.state, d.updated_at))
        .collect();
    assert_eq!(
        summary,
        [
            (1, DeploymentState::Notified, later),
            (2, DeploymentState::Notified, later),
            (3, DeploymentState::Success, T0)
        ]
    );
    let history: Vec<_> = store
        .deployment_history(device, 1)
        .await
        .unwrap()
        .iter()
        .map(|h| h.state)
        .collect();
    assert_eq!(
        history,
        [DeploymentState::Waiting, DeploymentState::Notified]
    );
    // Twice is once.
    store.mark_notified(device, &[1], later).await.unwrap();
    assert_eq!(store.deployment_history(device, 1).await.unwrap().len(), 2);
}
