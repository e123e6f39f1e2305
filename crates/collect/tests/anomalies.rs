//! The anomaly detector over a real run: a site that serves pages, then starts answering
//! 404 to everything, shows up in the report as a critical error-rate anomaly, and the
//! steady part of the run raises nothing.

use std::time::Duration;

use harvester_collect::input::Target;
use harvester_collect::report::Report;
use harvester_collect::run::{self, Job};
use harvester_collect::stack::StackSettings;
use harvester_collect::work::List;
use harvester_proxypool::{Proxy, ProxyMeta, ProxyPool};
use harvester_scaler::anomaly::{Severity, Signal};
use harvester_testbed::{FaultProxy, TargetServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_that_starts_failing_is_a_critical_error_rate_anomaly_in_the_report() {
    let site = TargetServer::start().await.expect("site starts");
    let proxy = FaultProxy::slow(Duration::ZERO).await.expect("proxy starts");
    let pool = ProxyPool::builder().build().expect("valid");
    let meta = ProxyMeta { id: Some("only".into()), ..ProxyMeta::default() };
    pool.extend([Proxy::with_meta(&proxy.url(), meta).expect("valid proxy")]).expect("unique ids");
    // Eight seconds of pages at 200 a second (the detector judges after five), then the
    // site answers 404 to everything for three.
    let rate = 200;
    let good = (0..8 * rate).map(|n| format!("{}/product/{n}", site.url()));
    let gone = (0..3 * rate).map(|n| format!("{}/gone/{n}", site.url()));
    let targets: Vec<Target> = good.chain(gone).map(|url| Target::parse(&url).expect("valid URL")).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let job = Job {
        work: Box::new(List::new(targets)),
        pool,
        stack: StackSettings {
            concurrency: 16,
            rate_per_host: rate as u32,
            max_attempts: 1,
            attempt_timeout: Duration::from_secs(5),
            hedge_share: 0.0,
            adaptive_timeout: false,
            #[cfg(feature = "redis")]
            redis: None,
        },
        stage_workers: 1,
        scaling: run::Scaling::default(),
        out: dir.path().join("out.jsonl"),
        extra_root_pem: None,
    };
    let running = run::start(job).await.expect("job starts");
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let outcome = running.run(stop).await;
    let report = Report::new(&outcome);
    assert_eq!(report.totals.failed, 3 * rate as u64, "{:?}", report.totals.failure_reasons);

    let error_rate: Vec<_> = report.anomalies.iter().filter(|event| event.signal == Signal::ErrorRate).collect();
    let first = error_rate.first().unwrap_or_else(|| panic!("no error-rate anomaly: {:?}", report.anomalies));
    assert_eq!(first.previous, Severity::Normal);
    assert!(error_rate.iter().any(|event| event.severity == Severity::Critical), "{error_rate:?}");
    assert!(first.value >= 0.5 && first.baseline < 0.05, "{first:?}");
    // While pages came back, nothing was raised: the first event is the failures'.
    let raised_early: Vec<_> = report
        .anomalies
        .iter()
        .filter(|event| event.severity > Severity::Normal && event.sample < first.sample.saturating_sub(4))
        .filter(|event| event.signal == Signal::ErrorRate || event.signal == Signal::Latency)
        .collect();
    assert!(raised_early.is_empty(), "raised before the site failed: {raised_early:?}");
}
