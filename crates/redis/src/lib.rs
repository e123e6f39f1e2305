//! # harvester-redis
//!
//! The Redis connection that harvester's distributed parts share (the distributed rate
//! limit of harvester-resilience, the shared proxy state of harvester-proxypool, the
//! Redis Streams of harvester-pipeline), so that none of them depends on another for it.
//!
//! - [`RedisConfig`] says where Redis is (URL, user, password, database, key prefix,
//!   timeouts), with `Default`, serde and [`validate`](RedisConfig::validate);
//!   credentials never appear in `Debug`, `Display`, serialized output, errors or logs.
//! - [`RedisConnection`] is one multiplexed connection (`redis`'s `ConnectionManager`)
//!   that reconnects by itself; users share it by cloning. Every command through
//!   [`run`](RedisConnection::run) is bounded by the response timeout.
//!   [`dedicated`](RedisConnection::dedicated) connections, without that timeout, serve
//!   blocking reads; [`pubsub`](RedisConnection::pubsub) ones serve subscriptions.
//! - [`RedisError`] is what goes wrong, scrubbed of credentials ([`scrub`]).
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

mod config;
mod connection;
mod error;

pub use config::RedisConfig;
pub use connection::RedisConnection;
pub use error::{ConfigError, RedisError, scrub};
/// The `redis` crate itself, so that users build commands with the version this crate uses.
pub use redis;
