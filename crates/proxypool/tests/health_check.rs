//! Active health checks, driven by a recording prober under tokio's paused clock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use harvester_proxypool::balance::RoundRobin;
use harvester_proxypool::health_check::{HealthCheckConfig, HealthChecker, ProbeResult, Prober};
use harvester_proxypool::{
    EjectionConfig, Outcome, PoolConfig, Proxy, ProxyMeta, ProxyPool, RequestContext, Requirements,
};
use tokio::time::Instant;

/// Records when each probe starts; each probe takes `hold` and succeeds unless its proxy
/// is in `failing`.
#[derive(Clone, Default)]
struct Recorder {
    started: Arc<Mutex<Vec<(String, Instant)>>>,
    running: Arc<AtomicUsize>,
    most_running: Arc<AtomicUsize>,
    failing: Arc<Mutex<Vec<String>>>,
    hold: Duration,
}

impl Prober for Recorder {
    fn probe(&self, proxy: Arc<Proxy>, _url: String, _timeout: Duration) -> BoxFuture<'static, ProbeResult> {
        let me = self.clone();
        Box::pin(async move {
            me.started.lock().expect("not poisoned").push((proxy.id().to_string(), Instant::now()));
            let now_running = me.running.fetch_add(1, Ordering::SeqCst) + 1;
            me.most_running.fetch_max(now_running, Ordering::SeqCst);
            tokio::time::sleep(me.hold).await;
            me.running.fetch_sub(1, Ordering::SeqCst);
            let success = !me.failing.lock().expect("not poisoned").contains(&proxy.id().to_string());
            ProbeResult { success, timed_out: false, latency: me.hold }
        })
    }
}

fn pool(n: usize) -> ProxyPool {
    let config = PoolConfig {
        ejection: EjectionConfig { max_ejected_fraction: 1.0, panic_threshold: 0.0, ..EjectionConfig::default() },
        ..PoolConfig::default()
    };
    let pool = ProxyPool::builder().config(config).balancer(RoundRobin::new()).build().expect("valid");
    pool.extend((0..n).map(|i| {
        Proxy::with_meta("http://127.0.0.1:9", ProxyMeta { id: Some(format!("p{i}")), ..Default::default() })
            .expect("valid")
    }))
    .expect("unique");
    pool
}

fn config(interval: Duration, concurrency: usize) -> HealthCheckConfig {
    HealthCheckConfig {
        interval,
        timeout: Duration::from_secs(1),
        concurrency,
        test_urls: vec!["http://127.0.0.1:1/health".into()],
    }
}

