//! What both engines share: rows → records, and database errors → [`Error`]s.
//!
//! Both schemas store the same columns with the same meaning (integers as 64-bit, times as
//! Unix seconds, facts as JSON text), so one conversion serves both; [`Columns`] is the
//! small part of a row each engine provides.

use sqlx::Row as _;
use time::OffsetDateTime;

use crate::model::{
    CertificateRecord, Deployment, DeploymentState, Device, DeviceKey, EnrollmentToken,
    PackageRecord, PackageStats, Revocation, TokenRefusal,
};
use crate::{Error, Result};

/// Typed column access of one engine's rows.
pub(crate) trait Columns {
    fn int(&self, column: &str) -> Result<i64>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>>;
    fn text(&self, column: &str) -> Result<String>;
    fn opt_text(&self, column: &str) -> Result<Option<String>>;
}

// A macro rather than a blanket impl over `sqlx::Row`: the decode bounds of a generic impl
// are longer than the two impls they would replace.
macro_rules! columns_for {
    ($row:ty) => {
        impl Columns for $row {
            fn int(&self, column: &str) -> Result<i64> {
                Ok(self.try_get(column)?)
            }
            fn opt_int(&self, column: &str) -> Result<Option<i64>> {
                Ok(self.try_get(column)?)
            }
            fn text(&self, column: &str) -> Result<String> {
                Ok(self.try_get(column)?)
            }
            fn opt_text(&self, column: &str) -> Result<Option<String>> {
                Ok(self.try_get(column)?)
            }
        }
    };
}
columns_for!(sqlx::sqlite::SqliteRow);
columns_for!(sqlx::postgres::PgRow);

pub(crate) fn timestamp(
    table: &'static str,
    column: &'static str,
    seconds: i64,
) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(seconds).map_err(|e| Error::Corrupt {
        table,
        column,
        reason: e.to_string(),
    })
}

pub(crate) fn optional_timestamp(
    table: &'static str,
    column: &'static str,
    seconds: Option<i64>,
) -> Result<Option<OffsetDateTime>> {
    seconds.map(|s| timestamp(table, column, s)).transpose()
}

pub(crate) fn device_from_row(row: &impl Columns) -> Result<Device> {
    let facts = row.text("facts")?;
    let facts = serde_json::from_str(&facts).map_err(|e| Error::Corrupt {
        table: "devices",
        column: "facts",
        reason: e.to_string(),
    })?;
    Ok(Device {
        key: DeviceKey(row.int("id")?),
        computer_name: row.text("computer_name")?,
        serial: row.opt_text("serial")?,
        ocs_device_id: row.opt_text("ocs_device_id")?,
        manifest: row.text("manifest")?,
        facts,
        created_at: timestamp("devices", "created_at", row.int("created_at")?)?,
        last_contact: optional_timestamp("devices", "last_contact", row.opt_int("last_contact")?)?,
    })
}

pub(crate) fn token_from_row(row: &impl Columns) -> Result<EnrollmentToken> {
    const T: &str = "enrollment_tokens";
    Ok(EnrollmentToken {
        id: row.int("id")?,
        label: row.text("label")?,
        created_at: timestamp(T, "created_at", row.int("created_at")?)?,
        expires_at: optional_timestamp(T, "expires_at", row.opt_int("expires_at")?)?,
        uses_left: row.opt_int("uses_left")?,
        revoked_at: optional_timestamp(T, "revoked_at", row.opt_int("revoked_at")?)?,
    })
}

/// Why a token that the consuming `UPDATE` did not match was refused.
pub(crate) fn refusal(token: &EnrollmentToken, now: OffsetDateTime) -> TokenRefusal {
    if token.revoked_at.is_some() {
        TokenRefusal::Revoked
    } else if token.expires_at.is_some_and(|at| at <= now) {
        TokenRefusal::Expired
    } else {
        TokenRefusal::UsedUp
    }
}

