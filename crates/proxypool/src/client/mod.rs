//! The pool over the wire: [`ProxyClient`], a tower `Service` that sends each request
//! through a leased proxy and teaches the pool from the answer.
//!
//! Per request the client picks [`Requirements`] (from the request's extensions, else
//! from the [`HostPolicy`] for its host), leases a proxy for the target host, sends the
//! request through a reqwest client built for that proxy (HTTP, HTTPS through CONNECT,
//! SOCKS5 and SOCKS5h, with proxy authentication), reads the body up to a cap, asks the
//! [`Classifier`] what the answer means, reports that on the lease, and returns the
//! response with the id of the proxy that served it.
//!
//! ```no_run
//! use bytes::Bytes;
//! use harvester_proxypool::client::ProxyClient;
//! use harvester_proxypool::{Proxy, ProxyPool};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = ProxyPool::new([Proxy::parse("socks5h://user:secret@127.0.0.1:1080")?])?;
//! let client = ProxyClient::builder(pool).build()?;
//! let request = http::Request::get("http://127.0.0.1:8080/").body(Bytes::new())?;
//! let response = client.send(request).await?;
//! println!("{} via {}", response.status(), response.proxy());
//! # Ok(())
//! # }
//! ```
//!
//! TLS is rustls with the ring provider; the client installs ring as the process's
//! default rustls provider when none is installed yet.

mod cache;
mod classify;
mod error;
mod policy;
mod tail;

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::future::BoxFuture;
use tokio::time::Instant;

pub use classify::{Classifier, DefaultClassifier, FailureKind, Verdict, retry_after};
pub use error::ClientError;
pub use policy::{HostPolicy, HostRule, Priority, Route};
pub use tail::{AdaptiveTimeout, Hedging};

use cache::{ClientCache, error_chain};
use tail::HedgeBudget;

use crate::balance::Balancer;
use crate::config::{Longest, entries_in};
use crate::error::ConfigError;
use crate::lease::{Lease, Outcome};
use crate::pool::ProxyPool;
use crate::proxy::{Proxy, ProxyId};
use crate::requirements::Requirements;

/// The proxies a request went through, shared by its attempts: put a clone in every
/// attempt's extensions and the [`ProxyClient`] sends each attempt through a proxy not tried
/// yet (any proxy once all were), and records the one it chose.
///
/// ```
/// use harvester_proxypool::client::TriedProxies;
///
/// let tried = TriedProxies::default();
/// let mut request = http::Request::get("http://127.0.0.1:8080/").body(bytes::Bytes::new()).expect("valid");
/// request.extensions_mut().insert(tried.clone());
/// assert!(tried.proxies().is_empty()); // filled in by the client as attempts go out
/// ```
#[derive(Debug, Clone, Default)]
pub struct TriedProxies(Arc<std::sync::Mutex<Vec<ProxyId>>>);

impl TriedProxies {
    /// The proxies tried so far, in order.
    pub fn proxies(&self) -> Vec<ProxyId> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn push(&self, proxy: ProxyId) {
        // A poisoned lock only means a panic elsewhere mid-push; the list is still valid.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(proxy);
    }
}

/// A response that came back through a proxy, with the proxy's id and the verdict.
#[derive(Debug)]
pub struct ProxiedResponse {
    proxy: ProxyId,
    verdict: Verdict,
    latency: Duration,
    response: http::Response<Bytes>,
}

impl ProxiedResponse {
    /// The id of the proxy that carried the request.
    pub fn proxy(&self) -> &ProxyId {
        &self.proxy
    }

    /// What the classifier made of the answer (a ban page is a response too).
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// From sending the request to the end of the body.
    pub fn latency(&self) -> Duration {
        self.latency
    }

    /// The status.
    pub fn status(&self) -> http::StatusCode {
        self.response.status()
    }

    /// The response with its whole body.
    pub fn response(&self) -> &http::Response<Bytes> {
        &self.response
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        self.response.body()
    }

