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
}

impl<S> App<S> {
    /// State with the system clock.
    pub fn new(store: S, config: Config) -> Arc<Self> {
        Arc::new(Self {
            store,
            config,
            clock: Arc::new(OffsetDateTime::now_utc),
        })
    }

    /// The current time.
    pub fn now(&self) -> OffsetDateTime {
        (self.clock)()
    }
}
