//! What goes wrong between a caller and Redis.
//!
//! No message here ever holds the URL's userinfo, the user name or the password: every
//! text that comes from the `redis` crate is scrubbed of them first ([`scrub`]).

use std::time::Duration;

use thiserror::Error;

pub use harvester_core::ConfigError;

/// Redis could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RedisError {
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
    /// The server is a cluster node and the configuration says standalone
    /// ([`RedisConfig::cluster`](crate::RedisConfig::cluster) false), or the other way round.
    #[error("{endpoint} is {}", if *cluster_node {
        "a Redis Cluster node: set redis.cluster = true (RedisConfig::cluster) to use the cluster"
    } else {
        "a standalone Redis, not a cluster node: set redis.cluster = false (RedisConfig::cluster), or point redis.url at a cluster node"
    })]
    WrongMode {
        /// The redacted URL.
        endpoint: String,
        /// Whether the server said `cluster_enabled:1`.
        cluster_node: bool,
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

/// `message` with every secret replaced by `***`.
///
/// ```
/// use harvester_redis::scrub;
///
/// assert_eq!(scrub("AUTH app hunter22 refused", &["hunter22".to_owned()]), "AUTH app *** refused");
/// ```
pub fn scrub(message: &str, secrets: &[String]) -> String {
    let mut out = message.to_owned();
    for secret in secrets {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "***");
        }
    }
    out
}
