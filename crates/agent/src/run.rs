//! The agent's work loop: check in, let the schedule decide, fetch, act, report — with
//! every step journaled before it is acknowledged (see [`crate::journal`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::num::NonZeroU32;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tessera_package::{PackageInfo, Protocol, verify_fragment};
use tessera_protocol::agent::{InventoryFacts, download_result_xml, inventory_xml, prolog_xml};
use tessera_protocol::ocs::{DeviceId, DownloadConf, PackOffer, PrologReply, PrologResponse};
use tessera_schedule::{
    Action, FetchOutcome, PackageId, PackageSpec, Phase, Priority, ReportOutcome, ResultCode,
    ScheduleConfig, Scheduler, Timestamp,
};

use crate::action::{self, ActionPlan};
use crate::client::ServerClient;
use crate::config::{AgentConfig, ScheduleOverrides};
use crate::error::{AgentError, Result};
use crate::facts::{self, Device};
use crate::identity;
use crate::journal::{AgentState, CheckInRecord, DataDir};

/// How `run` behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunOptions {
    /// One check-in, then work until nothing is left to do, then return.
    pub once: bool,
    /// Legacy mode: talk to an unmodified OCS Inventory server, which knows no client
    /// certificates (also set by `ocs_compat` in the configuration).
    pub ocs_compat: bool,
}

/// What the agent tells whoever watches it (a progress bar, the log).
pub trait Progress: Send {
    /// A package joined the schedule.
    fn package(&mut self, _id: u64, _fragments: u32, _bytes: Option<u64>) {}
    /// Bytes of a package downloaded so far (fragments before `fragment` plus this one's).
    fn downloaded(&mut self, _id: u64, _bytes: u64) {}
    /// A fragment was verified.
    fn fragment_verified(&mut self, _id: u64, _fragment: u32, _of: u32) {}
    /// The action is running.
    fn acting(&mut self, _id: u64) {}
    /// The server has the result.
    fn finished(&mut self, _id: u64, _result: &str) {}
}

/// A [`Progress`] that only logs.
#[derive(Debug, Default)]
pub struct LogProgress;

impl Progress for LogProgress {}

/// What a `run` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RunSummary {
    /// Check-ins that reached a server.
    pub check_ins: u32,
    /// Results the server acknowledged: package ID and code.
    pub results: Vec<(u64, String)>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Runs the agent until `shutdown` completes (or, with `once`, until nothing is left).
pub async fn run(
    config: &AgentConfig,
    options: RunOptions,
    progress: &mut dyn Progress,
    shutdown: impl Future<Output = ()>,
) -> Result<RunSummary> {
    let data = DataDir::open(&config.data_dir)?;
    let legacy = options.ocs_compat || config.ocs_compat;
    let (state, tls) = if legacy {
        legacy_identity(config, &data)?
    } else {
        let state = data.agent_state()?.ok_or(AgentError::NotEnrolled)?;
        let keystore = identity::open_keystore(config)?;
        (state, identity::device_tls(&*keystore)?)
    };
    let client = ServerClient::new(config.servers.clone(), tls)?;
    let device_id = DeviceId::parse(&state.device_id).map_err(|e| AgentError::State {
        path: data.root().join("agent.json"),
        reason: e.to_string(),
    })?;
    let scheduler = data.scheduler(schedule_config(&DownloadConf::default(), &config.schedule))?;
    let mut agent = Agent {
        device: facts::detect(&config.device)?,
        config,
        data,
        state,
        device_id,
        client,
        scheduler,
        offers: BTreeMap::new(),
        infos: BTreeMap::new(),
        next_check_in: 0,
        failures: 0,
        summary: RunSummary::default(),
        renews: !legacy,
    };
    agent.recover(progress).await?;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => {
                tracing::info!("stopping; the journal resumes where this left off");
                break;
            }
            more = agent.step(options, progress) => {
                if !more? {
                    break;
                }
            }
        }
    }
    Ok(agent.summary)
}

