//! One auto-reconnecting, multiplexed connection to Redis (one server or a cluster),
//! shared by every user that clones it, and dedicated connections for what must not
//! share it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::AsyncConnectionConfig;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSub};
use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};

use crate::cluster::cluster_enabled;
use crate::config::RedisConfig;
use crate::error::{RedisError, scrub};
use crate::link::Connection;

/// Reconnect attempts back off from this delay…
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);
/// …up to this one, so that a Redis that comes back is found within about a second.
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(1);
/// Attempts of one reconnection; the next command after they all fail starts another.
const RECONNECT_ATTEMPTS: usize = 6;
/// Retries of one command on a cluster (after `MOVED`, `ASK`, `TRYAGAIN` or a lost node);
/// the response timeout bounds them all.
const CLUSTER_RETRIES: u32 = 6;

/// A connection to Redis: `redis`'s [`ConnectionManager`] (one multiplexed connection,
/// pipelined, reconnecting by itself after a failure) or, with
/// [`RedisConfig::cluster`], its cluster connection (one multiplexed connection per
/// node, commands routed by key slot, the topology refreshed after `MOVED`), plus the
/// settings every command needs: the key prefix and the response timeout. Commands reach
/// it as a [`Connection`], which serves both.
///
/// Cheap to clone; clones share the connection. `Debug` shows the redacted URL only.
///
/// Commands go through [`run`](RedisConnection::run), bounded by the response timeout.
/// Blocking reads (`XREADGROUP ... BLOCK`, `BLPOP`) must not: they would run into that
/// timeout (the `redis` crate's own default is 500 ms) and hold up every command
/// pipelined behind them. Take a [`dedicated`](RedisConnection::dedicated) connection
/// for them, and a [`pubsub`](RedisConnection::pubsub) one to subscribe.
///
/// ```no_run
/// use harvester_redis::{RedisConfig, RedisConnection, RedisError};
///
/// # async fn run() -> Result<(), RedisError> {
/// let redis = RedisConnection::connect(&RedisConfig { url: "redis://127.0.0.1:6379".into(), ..Default::default() }).await?;
/// let key = format!("{}greeting", redis.key_prefix());
/// let () = redis.run(|mut c| async move { redis::cmd("SET").arg(&key).arg("hello").query_async(&mut c).await }).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisConnection {
    connection: Connection,
    shared: Arc<Shared>,
}

struct Shared {
    /// The server of the URL: all of Redis when standalone, the seed node of a cluster
    /// (subscriptions go through it).
    client: redis::Client,
    /// On a cluster, the client of the shared connection and that of dedicated ones
    /// (without response timeout).
    cluster: Option<ClusterClients>,
    endpoint: String,
    key_prefix: String,
    connect_timeout: Duration,
    response_timeout: Duration,
    secrets: Vec<String>,
}

impl RedisConnection {
    /// Connects, waiting at most `connect_timeout` for the first connection. Refuses a
    /// server whose `INFO cluster` contradicts [`RedisConfig::cluster`]
    /// ([`RedisError::WrongMode`]).
    pub async fn connect(config: &RedisConfig) -> Result<RedisConnection, RedisError> {
        let connection = RedisConnection::lazy(config)?;
        let mut shared = connection.connection.clone();
        let check = async {
            connection.check_mode().await?;
            redis::cmd("PING").query_async::<()>(&mut shared).await.map_err(|error| RedisError::Connect {
                endpoint: connection.shared.endpoint.clone(),
                reason: connection.scrub(&error.to_string()),
            })
        };
        match tokio::time::timeout(config.connect_timeout, check).await {
            Ok(Ok(())) => Ok(connection),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(RedisError::Connect {
                endpoint: connection.shared.endpoint.clone(),
                reason: format!("no connection within {:?}", config.connect_timeout),
            }),
        }
    }

    /// Asks the URL's server whether it is a cluster node (`INFO cluster`), and refuses a
    /// mismatch with the configuration. A server that will not say (`INFO` denied by an
    /// ACL) is taken at the configuration's word.
    async fn check_mode(&self) -> Result<(), RedisError> {
        let config = AsyncConnectionConfig::new().set_connection_timeout(Some(self.shared.connect_timeout));
        let connect = self.shared.client.get_multiplexed_async_connection_with_config(&config);
        let mut seed = connect.await.map_err(|error| self.connect_error(&error))?;
        let info = match redis::cmd("INFO").arg("cluster").query_async::<String>(&mut seed).await {
            Ok(info) => info,
            Err(error) if error.code() == Some("NOPERM") => return Ok(()),
            Err(error) => return Err(self.connect_error(&error)),
        };
        match cluster_enabled(&info) {
            Some(enabled) if enabled != self.is_cluster() => {
                Err(RedisError::WrongMode { endpoint: self.shared.endpoint.clone(), cluster_node: enabled })
            }
            _ => Ok(()),
        }
    }

