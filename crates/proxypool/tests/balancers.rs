//! Each balancer's distribution property, observed through the public pool API.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use harvester_proxypool::balance::{
    AdaptiveQuality, Failover, LeastConnections, LeastLatency, PowerOfTwoChoices, RoundRobin, SmoothWeightedRoundRobin,
    Sticky,
};
use harvester_proxypool::{
    Balancer, EjectionConfig, Lease, Outcome, PoolConfig, Proxy, ProxyId, ProxyMeta, ProxyPool, RequestContext,
    Requirements,
};
use proptest::prelude::*;

fn proxy(id: &str, meta: ProxyMeta) -> Proxy {
    Proxy::with_meta("http://127.0.0.1:9", ProxyMeta { id: Some(id.into()), ..meta }).expect("valid proxy")
}

fn pool_of(balancer: impl Balancer, ids: &[&str]) -> ProxyPool {
    let pool = ProxyPool::builder().balancer(balancer).build().expect("valid config");
    pool.extend(ids.iter().map(|id| proxy(id, ProxyMeta::default()))).expect("unique ids");
    pool
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("p{i:03}")).collect()
}

fn pick(pool: &ProxyPool, request: &RequestContext) -> String {
    pool.acquire(&Requirements::ANY, request).expect("a proxy").id().to_string()
}

/// Leases `id` by asking for it through a balancer that only takes that id.
fn lease_of(pool: &ProxyPool, id: &str) -> Lease {
    pool.acquire_with(&Requirements::ANY, &RequestContext::new(), &Only(id.to_owned())).expect("the proxy is eligible")
}

fn report_latency(pool: &ProxyPool, id: &str, latency: Duration, times: usize) {
    for _ in 0..times {
        lease_of(pool, id).report(Outcome::success(latency));
    }
}

#[test]
fn round_robin_visits_every_proxy_once_per_cycle_and_skips_busy_ones() {
    let pool = pool_of(RoundRobin::new(), &["a", "b", "c"]);
    let cycle: Vec<String> = (0..6).map(|_| pick(&pool, &RequestContext::new())).collect();
    assert_eq!(cycle, ["a", "b", "c", "a", "b", "c"]);
    pool.upsert(proxy("b", ProxyMeta { max_sessions: Some(1), ..Default::default() }));
    let _held = lease_of(&pool, "b");
    let picks: Vec<String> = (0..6).map(|_| pick(&pool, &RequestContext::new())).collect();
    assert_eq!(picks, ["a", "c", "a", "c", "a", "c"], "b is full; a and c still take equal turns");
}

#[test]
fn round_robin_keeps_turns_even_when_most_of_the_pool_is_filtered_out() {
    let pool = ProxyPool::builder().balancer(RoundRobin::new()).build().expect("valid config");
    for i in 0..10 {
        let cost_per_request = if i < 2 { 0.001 } else { 0.1 };
        pool.add(proxy(&format!("p{i}"), ProxyMeta { cost_per_request, ..Default::default() })).expect("unique");
    }
    // A cost filter has no index: the candidates are the whole pool, 8 of 10 ineligible.
    let cheap = Requirements::new().max_cost(0.01);
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..100 {
        *counts.entry(pool.acquire(&cheap, &RequestContext::new()).expect("a proxy").id().to_string()).or_default() +=
            1;
    }
    assert_eq!(counts, BTreeMap::from([("p0".to_owned(), 50), ("p1".to_owned(), 50)]));
}

