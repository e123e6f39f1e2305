//! One quota per key (target host, client, proxy), each key its own expiring Redis key.

use std::borrow::Borrow;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use harvester_redis::RedisConnection;

use super::config::DistributedOptions;
use super::error::Refusal;
use super::limiter::{Answer, Core, DistributedStats};
use crate::error::ConfigError;
use crate::rate_limit::{DEFAULT_MAX_KEYS, KeyedRateLimiter, Quota};

/// A GCRA limiter per key whose state lives in Redis under `prefix + namespace + ":" + key`
/// (the key as [`Display`](fmt::Display) shows it): every process using the same namespace
/// and quota shares one rate per key. Keys expire in Redis once their state no longer
/// matters, so Redis holds only the keys that are live.
///
/// The methods mirror [`KeyedRateLimiter`]'s, made async. The local deny-cache holds at
/// most `max_keys` refused keys (expired ones are swept when it is full; a key that finds
/// it full still full is simply not cached).
///
/// ```no_run
/// use harvester_resilience::distributed::{DistributedKeyedRateLimiter, RedisConfig, RedisConnection};
/// use harvester_resilience::rate_limit::{HostKey, Quota};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let redis = RedisConnection::connect(&RedisConfig::default()).await?;
/// let per_host = DistributedKeyedRateLimiter::<HostKey>::new(redis, "crawl", Quota::per_second(2)?);
/// per_host.check_key(&HostKey::new("a.example")).await?;
/// # Ok(())
/// # }
/// ```
pub struct DistributedKeyedRateLimiter<K> {
    inner: Arc<KeyedInner<K>>,
}

struct KeyedInner<K> {
    core: Core,
    /// `prefix + namespace + ":"`.
    key_prefix: String,
    /// Per refused key, the clock reading before which not one cell conforms.
    denied_until: DashMap<K, u64>,
    max_keys: usize,
    fallback: Option<KeyedRateLimiter<K>>,
}

impl<K: Hash + Eq + Clone> DistributedKeyedRateLimiter<K> {
    /// A limiter of `quota` per key under `namespace`, failing closed when Redis is down.
    pub fn new(connection: RedisConnection, namespace: &str, quota: Quota) -> Self {
        Self::with_core(Core::with_defaults(connection, quota), namespace, DEFAULT_MAX_KEYS)
    }

    /// A limiter with `options` (failure policy, name, probe interval, local key bound).
    pub fn with_options(
        connection: RedisConnection,
        namespace: &str,
        quota: Quota,
        options: DistributedOptions,
    ) -> Result<Self, ConfigError> {
        let max_keys = options.max_keys;
        Ok(Self::with_core(Core::new(connection, quota, &options)?, namespace, max_keys))
    }

    fn with_core(core: Core, namespace: &str, max_keys: usize) -> Self {
        let key_prefix = format!("{}{namespace}:", core.connection().key_prefix());
        let fallback =
            core.fallback_quota().and_then(|quota| KeyedRateLimiter::new(quota).with_max_keys(max_keys).ok());
        DistributedKeyedRateLimiter {
            inner: Arc::new(KeyedInner { core, key_prefix, denied_until: DashMap::new(), max_keys, fallback }),
        }
    }

    /// Takes one cell for `key` now, or says why not.
    pub async fn check_key<Q>(&self, key: &Q) -> Result<(), Refusal>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + fmt::Display + ?Sized,
    {
        self.reserve_key_n(key, 1, Duration::ZERO).await.map(|_| ())
    }

    /// Takes `cost` cells (at most the burst) for `key` at once now, or says why not.
    pub async fn check_key_n<Q>(&self, key: &Q, cost: u32) -> Result<(), Refusal>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + fmt::Display + ?Sized,
    {
        self.reserve_key_n(key, cost, Duration::ZERO).await.map(|_| ())
    }

    /// Wait mode for `key`: see [`DistributedRateLimiter::reserve`](super::DistributedRateLimiter::reserve).
    pub async fn reserve_key<Q>(&self, key: &Q, max_wait: Duration) -> Result<Duration, Refusal>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + fmt::Display + ?Sized,
    {
        self.reserve_key_n(key, 1, max_wait).await
    }

    /// Wait mode for `cost` cells of `key` at once (0 takes nothing and always succeeds).
    pub async fn reserve_key_n<Q>(&self, key: &Q, cost: u32, max_wait: Duration) -> Result<Duration, Refusal>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + fmt::Display + ?Sized,
    {
        let this = &*self.inner;
        if this.core.precheck(cost)? {
            return Ok(Duration::ZERO);
        }
        let now = this.core.now();
        let cached = this.denied_until.get(key).map(|until| *until).unwrap_or(0);
        if let Some(refusal) = this.core.denied_by_cache(cached, now, cost, max_wait) {
            return Err(refusal);
        }
        let redis_key = format!("{}{key}", this.key_prefix);
        match this.core.ask(&redis_key, now, cost, max_wait).await {
            Answer::Admitted(wait) => Ok(wait),
            Answer::Refused { refusal, single_until } => {
                if single_until > 0 {
                    this.remember_refusal(key, single_until);
                }
                Err(Refusal::RateLimited(refusal))
            }
            Answer::Failed(error) => this.core.fall_back(error, || match &this.fallback {
                Some(local) => local.reserve_key_n(key, cost, max_wait),
                None => Ok(Duration::ZERO),
            }),
        }
    }

    /// The quota every key gets.
    pub fn quota(&self) -> Quota {
        self.inner.core.quota()
    }

    /// The Redis key of `key` (prefix and namespace included).
    pub fn redis_key<Q: fmt::Display + ?Sized>(&self, key: &Q) -> String {
        format!("{}{key}", self.inner.key_prefix)
    }

    /// Its name (metrics label).
    pub fn name(&self) -> &str {
        self.inner.core.name()
    }

    /// What it did so far.
    pub fn stats(&self) -> DistributedStats {
        self.inner.core.stats()
    }

    /// Whether Redis is taken as down (the last round trip failed).
    pub fn in_outage(&self) -> bool {
        self.inner.core.in_outage()
    }

    /// Keys in the local deny-cache (expired ones included until a sweep).
    pub fn denied_keys(&self) -> usize {
        self.inner.denied_until.len()
    }
}

impl<K: Hash + Eq + Clone> KeyedInner<K> {
    fn remember_refusal<Q>(&self, key: &Q, single_until: u64)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(mut until) = self.denied_until.get_mut(key) {
            *until = (*until).max(single_until);
            return;
        }
        if self.denied_until.len() >= self.max_keys {
            let now = self.core.now();
            self.denied_until.retain(|_, until| *until > now);
            if self.denied_until.len() >= self.max_keys {
                return;
            }
        }
        self.denied_until.insert(key.to_owned(), single_until);
    }
}

impl<K> Clone for DistributedKeyedRateLimiter<K> {
    fn clone(&self) -> Self {
        DistributedKeyedRateLimiter { inner: Arc::clone(&self.inner) }
    }
}

impl<K> fmt::Debug for DistributedKeyedRateLimiter<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DistributedKeyedRateLimiter")
            .field("name", &&**self.inner.core.name())
            .field("key_prefix", &self.inner.key_prefix)
            .field("quota", &self.inner.core.quota())
            .field("policy", &self.inner.core.policy())
            .field("connection", self.inner.core.connection())
            .finish()
    }
}
