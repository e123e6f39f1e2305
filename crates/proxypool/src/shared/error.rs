//! What goes wrong sharing proxy state. No message ever holds a proxy's or Redis's
//! credentials.

use harvester_redis::RedisError;
use thiserror::Error;

use crate::error::ConfigError;

/// The shared state could not start, or Redis could not be used.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum SharedStateError {
    /// A setting cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Redis failed or did not answer (the message is scrubbed of credentials).
    #[error(transparent)]
    Redis(#[from] RedisError),
    /// The background task died (it panicked), so nothing is shared any more; the text
    /// says why.
    #[error("shared proxy state has stopped: {0}")]
    Stopped(String),
    /// The background task must run on a tokio runtime.
    #[error("shared proxy state must be started inside a tokio runtime")]
    NoRuntime,
}
