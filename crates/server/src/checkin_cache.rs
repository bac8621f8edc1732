//! What a check-in needs, kept in memory in front of the store.
//!
//! A PROLOG used to cost three or four store round trips (find the device, write its last
//! contact, list its deployments, mark the waiting ones notified). [`CachedStore`] wraps the
//! server's [`Store`] and answers the common case from memory:
//!
//! - OCS DEVICEID → device key, and certificate serial → device key (both never change once
//!   written; a revocation is recorded over the entry and never forgotten);
//! - per device, its pending deployments (waiting or notified) and the time of its last
//!   inventory, filled from the store on first use;
//! - last-contact times, coalesced and written in one transaction about every second
//!   ([`CachedStore::touch`], [`CachedStore::flush_contacts`]); reads through the wrapper see
//!   them at once.
//!
//! Every write that can change a device's pending deployments or facts goes through this
//! wrapper's [`Store`] methods, which invalidate what they touch *after* the store has
//! committed. That is why the cache is a store wrapper and not a side table that handlers
//! must remember to update: assignment, results, timeout upkeep, package deletion and
//! revocation are covered wherever they are called from.
//!
//! Races. A fill reads the store and installs what it read only if no invalidation of that
//! device (or of everything) happened since it started — a per-device generation and a
//! global epoch say so. So a check-in that starts after an assignment or a result has been
//! acknowledged always sees it; one that started before may not, exactly as without the
//! cache. The check-in's own waiting → notified write is applied to the cached entry only
//! when nothing else invalidated it meanwhile.
//!
//! The cache assumes this process is the only writer of deployments and facts (true for the
//! embedded SQLite store; see `docs/decisions/0006-checkin-state-in-memory.md` for several
//! nodes).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::time::Duration;

use serde_json::{Map, Value};
use tessera_store::{
    CertificateRecord, Deployment, DeploymentState, Device, DeviceKey, EnrollmentToken, NewDevice,
    NewToken, PackageRecord, PackageStats, Result, Revocation, Store, TokenRefusal,
};
use time::OffsetDateTime;

/// How often coalesced last-contact times are written.
const CONTACT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// How long a device's state (and what its manifest was decided to ask for) is kept: a
/// condition on the `date` fact changes its answer with time alone.
const MAX_STATE_AGE: Duration = Duration::from_secs(3600);

/// What a PROLOG needs to know about one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckinState {
    /// `facts.inventory_at` (Unix seconds) of the last inventory, if any.
    pub inventory_at: Option<i64>,
    /// Packages to offer, by package ID: deployments without a result (waiting or
    /// notified), and packages the device's manifest asks for that it has no deployment of
    /// yet (waiting).
    pub pending: Vec<(i64, DeploymentState)>,
    /// When this state was read.
    pub read_at: std::time::Instant,
    /// The last reply body encoded from this state; see [`ReplyMemo`].
    pub reply: ReplyMemo,
}

/// The encoded PROLOG reply last built from a [`CheckinState`], under a key saying what else
/// it was built from (whether an inventory was due, the body encoding). A state is replaced,
/// never changed, so the memo goes with it: a device that checks in again with nothing new
/// gets the same bytes without building and deflating them again. Clones start empty and
/// all memos compare equal, so that it never affects what a state is.
#[derive(Default)]
pub struct ReplyMemo(Mutex<Option<(u8, bytes::Bytes)>>);

impl ReplyMemo {
    /// The body stored under `key`.
    pub fn get(&self, key: u8) -> Option<bytes::Bytes> {
        match &*lock(&self.0) {
            Some((stored, body)) if *stored == key => Some(body.clone()),
            _ => None,
        }
    }

    /// Stores `body` under `key`, replacing what was there.
    pub fn set(&self, key: u8, body: bytes::Bytes) {
        *lock(&self.0) = Some((key, body));
    }
}

impl Clone for ReplyMemo {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl PartialEq for ReplyMemo {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for ReplyMemo {}

impl std::fmt::Debug for ReplyMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplyMemo")
    }
}

/// A device's [`CheckinState`] and the version of the cache it was read at.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The state.
    pub state: Arc<CheckinState>,
    version: Version,
}

/// Who a client certificate belongs to, as the ledger says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateOwner {
    /// Issued to this enrolled device, not revoked.
    Device(DeviceKey),
    /// Revoked (a keep-alive connection opened before the revocation still presents it).
    Revoked,
    /// Not issued to an enrolled device.
    Unknown,
}

