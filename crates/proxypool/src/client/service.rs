//! [`ProxyClient`], the tower `Service`: per request a lease, the exchange through it
//! (hedged and held to an attempt timeout when so configured), the verdict reported on the
//! lease, and the response with the proxy that served it.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use tokio::time::Instant;

use super::cache::ClientCache;
use super::classify::{Classifier, FailureKind, Verdict};
use super::config::ClientSettings;
use super::error::{ClientError, error_chain};
use super::exchange::{Abandoned, Exchange, Failure, ReportOnDrop, exchange_once_more_if_stale, scrub};
use super::policy::{HostPolicy, Priority};
use super::response::ProxiedResponse;
use super::tail::{HedgeBudget, Hedging};
use super::tried::TriedProxies;
use crate::balance::Balancer;
use crate::health::Outcome;
use crate::lease::Lease;
use crate::pool::ProxyPool;
use crate::proxy::{Proxy, ProxyId};
use crate::requirements::{RequestContext, Requirements};

/// How often a hedging request looks again for its host's latency while it is unknown.
const RECHECK: Duration = Duration::from_millis(50);

/// The proxies one call's attempts went through.
type Leased = Mutex<Vec<ProxyId>>;

/// Sends requests through the pool's proxies; cheap to clone, every clone shares the
/// cache of per-proxy clients. See the [module docs](crate::client).
#[derive(Clone)]
pub struct ProxyClient {
    inner: Arc<Inner>,
}

struct Inner {
    pool: ProxyPool,
    classifier: Arc<dyn Classifier>,
    policy: HostPolicy,
    settings: Arc<ClientSettings>,
    cache: ClientCache,
    hedges: Option<HedgeBudget>,
}

/// Whether an attempt may go through a proxy its request already tried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tried {
    /// A proxy not tried yet if there is one, else any.
    MayRepeat,
    /// Only a proxy not tried yet.
    Avoid,
}

impl ProxyClient {
    pub(crate) fn from_parts(
        pool: ProxyPool,
        classifier: Arc<dyn Classifier>,
        policy: HostPolicy,
        settings: ClientSettings,
    ) -> ProxyClient {
        let hedges = settings.config.hedging.as_ref().map(HedgeBudget::new);
        let settings = Arc::new(settings);
        ProxyClient {
            inner: Arc::new(Inner {
                cache: ClientCache::new(settings.clone()),
                hedges,
                settings,
                pool,
                classifier,
                policy,
            }),
        }
    }

    /// The pool the client leases from.
    pub fn pool(&self) -> &ProxyPool {
        &self.inner.pool
    }

    /// Per-proxy HTTP clients held now.
    pub fn cached_clients(&self) -> usize {
        self.inner.cache.len()
    }

    /// Sends `request` through a leased proxy.
    ///
    /// `Requirements` and [`Priority`] in the request's extensions are honoured; the
    /// target host always comes from the URL. With [`hedging`](super::ProxyClientBuilder::hedging)
    /// a slow attempt may be joined by a second through another proxy; the response says
    /// which proxy served it.
    pub async fn send<B>(&self, request: http::Request<B>) -> Result<ProxiedResponse, ClientError>
    where
        B: Into<reqwest::Body>,
    {
        if !matches!(request.uri().scheme_str(), Some("http" | "https")) {
            return Err(ClientError::InvalidRequest("only http and https URLs can be sent".to_owned()));
        }
        let host = harvester_core::host::of_uri(request.uri())
            .map(std::borrow::Cow::into_owned)
            .ok_or_else(|| ClientError::InvalidRequest("the URL has no host".to_owned()))?;
        let extensions = request.extensions().clone();
        // No proxy is involved yet, so the error cannot quote one.
        let request = reqwest::Request::try_from(request).map_err(|e| ClientError::InvalidRequest(error_chain(&e)))?;
        let inner = &*self.inner;
        let (Some(hedging), Some(budget)) = (&inner.settings.config.hedging, &inner.hedges) else {
            return self.attempt(&host, &extensions, None, request, Abandoned::default(), Tried::MayRepeat).await;
        };
        budget.earn();
        let idempotent = matches!(*request.method(), http::Method::GET | http::Method::HEAD | http::Method::OPTIONS);
        let Some(spare) = idempotent.then(|| request.try_clone()).flatten() else {
            return self.attempt(&host, &extensions, None, request, Abandoned::default(), Tried::MayRepeat).await;
        };
        self.hedged(&host, &extensions, (request, spare), hedging, budget).await
    }