#[test]
fn smooth_weighted_round_robin_interleaves_like_nginx() {
    let pool = ProxyPool::builder().balancer(SmoothWeightedRoundRobin::new()).build().expect("valid config");
    for (id, weight) in [("a", 5), ("b", 1), ("c", 1)] {
        pool.add(proxy(id, ProxyMeta { weight, ..Default::default() })).expect("unique");
    }
    let sequence: Vec<String> = (0..7).map(|_| pick(&pool, &RequestContext::new())).collect();
    assert_eq!(sequence, ["a", "a", "b", "a", "c", "a", "a"], "nginx's documented smooth sequence for 5:1:1");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn smooth_weighted_round_robin_hits_exact_proportions_every_cycle(weights in prop::collection::vec(1u32..20, 1..12)) {
        let pool = ProxyPool::builder().balancer(SmoothWeightedRoundRobin::new()).build().expect("valid config");
        for (i, &weight) in weights.iter().enumerate() {
            pool.add(proxy(&format!("p{i}"), ProxyMeta { weight, ..Default::default() })).expect("unique");
        }
        let total: u32 = weights.iter().sum();
        for _cycle in 0..3 {
            let mut counts: HashMap<String, u32> = HashMap::new();
            for _ in 0..total {
                *counts.entry(pick(&pool, &RequestContext::new())).or_default() += 1;
            }
            for (i, &weight) in weights.iter().enumerate() {
                prop_assert_eq!(counts.get(&format!("p{i}")).copied().unwrap_or(0), weight);
            }
        }
    }

    #[test]
    fn least_connections_never_picks_a_busier_proxy(holds in prop::collection::vec(0usize..5, 2..10)) {
        let names = ids(holds.len());
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let pool = pool_of(LeastConnections::new(), &names);
        let _held: Vec<Lease> = holds.iter().enumerate()
            .flat_map(|(i, &n)| (0..n).map(move |_| i))
            .map(|i| lease_of(&pool, names[i]))
            .collect();
        let fewest = *holds.iter().min().expect("non-empty");
        for _ in 0..10 {
            let lease = pool.acquire(&Requirements::ANY, &RequestContext::new()).expect("a proxy");
            let index = names.iter().position(|n| *n == lease.id().as_str()).expect("known id");
            prop_assert_eq!(holds[index], fewest);
        }
    }
}

#[test]
fn least_connections_spreads_ties() {
    let pool = pool_of(LeastConnections::new(), &["a", "b", "c", "d"]);
    let picked: std::collections::BTreeSet<String> = (0..200).map(|_| pick(&pool, &RequestContext::new())).collect();
    assert_eq!(picked.len(), 4, "idle proxies tie; the random scan start must rotate them");
}

#[test]
fn least_latency_tries_unmeasured_proxies_then_takes_the_fastest() {
    let pool = pool_of(LeastLatency::new(), &["slow", "fast", "new"]);
    report_latency(&pool, "slow", Duration::from_millis(900), 3);
    report_latency(&pool, "fast", Duration::from_millis(100), 3);
    assert_eq!(pick(&pool, &RequestContext::new()), "new", "a proxy without a sample is tried first");
    report_latency(&pool, "new", Duration::from_millis(500), 3);
    for _ in 0..20 {
        assert_eq!(pick(&pool, &RequestContext::new()), "fast");
    }
}

#[tokio::test(start_paused = true)]
async fn p2c_always_picks_the_better_of_two() {
    let pool = pool_of(PowerOfTwoChoices::new(), &["good", "bad"]);
    report_latency(&pool, "good", Duration::from_millis(100), 3);
    report_latency(&pool, "bad", Duration::from_millis(400), 3);
    for _ in 0..50 {
        assert_eq!(pick(&pool, &RequestContext::new()), "good");
    }
    // Load counts too: four requests in flight make 100 ms × 5 worse than 400 ms × 1.
    let _held: Vec<Lease> = (0..4).map(|_| lease_of(&pool, "good")).collect();
    assert_eq!(pick(&pool, &RequestContext::new()), "bad");
}

/// Compares what `PowerOfTwoChoices::better` chooses with the costs it stands for.
#[derive(Debug, Default)]
struct BetterAgainstCost(std::sync::Mutex<Option<(usize, f64, f64)>>);