/// (global epoch, device generation): equal versions mean no invalidation in between.
type Version = (u64, u64);

#[derive(Default)]
struct Devices {
    epoch: u64,
    slots: HashMap<DeviceKey, Slot>,
}

#[derive(Default)]
struct Slot {
    generation: u64,
    state: Option<Arc<CheckinState>>,
}

impl Devices {
    fn version(&self, key: DeviceKey) -> Version {
        (
            self.epoch,
            self.slots.get(&key).map_or(0, |slot| slot.generation),
        )
    }
}

struct Shared<S> {
    store: S,
    devices: Mutex<Devices>,
    ocs_ids: RwLock<HashMap<String, DeviceKey>>,
    certificates: RwLock<HashMap<String, CertificateOwner>>,
    contacts: Mutex<HashMap<DeviceKey, OffsetDateTime>>,
    flusher_started: AtomicBool,
}

/// The server's store with check-in state kept in memory; see the module documentation.
pub struct CachedStore<S> {
    shared: Arc<Shared<S>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T: Clone, K: std::hash::Hash + Eq + ?Sized>(
    map: &RwLock<HashMap<String, T>>,
    key: &K,
) -> Option<T>
where
    String: std::borrow::Borrow<K>,
{
    map.read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(key)
        .cloned()
}

fn write<T>(map: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    map.write().unwrap_or_else(PoisonError::into_inner)
}

impl<S> CachedStore<S> {
    /// Wraps `store`; nothing is read until the first check-in.
    pub fn new(store: S) -> Self {
        Self {
            shared: Arc::new(Shared {
                store,
                devices: Mutex::default(),
                ocs_ids: RwLock::default(),
                certificates: RwLock::default(),
                contacts: Mutex::default(),
                flusher_started: AtomicBool::new(false),
            }),
        }
    }

    /// The wrapped store. Writes made through it bypass invalidation: read only.
    pub fn inner(&self) -> &S {
        &self.shared.store
    }

    /// Forgets what is cached about `key`'s deployments and facts.
    fn invalidate(&self, key: DeviceKey) {
        let mut devices = lock(&self.shared.devices);
        if let Some(slot) = devices.slots.get_mut(&key) {
            slot.generation += 1;
            slot.state = None;
        }
    }

    /// Forgets every device's state, so that each is read and decided again at its next
    /// check-in (manifests or packages changed).
    pub fn forget_checkin_states(&self) {
        self.invalidate_all();
    }

    /// Forgets every device's deployments (a package deleted, deployments expired).
    fn invalidate_all(&self) {
        let mut devices = lock(&self.shared.devices);
        devices.epoch += 1;
        devices.slots.clear();
    }

    /// The buffered last contact of `key`, when newer than `stored`.
    fn overlay(&self, mut device: Device) -> Device {
        let buffered = lock(&self.shared.contacts).get(&device.key).copied();
        if let Some(at) = buffered
            && device.last_contact.is_none_or(|stored| stored < at)
        {
            device.last_contact = Some(at);
        }
        device
    }
}

impl<S: Store + 'static> CachedStore<S> {
    /// The device behind an OCS DEVICEID, if it exists.
    pub async fn ocs_device(&self, ocs_device_id: &str) -> Result<Option<DeviceKey>> {
        if let Some(key) = read(&self.shared.ocs_ids, ocs_device_id) {
            return Ok(Some(key));
        }
        let found = self.shared.store.device_by_ocs_id(ocs_device_id).await?;
        if let Some(device) = &found {
            // A DEVICEID is unique and never reassigned, so the mapping cannot go stale.
            write(&self.shared.ocs_ids).insert(ocs_device_id.to_owned(), device.key);
        }
        Ok(found.map(|d| d.key))
    }

    /// Who the certificate with this serial (lowercase hex) was issued to.
    pub async fn certificate_owner(&self, serial: &str) -> Result<CertificateOwner> {
        if let Some(owner) = read(&self.shared.certificates, serial) {
            return Ok(owner);
        }
        let owner = match self.shared.store.certificate(serial).await? {
            Some(record) if record.revoked.is_some() => CertificateOwner::Revoked,
            Some(CertificateRecord {
                device: Some(key), ..
            }) => CertificateOwner::Device(key),
            _ => return Ok(CertificateOwner::Unknown),
        };
        // A revocation recorded while we read wins: revocation is never undone.
        let mut certificates = write(&self.shared.certificates);
        let entry = certificates.entry(serial.to_owned()).or_insert(owner);
        Ok(*entry)
    }

