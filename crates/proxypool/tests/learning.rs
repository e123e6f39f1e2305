//! What the pool learns from reports and how the default balancer uses it: evidence per
//! proxy and site that fades instead of being wiped, a site's attitude to each kind of
//! proxy, probation, overdue requests, rate tolerance, cost, and reproducible picks.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harvester_proxypool::balance::{Balancer, Candidates, ExpectedSuccess, Objective, PowerOfTwoChoices};
use harvester_proxypool::{Lease, Outcome, Proxy, ProxyKind, ProxyMeta, ProxyPool, RequestContext, Requirements};

const MS: Duration = Duration::from_millis(1);
const SHOP: &str = "shop.example";

fn proxy(id: &str, kind: Option<ProxyKind>, cost: f64) -> Proxy {
    let meta = ProxyMeta { id: Some(id.into()), kind, cost_per_request: cost, ..ProxyMeta::default() };
    Proxy::with_meta(&format!("http://10.0.0.{}:3128", id.len()), meta).expect("valid proxy")
}

fn pool_with(balancer: impl Balancer, proxies: Vec<Proxy>) -> ProxyPool {
    let pool = ProxyPool::builder().balancer(balancer).seed(7).build().expect("valid config");
    pool.extend(proxies).expect("unique ids");
    pool
}

fn at(host: &str) -> RequestContext {
    RequestContext::new().target_host(host)
}

/// Leases `id` for `host` through a balancer that takes only that id.
fn lease_of(pool: &ProxyPool, id: &str, host: &str) -> Lease {
    pool.acquire_with(&Requirements::ANY, &at(host), &Only(id.to_owned())).expect("the proxy is eligible")
}

fn report(pool: &ProxyPool, id: &str, host: &str, outcome: Outcome, times: usize) {
    for _ in 0..times {
        lease_of(pool, id, host).report(outcome);
    }
}

fn picks(pool: &ProxyPool, host: &str, n: usize) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for _ in 0..n {
        let lease = pool.acquire(&Requirements::ANY, &at(host)).expect("a proxy");
        *counts.entry(lease.id().to_string()).or_default() += 1;
    }
    counts
}

/// What the pool expects of each proxy at `host`, read through a balancer.
fn estimates(pool: &ProxyPool, host: &str) -> BTreeMap<String, f64> {
    let probe = Probe::default();
    let _ = pool.acquire_with(&Requirements::ANY, &at(host), &probe);
    probe.seen.lock().expect("not poisoned").clone()
}

#[derive(Debug)]
struct Only(String);

impl Balancer for Only {
    fn name(&self) -> &'static str {
        "only"
    }

    fn pick(&self, c: &Candidates<'_>) -> Option<usize> {
        (0..c.len()).find(|&i| c.proxy(i).id().as_str() == self.0 && c.is_eligible(i))
    }
}

/// Records every eligible candidate's expected success, then declines.
#[derive(Debug, Default)]
struct Probe {
    seen: Mutex<BTreeMap<String, f64>>,
}

impl Balancer for Probe {
    fn name(&self) -> &'static str {
        "probe"
    }

    fn pick(&self, c: &Candidates<'_>) -> Option<usize> {
        let mut seen = self.seen.lock().expect("not poisoned");
        for i in (0..c.len()).filter(|&i| c.is_eligible(i)) {
            seen.insert(c.proxy(i).id().to_string(), c.success_estimate(i).expected);
        }
        None
    }
}

