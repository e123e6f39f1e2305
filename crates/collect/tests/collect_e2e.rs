//! The main job end to end: the `harvester-collect` job over a dirty fleet on
//! loopback (real tinyproxy and danted, and fault proxies that are dead, hanging, slow,
//! banning and flapping), against a local product site of a few thousand pages, at a
//! per-host rate that sets the pace and that the site must see respected.

mod common;
use common::lines_of;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harvester_collect::input::Target;
use harvester_collect::report::Report;
use harvester_collect::run;
use harvester_collect::stack::StackSettings;
use harvester_collect::work::List;
use harvester_proxypool::balance::PowerOfTwoChoices;
use harvester_proxypool::{Proxy, ProxyMeta, ProxyPool};
use harvester_testbed::support::{Dante, Tinyproxy};
use harvester_testbed::{FaultProxy, TargetServer};
use serde_json::Value;

const PAGES: usize = 2_000;
const MAX_ATTEMPTS: u32 = 5;
const TIMEOUT: Duration = Duration::from_secs(2);
const CONCURRENCY: usize = 48;
/// Requests per second to the site, with a burst as large (`Quota::per_second`): low enough
/// that the per-host limit, not the fleet, sets the pace of 2 000 pages.
const RATE: u32 = 150;
/// Hedges: at most this share of extra requests, after a burst of `CONCURRENCY` (see
/// `run::start`). They go out inside the client, below the rate limit.
const HEDGE_SHARE: f64 = 0.1;