    /// `key`'s check-in state, from memory or read from the store; `None` if no such device.
    /// When it is read, `decide` says which packages the device's manifest asks for; those
    /// it has no deployment of join the offers as waiting (a result, even an old one, is
    /// final: a package is not decided again once it succeeded or failed).
    pub async fn checkin_state(
        &self,
        key: DeviceKey,
        decide: &(dyn Fn(&Device) -> Vec<i64> + Sync),
    ) -> Result<Option<Snapshot>> {
        let version = {
            let mut devices = lock(&self.shared.devices);
            let version = devices.version(key);
            let slot = devices.slots.entry(key).or_default();
            if let Some(state) = &slot.state
                && state.read_at.elapsed() < MAX_STATE_AGE
            {
                return Ok(Some(Snapshot {
                    state: Arc::clone(state),
                    version,
                }));
            }
            version
        };
        let Some((device, deployments)) = self.shared.store.device_with_deployments(key).await?
        else {
            return Ok(None);
        };
        let mut pending: Vec<(i64, DeploymentState)> = deployments
            .iter()
            .filter(|d| !d.state.is_final())
            .map(|d| (d.package_id, d.state))
            .collect();
        for package in decide(&device) {
            if !deployments.iter().any(|d| d.package_id == package) {
                pending.push((package, DeploymentState::Waiting));
            }
        }
        pending.sort_unstable_by_key(|&(package, _)| package);
        pending.dedup_by_key(|&mut (package, _)| package);
        let state = Arc::new(CheckinState {
            inventory_at: inventory_at(&device.facts),
            pending,
            read_at: std::time::Instant::now(),
            reply: ReplyMemo::default(),
        });
        let mut devices = lock(&self.shared.devices);
        // Installed only if nothing invalidated this device while we read: otherwise what
        // we read may predate that write (it still serves this check-in, which started
        // before the write was acknowledged).
        if devices.version(key) == version {
            devices.slots.entry(key).or_default().state = Some(Arc::clone(&state));
        }
        Ok(Some(Snapshot { state, version }))
    }

    /// Marks `package_ids` (waiting in `snapshot`) notified: durably in the store, then in
    /// the cached entry if nothing invalidated it since `snapshot` was read.
    pub async fn notified(
        &self,
        key: DeviceKey,
        snapshot: &Snapshot,
        package_ids: &[i64],
        now: OffsetDateTime,
    ) -> Result<()> {
        self.shared
            .store
            .mark_notified(key, package_ids, now)
            .await?;
        let mut devices = lock(&self.shared.devices);
        if devices.version(key) == snapshot.version {
            let mut state = (*snapshot.state).clone();
            for (package, deployment) in &mut state.pending {
                if package_ids.contains(package) && *deployment == DeploymentState::Waiting {
                    *deployment = DeploymentState::Notified;
                }
            }
            devices.slots.entry(key).or_default().state = Some(Arc::new(state));
        }
        Ok(())
    }

    /// Records a check-in's time in memory; written within about a second, and at
    /// [`flush_contacts`](Self::flush_contacts).
    pub fn touch(&self, key: DeviceKey, now: OffsetDateTime) {
        lock(&self.shared.contacts)
            .entry(key)
            .and_modify(|at| *at = (*at).max(now))
            .or_insert(now);
        if !self.shared.flusher_started.swap(true, Ordering::AcqRel) {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(flush_periodically(Arc::downgrade(&self.shared)));
                }
                // No runtime (cannot happen inside a handler): try again next time.
                Err(_) => self.shared.flusher_started.store(false, Ordering::Release),
            }
        }
    }

    /// Writes the buffered last-contact times now (at shutdown, and every second).
    pub async fn flush_contacts(&self) -> Result<()> {
        flush(&self.shared).await
    }
}

