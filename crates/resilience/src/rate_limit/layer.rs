//! The cheap, cloneable description of a rate limit, applied to services.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use tower::Layer;

use super::config::{HttpLimit, RateLimitConfig};
use super::gcra::RateLimiter;
use super::keyed::{Keyed, KeyedRateLimiter};
use super::quota::Quota;
use super::service::{RateLimit, Telemetry};
use crate::error::ConfigError;
use crate::key::{HostKey, TargetHost};

const DEFAULT_NAME: &str = "rate_limit";

/// Applies a rate limit to services.
///
/// The limit's state is created with the layer and shared by every service the layer
/// wraps and all their clones: one quota for all of them. Reject mode by default;
/// [`wait_up_to`](Self::wait_up_to) turns on wait mode.
#[must_use = "a layer does nothing until it wraps a service"]
pub struct RateLimitLayer<L> {
    limit: Arc<L>,
    max_wait: Duration,
    telemetry: Arc<Telemetry>,
}

impl<L> RateLimitLayer<L> {
    /// Enforces `limit` (any [`Limit`](super::Limit)) in reject mode.
    pub fn new(limit: L) -> Self {
        RateLimitLayer {
            limit: Arc::new(limit),
            max_wait: Duration::ZERO,
            telemetry: Arc::new(Telemetry::register(DEFAULT_NAME)),
        }
    }

    /// Wait mode: a call waits for its cell up to `max_wait` and is refused beyond; the
    /// cell is reserved when the call is made, so waiting calls are spaced at the rate.
    /// `Duration::ZERO` is reject mode.
    pub fn wait_up_to(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// Labels metrics (`limiter = name`) and events. Metric handles are registered here,
    /// once: install the `metrics` recorder before building layers.
    pub fn named(mut self, name: &str) -> Self {
        self.telemetry = Arc::new(Telemetry::register(name));
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

impl RateLimitLayer<RateLimiter> {
    /// One `quota` for every request.
    pub fn direct(quota: Quota) -> Self {
        RateLimitLayer::new(RateLimiter::new(quota))
    }
}

impl<K: Hash + Eq + Clone, E> RateLimitLayer<Keyed<K, E>> {
    /// One `quota` per key, the key found by `extractor` (a [`KeyExtractor`](crate::KeyExtractor),
    /// such as a closure `Fn(&Req) -> Option<K>`); a request without a key is not limited.
    pub fn keyed(quota: Quota, extractor: E) -> Self {
        RateLimitLayer::new(Keyed::new(KeyedRateLimiter::new(quota), extractor))
    }
}

impl RateLimitLayer<Keyed<HostKey, TargetHost>> {
    /// One `quota` per target host of `http::Request`s: the default for HTTP.
    pub fn per_host(quota: Quota) -> Self {
        RateLimitLayer::keyed(quota, TargetHost::or_empty())
    }
}

impl RateLimitLayer<HttpLimit> {
    /// The layer `config` describes, after validating it.
    pub fn from_config(config: RateLimitConfig) -> Result<Self, ConfigError> {
        let max_wait = config.effective_max_wait();
        let name = config.name.clone();
        Ok(RateLimitLayer::new(HttpLimit::from_config(config)?).wait_up_to(max_wait).named(&name))
    }
}

impl<S, L> Layer<S> for RateLimitLayer<L> {
    type Service = RateLimit<S, L>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit::new(inner, Arc::clone(&self.limit), self.max_wait, Arc::clone(&self.telemetry))
    }
}

impl<L> Clone for RateLimitLayer<L> {
    fn clone(&self) -> Self {
        RateLimitLayer {
            limit: Arc::clone(&self.limit),
            max_wait: self.max_wait,
            telemetry: Arc::clone(&self.telemetry),
        }
    }
}

impl<L: fmt::Debug> fmt::Debug for RateLimitLayer<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("name", &self.telemetry.name)
            .field("limit", &self.limit)
            .field("max_wait", &self.max_wait)
            .finish()
    }
}
