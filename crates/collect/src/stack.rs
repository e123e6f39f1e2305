//! The tower stack every attempt goes through, outermost first:
//!
//! 1. **retry**: up to `max_attempts` attempts with jittered backoff, drawing on a retry
//!    budget, so that a bad hour cannot multiply the load by `max_attempts`; bans and target
//!    5xx are retried like errors;
//! 2. **rate limit per host**: each *attempt* is a request the site sees, so the limit sits
//!    inside the retry;
//! 3. **circuit breaker per host**: opened by the *site's* failures only (5xx, unreachable):
//!    a dead proxy says nothing about the site, and the pool already handles it;
//! 4. the `ProxyClient`, given in each attempt's request the proxies the URL's earlier
//!    attempts went through ([`TriedProxies`], added by the retry before it sends the request
//!    again), so that every attempt goes through a proxy that URL has not tried yet. Its attempt timeout is the
//!    one timeout of an attempt, and its [`Verdict`] on each answer is the one
//!    classification the retry, the breaker and the pipeline's `validate` stage read.
//!
//! How many URLs are fetched at once is the caller's limit ([`crate::run`] admits
//! `concurrency` at a time); the stack adds none of its own.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use harvester_proxypool::client::{ClientError, TriedProxies, Verdict};
use harvester_proxypool::{ProxyClient, ProxyId};
use harvester_resilience::breaker::{BreakerConfig, KeyedBreaker, KeyedCircuitBreakerLayer};
use harvester_resilience::rate_limit::{Quota, RateLimitLayer};
use harvester_resilience::retry::{BudgetConfig, Decision, RetryBudget, RetryConfig, RetryLayer};
use harvester_resilience::{BoxError, ConfigError};
use tower::ServiceBuilder;
use tower::util::BoxCloneService;

use crate::input::Target;

/// One URL's fetch as the stack sees it: the retry layer keeps it and sends a copy per
/// attempt, prepared from the attempt before (see [`build`]).
#[derive(Clone, Debug)]
pub struct Fetch {
    /// The URL.
    pub target: Target,
    /// The proxies this URL's failed attempts went through: the retry adds each one before
    /// the next attempt, and the client avoids them.
    pub tried: TriedProxies,
    /// How far the fetch got, for the caller to read even while it is in flight (an
    /// interrupted fetch still reports its attempts): written by the innermost service,
    /// never read by the stack.
    progress: Arc<Progress>,
}

/// How far a fetch got.
#[derive(Debug, Default)]
struct Progress {
    attempts: AtomicU32,
    last_proxy: Mutex<Option<ProxyId>>,
}

impl Fetch {
    /// A first fetch of `target`.
    pub fn new(target: Target) -> Self {
        Fetch { target, tried: TriedProxies::default(), progress: Arc::default() }
    }

    /// Attempts made so far.
    pub fn attempts(&self) -> u32 {
        self.progress.attempts.load(Ordering::Relaxed)
    }

    /// The id of the proxy of the last attempt that named one, if there was one.
    pub fn last_proxy(&self) -> Option<String> {
        self.last_proxy_lock().as_ref().map(|id| id.as_str().to_owned())
    }