    /// Takes the response.
    pub fn into_response(self) -> http::Response<Bytes> {
        self.response
    }
}

/// How each per-proxy HTTP client is built.
pub(crate) struct ClientSettings {
    connect_timeout: Duration,
    request_timeout: Duration,
    max_body_bytes: usize,
    max_cached_clients: usize,
    max_idle_per_proxy: usize,
    root_certificates: Vec<reqwest::Certificate>,
    configure: Option<Arc<ConfigureFn>>,
    adaptive_timeout: Option<AdaptiveTimeout>,
    hedging: Option<Hedging>,
}

type ConfigureFn = dyn Fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder + Send + Sync;

impl ClientSettings {
    /// The client for `proxy`, which sends every request through it, or why not (the
    /// message may quote the proxy URL: scrub it).
    ///
    /// A request must never leave except through the proxy it was leased for. The HTTP
    /// stack matches requests to a proxy by a URI it parses from the proxy URL, and when
    /// that parse fails (a URL past 64 KiB, say) it drops the proxy without a word and
    /// connects straight to the target. So the same parse is done here first, and its
    /// failure is an error; any proxy the caller's `configure` set is cleared, so the
    /// leased one is the only one.
    fn build_client(&self, proxy: &Proxy) -> Result<reqwest::Client, String> {
        // reqwest is built without a crypto provider of its own: ring is the one TLS stack
        // of this project. Installing fails harmlessly when the host already chose one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let url = proxy.url_with_credentials();
        if url.parse::<http::Uri>().is_err() {
            return Err("the proxy URL cannot be used by the HTTP stack (too long, or malformed)".to_owned());
        }
        let mut builder = reqwest::Client::builder();
        // The user's say comes first, so that it cannot take the proxy or the timeouts away.
        if let Some(configure) = &self.configure {
            builder = configure(builder);
        }
        if !self.root_certificates.is_empty() {
            builder = builder.tls_certs_merge(self.root_certificates.iter().cloned());
        }
        let leased = reqwest::Proxy::all(url).map_err(|e| error_chain(&e))?;
        builder
            .no_proxy()
            .proxy(leased)
            .connect_timeout(self.connect_timeout)
            .pool_max_idle_per_host(self.max_idle_per_proxy)
            .build()
            .map_err(|e| error_chain(&e))
    }
}

/// The most idle connections per proxy and host that may be kept.
const MAX_IDLE_PER_PROXY: usize = 65_536;

/// Builds a [`ProxyClient`]; see [`ProxyClient::builder`].
pub struct ProxyClientBuilder {
    pool: ProxyPool,
    classifier: Arc<dyn Classifier>,
    policy: HostPolicy,
    settings: ClientSettings,
}

