//! One auto-reconnecting, multiplexed connection to Redis, shared by every limiter that
//! clones it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::config::RedisConfig;
use super::error::{DistributedError, scrub};

/// Reconnect attempts back off from this delay…
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);
/// …up to this one, so that a Redis that comes back is found within about a second.
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(1);
/// Attempts of one reconnection; the next command after they all fail starts another.
const RECONNECT_ATTEMPTS: usize = 6;

/// A connection to Redis: `redis`'s [`ConnectionManager`] (one multiplexed connection,
/// pipelined, reconnecting by itself after a failure) plus the settings every command
/// here needs: the key prefix and the response timeout.
///
/// Cheap to clone; clones share the connection. `Debug` shows the redacted URL only.
#[derive(Clone)]
pub struct RedisConnection {
    manager: ConnectionManager,
    shared: Arc<Shared>,
}

struct Shared {
    endpoint: String,
    key_prefix: String,
    response_timeout: Duration,
    secrets: Vec<String>,
}

impl RedisConnection {
    /// Connects, waiting at most `connect_timeout` for the first connection.
    pub async fn connect(config: &RedisConfig) -> Result<RedisConnection, DistributedError> {
        let connection = RedisConnection::lazy(config)?;
        let mut manager = connection.manager.clone();
        let ping = async { redis::cmd("PING").query_async::<()>(&mut manager).await };
        match tokio::time::timeout(config.connect_timeout, ping).await {
            Ok(Ok(())) => Ok(connection),
            Ok(Err(error)) => Err(DistributedError::Connect {
                endpoint: connection.shared.endpoint.clone(),
                reason: connection.scrub(&error.to_string()),
            }),
            Err(_) => Err(DistributedError::Connect {
                endpoint: connection.shared.endpoint.clone(),
                reason: format!("no connection within {:?}", config.connect_timeout),
            }),
        }
    }

    /// A connection made at its first use: no I/O now, so a process can start while
    /// Redis is down (its limiters then follow their failure policy). Must be called
    /// inside a tokio runtime.
    pub fn lazy(config: &RedisConfig) -> Result<RedisConnection, DistributedError> {
        config.validate()?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(DistributedError::NoRuntime);
        }
        let secrets = config.secrets();
        let endpoint = config.redacted_url();
        install_tls_provider(config);
        let client = redis::Client::open(config.connection_info()?).map_err(|error| DistributedError::Connect {
            endpoint: endpoint.clone(),
            reason: scrub(&error.to_string(), &secrets),
        })?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.response_timeout))
            .set_min_delay(RECONNECT_MIN_DELAY)
            .set_max_delay(RECONNECT_MAX_DELAY)
            .set_number_of_retries(RECONNECT_ATTEMPTS);
        let manager = ConnectionManager::new_lazy_with_config(client, manager_config).map_err(|error| {
            DistributedError::Connect { endpoint: endpoint.clone(), reason: scrub(&error.to_string(), &secrets) }
        })?;
        Ok(RedisConnection {
            manager,
            shared: Arc::new(Shared {
                endpoint,
                key_prefix: config.key_prefix.clone(),
                response_timeout: config.response_timeout,
                secrets,
            }),
        })
    }

    /// The prefix of every key this crate writes.
    pub fn key_prefix(&self) -> &str {
        &self.shared.key_prefix
    }

    /// The longest wait for an answer.
    pub fn response_timeout(&self) -> Duration {
        self.shared.response_timeout
    }

    /// The URL, redacted.
    pub fn endpoint(&self) -> &str {
        &self.shared.endpoint
    }

    /// Runs `command` on a clone of the connection, bounded by the response timeout (which
    /// also bounds the wait for a reconnection in progress); errors are scrubbed.
    pub(crate) async fn run<T, F, Fut>(&self, command: F) -> Result<T, DistributedError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let after = self.shared.response_timeout;
        match tokio::time::timeout(after, command(self.manager.clone())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) if error.is_timeout() => {
                Err(DistributedError::TimedOut { endpoint: self.shared.endpoint.clone(), after })
            }
            Ok(Err(error)) => Err(DistributedError::Command {
                endpoint: self.shared.endpoint.clone(),
                reason: self.scrub(&error.to_string()),
            }),
            Err(_) => Err(DistributedError::TimedOut { endpoint: self.shared.endpoint.clone(), after }),
        }
    }

    fn scrub(&self, message: &str) -> String {
        scrub(message, &self.shared.secrets)
    }
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnection")
            .field("endpoint", &self.shared.endpoint)
            .field("key_prefix", &self.shared.key_prefix)
            .field("response_timeout", &self.shared.response_timeout)
            .finish_non_exhaustive()
    }
}

/// rustls needs a process-wide crypto provider: ring, the workspace's one, unless the
/// application installed one already.
#[cfg(feature = "redis-tls")]
fn install_tls_provider(config: &RedisConfig) {
    if config.uses_tls() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

#[cfg(not(feature = "redis-tls"))]
fn install_tls_provider(config: &RedisConfig) {
    // `validate` refused rediss:// already; nothing to install without TLS.
    let _ = config.uses_tls();
}
