//! The embedded engine: one SQLite file in the data directory.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row as _, Sqlite, Transaction};
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

/// Schema migrations, applied in order, each in its own transaction and recorded in
/// `schema_migrations`. Never edit a released one: add the next.
const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../migrations/sqlite/0001_initial.sql"))];

/// [`Store`] on one SQLite file: WAL journal (readers never wait for the writer), foreign
/// keys enforced, a busy timeout instead of "database is locked" errors under load.
///
/// Durability: `synchronous = NORMAL` in WAL mode makes every committed transaction survive
/// a killed process (the WAL is written before commit returns); after a power loss the
/// last transactions may be lost, which agents recover from by re-reporting.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    // One connection writes, so that our own writers queue in the pool instead of meeting
    // SQLITE_BUSY and sleeping in SQLite's busy handler; readers run beside it (WAL).
    writer: SqlitePool,
    reader: SqlitePool,
    notifications: Arc<NotifyQueue>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        let migrating = Self {
            reader: writer.clone(),
            writer,
            notifications: Arc::default(),
        };
        migrating.migrate().await?;
        // Readers open after the migrations, so they never see a half-made schema.
        let reader = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self {
            reader,
            writer: migrating.writer,
            notifications: migrating.notifications,
        })
    }

    /// Opens a private in-memory database (tests, demos).
    pub async fn in_memory() -> Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        // One connection: each in-memory connection would otherwise be its own database.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        let store = Self {
            reader: pool.clone(),
            writer: pool,
            notifications: Arc::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// The schema version the database is at.
    pub async fn schema_version(&self) -> Result<i64> {
        let version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
            .fetch_one(&self.writer)
            .await?;
        Ok(version.unwrap_or(0))
    }

    async fn migrate(&self) -> Result<()> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .execute(&self.writer)
        .await?;
        let current = self.schema_version().await?;
        let known = MIGRATIONS.last().map_or(0, |(v, _)| *v);
        if current > known {
            return Err(Error::SchemaTooNew {
                found: current,
                known,
            });
        }
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
            let mut tx = self.writer.begin().await?;
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)")
                .bind(version)
                .bind(OffsetDateTime::now_utc().unix_timestamp())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Ok(())
    }
}