    /// The timeout of one attempt at `host`: the request timeout, or less with an
    /// adaptive timeout once the host's latency is known; and whether it is final (false
    /// while an adaptive timeout waits for the host's latency).
    fn attempt_timeout(&self, host: &str) -> (Duration, bool) {
        let settings = &self.inner.settings;
        match &settings.config.adaptive_timeout {
            Some(adaptive) => {
                // The true quantile, not the capped one: a site's own slow pages (a search
                // beside static files) must not be cut off on every attempt, and a cut-off
                // page never enters the histogram to move its median.
                let latency = self.inner.pool.latency_quantile(host, adaptive.quantile);
                (adaptive.timeout(latency, settings.config.request_timeout), latency.is_some())
            }
            None => (settings.config.request_timeout, true),
        }
    }

    /// The first attempt, and another through a new proxy each time the ones out have all
    /// waited longer than the host's hedging quantile (while the budget and
    /// `max_hedges` allow); the first good answer wins and the other attempts are dropped,
    /// reported slow if they had waited past the hedging delay and not at all otherwise. When every attempt has ended without a good answer, the last
    /// one's result is returned.
    async fn hedged(
        &self,
        host: &str,
        extensions: &http::Extensions,
        (request, spare): (reqwest::Request, reqwest::Request),
        hedging: &Hedging,
        budget: &HedgeBudget,
    ) -> Result<ProxiedResponse, ClientError> {
        // The proxies this call's attempts went through, so that a hedge avoids them.
        let leased = std::sync::Mutex::new(Vec::new());
        let mut abandoned: Vec<(Abandoned, Instant)> = Vec::new();
        let mut launch = |request, first| {
            let flag = Abandoned::default();
            abandoned.push((flag.clone(), harvester_core::time::now()));
            // A hedge goes to a proxy this request has not tried, or not at all: one already
            // out (or already failed) for it would add nothing.
            let tried = if first { Tried::MayRepeat } else { Tried::Avoid };
            Box::pin(self.attempt(host, extensions, Some(&leased), request, flag, tried))
        };
        let mut attempts = futures::stream::FuturesUnordered::new();
        attempts.push(launch(request, true));
        let mut last_launch = harvester_core::time::now();
        let mut hedges = 0;
        loop {
            // Until the host's latency is known, look again every so often: the pool
            // learns it within the first answers, and a hanging first attempt must not
            // wait out its whole timeout for want of a figure.
            let due = self.inner.pool.tail_latency(host, hedging.quantile).map(|q| q.max(hedging.min_delay));
            let may_hedge = hedges < hedging.max_hedges;
            let wait = due.map_or(RECHECK, |due| due.saturating_sub(harvester_core::time::since(last_launch)));
            tokio::select! {
                Some(result) = attempts.next() => {
                    let good = result.as_ref().is_ok_and(|r| r.verdict().is_answer());
                    if good || attempts.is_empty() {
                        // The others lost (those already done report nothing more). Only
                        // one out past the hedging delay was late; a later hedge that had
                        // not waited that long says nothing about its proxy, so a good
                        // proxy that often races is not ejected for losing.
                        for (flag, launched) in &abandoned {
                            if due.is_some_and(|due| harvester_core::time::since(*launched) >= due) {
                                flag.overdue();
                            } else {
                                flag.cancel();
                            }
                        }
                        return result;
                    }
                }
                () = tokio::time::sleep(wait), if may_hedge => {
                    if due.is_some_and(|due| harvester_core::time::since(last_launch) >= due) {
                        let Some(copy) = spare.try_clone() else { continue };
                        if !budget.try_spend() {
                            hedges = hedging.max_hedges;
                            continue;
                        }
                        attempts.push(launch(copy, false));
                        last_launch = harvester_core::time::now();
                        hedges += 1;
                    }
                }
            }
        }
    }

