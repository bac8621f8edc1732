//! The Tessera server's state: devices, enrollment tokens, issued certificates, packages,
//! and where each device stands with each package.
//!
//! One [`Store`] trait, so that the server is written once; [`SqliteStore`] is the embedded
//! default (one file in the data directory, WAL, foreign keys on, versioned migrations).
//! [`PgStore`] implements the same trait on PostgreSQL, with the same schema and semantics.
//!
//! Deployment states move forward only — waiting → notified → success | error — and a
//! notification that gets no result within its timeout becomes an error
//! ([`Store::expire_notified`]), so that nothing stays "notified" forever, a known
//! complaint about OCS Inventory NG.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use tessera_store::{NewDevice, SqliteStore, Store};
//! use time::OffsetDateTime;
//!
//! let dir = tempfile::tempdir()?;
//! let store = SqliteStore::open(&dir.path().join("tessera.db")).await?;
//! let now = OffsetDateTime::now_utc();
//! let key = store
//!     .create_device(
//!         &NewDevice {
//!             computer_name: "mac01".into(),
//!             serial: Some("C02XYZ".into()),
//!             ocs_device_id: None,
//!             manifest: "computers/C02XYZ".into(),
//!             facts: Default::default(),
//!         },
//!         now,
//!     )
//!     .await?;
//! assert_eq!(store.device_by_serial("C02XYZ").await?.map(|d| d.key), Some(key));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod model;
mod notify;
mod postgres;
mod rows;
mod sqlite;

use std::future::Future;

use time::OffsetDateTime;

pub use model::*;
pub use postgres::{AdvisoryLock, PgStore};
pub use sqlite::SqliteStore;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database could not be opened or queried.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The database was written by a newer Tessera.
    #[error(
        "the database is at schema version {found}, newer than this build knows ({known}); \
         run the Tessera version that wrote it, or restore a backup"
    )]
    SchemaTooNew {
        /// Version in the database.
        found: i64,
        /// Newest version this build knows.
        known: i64,
    },
    /// A stored value cannot be read back (edited by hand, or corrupted).
    #[error("corrupt stored value in {table}.{column}: {reason}")]
    Corrupt {
        /// Table.
        table: &'static str,
        /// Column.
        column: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A unique value is already taken.
    #[error("{what} already exists")]
    Conflict {
        /// What collided, e.g. "a device with serial C02XYZ".
        what: String,
    },
    /// A referenced record does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A write batched with other callers' failed; the text is the database's error.
    #[error("batched database write failed: {0}")]
    Batch(String),
}

/// Result alias for store operations.
pub type Result<T> = std::result::Result<T, Error>;

