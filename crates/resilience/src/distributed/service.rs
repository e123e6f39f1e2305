//! The distributed rate-limiting `Service`, and what it enforces.

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tower::Service;

use super::direct::DistributedRateLimiter;
use super::error::Refusal;
use super::keyed::DistributedKeyedRateLimiter;
use crate::error::{BoxError, LimiterUnavailable, RateLimited};
use crate::key::{HostKey, KeyExtractor, TargetHost};

/// What a [`DistributedRateLimit`] service enforces: decides, for one request, whether it
/// may go now, after a wait, or not at all. Unlike the local
/// [`Limit`](crate::rate_limit::Limit), the decision is a future (a round trip to Redis).
///
/// Implemented by [`DistributedRateLimiter`] (one limit for every request),
/// [`DistributedKeyed`] (one per key) and [`DistributedHttpLimit`] (either, from
/// configuration). Refusals are [`RateLimited`] (with the key) or, when Redis cannot
/// decide and the policy fails closed, [`LimiterUnavailable`].
pub trait DistributedLimit<Req> {
    /// Takes a cell for `req` if one is available within `max_wait`, and resolves to how
    /// long to wait before sending (zero: at once).
    fn reserve(
        &self,
        req: &Req,
        max_wait: Duration,
    ) -> impl Future<Output = Result<Duration, BoxError>> + Send + 'static;
}

impl<Req> DistributedLimit<Req> for DistributedRateLimiter {
    fn reserve(
        &self,
        _req: &Req,
        max_wait: Duration,
    ) -> impl Future<Output = Result<Duration, BoxError>> + Send + 'static {
        let limiter = self.clone();
        async move { limiter.reserve(max_wait).await.map_err(|refusal| into_error(refusal, limiter.name(), None)) }
    }
}

/// A keyed distributed limiter with the way to find a request's key.
#[derive(Debug)]
pub struct DistributedKeyed<K, E> {
    limiter: DistributedKeyedRateLimiter<K>,
    extractor: E,
}

impl<K, E> DistributedKeyed<K, E> {
    /// `limiter`, keyed by `extractor` (a closure `Fn(&Req) -> Option<K>`, or
    /// [`TargetHost`]); a request without a key is not limited.
    pub fn new(limiter: DistributedKeyedRateLimiter<K>, extractor: E) -> Self {
        DistributedKeyed { limiter, extractor }
    }

    /// The limiter.
    pub fn limiter(&self) -> &DistributedKeyedRateLimiter<K> {
        &self.limiter
    }
}

impl<Req, K, E> DistributedLimit<Req> for DistributedKeyed<K, E>
where
    E: KeyExtractor<Req, Key = K>,
    K: Hash + Eq + Clone + fmt::Display + Send + Sync + 'static,
{
    fn reserve(
        &self,
        req: &Req,
        max_wait: Duration,
    ) -> impl Future<Output = Result<Duration, BoxError>> + Send + 'static {
        let limiter = self.limiter.clone();
        let key = self.extractor.extract(req);
        async move {
            let Some(key) = key else {
                return Ok(Duration::ZERO);
            };
            limiter
                .reserve_key(&key, max_wait)
                .await
                .map_err(|refusal| into_error(refusal, limiter.name(), Some(key.to_string())))
        }
    }
}

/// The limit a [`DistributedRateLimitConfig`](super::DistributedRateLimitConfig) describes
/// for HTTP requests: one for all, or one per target host.
#[derive(Debug)]
pub enum DistributedHttpLimit {
    /// [`KeyBy::Global`](crate::rate_limit::KeyBy::Global).
    Global(DistributedRateLimiter),
    /// [`KeyBy::Host`](crate::rate_limit::KeyBy::Host).
    PerHost(DistributedKeyed<HostKey, TargetHost>),
}

impl<B> DistributedLimit<http::Request<B>> for DistributedHttpLimit {
    fn reserve(
        &self,
        req: &http::Request<B>,
        max_wait: Duration,
    ) -> impl Future<Output = Result<Duration, BoxError>> + Send + 'static {
        // Both arms in one future type: the key is found now, the round trip made later.
        let (global, keyed) = match self {
            DistributedHttpLimit::Global(limiter) => (Some(limiter.clone()), None),
            DistributedHttpLimit::PerHost(keyed) => {
                (None, keyed.extractor.extract(req).map(|key| (keyed.limiter.clone(), key)))
            }
        };
        async move {
            match (global, keyed) {
                (Some(limiter), _) => {
                    limiter.reserve(max_wait).await.map_err(|refusal| into_error(refusal, limiter.name(), None))
                }
                (None, Some((limiter, key))) => limiter
                    .reserve_key(&key, max_wait)
                    .await
                    .map_err(|refusal| into_error(refusal, limiter.name(), Some(key.to_string()))),
                (None, None) => Ok(Duration::ZERO),
            }
        }
    }
}

/// A refusal as the error the layers of this crate fail with.
fn into_error(refusal: Refusal, limiter: &str, key: Option<String>) -> BoxError {
    match refusal {
        Refusal::RateLimited(not_until) => Box::new(RateLimited { retry_in: not_until.retry_in(), key }),
        Refusal::Unavailable(error) => {
            Box::new(LimiterUnavailable { limiter: limiter.to_owned(), key, reason: error.to_string() })
        }
        refusal @ Refusal::InsufficientCapacity { .. } => Box::new(refusal),
    }
}

/// Enforces a [`DistributedLimit`] on the requests to an inner service; built by
/// [`DistributedRateLimitLayer`](super::DistributedRateLimitLayer).
///
/// As the local [`RateLimit`](crate::rate_limit::RateLimit): the decision is made in `call`
/// (a cell is taken only for a request that exists), `poll_ready` only asks the inner
/// service, and the response future waits (wait mode) then calls the inner service it took
/// from `self`. The response future is boxed: it holds a round trip to Redis.
pub struct DistributedRateLimit<S, L> {
    inner: S,
    limit: Arc<L>,
    max_wait: Duration,
}

impl<S, L> DistributedRateLimit<S, L> {
    pub(crate) fn new(inner: S, limit: Arc<L>, max_wait: Duration) -> Self {
        DistributedRateLimit { inner, limit, max_wait }
    }

    /// The limit, shared with every clone.
    pub fn limit(&self) -> &L {
        &self.limit
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, consuming this one.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, L, Req> Service<Req> for DistributedRateLimit<S, L>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    L: DistributedLimit<Req>,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<S::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let decision = self.limit.reserve(&req, self.max_wait);
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let wait = decision.await?;
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            ready.call(req).await.map_err(Into::into)
        })
    }
}

impl<S: Clone, L> Clone for DistributedRateLimit<S, L> {
    fn clone(&self) -> Self {
        DistributedRateLimit { inner: self.inner.clone(), limit: Arc::clone(&self.limit), max_wait: self.max_wait }
    }
}

impl<S: fmt::Debug, L: fmt::Debug> fmt::Debug for DistributedRateLimit<S, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DistributedRateLimit")
            .field("inner", &self.inner)
            .field("limit", &self.limit)
            .field("max_wait", &self.max_wait)
            .finish()
    }
}
