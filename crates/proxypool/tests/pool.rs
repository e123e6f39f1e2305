//! The pool's contract: acquire with requirements, leases, passive health, ejection,
//! bans, hot changes, and the errors that say why nothing could be leased.

use std::time::Duration;

use harvester_proxypool::balance::RoundRobin;
use harvester_proxypool::{
    BanConfig, EjectionConfig, Outcome, PoolConfig, PoolError, Proxy, ProxyId, ProxyKind, ProxyMeta, ProxyPool,
    RequestContext, Requirements,
};

const MS: Duration = Duration::from_millis(1);

fn proxy(id: &str, meta: ProxyMeta) -> Proxy {
    let port = 1000 + id.bytes().map(u16::from).sum::<u16>();
    Proxy::with_meta(&format!("http://127.0.0.1:{port}"), ProxyMeta { id: Some(id.into()), ..meta })
        .expect("valid proxy")
}

fn plain(id: &str) -> Proxy {
    proxy(id, ProxyMeta::default())
}

fn round_robin_pool(config: PoolConfig, ids: &[&str]) -> ProxyPool {
    let pool = ProxyPool::builder().config(config).balancer(RoundRobin::new()).build().expect("valid config");
    pool.extend(ids.iter().map(|id| plain(id))).expect("unique ids");
    pool
}

fn fail(pool: &ProxyPool, req: &Requirements, times: usize) -> Vec<String> {
    (0..times)
        .map(|_| {
            let lease = pool.acquire(req, &RequestContext::new()).expect("a proxy");
            let id = lease.id().to_string();
            lease.report(Outcome::network_failure(MS));
            id
        })
        .collect()
}

#[test]
fn empty_pool_says_so() {
    let pool = ProxyPool::new([]).expect("empty pool");
    assert_eq!(pool.acquire(&Requirements::ANY, &RequestContext::new()).err(), Some(PoolError::Empty));
}

#[test]
fn requirements_filter_by_region_kind_provider_tags_and_cost() {
    let pool = ProxyPool::new([
        proxy(
            "us-res",
            ProxyMeta { region: Some("us".into()), kind: Some(ProxyKind::Residential), ..Default::default() },
        ),
        proxy(
            "us-dc",
            ProxyMeta { region: Some("us".into()), kind: Some(ProxyKind::Datacenter), ..Default::default() },
        ),
        proxy(
            "eu-res",
            ProxyMeta {
                region: Some("eu".into()),
                kind: Some(ProxyKind::Residential),
                provider: Some("acme".into()),
                tags: ["shop".to_owned()].into(),
                cost_per_request: 0.005,
                ..Default::default()
            },
        ),
    ])
    .expect("unique ids");
    let only = |req: Requirements| {
        let ids: std::collections::BTreeSet<String> =
            (0..20).map(|_| pool.acquire(&req, &RequestContext::new()).expect("a match").id().to_string()).collect();
        ids.into_iter().collect::<Vec<_>>()
    };
    assert_eq!(only(Requirements::new().region("us").kind(ProxyKind::Datacenter)), ["us-dc"]);
    assert_eq!(only(Requirements::new().kind(ProxyKind::Residential).region("us")), ["us-res"]);
    assert_eq!(only(Requirements::new().provider("acme")), ["eu-res"]);
    assert_eq!(only(Requirements::new().tag("shop")), ["eu-res"]);
    assert_eq!(only(Requirements::new().max_cost(0.001)), ["us-dc", "us-res"]);
}

