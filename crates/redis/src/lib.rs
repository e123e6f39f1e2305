//! # harvester-redis
//!
//! The Redis connection that harvester's distributed parts share (the distributed rate
//! limit of harvester-resilience, the shared proxy state of harvester-proxypool, the
//! Redis Streams of harvester-pipeline), so that none of them depends on another for it.
//!
//! - [`RedisConfig`] says where Redis is (URL, user, password, database, key prefix,
//!   timeouts), with `Default`, serde and [`validate`](RedisConfig::validate);
//!   credentials never appear in `Debug`, `Display`, serialized output, errors or logs.
//! - [`RedisConnection`] is one multiplexed connection (`redis`'s `ConnectionManager`, or
//!   its cluster connection) that reconnects by itself; users share it by cloning. Every
//!   command through [`run`](RedisConnection::run) is bounded by the response timeout.
//!   [`dedicated`](RedisConnection::dedicated) connections, without that timeout, serve
//!   blocking reads; [`pubsub`](RedisConnection::pubsub) ones serve subscriptions.
//! - [`Connection`] is what commands are sent on, standalone or cluster alike: it
//!   implements `redis::aio::ConnectionLike`, so commands, pipelines and scripts run on
//!   it unchanged.
//! - [`RedisError`] is what goes wrong, scrubbed of credentials ([`scrub`]).
//!
//! ## Redis Cluster
//!
//! Set [`RedisConfig::cluster`] and give one node as the URL (the seed): the other nodes
//! and the slots they serve are discovered from it, each command goes to the master of
//! its key's slot, and `MOVED` / `ASK` redirections and lost nodes are followed. Connecting
//! checks `INFO cluster` and refuses a server of the other kind
//! ([`RedisError::WrongMode`], naming the field to change). A cluster has database 0 only,
//! and its seed cannot be a unix socket.
//!
//! **The hash-tag rule.** On a cluster, a script, a `MULTI`/`EXEC`, a pipeline and a
//! multi-key command must touch keys of **one slot**, and a script must receive every key
//! it touches through `KEYS` (a key it builds itself may live on another node). Keys place
//! by their hash tag, the text between the first `{` and the next `}`
//! ([`hash_tag`]): give the keys of one call a common tag, and check it with
//! [`same_slot`]. Harvester's own keys follow the rule (the shared proxy state puts all
//! of a namespace's keys under one tag; the rate limiter touches one key per call; the
//! stream source and sink touch one stream per command). Pub/sub works on a cluster as on
//! one server: Redis carries every `PUBLISH` to every node.
//!
//! ```no_run
//! use harvester_redis::{RedisConfig, RedisConnection, RedisError};
//!
//! # async fn run() -> Result<(), RedisError> {
//! let config = RedisConfig { url: "redis://10.0.0.5:7000".into(), cluster: true, ..Default::default() };
//! let redis = RedisConnection::connect(&config).await?;
//! // `{jobs}` puts both keys in one slot, so one MULTI/EXEC may touch them.
//! let (a, b) = (format!("{}{{jobs}}:queued", redis.key_prefix()), format!("{}{{jobs}}:seen", redis.key_prefix()));
//! assert!(harvester_redis::same_slot([&a, &b]));
//! let () = redis
//!     .run(|mut c| async move { redis::pipe().atomic().incr(&a, 1).ignore().incr(&b, 1).ignore().query_async(&mut c).await })
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! ```no_run
//! use std::time::Duration;
//! use harvester_redis::{RedisConfig, RedisConnection, RedisError};
//!
//! # async fn run() -> Result<(), RedisError> {
//! let config = RedisConfig {
//!     url: "redis://127.0.0.1:6379".into(),
//!     response_timeout: Duration::from_millis(100),
//!     ..Default::default()
//! };
//! let redis = RedisConnection::connect(&config).await?;
//! let pong: String = redis.run(|mut c| async move { redis::cmd("PING").query_async(&mut c).await }).await?;
//! assert_eq!(pong, "PONG");
//! # Ok(())
//! # }
//! ```
//!
//! ## Feature flags
//!
//! - `tls`: `rediss://` URLs, over rustls with the ring provider (the workspace's one TLS
//!   stack).

#![forbid(unsafe_code)]

mod cluster;
mod config;
mod connection;
mod error;
mod link;

pub use cluster::{hash_tag, same_slot};
pub use config::RedisConfig;
pub use connection::RedisConnection;
pub use error::{ConfigError, RedisError, scrub};
pub use link::Connection;
/// The `redis` crate itself, so that users build commands with the version this crate uses.
pub use redis;