#[tokio::test(start_paused = true)]
async fn probes_are_spread_evenly_over_the_interval() {
    let recorder = Recorder::default();
    let checker = HealthChecker::new(pool(4), recorder.clone(), config(Duration::from_secs(60), 50)).expect("valid");
    let origin = Instant::now();
    let handle = checker.spawn();
    tokio::time::sleep(Duration::from_secs(61)).await;
    let started = recorder.started.lock().expect("not poisoned").clone();
    let offsets: Vec<(String, u64)> = started.iter().map(|(id, at)| (id.clone(), (*at - origin).as_secs())).collect();
    assert_eq!(
        offsets,
        [("p0".into(), 0), ("p1".into(), 15), ("p2".into(), 30), ("p3".into(), 45), ("p0".into(), 60)],
        "one probe every interval / n, then the next cycle"
    );
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_cycle_never_runs_more_probes_at_once_than_allowed() {
    let recorder = Recorder { hold: Duration::from_secs(2), ..Recorder::default() };
    let config = HealthCheckConfig { timeout: Duration::from_secs(5), ..config(Duration::from_secs(60), 3) };
    let checker = HealthChecker::new(pool(10), recorder.clone(), config).expect("valid");
    let started = Instant::now();
    let report = checker.run_cycle().await;
    assert_eq!((report.probed, report.healthy), (10, 10));
    assert_eq!(recorder.most_running.load(Ordering::SeqCst), 3);
    assert_eq!(started.elapsed(), Duration::from_secs(8), "ten 2 s probes, three at a time: four rounds");
}

#[tokio::test(start_paused = true)]
async fn the_task_stops_when_its_handle_is_dropped() {
    let recorder = Recorder::default();
    let handle =
        HealthChecker::new(pool(2), recorder.clone(), config(Duration::from_secs(10), 5)).expect("valid").spawn();
    tokio::time::sleep(Duration::from_secs(25)).await;
    let before = recorder.started.lock().expect("not poisoned").len();
    assert_eq!(before, 5, "probes at 0, 5, 10, 15 and 20 s");
    drop(handle);
    tokio::time::sleep(Duration::from_secs(100)).await;
    assert_eq!(recorder.started.lock().expect("not poisoned").len(), before, "no probe after the handle is gone");
}

#[tokio::test(start_paused = true)]
async fn a_successful_probe_brings_an_ejected_proxy_back_and_failing_probes_eject() {
    let pool = pool(2);
    for _ in 0..5 {
        pool.acquire_with(&Requirements::ANY, &RequestContext::new(), &Only("p0"))
            .expect("p0")
            .report(Outcome::network_failure(Duration::ZERO));
    }
    assert!(pool.proxy_stats("p0").expect("present").ejected_for.is_some());
    let recorder = Recorder { failing: Arc::new(Mutex::new(vec!["p1".into()])), ..Recorder::default() };
    let checker = HealthChecker::new(pool.clone(), recorder, config(Duration::from_secs(60), 5)).expect("valid");
    let report = checker.run_cycle().await;
    assert_eq!((report.probed, report.healthy, report.restored), (2, 1, 1));
    assert_eq!(pool.proxy_stats("p0").expect("present").ejected_for, None, "p0 answered its probe: back at once");
    for _ in 0..4 {
        checker.run_cycle().await;
    }
    let p1 = pool.proxy_stats("p1").expect("present");
    assert!(p1.ejected_for.is_some(), "five failed probes in a row eject like five failed requests");
    assert_eq!(p1.success_rate, Some(0.0));
}

#[test]
fn config_is_validated() {
    let bad = |c: HealthCheckConfig| HealthChecker::new(pool(1), Recorder::default(), c).expect_err("invalid").field;
    assert_eq!(
        bad(HealthCheckConfig { test_urls: vec![], ..config(Duration::from_secs(1), 1) }),
        "health_check.test_urls"
    );
    assert_eq!(
        bad(HealthCheckConfig { test_urls: vec!["ftp://x/".into()], ..config(Duration::from_secs(1), 1) }),
        "health_check.test_urls"
    );
    assert_eq!(bad(config(Duration::ZERO, 1)), "health_check.interval");
    assert_eq!(bad(config(Duration::from_secs(1), 0)), "health_check.concurrency");
}

#[derive(Debug)]
struct Only(&'static str);

impl harvester_proxypool::Balancer for Only {
    fn name(&self) -> &'static str {
        "only"
    }

    fn pick(&self, c: &harvester_proxypool::balance::Candidates<'_>) -> Option<usize> {
        (0..c.len()).find(|&i| c.proxy(i).id().as_str() == self.0 && c.is_eligible(i))
    }
}

/// A prober that ignores the timeout it is given and never answers.
struct Stuck;

impl Prober for Stuck {
    fn probe(&self, _: Arc<Proxy>, _: String, _: Duration) -> BoxFuture<'static, ProbeResult> {
        Box::pin(std::future::pending())
    }
}

#[tokio::test(start_paused = true)]
async fn a_stuck_probe_is_cut_at_the_timeout_and_recorded_as_one() {
    let pool = pool(1);
    let checker = HealthChecker::new(pool.clone(), Stuck, config(Duration::from_secs(60), 1)).expect("valid");
    let started = Instant::now();
    let report = checker.run_cycle().await;
    assert_eq!((report.probed, report.healthy), (1, 0));
    assert_eq!(started.elapsed(), Duration::from_secs(1), "the configured probe timeout");
    assert_eq!(pool.proxy_stats("p0").expect("present").timeouts, 1);
}

#[tokio::test(start_paused = true)]
async fn shutdown_returns_even_with_a_probe_stuck() {
    let handle = HealthChecker::new(pool(1), Stuck, config(Duration::from_secs(60), 1)).expect("valid").spawn();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(handle.is_running());
    handle.shutdown().await;
}