/// Legacy mode: no certificate to present, the servers trusted through `ca_file` (or the
/// anchors of an earlier enrollment), and a DEVICEID made on the first run and kept.
fn legacy_identity(
    config: &AgentConfig,
    data: &DataDir,
) -> Result<(AgentState, rustls::ClientConfig)> {
    tracing::warn!(
        "OCS compatibility mode: no client certificate; the server cannot authenticate this device"
    );
    let anchors = match &config.ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| AgentError::io("reading", path, e))?;
            tessera_keystore::CertificateDer::all_from_pem(&pem)?
        }
        None => identity::open_keystore(config)?.trust_anchors()?,
    };
    let anchors: Vec<Vec<u8>> = anchors.iter().map(|a| a.as_der().to_vec()).collect();
    let tls = crate::tls::anonymous(&crate::tls::ServerTrust::Anchors(anchors))?;
    let state = if let Some(state) = data.agent_state()? {
        state
    } else {
        let device = facts::detect(&config.device)?;
        let state = AgentState {
            device_id: crate::enroll::device_id(
                &device.facts.hostname,
                time::OffsetDateTime::now_utc(),
            ),
            server: config.servers.first().cloned().unwrap_or_default(),
            manifest: String::new(),
            groups: Vec::new(),
            enrolled_at: String::new(),
            last_check_in: None,
            prolog_freq_hours: 12,
            history: Vec::new(),
        };
        data.save_agent_state(&state)?;
        state
    };
    Ok((state, tls))
}

struct Agent<'a> {
    config: &'a AgentConfig,
    data: DataDir,
    state: AgentState,
    device_id: DeviceId,
    device: Device,
    client: ServerClient,
    scheduler: Scheduler,
    offers: BTreeMap<PackageId, PackOffer>,
    infos: BTreeMap<PackageId, PackageInfo>,
    next_check_in: u64,
    /// Consecutive failed steps: the agent waits longer after each (at most 5 s), so
    /// that zero latencies and an unreachable server never make a busy loop.
    failures: u32,
    summary: RunSummary,
    /// Whether the device certificate is renewed when due (not in legacy mode, which has
    /// none).
    renews: bool,
}