#[test]
fn no_match_names_the_filter_that_emptied_the_set() {
    let pool = ProxyPool::new([
        proxy("a", ProxyMeta { region: Some("us".into()), kind: Some(ProxyKind::Datacenter), ..Default::default() }),
        proxy("b", ProxyMeta { region: Some("eu".into()), kind: Some(ProxyKind::Residential), ..Default::default() }),
    ])
    .expect("unique ids");
    let filter_of = |(req, request): (Requirements, RequestContext)| match pool.acquire(&req, &request) {
        Err(PoolError::NoMatch { filter, pool_size }) => {
            assert_eq!(pool_size, 2);
            filter
        }
        other => panic!("expected NoMatch, got {other:?}"),
    };
    assert_eq!(filter_of((Requirements::new().region("asia"), RequestContext::new())), "region=asia");
    assert_eq!(
        filter_of((Requirements::new().region("us").kind(ProxyKind::Residential), RequestContext::new())),
        "kind in [residential]"
    );
    assert_eq!(filter_of((Requirements::new().tag("nope"), RequestContext::new())), "tag=nope");
    assert_eq!(filter_of((Requirements::new().max_cost(-1.0), RequestContext::new())), "max_cost=-1");
    let both_tried = RequestContext::new().avoid(ProxyId::from("a")).avoid(ProxyId::from("b"));
    assert_eq!(filter_of((Requirements::new(), both_tried)), "avoid [a, b]");
    let not_a = (0..10).map(|_| {
        pool.acquire(&Requirements::ANY, &RequestContext::new().avoid(ProxyId::from("a"))).expect("b is left")
    });
    assert!(not_a.into_iter().all(|lease| lease.id().as_str() == "b"));
    let message =
        pool.acquire(&Requirements::new().region("asia"), &RequestContext::new()).expect_err("no match").to_string();
    assert_eq!(message, "no proxy matches the requirements: region=asia left none of 2 proxies");
}

#[test]
fn lease_holds_a_session_until_dropped_and_max_sessions_is_respected() {
    let pool =
        ProxyPool::new([proxy("only", ProxyMeta { max_sessions: Some(2), ..Default::default() })]).expect("unique ids");
    let first = pool.acquire(&Requirements::ANY, &RequestContext::new()).expect("first session");
    let second = pool.acquire(&Requirements::ANY, &RequestContext::new()).expect("second session");
    assert_eq!(pool.stats().in_flight, 2);
    assert_eq!(
        pool.acquire(&Requirements::ANY, &RequestContext::new()).err(),
        Some(PoolError::AllBusy { matching: 1 })
    );
    drop(first);
    let third = pool.acquire(&Requirements::ANY, &RequestContext::new()).expect("a session was freed");
    third.report(Outcome::success(MS));
    drop(second);
    assert_eq!(pool.stats().in_flight, 0);
}

