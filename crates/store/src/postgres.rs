//! The scale-out engine: a PostgreSQL database several server processes could share.
//!
//! The same schema and semantics as [`SqliteStore`](crate::SqliteStore) (see
//! `migrations/postgres/`); where SQLite needs JSON text to pass a list into a statement,
//! this engine binds arrays and reads them with `unnest`.

use std::collections::BTreeMap;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection as _, Postgres, Transaction};
use time::OffsetDateTime;

use crate::model::{
    CertificateRecord, Deployment, DeploymentState, Device, DeviceKey, EnrollmentToken, NewDevice,
    NewToken, PackageRecord, PackageStats, Revocation, TokenRefusal,
};
use crate::notify::{NotifyQueue, NotifyRequest};
use crate::rows::{
    certificate_from_row, conflict, deployment_from_row, device_from_row,
    device_with_deployments_from_rows, missing, package_from_row, refusal, stats_from_rows,
    token_from_row,
};
use crate::{Error, Result, Store};

/// Schema migrations, applied in order and recorded in `schema_migrations`. Never edit a
/// released one: add the next. Versions match the SQLite ones.
const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../migrations/postgres/0001_initial.sql"))];

/// Connections per pool. The server's work per request is a round trip or two, and a
/// PostgreSQL server gains nothing from more active connections than about twice its cores;
/// on the 2-core reference machine (server and database side by side) more only queue inside
/// PostgreSQL instead of in the pool.
const POOL_SIZE: u32 = 6;

/// No statement of ours should run long; one that does is stuck behind a lock or a broken
/// plan, and failing it is better than holding a check-in and a connection.
const STATEMENT_TIMEOUT: &str = "30s";

/// Key of the advisory lock used while migrating, so that two processes starting together
/// do not both apply a migration. ("tessera1" in ASCII.)
const MIGRATION_LOCK: i64 = 0x7465_7373_6572_6131;

/// [`Store`] on a PostgreSQL database. Every method is one transaction at the default
/// isolation (read committed); the statements that must not race — token use, result
/// recording, notification — are single conditional `UPDATE`s, which PostgreSQL re-checks
/// against the latest row version.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    // For sessions outside the pool (advisory locks). Holds the password, if any.
    options: Arc<PgConnectOptions>,
    notifications: Arc<NotifyQueue>,
}

// By hand: the connect options may hold a password.
impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

/// A session-level advisory lock, held as long as this value (and its connection) lives;
/// see [`PgStore::try_advisory_lock`].
#[derive(Debug)]
pub struct AdvisoryLock {
    _session: PgConnection,
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/database`, or `postgres:///db?host=/socket/dir`)
    /// without touching the schema. The URL is not logged or put into errors: it may hold a
    /// password.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)?
            .application_name("tessera-server")
            .options([("statement_timeout", STATEMENT_TIMEOUT)]);
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await?;
        Ok(Self {
            pool,
            options: Arc::new(options),
            notifications: Arc::default(),
        })
    }

    /// Takes the session-level advisory lock `key` on a connection of its own, or returns
    /// `None` at once if another session holds it. The lock lasts until the returned value
    /// is dropped, or the connection is lost.
    pub async fn try_advisory_lock(&self, key: i64) -> Result<Option<AdvisoryLock>> {
        let mut session = PgConnection::connect_with(&self.options).await?;
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut session)
            .await?;
        if taken {
            Ok(Some(AdvisoryLock { _session: session }))
        } else {
            session.close().await?;
            Ok(None)
        }
    }

    /// Connects to `url` and brings the schema up to date.
    pub async fn open(url: &str) -> Result<Self> {
        let store = Self::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// The schema version the database is at (0 before any migration).
    pub async fn schema_version(&self) -> Result<i64> {
        let exists: bool =
            sqlx::query_scalar("SELECT to_regclass('schema_migrations') IS NOT NULL")
                .fetch_one(&self.pool)
                .await?;
        if !exists {
            return Ok(0);
        }
        let version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
            .fetch_one(&self.pool)
            .await?;
        Ok(version.unwrap_or(0))
    }

    /// Applies the missing migrations in one transaction (PostgreSQL's DDL is
    /// transactional), under an advisory lock held until it ends.
    pub async fn migrate(&self) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        let current: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
            .fetch_one(&mut *tx)
            .await?;
        let current = current.unwrap_or(0);
        let known = MIGRATIONS.last().map_or(0, |(v, _)| *v);
        if current > known {
            return Err(Error::SchemaTooNew {
                found: current,
                known,
            });
        }
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(version)
                .bind(OffsetDateTime::now_utc().unix_timestamp())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// RFC 7396 JSON merge patch, what SQLite's `json_patch` computes: objects merge key by key,
/// a `null` removes the key, anything else replaces.
fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    let serde_json::Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = serde_json::Value::Object(serde_json::Map::new());
    }
    if let serde_json::Value::Object(map) = target {
        for (key, value) in patch {
            if value.is_null() {
                map.remove(key);
            } else {
                merge_patch(
                    map.entry(key.clone()).or_insert(serde_json::Value::Null),
                    value,
                );
            }
        }
    }
}

