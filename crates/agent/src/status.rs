//! What the agent knows about itself, for `tessera-agent status [--json]`.

use serde::Serialize;
use tessera_package::PackageInfo;
use tessera_schedule::{Phase, ScheduleConfig};

use crate::config::AgentConfig;
use crate::error::Result;
use crate::journal::{CheckInRecord, DataDir};

/// The agent's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// Whether the device is enrolled.
    pub enrolled: bool,
    /// The configured servers, in the order they are tried.
    pub servers: Vec<String>,
    /// The OCS DEVICEID.
    pub device_id: Option<String>,
    /// The computer manifest.
    pub manifest: Option<String>,
    /// When it enrolled.
    pub enrolled_at: Option<String>,
    /// The last check-in.
    pub last_check_in: Option<CheckInRecord>,
    /// Packages in progress.
    pub packages: Vec<PackageStatus>,
    /// Packages done (IDs).
    pub installed: Vec<u64>,
}

/// One package in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageStatus {
    /// Its ID.
    pub id: u64,
    /// `TESSERA_NAME` when the package has one.
    pub name: Option<String>,
    /// `downloading`, `executing` or `reporting`.
    pub phase: &'static str,
    /// Fragments verified.
    pub fragments_verified: u32,
    /// Fragments in all.
    pub fragments: u32,
    /// The result waiting to be delivered.
    pub result: Option<String>,
}

/// Reads the agent's state without disturbing a running agent.
pub fn status(config: &AgentConfig) -> Result<Status> {
    let data = DataDir::read_only(&config.data_dir);
    let state = data.agent_state()?;
    let scheduler = data.scheduler(ScheduleConfig::default())?;
    let packages = scheduler
        .packages()
        .map(|(id, package)| {
            let dir = data.package(id);
            let name = std::fs::read(dir.info())
                .ok()
                .and_then(|bytes| PackageInfo::parse(&bytes).ok())
                .and_then(|info| info.label.map(|l| l.name));
            let (phase, result) = match package.phase {
                Phase::Downloading { .. } => ("downloading", None),
                Phase::Executing => ("executing", None),
                Phase::Reporting { result } => ("reporting", Some(result.to_string())),
            };
            let verified = match package.phase {
                Phase::Downloading { verified } => verified,
                _ => package.fragments,
            };
            PackageStatus {
                id: id.0,
                name,
                phase,
                fragments_verified: verified,
                fragments: package.fragments,
                result,
            }
        })
        .collect();
    Ok(Status {
        enrolled: state.is_some(),
        servers: config.servers.clone(),
        device_id: state.as_ref().map(|s| s.device_id.clone()),
        manifest: state.as_ref().map(|s| s.manifest.clone()),
        enrolled_at: state.as_ref().map(|s| s.enrolled_at.clone()),
        last_check_in: state.as_ref().and_then(|s| s.last_check_in.clone()),
        packages,
        installed: state.map(|s| s.history).unwrap_or_default(),
    })
}
