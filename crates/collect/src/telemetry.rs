//! Watching a run: metrics through the `metrics` facade with a Prometheus endpoint (`/metrics`,
//! `/health`, `/ready`), and progress on the terminal (a bar) or in log lines (elsewhere).
//!
//! Metric names follow the seed where it names them:
//! `data_collection_requests_total{status, platform}` and
//! `data_collection_request_duration_seconds{platform}` per URL (platform = target host),
//! `proxy_success_rate{provider, region}` and `processing_queue_depth{queue_name}` sampled
//! every second, and `circuit_breaker_state{host}` (0 closed, 1 open, 2 half-open, 3 other)
//! with `circuit_breakers_open` read from the live breakers at each scrape, so that a breaker
//! forgotten for idleness leaves no series behind; the crates add their own
//! (`pipeline_stage_*`, `harvester_retry_*`, `harvester_breaker_*`…). Sampled every second
//! too: the pool (`harvester_pool_proxies`, `_ejected`, `_banned`) and what the run cost
//! (`harvester_proxy_spend{provider}`, `harvester_site_spend{platform, kind}` with its
//! `_requests` and `_successes`, `harvester_site_ok_urls{platform}`); on each change of
//! state of an anomaly, `harvester_anomaly_severity{signal}` and
//! `harvester_anomalies_total{signal, severity}`. `ops/prometheus/harvester.rules.yml`
//! alerts on them and `ops/grafana/harvester.json` draws them.
//!
//! Host labels are bounded: the first `--metrics-hosts` hosts seen (default 100) get their
//! own, every later one counts as `other`. A crawl over 20 000 sites would otherwise make
//! hundreds of thousands of series and a scrape of tens of megabytes.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::convert::Infallible;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use harvester_pipeline::processor::StageControl;
use harvester_proxypool::ProxyPool;
use harvester_resilience::breaker::{BreakerState, KeyedBreaker};
use http::StatusCode;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use indicatif::{ProgressBar, ProgressStyle};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::costs::Costs;
use crate::output::{Counts, Tally};
use crate::records::{Line, Status};
use harvester_scaler::anomaly::{AnomalyConfig, AnomalyEvent, Detector, Signal};

/// What the running job shares with whoever watches it (progress, metrics, health).
#[derive(Clone)]
pub struct Watch {
    /// Lines written so far.
    pub tally: Arc<Tally>,
    /// URLs in the job; 0 when not known (a shared queue).
    pub total: u64,
    /// True while the job takes work: from the start of the run until it stops or ends (for
    /// `/ready`).
    pub ready: watch::Receiver<bool>,
}

/// The label of every host past the labelled ones.
pub const OTHER_HOSTS: &str = "other";

/// The hosts that have a label of their own: the first `max` seen.
#[derive(Debug)]
pub struct HostLabels {
    max: usize,
    hosts: RwLock<HashSet<String>>,
}

impl HostLabels {
    /// At most `max` hosts labelled by name.
    pub fn new(max: usize) -> Self {
        HostLabels { max, hosts: RwLock::new(HashSet::new()) }
    }

    /// The label of `host`: its name while it is one of the first `max` seen, else `other`.
    pub fn label<'a>(&self, host: &'a str) -> Cow<'a, str> {
        if self.hosts.read().unwrap_or_else(PoisonError::into_inner).contains(host) {
            return Cow::Borrowed(host);
        }
        let mut hosts = self.hosts.write().unwrap_or_else(PoisonError::into_inner);
        if hosts.contains(host) || hosts.len() < self.max {
            hosts.insert(host.to_owned());
            Cow::Borrowed(host)
        } else {
            Cow::Borrowed(OTHER_HOSTS)
        }
    }
}

static HOST_LABELS: OnceLock<HostLabels> = OnceLock::new();

/// Sets how many hosts get a label of their own (once; later calls change nothing).
pub fn limit_host_labels(max: usize) {
    let _ = HOST_LABELS.set(HostLabels::new(max));
}

/// The label of `host` in this process's metrics.
fn host_label(host: &str) -> Cow<'_, str> {
    HOST_LABELS.get_or_init(|| HostLabels::new(DEFAULT_HOST_LABELS)).label(host)
}

/// Hosts labelled by name unless `--metrics-hosts` says otherwise.
pub const DEFAULT_HOST_LABELS: usize = 100;

