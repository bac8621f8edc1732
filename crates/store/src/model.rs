//! The records the server keeps, independent of the engine that stores them.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A device's key in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeviceKey(pub i64);

/// A device as the server knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    /// Store key.
    pub key: DeviceKey,
    /// The computer name (certificate CN/SAN, or the OCS agent's host name).
    pub computer_name: String,
    /// Hardware serial, when known.
    pub serial: Option<String>,
    /// The OCS DEVICEID, for agents that speak the OCS protocol.
    pub ocs_device_id: Option<String>,
    /// The device's primary manifest, e.g. `computers/C02XYZ` or `site_default`.
    pub manifest: String,
    /// Facts from enrollment and the latest inventory (manifest conditions read them).
    pub facts: serde_json::Map<String, serde_json::Value>,
    /// When the server first saw it.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last check-in.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_contact: Option<OffsetDateTime>,
}

/// What is needed to create a device.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDevice {
    /// See [`Device::computer_name`].
    pub computer_name: String,
    /// See [`Device::serial`]; unique when present.
    pub serial: Option<String>,
    /// See [`Device::ocs_device_id`]; unique when present.
    pub ocs_device_id: Option<String>,
    /// See [`Device::manifest`].
    pub manifest: String,
    /// See [`Device::facts`].
    pub facts: serde_json::Map<String, serde_json::Value>,
}

/// An enrollment token as stored: only its hash, never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentToken {
    /// Store key.
    pub id: i64,
    /// What the admin called it.
    pub label: String,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it stops working; `None` never.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Enrollments it still allows; `None` unlimited.
    pub uses_left: Option<i64>,
    /// When it was revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

/// What is needed to create a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    /// SHA-256 of the token, hex. The server hashes; the store never sees the token.
    pub token_hash: String,
    /// See [`EnrollmentToken::label`].
    pub label: String,
    /// See [`EnrollmentToken::expires_at`].
    pub expires_at: Option<OffsetDateTime>,
    /// See [`EnrollmentToken::uses_left`]; `Some(1)` is a single-use token.
    pub uses: Option<i64>,
}

/// Why a token cannot be used. Deliberately coarse towards the device: the server logs
/// the detail but tells the device only that the token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenRefusal {
    /// No token has this hash.
    Unknown,
    /// Past its expiry.
    Expired,
    /// All uses consumed.
    UsedUp,
    /// Revoked by an admin.
    Revoked,
}

/// A certificate the CA issued, as the ledger records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRecord {
    /// Serial number, lowercase hex without separators.
    pub serial: String,
    /// The device it belongs to, when it is a device certificate.
    pub device: Option<DeviceKey>,
    /// The name in its CN and SAN.
    pub computer_name: String,
    /// Start of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// The certificate, PEM.
    pub certificate_pem: String,
    /// Revocation time and reason, when revoked.
    pub revoked: Option<Revocation>,
}

/// When and why a certificate was revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// RFC 5280 reason name, e.g. `keyCompromise`.
    pub reason: String,
}

/// A package's metadata (the payload itself lives in the repository directory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageRecord {
    /// OCS package ID (FILEID).
    pub id: i64,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Priority 0–10.
    pub priority: u8,
    /// Action, e.g. `EXECUTE`, `LAUNCH`, `STORE`.
    pub action: String,
    /// Number of fragments.
    pub fragments: u32,
    /// Archive size in bytes.
    pub size: u64,
    /// When it was added.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Where a device stands with one package. Transitions only go forward —
/// waiting → notified → success | error — except that re-assigning resets to waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentState {
    /// Assigned; not yet offered to the device.
    Waiting,
    /// Offered at a check-in; no result yet.
    Notified,
    /// The device reported a `SUCCESS*` code.
    Success,
    /// The device reported an error, or the notification timed out.
    Error,
}

impl DeploymentState {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Notified => "notified",
            Self::Success => "success",
            Self::Error => "error",
        }
    }

    /// Parses a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "waiting" => Self::Waiting,
            "notified" => Self::Notified,
            "success" => Self::Success,
            "error" => Self::Error,
            _ => return None,
        })
    }

    /// Whether a result has ended this deployment.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Success | Self::Error)
    }
}

/// One device's deployment of one package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// The device.
    pub device: DeviceKey,
    /// The package.
    pub package_id: i64,
    /// Where it stands.
    pub state: DeploymentState,
    /// The agent's code (`SUCCESS_3`, `ERR_BAD_DIGEST`, …) for final states.
    pub code: Option<String>,
    /// When the state last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Deployment statistics of one package.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageStats {
    /// Assigned, not yet offered.
    pub waiting: u64,
    /// Offered, no result yet.
    pub notified: u64,
    /// Succeeded.
    pub success: u64,
    /// Failed.
    pub error: u64,
    /// Final states by agent code, e.g. `{"SUCCESS": 10, "ERR_BAD_DIGEST": 1}`.
    pub by_code: std::collections::BTreeMap<String, u64>,
}