impl Balancer for BetterAgainstCost {
    fn name(&self) -> &'static str {
        "better_against_cost"
    }

    fn pick(&self, c: &harvester_proxypool::balance::Candidates<'_>) -> Option<usize> {
        let seen = (PowerOfTwoChoices::better(c, 0, 1), PowerOfTwoChoices::cost(c, 0), PowerOfTwoChoices::cost(c, 1));
        *self.0.lock().expect("no panic while held") = Some(seen);
        None
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// The pick compares costs without computing them (at most one fast exponential,
    /// often none): it must choose the cheaper proxy whenever the costs differ by more
    /// than that exponential's error.
    #[test]
    fn p2c_chooses_the_proxy_of_lower_cost(
        latency in prop::array::uniform2(1u64..5_000),
        busy in prop::array::uniform2(0usize..5),
        failed in prop::array::uniform2(0usize..3),
        answered in prop::array::uniform2(1usize..4),
    ) {
        let pool = pool_of(PowerOfTwoChoices::new(), &["a", "b"]);
        let mut held = Vec::new();
        for (i, id) in ["a", "b"].into_iter().enumerate() {
            report_latency(&pool, id, Duration::from_millis(latency[i]), answered[i]);
            for _ in 0..failed[i] {
                lease_of(&pool, id).report(Outcome::network_failure(Duration::from_millis(5)));
            }
            held.extend((0..busy[i]).map(|_| lease_of(&pool, id)));
        }
        let check = BetterAgainstCost::default();
        let _ = pool.acquire_with(&Requirements::ANY, &RequestContext::new(), &check);
        let (chosen, cost_a, cost_b) = check.0.lock().expect("no panic while held").expect("the pick ran");
        if (cost_a - cost_b).abs() > 1e-6 * cost_a.max(cost_b) {
            prop_assert_eq!(chosen, usize::from(cost_b < cost_a), "costs {} and {}", cost_a, cost_b);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn p2c_never_picks_the_worst_proxy_and_samples_two_distinct() {
    let names = ids(8);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let pool = pool_of(PowerOfTwoChoices::new(), &names);
    for (i, name) in names.iter().enumerate() {
        report_latency(&pool, name, Duration::from_millis(100 * (i as u64 + 1)), 1);
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..4000 {
        *counts.entry(pick(&pool, &RequestContext::new())).or_default() += 1;
    }
    assert!(!counts.contains_key("p007"), "the worst is the worse of every pair it is in: {counts:?}");
    // With two distinct samples out of 8, the best is chosen whenever sampled: 2/8 = 25 %.
    let best = counts.get("p000").copied().unwrap_or(0) as f64 / 4000.0;
    assert!((0.20..0.30).contains(&best), "best proxy share {best}, expected about 0.25");
}

#[tokio::test(start_paused = true)]
async fn p2c_compares_two_candidates_even_when_most_of_the_pool_is_unavailable() {
    // 60 proxies of one session each; 58 are busy, so random draws mostly miss and the
    // two left (one fast, one slow) must still be compared, not taken as found.
    let pool = ProxyPool::builder().balancer(PowerOfTwoChoices::new()).build().expect("valid config");
    let names = ids(60);
    pool.extend(names.iter().map(|id| proxy(id, ProxyMeta { max_sessions: Some(1), ..Default::default() })))
        .expect("unique ids");
    report_latency(&pool, "p017", Duration::from_millis(100), 3);
    report_latency(&pool, "p042", Duration::from_secs(5), 3);
    let _busy: Vec<Lease> =
        names.iter().filter(|id| !matches!(id.as_str(), "p017" | "p042")).map(|id| lease_of(&pool, id)).collect();
    for _ in 0..200 {
        assert_eq!(pick(&pool, &RequestContext::new()), "p017", "the slow proxy is the worse of the only pair");
    }
}

#[tokio::test(start_paused = true)]
async fn p2c_forgets_a_latency_spike_with_time() {
    let pool = pool_of(PowerOfTwoChoices::new(), &["spiky", "steady"]);
    report_latency(&pool, "steady", Duration::from_millis(200), 1);
    report_latency(&pool, "spiky", Duration::from_secs(5), 1);
    assert_eq!(pick(&pool, &RequestContext::new()), "steady");
    // The steady proxy keeps answering in 200 ms; the spike decays (time constant 10 s).
    tokio::time::advance(Duration::from_secs(60)).await;
    report_latency(&pool, "steady", Duration::from_millis(200), 1);
    assert_eq!(pick(&pool, &RequestContext::new()), "spiky", "5 s × e^-6 ≈ 12 ms is now the lower estimate");
}

#[tokio::test(start_paused = true)]
async fn adaptive_quality_weighs_cost_and_success_at_the_target_site() {
    let pool = ProxyPool::builder().balancer(AdaptiveQuality::new()).build().expect("valid config");
    pool.extend([
        proxy("cheap", ProxyMeta { cost_per_request: 0.0, ..Default::default() }),
        proxy("pricey", ProxyMeta { cost_per_request: 0.005, ..Default::default() }),
    ])
    .expect("unique");
    // The same global history for both: five fast successes each, but the pricey one
    // earned its at shop.example and the cheap one elsewhere.
    let shop = RequestContext::new().target_host("shop.example");
    let elsewhere = RequestContext::new().target_host("news.example");
    for _ in 0..5 {
        pool.acquire_with(&Requirements::ANY, &shop, &Only("pricey".into()))
            .expect("pricey")
            .report(Outcome::success(Duration::from_millis(100)));
        pool.acquire_with(&Requirements::ANY, &elsewhere, &Only("cheap".into()))
            .expect("cheap")
            .report(Outcome::success(Duration::from_millis(100)));
    }
    // Without a site, cost decides (0.2 × 1 against 0.2 × 0.5).
    assert_eq!(pick(&pool, &RequestContext::new()), "cheap");
    // At shop.example, the pricey one's success there (0.2 × 1) outweighs its cost.
    assert_eq!(pick(&pool, &shop), "pricey");
    assert_eq!(pick(&pool, &elsewhere), "cheap");
}

#[test]
fn unmeasured_proxies_are_tried_but_cannot_take_every_request() {
    for balancer in [Box::new(PowerOfTwoChoices::new()) as Box<dyn Balancer>, Box::new(LeastLatency::new())] {
        let name = balancer.name();
        let pool = pool_of(balancer, &["known", "new"]);
        report_latency(&pool, "known", Duration::from_millis(300), 3);
        let first = pool.acquire(&Requirements::ANY, &RequestContext::new()).expect("a proxy");
        assert_eq!(first.id().as_str(), "new", "{name}: an idle unmeasured proxy is tried");
        // While its first request is out, the unmeasured proxy counts as the slowest.
        for _ in 0..10 {
            assert_eq!(pick(&pool, &RequestContext::new()), "known", "{name}");
        }
        drop(first);
    }
}

#[tokio::test(start_paused = true)]
async fn p2c_avoids_a_proxy_that_fails_fast() {
    let pool = pool_of(PowerOfTwoChoices::new(), &["good", "refusing"]);
    report_latency(&pool, "good", Duration::from_millis(300), 3);
    // A refused connection answers in a millisecond; it must not look fast.
    lease_of(&pool, "refusing").report(Outcome::network_failure(Duration::from_millis(1)));
    for _ in 0..20 {
        assert_eq!(pick(&pool, &RequestContext::new()), "good");
    }
}

#[test]
fn sticky_keeps_a_key_on_one_proxy() {
    let names = ids(10);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let pool = pool_of(Sticky::new(), &names);
    for key in 0..50 {
        let req = RequestContext::new().sticky_key(format!("session-{key}"));
        let first = pick(&pool, &req);
        for _ in 0..5 {
            assert_eq!(pick(&pool, &req), first);
        }
    }
}

#[test]
fn sticky_moves_only_the_keys_of_a_proxy_that_leaves() {
    let names = ids(10);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let pool = pool_of(Sticky::new(), &names);
    let keys: Vec<RequestContext> = (0..2000).map(|k| RequestContext::new().sticky_key(format!("user-{k}"))).collect();
    let before: Vec<String> = keys.iter().map(|r| pick(&pool, r)).collect();
    pool.remove(&"p003".into()).expect("present");
    let after: Vec<String> = keys.iter().map(|r| pick(&pool, r)).collect();
    let moved: Vec<usize> = (0..keys.len()).filter(|&k| before[k] != after[k]).collect();
    assert!(moved.iter().all(|&k| before[k] == "p003"), "only keys that lived on the removed proxy move");
    let share = moved.len() as f64 / keys.len() as f64;
    assert!((0.06..0.14).contains(&share), "about 1/10 of the keys move, got {share}");

    pool.add(proxy("p010", ProxyMeta::default())).expect("new id");
    let grown: Vec<String> = keys.iter().map(|r| pick(&pool, r)).collect();
    let moved: Vec<usize> = (0..keys.len()).filter(|&k| after[k] != grown[k]).collect();
    assert!(moved.iter().all(|&k| grown[k] == "p010"), "keys only move to the new proxy");
    let share = moved.len() as f64 / keys.len() as f64;
    assert!((0.06..0.14).contains(&share), "about 1/10 of the keys move to the new proxy, got {share}");
}

#[tokio::test(start_paused = true)]
async fn sticky_moves_a_key_off_an_unhealthy_proxy_and_back_when_it_returns() {
    let pool = pool_of(Sticky::new(), &["a", "b", "c"]);
    let req = RequestContext::new().sticky_key("cart-1").target_host("shop.example");
    let home = pick(&pool, &req);
    pool.acquire(&Requirements::ANY, &req)
        .expect("home")
        .report(Outcome::ban(Duration::from_millis(1), Some(Duration::from_secs(1))));
    let away = pick(&pool, &req);
    assert_ne!(away, home, "a banned home proxy is left");
    assert_eq!(pick(&pool, &req), away, "the key stays on its second choice meanwhile");
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(pick(&pool, &req), home, "the ban is over: the key goes home");
}

#[test]
fn sticky_without_a_key_falls_back_to_round_robin() {
    let pool = pool_of(Sticky::new(), &["a", "b", "c"]);
    let picks: Vec<String> = (0..3).map(|_| pick(&pool, &RequestContext::new())).collect();
    assert_eq!(picks, ["a", "b", "c"]);
}

#[test]
fn a_balancer_answering_out_of_range_gets_an_error_not_a_panic() {
    #[derive(Debug)]
    struct Broken;
    impl Balancer for Broken {
        fn name(&self) -> &'static str {
            "broken"
        }
        fn pick(&self, c: &harvester_proxypool::balance::Candidates<'_>) -> Option<usize> {
            Some(c.len() + 7)
        }
    }
    let pool = pool_of(Broken, &["a"]);
    let err = pool.acquire(&Requirements::ANY, &RequestContext::new()).expect_err("no valid pick");
    assert_eq!(err.to_string(), "the broken balancer picked no proxy although 1 were available");
}

/// Takes only the proxy with this id, if eligible.
#[derive(Debug)]
struct Only(String);

impl Balancer for Only {
    fn name(&self) -> &'static str {
        "only"
    }

    fn pick(&self, c: &harvester_proxypool::balance::Candidates<'_>) -> Option<usize> {
        (0..c.len()).find(|&i| c.proxy(i).id().as_str() == self.0 && c.is_eligible(i))
    }
}

#[tokio::test(start_paused = true)]
async fn failover_serves_from_the_primary_and_a_backup_only_while_it_is_out() {
    let config = PoolConfig {
        ejection: EjectionConfig { max_ejected_fraction: 1.0, panic_threshold: 0.0, ..EjectionConfig::default() },
        ..PoolConfig::default()
    };
    let pool = ProxyPool::builder().config(config).balancer(Failover::new()).build().expect("valid config");
    pool.extend(["primary", "backup-1", "backup-2"].map(|id| proxy(id, ProxyMeta::default()))).expect("unique");
    let shop = RequestContext::new().target_host("shop.example");
    let pick = |request: &RequestContext| pool.acquire(&Requirements::ANY, request).expect("a proxy").id().to_string();
    assert!((0..5).all(|_| pick(&shop) == "primary"));
    // Banned by the shop: the first backup serves the shop, the primary everyone else.
    pool.acquire(&Requirements::ANY, &shop).expect("primary").report(Outcome::ban(Duration::from_millis(5), None));
    assert_eq!(pick(&shop), "backup-1");
    assert_eq!(pick(&RequestContext::new().target_host("news.example")), "primary");
    // A request that already went through the first backup gets the second.
    assert_eq!(pick(&shop.clone().avoid(ProxyId::from("backup-1"))), "backup-2");
}