impl ProxyClientBuilder {
    /// Time to connect to the proxy (more than zero, at most a day). Default 10 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = timeout;
        self
    }

    /// Time for the whole exchange, body included; past it the request fails with
    /// [`ClientError::TimedOut`] and the proxy is reported timed out (more than zero, at
    /// most a day). Default 30 s (the seed's timeout).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.settings.request_timeout = timeout;
        self
    }

    /// Gives up on an attempt after a multiple of its host's latency quantile (see
    /// [`AdaptiveTimeout`]), never later than the request timeout. Default off: every
    /// attempt gets the whole request timeout.
    pub fn adaptive_timeout(mut self, adaptive: AdaptiveTimeout) -> Self {
        self.settings.adaptive_timeout = Some(adaptive);
        self
    }

    /// Sends a second attempt through another proxy when the first is slow (see
    /// [`Hedging`]). Default off: every request goes through one proxy at a time.
    pub fn hedging(mut self, hedging: Hedging) -> Self {
        self.settings.hedging = Some(hedging);
        self
    }

    /// Largest body read; a larger one fails with [`ClientError::BodyTooLarge`].
    /// Default 10 MiB.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.settings.max_body_bytes = bytes;
        self
    }

    /// Per-proxy clients kept (1 to a million); the least recently used goes beyond it.
    /// Default 1024.
    pub fn max_cached_clients(mut self, clients: usize) -> Self {
        self.settings.max_cached_clients = clients;
        self
    }

    /// Idle keep-alive connections each per-proxy client keeps per target host (at most
    /// 65 536). Default 8.
    pub fn max_idle_per_proxy(mut self, connections: usize) -> Self {
        self.settings.max_idle_per_proxy = connections;
        self
    }

    /// The classifier. Default: [`DefaultClassifier`].
    pub fn classifier(mut self, classifier: impl Classifier) -> Self {
        self.classifier = Arc::new(classifier);
        self
    }

    /// Requirements per target host. Default: no rules, empty requirements.
    pub fn policy(mut self, policy: HostPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Also trusts this certificate (PEM) for HTTPS targets, beside the system's roots.
    pub fn trust_root_pem(mut self, pem: &[u8]) -> Result<Self, ConfigError> {
        let cert = reqwest::Certificate::from_pem(pem)
            .map_err(|e| ConfigError::new("client.trust_root_pem", format!("not a PEM certificate: {e}")))?;
        self.settings.root_certificates.push(cert);
        Ok(self)
    }

    /// A say over each per-proxy reqwest client (redirect policy, default headers,
    /// HTTP/2…). It runs first: the proxy, the connect timeout and the idle-connection
    /// limit are set after it and cannot be overridden, so traffic cannot bypass the proxy.
    pub fn configure_client(
        mut self,
        configure: impl Fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder + Send + Sync + 'static,
    ) -> Self {
        self.settings.configure = Some(Arc::new(configure));
        self
    }

    /// The client, or the setting that is out of range.
    pub fn build(self) -> Result<ProxyClient, ConfigError> {
        let s = &self.settings;
        Longest::DAY.check("client.connect_timeout", s.connect_timeout, false)?;
        Longest::DAY.check("client.request_timeout", s.request_timeout, false)?;
        if s.max_body_bytes == 0 {
            return Err(ConfigError::new("client.max_body_bytes", "must be at least 1"));
        }
        // The same cap as every other table of the pool.
        entries_in("client.max_cached_clients", s.max_cached_clients)?;
        if s.max_idle_per_proxy > MAX_IDLE_PER_PROXY {
            return Err(ConfigError::new(
                "client.max_idle_per_proxy",
                format!("{} must be at most {MAX_IDLE_PER_PROXY}", s.max_idle_per_proxy),
            ));
        }
        if let Some(adaptive) = &s.adaptive_timeout {
            adaptive.validate()?;
        }
        if let Some(hedging) = &s.hedging {
            hedging.validate()?;
        }
        let hedges = s.hedging.as_ref().map(HedgeBudget::new);
        let settings = Arc::new(self.settings);
        Ok(ProxyClient {
            inner: Arc::new(Inner {
                cache: ClientCache::new(settings.clone()),
                hedges,
                settings,
                pool: self.pool,
                classifier: self.classifier,
                policy: self.policy,
            }),
        })
    }
}

/// Sends requests through the pool's proxies; cheap to clone, every clone shares the
/// cache of per-proxy clients. See the [module docs](self).
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

/// What came back from one exchange with a proxy.
enum Exchange {
    Complete(http::Response<Bytes>),
    TooLarge { status: http::StatusCode, headers: http::HeaderMap },
}

/// Holds a lease while its request is out and reports it if dropped unreported: as slow
/// when the attempt lost a hedged race after it was late, not at all when it lost before,
/// else as timed out (a layer above gave up on it).
struct ReportOnDrop {
    lease: Option<Lease>,
    started: Instant,
    abandoned: Abandoned,
}

/// Whether an attempt may go through a proxy its request already tried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tried {
    /// A proxy not tried yet if there is one, else any.
    MayRepeat,
    /// Only a proxy not tried yet.
    Avoid,
}

/// How an attempt of a hedged race ended for the others, set before it is dropped.
#[derive(Clone, Debug, Default)]
struct Abandoned(Arc<std::sync::atomic::AtomicU8>);