pub(crate) fn certificate_from_row(row: &impl Columns) -> Result<CertificateRecord> {
    const T: &str = "certificates";
    let revoked_at = optional_timestamp(T, "revoked_at", row.opt_int("revoked_at")?)?;
    let reason = row.opt_text("revocation_reason")?;
    Ok(CertificateRecord {
        serial: row.text("serial")?,
        device: row.opt_int("device_id")?.map(DeviceKey),
        computer_name: row.text("computer_name")?,
        not_before: timestamp(T, "not_before", row.int("not_before")?)?,
        not_after: timestamp(T, "not_after", row.int("not_after")?)?,
        certificate_pem: row.text("certificate_pem")?,
        revoked: revoked_at.map(|at| Revocation {
            at,
            reason: reason.unwrap_or_default(),
        }),
    })
}

pub(crate) fn package_from_row(row: &impl Columns) -> Result<PackageRecord> {
    let corrupt = |column: &'static str, reason: String| Error::Corrupt {
        table: "packages",
        column,
        reason,
    };
    Ok(PackageRecord {
        id: row.int("id")?,
        name: row.text("name")?,
        version: row.text("version")?,
        priority: u8::try_from(row.int("priority")?)
            .map_err(|e| corrupt("priority", e.to_string()))?,
        action: row.text("action")?,
        fragments: u32::try_from(row.int("fragments")?)
            .map_err(|e| corrupt("fragments", e.to_string()))?,
        size: u64::try_from(row.int("size")?).map_err(|e| corrupt("size", e.to_string()))?,
        created_at: timestamp("packages", "created_at", row.int("created_at")?)?,
    })
}

pub(crate) fn deployment_state(state: &str) -> Result<DeploymentState> {
    DeploymentState::parse(state).ok_or_else(|| Error::Corrupt {
        table: "deployments",
        column: "state",
        reason: format!("unknown state {state:?}"),
    })
}

pub(crate) fn deployment_from_row(
    row: &impl Columns,
    time_column: &'static str,
) -> Result<Deployment> {
    Ok(Deployment {
        device: DeviceKey(row.int("device_id")?),
        package_id: row.int("package_id")?,
        state: deployment_state(&row.text("state")?)?,
        code: row.opt_text("code")?,
        updated_at: timestamp("deployments", time_column, row.int(time_column)?)?,
    })
}

/// The device and its deployments from `device_with_deployments`' join (one row per
/// deployment, or one row with `pending_package` NULL when it has none); `None` if no rows.
pub(crate) fn device_with_deployments_from_rows(
    device: DeviceKey,
    rows: &[impl Columns],
) -> Result<Option<(Device, Vec<Deployment>)>> {
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let record = device_from_row(first)?;
    let mut deployments = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(package_id) = row.opt_int("pending_package")? else {
            continue;
        };
        deployments.push(Deployment {
            device,
            package_id,
            state: deployment_state(&row.text("pending_state")?)?,
            code: row.opt_text("pending_code")?,
            updated_at: timestamp("deployments", "updated_at", row.int("pending_at")?)?,
        });
    }
    Ok(Some((record, deployments)))
}

pub(crate) fn stats_from_rows(rows: &[impl Columns]) -> Result<PackageStats> {
    let mut stats = PackageStats::default();
    for row in rows {
        let state = row.text("state")?;
        let code = row.opt_text("code")?;
        let n = u64::try_from(row.int("n")?).unwrap_or(0);
        match deployment_state(&state)? {
            DeploymentState::Waiting => stats.waiting += n,
            DeploymentState::Notified => stats.notified += n,
            DeploymentState::Success => stats.success += n,
            DeploymentState::Error => stats.error += n,
        }
        if let Some(code) = code {
            *stats.by_code.entry(code).or_default() += n;
        }
    }
    Ok(stats)
}

/// A unique violation becomes [`Error::Conflict`] naming `what`.
pub(crate) fn conflict(error: sqlx::Error, what: impl FnOnce() -> String) -> Error {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => Error::Conflict { what: what() },
        _ => Error::Database(error),
    }
}

/// A foreign-key violation becomes [`Error::NotFound`] naming `what`.
pub(crate) fn missing(error: sqlx::Error, what: impl FnOnce() -> String) -> Error {
    match &error {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => Error::NotFound(what()),
        _ => Error::Database(error),
    }
}