async fn record_history(
    tx: &mut Transaction<'_, Sqlite>,
    device: DeviceKey,
    package_id: i64,
    state: DeploymentState,
    code: Option<&str>,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO deployment_history (device_id, package_id, state, code, at) VALUES (?, ?, ?, ?, ?)",
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

impl Store for SqliteStore {
    async fn create_device(&self, device: &NewDevice, now: OffsetDateTime) -> Result<DeviceKey> {
        let facts = serde_json::Value::Object(device.facts.clone()).to_string();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO devices (computer_name, serial, ocs_device_id, manifest, facts, created_at)
             VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&device.computer_name)
        .bind(&device.serial)
        .bind(&device.ocs_device_id)
        .bind(&device.manifest)
        .bind(facts)
        .bind(now.unix_timestamp())
        .fetch_one(&self.writer)
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
        sqlx::query("SELECT * FROM devices WHERE id = ?")
            .bind(key.0)
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(device_from_row)
            .transpose()
    }

    async fn device_by_serial(&self, serial: &str) -> Result<Option<Device>> {
        sqlx::query("SELECT * FROM devices WHERE serial = ?")
            .bind(serial)
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(device_from_row)
            .transpose()
    }

    async fn device_by_ocs_id(&self, ocs_device_id: &str) -> Result<Option<Device>> {
        sqlx::query("SELECT * FROM devices WHERE ocs_device_id = ?")
            .bind(ocs_device_id)
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(device_from_row)
            .transpose()
    }

    async fn list_devices(&self) -> Result<Vec<Device>> {
        sqlx::query("SELECT * FROM devices ORDER BY id")
            .fetch_all(&self.reader)
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
        // json_patch merges in SQL, so concurrent check-ins cannot lose each other's facts.
        let patch = facts.map(|f| serde_json::Value::Object(f.clone()).to_string());
        let done = sqlx::query(
            "UPDATE devices SET last_contact = ?,
                    facts = CASE WHEN ? IS NULL THEN facts ELSE json_patch(facts, ?) END
             WHERE id = ?",
        )
        .bind(now.unix_timestamp())
        .bind(&patch)
        .bind(&patch)
        .bind(key.0)
        .execute(&self.writer)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound(format!("device {}", key.0)));
        }
        Ok(())
    }

    async fn create_token(&self, token: &NewToken, now: OffsetDateTime) -> Result<EnrollmentToken> {
        let row = sqlx::query(
            "INSERT INTO enrollment_tokens (token_hash, label, created_at, expires_at, uses_left)
             VALUES (?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(&token.token_hash)
        .bind(&token.label)
        .bind(now.unix_timestamp())
        .bind(token.expires_at.map(OffsetDateTime::unix_timestamp))
        .bind(token.uses)
        .fetch_one(&self.writer)
        .await
        .map_err(|e| conflict(e, || "a token with the same hash".to_owned()))?;
        token_from_row(&row)
    }

    async fn consume_token(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<std::result::Result<EnrollmentToken, TokenRefusal>> {
        // One statement: the check and the decrement cannot be separated by another writer.
        let used = sqlx::query(
            "UPDATE enrollment_tokens
                SET uses_left = CASE WHEN uses_left IS NULL THEN NULL ELSE uses_left - 1 END
              WHERE token_hash = ? AND revoked_at IS NULL
                AND (expires_at IS NULL OR expires_at > ?)
                AND (uses_left IS NULL OR uses_left > 0)
             RETURNING *",
        )
        .bind(token_hash)
        .bind(now.unix_timestamp())
        .fetch_optional(&self.writer)
        .await?;
        if let Some(row) = used {
            return Ok(Ok(token_from_row(&row)?));
        }
        let Some(row) = sqlx::query("SELECT * FROM enrollment_tokens WHERE token_hash = ?")
            .bind(token_hash)
            .fetch_optional(&self.writer)
            .await?
        else {
            return Ok(Err(TokenRefusal::Unknown));
        };
        Ok(Err(refusal(&token_from_row(&row)?, now)))
    }

    async fn list_tokens(&self) -> Result<Vec<EnrollmentToken>> {
        sqlx::query("SELECT * FROM enrollment_tokens ORDER BY id")
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(token_from_row)
            .collect()
    }

    async fn revoke_token(&self, id: i64, now: OffsetDateTime) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE enrollment_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        )
        .bind(now.unix_timestamp())
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn record_certificate(&self, certificate: &CertificateRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO certificates
                (serial, device_id, computer_name, not_before, not_after, certificate_pem, revoked_at, revocation_reason)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&certificate.serial)
        .bind(certificate.device.map(|d| d.0))
        .bind(&certificate.computer_name)
        .bind(certificate.not_before.unix_timestamp())
        .bind(certificate.not_after.unix_timestamp())
        .bind(&certificate.certificate_pem)
        .bind(certificate.revoked.as_ref().map(|r| r.at.unix_timestamp()))
        .bind(certificate.revoked.as_ref().map(|r| r.reason.as_str()))
        .execute(&self.writer)
        .await
        .map_err(|e| conflict(e, || format!("a certificate with serial {}", certificate.serial)))?;
        Ok(())
    }

    async fn certificate(&self, serial: &str) -> Result<Option<CertificateRecord>> {
        sqlx::query("SELECT * FROM certificates WHERE serial = ?")
            .bind(serial)
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(certificate_from_row)
            .transpose()
    }

    async fn revoke_certificate(&self, serial: &str, revocation: &Revocation) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE certificates SET revoked_at = ?, revocation_reason = ? WHERE serial = ? AND revoked_at IS NULL",
        )
        .bind(revocation.at.unix_timestamp())
        .bind(&revocation.reason)
        .bind(serial)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn certificates_for(&self, device: DeviceKey) -> Result<Vec<CertificateRecord>> {
        sqlx::query("SELECT * FROM certificates WHERE device_id = ? ORDER BY serial")
            .bind(device.0)
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(certificate_from_row)
            .collect()
    }

    async fn revoked_certificates(&self) -> Result<Vec<CertificateRecord>> {
        sqlx::query(
            "SELECT * FROM certificates WHERE revoked_at IS NOT NULL ORDER BY revoked_at, serial",
        )
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(certificate_from_row)
        .collect()
    }

    async fn put_package(&self, package: &PackageRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO packages (id, name, version, priority, action, fragments, size, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
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
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn package(&self, id: i64) -> Result<Option<PackageRecord>> {
        sqlx::query("SELECT * FROM packages WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(package_from_row)
            .transpose()
    }

    async fn list_packages(&self) -> Result<Vec<PackageRecord>> {
        sqlx::query("SELECT * FROM packages ORDER BY id")
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(package_from_row)
            .collect()
    }

    async fn delete_package(&self, id: i64) -> Result<bool> {
        let done = sqlx::query("DELETE FROM packages WHERE id = ?")
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn assign(&self, device: DeviceKey, package_id: i64, now: OffsetDateTime) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO deployments (device_id, package_id, state, code, updated_at)
             VALUES (?, ?, 'waiting', NULL, ?)
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
        let writer = self.writer.clone();
        self.notifications
            .notify(device, package_ids, now, move |batch| async move {
                let result = write_notified(&writer, &batch).await;
                (batch, result)
            })
            .await
    }

    async fn record_contacts(&self, contacts: &[(DeviceKey, OffsetDateTime)]) -> Result<()> {
        if contacts.is_empty() {
            return Ok(());
        }
        let pairs = serde_json::Value::from(
            contacts
                .iter()
                .map(|(key, at)| serde_json::json!([key.0, at.unix_timestamp()]))
                .collect::<Vec<_>>(),
        )
        .to_string();
        // MAX: a contact flushed late never moves last_contact backwards.
        sqlx::query(
            "UPDATE devices SET last_contact = MAX(COALESCE(devices.last_contact, 0), j.at)
               FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS at
                       FROM json_each(?)) AS j
              WHERE devices.id = j.id",
        )
        .bind(pairs)
        .execute(&self.writer)
        .await?;
        Ok(())
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
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query(
            "UPDATE deployments SET state = ?, code = ?, updated_at = ?
              WHERE device_id = ? AND package_id = ? AND state IN ('waiting', 'notified')",
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
            let same: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM deployments WHERE device_id = ? AND package_id = ? AND state = ? AND code = ?",
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
        let mut tx = self.writer.begin().await?;
        let expired = sqlx::query(
            "UPDATE deployments SET state = 'error', code = 'ERR_TIMEOUT', updated_at = ?
              WHERE state = 'notified' AND updated_at < ?
             RETURNING device_id, package_id",
        )
        .bind(now.unix_timestamp())
        .bind(deadline.unix_timestamp())
        .fetch_all(&mut *tx)
        .await?;
        for row in &expired {
            let device = DeviceKey(row.try_get("device_id")?);
            let package_id: i64 = row.try_get("package_id")?;
            record_history(
                &mut tx,
                device,
                package_id,
                DeploymentState::Error,
                Some("ERR_TIMEOUT"),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(expired.len() as u64)
    }

    async fn deployments_for(&self, device: DeviceKey) -> Result<Vec<Deployment>> {
        sqlx::query("SELECT * FROM deployments WHERE device_id = ? ORDER BY package_id")
            .bind(device.0)
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(|row| deployment_from_row(row, "updated_at"))
            .collect()
    }

    async fn device_with_deployments(
        &self,
        device: DeviceKey,
    ) -> Result<Option<(Device, Vec<Deployment>)>> {
        // One statement: a check-in's first read costs one worker hand-off, not two.
        let rows = sqlx::query(
            "SELECT devices.*, d.package_id AS pending_package, d.state AS pending_state,
                    d.code AS pending_code, d.updated_at AS pending_at
               FROM devices LEFT JOIN deployments AS d ON d.device_id = devices.id
              WHERE devices.id = ?
              ORDER BY d.package_id",
        )
        .bind(device.0)
        .fetch_all(&self.reader)
        .await?;
        device_with_deployments_from_rows(device, &rows)
    }

    async fn deployment_history(
        &self,
        device: DeviceKey,
        package_id: i64,
    ) -> Result<Vec<Deployment>> {
        sqlx::query(
            "SELECT * FROM deployment_history WHERE device_id = ? AND package_id = ? ORDER BY id",
        )
        .bind(device.0)
        .bind(package_id)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|row| deployment_from_row(row, "at"))
        .collect()
    }

    async fn package_stats(&self, package_id: i64) -> Result<PackageStats> {
        let rows = sqlx::query(
            "SELECT state, code, COUNT(*) AS n FROM deployments WHERE package_id = ? GROUP BY state, code",
        )
        .bind(package_id)
        .fetch_all(&self.reader)
        .await?;
        stats_from_rows(&rows)
    }

    async fn deployment_totals(&self) -> Result<PackageStats> {
        let rows =
            sqlx::query("SELECT state, code, COUNT(*) AS n FROM deployments GROUP BY state, code")
                .fetch_all(&self.reader)
                .await?;
        stats_from_rows(&rows)
    }
}

/// Marks every deployment named in `batch` notified — waiting ones, and new ones for packages
/// the device had none of — in one transaction of two statements whatever the batch size:
/// the history rows, computed from the states before, then one upsert. A pair named twice
/// is written once, at its earliest time, so that concurrent check-ins of one device leave
/// one history row.
async fn write_notified(writer: &SqlitePool, batch: &[NotifyRequest]) -> Result<()> {
    let mut pairs = BTreeMap::new();
    for request in batch {
        for &package in &request.package_ids {
            pairs
                .entry((request.device, package))
                .and_modify(|at: &mut i64| *at = (*at).min(request.at))
                .or_insert(request.at);
        }
    }
    let triples = serde_json::Value::from(
        pairs
            .iter()
            .map(|(&(device, package), &at)| serde_json::json!([device, package, at]))
            .collect::<Vec<_>>(),
    )
    .to_string();
    let mut tx = writer.begin().await?;
    // History first, while the states are still those before: a waiting deployment gets
    // `notified`; a package without a deployment (a manifest asks for it) gets `waiting`
    // then `notified`, as if assigned and then notified. Pairs whose package or device has
    // gone are skipped rather than failing the batch; results are left alone. The LEFT JOIN
    // keeps the batch as the outer loop (one primary-key probe per pair): otherwise the
    // planner may scan every waiting deployment per batch entry — measured at 100 s for a
    // batch of 640 among 200,000 rows.
    sqlx::query(
        "WITH batch AS MATERIALIZED (
                SELECT json_extract(value, '$[0]') AS device_id,
                       json_extract(value, '$[1]') AS package_id,
                       json_extract(value, '$[2]') AS at
                  FROM json_each(?)),
              todo AS MATERIALIZED (
                SELECT b.device_id, b.package_id, b.at, d.state AS before
                  FROM batch AS b LEFT JOIN deployments AS d
                    ON d.device_id = b.device_id AND d.package_id = b.package_id
                 WHERE d.state = 'waiting'
                    OR (d.state IS NULL
                        AND EXISTS (SELECT 1 FROM packages AS p WHERE p.id = b.package_id)
                        AND EXISTS (SELECT 1 FROM devices AS v WHERE v.id = b.device_id)))
         INSERT INTO deployment_history (device_id, package_id, state, code, at)
         SELECT todo.device_id, todo.package_id, step.state, NULL, todo.at
           FROM todo CROSS JOIN (SELECT 1 AS n, 'waiting' AS state
                                 UNION ALL SELECT 2, 'notified') AS step
          WHERE step.n = 2 OR todo.before IS NULL
          ORDER BY todo.device_id, todo.package_id, step.n",
    )
    .bind(&triples)
    .execute(&mut *tx)
    .await?;
    // Then the states: new deployments start notified, waiting ones become notified, and
    // the conflict clause's WHERE leaves notified ones and results as they are.
    sqlx::query(
        "INSERT INTO deployments (device_id, package_id, state, code, updated_at)
         SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), 'notified', NULL,
                json_extract(value, '$[2]')
           FROM json_each(?)
          WHERE EXISTS (SELECT 1 FROM packages AS p WHERE p.id = json_extract(value, '$[1]'))
            AND EXISTS (SELECT 1 FROM devices AS v WHERE v.id = json_extract(value, '$[0]'))
             ON CONFLICT (device_id, package_id) DO UPDATE
                SET state = 'notified', updated_at = excluded.updated_at
              WHERE deployments.state = 'waiting'",
    )
    .bind(&triples)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}
