//! Health decisions as events: what a pool announces of its own decisions, and how it
//! applies the verdicts of another (within its ejection cap, only for the banned host,
//! never announcing them again). Also `apply_batch`, which mirrors a registry.

use std::sync::Arc;
use std::time::Duration;

use harvester_proxypool::balance::RoundRobin;
use harvester_proxypool::health_check::ProbeResult;
use harvester_proxypool::{
    BatchReport, EjectionConfig, HealthEvent, HealthEventKind, Outcome, PoolConfig, PoolError, Proxy, ProxyId,
    ProxyMeta, ProxyPool, RemoteEffect, RequestContext, Requirements,
};
use tokio::sync::broadcast::error::TryRecvError;

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);

fn proxy(id: &str) -> Proxy {
    let port = 2000 + id.bytes().map(u16::from).sum::<u16>();
    let meta = ProxyMeta { id: Some(id.into()), region: Some(id.into()), ..ProxyMeta::default() };
    Proxy::with_meta(&format!("http://127.0.0.1:{port}"), meta).expect("valid proxy")
}

fn pool(config: PoolConfig, ids: &[&str]) -> ProxyPool {
    let pool = ProxyPool::builder().config(config).balancer(RoundRobin::new()).build().expect("valid config");
    pool.extend(ids.iter().map(|id| proxy(id))).expect("unique ids");
    pool
}

fn ejecting_after(failures: u32, max_ejected_fraction: f64) -> PoolConfig {
    PoolConfig {
        ejection: EjectionConfig { consecutive_failures: failures, max_ejected_fraction, ..EjectionConfig::default() },
        ..PoolConfig::default()
    }
}

/// Fails the proxy whose region is `id` `times` times.
fn fail(pool: &ProxyPool, id: &str, times: u32) {
    for _ in 0..times {
        pool.acquire(&Requirements::new().region(id), &RequestContext::new())
            .expect("a proxy")
            .report(Outcome::network_failure(MS));
    }
}

fn ejection(id: &str, duration: Duration) -> HealthEvent {
    HealthEvent { proxy: ProxyId::from(id), kind: HealthEventKind::Ejected { duration } }
}

fn ban(id: &str, host: Option<&str>, duration: Duration) -> HealthEvent {
    HealthEvent { proxy: ProxyId::from(id), kind: HealthEventKind::Banned { host: host.map(Arc::from), duration } }
}

fn ejected_for(pool: &ProxyPool, id: &str) -> Option<Duration> {
    pool.proxy_stats(id).and_then(|s| s.ejected_for)
}

#[tokio::test(start_paused = true)]
async fn a_local_ejection_is_announced_with_its_length() {
    let pool = pool(ejecting_after(3, 0.5), &["a", "b"]);
    let mut events = pool.subscribe_health();
    fail(&pool, "a", 3);
    assert_eq!(events.try_recv(), Ok(ejection("a", Duration::from_secs(30))));
    assert_eq!(events.try_recv(), Err(TryRecvError::Empty), "one decision, one event");
}

#[tokio::test(start_paused = true)]
async fn a_local_ban_is_announced_with_its_host_and_retry_after() {
    let pool = pool(PoolConfig::default(), &["a"]);
    let mut events = pool.subscribe_health();
    let lease = pool.acquire(&Requirements::ANY, &RequestContext::new().target_host("shop.example")).expect("a proxy");
    lease.report(Outcome::ban(MS, Some(90 * SEC)));
    assert_eq!(events.try_recv(), Ok(ban("a", Some("shop.example"), 90 * SEC)));
}

#[tokio::test(start_paused = true)]
async fn a_probe_that_brings_a_proxy_back_is_announced_as_a_restoration() {
    let pool = pool(ejecting_after(1, 0.5), &["a", "b"]);
    fail(&pool, "a", 1);
    let mut events = pool.subscribe_health();
    let a = pool.get("a").expect("present");
    assert!(pool.record_probe(&a, ProbeResult { success: true, timed_out: false, latency: MS }));
    let restored = HealthEvent { proxy: ProxyId::from("a"), kind: HealthEventKind::Restored };
    assert_eq!(events.try_recv(), Ok(restored));
}

#[tokio::test(start_paused = true)]
async fn a_remote_ejection_takes_the_proxy_out_of_rotation_for_its_length() {
    let pool = pool(PoolConfig::default(), &["a", "b"]);
    assert_eq!(pool.apply_remote(&ejection("a", 10 * SEC)), RemoteEffect::Applied);
    assert_eq!(ejected_for(&pool, "a"), Some(10 * SEC));
    for _ in 0..4 {
        assert_eq!(pool.acquire(&Requirements::ANY, &RequestContext::new()).expect("b").id().as_str(), "b");
    }
    tokio::time::advance(10 * SEC).await;
    assert_eq!(ejected_for(&pool, "a"), None, "it ends on its own, as a local one would");
}

#[tokio::test(start_paused = true)]
async fn applying_a_remote_verdict_is_never_announced_again() {
    let pool = pool(PoolConfig::default(), &["a", "b"]);
    let mut events = pool.subscribe_health();
    pool.apply_remote(&ejection("a", 10 * SEC));
    pool.apply_remote(&ban("b", Some("shop.example"), 10 * SEC));
    pool.apply_remote(&HealthEvent { proxy: ProxyId::from("a"), kind: HealthEventKind::Restored });
    assert_eq!(events.try_recv(), Err(TryRecvError::Empty));
}

