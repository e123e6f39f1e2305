//! Active health checks, the seed's quality monitor: a background task that probes
//! every proxy through test URLs, so that the pool learns about proxies no request has
//! tried lately and brings an ejected proxy back as soon as it answers again.
//!
//! Probes of one cycle are spread evenly over the interval (proxy *i* of *n* starts at
//! *i*·interval/*n*), never more than `concurrency` at once, each within `timeout`. A
//! probe's result is recorded like a request's outcome (success rate, latency, quality,
//! consecutive failures, ejection); a successful probe of an ejected proxy ends its
//! ejection at once. The task stops when its [`HealthCheckHandle`] is dropped or shut
//! down.
//!
//! ```no_run
//! use harvester_proxypool::client::ProxyClient;
//! use harvester_proxypool::health_check::{HealthCheckConfig, HealthChecker};
//! use harvester_proxypool::ProxyPool;
//!
//! # async fn run(pool: ProxyPool) -> Result<(), Box<dyn std::error::Error>> {
//! let client = ProxyClient::builder(pool.clone()).build()?;
//! let config = HealthCheckConfig { test_urls: vec!["http://127.0.0.1:8080/health".into()], ..Default::default() };
//! let handle = HealthChecker::new(pool, client, config)?.spawn();
//! // ... later:
//! handle.shutdown().await;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::client::ProxyClient;
use crate::config::Longest;
use crate::error::ConfigError;
pub use crate::health::ProbeResult;
use crate::pool::ProxyPool;
use crate::proxy::Proxy;

/// How often, how fast and against what proxies are probed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthCheckConfig {
    /// One full round over the pool. Default 5 min (the seed's).
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Longest wait for one probe. Default 10 s (the seed's).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Probes running at once at most (1 to 100 000). Default 50 (the seed's).
    pub concurrency: usize,
    /// URLs fetched through each proxy, one probe each; at least one. Point them at a
    /// page you control.
    pub test_urls: Vec<String>,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        HealthCheckConfig {
            interval: Duration::from_secs(300),
            timeout: Duration::from_secs(10),
            concurrency: 50,
            test_urls: Vec::new(),
        }
    }
}

impl HealthCheckConfig {
    /// The most probes that may run at once.
    pub const MAX_CONCURRENCY: usize = 100_000;

    /// Refuses out-of-range values, naming the field: `interval` and `timeout` more than
    /// zero and at most a year, `concurrency` 1..=[`MAX_CONCURRENCY`](Self::MAX_CONCURRENCY),
    /// at least one http(s) test URL.
    pub fn validate(&self) -> Result<(), ConfigError> {
        // A year: far beyond any sensible value, and keeps `Instant + interval` from overflowing.
        Longest::YEAR.check("health_check.interval", self.interval, false)?;
        Longest::YEAR.check("health_check.timeout", self.timeout, false)?;
        if !(1..=Self::MAX_CONCURRENCY).contains(&self.concurrency) {
            return Err(ConfigError::new(
                "health_check.concurrency",
                format!("{} must be in 1..={}", self.concurrency, Self::MAX_CONCURRENCY),
            ));
        }
        if self.test_urls.is_empty() {
            return Err(ConfigError::new("health_check.test_urls", "needs at least one URL"));
        }
        for url in &self.test_urls {
            let ok = url.parse::<http::Uri>().is_ok_and(|u| {
                matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some_and(|h| !h.is_empty())
            });
            if !ok {
                return Err(ConfigError::new("health_check.test_urls", format!("'{url}' is not an http(s) URL")));
            }
        }
        Ok(())
    }
}

/// Sends one probe through one proxy. [`ProxyClient`] is the real one; tests and other
/// transports may bring their own.
pub trait Prober: Send + Sync + 'static {
    /// Fetches `url` through `proxy` within `timeout`.
    fn probe(&self, proxy: Arc<Proxy>, url: String, timeout: Duration) -> BoxFuture<'static, ProbeResult>;
}

impl Prober for ProxyClient {
    fn probe(&self, proxy: Arc<Proxy>, url: String, timeout: Duration) -> BoxFuture<'static, ProbeResult> {
        let client = self.clone();
        Box::pin(async move {
            let started = Instant::now();
            let verdict = client.probe(&proxy, &url, timeout).await;
            let timed_out = verdict == Err(crate::client::Verdict::Timeout);
            ProbeResult { success: verdict.is_ok(), timed_out, latency: started.elapsed() }
        })
    }
}

/// What one cycle found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CycleReport {
    /// Proxies probed.
    pub probed: usize,
    /// Of which every probe succeeded.
    pub healthy: usize,
    /// Of which were ejected and are back in rotation.
    pub restored: usize,
}

