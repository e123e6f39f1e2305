//! What goes wrong between a limiter and Redis, and what a distributed check refuses with.
//!
//! No message here ever holds the URL's userinfo, the user name or the password: every
//! text that comes from the `redis` crate is scrubbed of them first.

use std::time::Duration;

use thiserror::Error;

use crate::error::ConfigError;
use crate::rate_limit::NotUntil;

/// Redis could not be used.
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

/// `message` with every secret replaced by `***`.
pub(crate) fn scrub(message: &str, secrets: &[String]) -> String {
    let mut out = message.to_owned();
    for secret in secrets {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "***");
        }
    }
    out
}