    fn connect_error(&self, error: &redis::RedisError) -> RedisError {
        RedisError::Connect { endpoint: self.shared.endpoint.clone(), reason: self.scrub(&error.to_string()) }
    }

    /// A connection made at its first use: no I/O now, so a process can start while
    /// Redis is down. Must be called inside a tokio runtime.
    pub fn lazy(config: &RedisConfig) -> Result<RedisConnection, RedisError> {
        config.validate()?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(RedisError::NoRuntime);
        }
        let secrets = config.secrets();
        let endpoint = config.redacted_url();
        install_tls_provider(config);
        let refused = |error: redis::RedisError| RedisError::Connect {
            endpoint: endpoint.clone(),
            reason: scrub(&error.to_string(), &secrets),
        };
        let info = config.connection_info()?;
        let client = redis::Client::open(info.clone()).map_err(refused)?;
        let (connection, cluster) = if config.cluster {
            let clients = ClusterClients::new(info, config).map_err(refused)?;
            let connection = clients.shared.get_pending_async_connection_with_config(ClusterConfig::new());
            (Connection::cluster(connection), Some(clients))
        } else {
            let manager_config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(config.connect_timeout))
                .set_response_timeout(Some(config.response_timeout))
                .set_min_delay(RECONNECT_MIN_DELAY)
                .set_max_delay(RECONNECT_MAX_DELAY)
                .set_number_of_retries(RECONNECT_ATTEMPTS);
            let manager = ConnectionManager::new_lazy_with_config(client.clone(), manager_config).map_err(refused)?;
            (Connection::managed(manager), None)
        };
        Ok(RedisConnection {
            connection,
            shared: Arc::new(Shared {
                client,
                cluster,
                endpoint,
                key_prefix: config.key_prefix.clone(),
                connect_timeout: config.connect_timeout,
                response_timeout: config.response_timeout,
                secrets,
            }),
        })
    }

    /// The prefix of every key written through this connection.
    pub fn key_prefix(&self) -> &str {
        &self.shared.key_prefix
    }

    /// The longest wait for an answer.
    pub fn response_timeout(&self) -> Duration {
        self.shared.response_timeout
    }

    /// The longest wait for a connection to be made.
    pub fn connect_timeout(&self) -> Duration {
        self.shared.connect_timeout
    }

    /// The URL, redacted.
    pub fn endpoint(&self) -> &str {
        &self.shared.endpoint
    }

    /// Whether this is a connection to a Redis Cluster ([`RedisConfig::cluster`]).
    pub fn is_cluster(&self) -> bool {
        self.shared.cluster.is_some()
    }

    /// Runs `command` on a clone of the connection, bounded by the response timeout (which
    /// also bounds the wait for a reconnection in progress); errors are scrubbed of
    /// credentials.
    pub async fn run<T, F, Fut>(&self, command: F) -> Result<T, RedisError>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let after = self.shared.response_timeout;
        match tokio::time::timeout(after, command(self.connection.clone())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(self.command_error(&error)),
            Err(_) => Err(RedisError::TimedOut { endpoint: self.shared.endpoint.clone(), after }),
        }
    }

    /// A clone of the shared connection, for callers that need it raw. Commands sent on it
    /// are bounded by the response timeout, as with [`run`](RedisConnection::run), but
    /// their errors are the `redis` crate's: turn them into a [`RedisError`] with
    /// [`command_error`](RedisConnection::command_error) before showing them.
    pub fn manager(&self) -> Connection {
        self.connection.clone()
    }

    /// A new connection of its own, with no response timeout, for blocking commands
    /// (`XREADGROUP ... BLOCK`, `BLPOP`): they neither time out after the response timeout
    /// nor hold up the shared connection's commands. Waits at most `connect_timeout` for
    /// it. Bound the blocking time in the command itself (`BLOCK ms`) and, if you must,
    /// with `tokio::time::timeout`.
    ///
    /// On a standalone Redis it does not reconnect: after an error, take another. On a
    /// cluster it is a cluster connection of its own (one connection per node), which
    /// follows the topology like the shared one.
    pub async fn dedicated(&self) -> Result<Connection, RedisError> {
        match &self.shared.cluster {
            Some(clients) => {
                let connect = clients.blocking.get_async_connection();
                self.connection_within_timeout(connect).await.map(Connection::cluster)
            }
            None => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(self.shared.connect_timeout))
                    .set_response_timeout(None);
                let connect = self.shared.client.get_multiplexed_async_connection_with_config(&config);
                self.connection_within_timeout(connect).await.map(Connection::multiplexed)
            }
        }
    }

    /// A new connection for `SUBSCRIBE` / `PSUBSCRIBE` (Redis gives a subscribed connection
    /// to nothing else). Waits at most `connect_timeout` for it. It does not reconnect:
    /// when its message stream ends, the connection is lost; take another.
    ///
    /// On a cluster it is a connection to the URL's node: a cluster carries every
    /// `PUBLISH` to every node, so it hears what is published through any of them.
    /// (Sharded channels, `SSUBSCRIBE`, are not served.)
    pub async fn pubsub(&self) -> Result<PubSub, RedisError> {
        self.connection_within_timeout(self.shared.client.get_async_pubsub()).await
    }

    /// `error`, from a command of this connection, as a [`RedisError`]: a timeout as
    /// [`TimedOut`](RedisError::TimedOut), anything else as
    /// [`Command`](RedisError::Command), scrubbed of credentials.
    pub fn command_error(&self, error: &redis::RedisError) -> RedisError {
        if error.is_timeout() {
            RedisError::TimedOut { endpoint: self.shared.endpoint.clone(), after: self.shared.response_timeout }
        } else {
            RedisError::Command { endpoint: self.shared.endpoint.clone(), reason: self.scrub(&error.to_string()) }
        }
    }

    /// `message` with this connection's credentials replaced by `***`.
    pub fn scrub(&self, message: &str) -> String {
        scrub(message, &self.shared.secrets)
    }

    async fn connection_within_timeout<C>(
        &self,
        connect: impl Future<Output = redis::RedisResult<C>>,
    ) -> Result<C, RedisError> {
        let after = self.shared.connect_timeout;
        match tokio::time::timeout(after, connect).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(error)) => Err(RedisError::Connect {
                endpoint: self.shared.endpoint.clone(),
                reason: self.scrub(&error.to_string()),
            }),
            Err(_) => Err(RedisError::Connect {
                endpoint: self.shared.endpoint.clone(),
                reason: format!("no connection within {after:?}"),
            }),
        }
    }
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnection")
            .field("endpoint", &self.shared.endpoint)
            .field("cluster", &self.is_cluster())
            .field("key_prefix", &self.shared.key_prefix)
            .field("response_timeout", &self.shared.response_timeout)
            .finish_non_exhaustive()
    }
}

