//! What an operator reads in the report of a real run: anomalies (a site that serves pages,
//! then answers 404 to everything, is a critical error-rate anomaly, and the steady part of
//! the run raises nothing) and costs (exact sums per kind, provider and site on a known
//! fleet, and the recommendation they lead to).

mod common;

use std::time::Duration;

use harvester_collect::input::Target;
use harvester_collect::report::Report;
use harvester_collect::run;
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
    let job = common::job(
        Box::new(List::new(targets)),
        pool,
        dir.path().join("out.jsonl"),
        common::settings(16, rate as u32, 1, Duration::from_secs(5)),
    );
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

/// A known fleet: three residential proxies at 0.001 a request and three datacenter ones at
/// 0.01, all good, picked in turn. The report's costs add up exactly, and say residential
/// proxies cost 10x less per success at the site.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_counts_costs_exactly_and_recommends_the_cheaper_kind() {
    use harvester_proxypool::ProxyKind;
    let site = TargetServer::start().await.expect("site starts");
    let mut servers = Vec::new();
    let pool = ProxyPool::builder().balancer(harvester_proxypool::balance::RoundRobin::new()).build().expect("valid");
    for (n, (kind, cost, provider)) in [
        (ProxyKind::Residential, 0.001, "homes"),
        (ProxyKind::Residential, 0.001, "homes"),
        (ProxyKind::Residential, 0.001, "homes"),
        (ProxyKind::Datacenter, 0.01, "racks"),
        (ProxyKind::Datacenter, 0.01, "racks"),
        (ProxyKind::Datacenter, 0.01, "racks"),
    ]
    .into_iter()
    .enumerate()
    {
        let server = FaultProxy::slow(Duration::ZERO).await.expect("proxy starts");
        let meta = ProxyMeta {
            id: Some(format!("p{n}")),
            kind: Some(kind),
            cost_per_request: cost,
            provider: Some(provider.into()),
            ..ProxyMeta::default()
        };
        pool.extend([Proxy::with_meta(&server.url(), meta).expect("valid proxy")]).expect("unique ids");
        servers.push(server);
    }
    let urls = 300;
    let targets: Vec<Target> =
        (0..urls).map(|n| Target::parse(&format!("{}/product/{n}", site.url())).expect("valid URL")).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let job = common::job(
        Box::new(List::new(targets)),
        pool,
        dir.path().join("out.jsonl"),
        common::settings(8, 100_000, 1, Duration::from_secs(5)),
    );
    let running = run::start(job).await.expect("job starts");
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let report = Report::new(&running.run(stop).await);
    let costs = &report.costs;
    assert_eq!(report.totals.ok, urls as u64);
    // One request per URL, every one a success: 150 at each price.
    assert_eq!((costs.total.requests, costs.total.successes), (urls as u64, urls as u64));
    let residential = &costs.by_kind["residential"];
    let datacenter = &costs.by_kind["datacenter"];
    assert_eq!(residential.requests + datacenter.requests, urls as u64);
    let expected = residential.requests as f64 * 0.001 + datacenter.requests as f64 * 0.01;
    assert!((costs.total.cost - expected).abs() < 1e-9, "{} vs {expected}", costs.total.cost);
    assert!((costs.by_provider["homes"].cost - residential.cost).abs() < 1e-9);
    let host = site.addr().ip().to_string();
    let at_site = &costs.by_site[&host];
    assert_eq!(at_site.ok_urls, urls as u64);
    assert!((at_site.cost_per_ok_url.expect("ok URLs") - expected / urls as f64).abs() < 1e-12);
    let advice = format!("for {host}, residential proxies cost 10.0x less per success than datacenter proxies");
    assert!(costs.recommendations.iter().any(|line| line.starts_with(&advice)), "{:?}", costs.recommendations);
    assert!(costs.recommendations.iter().any(|line| line.starts_with("across every site, homes cost 10.0x less")));
}