/// Durations worth telling apart for a page fetched through proxies, in seconds.
const DURATION_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// Installs the Prometheus recorder as the process's `metrics` recorder, with histogram
/// buckets for the request durations (summaries otherwise).
pub fn install_recorder() -> Result<PrometheusHandle, String> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("duration_seconds".to_owned()), DURATION_BUCKETS)
        .and_then(|builder| builder.install_recorder())
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))
}

/// Binds the metrics address, so that a bad or busy one is refused before any work.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr).await.map_err(|e| format!("--metrics-addr {addr}: {e}"))
}

/// Serves `/metrics` (the recorder's series and the breakers' states), `/health` (200 while
/// the process runs) and `/ready` (200 while the job takes work, 503 before and after) on
/// `listener` until the task is aborted.
pub fn serve(
    listener: TcpListener,
    handle: PrometheusHandle,
    watch: Watch,
    breakers: KeyedBreaker<String>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let (handle, ready, breakers) = (handle.clone(), watch.ready.clone(), breakers.clone());
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let (status, body) = match request.uri().path() {
                        "/metrics" => (StatusCode::OK, handle.render() + &breaker_states(&breakers)),
                        "/health" => (StatusCode::OK, "ok\n".to_owned()),
                        "/ready" if *ready.borrow() => (StatusCode::OK, "ready\n".to_owned()),
                        "/ready" => (StatusCode::SERVICE_UNAVAILABLE, "not taking work\n".to_owned()),
                        _ => (StatusCode::NOT_FOUND, "try /metrics, /health or /ready\n".to_owned()),
                    };
                    let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
                    *response.status_mut() = status;
                    response
                        .headers_mut()
                        .insert("content-type", http::HeaderValue::from_static("text/plain; version=0.0.4"));
                    async move { Ok::<_, Infallible>(response) }
                });
                // A client that hangs up early is its own business.
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    })
}

/// The breakers as of now, in the exposition format: `circuit_breaker_state{host}` for each
/// labelled host with a breaker, and `circuit_breakers_open` over every host.
pub fn breaker_states(breakers: &KeyedBreaker<String>) -> String {
    use std::fmt::Write;
    let mut states: BTreeMap<String, f64> = BTreeMap::new();
    let mut open = 0;
    for host in breakers.keys() {
        let state = match breakers.get(&host).map(|b| b.state()) {
            Some(BreakerState::Closed) => 0.0,
            Some(BreakerState::Open) => 1.0,
            Some(BreakerState::HalfOpen) => 2.0,
            Some(_) => 3.0,
            None => continue, // forgotten since the list was taken
        };
        open += usize::from(state == 1.0);
        let label = host_label(&host);
        if label != OTHER_HOSTS {
            states.insert(label.into_owned(), state);
        }
    }
    let mut out = String::from(
        "# HELP circuit_breaker_state The circuit breaker of each host: 0 closed, 1 open, 2 half-open, 3 other.\n\
         # TYPE circuit_breaker_state gauge\n",
    );
    for (host, state) in states {
        let _ = writeln!(out, "circuit_breaker_state{{host=\"{}\"}} {state}", escape_label(&host));
    }
    let _ = write!(
        out,
        "# HELP circuit_breakers_open Hosts whose circuit breaker is open.\n# TYPE circuit_breakers_open gauge\ncircuit_breakers_open {open}\n"
    );
    out
}