    /// One attempt: a lease for `host`, then the exchange through it.
    async fn attempt(
        &self,
        host: &str,
        extensions: &http::Extensions,
        leased: Option<&Leased>,
        request: reqwest::Request,
        abandoned: Abandoned,
        tried: Tried,
    ) -> Result<ProxiedResponse, ClientError> {
        let lease = self.lease_for(host, extensions, leased, tried)?;
        self.send_through(host, lease, request, abandoned).await
    }

    /// A lease for one attempt, passing over the proxies of the request's earlier attempts
    /// ([`TriedProxies`]) and of this call's other attempts (`leased`).
    fn lease_for(
        &self,
        host: &str,
        extensions: &http::Extensions,
        leased: Option<&Leased>,
        policy: Tried,
    ) -> Result<Lease, ClientError> {
        let lock = |leased: &Leased| leased.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let mut avoid: Vec<ProxyId> = extensions.get::<TriedProxies>().map_or_else(Vec::new, |t| t.proxies().to_vec());
        avoid.extend(leased.map(lock).unwrap_or_default());
        let remember = |lease: Lease| {
            if let Some(leased) = leased {
                leased.lock().unwrap_or_else(PoisonError::into_inner).push(lease.id().clone());
            }
            lease
        };
        if policy == Tried::Avoid {
            return self.lease_avoiding(host, extensions, avoid).map(remember);
        }
        if !avoid.is_empty() {
            // Another proxy if there is one; else any, as if nothing had been tried.
            if let Ok(lease) = self.lease_avoiding(host, extensions, avoid) {
                return Ok(remember(lease));
            }
        }
        self.lease_avoiding(host, extensions, Vec::new()).map(remember)
    }

    fn lease_avoiding(
        &self,
        host: &str,
        extensions: &http::Extensions,
        avoid: Vec<ProxyId>,
    ) -> Result<Lease, ClientError> {
        let pool = &self.inner.pool;
        let no_proxy = |source| ClientError::NoProxy { host: host.to_owned(), source };
        // The target host always comes from the URL; a sticky key may come with the request.
        let request = extensions.get::<RequestContext>().cloned().unwrap_or_default().target_host(host).avoiding(avoid);
        if let Some(explicit) = extensions.get::<Requirements>() {
            return pool.acquire(explicit, &request).map_err(no_proxy);
        }
        let route = self.inner.policy.route(host);
        let acquire = |req: &Requirements, balancer: Option<&dyn Balancer>| match balancer {
            Some(b) => pool.acquire_with(req, &request, b),
            None => pool.acquire(req, &request),
        };
        match acquire(route.requirements, route.balancer()) {
            Ok(lease) => Ok(lease),
            Err(first) => {
                let priority = extensions.get::<Priority>().copied().unwrap_or_default();
                match route.fallback_for(priority) {
                    Some(fallback) => acquire(fallback, route.balancer()).map_err(no_proxy),
                    None => Err(no_proxy(first)),
                }
            }
        }
    }