async fn flush<S: Store>(shared: &Shared<S>) -> Result<()> {
    let contacts: Vec<_> = std::mem::take(&mut *lock(&shared.contacts))
        .into_iter()
        .collect();
    if contacts.is_empty() {
        return Ok(());
    }
    let written = shared.store.record_contacts(&contacts).await;
    if written.is_err() {
        // Kept for the next attempt; a newer contact buffered meanwhile wins.
        let mut buffered = lock(&shared.contacts);
        for (key, at) in contacts {
            buffered
                .entry(key)
                .and_modify(|newer| *newer = (*newer).max(at))
                .or_insert(at);
        }
    }
    written
}

async fn flush_periodically<S: Store>(shared: Weak<Shared<S>>) {
    loop {
        tokio::time::sleep(CONTACT_FLUSH_INTERVAL).await;
        // The server is gone: its shutdown flushed what was left.
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if let Err(error) = flush(&shared).await {
            tracing::warn!(%error, "could not write last-contact times; will retry");
        }
    }
}

fn inventory_at(facts: &Map<String, Value>) -> Option<i64> {
    facts.get("inventory_at").and_then(Value::as_i64)
}

/// Every method is the wrapped store's, plus invalidation after writes that change what
/// the cache holds, and buffered last contacts overlaid on devices read.
impl<S: Store> Store for CachedStore<S> {
    async fn create_device(&self, device: &NewDevice, now: OffsetDateTime) -> Result<DeviceKey> {
        self.shared.store.create_device(device, now).await
    }

    async fn device(&self, key: DeviceKey) -> Result<Option<Device>> {
        Ok(self
            .shared
            .store
            .device(key)
            .await?
            .map(|d| self.overlay(d)))
    }

    async fn device_by_serial(&self, serial: &str) -> Result<Option<Device>> {
        Ok(self
            .shared
            .store
            .device_by_serial(serial)
            .await?
            .map(|d| self.overlay(d)))
    }

    async fn device_by_ocs_id(&self, ocs_device_id: &str) -> Result<Option<Device>> {
        Ok(self
            .shared
            .store
            .device_by_ocs_id(ocs_device_id)
            .await?
            .map(|d| self.overlay(d)))
    }

    async fn list_devices(&self) -> Result<Vec<Device>> {
        Ok(self
            .shared
            .store
            .list_devices()
            .await?
            .into_iter()
            .map(|d| self.overlay(d))
            .collect())
    }

    async fn record_contact(
        &self,
        key: DeviceKey,
        facts: Option<&Map<String, Value>>,
        now: OffsetDateTime,
    ) -> Result<()> {
        let result = self.shared.store.record_contact(key, facts, now).await;
        if facts.is_some() {
            self.invalidate(key);
        }
        result
    }

    async fn record_contacts(&self, contacts: &[(DeviceKey, OffsetDateTime)]) -> Result<()> {
        self.shared.store.record_contacts(contacts).await
    }

    async fn create_token(&self, token: &NewToken, now: OffsetDateTime) -> Result<EnrollmentToken> {
        self.shared.store.create_token(token, now).await
    }

