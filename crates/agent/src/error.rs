//! What can go wrong in the agent, each case with what to do about it.

use std::path::PathBuf;

/// An agent error. Messages name the file, server or setting involved.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A file in the data directory or keystore could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("reading", "writing", …).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The keystore refused.
    #[error(transparent)]
    Keystore(#[from] tessera_keystore::KeystoreError),
    /// The device is not enrolled yet.
    #[error(
        "this device is not enrolled: run `tessera-agent enroll --server URL --token T --ca-fingerprint SHA256` first"
    )]
    NotEnrolled,
    /// Another agent process holds the data directory.
    #[error("another tessera-agent is running on {0} (lock held); stop it first")]
    Busy(PathBuf),
    /// No server could be reached or none answered properly.
    #[error("{0}")]
    Server(String),
    /// The server answered but refused.
    #[error("the server refused: {code}: {message}")]
    Refused {
        /// The API error code (`token_refused`, …).
        code: String,
        /// The server's sentence.
        message: String,
    },
    /// The server's identity did not match what the agent was told to trust.
    #[error("{0}")]
    Trust(String),
    /// A local fact (hostname, serial) could not be determined.
    #[error("{0}")]
    Facts(String),
    /// The saved state is unreadable.
    #[error("the agent state {path} is unreadable ({reason}); move it aside to start afresh")]
    State {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The scheduler refused an event (a bug or a corrupted state).
    #[error(transparent)]
    Schedule(#[from] tessera_schedule::ScheduleError),
}

impl AgentError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// Shorthand.
pub type Result<T, E = AgentError> = std::result::Result<T, E>;