/// The clients of a cluster's connections, both seeded by the URL's node.
struct ClusterClients {
    /// The shared connection's: every request bounded by the response timeout.
    shared: ClusterClient,
    /// Dedicated connections': no response timeout, for blocking reads.
    blocking: ClusterClient,
}

impl ClusterClients {
    fn new(seed: redis::ConnectionInfo, config: &RedisConfig) -> redis::RedisResult<ClusterClients> {
        let builder = || {
            ClusterClientBuilder::new([seed.clone()])
                .connection_timeout(config.connect_timeout)
                .retries(CLUSTER_RETRIES)
                .min_retry_wait(duration_millis(RECONNECT_MIN_DELAY))
                .max_retry_wait(duration_millis(RECONNECT_MAX_DELAY))
        };
        Ok(ClusterClients {
            shared: builder().response_timeout(config.response_timeout).build()?,
            blocking: builder().overall_response_timeout(None).build()?,
        })
    }
}

fn duration_millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// rustls needs a process-wide crypto provider: ring, the workspace's one, unless the
/// application installed one already.
#[cfg(feature = "tls")]
fn install_tls_provider(config: &RedisConfig) {
    if config.uses_tls() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

#[cfg(not(feature = "tls"))]
fn install_tls_provider(config: &RedisConfig) {
    // `validate` refused rediss:// already; nothing to install without TLS.
    let _ = config.uses_tls();
}