impl Abandoned {
    const OVERDUE: u8 = 1;
    const CANCELLED: u8 = 2;

    /// It lost after waiting past the host's hedging delay: evidence that its proxy is slow.
    fn overdue(&self) {
        self.0.store(Self::OVERDUE, std::sync::atomic::Ordering::Release);
    }

    /// It lost before it was late (another attempt answered first): no evidence either way.
    fn cancel(&self) {
        self.0.store(Self::CANCELLED, std::sync::atomic::Ordering::Release);
    }

    fn state(&self) -> u8 {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }
}

impl ReportOnDrop {
    fn report(&mut self, outcome: Outcome) {
        if let Some(lease) = self.lease.take() {
            lease.report(outcome);
        }
    }

    fn release(&mut self) {
        self.lease = None;
    }
}

impl Drop for ReportOnDrop {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            let elapsed = self.started.elapsed();
            match self.abandoned.state() {
                Abandoned::OVERDUE => lease.report(Outcome::slow(elapsed)),
                // Dropping the lease unreported ends it without a word on the proxy.
                Abandoned::CANCELLED => drop(lease),
                // Still out (0, the default): a layer above gave up on it.
                _ => lease.report(Outcome::timeout(elapsed)),
            }
        }
    }
}

impl ProxyClient {
    /// A builder over `pool` with the defaults.
    pub fn builder(pool: ProxyPool) -> ProxyClientBuilder {
        ProxyClientBuilder {
            pool,
            classifier: Arc::new(DefaultClassifier::new()),
            policy: HostPolicy::default(),
            settings: ClientSettings {
                connect_timeout: Duration::from_secs(10),
                request_timeout: Duration::from_secs(30),
                max_body_bytes: 10 * 1024 * 1024,
                max_cached_clients: 1024,
                max_idle_per_proxy: 8,
                root_certificates: Vec::new(),
                configure: None,
                adaptive_timeout: None,
                hedging: None,
            },
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
    /// target host always comes from the URL. With [`hedging`](ProxyClientBuilder::hedging)
    /// a slow attempt may be joined by a second through another proxy; the response says
    /// which proxy served it.
    pub async fn send<B>(&self, request: http::Request<B>) -> Result<ProxiedResponse, ClientError>
    where
        B: Into<reqwest::Body>,
    {
        if !matches!(request.uri().scheme_str(), Some("http" | "https")) {
            return Err(ClientError::InvalidRequest("only http and https URLs can be sent".to_owned()));
        }
        let host = request
            .uri()
            .host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase())
            .ok_or_else(|| ClientError::InvalidRequest("the URL has no host".to_owned()))?;
        let mut extensions = request.extensions().clone();
        // No proxy is involved yet, so the error cannot quote one.
        let request = reqwest::Request::try_from(request).map_err(|e| ClientError::InvalidRequest(error_chain(&e)))?;
        let inner = &*self.inner;
        let (Some(hedging), Some(budget)) = (&inner.settings.hedging, &inner.hedges) else {
            return self.attempt(&host, &extensions, request, Abandoned::default(), Tried::MayRepeat).await;
        };
        budget.earn();
        let idempotent = matches!(*request.method(), http::Method::GET | http::Method::HEAD | http::Method::OPTIONS);
        let Some(spare) = idempotent.then(|| request.try_clone()).flatten() else {
            return self.attempt(&host, &extensions, request, Abandoned::default(), Tried::MayRepeat).await;
        };
        // The attempts share the list of proxies tried, so that a hedge avoids the proxies
        // already out for this request.
        if extensions.get::<TriedProxies>().is_none() {
            extensions.insert(TriedProxies::default());
        }
        self.hedged(&host, &extensions, (request, spare), hedging, budget).await
    }

    /// The timeout of one attempt at `host`: the request timeout, or less with an
    /// adaptive timeout once the host's latency is known; and whether it is final (false
    /// while an adaptive timeout waits for the host's latency).
    fn attempt_timeout(&self, host: &str) -> (Duration, bool) {
        let settings = &self.inner.settings;
        match &settings.adaptive_timeout {
            Some(adaptive) => {
                let latency = self.inner.pool.latency_quantile(host, adaptive.quantile);
                (adaptive.timeout(latency, settings.request_timeout), latency.is_some())
            }
            None => (settings.request_timeout, true),
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
        let mut abandoned: Vec<(Abandoned, Instant)> = Vec::new();
        let mut launch = |request, first| {
            let flag = Abandoned::default();
            abandoned.push((flag.clone(), Instant::now()));
            // A hedge goes to a proxy this request has not tried, or not at all: one already
            // out (or already failed) for it would add nothing.
            let tried = if first { Tried::MayRepeat } else { Tried::Avoid };
            Box::pin(self.attempt(host, extensions, request, flag, tried))
        };
        let mut attempts = futures::stream::FuturesUnordered::new();
        attempts.push(launch(request, true));
        let mut last_launch = Instant::now();
        let mut hedges = 0;
        loop {
            // Until the host's latency is known, look again every so often: the pool
            // learns it within the first answers, and a hanging first attempt must not
            // wait out its whole timeout for want of a figure.
            let due = self.inner.pool.latency_quantile(host, hedging.quantile).map(|q| q.max(hedging.min_delay));
            let may_hedge = hedges < hedging.max_hedges;
            let wait = due.map_or(RECHECK, |due| due.saturating_sub(last_launch.elapsed()));
            tokio::select! {
                Some(result) = attempts.next() => {
                    let good = result.as_ref().is_ok_and(|r| r.verdict().is_answer());
                    if good || attempts.is_empty() {
                        // The others lost (those already done report nothing more). Only
                        // one out past the hedging delay was late; a later hedge that had
                        // not waited that long says nothing about its proxy, so a good
                        // proxy that often races is not ejected for losing.
                        for (flag, launched) in &abandoned {
                            if due.is_some_and(|due| launched.elapsed() >= due) {
                                flag.overdue();
                            } else {
                                flag.cancel();
                            }
                        }
                        return result;
                    }
                }
                () = tokio::time::sleep(wait), if may_hedge => {
                    if due.is_some_and(|due| last_launch.elapsed() >= due) {
                        let Some(copy) = spare.try_clone() else { continue };
                        if !budget.try_spend() {
                            hedges = hedging.max_hedges;
                            continue;
                        }
                        attempts.push(launch(copy, false));
                        last_launch = Instant::now();
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
        request: reqwest::Request,
        abandoned: Abandoned,
        tried: Tried,
    ) -> Result<ProxiedResponse, ClientError> {
        let lease = self.lease_for(host, extensions, tried)?;
        self.send_through(host, lease, request, abandoned).await
    }

    fn lease_for(&self, host: &str, extensions: &http::Extensions, policy: Tried) -> Result<Lease, ClientError> {
        let tried = extensions.get::<TriedProxies>();
        let avoid = tried.map(TriedProxies::proxies).unwrap_or_default();
        if policy == Tried::Avoid {
            return self.lease_avoiding(host, extensions, avoid).map(|lease| Self::remember(tried, lease));
        }
        if !avoid.is_empty() {
            // Another proxy if there is one; else any, as if nothing had been tried.
            if let Ok(lease) = self.lease_avoiding(host, extensions, avoid) {
                return Ok(Self::remember(tried, lease));
            }
        }
        let lease = self.lease_avoiding(host, extensions, Vec::new())?;
        Ok(Self::remember(tried, lease))
    }

    fn remember(tried: Option<&TriedProxies>, lease: Lease) -> Lease {
        if let Some(tried) = tried {
            tried.push(lease.proxy().id().clone());
        }
        lease
    }

    fn lease_avoiding(
        &self,
        host: &str,
        extensions: &http::Extensions,
        avoid: Vec<ProxyId>,
    ) -> Result<Lease, ClientError> {
        let pool = &self.inner.pool;
        let no_proxy = |source| ClientError::NoProxy { host: host.to_owned(), source };
        let with_host = |req: &Requirements| Requirements {
            target_host: Some(Arc::from(host)),
            avoid: avoid.clone(),
            ..req.clone()
        };
        if let Some(explicit) = extensions.get::<Requirements>() {
            return pool.acquire(&with_host(explicit)).map_err(no_proxy);
        }
        let route = self.inner.policy.route(host);
        let acquire = |req: &Requirements, balancer: Option<&dyn Balancer>| match balancer {
            Some(b) => pool.acquire_with(&with_host(req), b),
            None => pool.acquire(&with_host(req)),
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
        let mut guard = ReportOnDrop { lease: Some(lease), started: Instant::now(), abandoned };
        let exchange = exchange_once_more_if_stale(&client, request, inner.settings.max_body_bytes);
        tokio::pin!(exchange);
        let (mut timeout, mut known) = self.attempt_timeout(host);
        let exchanged = loop {
            // An adaptive timeout not yet known is looked up again every so often, so that
            // the attempts sent before the host's first answers are held to it too.
            let remaining = timeout.saturating_sub(guard.started.elapsed());
            let wait = if known { remaining } else { remaining.min(RECHECK) };
            match tokio::time::timeout(wait, &mut exchange).await {
                Ok(done) => break Ok(done),
                Err(elapsed) if known || guard.started.elapsed() >= timeout => break Err(elapsed),
                Err(_) => (timeout, known) = self.attempt_timeout(host),
            }
        };
        let latency = guard.started.elapsed();
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
                let verdict = inner.classifier.classify_response(status, &headers, &[]);
                guard.report(verdict.outcome(latency));
                Err(ClientError::BodyTooLarge { proxy: id, limit: inner.settings.max_body_bytes })
            }
            Ok(Ok(Exchange::Complete(response))) => {
                let verdict =
                    inner.classifier.classify_response(response.status(), response.headers(), response.body());
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
                Ok(ProxiedResponse { proxy: id, verdict, latency, response })
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
            exchange_once_more_if_stale(&client, request, inner.settings.max_body_bytes),
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

/// Why an exchange got no answer.
struct Failure {
    kind: FailureKind,
    message: String,
    /// The connection closed before any answer: typically a kept-alive connection the
    /// proxy had just closed (tinyproxy closes after every request without saying so).
    stale: bool,
}

/// [`exchange`], sent again when an attempt died on a stale kept-alive connection and
/// the request is idempotent and cloneable: a race of connection reuse, not a failure of
/// the proxy, as browsers also treat it. Another idle connection may be stale too (a
/// proxy like tinyproxy closes every one), so up to [`STALE_RETRIES`] more attempts are
/// made; each takes a stale connection out of the pool for good.
async fn exchange_once_more_if_stale(
    client: &reqwest::Client,
    request: reqwest::Request,
    max_body: usize,
) -> Result<Exchange, Failure> {
    let idempotent = matches!(*request.method(), http::Method::GET | http::Method::HEAD | http::Method::OPTIONS);
    let mut spare = if idempotent { request.try_clone() } else { None };
    let mut result = exchange(client, request, max_body).await;
    for _ in 0..STALE_RETRIES {
        match (&result, spare.take()) {
            (Err(failure), Some(again)) if failure.stale => {
                spare = again.try_clone();
                result = exchange(client, again, max_body).await;
            }
            _ => break,
        }
    }
    result
}

/// Further attempts after a stale kept-alive connection.
const STALE_RETRIES: usize = 3;

/// How often a hedging request looks again for its host's latency while it is unknown.
const RECHECK: Duration = Duration::from_millis(50);

/// One request and its body, up to `max_body` bytes.
async fn exchange(client: &reqwest::Client, request: reqwest::Request, max_body: usize) -> Result<Exchange, Failure> {
    let mut response = client.execute(request).await.map_err(failure)?;
    let too_large = |r: &reqwest::Response| Exchange::TooLarge { status: r.status(), headers: r.headers().clone() };
    if response.content_length().is_some_and(|len| len > max_body as u64) {
        return Ok(too_large(&response));
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(failure)? {
        if body.len() + chunk.len() > max_body {
            return Ok(too_large(&response));
        }
        body.extend_from_slice(&chunk);
    }
    let mut out = http::Response::new(body.freeze());
    *out.status_mut() = response.status();
    *out.version_mut() = response.version();
    *out.headers_mut() = std::mem::take(response.headers_mut());
    Ok(Exchange::Complete(out))
}

fn failure(e: reqwest::Error) -> Failure {
    let message = error_chain(&e);
    let kind = if e.is_builder() || e.is_redirect() {
        FailureKind::Caller
    } else if e.is_timeout() {
        FailureKind::Timeout
    } else if e.is_connect() && names_unreachable_target(&message) {
        FailureKind::TargetUnreachable
    } else if e.is_connect() {
        FailureKind::Connect
    } else {
        FailureKind::Transport
    };
    let mut stale = false;
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        stale |= s.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_incomplete_message);
        source = s.source();
    }
    Failure { kind, message, stale }
}

/// The tunnel and SOCKS errors of the HTTP stack are not public types, so their text is
/// the only sign that the proxy answered but could not reach the target. A 407 to
/// CONNECT ("proxy authorization required") stays the proxy's failure.
fn names_unreachable_target(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    ["tunnel error: unsuccessful", "host unreachable", "network unreachable", "connection refused by destination"]
        .iter()
        .any(|sign| m.contains(sign))
        || (m.contains("socks") && m.contains("connection refused"))
}

/// Removes the proxy's credentials, raw or percent-encoded, from a message of the HTTP
/// stack: an error may quote the proxy URL it was given.
pub(crate) fn scrub(message: &str, proxy: &Proxy) -> String {
    let Some(credentials) = proxy.credentials() else { return message.to_owned() };
    let mut out = message.to_owned();
    let encoded = proxy.url_with_credentials();
    let userinfo = encoded.split_once("://").and_then(|(_, rest)| rest.rsplit_once('@')).map(|(u, _)| u.to_owned());
    for secret in [userinfo.as_deref().unwrap_or(""), credentials.password(), credentials.username()] {
        if secret.len() >= 2 {
            out = out.replace(secret, "***");
        }
    }
    for part in userinfo.as_deref().unwrap_or("").split(':') {
        if part.len() >= 2 {
            out = out.replace(part, "***");
        }
    }
    out
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
            .field("request_timeout", &self.inner.settings.request_timeout)
            .finish()
    }
}

impl fmt::Debug for ProxyClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyClientBuilder").field("pool", &self.pool).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_url_the_http_stack_would_drop_is_an_error_never_a_direct_connection() {
        let pool = ProxyPool::new([]).expect("empty pool");
        let client = ProxyClient::builder(pool).build().expect("valid settings");
        let long = Proxy::parse("http://127.0.0.1:3128")
            .expect("valid")
            .with_unchecked_credentials("user", &"p".repeat(70_000));
        let err = client.inner.settings.build_client(&long).expect_err("the stack would drop this proxy");
        assert!(err.contains("cannot be used") && !err.contains("ppp"), "{err}");
        let fine = Proxy::parse("http://user:pw@127.0.0.1:3128").expect("valid");
        assert!(client.inner.settings.build_client(&fine).is_ok());
    }

    #[test]
    fn scrub_removes_raw_and_encoded_credentials() {
        let proxy = Proxy::parse("http://us%40er:p%3Ass-w0rd@127.0.0.1:1").expect("valid");
        let message = "error for http://us%40er:p%3Ass-w0rd@127.0.0.1:1 (user us@er, password p:ss-w0rd)";
        let scrubbed = scrub(message, &proxy);
        assert!(!scrubbed.contains("p:ss-w0rd") && !scrubbed.contains("p%3Ass") && !scrubbed.contains("us@er"));
        assert!(scrubbed.contains("127.0.0.1:1"), "{scrubbed}");
    }
}