impl Agent<'_> {
    /// One step; `false` when a `--once` run is done.
    async fn step(&mut self, options: RunOptions, progress: &mut dyn Progress) -> Result<bool> {
        let now = unix_now();
        if now >= self.next_check_in {
            match self.check_in(progress).await {
                Ok(()) => self.next_check_in = now + self.check_in_interval(),
                Err(error) if options.once && self.summary.check_ins == 0 => return Err(error),
                Err(error) => {
                    tracing::warn!(%error, "check-in failed; retrying later");
                    self.next_check_in = now + self.check_in_interval().min(300);
                }
            }
        }
        let action = self.scheduler.next(Timestamp(now));
        match action {
            Action::Fetch { package, fragment } => {
                let outcome = self.fetch(package, fragment, progress).await;
                self.scheduler.fetched(outcome)?;
                self.data.save_scheduler(&self.scheduler)?;
                self.pace(outcome == FetchOutcome::Verified).await;
            }
            Action::Execute { package } => {
                // Saved before anything runs: a crash from here on is resumed from the
                // action record, never by running the action again.
                self.data.save_scheduler(&self.scheduler)?;
                progress.acting(package.0);
                let code = self.execute(package).await?;
                self.scheduler.executed(code)?;
                self.data.save_scheduler(&self.scheduler)?;
            }
            Action::Report { package, result } => {
                let delivered = self.report(package, result, progress).await?;
                self.scheduler.reported(if delivered {
                    ReportOutcome::Delivered
                } else {
                    ReportOutcome::Failed
                })?;
                self.data.save_scheduler(&self.scheduler)?;
                if delivered {
                    self.data.package(package).remove()?;
                }
                self.pace(delivered).await;
            }
            Action::Wait { until } => {
                let wake = until.0.min(self.next_check_in);
                sleep_until(wake).await;
            }
            Action::Idle => {
                if options.once {
                    return Ok(false);
                }
                sleep_until(self.next_check_in).await;
            }
        }
        Ok(true)
    }

    fn check_in_interval(&self) -> u64 {
        match self.config.schedule.check_in_minutes {
            Some(minutes) => u64::from(minutes.max(1)) * 60,
            None => u64::from(self.state.prolog_freq_hours.max(1)) * 3600,
        }
    }

    async fn pace(&mut self, ok: bool) {
        if ok {
            self.failures = 0;
            return;
        }
        self.failures = self.failures.saturating_add(1);
        // The schedule's own backoff counts cycles, which take no time when the server
        // sends zero latencies; this floor (0.1 s more per failure, at most 5 s) is what
        // keeps an unreachable server from being hammered.
        let millis = 100 * u64::from(self.failures.min(50));
        tokio::time::sleep(Duration::from_millis(millis)).await;
    }

    /// After a crash: an action handed out but not recorded as executed is resumed from its
    /// record (waited for, read back, or started if it provably never ran).
    async fn recover(&mut self, progress: &mut dyn Progress) -> Result<()> {
        let executing: Vec<PackageId> = self
            .scheduler
            .packages()
            .filter(|(_, state)| state.phase == Phase::Executing)
            .map(|(id, _)| id)
            .collect();
        for package in executing {
            tracing::info!(
                package = package.0,
                "resuming an action interrupted by a restart"
            );
            progress.acting(package.0);
            let code = match self.load_info(package) {
                Some(info) => action::resume(&self.plan(info)).await?,
                None => ResultCode::ErrExecuteInterrupted,
            };
            self.scheduler.executed(code)?;
            self.data.save_scheduler(&self.scheduler)?;
        }
        Ok(())
    }

    fn plan(&self, info: PackageInfo) -> ActionPlan {
        let minutes = u64::from(self.scheduler.config().execution_timeout.max(1));
        ActionPlan {
            package: self.data.package(PackageId(info.id.get())),
            info,
            install_path: self.config.data_dir.clone(),
            timeout: Duration::from_secs(minutes * 60),
        }
    }

    fn load_info(&mut self, id: PackageId) -> Option<PackageInfo> {
        if let Some(info) = self.infos.get(&id) {
            return Some(info.clone());
        }
        let bytes = std::fs::read(self.data.package(id).info()).ok()?;
        let info = PackageInfo::parse(&bytes).ok()?;
        self.infos.insert(id, info.clone());
        Some(info)
    }

    async fn check_in(&mut self, progress: &mut dyn Progress) -> Result<()> {
        let now = unix_now();
        let result = self.exchange(progress).await;
        self.state.last_check_in = Some(CheckInRecord {
            at: now,
            server: self.client.current_server().to_owned(),
            error: result.as_ref().err().map(ToString::to_string),
            offered: self.offers.len(),
        });
        self.data.save_agent_state(&self.state)?;
        if result.is_ok() {
            self.summary.check_ins += 1;
            if self.renews {
                // Never fatal: the current certificate still works, and the next
                // check-in tries again.
                if let Err(error) = self.renew_if_due().await {
                    tracing::warn!(%error, "renewing the device certificate failed; retrying at the next check-in");
                }
            }
        }
        result
    }

    /// Renews the device certificate when it expires within `renew_days`, and from then on
    /// presents the new one.
    async fn renew_if_due(&mut self) -> Result<()> {
        let keystore = identity::open_keystore(self.config)?;
        let current = keystore.identity()?.ok_or(AgentError::NotEnrolled)?;
        let now = time::OffsetDateTime::now_utc();
        let Some(expires) = crate::enroll::renewal_due(&current.leaf, self.config.renew_days, now)?
        else {
            return Ok(());
        };
        tracing::info!(%expires, renew_days = self.config.renew_days, "the device certificate is due for renewal");
        let renewed = crate::enroll::renew_with(self.config, &*keystore, &mut self.state).await?;
        self.data.save_agent_state(&self.state)?;
        self.client = ServerClient::new(
            self.config.servers.clone(),
            identity::device_tls(&*keystore)?,
        )?;
        tracing::info!(certificate = %renewed.certificate_sha256, "now presenting the renewed certificate");
        Ok(())
    }

    async fn exchange(&mut self, progress: &mut dyn Progress) -> Result<()> {
        let reply = self.client.ocs(&prolog_xml(&self.device_id)).await?;
        let reply = PrologReply::from_xml(&reply)
            .map_err(|e| AgentError::Server(format!("unreadable PROLOG reply: {e}")))?;
        tracing::info!(server = self.client.current_server(), "checked in");
        self.state.prolog_freq_hours = reply.prolog_freq_hours.max(1);
        if reply.response == PrologResponse::Send {
            self.send_inventory().await?;
        }
        let Some((conf, offers)) = reply.download else {
            return Ok(());
        };
        let config = schedule_config(&conf, &self.config.schedule);
        if config != *self.scheduler.config() {
            self.scheduler.set_config(config);
        }
        let mut specs = Vec::new();
        self.offers.clear();
        for offer in offers {
            let id = PackageId(offer.id.0);
            if self.state.history.contains(&id.0) && !offer.force {
                self.send_result(id, "SUCCESS_ALREADY_SETUP").await;
                continue;
            }
            match self.info_for(&offer).await {
                Ok(info) => {
                    let priority = Priority(u32::from(info.priority.get()));
                    let size = info.integrity.as_ref().map(|i| i.plan().payload_size());
                    progress.package(id.0, info.fragment_count, size);
                    specs.push(PackageSpec {
                        id,
                        priority,
                        fragments: info.fragment_count,
                    });
                    self.offers.insert(id, offer);
                }
                Err(InfoFailure::Unreachable(reason)) => {
                    tracing::warn!(package = id.0, %reason, "info not reachable; trying at the next check-in");
                }
                Err(InfoFailure::Final(code, reason)) => {
                    tracing::warn!(package = id.0, %reason, code, "package refused");
                    self.send_result(id, code).await;
                }
            }
        }
        if let Err(error) = self
            .scheduler
            .packages_changed(Timestamp(unix_now()), &specs)
        {
            tracing::warn!(%error, "the server's package list was refused");
        }
        self.data.save_scheduler(&self.scheduler)?;
        Ok(())
    }

    async fn send_inventory(&mut self) -> Result<()> {
        let facts = InventoryFacts {
            hostname: self.device.facts.hostname.clone(),
            os_name: self.device.os_name.clone(),
            os_version: self.device.facts.os_version.clone(),
            arch: self.device.facts.arch.clone(),
            serial: self.device.facts.serial.clone(),
            history: self
                .state
                .history
                .iter()
                .map(|id| tessera_protocol::ocs::PackageId(*id))
                .collect(),
        };
        self.client
            .ocs(&inventory_xml(&self.device_id, &facts))
            .await?;
        Ok(())
    }

    /// A result outside the schedule (refused `info`, already installed); a lost one is
    /// sent again at the next check-in, since the server still offers the package.
    async fn send_result(&mut self, id: PackageId, code: &str) {
        let xml = download_result_xml(
            &self.device_id,
            tessera_protocol::ocs::PackageId(id.0),
            code,
        );
        if let Err(error) = self.client.ocs(&xml).await {
            tracing::warn!(package = id.0, %error, "result not delivered; the next check-in retries");
        }
    }

    async fn info_for(&mut self, offer: &PackOffer) -> Result<PackageInfo, InfoFailure> {
        let id = PackageId(offer.id.0);
        let package = self.data.package(id);
        if let Ok(bytes) = std::fs::read(package.info())
            && let Ok(info) = PackageInfo::parse(&bytes)
        {
            self.infos.insert(id, info.clone());
            return Ok(info);
        }
        let url = format!(
            "https://{}/{}/info",
            offer.info_location.trim_end_matches('/'),
            id.0
        );
        let bytes = self.client.info(&url).await.map_err(|e| match e {
            AgentError::Refused { .. } => InfoFailure::Final("ERR_DOWNLOAD_INFO", e.to_string()),
            other => InfoFailure::Unreachable(other.to_string()),
        })?;
        let info = PackageInfo::parse(&bytes)
            .map_err(|e| InfoFailure::Final("ERR_DOWNLOAD_INFO", e.to_string()))?;
        if info.id.get() != id.0 {
            return Err(InfoFailure::Final(
                "ERR_BAD_ID",
                format!("the info file describes package {}", info.id.get()),
            ));
        }
        let saved = package
            .create()
            .and_then(|()| crate::fsio::write_atomic(&package.info(), &bytes, 0o600));
        if let Err(error) = saved {
            return Err(InfoFailure::Unreachable(error.to_string()));
        }
        self.infos.insert(id, info.clone());
        Ok(info)
    }

    async fn fetch(&mut self, id: PackageId, n: u32, progress: &mut dyn Progress) -> FetchOutcome {
        match self.try_fetch(id, n, progress).await {
            Ok(()) => {
                let of = self.infos.get(&id).map_or(0, |i| i.fragment_count);
                progress.fragment_verified(id.0, n, of);
                FetchOutcome::Verified
            }
            Err(error) => {
                tracing::warn!(package = id.0, fragment = n, %error, "fragment not fetched");
                FetchOutcome::Failed
            }
        }
    }

    async fn try_fetch(
        &mut self,
        id: PackageId,
        n: u32,
        progress: &mut dyn Progress,
    ) -> Result<()> {
        let info = self
            .load_info(id)
            .ok_or_else(|| AgentError::Server(format!("no info for package {}", id.0)))?;
        let package = self.data.package(id);
        let done = package.fragment(n);
        // Verified before a crash kept the schedule from hearing it: no second download.
        if let Ok(data) = std::fs::read(&done) {
            if verify_fragment(&info, n, &data).is_ok() {
                return Ok(());
            }
            let _ = std::fs::remove_file(&done);
        }
        let offer = self
            .offers
            .get(&id)
            .ok_or_else(|| AgentError::Server(format!("package {} is no longer offered", id.0)))?;
        let scheme = match info.protocol {
            Protocol::Http => "http",
            Protocol::Https => "https",
        };
        let url = format!(
            "{scheme}://{}/{}/{}-{n}",
            offer.pack_location.trim_end_matches('/'),
            id.0,
            id.0
        );
        let (expected, before) = match &info.integrity {
            Some(integrity) => {
                let plan = integrity.plan();
                let fragment = plan.fragment(n);
                (fragment.map(|f| f.length), fragment.map_or(0, |f| f.offset))
            }
            None => (None, 0),
        };
        let part = package.fragment_part(n);
        package.create()?;
        self.client
            .fragment(&url, &part, expected, |bytes| {
                progress.downloaded(id.0, before + bytes);
            })
            .await?;
        let data = std::fs::read(&part).map_err(|e| AgentError::io("reading", &part, e))?;
        if let Err(error) = verify_fragment(&info, n, &data) {
            let _ = std::fs::remove_file(&part);
            crate::fsio::write_atomic(
                &package.corrupt_marker(),
                error.to_string().as_bytes(),
                0o600,
            )?;
            return Err(AgentError::Server(format!(
                "fragment {n} failed verification: {error}"
            )));
        }
        std::fs::rename(&part, &done).map_err(|e| AgentError::io("renaming", &part, e))?;
        crate::fsio::sync_dir(package.root())?;
        let _ = std::fs::remove_file(package.corrupt_marker());
        Ok(())
    }

    async fn execute(&mut self, id: PackageId) -> Result<ResultCode> {
        let Some(info) = self.load_info(id) else {
            tracing::warn!(package = id.0, "the info file is gone; nothing runs");
            return Ok(ResultCode::ErrBuild);
        };
        action::perform(&self.plan(info)).await
    }

    async fn report(
        &mut self,
        id: PackageId,
        result: ResultCode,
        progress: &mut dyn Progress,
    ) -> Result<bool> {
        // A fragment that keeps failing its SHA-256 is content that is wrong on the server:
        // say so with the digest code rather than as a download failure.
        let code = if result == ResultCode::ErrDownloadPack
            && self.data.package(id).corrupt_marker().exists()
        {
            "ERR_BAD_DIGEST".to_owned()
        } else {
            result.to_string()
        };
        let xml = download_result_xml(
            &self.device_id,
            tessera_protocol::ocs::PackageId(id.0),
            &code,
        );
        match self.client.ocs(&xml).await {
            Ok(_) => {
                tracing::info!(package = id.0, result = %code, "result delivered");
                if result.is_success() {
                    self.state.remember(id);
                    self.data.save_agent_state(&self.state)?;
                }
                progress.finished(id.0, &code);
                self.summary.results.push((id.0, code));
                Ok(true)
            }
            Err(error) => {
                tracing::warn!(package = id.0, %error, "result not delivered; retrying");
                Ok(false)
            }
        }
    }
}