#[tokio::test(start_paused = true)]
async fn a_dead_proxy_back_from_its_ejection_is_still_avoided() {
    for balancer in [Box::new(ExpectedSuccess::new()) as Box<dyn Balancer>, Box::new(PowerOfTwoChoices::new())] {
        let name = balancer.name();
        let pool = pool_with(balancer, vec![proxy("dead", None, 0.0), proxy("live", None, 0.0)]);
        report(&pool, "live", SHOP, Outcome::success(200 * MS), 10);
        report(&pool, "dead", SHOP, Outcome::network_failure(5 * MS), 5);
        assert!(pool.proxy_stats("dead").expect("known").ejected_for.is_some(), "{name}: five failures eject");
        // The ejection (30 s) ends, and a minute later its failures have not faded into "fast".
        tokio::time::advance(Duration::from_secs(90)).await;
        assert!(pool.proxy_stats("dead").expect("known").ejected_for.is_none());
        let counts = picks(&pool, SHOP, 100);
        assert!(counts.get("dead").copied().unwrap_or(0) <= 10, "{name}: {counts:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn evidence_fades_with_time_instead_of_being_wiped() {
    let pool = pool_with(ExpectedSuccess::new(), vec![proxy("a", None, 0.0), proxy("b", None, 0.0)]);
    report(&pool, "a", SHOP, Outcome::success(100 * MS), 5);
    report(&pool, "b", SHOP, Outcome::success(100 * MS), 5);
    // Four failures: one short of an ejection, so that it stays a candidate to look at.
    report(&pool, "a", SHOP, Outcome::network_failure(MS), 4);
    let soon = estimates(&pool, SHOP);
    tokio::time::advance(Duration::from_secs(300)).await;
    let later = estimates(&pool, SHOP);
    assert!(later["a"] < 0.8 * later["b"], "five minutes on, the failures still count: {later:?}");
    assert!(later["a"] / later["b"] > soon["a"] / soon["b"], "but less than at first: {soon:?} then {later:?}");
    tokio::time::advance(Duration::from_secs(6 * 3600)).await;
    let much_later = estimates(&pool, SHOP);
    assert!((much_later["a"] - much_later["b"]).abs() < 0.05, "hours on, both are back to the prior: {much_later:?}");
}

#[test]
fn a_ban_counts_against_the_proxy_at_that_host_and_far_less_elsewhere() {
    let pool = pool_with(ExpectedSuccess::new(), vec![proxy("a", None, 0.0), proxy("b", None, 0.0)]);
    for host in [SHOP, "news.example"] {
        report(&pool, "a", host, Outcome::success(100 * MS), 10);
        report(&pool, "b", host, Outcome::success(100 * MS), 10);
    }
    // Banned by the shop for an instant (Retry-After: 0), so that it stays a candidate.
    report(&pool, "a", SHOP, Outcome::ban(100 * MS, Some(Duration::ZERO)), 4);
    let shop = estimates(&pool, SHOP);
    let news = estimates(&pool, "news.example");
    assert!(shop["a"] < 0.8 * shop["b"], "at the shop: {shop:?}");
    assert!(news["a"] > 0.9 * news["b"], "elsewhere it stands nearly as before: {news:?}");
}

#[test]
fn a_site_that_bans_a_kind_is_expected_to_ban_the_next_proxy_of_that_kind() {
    use ProxyKind::{Datacenter, Residential};
    let proxies = vec![
        proxy("dc1", Some(Datacenter), 0.0),
        proxy("dc2", Some(Datacenter), 0.0),
        proxy("dc-new", Some(Datacenter), 0.0),
        proxy("res1", Some(Residential), 0.0),
        proxy("res-new", Some(Residential), 0.0),
    ];
    let pool = pool_with(ExpectedSuccess::new(), proxies);
    for id in ["dc1", "dc2"] {
        report(&pool, id, SHOP, Outcome::ban(100 * MS, Some(Duration::ZERO)), 5);
        report(&pool, id, "news.example", Outcome::success(100 * MS), 5);
    }
    report(&pool, "res1", SHOP, Outcome::success(100 * MS), 10);
    let shop = estimates(&pool, SHOP);
    assert!(shop["dc-new"] < 0.6 * shop["res-new"], "never tried at the shop, judged by its kind there: {shop:?}");
    let news = estimates(&pool, "news.example");
    assert!(news["dc-new"] > 0.9 * news["res-new"], "and not elsewhere: {news:?}");
    assert!(
        news["dc1"] >= news["res-new"] * 0.95,
        "a datacenter proxy banned only where its kind is banned keeps its standing: {news:?}"
    );
}

#[test]
fn a_proxy_banned_where_its_kind_is_welcome_is_expected_to_be_banned_elsewhere() {
    let pool = pool_with(ExpectedSuccess::new(), (0..4).map(|i| proxy(&format!("p{i}"), None, 0.0)).collect());
    for host in ["a.example", "b.example", "c.example"] {
        for id in ["p1", "p2", "p3"] {
            report(&pool, id, host, Outcome::success(100 * MS), 5);
        }
        report(&pool, "p0", host, Outcome::ban(100 * MS, Some(Duration::ZERO)), 3);
    }
    let new_site = estimates(&pool, "d.example");
    assert!(new_site["p0"] < 0.6 * new_site["p1"], "{new_site:?}");
}

#[test]
fn an_unproven_proxy_gets_one_request_at_a_time_until_its_first_success() {
    let pool = pool_with(ExpectedSuccess::new(), vec![proxy("new", None, 0.0), proxy("proven", None, 0.0)]);
    report(&pool, "proven", SHOP, Outcome::success(100 * MS), 3);
    let first = lease_of(&pool, "new", SHOP);
    let held: Vec<Lease> = (0..20).map(|_| pool.acquire(&Requirements::ANY, &at(SHOP)).expect("a proxy")).collect();
    assert!(held.iter().all(|l| l.id().as_str() == "proven"), "the new proxy waits for its first answer");
    first.report(Outcome::success(100 * MS));
    let counts = picks(&pool, SHOP, 200);
    assert!(counts.get("new").copied().unwrap_or(0) > 20, "proven now, it takes its share: {counts:?}");
    drop(held);

    let alone = pool_with(ExpectedSuccess::new(), vec![proxy("new", None, 0.0)]);
    let _first = lease_of(&alone, "new", SHOP);
    assert!(alone.acquire(&Requirements::ANY, &at(SHOP)).is_ok(), "probation never leaves a request without a proxy");
}

#[tokio::test(start_paused = true)]
async fn a_request_overdue_far_beyond_the_sites_latency_makes_its_proxy_suspect() {
    let pool = pool_with(ExpectedSuccess::new(), vec![proxy("a", None, 0.0), proxy("b", None, 0.0)]);
    for id in ["a", "b"] {
        report(&pool, id, SHOP, Outcome::success(100 * MS), 20);
    }
    let hanging = lease_of(&pool, "a", SHOP);
    tokio::time::advance(Duration::from_millis(200)).await;
    let early = estimates(&pool, SHOP);
    assert!((early["a"] - early["b"]).abs() < 0.05, "still within the site's latency: {early:?}");
    tokio::time::advance(Duration::from_secs(5)).await;
    let overdue = estimates(&pool, SHOP);
    assert!(overdue["a"] < 0.5 * overdue["b"], "50 times the site's p99 and counting: {overdue:?}");
    hanging.report(Outcome::success(100 * MS));
    let answered = estimates(&pool, SHOP);
    assert!((answered["a"] - answered["b"]).abs() < 0.05, "an answer clears the suspicion: {answered:?}");
}

#[tokio::test(start_paused = true)]
async fn slow_proxies_answering_a_third_of_a_sites_requests_do_not_set_its_tail_thresholds() {
    // What the client hedges by; the true quantiles (which its timeout follows) stay as they are.
    let pool = pool_with(
        ExpectedSuccess::new(),
        vec![proxy("a", None, 0.0), proxy("b", None, 0.0), proxy("slow", None, 0.0), proxy("c", None, 0.0)],
    );
    for id in ["a", "b"] {
        report(&pool, id, SHOP, Outcome::success(100 * MS), 40);
    }
    report(&pool, "slow", SHOP, Outcome::success(Duration::from_secs(5)), 40);
    report(&pool, "c", SHOP, Outcome::success(100 * MS), 1);
    let true_p99 = pool.latency_quantile(SHOP, 0.99).expect("121 samples");
    assert!(true_p99 >= Duration::from_secs(5), "the quantile itself is the slow proxy's: {true_p99:?}");
    let median = pool.latency_quantile(SHOP, 0.5).expect("121 samples");
    for q in [0.95, 0.99] {
        let tail = pool.tail_latency(SHOP, q).expect("121 samples");
        assert!(tail <= median * 8, "{q}: {tail:?} is at most 8 × the median {median:?}");
    }
}

#[test]
fn a_sites_rate_tolerance_is_learned_from_a_429_and_kept_under() {
    let ids: Vec<String> = (0..4).map(|i| format!("p{i}")).collect();
    let pool = pool_with(ExpectedSuccess::new(), ids.iter().map(|id| proxy(id, None, 0.0)).collect());
    for id in &ids {
        report(&pool, id, SHOP, Outcome::success(100 * MS), 1);
    }
    let before = estimates(&pool, SHOP);
    // p0 sends five more and is told to slow down: the site tolerates about six requests
    // per proxy over the rate window.
    report(&pool, "p0", SHOP, Outcome::success(100 * MS), 5);
    report(&pool, "p0", SHOP, Outcome::rate_limited(100 * MS, Some(Duration::ZERO)), 1);
    // p1 has sent six by now, as many as p0 when it was stopped; p2 and p3 one each.
    report(&pool, "p1", SHOP, Outcome::success(100 * MS), 5);
    let after = estimates(&pool, SHOP);
    assert!(after["p1"] < 0.5 * after["p2"], "at the tolerance: {after:?}");
    assert!((after["p2"] - after["p3"]).abs() < 0.01, "far below it, no discount: {after:?}");
    assert!(before["p1"] > 0.9 * before["p2"], "before the 429 nothing was discounted: {before:?}");
    let elsewhere = estimates(&pool, "news.example");
    assert!((elsewhere["p1"] - elsewhere["p2"]).abs() < 0.05, "the tolerance is the shop's: {elsewhere:?}");
}

#[test]
fn a_429_to_a_proxy_the_site_never_accepted_is_an_address_ban_not_a_rate() {
    // The same history twice, once with p0 refused by 429s, once by 403s: neither teaches
    // a rate, so p1, six requests in, is judged alike.
    let judge = |refusal: Outcome| {
        let pool = pool_with(ExpectedSuccess::new(), (0..3).map(|i| proxy(&format!("p{i}"), None, 0.0)).collect());
        report(&pool, "p0", SHOP, refusal, 3);
        report(&pool, "p1", SHOP, Outcome::success(100 * MS), 6);
        report(&pool, "p2", SHOP, Outcome::success(100 * MS), 6);
        estimates(&pool, SHOP)
    };
    let by_429 = judge(Outcome::rate_limited(100 * MS, Some(Duration::ZERO)));
    let by_403 = judge(Outcome::ban(100 * MS, Some(Duration::ZERO)));
    assert!((by_429["p1"] - by_403["p1"]).abs() < 1e-6, "{by_429:?} {by_403:?}");
    assert!(by_429["p0"] < 0.6 * by_429["p1"], "and p0 is judged as banned: {by_429:?}");
}

#[test]
fn success_then_cost_takes_the_cheaper_of_equally_good_proxies() {
    let proxies = vec![proxy("dear", None, 0.01), proxy("cheap", None, 0.001)];
    let pool = pool_with(ExpectedSuccess::new(), proxies);
    for id in ["dear", "cheap"] {
        report(&pool, id, SHOP, Outcome::success(100 * MS), 30);
    }
    let counts = picks(&pool, SHOP, 100);
    assert!(counts.get("cheap").copied().unwrap_or(0) >= 90, "{counts:?}");

    // But never at the price of success: the dear one succeeds, the cheap one mostly not.
    let proxies = vec![proxy("dear", None, 0.01), proxy("cheap", None, 0.001)];
    let pool = pool_with(ExpectedSuccess::new(), proxies);
    report(&pool, "dear", SHOP, Outcome::success(100 * MS), 30);
    report(&pool, "cheap", SHOP, Outcome::success(100 * MS), 10);
    report(&pool, "cheap", SHOP, Outcome::ban(100 * MS, Some(Duration::ZERO)), 20);
    let counts = picks(&pool, SHOP, 100);
    assert!(counts.get("dear").copied().unwrap_or(0) >= 90, "{counts:?}");
}

#[test]
fn cost_per_success_takes_a_cheap_proxy_that_succeeds_half_the_time() {
    let proxies = vec![proxy("dear", None, 0.01), proxy("cheap", None, 0.001)];
    let pool = pool_with(ExpectedSuccess::new().objective(Objective::CostPerSuccess), proxies);
    report(&pool, "dear", SHOP, Outcome::success(100 * MS), 30);
    report(&pool, "cheap", SHOP, Outcome::success(100 * MS), 15);
    report(&pool, "cheap", SHOP, Outcome::ban(100 * MS, Some(Duration::ZERO)), 15);
    let counts = picks(&pool, SHOP, 100);
    // Thompson sampling still tries the dear one now and then, when its draw is the best.
    assert!(counts.get("cheap").copied().unwrap_or(0) >= 75, "{counts:?}");
}

#[test]
fn equally_good_proxies_share_the_load() {
    let ids: Vec<String> = (0..10).map(|i| format!("p{i}")).collect();
    let pool = pool_with(ExpectedSuccess::new(), ids.iter().map(|id| proxy(id, None, 0.0)).collect());
    for id in &ids {
        report(&pool, id, SHOP, Outcome::success(100 * MS), 20);
    }
    let counts = picks(&pool, SHOP, 1000);
    assert_eq!(counts.len(), 10, "{counts:?}");
    assert!(counts.values().all(|&n| (40..=200).contains(&n)), "no herding onto one: {counts:?}");
}

#[test]
fn in_a_large_pool_the_few_good_proxies_are_found_and_kept() {
    let n = 5_000;
    let proxies: Vec<Proxy> = (0..n)
        .map(|i| {
            let meta = ProxyMeta { id: Some(format!("p{i:05}")), ..ProxyMeta::default() };
            Proxy::with_meta(&format!("http://10.{}.{}.{}:3128", i >> 16, (i >> 8) & 255, i & 255), meta)
                .expect("valid proxy")
        })
        .collect();
    let pool = pool_with(ExpectedSuccess::new(), proxies);
    let good = |id: &str| id.ends_with("00");
    // The pool learns as it goes: every pick is reported, good proxies succeed at the
    // shop, the others are banned there (for an instant, so they stay candidates).
    let mut good_picks = 0;
    for round in 0..4_000 {
        let lease = pool.acquire(&Requirements::ANY, &at(SHOP)).expect("a proxy");
        let ok = good(lease.id().as_str());
        if round >= 3_000 {
            good_picks += usize::from(ok);
        }
        lease.report(if ok { Outcome::success(100 * MS) } else { Outcome::ban(100 * MS, Some(Duration::ZERO)) });
    }
    assert!(good_picks >= 900, "1 % of the pool is good; after learning, {good_picks} of 1000 picks went to it");
}

#[test]
fn seeded_pools_repeat_their_picks() {
    let run = |seed: u64| {
        let pool = ProxyPool::builder().seed(seed).build().expect("valid config");
        pool.extend((0..50).map(|i| proxy(&format!("p{i:02}"), None, 0.0))).expect("unique ids");
        (0..200)
            .map(|i| {
                let lease = pool.acquire(&Requirements::ANY, &at(SHOP)).expect("a proxy");
                let id = lease.id().to_string();
                lease.report(if i % 3 == 0 { Outcome::ban(MS, Some(Duration::ZERO)) } else { Outcome::success(MS) });
                id
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

#[tokio::test(start_paused = true)]
async fn the_pool_reports_each_sites_latency_quantiles() {
    let pool = pool_with(ExpectedSuccess::new(), vec![proxy("a", None, 0.0)]);
    assert_eq!(pool.latency(Some(SHOP)), None, "nothing yet");
    for ms in 1..=100 {
        report(&pool, "a", SHOP, Outcome::success(ms * MS), 1);
    }
    report(&pool, "a", "news.example", Outcome::success(Duration::from_secs(3)), 19);
    let shop = pool.latency(Some(SHOP)).expect("100 samples");
    assert!(shop.p50 >= 50 * MS && shop.p50 <= 60 * MS, "{shop:?}");
    assert!(shop.p99 >= 99 * MS && shop.p99 <= 120 * MS, "{shop:?}");
    assert_eq!(pool.latency(Some("news.example")), None, "19 samples are too few");
    assert!(pool.latency_quantile("news.example", 0.5).expect("falls back to every site") < Duration::from_secs(1));
    assert!(pool.latency(None).expect("every site").p99 >= Duration::from_secs(3));
}

#[test]
fn what_a_balancer_sees_is_shared_through_arcs_too() {
    // Candidates' estimates work with a balancer behind an Arc (as ProxyClient's policies hold them).
    let pool = pool_with(Arc::new(ExpectedSuccess::new()), vec![proxy("a", None, 0.0)]);
    assert!(pool.acquire(&Requirements::ANY, &at(SHOP)).is_ok());
}

/// Every request is accounted at its site and kind, with its proxy's cost: successes and
/// failures alike, and the sum per site equals the per-proxy requests times their cost.
#[test]
fn every_request_is_accounted_by_site_and_kind_with_its_cost() {
    let pool = pool_with(
        ExpectedSuccess::new(),
        vec![
            proxy("res", Some(ProxyKind::Residential), 0.004),
            proxy("dc", Some(ProxyKind::Datacenter), 0.0005),
            proxy("none", None, 0.0),
        ],
    );
    let plan: [(&str, &str, bool, usize); 5] = [
        ("res", "shop.example", true, 30),
        ("res", "shop.example", false, 2),
        ("dc", "shop.example", false, 20),
        ("dc", "news.example", true, 7),
        ("none", "news.example", true, 5),
    ];
    for (id, host, ok, times) in plan {
        let outcome = if ok { Outcome::success(MS) } else { Outcome::ban(MS, Some(Duration::ZERO)) };
        report(&pool, id, host, outcome, times);
    }
    let mut rows: Vec<(String, Option<ProxyKind>, u64, u64, f64)> = pool
        .site_spending()
        .into_iter()
        .map(|row| (row.host, row.kind, row.requests, row.successes, (row.cost * 1e6).round() / 1e6))
        .collect();
    rows.sort_by(|a, b| (&a.0, a.1.map(|k| k as u8)).cmp(&(&b.0, b.1.map(|k| k as u8))));
    assert_eq!(
        rows,
        vec![
            ("news.example".to_owned(), None, 5, 5, 0.0),
            ("news.example".to_owned(), Some(ProxyKind::Datacenter), 7, 7, 0.0035),
            ("shop.example".to_owned(), Some(ProxyKind::Residential), 32, 30, 0.128),
            ("shop.example".to_owned(), Some(ProxyKind::Datacenter), 20, 0, 0.01),
        ]
    );
}
