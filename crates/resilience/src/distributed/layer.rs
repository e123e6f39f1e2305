//! The cheap, cloneable description of a distributed rate limit, applied to services.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use harvester_redis::RedisConnection;
use tower::Layer;

use super::config::DistributedRateLimitConfig;
use super::direct::DistributedRateLimiter;
use super::error::DistributedError;
use super::keyed::DistributedKeyedRateLimiter;
use super::service::{DistributedHttpLimit, DistributedKeyed, DistributedRateLimit};
use crate::key::{HostKey, TargetHost};
use crate::rate_limit::KeyBy;

/// Applies a distributed rate limit to services, as [`RateLimitLayer`](crate::RateLimitLayer)
/// does a local one: reject mode by default, [`wait_up_to`](Self::wait_up_to) for wait
/// mode, one limit shared by every service built from the layer, every clone, and every
/// process using the same Redis keys.
#[must_use = "a layer does nothing until it wraps a service"]
pub struct DistributedRateLimitLayer<L> {
    limit: Arc<L>,
    max_wait: Duration,
}

impl<L> DistributedRateLimitLayer<L> {
    /// Enforces `limit` (any [`DistributedLimit`](super::DistributedLimit)) in reject mode.
    pub fn new(limit: L) -> Self {
        DistributedRateLimitLayer { limit: Arc::new(limit), max_wait: Duration::ZERO }
    }

    /// Wait mode: a call waits for its cell up to `max_wait` and is refused beyond; the
    /// cell is reserved (in Redis) when the call is made. `Duration::ZERO` is reject mode.
    pub fn wait_up_to(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// The limit, shared by every service built from this layer.
    pub fn limit(&self) -> &L {
        &self.limit
    }

    /// The longest wait; zero in reject mode.
    pub fn max_wait(&self) -> Duration {
        self.max_wait
    }
}

impl DistributedRateLimitLayer<DistributedRateLimiter> {
    /// One limit for every request.
    pub fn direct(limiter: DistributedRateLimiter) -> Self {
        DistributedRateLimitLayer::new(limiter)
    }
}

impl<K, E> DistributedRateLimitLayer<DistributedKeyed<K, E>> {
    /// One limit per key, the key found by `extractor` (a [`KeyExtractor`](crate::KeyExtractor), such
    /// as a closure `Fn(&Req) -> Option<K>`); a request without a key is not limited.
    pub fn keyed(limiter: DistributedKeyedRateLimiter<K>, extractor: E) -> Self {
        DistributedRateLimitLayer::new(DistributedKeyed::new(limiter, extractor))
    }
}

impl DistributedRateLimitLayer<DistributedKeyed<HostKey, TargetHost>> {
    /// One limit per target host of `http::Request`s ([`HostKey::of`]).
    pub fn per_host(limiter: DistributedKeyedRateLimiter<HostKey>) -> Self {
        DistributedRateLimitLayer::keyed(limiter, TargetHost::or_empty())
    }
}

impl DistributedRateLimitLayer<DistributedHttpLimit> {
    /// The layer `config` describes, after validating it. The connection is made at the
    /// first request (so a process starts while Redis is down); must be called inside a
    /// tokio runtime. The Redis key is the prefix plus `config.name` (direct), or plus
    /// `config.name:host` (per host).
    pub fn from_config(config: DistributedRateLimitConfig) -> Result<Self, DistributedError> {
        config.validate()?;
        let connection = RedisConnection::lazy(&config.redis)?;
        let quota = config.quota()?;
        let options = config.options();
        let limit = match config.key {
            KeyBy::Global => DistributedHttpLimit::Global(DistributedRateLimiter::with_options(
                connection,
                &config.name,
                quota,
                options,
            )?),
            KeyBy::Host => DistributedHttpLimit::PerHost(DistributedKeyed::new(
                DistributedKeyedRateLimiter::with_options(connection, &config.name, quota, options)?,
                TargetHost::or_empty(),
            )),
        };
        Ok(DistributedRateLimitLayer::new(limit).wait_up_to(config.as_local().effective_max_wait()))
    }
}

impl<S, L> Layer<S> for DistributedRateLimitLayer<L> {
    type Service = DistributedRateLimit<S, L>;

    fn layer(&self, inner: S) -> Self::Service {
        DistributedRateLimit::new(inner, Arc::clone(&self.limit), self.max_wait)
    }
}

impl<L> Clone for DistributedRateLimitLayer<L> {
    fn clone(&self) -> Self {
        DistributedRateLimitLayer { limit: Arc::clone(&self.limit), max_wait: self.max_wait }
    }
}

impl<L: fmt::Debug> fmt::Debug for DistributedRateLimitLayer<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DistributedRateLimitLayer")
            .field("limit", &self.limit)
            .field("max_wait", &self.max_wait)
            .finish()
    }
}
