//! What goes wrong between a limiter and Redis, and what a distributed check refuses with.
//!
//! No message here ever holds the URL's userinfo, the user name or the password: every
//! text that comes from the `redis` crate is scrubbed of them first.

use std::time::Duration;

use harvester_redis::RedisError;
use thiserror::Error;

use crate::error::ConfigError;
use crate::rate_limit::NotUntil;

/// Redis could not be used.
///
/// The same variants as harvester-redis's [`RedisError`], which converts into it with `?`
/// (its configuration errors become this crate's [`ConfigError`], field and reason kept).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DistributedError {
    /// The configuration cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A connection was asked for outside a tokio runtime.
    #[error("a Redis connection must be made inside a tokio runtime")]
    NoRuntime,
    /// No connection could be made.
    #[error("cannot connect to {endpoint}: {reason}")]
    Connect {
        /// The redacted URL.
        endpoint: String,
        /// Why, scrubbed of credentials.
        reason: String,
    },
    /// Redis did not answer in time.
    #[error("no answer from {endpoint} within {after:?}")]
    TimedOut {
        /// The redacted URL.
        endpoint: String,
        /// The response timeout that ran out.
        after: Duration,
    },
    /// Redis answered with an error, or the connection failed mid-command.
    #[error("{endpoint} failed: {reason}")]
    Command {
        /// The redacted URL.
        endpoint: String,
        /// Why, scrubbed of credentials.
        reason: String,
    },
}

/// Why a distributed check did not let the call through.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refusal {
    /// The quota has no cell within the wait allowed (decided by Redis, by the local
    /// deny-cache, or by the local fallback limiter).
    #[error("{0}")]
    RateLimited(NotUntil),
    /// Redis could not decide and the policy is [`FailClosed`](super::FailurePolicy::FailClosed).
    #[error("rate limiter unavailable: {0}")]
    Unavailable(DistributedError),
    /// More cells asked for at once than the burst: no wait would ever be enough.
    #[error("{cost} cells asked for at once, but the burst is {burst}")]
    InsufficientCapacity {
        /// Cells asked for.
        cost: u32,
        /// The quota's burst.
        burst: u32,
    },
}

impl Refusal {
    /// How long until the same call could succeed, for a rate refusal.
    pub fn retry_in(&self) -> Option<Duration> {
        match self {
            Refusal::RateLimited(not_until) => Some(not_until.retry_in()),
            _ => None,
        }
    }
}

impl From<RedisError> for DistributedError {
    fn from(error: RedisError) -> Self {
        match error {
            RedisError::Config(error) => DistributedError::Config(error.into()),
            RedisError::NoRuntime => DistributedError::NoRuntime,
            RedisError::Connect { endpoint, reason } => DistributedError::Connect { endpoint, reason },
            RedisError::TimedOut { endpoint, after } => DistributedError::TimedOut { endpoint, after },
            RedisError::Command { endpoint, reason } => DistributedError::Command { endpoint, reason },
            // `RedisError` is non-exhaustive: whatever it adds is a failure to use Redis.
            other => DistributedError::Command { endpoint: String::new(), reason: other.to_string() },
        }
    }
}

impl From<harvester_redis::ConfigError> for DistributedError {
    fn from(error: harvester_redis::ConfigError) -> Self {
        DistributedError::Config(error.into())
    }
}