async fn record_history(
    tx: &mut Transaction<'_, Postgres>,
    device: DeviceKey,
    package_id: i64,
    state: DeploymentState,
    code: Option<&str>,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO deployment_history (device_id, package_id, state, code, at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(device.0)
    .bind(package_id)
    .bind(state.as_str())
    .bind(code)
    .bind(now.unix_timestamp())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store for PgStore {
    async fn create_device(&self, device: &NewDevice, now: OffsetDateTime) -> Result<DeviceKey> {
        let facts = serde_json::Value::Object(device.facts.clone()).to_string();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO devices (computer_name, serial, ocs_device_id, manifest, facts, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(&device.computer_name)
        .bind(&device.serial)
        .bind(&device.ocs_device_id)
        .bind(&device.manifest)
        .bind(facts)
        .bind(now.unix_timestamp())
        .fetch_one(&self.pool)
        .await
        .map_err(|e| {
            conflict(e, || match (&device.serial, &device.ocs_device_id) {
                (Some(serial), _) => format!("a device with serial {serial} or the same DEVICEID"),
                (None, Some(id)) => format!("a device with DEVICEID {id}"),
                (None, None) => "the device".to_owned(),
            })
        })?;
        Ok(DeviceKey(id))
    }

    async fn device(&self, key: DeviceKey) -> Result<Option<Device>> {
        sqlx::query("SELECT * FROM devices WHERE id = $1")
            .bind(key.0)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(device_from_row)
            .transpose()
    }

    async fn device_by_serial(&self, serial: &str) -> Result<Option<Device>> {
        sqlx::query("SELECT * FROM devices WHERE serial = $1")
            .bind(serial)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(device_from_row)
            .transpose()
    }

    async fn device_by_ocs_id(&self, ocs_device_id: &str) -> Result<Option<Device>> {
        sqlx::query("SELECT * FROM devices WHERE ocs_device_id = $1")
            .bind(ocs_device_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(device_from_row)
            .transpose()
    }

    async fn list_devices(&self) -> Result<Vec<Device>> {
        sqlx::query("SELECT * FROM devices ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(device_from_row)
            .collect()
    }

    async fn record_contact(
        &self,
        key: DeviceKey,
        facts: Option<&serde_json::Map<String, serde_json::Value>>,
        now: OffsetDateTime,
    ) -> Result<()> {
        let Some(patch) = facts else {
            let done = sqlx::query("UPDATE devices SET last_contact = $1 WHERE id = $2")
                .bind(now.unix_timestamp())
                .bind(key.0)
                .execute(&self.pool)
                .await?;
            if done.rows_affected() == 0 {
                return Err(Error::NotFound(format!("device {}", key.0)));
            }
            return Ok(());
        };
        // The merge runs here under the row lock (FOR UPDATE), so that concurrent check-ins
        // cannot lose each other's facts; PostgreSQL has no json_patch, and JSONB's `||`
        // would neither remove nulls nor merge nested objects as SQLite does.
        let mut tx = self.pool.begin().await?;
        let Some(stored): Option<String> =
            sqlx::query_scalar("SELECT facts FROM devices WHERE id = $1 FOR UPDATE")
                .bind(key.0)
                .fetch_optional(&mut *tx)
                .await?
        else {
            return Err(Error::NotFound(format!("device {}", key.0)));
        };
        let mut merged: serde_json::Value =
            serde_json::from_str(&stored).map_err(|e| Error::Corrupt {
                table: "devices",
                column: "facts",
                reason: e.to_string(),
            })?;
        merge_patch(&mut merged, &serde_json::Value::Object(patch.clone()));
        sqlx::query("UPDATE devices SET last_contact = $1, facts = $2 WHERE id = $3")
            .bind(now.unix_timestamp())
            .bind(merged.to_string())
            .bind(key.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_contacts(&self, contacts: &[(DeviceKey, OffsetDateTime)]) -> Result<()> {
        if contacts.is_empty() {
            return Ok(());
        }
        let (ids, times): (Vec<i64>, Vec<i64>) = contacts
            .iter()
            .map(|(key, at)| (key.0, at.unix_timestamp()))
            .unzip();
        // GREATEST: a contact flushed late never moves last_contact backwards; the GROUP BY
        // makes a device named twice take its latest time rather than an arbitrary one.
        sqlx::query(
            "UPDATE devices SET last_contact = GREATEST(COALESCE(devices.last_contact, 0), c.at)
               FROM (SELECT id, MAX(at) AS at FROM unnest($1::bigint[], $2::bigint[]) AS u(id, at)
                      GROUP BY id) AS c
              WHERE devices.id = c.id",
        )
        .bind(ids)
        .bind(times)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn create_token(&self, token: &NewToken, now: OffsetDateTime) -> Result<EnrollmentToken> {
        let row = sqlx::query(
            "INSERT INTO enrollment_tokens (token_hash, label, created_at, expires_at, uses_left)
             VALUES ($1, $2, $3, $4, $5) RETURNING *",
        )
        .bind(&token.token_hash)
        .bind(&token.label)
        .bind(now.unix_timestamp())
        .bind(token.expires_at.map(OffsetDateTime::unix_timestamp))
        .bind(token.uses)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| conflict(e, || "a token with the same hash".to_owned()))?;
        token_from_row(&row)
    }

    async fn consume_token(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<std::result::Result<EnrollmentToken, TokenRefusal>> {
        // One statement: a racing UPDATE waits for the row lock and re-checks the WHERE
        // against the row it left, so two enrollments cannot both take the last use.
        let used = sqlx::query(
            "UPDATE enrollment_tokens
                SET uses_left = CASE WHEN uses_left IS NULL THEN NULL ELSE uses_left - 1 END
              WHERE token_hash = $1 AND revoked_at IS NULL
                AND (expires_at IS NULL OR expires_at > $2)
                AND (uses_left IS NULL OR uses_left > 0)
             RETURNING *",
        )
        .bind(token_hash)
        .bind(now.unix_timestamp())
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = used {
            return Ok(Ok(token_from_row(&row)?));
        }
        let Some(row) = sqlx::query("SELECT * FROM enrollment_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(Err(TokenRefusal::Unknown));
        };
        Ok(Err(refusal(&token_from_row(&row)?, now)))
    }

    async fn list_tokens(&self) -> Result<Vec<EnrollmentToken>> {
        sqlx::query("SELECT * FROM enrollment_tokens ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(token_from_row)
            .collect()
    }

    async fn revoke_token(&self, id: i64, now: OffsetDateTime) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE enrollment_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now.unix_timestamp())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn record_certificate(&self, certificate: &CertificateRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO certificates
                (serial, device_id, computer_name, not_before, not_after, certificate_pem, revoked_at, revocation_reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&certificate.serial)
        .bind(certificate.device.map(|d| d.0))
        .bind(&certificate.computer_name)
        .bind(certificate.not_before.unix_timestamp())
        .bind(certificate.not_after.unix_timestamp())
        .bind(&certificate.certificate_pem)
        .bind(certificate.revoked.as_ref().map(|r| r.at.unix_timestamp()))
        .bind(certificate.revoked.as_ref().map(|r| r.reason.as_str()))
        .execute(&self.pool)
        .await
.map_err(|e| conflict(e, || format!("a certificate with serial {}", certificate.serial)))?;
        Ok(())
    }

    async fn certificate(&self, serial: &str) -> Result<Option<CertificateRecord>> {
        sqlx::query("SELECT * FROM certificates WHERE serial = $1")
            .bind(serial)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(certificate_from_row)
            .transpose()
    }

    async fn revoke_certificate(&self, serial: &str, revocation: &Revocation) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE certificates SET revoked_at = $1, revocation_reason = $2 WHERE serial = $3 AND revoked_at IS NULL",
        )
        .bind(revocation.at.unix_timestamp())
        .bind(&revocation.reason)
        .bind(serial)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    // COLLATE "C": serials sort byte-wise as in SQLite, whatever the database's collation.
    async fn certificates_for(&self, device: DeviceKey) -> Result<Vec<CertificateRecord>> {
        sqlx::query("SELECT * FROM certificates WHERE device_id = $1 ORDER BY serial COLLATE \"C\"")
            .bind(device.0)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(certificate_from_row)
            .collect()
    }

    async fn revoked_certificates(&self) -> Result<Vec<CertificateRecord>> {
        sqlx::query(
            "SELECT * FROM certificates WHERE revoked_at IS NOT NULL
              ORDER BY revoked_at, serial COLLATE \"C\"",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(certificate_from_row)
        .collect()
    }

    async fn put_package(&self, package: &PackageRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO packages (id, name, version, priority, action, fragments, size, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, version = excluded.version,
                priority = excluded.priority, action = excluded.action,
                fragments = excluded.fragments, size = excluded.size",
        )
        .bind(package.id)
        .bind(&package.name)
        .bind(&package.version)
        .bind(i64::from(package.priority))
        .bind(&package.action)
        .bind(i64::from(package.fragments))
        .bind(i64::try_from(package.size).unwrap_or(i64::MAX))
        .bind(package.created_at.unix_timestamp())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn package(&self, id: i64) -> Result<Option<PackageRecord>> {
        sqlx::query("SELECT * FROM packages WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(package_from_row)
            .transpose()
    }

    async fn list_packages(&self) -> Result<Vec<PackageRecord>> {
        sqlx::query("SELECT * FROM packages ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(package_from_row)
            .collect()
    }

    async fn delete_package(&self, id: i64) -> Result<bool> {
        let done = sqlx::query("DELETE FROM packages WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn assign(&self, device: DeviceKey, package_id: i64, now: OffsetDateTime) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO deployments (device_id, package_id, state, code, updated_at)
             VALUES ($1, $2, 'waiting', NULL, $3)
             ON CONFLICT (device_id, package_id) DO UPDATE
                SET state = 'waiting', code = NULL, updated_at = excluded.updated_at",
        )
        .bind(device.0)
        .bind(package_id)
        .bind(now.unix_timestamp())
        .execute(&mut *tx)
        .await
        .map_err(|e| missing(e, || format!("device {} or package {package_id}", device.0)))?;
        record_history(
            &mut tx,
            device,
            package_id,
            DeploymentState::Waiting,
            None,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn mark_notified(
        &self,
        device: DeviceKey,
        package_ids: &[i64],
        now: OffsetDateTime,
    ) -> Result<()> {
        let pool = self.pool.clone();
        self.notifications
            .notify(device, package_ids, now, move |batch| async move {
                let result = write_notified(&pool, &batch).await;
                (batch, result)
            })
            .await
    }

    async fn record_result(
        &self,
        device: DeviceKey,
        package_id: i64,
        state: DeploymentState,
        code: &str,
        now: OffsetDateTime,
    ) -> Result<bool> {
        if !state.is_final() {
            return Ok(false);
        }
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE deployments SET state = $1, code = $2, updated_at = $3
              WHERE device_id = $4 AND package_id = $5 AND state IN ('waiting', 'notified')",
        )
        .bind(state.as_str())
        .bind(code)
        .bind(now.unix_timestamp())
        .bind(device.0)
        .bind(package_id)
        .execute(&mut *tx)
        .await?;
        let accepted = if done.rows_affected() == 1 {
            record_history(&mut tx, device, package_id, state, Some(code), now).await?;
            true
        } else {
            // A retry of the result already recorded is acknowledged again, not refused.
            let same: Option<i32> = sqlx::query_scalar(
                "SELECT 1 FROM deployments WHERE device_id = $1 AND package_id = $2 AND state = $3 AND code = $4",
            )
            .bind(device.0)
            .bind(package_id)
            .bind(state.as_str())
            .bind(code)
            .fetch_optional(&mut *tx)
            .await?;
            same.is_some()
        };
        tx.commit().await?;
        Ok(accepted)
    }

    async fn expire_notified(&self, deadline: OffsetDateTime, now: OffsetDateTime) -> Result<u64> {
        // One statement: the history rows are those the UPDATE changed.
        let done = sqlx::query(
            "WITH expired AS (
                UPDATE deployments SET state = 'error', code = 'ERR_TIMEOUT', updated_at = $1
                 WHERE state = 'notified' AND updated_at < $2
                RETURNING device_id, package_id)
             INSERT INTO deployment_history (device_id, package_id, state, code, at)
             SELECT device_id, package_id, 'error', 'ERR_TIMEOUT', $1 FROM expired
              ORDER BY device_id, package_id",
        )
        .bind(now.unix_timestamp())
        .bind(deadline.unix_timestamp())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn deployments_for(&self, device: DeviceKey) -> Result<Vec<Deployment>> {
        sqlx::query("SELECT * FROM deployments WHERE device_id = $1 ORDER BY package_id")
            .bind(device.0)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| deployment_from_row(row, "updated_at"))
            .collect()
    }

    async fn device_with_deployments(
        &self,
        device: DeviceKey,
    ) -> Result<Option<(Device, Vec<Deployment>)>> {
        let rows = sqlx::query(
            "SELECT devices.*, d.package_id AS pending_package, d.state AS pending_state,
                    d.code AS pending_code, d.updated_at AS pending_at
               FROM devices LEFT JOIN deployments AS d ON d.device_id = devices.id
              WHERE devices.id = $1
              ORDER BY d.package_id",
        )
        .bind(device.0)
        .fetch_all(&self.pool)
        .await?;
        device_with_deployments_from_rows(device, &rows)
    }

    async fn deployment_history(
        &self,
        device: DeviceKey,
        package_id: i64,
    ) -> Result<Vec<Deployment>> {
        sqlx::query(
            "SELECT * FROM deployment_history WHERE device_id = $1 AND package_id = $2 ORDER BY id",
        )
        .bind(device.0)
        .bind(package_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| deployment_from_row(row, "at"))
        .collect()
    }

    async fn package_stats(&self, package_id: i64) -> Result<PackageStats> {
        let rows = sqlx::query(
            "SELECT state, code, COUNT(*) AS n FROM deployments WHERE package_id = $1 GROUP BY state, code",
        )
        .bind(package_id)
        .fetch_all(&self.pool)
        .await?;
        stats_from_rows(&rows)
    }

    async fn deployment_totals(&self) -> Result<PackageStats> {
        let rows =
            sqlx::query("SELECT state, code, COUNT(*) AS n FROM deployments GROUP BY state, code")
                .fetch_all(&self.pool)
                .await?;
        stats_from_rows(&rows)
    }
}

/// Marks every deployment named in `batch` notified — waiting ones, and new ones for packages
/// the device had none of — in one transaction of two statements whatever the batch size.
/// A pair named twice is written once, at its earliest time, so that concurrent check-ins of
/// one device leave one history row.
async fn write_notified(pool: &PgPool, batch: &[NotifyRequest]) -> Result<()> {
    let mut pairs = BTreeMap::new();
    for request in batch {
        for &package in &request.package_ids {
            pairs
                .entry((request.device, package))
                .and_modify(|at: &mut i64| *at = (*at).min(request.at))
                .or_insert(request.at);
        }
    }
    let mut devices = Vec::with_capacity(pairs.len());
    let mut packages = Vec::with_capacity(pairs.len());
    let mut times = Vec::with_capacity(pairs.len());
    for (&(device, package), &at) in &pairs {
        devices.push(device);
        packages.push(package);
        times.push(at);
    }
    const BATCH: &str = "batch AS (
            SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[])
                       AS b(device_id, package_id, at))";
    let mut tx = pool.begin().await?;
    // Packages with no deployment yet for the device (a manifest asks for them) start one,
    // waiting, so that the next statement notifies them like assigned ones; the history
    // records exactly the rows inserted. Pairs whose package or device has gone are skipped
    // rather than failing the whole batch.
    sqlx::query(&format!(
        "WITH {BATCH},
         fresh AS (
            INSERT INTO deployments (device_id, package_id, state, code, updated_at)
            SELECT b.device_id, b.package_id, 'waiting', NULL, b.at FROM batch AS b
             WHERE NOT EXISTS (SELECT 1 FROM deployments AS d
                                WHERE d.device_id = b.device_id AND d.package_id = b.package_id)
               AND EXISTS (SELECT 1 FROM packages AS p WHERE p.id = b.package_id)
               AND EXISTS (SELECT 1 FROM devices AS v WHERE v.id = b.device_id)
            ON CONFLICT (device_id, package_id) DO NOTHING
            RETURNING device_id, package_id, updated_at)
         INSERT INTO deployment_history (device_id, package_id, state, code, at)
         SELECT device_id, package_id, 'waiting', NULL, updated_at FROM fresh
          ORDER BY device_id, package_id"
    ))
    .bind(&devices)
    .bind(&packages)
    .bind(&times)
    .execute(&mut *tx)
    .await?;
    // A statement of its own: the rows just inserted are visible to it, not to the first.
    sqlx::query(&format!(
        "WITH {BATCH},
         notified AS (
            UPDATE deployments AS d SET state = 'notified', updated_at = b.at
              FROM batch AS b
             WHERE d.device_id = b.device_id AND d.package_id = b.package_id
               AND d.state = 'waiting'
            RETURNING d.device_id, d.package_id, d.updated_at)
         INSERT INTO deployment_history (device_id, package_id, state, code, at)
         SELECT device_id, package_id, 'notified', NULL, updated_at FROM notified
          ORDER BY device_id, package_id"
    ))
    .bind(&devices)
    .bind(&packages)
    .bind(&times)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::merge_patch;
    use serde_json::json;

    #[test]
    fn merge_patch_is_rfc_7396() {
        // The RFC's own example (appendix A is case by case; this is section 3's).
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut target, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(target, json!({"a": "z", "c": {"d": "e"}}));
        let mut target = json!({"a": [1]});
        merge_patch(&mut target, &json!({"a": {"b": null, "c": 1}}));
        assert_eq!(target, json!({"a": {"c": 1}}));
        let mut target = json!({"a": 1});
        merge_patch(&mut target, &json!({}));
        assert_eq!(target, json!({"a": 1}));
    }
}