    async fn send_through(
        &self,
        host: &str,
        lease: Lease,
        request: reqwest::Request,
        abandoned: Abandoned,
    ) -> Result<ProxiedResponse, ClientError> {
        let inner = &*self.inner;
        let proxy = lease.proxy_arc().clone();
        let client = inner.cache.client(&proxy, &inner.pool)?;
        // From here the request is out: if this future is dropped (a timeout or retry
        // layer above gave up on it, or a hedge won), the guard reports it, so that a
        // hanging proxy is penalised even when our own timeout never fires.
        let mut guard = ReportOnDrop { lease: Some(lease), started: harvester_core::time::now(), abandoned };
        let exchange = exchange_once_more_if_stale(&client, request, inner.settings.config.max_body_bytes);
        tokio::pin!(exchange);
        let (mut timeout, mut known) = self.attempt_timeout(host);
        let exchanged = loop {
            // An adaptive timeout not yet known is looked up again every so often, so that
            // the attempts sent before the host's first answers are held to it too.
            let remaining = timeout.saturating_sub(harvester_core::time::since(guard.started));
            let wait = if known { remaining } else { remaining.min(RECHECK) };
            match tokio::time::timeout(wait, &mut exchange).await {
                Ok(done) => break Ok(done),
                Err(elapsed) if known || harvester_core::time::since(guard.started) >= timeout => break Err(elapsed),
                Err(_) => (timeout, known) = self.attempt_timeout(host),
            }
        };
        let latency = harvester_core::time::since(guard.started);
        let id = proxy.id().clone();
        let message = |m: &str| scrub(m, &proxy);
        match exchanged {
            Err(_elapsed) => {
                guard.report(Outcome::timeout(latency));
                Err(ClientError::TimedOut { proxy: id, after: timeout })
            }
            Ok(Err(Failure { kind: FailureKind::Caller, message: m, .. })) => {
                // Not the proxy's doing (an unsendable request): nothing to report.
                guard.release();
                Err(ClientError::InvalidRequest(message(&m)))
            }
            Ok(Err(Failure { kind, message: m, .. })) => {
                let verdict = inner.classifier.classify_failure(kind);
                guard.report(verdict.outcome(latency));
                Err(match (verdict, kind) {
                    (Verdict::Timeout, _) => ClientError::TimedOut { proxy: id, after: latency },
                    (_, FailureKind::TargetUnreachable) => {
                        ClientError::TargetUnreachable { proxy: id, message: message(&m) }
                    }
                    _ => ClientError::ProxyFailed { proxy: id, message: message(&m) },
                })
            }
            Ok(Ok(Exchange::TooLarge { status, headers })) => {
                // Judged on status and headers alone: a ban page too large to read is a ban.
                let verdict = inner.classifier.classify_response_for_host(host, status, &headers, &[]);
                guard.report(verdict.outcome(latency));
                Err(ClientError::BodyTooLarge { proxy: id, limit: inner.settings.config.max_body_bytes })
            }
            Ok(Ok(Exchange::Complete(response))) => {
                let verdict = inner.classifier.classify_response_for_host(
                    host,
                    response.status(),
                    response.headers(),
                    response.body(),
                );
                guard.report(verdict.outcome(latency));
                if verdict == Verdict::ProxyFailure {
                    // The proxy answered for itself (407: it refuses our credentials); the
                    // same failure through CONNECT or SOCKS is an error, so this is one too.
                    let status = response.status();
                    return Err(ClientError::ProxyFailed {
                        proxy: id,
                        message: format!("the proxy answered {status}"),
                    });
                }
                Ok(ProxiedResponse::new(id, verdict, latency, response))
            }
        }
    }

    /// Sends a GET for `url` through `proxy` itself, bypassing the balancer and not
    /// reporting anything: for active health checks, which decide what to record.
    pub(crate) async fn probe(&self, proxy: &Arc<Proxy>, url: &str, timeout: Duration) -> Result<Verdict, Verdict> {
        let inner = &*self.inner;
        let client = inner.cache.client(proxy, &inner.pool).map_err(|_| Verdict::ProxyFailure)?;
        let request = client.get(url).build().map_err(|_| Verdict::ProxyFailure)?;
        match tokio::time::timeout(
            timeout,
            exchange_once_more_if_stale(&client, request, inner.settings.config.max_body_bytes),
        )
        .await
        {
            Err(_) => Err(Verdict::Timeout),
            Ok(Err(failure)) => Err(inner.classifier.classify_failure(failure.kind)),
            // The test URL is a page the user controls: only a plain success counts.
            Ok(Ok(Exchange::TooLarge { .. })) => Ok(Verdict::Success),
            Ok(Ok(Exchange::Complete(r))) => {
                match inner.classifier.classify_response(r.status(), r.headers(), r.body()) {
                    Verdict::Success => Ok(Verdict::Success),
                    v => Err(v),
                }
            }
        }
    }
}

impl<B> tower::Service<http::Request<B>> for ProxyClient
where
    B: Into<reqwest::Body> + Send + 'static,
{
    type Response = ProxiedResponse;
    type Error = ClientError;
    type Future = BoxFuture<'static, Result<ProxiedResponse, ClientError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ClientError>> {
        // Always ready: the pool says per request whether a proxy is free, and a layer
        // above (concurrency limit, bulkhead) is the place to hold requests back.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let client = self.clone();
        Box::pin(async move { client.send(request).await })
    }
}

impl fmt::Debug for ProxyClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyClient")
            .field("pool", &self.inner.pool)
            .field("classifier", &self.inner.classifier)
            .field("policy", &self.inner.policy)
            .field("request_timeout", &self.inner.settings.config.request_timeout)
            .finish()
    }
}
