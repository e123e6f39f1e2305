//! What goes wrong between a limiter and Redis, and what a distributed check refuses with.
//!
//! No message here ever holds the URL's userinfo, the user name or the password: every
//! text that comes from the `redis` crate is scrubbed of them first.

use std::time::Duration;

use harvester_redis::RedisError;
use thiserror::Error;

use crate::error::ConfigError;
use crate::rate_limit::NotUntil;

/// Redis could not be used: this crate's configuration error, or harvester-redis's
/// [`RedisError`] (no connection, no answer in time, a failed command), whose messages are
/// scrubbed of credentials there.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DistributedError {
    /// The configuration cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Redis could not be reached or used.
    #[error(transparent)]
    Redis(RedisError),
}

/// Why a distributed check did not let the call through.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
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
            // Configuration errors read the same whichever crate found them.
            RedisError::Config(error) => DistributedError::Config(error),
            other => DistributedError::Redis(other),
        }
    }
}