#[tokio::test(start_paused = true)]
async fn a_remote_ejection_counts_against_the_local_cap() {
    // Four proxies, at most a quarter ejected: one place.
    let pool = pool(ejecting_after(2, 0.25), &["a", "b", "c", "d"]);
    assert_eq!(pool.apply_remote(&ejection("a", 30 * SEC)), RemoteEffect::Applied);
    assert_eq!(pool.apply_remote(&ejection("b", 30 * SEC)), RemoteEffect::CapReached);
    fail(&pool, "c", 2);
    assert_eq!(ejected_for(&pool, "c"), None, "the remote ejection holds the only place");
    assert_eq!(pool.stats().ejected, 1);
}

#[tokio::test(start_paused = true)]
async fn remote_ejections_enter_panic_mode_like_local_ones() {
    let config = PoolConfig {
        ejection: EjectionConfig { max_ejected_fraction: 1.0, panic_threshold: 0.5, ..EjectionConfig::default() },
        ..PoolConfig::default()
    };
    let pool = pool(config, &["a", "b"]);
    assert_eq!(pool.apply_remote(&ejection("a", 30 * SEC)), RemoteEffect::Applied);
    assert_eq!(pool.apply_remote(&ejection("b", 30 * SEC)), RemoteEffect::Applied);
    assert!(pool.stats().panic);
    assert!(
        pool.acquire(&Requirements::ANY, &RequestContext::new()).is_ok(),
        "in panic mode the ejected proxies serve"
    );
}

#[tokio::test(start_paused = true)]
async fn a_remote_ejection_only_lengthens_and_is_capped_by_the_local_maximum() {
    let pool = pool(PoolConfig::default(), &["a", "b"]);
    assert_eq!(pool.apply_remote(&ejection("a", 20 * SEC)), RemoteEffect::Applied);
    assert_eq!(pool.apply_remote(&ejection("a", 10 * SEC)), RemoteEffect::Unchanged);
    assert_eq!(pool.apply_remote(&ejection("a", 86_400 * SEC)), RemoteEffect::Applied);
    assert_eq!(ejected_for(&pool, "a"), Some(Duration::from_secs(300)), "the default max_ejection");
    assert_eq!(pool.stats().ejected, 1, "lengthening keeps one place under the cap");
}

#[tokio::test(start_paused = true)]
async fn a_remote_restoration_ends_the_ejection() {
    let pool = pool(PoolConfig::default(), &["a", "b"]);
    pool.apply_remote(&ejection("a", 20 * SEC));
    let restored = HealthEvent { proxy: ProxyId::from("a"), kind: HealthEventKind::Restored };
    assert_eq!(pool.apply_remote(&restored), RemoteEffect::Applied);
    assert_eq!(ejected_for(&pool, "a"), None);
    assert_eq!(pool.stats().ejected, 0);
    assert_eq!(pool.apply_remote(&restored), RemoteEffect::Unchanged);
}

#[tokio::test(start_paused = true)]
async fn a_remote_ban_bars_the_proxy_from_that_host_only() {
    let pool = pool(PoolConfig::default(), &["a"]);
    assert_eq!(pool.apply_remote(&ban("a", Some("shop.example"), 60 * SEC)), RemoteEffect::Applied);
    let refused = pool.acquire(&Requirements::ANY, &RequestContext::new().target_host("shop.example")).err();
    assert!(matches!(refused, Some(PoolError::AllBanned { .. })), "{refused:?}");
    assert!(pool.acquire(&Requirements::ANY, &RequestContext::new().target_host("other.example")).is_ok());
    tokio::time::advance(60 * SEC).await;
    assert!(
        pool.acquire(&Requirements::ANY, &RequestContext::new().target_host("shop.example")).is_ok(),
        "the ban ran out"
    );
}

#[tokio::test(start_paused = true)]
async fn verdicts_for_unknown_proxies_or_disabled_ejection_change_nothing() {
    let pool = pool(PoolConfig::default(), &["a"]);
    assert_eq!(pool.apply_remote(&ejection("nope", SEC)), RemoteEffect::UnknownProxy);
    let off = PoolConfig {
        ejection: EjectionConfig { enabled: false, ..EjectionConfig::default() },
        ..PoolConfig::default()
    };
    let off = self::pool(off, &["a"]);
    assert_eq!(off.apply_remote(&ejection("a", SEC)), RemoteEffect::EjectionDisabled);
    assert_eq!(off.apply_remote(&ban("a", None, SEC)), RemoteEffect::Applied, "bans do not depend on ejection");
}

#[tokio::test(start_paused = true)]
async fn a_batch_adds_updates_and_removes_in_one_change_keeping_health() {
    let pool = pool(ejecting_after(1, 1.0), &["a", "b"]);
    fail(&pool, "a", 1);
    let generation = pool.generation();
    let moved = Proxy::with_meta("http://127.0.0.1:9", ProxyMeta { id: Some("a".into()), ..ProxyMeta::default() })
        .expect("valid proxy");
    let report = pool.apply_batch([moved, proxy("c"), proxy("c")], [ProxyId::from("b"), ProxyId::from("zz")]);
    assert_eq!(report, BatchReport { added: 1, replaced: 1, removed: 1 });
    assert_eq!(pool.generation(), generation + 1);
    let ids: Vec<String> = pool.proxies().iter().map(|p| p.id().to_string()).collect();
    assert_eq!(ids, ["a", "c"]);
    assert_eq!(pool.get("a").map(|p| p.port()), Some(9));
    assert!(ejected_for(&pool, "a").is_some(), "the updated proxy kept its ejection");
}