    fn last_proxy_lock(&self) -> std::sync::MutexGuard<'_, Option<ProxyId>> {
        // A poisoned lock only means a panic elsewhere mid-update; the value is still valid.
        self.progress.last_proxy.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The proxy an attempt went through, from its result.
fn proxy_of(result: &Result<Page, BoxError>) -> Option<&ProxyId> {
    match result {
        Ok(page) => Some(&page.proxy),
        Err(error) => error.downcast_ref::<ClientError>().and_then(ClientError::proxy),
    }
}

/// An answer that came back through a proxy.
#[derive(Clone, Debug)]
pub struct Page {
    /// The proxy that carried it.
    pub proxy: ProxyId,
    /// The HTTP status.
    pub status: u16,
    /// What the classifier made of it (success, ban, target error).
    pub verdict: Verdict,
    /// The body.
    pub body: Bytes,
}

impl Page {
    /// Whether the site itself failed (its own 5xx, by the client's verdict): what the
    /// retry retries and what opens the site's circuit breaker.
    pub fn site_failed(&self) -> bool {
        self.verdict == Verdict::TargetError && self.status >= 500
    }
}

/// The longest an attempt waits for the rate limit: a day, in effect "as long as it takes".
const PACING_WAIT: Duration = Duration::from_secs(24 * 3600);

/// The stack as a cloneable service.
pub type FetchService = BoxCloneService<Fetch, Page, BoxError>;

/// How the stack behaves; the command line sets these.
#[derive(Clone, Debug)]
pub struct StackSettings {
    /// URLs fetched at once (the caller's limit; also how many hedges may go out before
    /// requests have earned them).
    pub concurrency: usize,
    /// Requests per second per target host (all attempts count; hedged requests, capped by
    /// `hedge_share`, go out inside an attempt, below this limit, and do not).
    pub rate_per_host: u32,
    /// Attempts per URL, the first included.
    pub max_attempts: u32,
    /// The limit on one attempt: the `ProxyClient`'s request timeout.
    pub attempt_timeout: Duration,
    /// Hedged attempts: the share of extra requests they may add (0: none). A hedge goes
    /// out through another proxy when an attempt is slower than 95 % of its host's answers.
    pub hedge_share: f64,
    /// Each host's attempts give up after 4 × its 99th-percentile latency (at least 1 s),
    /// not only at `attempt_timeout`.
    pub adaptive_timeout: bool,
    /// Share the per-host rate limit with every collector using this Redis (feature `redis`).
    #[cfg(feature = "redis")]
    pub redis: Option<harvester_resilience::distributed::RedisConnection>,
}

/// The stack and the parts of it the report reads.
pub struct Stack {
    /// Call this with a [`Fetch`].
    pub service: FetchService,
    /// The per-host breakers (for their states in the report).
    pub breakers: KeyedBreaker<String>,
    /// The retry budget every attempt draws on.
    pub budget: Option<Arc<RetryBudget>>,
}

/// Builds the stack around `client`, whose request timeout is `settings.attempt_timeout`
/// (see [`crate::run::start`]): the stack adds no timeout of its own.
pub fn build(client: ProxyClient, settings: &StackSettings) -> Result<Stack, ConfigError> {
    let retry = RetryLayer::new(RetryConfig {
        name: "collect".to_owned(),
        max_attempts: settings.max_attempts,
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_secs(2),
        // A dirty fleet fails often while the pool learns which proxies are bad; the budget
        // must let a URL reach a good proxy (half a retry per call, 20 a second), yet stop a
        // retry storm when the *site* goes down.
        budget: BudgetConfig { retry_percent: 0.5, min_per_sec: 20, ..BudgetConfig::default() },
        ..RetryConfig::default()
    })?
    .retry_on_response(|page: &Page| match page.verdict {
        // The next attempt goes through another proxy, so the ban's Retry-After (which is
        // about this proxy) is no reason to wait.
        verdict if verdict.is_ban() => Decision::Retry,
        _ => Decision::retry_if(page.site_failed()),
    })
    // The next attempt goes through a proxy this URL has not tried: the retried request
    // carries the ones before it.
    .prepare_retry(|fetch: &mut Fetch, last: &Result<Page, BoxError>| {
        if let Some(proxy) = proxy_of(last) {
            fetch.tried.push(proxy.clone());
        }
    });
    let budget = retry.retry_budget().cloned();

    let breaker = KeyedCircuitBreakerLayer::new(
        BreakerConfig { name: "collect".to_owned(), ..BreakerConfig::default() },
        |fetch: &Fetch| Some(fetch.target.host.to_string()),
    )?
    .classify(|result: &Result<Page, BoxError>| match result {
        Ok(page) => page.site_failed(),
        Err(error) => site_failed(error),
    });
    let breakers = breaker.breakers().clone();

    let quota = Quota::per_second(settings.rate_per_host)?;
    // The limit paces: an attempt waits for its turn however long that is (a low --rate
    // slows the job down, it does not fail URLs). The wait is outside the attempt's timeout.
    let local_limit = RateLimitLayer::keyed(quota, |fetch: &Fetch| Some(fetch.target.host.clone()))
        .wait_up_to(PACING_WAIT)
        .named("collect");
    // With Redis, one limit per host shared by every collector; without, this process's own.
    #[cfg(feature = "redis")]
    let (local_limit, shared_limit) = match &settings.redis {
        Some(redis) => (None, Some(shared_rate_limit(redis.clone(), quota, PACING_WAIT)?)),
        None => (Some(local_limit), None),
    };
    #[cfg(not(feature = "redis"))]
    let (local_limit, shared_limit) = (Some(local_limit), None::<tower::layer::util::Identity>);

    let service = ServiceBuilder::new()
        .layer(retry)
        .option_layer(local_limit)
        .option_layer(shared_limit)
        .layer(breaker)
        .service(ProxyFetcher { client });
    Ok(Stack { service: BoxCloneService::new(service), breakers, budget })
}

/// The layer of [`shared_rate_limit`].
#[cfg(feature = "redis")]
type SharedRateLimit = harvester_resilience::distributed::DistributedRateLimitLayer<
    harvester_resilience::distributed::DistributedKeyed<Arc<str>, fn(&Fetch) -> Option<Arc<str>>>,
>;

/// The per-host limit kept in Redis. While Redis is away each collector decides alone on a
/// quarter of the rate: the collectors keep going, and four of them stay within the limit.
#[cfg(feature = "redis")]
fn shared_rate_limit(
    redis: harvester_resilience::distributed::RedisConnection,
    quota: Quota,
    max_wait: Duration,
) -> Result<SharedRateLimit, ConfigError> {
    use harvester_resilience::distributed::{
        DistributedKeyedRateLimiter, DistributedOptions, DistributedRateLimitLayer, FailurePolicy,
    };
    let options = DistributedOptions {
        name: "collect".to_owned(),
        failure_policy: FailurePolicy::Local { share: 0.25 },
        ..DistributedOptions::default()
    };
    let limiter = DistributedKeyedRateLimiter::with_options(redis, "collect:host", quota, options)?;
    let host: fn(&Fetch) -> Option<Arc<str>> = |fetch| Some(fetch.target.host.clone());
    Ok(DistributedRateLimitLayer::keyed(limiter, host).wait_up_to(max_wait))
}

/// Whether an error says the site (not the proxy) failed: only a proxy that could not reach
/// it tells that.
fn site_failed(error: &BoxError) -> bool {
    matches!(error.downcast_ref::<ClientError>(), Some(ClientError::TargetUnreachable { .. }))
}

/// The innermost service: a [`Fetch`] becomes a GET through the `ProxyClient`.
#[derive(Clone)]
struct ProxyFetcher {
    client: ProxyClient,
}

impl tower::Service<Fetch> for ProxyFetcher {
    type Response = Page;
    type Error = BoxError;
    type Future = futures::future::BoxFuture<'static, Result<Page, BoxError>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), BoxError>> {
        // The client is always ready: the pool is consulted per call.
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, fetch: Fetch) -> Self::Future {
        let client = self.client.clone();
        Box::pin(async move {
            let mut request = http::Request::get(&*fetch.target.url).body(Bytes::new())?;
            request.extensions_mut().insert(fetch.tried.clone());
            fetch.progress.attempts.fetch_add(1, Ordering::Relaxed);
            let sent = client.send(request).await;
            let proxy = match &sent {
                Ok(response) => Some(response.proxy()),
                Err(error) => error.proxy(),
            };
            if let Some(proxy) = proxy {
                *fetch.last_proxy_lock() = Some(proxy.clone());
            }
            let response = sent?;
            Ok(Page {
                proxy: response.proxy().clone(),
                status: response.status().as_u16(),
                verdict: response.verdict(),
                body: response.body().clone(),
            })
        })
    }
}