    async fn consume_token(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<std::result::Result<EnrollmentToken, TokenRefusal>> {
        self.shared.store.consume_token(token_hash, now).await
    }

    async fn list_tokens(&self) -> Result<Vec<EnrollmentToken>> {
        self.shared.store.list_tokens().await
    }

    async fn revoke_token(&self, id: i64, now: OffsetDateTime) -> Result<bool> {
        self.shared.store.revoke_token(id, now).await
    }

    async fn record_certificate(&self, certificate: &CertificateRecord) -> Result<()> {
        let result = self.shared.store.record_certificate(certificate).await;
        write(&self.shared.certificates).remove(&certificate.serial);
        result
    }

    async fn certificate(&self, serial: &str) -> Result<Option<CertificateRecord>> {
        self.shared.store.certificate(serial).await
    }

    async fn revoke_certificate(&self, serial: &str, revocation: &Revocation) -> Result<bool> {
        let result = self
            .shared
            .store
            .revoke_certificate(serial, revocation)
            .await;
        if matches!(result, Ok(true)) {
            // Overwrites any cached owner, and a fill racing with us cannot undo it.
            write(&self.shared.certificates).insert(serial.to_owned(), CertificateOwner::Revoked);
        }
        result
    }

    async fn certificates_for(&self, device: DeviceKey) -> Result<Vec<CertificateRecord>> {
        self.shared.store.certificates_for(device).await
    }

    async fn revoked_certificates(&self) -> Result<Vec<CertificateRecord>> {
        self.shared.store.revoked_certificates().await
    }

    async fn put_package(&self, package: &PackageRecord) -> Result<()> {
        self.shared.store.put_package(package).await
    }

    async fn package(&self, id: i64) -> Result<Option<PackageRecord>> {
        self.shared.store.package(id).await
    }

    async fn list_packages(&self) -> Result<Vec<PackageRecord>> {
        self.shared.store.list_packages().await
    }

    async fn delete_package(&self, id: i64) -> Result<bool> {
        let result = self.shared.store.delete_package(id).await;
        // Its deployments went with it, on every device.
        self.invalidate_all();
        result
    }

    async fn assign(&self, device: DeviceKey, package_id: i64, now: OffsetDateTime) -> Result<()> {
        let result = self.shared.store.assign(device, package_id, now).await;
        // Also after an error: a failed commit may still have reached the database.
        self.invalidate(device);
        result
    }

    async fn mark_notified(
        &self,
        device: DeviceKey,
        package_ids: &[i64],
        now: OffsetDateTime,
    ) -> Result<()> {
        let result = self
            .shared
            .store
            .mark_notified(device, package_ids, now)
            .await;
        self.invalidate(device);
        result
    }

    async fn record_result(
        &self,
        device: DeviceKey,
        package_id: i64,
        state: DeploymentState,
        code: &str,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let result = self
            .shared
            .store
            .record_result(device, package_id, state, code, now)
            .await;
        self.invalidate(device);
        result
    }

    async fn expire_notified(&self, deadline: OffsetDateTime, now: OffsetDateTime) -> Result<u64> {
        let result = self.shared.store.expire_notified(deadline, now).await;
        // The store does not say which devices; expiry is rare (days after a notification),
        // so every device refills once.
        if !matches!(result, Ok(0)) {
            self.invalidate_all();
        }
        result
    }

    async fn deployments_for(&self, device: DeviceKey) -> Result<Vec<Deployment>> {
        self.shared.store.deployments_for(device).await
    }

    async fn device_with_deployments(
        &self,
        device: DeviceKey,
    ) -> Result<Option<(Device, Vec<Deployment>)>> {
        Ok(self
            .shared
            .store
            .device_with_deployments(device)
            .await?
            .map(|(d, deployments)| (self.overlay(d), deployments)))
    }

    async fn deployment_history(
        &self,
        device: DeviceKey,
        package_id: i64,
    ) -> Result<Vec<Deployment>> {
        self.shared
            .store
            .deployment_history(device, package_id)
            .await
    }

    async fn package_stats(&self, package_id: i64) -> Result<PackageStats> {
        self.shared.store.package_stats(package_id).await
    }

    async fn deployment_totals(&self) -> Result<PackageStats> {
        self.shared.store.deployment_totals().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_store::SqliteStore;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-11-01 12:00 UTC);

    /// Devices whose manifests ask for nothing: only assignments are offered.
    fn no_manifest(_: &Device) -> Vec<i64> {
        Vec::new()
    }

    async fn store_with(packages: &[i64]) -> (CachedStore<SqliteStore>, DeviceKey) {
        let store = CachedStore::new(SqliteStore::in_memory().await.unwrap());
        for &id in packages {
            store
                .put_package(&PackageRecord {
                    id,
                    name: format!("pkg{id}"),
                    version: "1".into(),
                    priority: 5,
                    action: "EXECUTE".into(),
                    fragments: 1,
                    size: 1,
                    created_at: T0,
                })
                .await
                .unwrap();
        }
        let key = store
            .create_device(
                &NewDevice {
                    computer_name: "host".into(),
                    serial: Some("SER".into()),
                    ocs_device_id: Some("host-2024-05-01-10-20-30".into()),
                    manifest: "site_default".into(),
                    facts: Map::new(),
                },
                T0,
            )
            .await
            .unwrap();
        (store, key)
    }

    async fn pending(
        store: &CachedStore<SqliteStore>,
        key: DeviceKey,
    ) -> Vec<(i64, DeploymentState)> {
        store
            .checkin_state(key, &no_manifest)
            .await
            .unwrap()
            .unwrap()
            .state
            .pending
            .clone()
    }

    /// A check-in as the PROLOG handler makes it: offers, then waiting → notified.
    async fn check_in(store: &CachedStore<SqliteStore>, key: DeviceKey) -> Vec<i64> {
        let snapshot = store
            .checkin_state(key, &no_manifest)
            .await
            .unwrap()
            .unwrap();
        let waiting: Vec<i64> = snapshot
            .state
            .pending
            .iter()
            .filter(|(_, s)| *s == DeploymentState::Waiting)
            .map(|(id, _)| *id)
            .collect();
        if !waiting.is_empty() {
            store.notified(key, &snapshot, &waiting, T0).await.unwrap();
        }
        snapshot.state.pending.iter().map(|(id, _)| *id).collect()
    }

    use DeploymentState::{Notified, Waiting};

    #[tokio::test]
    async fn check_ins_are_served_from_memory_and_notify_once() {
        let (store, key) = store_with(&[1, 2]).await;
        store.assign(key, 1, T0).await.unwrap();
        assert_eq!(check_in(&store, key).await, [1]);
        assert_eq!(pending(&store, key).await, [(1, Notified)]);
        // A write behind the wrapper's back is not seen: the cache, not the store, answers
        // (which is what makes the invalidation tests below able to fail).
        store.inner().assign(key, 2, T0).await.unwrap();
        assert_eq!(pending(&store, key).await, [(1, Notified)]);
        // The stored deployment was notified once, durably.
        let history = store.deployment_history(key, 1).await.unwrap();
        assert_eq!(
            history.iter().map(|d| d.state).collect::<Vec<_>>(),
            [Waiting, Notified]
        );
        assert!(
            store
                .checkin_state(DeviceKey(999), &no_manifest)
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn an_assignment_after_a_check_in_is_offered_at_the_next() {
        let (store, key) = store_with(&[1, 2]).await;
        store.assign(key, 1, T0).await.unwrap();
        assert_eq!(check_in(&store, key).await, [1]);
        store.assign(key, 2, T0).await.unwrap();
        assert_eq!(pending(&store, key).await, [(1, Notified), (2, Waiting)]);
        assert_eq!(check_in(&store, key).await, [1, 2]);
        // Re-assigning a finished package offers it again.
        store
            .record_result(key, 1, DeploymentState::Success, "SUCCESS", T0)
            .await
            .unwrap();
        assert_eq!(check_in(&store, key).await, [2]);
        store.assign(key, 1, T0).await.unwrap();
        assert_eq!(pending(&store, key).await, [(1, Waiting), (2, Notified)]);
    }

    #[tokio::test]
    async fn a_recorded_result_is_never_offered_again() {
        let (store, key) = store_with(&[1, 2]).await;
        store.assign(key, 1, T0).await.unwrap();
        store.assign(key, 2, T0).await.unwrap();
        assert_eq!(check_in(&store, key).await, [1, 2]);
        assert!(
            store
                .record_result(key, 1, DeploymentState::Success, "SUCCESS_3", T0)
                .await
                .unwrap()
        );
        assert_eq!(check_in(&store, key).await, [2]);
        store
            .record_result(key, 2, DeploymentState::Error, "ERR_BAD_DIGEST", T0)
            .await
            .unwrap();
        assert!(check_in(&store, key).await.is_empty());
    }

    #[tokio::test]
    async fn a_stale_snapshot_does_not_overwrite_a_newer_write() {
        let (store, key) = store_with(&[1, 2]).await;
        store.assign(key, 1, T0).await.unwrap();
        let before = store
            .checkin_state(key, &no_manifest)
            .await
            .unwrap()
            .unwrap();
        // A result and an assignment land between this check-in's read and its write.
        store
            .record_result(key, 1, DeploymentState::Success, "SUCCESS", T0)
            .await
            .unwrap();
        store.assign(key, 2, T0).await.unwrap();
        store.notified(key, &before, &[1], T0).await.unwrap();
        assert_eq!(pending(&store, key).await, [(2, Waiting)]);
    }

    #[tokio::test]
    async fn expiry_upkeep_withdraws_timed_out_offers() {
        let (store, key) = store_with(&[1, 2]).await;
        store.assign(key, 1, T0).await.unwrap();
        assert_eq!(check_in(&store, key).await, [1]);
        store
            .assign(key, 2, T0 + time::Duration::days(5))
            .await
            .unwrap();
        assert_eq!(pending(&store, key).await, [(1, Notified), (2, Waiting)]);
        let expired = store
            .expire_notified(T0 + time::Duration::days(1), T0 + time::Duration::days(6))
            .await
            .unwrap();
        assert_eq!(expired, 1);
        assert_eq!(pending(&store, key).await, [(2, Waiting)]);
    }

    #[tokio::test]
    async fn a_deleted_package_is_no_longer_offered() {
        let (store, key) = store_with(&[1, 2]).await;
        store.assign(key, 1, T0).await.unwrap();
        store.assign(key, 2, T0).await.unwrap();
        assert_eq!(check_in(&store, key).await, [1, 2]);
        assert!(store.delete_package(1).await.unwrap());
        assert_eq!(pending(&store, key).await, [(2, Notified)]);
    }

    #[tokio::test]
    async fn an_inventory_updates_the_cached_facts() {
        let (store, key) = store_with(&[]).await;
        assert_eq!(
            store
                .checkin_state(key, &no_manifest)
                .await
                .unwrap()
                .unwrap()
                .state
                .inventory_at,
            None
        );
        let mut facts = Map::new();
        facts.insert("inventory_at".into(), Value::from(1_800_000_000_i64));
        store.record_contact(key, Some(&facts), T0).await.unwrap();
        assert_eq!(
            store
                .checkin_state(key, &no_manifest)
                .await
                .unwrap()
                .unwrap()
                .state
                .inventory_at,
            Some(1_800_000_000)
        );
    }

    #[tokio::test]
    async fn a_revoked_certificate_is_refused_from_the_next_request() {
        let (store, key) = store_with(&[]).await;
        let record = CertificateRecord {
            serial: "0a1b".into(),
            device: Some(key),
            computer_name: "host".into(),
            not_before: T0,
            not_after: T0 + time::Duration::days(365),
            certificate_pem: String::new(),
            revoked: None,
        };
        store.record_certificate(&record).await.unwrap();
        assert_eq!(
            store.certificate_owner("0a1b").await.unwrap(),
            CertificateOwner::Device(key)
        );
        assert_eq!(
            store.certificate_owner("ffff").await.unwrap(),
            CertificateOwner::Unknown
        );
        let revocation = Revocation {
            at: T0,
            reason: "keyCompromise".into(),
        };
        assert!(store.revoke_certificate("0a1b", &revocation).await.unwrap());
        assert_eq!(
            store.certificate_owner("0a1b").await.unwrap(),
            CertificateOwner::Revoked
        );
        // Read fresh from the store (another server start), it is revoked too.
        let fresh = CachedStore::new(store.inner().clone());
        assert_eq!(
            fresh.certificate_owner("0a1b").await.unwrap(),
            CertificateOwner::Revoked
        );
    }

    #[tokio::test]
    async fn contacts_are_seen_at_once_and_written_when_flushed() {
        let (store, key) = store_with(&[]).await;
        let at = T0 + time::Duration::hours(1);
        store.touch(key, at);
        store.touch(key, T0);
        assert_eq!(
            store.device(key).await.unwrap().unwrap().last_contact,
            Some(at)
        );
        assert_eq!(
            store.list_devices().await.unwrap()[0].last_contact,
            Some(at)
        );
        assert_eq!(
            store
                .inner()
                .device(key)
                .await
                .unwrap()
                .unwrap()
                .last_contact,
            None
        );
        store.flush_contacts().await.unwrap();
        assert_eq!(
            store
                .inner()
                .device(key)
                .await
                .unwrap()
                .unwrap()
                .last_contact,
            Some(at)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_check_ins_of_one_device_notify_once() {
        let (store, key) = store_with(&[1, 2, 3]).await;
        for id in 1..=3 {
            store.assign(key, id, T0).await.unwrap();
        }
        let store = Arc::new(store);
        let check_ins: Vec<_> = (0..16)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { check_in(&store, key).await })
            })
            .collect();
        for check_in in check_ins {
            assert_eq!(check_in.await.unwrap(), [1, 2, 3]);
        }
        assert_eq!(
            pending(&store, key).await,
            [(1, Notified), (2, Notified), (3, Notified)]
        );
        for id in 1..=3 {
            let notified = store
                .deployment_history(key, id)
                .await
                .unwrap()
                .into_iter()
                .filter(|d| d.state == Notified)
                .count();
            assert_eq!(notified, 1);
        }
    }
}