/// Probes the proxies of a pool; see the [module docs](self).
pub struct HealthChecker {
    pool: ProxyPool,
    prober: Arc<dyn Prober>,
    config: HealthCheckConfig,
}

impl HealthChecker {
    /// A checker, or the config field that is out of range.
    pub fn new(pool: ProxyPool, prober: impl Prober, config: HealthCheckConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(HealthChecker { pool, prober: Arc::new(prober), config })
    }

    /// Probes every proxy once, now, `concurrency` at a time, and waits for all.
    pub async fn run_cycle(&self) -> CycleReport {
        let semaphore = Arc::new(Semaphore::new(self.config.concurrency));
        let mut probes = JoinSet::new();
        for proxy in self.pool.proxies() {
            let Ok(permit) = semaphore.clone().acquire_owned().await else { break };
            probes.spawn(self.check(proxy, permit));
        }
        collect(probes).await
    }

    /// Runs cycles in the background, each spread over the interval, until the handle
    /// is dropped or shut down. Must be called within a tokio runtime.
    pub fn spawn(self) -> HealthCheckHandle {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(self.run(stopped));
        HealthCheckHandle { stop, task: Some(task) }
    }

    async fn run(self, mut stopped: watch::Receiver<bool>) {
        let semaphore = Arc::new(Semaphore::new(self.config.concurrency));
        loop {
            let cycle_start = Instant::now();
            let proxies = self.pool.proxies();
            let step = self.config.interval / u32::try_from(proxies.len().max(1)).unwrap_or(u32::MAX);
            let mut probes = JoinSet::new();
            let mut early = CycleReport::default();
            for (i, proxy) in proxies.into_iter().enumerate() {
                let start_at = cycle_start + step * u32::try_from(i).unwrap_or(u32::MAX);
                let permit = tokio::select! {
                    _ = stopped.changed() => return,
                    permit = async {
                        tokio::time::sleep_until(start_at).await;
                        semaphore.clone().acquire_owned().await
                    } => permit,
                };
                let Ok(permit) = permit else { return };
                probes.spawn(self.check(proxy, permit));
                while let Some(done) = probes.try_join_next() {
                    early.add(done);
                }
            }
            tokio::select! {
                _ = stopped.changed() => return,
                report = async {
                    let mut report = collect(probes).await;
                    report.merge(early);
                    tokio::time::sleep_until(cycle_start + self.config.interval).await;
                    report
                } => tracing::debug!(?report, "active health check cycle done"),
            }
        }
    }

    /// Probes one proxy through every test URL and records each result.
    fn check(
        &self,
        proxy: Arc<Proxy>,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> impl Future<Output = Checked> + use<> {
        let pool = self.pool.clone();
        let prober = self.prober.clone();
        let urls = self.config.test_urls.clone();
        let timeout = self.config.timeout;
        async move {
            let _permit = permit;
            let mut checked = Checked::default();
            let mut all_ok = true;
            for url in urls {
                let started = Instant::now();
                // Bounded here too: a prober of the user's may ignore the timeout it is given.
                let result = tokio::time::timeout(timeout, prober.probe(proxy.clone(), url, timeout))
                    .await
                    .unwrap_or(ProbeResult { success: false, timed_out: true, latency: started.elapsed() });
                all_ok &= result.success;
                checked.restored |= pool.record_probe(&proxy, result);
            }
            checked.healthy = all_ok;
            checked
        }
    }
}

#[derive(Default)]
struct Checked {
    healthy: bool,
    restored: bool,
}

async fn collect(mut probes: JoinSet<Checked>) -> CycleReport {
    let mut report = CycleReport::default();
    while let Some(done) = probes.join_next().await {
        report.add(done);
    }
    report
}

impl CycleReport {
    /// Counts one finished probe task; one that panicked (in a user's prober) counts as
    /// probed and not healthy.
    fn add(&mut self, done: Result<Checked, tokio::task::JoinError>) {
        self.probed += 1;
        if let Ok(checked) = done {
            self.healthy += usize::from(checked.healthy);
            self.restored += usize::from(checked.restored);
        }
    }

    fn merge(&mut self, other: CycleReport) {
        self.probed += other.probed;
        self.healthy += other.healthy;
        self.restored += other.restored;
    }
}

impl fmt::Debug for HealthChecker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthChecker").field("pool", &self.pool).field("config", &self.config).finish()
    }
}

/// Keeps the background health check running; dropping it stops the task.
#[derive(Debug)]
#[must_use = "dropping the handle stops the health check at once"]
pub struct HealthCheckHandle {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl HealthCheckHandle {
    /// Stops the task and waits until it has stopped; probes in flight are cancelled.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// True while the background task runs.
    pub fn is_running(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for HealthCheckHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