fn proxy(id: &str, url: &str) -> Proxy {
    let meta = ProxyMeta { id: Some(id.into()), provider: Some("test".into()), ..ProxyMeta::default() };
    Proxy::with_meta(url, meta).expect("valid proxy URL")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dirty_fleet_collects_every_page_once_and_ends_with_the_bad_proxies_out() {
    let site = TargetServer::start().await.expect("site starts");
    let tinyproxy = Tinyproxy::start();
    let dante = Dante::start();
    let forward = FaultProxy::slow(Duration::ZERO).await.expect("forwarding proxy starts");
    let forward_2 = FaultProxy::slow(Duration::ZERO).await.expect("forwarding proxy starts");
    let wrong_password = Tinyproxy::start_with_auth("collector", "right-password");
    let bad_gateway = FaultProxy::answering(502, &[], "bad gateway").await.expect("502 proxy starts");
    let dead = FaultProxy::closed().await.expect("dead proxy starts");
    let hanging = FaultProxy::hanging().await.expect("hanging proxy starts");
    // Slow but within the timeout: it works, and the balancer should send it little.
    let slow = FaultProxy::slow(Duration::from_millis(1_500)).await.expect("slow proxy starts");
    let banning = FaultProxy::banning_403().await.expect("banning proxy starts");
    let captcha = FaultProxy::captcha().await.expect("captcha proxy starts");
    let flapping = Arc::new(FaultProxy::flapping().await.expect("flapping proxy starts"));
    let flipper = tokio::spawn({
        let flapping = flapping.clone();
        async move {
            for up in [false, true].into_iter().cycle() {
                flapping.set_up(up);
                tokio::time::sleep(Duration::from_millis(700)).await;
            }
        }
    });

    // A third of the fleet is good (4 of 12).
    let pool = ProxyPool::builder().balancer(PowerOfTwoChoices::new()).build().expect("valid");
    pool.extend([
        proxy("tinyproxy", &tinyproxy.url()),
        proxy("danted", &dante.url()),
        proxy("forward", &forward.url()),
        proxy("forward-2", &forward_2.url()),
        proxy("bad-creds", &wrong_password.url().replace("right-password", "wrong-password")),
        proxy("bad-gateway", &bad_gateway.url()),
        proxy("dead", &dead.url()),
        proxy("hanging", &hanging.url()),
        proxy("slow", &slow.url()),
        proxy("banning", &banning.url()),
        proxy("captcha", &captcha.url()),
        proxy("flapping", &flapping.url()),
    ])
    .expect("unique ids");
    let targets: Vec<Target> =
        (0..PAGES).map(|n| Target::parse(&format!("{}/product/{n}", site.url())).expect("valid URL")).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out.jsonl");
    let job = common::job(
        Box::new(List::new(targets.clone())),
        pool.clone(),
        out.clone(),
        StackSettings {
            hedge_share: HEDGE_SHARE,
            adaptive_timeout: true,
            ..common::settings(CONCURRENCY, RATE, MAX_ATTEMPTS, TIMEOUT)
        },
    );
    let started = Instant::now();
    let running = run::start(job).await.expect("job starts");
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let outcome = running.run(stop).await;
    let elapsed = started.elapsed().as_secs_f64();
    let report = Report::new(&outcome);
    flipper.abort();

    // Every URL exactly once.
    let lines = lines_of(&out);
    let urls: Vec<&str> = lines.iter().map(|line| line["url"].as_str().expect("url")).collect();
    let distinct: HashSet<&str> = urls.iter().copied().collect();
    assert_eq!(urls.len(), PAGES, "one line per URL");
    assert_eq!(distinct, targets.iter().map(|t| &*t.url).collect::<HashSet<_>>());

    // While good proxies exist, at least 99 % succeed, and ok means a real page.
    let ok: Vec<&Value> = lines.iter().filter(|line| line["status"] == "ok").collect();
    assert!(ok.len() * 100 >= PAGES * 99, "only {} of {PAGES} ok: {:?}", ok.len(), report.totals.failure_reasons);
    for line in &ok {
        assert_eq!(line["http_status"], 200);
        let record = &line["record"]["data"];
        assert!(record["product_title"].as_str().is_some_and(|t| t.starts_with("Product")), "{line}");
        assert!(record["current_price"]["amount"].as_f64().is_some(), "price normalised: {line}");
        let good = ["tinyproxy", "danted", "forward", "forward-2", "slow"];
        assert!(good.contains(&line["proxy"].as_str().unwrap_or_default()), "{line}");
    }
    for line in lines.iter().filter(|line| line["status"] == "failed") {
        assert!(line["error"].as_str().is_some_and(|e| !e.is_empty()), "a failure says why: {line}");
    }

    // Attempts: never more than allowed per URL, and retries within the budget's reach
    // (half a retry per call, 20 a second, over the run).
    let attempts: u64 = lines.iter().map(|line| line["attempts"].as_u64().expect("attempts")).sum();
    assert!(lines.iter().all(|line| line["attempts"].as_u64() <= Some(u64::from(MAX_ATTEMPTS))));
    let retries = attempts.saturating_sub(PAGES as u64);
    let budget = PAGES as f64 * 0.5 + 20.0 * (report.elapsed_secs + 10.0);
    assert!((retries as f64) <= budget, "{retries} retries exceed the budget's {budget}");

    // The bad proxies end ejected or banned (the flapping one at least was); the good ones
    // are not ejected now.
    let stats: BTreeMap<String, _> = report.proxies.proxies.iter().map(|p| (p.id.as_str().to_owned(), p)).collect();
    for bad in ["dead", "hanging", "banning", "captcha", "bad-creds", "bad-gateway"] {
        let proxy = stats[bad];
        assert!(proxy.ejected_for.is_some() || !proxy.bans_active.is_empty(), "{bad} is still in use: {proxy:?}");
    }
    assert!(stats["flapping"].times_ejected > 0, "{:?}", stats["flapping"]);
    for good in ["tinyproxy", "danted", "forward", "forward-2"] {
        assert!(stats[good].ejected_for.is_none(), "{good} ejected: {:?}", stats[good]);
    }

    // The site saw no more than the per-host rate allows. Every request it answered went
    // through the limit (an attempt) or was a hedge, and hedges are at most CONCURRENCY plus
    // HEDGE_SHARE of the attempts; so at least (answered - CONCURRENCY) / (1 + HEDGE_SHARE)
    // attempts passed the limit, and GCRA lets through at most RATE (the burst) plus RATE a
    // second: the run cannot have ended sooner than that takes. A lower bound only, which a
    // slow machine cannot break.
    let answered = site.requests_served() as f64;
    let attempts_at_least = (answered - CONCURRENCY as f64) / (1.0 + HEDGE_SHARE);
    let fastest = (attempts_at_least - f64::from(RATE)) / f64::from(RATE);
    assert!(
        elapsed >= fastest,
        "the site answered {answered} requests in {elapsed:.1} s: faster than {RATE}/s allows ({fastest:.1} s)"
    );
    // The same from the attempts counted on this side, every one of which waited its turn.
    let fastest = (attempts as f64 - f64::from(RATE)) / f64::from(RATE);
    assert!(elapsed >= fastest, "{attempts} attempts in {elapsed:.1} s: faster than {RATE}/s allows ({fastest:.1} s)");

    // The report agrees with the file.
    assert!(!report.interrupted);
    assert_eq!(report.totals.ok, ok.len() as u64);
    assert_eq!(report.totals.failed, (PAGES - ok.len()) as u64);
    assert_eq!(report.totals.attempts, attempts);
    assert_eq!(report.pipeline.received, PAGES as u64);
    assert_eq!(report.pipeline.output + report.pipeline.dead_lettered, PAGES as u64);
    assert!(report.scaler_rounds > 0, "the scaler watched the pipeline's stages");
    assert!(report.pipeline.stages.iter().all(|stage| stage.received == PAGES as u64));
    let json = serde_json::to_string(&report).expect("report serialises");
    for secret in ["right-password", "wrong-password", "collector:"] {
        assert!(!json.contains(secret), "no credentials in the report");
        assert!(!std::fs::read_to_string(&out).expect("out").contains(secret), "no credentials in the output");
    }
}