/// A label value as the exposition format wants it.
fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Samples what has no natural event (proxy success rates, queue depths) into gauges every
/// second, until aborted.
pub fn sample_gauges(pool: ProxyPool, stages: Vec<StageControl>, tally: Arc<Tally>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let stats = pool.stats();
            metrics::gauge!("harvester_pool_proxies").set(stats.size as f64);
            metrics::gauge!("harvester_pool_proxies_ejected").set(stats.ejected as f64);
            metrics::gauge!("harvester_pool_proxies_banned").set(stats.banned_somewhere as f64);
            let costs = Costs::of(&pool, &stats, &tally.counts());
            for (provider, spend) in &costs.by_provider {
                metrics::gauge!("harvester_proxy_spend", "provider" => provider.clone()).set(spend.cost);
            }
            for (host, site) in &costs.by_site {
                let host = host_label(host).into_owned();
                metrics::gauge!("harvester_site_ok_urls", "platform" => host.clone()).set(site.ok_urls as f64);
                for (kind, spend) in &site.by_kind {
                    let labels = [("platform", host.clone()), ("kind", kind.clone())];
                    metrics::gauge!("harvester_site_spend", &labels).set(spend.cost);
                    metrics::gauge!("harvester_site_spend_requests", &labels).set(spend.requests as f64);
                    metrics::gauge!("harvester_site_spend_successes", &labels).set(spend.successes as f64);
                }
            }
            let mut by_group: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
            for proxy in stats.proxies {
                let group = (proxy.provider.unwrap_or_default(), proxy.region.unwrap_or_default());
                let entry = by_group.entry(group).or_default();
                entry.0 += proxy.successes;
                entry.1 += proxy.requests;
            }
            for ((provider, region), (successes, requests)) in by_group {
                let rate = if requests == 0 { 0.0 } else { 100.0 * successes as f64 / requests as f64 };
                metrics::gauge!("proxy_success_rate", "provider" => provider, "region" => region).set(rate);
            }
            for stage in &stages {
                if let Ok(snapshot) = stage.snapshot() {
                    metrics::gauge!("processing_queue_depth", "queue_name" => snapshot.name)
                        .set(snapshot.queue_depth as f64);
                }
            }
        }
    })
}

/// How often the run's signals are judged for anomalies.
pub const ANOMALY_SAMPLING: Duration = Duration::from_millis(250);

/// Anomaly detection over a run: every [`ANOMALY_SAMPLING`], the error rate and mean latency
/// of the lines written since the last sample (lines of URLs cut short by a stop left out),
/// the pipeline's queued records and the process's resident memory go to a
/// [`Detector`], which logs and counts each change of
/// state; [`AnomalyWatch::stop`] returns them for the report.
pub struct AnomalyWatch {
    task: JoinHandle<()>,
    events: Arc<Mutex<Vec<AnomalyEvent>>>,
}

impl AnomalyWatch {
    /// Starts watching.
    pub fn start(tally: Arc<Tally>, stages: Vec<StageControl>) -> AnomalyWatch {
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = events.clone();
        // A quarter second a sample: a minute of baseline, judged after five seconds.
        let config = AnomalyConfig { window: 240, warm_up: 20, ..AnomalyConfig::default() };
        let task = tokio::spawn(async move {
            let Ok(mut detector) = Detector::new(config) else { return };
            let mut tick = tokio::time::interval(ANOMALY_SAMPLING);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last = Counts::default();
            loop {
                tick.tick().await;
                let now = tally.counts();
                let final_lines = |counts: &Counts| {
                    let cut_short = counts.failure_reasons.get("interrupted").copied().unwrap_or(0);
                    (counts.done().saturating_sub(cut_short), counts.failed.saturating_sub(cut_short))
                };
                let ((done, failed), (done_before, failed_before)) = (final_lines(&now), final_lines(&last));
                let lines = done.saturating_sub(done_before);
                let mut signals = Vec::with_capacity(4);
                if lines > 0 {
                    let failed = failed.saturating_sub(failed_before);
                    signals.push((Signal::ErrorRate, failed as f64 / lines as f64));
                    let elapsed = now.elapsed_ms.saturating_sub(last.elapsed_ms);
                    signals.push((Signal::Latency, elapsed as f64 / lines as f64 / 1000.0));
                }
                let queued: usize =
                    stages.iter().filter_map(|stage| stage.snapshot().ok()).map(|s| s.queue_depth).sum();
                signals.push((Signal::QueueDepth, queued as f64));
                if let Some(rss) = resident_bytes() {
                    signals.push((Signal::Memory, rss as f64));
                }
                last = now;
                for (signal, value) in signals {
                    if let Some(event) = detector.observe(signal, value) {
                        seen.lock().unwrap_or_else(PoisonError::into_inner).push(event);
                    }
                }
            }
        });
        AnomalyWatch { task, events }
    }

