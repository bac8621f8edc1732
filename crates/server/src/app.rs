//! The state every handler shares.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::config::Config;

/// Where the server reads the time: injected so that timeouts and certificate validity
/// are tested deterministically.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// The shared state of one running server.
pub struct App<S> {
    /// Server state.
    pub store: S,
    /// The configuration it started with.
    pub config: Config,
    /// The time source.
    pub clock: Clock,
    /// SHA-256 of the admin token; `None` refuses every admin request.
    pub admin_token_hash: Option<String>,
}

impl<S> App<S> {
    /// State with the system clock and no admin token (admin requests are refused).
    pub fn new(store: S, config: Config) -> Arc<Self> {
        Arc::new(Self {
            store,
            config,
            clock: Arc::new(OffsetDateTime::now_utc),
            admin_token_hash: None,
        })
    }

    /// State with the system clock and an admin token (its hash).
    pub fn with_admin(store: S, config: Config, admin_token_hash: String) -> Arc<Self> {
        Arc::new(Self {
            store,
            config,
            clock: Arc::new(OffsetDateTime::now_utc),
            admin_token_hash: Some(admin_token_hash),
        })
    }

    /// The current time.
    pub fn now(&self) -> OffsetDateTime {
        (self.clock)()
    }
}