/// The server's state. Every method is one transaction: when it returns `Ok`, the change is
/// durable (the server acknowledges agents only after that).
pub trait Store: Send + Sync {
    /// Creates a device.
    fn create_device(
        &self,
        device: &NewDevice,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<DeviceKey>> + Send;
    /// A device by key.
    fn device(&self, key: DeviceKey) -> impl Future<Output = Result<Option<Device>>> + Send;
    /// A device by hardware serial.
    fn device_by_serial(&self, serial: &str)
    -> impl Future<Output = Result<Option<Device>>> + Send;
    /// A device by OCS DEVICEID.
    fn device_by_ocs_id(
        &self,
        ocs_device_id: &str,
    ) -> impl Future<Output = Result<Option<Device>>> + Send;
    /// Every device, by key.
    fn list_devices(&self) -> impl Future<Output = Result<Vec<Device>>> + Send;
    /// Records a check-in, merging `facts` (when given) over the stored ones.
    fn record_contact(
        &self,
        key: DeviceKey,
        facts: Option<&serde_json::Map<String, serde_json::Value>>,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Records the last check-in time of many devices in one transaction, for callers that
    /// coalesce check-ins in memory. A time older than the stored one leaves it; unknown
    /// devices are skipped.
    fn record_contacts(
        &self,
        contacts: &[(DeviceKey, OffsetDateTime)],
    ) -> impl Future<Output = Result<()>> + Send;

    /// Creates an enrollment token from its hash.
    fn create_token(
        &self,
        token: &NewToken,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<EnrollmentToken>> + Send;
    /// Uses a token once, atomically: two enrollments racing for the last use cannot both
    /// succeed.
    fn consume_token(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<std::result::Result<EnrollmentToken, TokenRefusal>>> + Send;
    /// Every token (hashes are not returned).
    fn list_tokens(&self) -> impl Future<Output = Result<Vec<EnrollmentToken>>> + Send;
    /// Revokes a token; `false` if there is no such token or it was already revoked.
    fn revoke_token(
        &self,
        id: i64,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Records an issued certificate (the CA's ledger).
    fn record_certificate(
        &self,
        certificate: &CertificateRecord,
    ) -> impl Future<Output = Result<()>> + Send;
    /// A certificate by serial (lowercase hex).
    fn certificate(
        &self,
        serial: &str,
    ) -> impl Future<Output = Result<Option<CertificateRecord>>> + Send;
    /// Revokes a certificate; `false` if unknown or already revoked.
    fn revoke_certificate(
        &self,
        serial: &str,
        revocation: &Revocation,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Every certificate issued to a device, by serial.
    fn certificates_for(
        &self,
        device: DeviceKey,
    ) -> impl Future<Output = Result<Vec<CertificateRecord>>> + Send;
    /// Every revoked certificate (what the CRL lists).
    fn revoked_certificates(&self) -> impl Future<Output = Result<Vec<CertificateRecord>>> + Send;

    /// Adds or replaces a package's metadata.
    fn put_package(&self, package: &PackageRecord) -> impl Future<Output = Result<()>> + Send;
    /// A package by ID.
    fn package(&self, id: i64) -> impl Future<Output = Result<Option<PackageRecord>>> + Send;
    /// Every package, by ID.
    fn list_packages(&self) -> impl Future<Output = Result<Vec<PackageRecord>>> + Send;
    /// Deletes a package and its deployments; `false` if unknown.
    fn delete_package(&self, id: i64) -> impl Future<Output = Result<bool>> + Send;

    /// Assigns a package to a device: its deployment (re)starts as waiting.
    fn assign(
        &self,
        device: DeviceKey,
        package_id: i64,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Marks `package_ids` notified for `device`: waiting deployments move to notified, and
    /// a package the device has no deployment of yet gets one, notified (a package its
    /// manifest asks for, offered for the first time; its history shows waiting, then
    /// notified). Deployments with a result are left alone, and unknown packages skipped.
    /// Concurrent calls may be committed together (group commit); each returns once its own
    /// change is durable.
    fn mark_notified(
        &self,
        device: DeviceKey,
        package_ids: &[i64],
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Records an agent's result. Only a waiting or notified deployment takes it; a repeat
    /// of the same final result is accepted (agents retry until acknowledged); anything
    /// else returns `false` and changes nothing.
    fn record_result(
        &self,
        device: DeviceKey,
        package_id: i64,
        state: DeploymentState,
        code: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Turns deployments notified before `deadline` into errors with code `ERR_TIMEOUT`;
    /// returns how many.
    fn expire_notified(
        &self,
        deadline: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<u64>> + Send;
    /// A device's deployments, by package.
    fn deployments_for(
        &self,
        device: DeviceKey,
    ) -> impl Future<Output = Result<Vec<Deployment>>> + Send;
    /// A device and all its deployments, by package, read in one round trip (what a
    /// check-in needs: pending ones are offered, settled ones are not decided again); `None`
    /// if there is no such device.
    fn device_with_deployments(
        &self,
        device: DeviceKey,
    ) -> impl Future<Output = Result<Option<(Device, Vec<Deployment>)>>> + Send;
    /// The history of one device's deployment of one package, oldest first.
    fn deployment_history(
        &self,
        device: DeviceKey,
        package_id: i64,
    ) -> impl Future<Output = Result<Vec<Deployment>>> + Send;
    /// Statistics of one package.
    fn package_stats(&self, package_id: i64) -> impl Future<Output = Result<PackageStats>> + Send;
    /// Statistics over every package (the `/metrics` gauges).
    fn deployment_totals(&self) -> impl Future<Output = Result<PackageStats>> + Send;
}