#[tokio::test]
async fn lease_is_released_when_its_task_panics_or_is_cancelled() {
    let pool = ProxyPool::new([plain("a")]).expect("unique ids");
    let p = pool.clone();
    let panicked = tokio::spawn(async move {
        let _lease = p.acquire(&Requirements::ANY, &RequestContext::new()).expect("a proxy");
        panic!("handler bug");
    })
    .await;
    assert!(panicked.is_err());
    let p = pool.clone();
    let (held, hold) = tokio::sync::oneshot::channel::<()>();
    let cancelled = tokio::spawn(async move {
        let _lease = p.acquire(&Requirements::ANY, &RequestContext::new()).expect("a proxy");
        let _ = held.send(());
        std::future::pending::<()>().await;
    });
    hold.await.expect("task holds its lease");
    assert_eq!(pool.stats().in_flight, 1);
    cancelled.abort();
    let _ = cancelled.await;
    assert_eq!(pool.stats().in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn proxy_is_ejected_after_consecutive_failures_for_a_growing_time() {
    let config = PoolConfig {
        ejection: EjectionConfig { max_ejected_fraction: 1.0, panic_threshold: 0.0, ..EjectionConfig::default() },
        ..PoolConfig::default()
    };
    let pool = round_robin_pool(config, &["only"]);
    let req = Requirements::new();
    fail(&pool, &req, 5);
    match pool.acquire(&req, &RequestContext::new()) {
        Err(PoolError::AllEjected { matching: 1, retry_in }) => assert_eq!(retry_in, Duration::from_secs(30)),
        other => panic!("expected the proxy ejected for 30 s, got {other:?}"),
    }
    tokio::time::advance(Duration::from_secs(30)).await;
    fail(&pool, &req, 5);
    let stats = pool.proxy_stats("only").expect("present");
    assert_eq!(stats.times_ejected, 2);
    assert_eq!(stats.ejected_for, Some(Duration::from_secs(60)), "the second ejection lasts twice as long");
    tokio::time::advance(Duration::from_secs(60)).await;
    let lease = pool.acquire(&req, &RequestContext::new()).expect("back in rotation");
    lease.report(Outcome::success(MS));
    assert_eq!(pool.proxy_stats("only").expect("present").consecutive_failures, 0);
}

#[tokio::test(start_paused = true)]
async fn a_proxy_that_loses_every_race_is_ejected_and_one_answer_breaks_the_run() {
    let config = PoolConfig {
        ejection: EjectionConfig { max_ejected_fraction: 1.0, panic_threshold: 0.0, ..EjectionConfig::default() },
        ..PoolConfig::default()
    };
    let pool = round_robin_pool(config, &["only"]);
    let req = Requirements::new();
    let lose = |times: usize| {
        for _ in 0..times {
            pool.acquire(&req, &RequestContext::new())
                .expect("in rotation")
                .report(Outcome::slow(Duration::from_secs(1)));
        }
    };
    // Four losses, an answer, four losses: never five in a row, so still in rotation.
    lose(4);
    pool.acquire(&req, &RequestContext::new()).expect("in rotation").report(Outcome::success(MS));
    lose(4);
    let stats = pool.proxy_stats("only").expect("present");
    assert_eq!((stats.slow, stats.consecutive_failures, stats.ejected_for), (8, 4, None));
    // The fifth loss in a row: it hangs while others answer for it.
    lose(1);
    match pool.acquire(&req, &RequestContext::new()) {
        Err(PoolError::AllEjected { matching: 1, .. }) => {}
        other => panic!("expected the proxy ejected after five lost races in a row, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn ejection_time_is_capped() {
    let config = PoolConfig {
        ejection: EjectionConfig {
            max_ejected_fraction: 1.0,
            panic_threshold: 0.0,
            max_ejection: Duration::from_secs(45),
            ..EjectionConfig::default()
        },
        ..PoolConfig::default()
    };
    let pool = round_robin_pool(config, &["only"]);
    let mut lengths = Vec::new();
    for _ in 0..3 {
        fail(&pool, &Requirements::new(), 5);
        let ejected_for = pool.proxy_stats("only").and_then(|s| s.ejected_for).expect("ejected");
        lengths.push(ejected_for.as_secs());
        tokio::time::advance(ejected_for).await;
    }
    assert_eq!(lengths, [30, 45, 45], "30 s, then 60 s capped at 45 s, then 90 s capped");
}

#[tokio::test(start_paused = true)]
async fn a_low_success_rate_ejects_without_failures_in_a_row() {
    let config = PoolConfig {
        ejection: EjectionConfig {
            max_ejected_fraction: 1.0,
            panic_threshold: 0.0,
            min_requests: 10,
            min_success_rate: 0.5,
            ..EjectionConfig::default()
        },
        ..PoolConfig::default()
    };
    let pool = round_robin_pool(config, &["flaky"]);
    for i in 0..11 {
        let lease = pool.acquire(&Requirements::ANY, &RequestContext::new()).expect("not yet ejected");
        // Two failures for every success: never five in a row, but a 33 % success rate.
        lease.report(if i % 3 == 0 { Outcome::success(MS) } else { Outcome::network_failure(MS) });
    }
    assert!(pool.proxy_stats("flaky").expect("present").ejected_for.is_some());
}

#[tokio::test(start_paused = true)]
async fn ejections_stop_at_the_cap_on_the_share_of_the_pool() {
    let config = PoolConfig {
        ejection: EjectionConfig { max_ejected_fraction: 0.5, ..EjectionConfig::default() },
        ..PoolConfig::default()
    };
    let ids = ["a", "b", "c", "d"];
    let pool = round_robin_pool(config, &ids);
    fail(&pool, &Requirements::new(), 40);
    let stats = pool.stats();
    assert_eq!(stats.ejected, 2, "half of four may be ejected, no more");
    assert_eq!(stats.healthy, 2);
    assert!(!stats.panic);
}

#[tokio::test(start_paused = true)]
async fn while_other_proxies_answer_ejections_go_past_the_cap_but_not_into_panic() {
    let config = PoolConfig {
        ejection: EjectionConfig { max_ejected_fraction: 0.5, panic_threshold: 0.3, ..EjectionConfig::default() },
        ..PoolConfig::default()
    };
    let ids = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
    let pool = round_robin_pool(config, &ids);
    // Eight of ten fail every request; two answer every one, in the same rounds.
    for _ in 0..20 {
        for _ in 0..ids.len() {
            let lease = pool.acquire(&Requirements::ANY, &RequestContext::new()).expect("a proxy");
            let outcome = if matches!(lease.id().as_str(), "a" | "b") {
                Outcome::success(MS)
            } else {
                Outcome::network_failure(MS)
            };
            lease.report(outcome);
        }
        tokio::time::advance(Duration::from_millis(10)).await;
    }
    let stats = pool.stats();
    assert_eq!(stats.ejected, 7, "past the cap of 5, up to the 3 of 10 that panic mode needs healthy");
    assert!(!stats.panic);
    assert!(pool.proxy_stats("a").expect("present").ejected_for.is_none());
    assert!(pool.proxy_stats("b").expect("present").ejected_for.is_none());
}

#[tokio::test(start_paused = true)]
async fn panic_mode_uses_ejected_proxies_when_too_few_are_healthy() {
    let config = PoolConfig {
        ejection: EjectionConfig { max_ejected_fraction: 1.0, panic_threshold: 0.5, ..EjectionConfig::default() },
        ..PoolConfig::default()
    };
    let pool = round_robin_pool(config, &["a", "b", "c", "d"]);
    // Fail until three are ejected: one healthy proxy of four is below the 50 % threshold.
    let mut ejected = 0;
    while ejected < 3 {
        let lease = pool.acquire(&Requirements::ANY, &RequestContext::new()).expect("a proxy");
        let before = pool.proxy_stats(lease.id().as_str()).expect("present").times_ejected;
        let id = lease.id().clone();
        lease.report(Outcome::network_failure(MS));
        if pool.proxy_stats(id.as_str()).expect("present").times_ejected > before {
            ejected += 1;
        }
        assert!(pool.stats().requests < 100, "ejections must happen within a bounded number of failures");
    }
    let stats = pool.stats();
    assert_eq!(stats.ejected, 3);
    assert!(stats.panic);
    let used: std::collections::BTreeSet<String> = (0..8)
        .map(|_| pool.acquire(&Requirements::ANY, &RequestContext::new()).expect("panic mode").id().to_string())
        .collect();
    assert_eq!(used.len(), 4, "in panic mode every proxy is used again: {used:?}");
}

#[tokio::test(start_paused = true)]
async fn a_ban_bars_a_proxy_from_its_host_only_until_retry_after() {
    let pool = round_robin_pool(PoolConfig::default(), &["a", "b"]);
    let shop = RequestContext::new().target_host("shop.example");
    let news = RequestContext::new().target_host("news.example");
    let lease = pool.acquire_with(&Requirements::ANY, &shop, &FirstById("a")).expect("a");
    lease.report(Outcome::ban(MS, Some(Duration::from_secs(120))));
    for _ in 0..4 {
        assert_eq!(pool.acquire(&Requirements::ANY, &shop).expect("b serves the shop").id().as_str(), "b");
    }
    let news_ids: std::collections::BTreeSet<String> =
        (0..4).map(|_| pool.acquire(&Requirements::ANY, &news).expect("both serve news").id().to_string()).collect();
    assert_eq!(news_ids.len(), 2, "a banned proxy stays good for other hosts");
    let lease = pool.acquire_with(&Requirements::ANY, &shop, &FirstById("b")).expect("b");
    lease.report(Outcome::ban(MS, None));
    match pool.acquire(&Requirements::ANY, &shop) {
        Err(PoolError::AllBanned { host, matching: 2, retry_in }) => {
            assert_eq!(host, "shop.example");
            assert_eq!(retry_in, Duration::from_secs(60), "b's default cooldown ends first");
        }
        other => panic!("expected AllBanned, got {other:?}"),
    }
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(pool.acquire(&Requirements::ANY, &shop).expect("b's ban ended").id().as_str(), "b");
    tokio::time::advance(Duration::from_secs(60)).await;
    let ids: std::collections::BTreeSet<String> =
        (0..4).map(|_| pool.acquire(&Requirements::ANY, &shop).expect("both again").id().to_string()).collect();
    assert_eq!(ids.len(), 2);
    assert!(pool.proxy_stats("a").expect("present").bans_active.is_empty());
}

#[test]
fn bans_by_ever_more_hosts_stay_bounded() {
    // 20 000 sites each ban one proxy: the proxy remembers at most `max_hosts_per_proxy`
    // of them (the bans ending first are forgotten first), and every ban costs the same.
    let config =
        PoolConfig { bans: BanConfig { max_hosts_per_proxy: 256, ..BanConfig::default() }, ..Default::default() };
    let pool = round_robin_pool(config, &["a"]);
    for n in 0..20_000 {
        let lease = pool
            .acquire(&Requirements::ANY, &RequestContext::new().target_host(&format!("site-{n}.example")))
            .expect("a proxy");
        lease.report(Outcome::ban(MS, Some(Duration::from_secs(3600))));
    }
    let stats = pool.proxy_stats("a").expect("in the pool");
    assert!(stats.bans_active.len() <= 256, "{} bans held", stats.bans_active.len());
    assert!(stats.bans_active.iter().any(|b| b.host == "site-19999.example"), "the newest ban is kept");
    assert_eq!(stats.bans, 20_000);
}

#[test]
fn bans_do_not_count_towards_ejection() {
    let pool = round_robin_pool(PoolConfig::default(), &["a"]);
    for site in 0..10 {
        let req = RequestContext::new().target_host(&format!("site{site}.example"));
        pool.acquire(&Requirements::ANY, &req).expect("a is not banned here yet").report(Outcome::ban(MS, None));
    }
    let stats = pool.proxy_stats("a").expect("present");
    assert_eq!((stats.times_ejected, stats.consecutive_failures, stats.bans), (0, 0, 10));
    assert_eq!(stats.bans_active.len(), 10);
    drop(
        pool.acquire(&Requirements::ANY, &RequestContext::new().target_host("other.example"))
            .expect("still good elsewhere"),
    );
}

#[test]
fn removing_a_leased_proxy_is_safe_and_its_reports_no_longer_count() {
    let config = PoolConfig {
        ejection: EjectionConfig { max_ejected_fraction: 0.5, ..EjectionConfig::default() },
        ..PoolConfig::default()
    };
    let pool = round_robin_pool(config, &["a", "b"]);
    let leases: Vec<_> = (0..6)
        .map(|_| pool.acquire_with(&Requirements::ANY, &RequestContext::new(), &FirstById("a")).expect("a"))
        .collect();
    let removed = pool.remove(&"a".into()).expect("present");
    assert_eq!(removed.id().as_str(), "a");
    assert_eq!(pool.len(), 1);
    for lease in leases {
        assert_eq!(lease.proxy().id().as_str(), "a", "the lease still knows its proxy");
        lease.report(Outcome::network_failure(MS));
    }
    assert_eq!(pool.stats().ejected, 0, "six failures on a removed proxy eject nothing");
    pool.add(plain("c")).expect("new id");
    for _ in 0..5 {
        pool.acquire_with(&Requirements::ANY, &RequestContext::new(), &FirstById("b"))
            .expect("b")
            .report(Outcome::network_failure(MS));
    }
    assert_eq!(pool.stats().ejected, 1, "the single ejection place of two proxies is still free for b");
    assert_eq!(pool.remove(&"a".into()).err(), Some(PoolError::UnknownId("a".into())));
}

#[test]
fn a_proxy_added_after_a_removal_never_shares_the_removed_ones_state() {
    // Picks read each proxy's hot state from a dense table whose lines are reused after a
    // removal: a line must stay with its proxy while any lease still holds that proxy.
    let in_flight = |pool: &ProxyPool, id: &str| pool.proxy_stats(id).expect("present").in_flight;
    let pool = round_robin_pool(PoolConfig::default(), &["a"]);
    let held = pool.acquire(&Requirements::ANY, &RequestContext::new()).expect("a");
    pool.remove(&"a".into()).expect("present");
    pool.add(plain("b")).expect("new id");
    let b = pool.acquire(&Requirements::ANY, &RequestContext::new()).expect("b");
    assert_eq!(b.id().as_str(), "b");
    assert_eq!(in_flight(&pool, "b"), 1);
    held.report(Outcome::network_failure(MS));
    assert_eq!(in_flight(&pool, "b"), 1, "ending a's lease leaves b's count alone");
    drop(b);
    assert_eq!(in_flight(&pool, "b"), 0);
    // Once nothing holds b any more, a newcomer starts fresh wherever its state sits.
    fail(&pool, &Requirements::ANY, 5);
    assert_eq!(pool.stats().ejected, 1, "b failed five times in a row");
    pool.remove(&"b".into()).expect("present");
    pool.add(plain("c")).expect("new id");
    let c = pool.proxy_stats("c").expect("present");
    assert_eq!((c.in_flight, c.ejected_for, c.requests), (0, None, 0), "{c:?}");
    assert_eq!(fail(&pool, &Requirements::ANY, 1), ["c"], "and it is in rotation");
}

#[tokio::test(start_paused = true)]
async fn a_late_failure_after_an_ejection_ends_does_not_eject_again() {
    let config = PoolConfig {
        ejection: EjectionConfig { max_ejected_fraction: 1.0, panic_threshold: 0.0, ..EjectionConfig::default() },
        ..PoolConfig::default()
    };
    let pool = round_robin_pool(config, &["a"]);
    // A request that started before the ejection and times out after it ends.
    let straggler = pool.acquire(&Requirements::ANY, &RequestContext::new()).expect("a");
    fail(&pool, &Requirements::new(), 5);
    tokio::time::advance(Duration::from_secs(30)).await;
    straggler.report(Outcome::timeout(Duration::from_secs(30)));
    let a = pool.proxy_stats("a").expect("present");
    assert_eq!((a.ejected_for, a.times_ejected, a.consecutive_failures), (None, 1, 1), "a fresh start, one failure");
}

#[tokio::test]
async fn a_request_whose_matching_proxies_are_all_ejected_uses_them_in_panic_mode() {
    let pool = round_robin_pool(PoolConfig::default(), &[]);
    for (id, region) in [("us-1", "us"), ("eu-1", "eu"), ("eu-2", "eu"), ("eu-3", "eu"), ("eu-4", "eu")] {
        pool.add(proxy(id, ProxyMeta { region: Some(region.into()), ..Default::default() })).expect("unique");
    }
    let us = Requirements::new().region("us");
    fail(&pool, &us, 5);
    let stats = pool.stats();
    assert_eq!((stats.ejected, stats.panic), (1, false), "one of five ejected: the pool is fine");
    let lease =
        pool.acquire(&us, &RequestContext::new()).expect("every us proxy is ejected: panic mode for this request");
    assert_eq!(lease.id().as_str(), "us-1");

    let strict = PoolConfig {
        ejection: EjectionConfig { panic_threshold: 0.0, ..EjectionConfig::default() },
        ..PoolConfig::default()
    };
    let pool = round_robin_pool(strict, &[]);
    for (id, region) in [("us-1", "us"), ("eu-1", "eu")] {
        pool.add(proxy(id, ProxyMeta { region: Some(region.into()), ..Default::default() })).expect("unique");
    }
    fail(&pool, &us, 5);
    let err = pool.acquire(&us, &RequestContext::new()).expect_err("no panic mode at threshold 0");
    assert!(matches!(err, PoolError::AllEjected { matching: 1, .. }), "{err:?}");
}

#[test]
fn absurd_latencies_are_capped_instead_of_overflowing() {
    let pool = ProxyPool::builder().balancer(harvester_proxypool::balance::LeastLatency::new()).build().expect("valid");
    pool.add(plain("a")).expect("fresh pool");
    pool.acquire(&Requirements::ANY, &RequestContext::new()).expect("a").report(Outcome::timeout(Duration::MAX));
    let a = pool.proxy_stats("a").expect("present");
    assert_eq!(a.latency, Some(Duration::from_secs(86_400)));
    assert_eq!(a.quality, 0.0, "all failures, far too slow");
    drop(pool.acquire(&Requirements::ANY, &RequestContext::new()).expect("least latency still picks it"));
}

#[test]
fn pool_and_leases_cross_threads() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    fn assert_send<T: Send>() {}
    assert_send_sync::<ProxyPool>();
    assert_send::<harvester_proxypool::Lease>();
}

#[test]
fn removing_an_ejected_proxy_frees_its_place_under_the_cap() {
    let config = PoolConfig {
        ejection: EjectionConfig { max_ejected_fraction: 0.5, ..EjectionConfig::default() },
        ..PoolConfig::default()
    };
    let pool = round_robin_pool(config, &["a", "b"]);
    for _ in 0..5 {
        pool.acquire_with(&Requirements::ANY, &RequestContext::new(), &FirstById("a"))
            .expect("a")
            .report(Outcome::network_failure(MS));
    }
    assert_eq!(pool.stats().ejected, 1);
    pool.remove(&"a".into()).expect("present");
    pool.add(plain("c")).expect("new id");
    for _ in 0..5 {
        pool.acquire_with(&Requirements::ANY, &RequestContext::new(), &FirstById("b"))
            .expect("b")
            .report(Outcome::network_failure(MS));
    }
    assert_eq!(pool.stats().ejected, 1, "b could be ejected: a's place was freed by its removal");
}

#[test]
fn duplicate_ids_are_refused_and_extend_is_all_or_nothing() {
    let pool = round_robin_pool(PoolConfig::default(), &["a"]);
    assert_eq!(pool.add(plain("a")).err(), Some(PoolError::DuplicateId("a".into())));
    assert_eq!(pool.extend([plain("b"), plain("b")]).err(), Some(PoolError::DuplicateId("b".into())));
    assert_eq!(pool.len(), 1);
}

#[test]
fn upsert_and_replace_all_keep_the_health_of_proxies_that_stay() {
    let pool = round_robin_pool(PoolConfig::default(), &["a", "b"]);
    for _ in 0..3 {
        pool.acquire_with(&Requirements::ANY, &RequestContext::new(), &FirstById("a"))
            .expect("a")
            .report(Outcome::network_failure(MS));
    }
    assert!(pool.upsert(proxy("a", ProxyMeta { region: Some("eu".into()), ..Default::default() })));
    let a = pool.proxy_stats("a").expect("present");
    assert_eq!((a.region.as_deref(), a.consecutive_failures), (Some("eu"), 3));
    assert!(!pool.upsert(plain("c")));
    pool.replace_all([plain("a"), plain("d")]).expect("unique ids");
    let ids: Vec<String> = pool.proxies().iter().map(|p| p.id().to_string()).collect();
    assert_eq!(ids, ["a", "d"]);
    assert_eq!(pool.proxy_stats("a").expect("kept").consecutive_failures, 3);
}

#[test]
fn min_quality_follows_reported_outcomes() {
    let pool = round_robin_pool(PoolConfig::default(), &["good", "bad"]);
    for _ in 0..4 {
        pool.acquire_with(&Requirements::ANY, &RequestContext::new(), &FirstById("bad"))
            .expect("bad")
            .report(Outcome::network_failure(MS));
        pool.acquire_with(&Requirements::ANY, &RequestContext::new(), &FirstById("good"))
            .expect("good")
            .report(Outcome::success(MS));
    }
    let quality = |id| pool.proxy_stats(id).expect("present").quality;
    assert_eq!(quality("good"), 1.0);
    assert!((quality("bad") - 0.3).abs() < 1e-9, "0.7 × 0 % success + 0.3 × fast latency part");
    let picked: std::collections::BTreeSet<String> = (0..6)
        .map(|_| {
            pool.acquire(&Requirements::new().min_quality(0.85), &RequestContext::new()).expect("good").id().to_string()
        })
        .collect();
    assert_eq!(picked.into_iter().collect::<Vec<_>>(), ["good"]);
    let slow = Outcome::success(Duration::from_millis(3500));
    for _ in 0..20 {
        pool.acquire_with(&Requirements::ANY, &RequestContext::new(), &FirstById("good")).expect("good").report(slow);
    }
    assert!((quality("good") - 0.85).abs() < 0.01, "3.5 s halves the latency part: {}", quality("good"));
}

#[test]
fn many_threads_pick_fail_and_eject_while_proxies_are_added_and_removed() {
    // Given three proxies of two sessions each, one of which (base-0) fails every request
    // (failing only some, say every other one of a thread, made its ejection depend on how
    // the threads' picks interleaved: a success between failures resets the run)
    let pool = round_robin_pool(PoolConfig::default(), &[]);
    for i in 0..3 {
        pool.add(proxy(&format!("base-{i}"), ProxyMeta { max_sessions: Some(2), ..Default::default() }))
            .expect("unique");
    }
    const PICKS: u32 = 20_000;
    // When two threads pick and report 20 000 times each while a third adds and removes
    // proxies
    let refused: Vec<Vec<PoolError>> = std::thread::scope(|s| {
        let pickers: Vec<_> = (0..2)
            .map(|_| {
                let pool = pool.clone();
                s.spawn(move || {
                    let mut refused = Vec::new();
                    for _ in 0..PICKS {
                        let lease = match pool.acquire(&Requirements::ANY, &RequestContext::new()) {
                            Ok(lease) => lease,
                            Err(error) => {
                                refused.push(error);
                                continue;
                            }
                        };
                        assert!(pool.proxy_stats(lease.id().as_str()).is_none_or(|s| s.in_flight <= 2));
                        let fails = lease.id().as_str() == "base-0";
                        lease.report(if fails { Outcome::network_failure(MS) } else { Outcome::success(MS) });
                    }
                    refused
                })
            })
            .collect();
        for round in 0..200 {
            let id = format!("hot-{round}");
            pool.add(plain(&id)).expect("fresh id");
            pool.remove(&id.as_str().into()).expect("just added");
        }
        pickers.into_iter().map(|picker| picker.join().expect("picker thread")).collect()
    });
    // Then every pick got a proxy: only base-0 ever fails, so at most it is ejected, and
    // each thread holds one lease at a time, so base-1 and base-2 (four sessions) always
    // have a free session for the other thread's pick.
    let refused: Vec<&PoolError> = refused.iter().flatten().collect();
    assert!(refused.is_empty(), "{} of {} picks refused, first: {:?}", refused.len(), 2 * PICKS, refused.first());
    let stats = pool.stats();
    assert_eq!(stats.size, 3);
    assert_eq!(stats.in_flight, 0, "every lease was released");
    assert!(stats.ejected <= 1, "the cap (half of three, rounded down) holds: {}", stats.ejected);
    assert!(pool.proxy_stats("base-0").expect("present").times_ejected > 0, "base-0 failed its way out");
}

#[test]
fn stats_describe_each_proxy() {
    let pool = round_robin_pool(PoolConfig::default(), &["a"]);
    pool.acquire(&Requirements::ANY, &RequestContext::new())
        .expect("a")
        .report(Outcome::success(Duration::from_millis(200)));
    pool.acquire(&Requirements::ANY, &RequestContext::new())
        .expect("a")
        .report(Outcome::timeout(Duration::from_secs(10)));
    let a = pool.proxy_stats("a").expect("present");
    assert_eq!((a.requests, a.successes, a.timeouts, a.failures), (2, 1, 1, 0));
    assert_eq!(a.success_rate, Some(0.5));
    assert_eq!(a.latency, Some(Duration::from_secs_f64(0.2 * 0.7 + 10.0 * 0.3)));
    let json = serde_json::to_value(pool.stats()).expect("serialisable");
    assert_eq!(json["size"], 1);
    assert_eq!(json["proxies"][0]["id"], "a");
}

/// Picks the candidate with the given id if it is eligible: lets a test aim at one proxy.
#[derive(Debug)]
struct FirstById(&'static str);

impl harvester_proxypool::Balancer for FirstById {
    fn name(&self) -> &'static str {
        "first_by_id"
    }

    fn pick(&self, c: &harvester_proxypool::balance::Candidates<'_>) -> Option<usize> {
        (0..c.len()).find(|&i| c.proxy(i).id().as_str() == self.0 && c.is_eligible(i))
    }
}
