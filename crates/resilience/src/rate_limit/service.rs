//! The rate-limiting `Service`.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use metrics::Counter;
use tower::Service;

use super::clock::Clock;
use super::future::ResponseFuture;
use super::gcra::RateLimiter;
use super::keyed::Keyed;
use crate::error::{BoxError, RateLimited};
use crate::key::KeyExtractor;

/// What a [`RateLimit`] service enforces: decides, for one request, whether it may go now,
/// after a wait, or not at all.
///
/// Implemented by [`RateLimiter`] (one limit for every request), [`Keyed`] (one per key)
/// and [`HttpLimit`](super::HttpLimit) (either, from configuration); implement it to
/// combine limits (per proxy and per host, say). The decision is synchronous: it must not
/// wait for anything but the CPU.
pub trait Limit<Req> {
    /// Takes a cell for `req` now if one is available within `max_wait`, and returns how
    /// long to wait before sending (zero: at once). The cell is taken at once.
    fn reserve(&self, req: &Req, max_wait: Duration) -> Result<Duration, RateLimited>;
}

impl<Req, C: Clock> Limit<Req> for RateLimiter<C> {
    #[inline]
    fn reserve(&self, _req: &Req, max_wait: Duration) -> Result<Duration, RateLimited> {
        RateLimiter::reserve(self, max_wait).map_err(|refused| RateLimited { retry_in: refused.retry_in(), key: None })
    }
}

impl<Req, K, E, C, S> Limit<Req> for Keyed<K, E, C, S>
where
    E: KeyExtractor<Req, Key = K>,
    K: std::hash::Hash + Eq + Clone + fmt::Display,
    C: Clock,
    S: std::hash::BuildHasher + Clone,
{
    #[inline]
    fn reserve(&self, req: &Req, max_wait: Duration) -> Result<Duration, RateLimited> {
        let Some(key) = self.extractor().extract(req) else {
            return Ok(Duration::ZERO);
        };
        self.limiter()
            .reserve_key(&key, max_wait)
            .map_err(|refused| RateLimited { retry_in: refused.retry_in(), key: Some(key.to_string()) })
    }
}

/// Metric handles, registered once when the layer is built so that the hot path only
/// increments them (no key building, no recorder lookup per call).
pub(crate) struct Telemetry {
    pub(crate) name: Arc<str>,
    allowed: Counter,
    rejected: Counter,
    waited: Counter,
}

impl Telemetry {
    pub(crate) fn register(name: &str) -> Telemetry {
        let name: Arc<str> = Arc::from(name);
        let label = name.to_string();
        Telemetry {
            allowed: metrics::counter!("harvester_rate_limit_allowed_total", "limiter" => label.clone()),
            rejected: metrics::counter!("harvester_rate_limit_rejected_total", "limiter" => label.clone()),
            waited: metrics::counter!("harvester_rate_limit_waited_total", "limiter" => label),
            name,
        }
    }
}

/// Enforces a [`Limit`] on the requests to an inner service; built by
/// [`RateLimitLayer`](super::RateLimitLayer).
///
/// Every clone shares the limit: N clones and any number of tasks together pass at most
/// the quota (tower's own `RateLimit` keeps its state per clone, so every clone gets the
/// full rate).
///
/// The decision is made in `call`, not in `poll_ready`, which only asks the inner service.
/// A limit reserved in `poll_ready` belongs to one clone until that clone calls: tower's
/// `RateLimit` loses it when a framework clones a ready service, or drops one that polled
/// ready but never called, and one idle clone can sit on the only cell. Deciding in `call`
/// takes a cell only for a request that exists. A refused request fails with
/// [`RateLimited`]; in wait mode the response future sleeps, then calls the inner service
/// it took from `self` (the ready one; a clone stays behind).
pub struct RateLimit<S, L> {
    inner: S,
    limit: Arc<L>,
    max_wait: Duration,
    telemetry: Arc<Telemetry>,
}

impl<S, L> RateLimit<S, L> {
    pub(crate) fn new(inner: S, limit: Arc<L>, max_wait: Duration, telemetry: Arc<Telemetry>) -> Self {
        RateLimit { inner, limit, max_wait, telemetry }
    }

    /// The limit, shared with every clone.
    pub fn limit(&self) -> &L {
        &self.limit
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, consuming this one.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, L, Req> Service<Req> for RateLimit<S, L>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    L: Limit<Req>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        match self.limit.reserve(&req, self.max_wait) {
            Ok(wait) if wait.is_zero() => {
                self.telemetry.allowed.increment(1);
                ResponseFuture::called(self.inner.call(req))
            }
            Ok(wait) => {
                self.telemetry.allowed.increment(1);
                self.telemetry.waited.increment(1);
                let clone = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, clone);
                // Deadline from tokio's clock, read after the reservation: never early.
                ResponseFuture::waiting(harvester_core::time::now() + wait, ready, req)
            }
            Err(refused) => {
                self.telemetry.rejected.increment(1);
                tracing::debug!(
                    limiter = %self.telemetry.name,
                    key = refused.key.as_deref().unwrap_or(""),
                    retry_in = ?refused.retry_in,
                    "rate limit refused a call"
                );
                ResponseFuture::refused(refused)
            }
        }
    }
}

impl<S: Clone, L> Clone for RateLimit<S, L> {
    fn clone(&self) -> Self {
        RateLimit {
            inner: self.inner.clone(),
            limit: Arc::clone(&self.limit),
            max_wait: self.max_wait,
            telemetry: Arc::clone(&self.telemetry),
        }
    }
}

impl<S: fmt::Debug, L: fmt::Debug> fmt::Debug for RateLimit<S, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .field("limit", &self.limit)
            .field("max_wait", &self.max_wait)
            .finish()
    }
}
