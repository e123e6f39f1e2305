//! One quota on one Redis key, shared by every process that uses the key.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use harvester_redis::RedisConnection;

use super::config::DistributedOptions;
use super::error::Refusal;
use super::limiter::{Answer, Core, DistributedStats};
use crate::error::ConfigError;
use crate::rate_limit::{Quota, RateLimiter};

/// A GCRA limiter whose state lives in Redis under one key: every process (and every clone)
/// using the same key and quota shares one rate.
///
/// The methods mirror [`RateLimiter`]'s, made async: [`check`](Self::check) (reject mode),
/// [`reserve`](Self::reserve) (wait mode) and their `_n` forms taking several cells at once.
/// A refusal tells when to retry ([`Refusal::RateLimited`] holds a [`NotUntil`](crate::rate_limit::NotUntil)).
///
/// Cheap to clone: clones share the connection, the deny-cache and the counters.
///
/// ```no_run
/// use std::time::Duration;
/// use harvester_resilience::distributed::{DistributedRateLimiter, RedisConfig, RedisConnection};
/// use harvester_resilience::rate_limit::Quota;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let redis = RedisConnection::connect(&RedisConfig { url: "redis://127.0.0.1:6379".into(), ..Default::default() }).await?;
/// // Every process running this shares 100 calls per second to the search API.
/// let limiter = DistributedRateLimiter::new(redis, "search-api", Quota::per_second(100)?);
/// match limiter.check().await {
///     Ok(()) => { /* call the API */ }
///     Err(refusal) => println!("not now: {refusal}, retry in {:?}", refusal.retry_in()),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct DistributedRateLimiter {
    inner: Arc<Direct>,
}

struct Direct {
    core: Core,
    /// `prefix + key`.
    redis_key: String,
    /// Clock reading before which not one cell conforms (the deny-cache); 0: unknown.
    denied_until: AtomicU64,
    fallback: Option<RateLimiter>,
}

impl DistributedRateLimiter {
    /// A limiter of `quota` on the Redis key `prefix + key`, failing closed when Redis is down.
    pub fn new(connection: RedisConnection, key: &str, quota: Quota) -> DistributedRateLimiter {
        DistributedRateLimiter::with_core(Core::with_defaults(connection, quota), key)
    }

    /// A limiter with `options` (failure policy, name, probe interval).
    pub fn with_options(
        connection: RedisConnection,
        key: &str,
        quota: Quota,
        options: DistributedOptions,
    ) -> Result<DistributedRateLimiter, ConfigError> {
        Ok(DistributedRateLimiter::with_core(Core::new(connection, quota, &options)?, key))
    }

    fn with_core(core: Core, key: &str) -> DistributedRateLimiter {
        let redis_key = format!("{}{key}", core.connection().key_prefix());
        let fallback = core.fallback_quota().map(RateLimiter::new);
        DistributedRateLimiter {
            inner: Arc::new(Direct { core, redis_key, denied_until: AtomicU64::new(0), fallback }),
        }
    }

    /// Takes one cell now, or says why not.
    pub async fn check(&self) -> Result<(), Refusal> {
        self.reserve_n(1, Duration::ZERO).await.map(|_| ())
    }

    /// Takes `cost` cells (at most the burst) at once now, or says why not.
    pub async fn check_n(&self, cost: u32) -> Result<(), Refusal> {
        self.reserve_n(cost, Duration::ZERO).await.map(|_| ())
    }

    /// Wait mode: takes the next cell if it is available within `max_wait` and returns how
    /// long to wait before using it; see [`RateLimiter::reserve`].
    pub async fn reserve(&self, max_wait: Duration) -> Result<Duration, Refusal> {
        self.reserve_n(1, max_wait).await
    }

    /// Wait mode for `cost` cells at once (0 takes nothing and always succeeds).
    pub async fn reserve_n(&self, cost: u32, max_wait: Duration) -> Result<Duration, Refusal> {
        let this = &*self.inner;
        if this.core.precheck(cost)? {
            return Ok(Duration::ZERO);
        }
        let now = this.core.now();
        if let Some(refusal) = this.core.denied_by_cache(this.denied_until.load(Ordering::Relaxed), now, cost, max_wait)
        {
            return Err(refusal);
        }
        match this.core.ask(&this.redis_key, now, cost, max_wait).await {
            Answer::Admitted(wait) => Ok(wait),
            Answer::Refused { refusal, single_until } => {
                this.denied_until.fetch_max(single_until, Ordering::Relaxed);
                Err(Refusal::RateLimited(refusal))
            }
            Answer::Failed(error) => this.core.fall_back(error, || match &this.fallback {
                Some(local) => local.reserve_n(cost, max_wait),
                None => Ok(Duration::ZERO),
            }),
        }
    }

    /// The quota it enforces.
    pub fn quota(&self) -> Quota {
        self.inner.core.quota()
    }

    /// The Redis key its state lives under (prefix included).
    pub fn redis_key(&self) -> &str {
        &self.inner.redis_key
    }

    /// Its name (metrics label).
    pub fn name(&self) -> &str {
        self.inner.core.name()
    }

    /// What it did so far.
    pub fn stats(&self) -> DistributedStats {
        self.inner.core.stats()
    }

    /// Whether Redis is taken as down (the last round trip failed): checks are decided by
    /// the failure policy, with one probe of Redis per probe interval.
    pub fn in_outage(&self) -> bool {
        self.inner.core.in_outage()
    }
}

impl fmt::Debug for DistributedRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DistributedRateLimiter")
            .field("name", &self.name())
            .field("redis_key", &self.inner.redis_key)
            .field("quota", &self.quota())
            .field("policy", &self.inner.core.policy())
            .field("connection", self.inner.core.connection())
            .finish()
    }
}