enum InfoFailure {
    /// Try again at the next check-in.
    Unreachable(String),
    /// Report this code: the package cannot be delivered.
    Final(&'static str, String),
}

/// The schedule settings: the server's, with the local overrides on top.
pub(crate) fn schedule_config(
    conf: &DownloadConf,
    overrides: &ScheduleOverrides,
) -> ScheduleConfig {
    ScheduleConfig {
        period_length: overrides
            .period_length
            .or(NonZeroU32::new(conf.period_length))
            .unwrap_or(NonZeroU32::MIN),
        frag_latency: u64::from(overrides.frag_latency.unwrap_or(conf.frag_latency)),
        cycle_latency: u64::from(overrides.cycle_latency.unwrap_or(conf.cycle_latency)),
        period_latency: u64::from(overrides.period_latency.unwrap_or(conf.period_latency)),
        timeout: conf.timeout_days,
        execution_timeout: overrides
            .execution_timeout_minutes
            .unwrap_or(conf.execution_timeout_minutes),
        on: conf.on,
        ..ScheduleConfig::default()
    }
}

async fn sleep_until(unix: u64) {
    let now = unix_now();
    if unix > now {
        tokio::time::sleep(Duration::from_secs(unix - now)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_overrides_win_over_the_server() {
        let conf = DownloadConf {
            period_length: 10,
            frag_latency: 60,
            ..DownloadConf::default()
        };
        let overrides = ScheduleOverrides {
            frag_latency: Some(0),
            ..ScheduleOverrides::default()
        };
        let config = schedule_config(&conf, &overrides);
        assert_eq!(config.frag_latency, 0);
        assert_eq!(config.period_length.get(), 10);
        assert_eq!(config.cycle_latency, 60);
        assert!(config.on);
    }
}