    /// Stops watching; every change of state seen, in order.
    pub fn stop(self) -> Vec<AnomalyEvent> {
        self.task.abort();
        std::mem::take(&mut *self.events.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The process's resident memory (`VmRSS`), on Linux.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.trim_start_matches("VmRSS:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// Records one URL, as written to the output, in the seed's request metrics: `status` is
/// `ok` or `failed`, `platform` the target host, the duration from its first attempt to
/// its last answer.
pub fn record_url(host: &str, line: &Line) {
    let host = host_label(host).into_owned();
    let status = match line.status {
        Status::Ok => "ok",
        Status::Failed => "failed",
    };
    metrics::counter!("data_collection_requests_total", "method" => "GET", "status" => status, "platform" => host.clone())
        .increment(1);
    metrics::histogram!("data_collection_request_duration_seconds", "method" => "GET", "platform" => host)
        .record(line.elapsed_ms as f64 / 1000.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_hosts_get_a_label_of_their_own() {
        let labels = HostLabels::new(2);
        assert_eq!(labels.label("a.example"), "a.example");
        assert_eq!(labels.label("b.example"), "b.example");
        assert_eq!(labels.label("c.example"), OTHER_HOSTS);
        assert_eq!(labels.label("a.example"), "a.example", "a labelled host keeps its label");
        for n in 0..20_000 {
            assert_eq!(labels.label(&format!("h{n}.example")), OTHER_HOSTS);
        }
        assert_eq!(labels.hosts.read().expect("not poisoned").len(), 2, "memory stays bounded too");
    }

    #[test]
    fn breaker_states_are_read_live_so_forgotten_breakers_leave_no_series() {
        use harvester_resilience::breaker::BreakerConfig;
        let breakers: KeyedBreaker<String> = KeyedBreaker::new(BreakerConfig::default()).expect("valid config");
        let _ = breakers.breaker(&"shop.example".to_owned());
        let text = breaker_states(&breakers);
        assert!(text.contains("circuit_breaker_state{host=\"shop.example\"} 0"), "{text}");
        assert!(text.contains("circuit_breakers_open 0"), "{text}");
        let empty: KeyedBreaker<String> = KeyedBreaker::new(BreakerConfig::default()).expect("valid config");
        assert!(!breaker_states(&empty).contains("host="), "no breaker, no series");
        assert_eq!(escape_label("a\"b\\c"), "a\\\"b\\\\c");
    }
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// Nothing (`--quiet`).
    Quiet,
    /// A bar, when standard error is a terminal.
    Bar,
    /// A line every few seconds, for logs.
    Lines,
}

impl ProgressMode {
    /// A bar on a terminal, lines elsewhere, nothing when quiet.
    pub fn detect(quiet: bool) -> Self {
        match (quiet, std::io::stderr().is_terminal()) {
            (true, _) => ProgressMode::Quiet,
            (false, true) => ProgressMode::Bar,
            (false, false) => ProgressMode::Lines,
        }
    }
}

/// Shows progress until aborted: done / total, ok / failed, rate and ETA.
pub fn show_progress(mode: ProgressMode, watch: Watch) -> JoinHandle<()> {
    tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        let bar = (mode == ProgressMode::Bar).then(|| {
            // A shared queue's size is not this collector's: then a count, not a bar.
            let (bar, template) = match watch.total {
                0 => (ProgressBar::no_length(), "{spinner} {pos} done {msg} {per_sec}"),
                total => (ProgressBar::new(total), "{bar:30} {pos}/{len} {msg} {per_sec} ETA {eta}"),
            };
            let style = ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        let period = if bar.is_some() { Duration::from_millis(200) } else { Duration::from_secs(5) };
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            let counts = watch.tally.counts();
            match (&bar, mode) {
                (Some(bar), _) => {
                    bar.set_position(counts.done());
                    bar.set_message(format!("ok {} failed {}", counts.ok, counts.failed));
                }
                (None, ProgressMode::Lines) if counts.done() > 0 && watch.total == 0 => {
                    let rate = counts.done() as f64 / started.elapsed().as_secs_f64().max(0.001);
                    eprintln!(
                        "collect: {} done ({} ok, {} failed), {rate:.1} URLs/s",
                        counts.done(),
                        counts.ok,
                        counts.failed
                    );
                }
                (None, ProgressMode::Lines) if counts.done() > 0 => {
                    let secs = started.elapsed().as_secs_f64();
                    let rate = counts.done() as f64 / secs.max(0.001);
                    let left = watch.total.saturating_sub(counts.done());
                    eprintln!(
                        "collect: {}/{} done ({} ok, {} failed), {rate:.1} URLs/s, ETA {:.0} s",
                        counts.done(),
                        watch.total,
                        counts.ok,
                        counts.failed,
                        left as f64 / rate.max(0.001)
                    );
                }
                _ => {}
            }
        }
    })
}
