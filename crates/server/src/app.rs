//! The state every handler shares.

use std::sync::{Arc, RwLock};

use bytes::Bytes;

use tessera_package::Repository;
use time::OffsetDateTime;

use crate::checkin_cache::CachedStore;
use crate::config::Config;
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
