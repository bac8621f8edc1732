//! The state every handler shares.

use std::sync::{Arc, RwLock};

use bytes::Bytes;

use tessera_package::Repository;
use tessera_store::Store;
use time::OffsetDateTime;

use crate::checkin_cache::CachedStore;
use crate::config::Config;
use crate::decide::Decisions;
use crate::enroll::Enrollment;
use crate::metrics::Metrics;

/// Where the server reads the time: injected so that timeouts and certificate validity
/// are tested deterministically.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// The shared state of one running server.
pub struct App<S> {
    /// Server state, with what check-ins need kept in memory: every write goes through
    /// it, so that the cache is invalidated wherever state changes.
    pub store: CachedStore<S>,
    /// The configuration it started with.
    pub config: Config,
    /// OCS packages (`<data>/repo/download`).
    pub packages: Repository,
    /// The time source.
    pub clock: Clock,
    /// SHA-256 of the admin token; `None` refuses every admin request.
    pub admin_token_hash: Option<String>,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    /// The CA and repository enrollment uses; `None` disables `/enroll`.
    pub enrollment: Option<Enrollment>,
    /// Deployments decided from manifests; `None` offers assigned packages only.
    pub decisions: Option<Decisions>,
    /// The device CA's current CRL (DER), as published on the HTTP listener.
    crl: RwLock<Bytes>,
    /// The root's CRL (DER) when the device CA is an intermediate under a root this server
    /// holds: it lists revoked intermediates, and OpenSSL's `-crl_check_all` wants it.
    root_crl: RwLock<Option<Bytes>>,
}

impl<S> App<S> {
    /// State with the system clock and no admin token (admin requests are refused).
    pub fn new(store: S, config: Config, packages: Repository) -> Self {
        Self {
            store: CachedStore::new(store),
            config,
            packages,
            clock: Arc::new(OffsetDateTime::now_utc),
            admin_token_hash: None,
            metrics: Metrics::default(),
            enrollment: None,
            decisions: None,
            crl: RwLock::new(Bytes::new()),
            root_crl: RwLock::new(None),
        }
    }

    /// Accepts admin requests bearing the token whose SHA-256 is `hash`.
    #[must_use]
    pub fn with_admin_token_hash(mut self, hash: String) -> Self {
        self.admin_token_hash = Some(hash);
        self
    }

    /// Enables enrollment with this CA and repository.
    #[must_use]
    pub fn with_enrollment(mut self, enrollment: Enrollment) -> Self {
        self.enrollment = Some(enrollment);
        self
    }

    /// Offers, besides assigned packages, the packages devices' manifests in `repo` ask for.
    /// Call [`packages_changed`](Self::packages_changed) once the store knows the packages.
    #[must_use]
    pub fn with_manifests(mut self, repo: tessera_manifest::Repo) -> Self {
        self.decisions = Some(Decisions::new(repo));
        self
    }

    /// Reads time from `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Ready to share between handlers.
    pub fn shared(self) -> Arc<Self> {
        Arc::new(self)
    }

    /// Publishes a new CRL (DER) on the HTTP listener.
    pub fn publish_crl(&self, der: Vec<u8>) {
        let der = Bytes::from(der);
        match self.crl.write() {
            Ok(mut current) => *current = der,
            Err(poisoned) => *poisoned.into_inner() = der,
        }
    }

    /// Publishes (or withdraws) the root's CRL on the HTTP listener.
    pub fn publish_root_crl(&self, der: Option<Vec<u8>>) {
        let der = der.map(Bytes::from);
        match self.root_crl.write() {
            Ok(mut current) => *current = der,
            Err(poisoned) => *poisoned.into_inner() = der,
        }
    }

    /// The root CRL currently published, if the CA has a separate root.
    pub fn published_root_crl(&self) -> Option<Bytes> {
        match self.root_crl.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The CRL currently published (empty before the first).
    pub fn published_crl(&self) -> Bytes {
        match self.crl.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The current time.
    pub fn now(&self) -> OffsetDateTime {
        (self.clock)()
    }
}

impl<S: Store + 'static> App<S> {
    /// Records packages found on disk that the store does not know yet, and decides
    /// deployments again with the packages the store holds. Run at start-up, when the
    /// repository's packages changed, and after a package was deleted.
    pub async fn packages_changed(&self) -> tessera_store::Result<crate::catalog::SyncReport> {
        let report = crate::catalog::sync_packages(&self.store, &self.packages, self.now()).await?;
        if let Some(decisions) = &self.decisions {
            decisions.set_packages(&self.store.list_packages().await?);
        }
        // After the new catalog is in place: a state filled from the old one is dropped.
        self.store.forget_checkin_states();
        Ok(report)
    }

    /// Forgets parsed manifests and what was decided from them (a group edited, files
    /// changed in the repository).
    pub fn manifests_changed(&self) {
        if let Some(decisions) = &self.decisions {
            decisions.forget_manifests();
            self.store.forget_checkin_states();
        }
    }

    /// The packages `device`'s manifest asks for (none without manifests).
    pub fn decided_packages(&self, device: &tessera_store::Device) -> Vec<i64> {
        self.decisions
            .as_ref()
            .map_or_else(Vec::new, |d| d.packages_for(device, self.now()))
    }
}
