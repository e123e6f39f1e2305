//! GCRA rate limiting shared by every process through Redis (feature `redis`).
//!
//! The local [`rate_limit`](crate::rate_limit) holds within one process; N processes
//! sending to the same site each take the whole quota. Here the GCRA state (one TAT per
//! key) lives in Redis, and each check is **one atomic Lua script** ([`GCRA_SCRIPT`]):
//! read the TAT, decide, write the new TAT with an expiry, with the time taken from Redis
//! (`TIME`) so that the clients' clocks never matter. The script is called by `EVALSHA` and
//! loaded again when Redis answers `NOSCRIPT` (after a restart or `SCRIPT FLUSH`). A key
//! expires once its TAT has passed: Redis holds only the keys that still matter.
//!
//! **On a Redis Cluster** each check touches one key, passed in `KEYS`: it runs on the
//! node of that key's slot, and the keys of different hosts spread over the nodes.
//!
//! - [`RedisConfig`] says where Redis is (URL, user, password, database, key prefix,
//!   timeouts); credentials never appear in `Debug`, `Display`, errors or logs.
//! - [`RedisConnection`] is one multiplexed connection (`redis`'s `ConnectionManager`, or
//!   its cluster connection with [`RedisConfig::cluster`]) that reconnects by itself;
//!   limiters share it by cloning.
//! - [`Connection`] is what [`RedisConnection::run`] hands a command, standalone or
//!   cluster alike.
//!
//!   These come from the harvester-redis crate (re-exported here), which the shared proxy
//!   state and the Redis Streams of the other crates use too: one connection can serve
//!   them all.
//! - [`DistributedRateLimiter`] (one key) and [`DistributedKeyedRateLimiter`] (a key per
//!   host, client, proxy) mirror the local limiters, made async: `check`, `reserve` (wait
//!   mode), and `_n` forms for a cost of several cells.
//! - [`DistributedRateLimitLayer`] puts one in front of a tower service, like
//!   [`RateLimitLayer`](crate::RateLimitLayer); `per_host` keys by the target host.
//!
//! **Deny-cache.** When Redis refuses a key with "retry in `d`", further checks of that key
//! in this process are refused locally until then, with no round trip: a flood of calls to
//! a limited host costs Redis one command per refusal period, not one per call.
//!
//! **When Redis is down** (unreachable, not answering within the response timeout,
//! refusing the login), the [`FailurePolicy`] decides: fail open, fail closed (refused with
//! [`LimiterUnavailable`](crate::LimiterUnavailable)), or decide locally on a share of the
//! quota. A check never waits longer than the response timeout; after a failure, checks
//! are decided by the policy at once, and one probe per `probe_interval` asks Redis again.
//! The first answer ends the outage.
//!
//! Metrics (label `limiter`): `harvester_distributed_rate_limit_allowed_total` and
//! `harvester_distributed_rate_limit_denied_total` (label `source`: `redis`, `deny_cache`,
//! `fail_open`, `fail_closed`, `local`), `harvester_distributed_rate_limit_errors_total`,
//! and the gauge `harvester_distributed_rate_limit_fallback` (1 while Redis is taken as
//! down). Outages begin and end with a `tracing` warning and info event.
//!
//! ```no_run
//! use std::time::Duration;
//! use harvester_resilience::distributed::{
//!     DistributedKeyedRateLimiter, DistributedOptions, DistributedRateLimitLayer, FailurePolicy, RedisConfig,
//!     RedisConnection,
//! };
//! use harvester_resilience::rate_limit::{HostKey, Quota};
//! use harvester_resilience::BoxError;
//! use tower::{Service, ServiceBuilder, ServiceExt};
//!
//! # async fn run() -> Result<(), BoxError> {
//! let redis = RedisConnection::connect(&RedisConfig { url: "redis://127.0.0.1:6379".into(), ..Default::default() }).await?;
//! // 2 requests per second per host across every instance; 4 instances, so each takes a
//! // quarter of it while Redis is away.
//! let options = DistributedOptions { failure_policy: FailurePolicy::Local { share: 0.25 }, ..Default::default() };
//! let per_host = DistributedKeyedRateLimiter::<HostKey>::with_options(redis, "crawl", Quota::per_second(2)?, options)?;
//! let mut client = ServiceBuilder::new()
//!     .layer(DistributedRateLimitLayer::per_host(per_host).wait_up_to(Duration::from_secs(3)))
//!     .service_fn(|req: http::Request<()>| async move { Ok::<_, BoxError>(req.uri().to_string()) });
//! client.ready().await?.call(http::Request::get("http://a.example/").body(())?).await?;
//! # Ok(())
//! # }
//! ```

mod config;
mod direct;
mod error;
mod keyed;
mod layer;
mod limiter;
mod script;
mod service;

pub use config::{DistributedOptions, DistributedRateLimitConfig, FailurePolicy};
pub use direct::DistributedRateLimiter;
pub use error::{DistributedError, Refusal};
pub use harvester_redis::{Connection, RedisConfig, RedisConnection};
pub use keyed::DistributedKeyedRateLimiter;
pub use layer::DistributedRateLimitLayer;
pub use limiter::DistributedStats;
pub use script::GCRA_SCRIPT;
pub use service::{DistributedHttpLimit, DistributedKeyed, DistributedLimit, DistributedRateLimit};
