//! Every numeric setting of the pool, the client's tail control and the shared state at
//! its extremes (0, 1, huge, the type's maximum; NaN and ±∞ for floats; `Duration::MAX`):
//! refused with a [`ConfigError`] naming the field, or accepted and then working (leases,
//! every kind of report with extreme latencies and Retry-After, remote verdicts of any
//! length, weeks of virtual time) without a panic.

use std::sync::Arc;
use std::time::Duration;

use harvester_proxypool::client::{AdaptiveTimeout, Hedging};
use harvester_proxypool::health_check::HealthCheckConfig;
#[cfg(feature = "redis")]
use harvester_proxypool::shared::SharedStateConfig;
use harvester_proxypool::{
    BanConfig, ConfigError, EjectionConfig, EvidenceConfig, HealthConfig, HealthEvent, HealthEventKind, Outcome,
    PoolConfig, Proxy, ProxyPool, RequestContext, Requirements,
};
use harvester_testbed::support::extremes::{Picks, picks};
use proptest::prelude::*;

fn pool_config(p: &mut Picks) -> PoolConfig {
    let d = PoolConfig::default();
    let (h, e, b, v) = (&d.health, &d.ejection, &d.bans, &d.evidence);
    PoolConfig {
        health: HealthConfig {
            latency_alpha: p.float(h.latency_alpha),
            peak_decay: p.duration(h.peak_decay),
            success_window: p.count(h.success_window),
            good_latency: p.duration(h.good_latency),
            bad_latency: p.duration(h.bad_latency),
        },
        ejection: EjectionConfig {
            enabled: p.coin(),
            consecutive_failures: p.count(e.consecutive_failures),
            min_success_rate: p.float(e.min_success_rate),
            min_requests: p.count(e.min_requests),
            base_ejection: p.duration(e.base_ejection),
            max_ejection: p.duration(e.max_ejection),
            max_ejected_fraction: p.float(e.max_ejected_fraction),
            panic_threshold: p.float(e.panic_threshold),
        },
        bans: BanConfig {
            base_cooldown: p.duration(b.base_cooldown),
            max_cooldown: p.duration(b.max_cooldown),
            max_retry_after: p.duration(b.max_retry_after),
            max_hosts_per_proxy: p.size(b.max_hosts_per_proxy),
        },
        evidence: EvidenceConfig {
            half_life: p.duration(v.half_life),
            site_half_life: p.duration(v.site_half_life),
            prior_weight: p.float(v.prior_weight),
            rate_window: p.duration(v.rate_window),
            rate_relax: p.duration(v.rate_relax),
            latency_window: p.duration(v.latency_window),
            min_latency_samples: p.count(v.min_latency_samples),
            suspect_after: p.float(v.suspect_after),
            tail_spread: p.float(v.tail_spread),
            max_sites: p.size(v.max_sites),
        },
    }
}

/// Leases and reports of every kind, extreme latencies and Retry-After included, remote
/// verdicts of any length, and weeks of virtual time.
fn exercise(pool: &ProxyPool, rt: &tokio::runtime::Runtime) {
    let extreme = [Duration::ZERO, Duration::from_millis(80), Duration::from_secs(u64::MAX), Duration::MAX];
    for round in 0..90usize {
        let host = format!("h{}.example", round % 3);
        if let Ok(lease) = pool.acquire(&Requirements::ANY, &RequestContext::new().target_host(&host)) {
            let latency = extreme[round % extreme.len()];
            let retry_after = (round % 4 == 0).then_some(extreme[(round / 4) % extreme.len()]);
            lease.report(match round % 7 {
                0 | 1 => Outcome::success(latency),
                2 => Outcome::network_failure(latency),
                3 => Outcome::timeout(latency),
                4 => Outcome::ban(latency, retry_after),
                5 => Outcome::rate_limited(latency, retry_after),
                _ => Outcome::slow(latency),
            });
        }
        if round % 30 == 29 {
            rt.block_on(tokio::time::advance(Duration::from_secs(8 * 86_400)));
        }
    }
    for proxy in ["p0", "p1"] {
        for kind in [
            HealthEventKind::Ejected { duration: Duration::MAX },
            HealthEventKind::Banned { host: Some(Arc::from("h0.example")), duration: Duration::MAX },
            HealthEventKind::Banned { host: None, duration: Duration::from_secs(u64::MAX) },
            HealthEventKind::Restored,
        ] {
            let _ = pool.apply_remote(&HealthEvent { proxy: proxy.into(), kind });
        }
    }
    let _ = pool.stats();
    let _ = pool.latency_quantile("h1.example", 0.99);
    let _ = pool.tail_latency("h1.example", 0.99);
    rt.block_on(tokio::time::advance(Duration::from_secs(8 * 86_400)));
    let _ = pool.acquire(&Requirements::ANY, &RequestContext::new().target_host("h2.example"));
}

fn proxies() -> Vec<Proxy> {
    (0..4)
        .map(|i| {
            let meta = harvester_proxypool::ProxyMeta { id: Some(format!("p{i}")), ..Default::default() };
            Proxy::with_meta(&format!("http://127.0.0.1:{}", 9000 + i), meta).expect("a proxy")
        })
        .collect()
}

fn named(e: &ConfigError, prefixes: &[&str]) -> bool {
    prefixes.iter().any(|prefix| e.field.starts_with(prefix))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn pool(mut p in picks(40)) {
        let config = pool_config(&mut p);
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().expect("runtime");
        let _clock = rt.enter();
        match ProxyPool::builder().config(config).build() {
            Ok(pool) => {
                for proxy in proxies() {
                    pool.add(proxy).expect("a new proxy");
                }
                exercise(&pool, &rt);
            }
            Err(e) => prop_assert!(named(&e, &["health.", "ejection.", "bans.", "evidence."]), "{e}"),
        }
    }

    #[test]
    fn tail_control(mut p in picks(40)) {
        let (a, h) = (AdaptiveTimeout::default(), Hedging::default());
        let adaptive =
            AdaptiveTimeout { quantile: p.float(a.quantile), multiplier: p.float(a.multiplier), min: p.duration(a.min) };
        let latency = p.coin().then(|| p.duration(Duration::from_millis(300)));
        match adaptive.validate() {
            Ok(()) => {
                let ceiling = Duration::from_secs(30);
                prop_assert!(adaptive.timeout(latency, ceiling) <= ceiling);
            }
            Err(e) => prop_assert!(named(&e, &["client.adaptive_timeout."]), "{e}"),
        }
        let hedging = Hedging {
            quantile: p.float(h.quantile),
            min_delay: p.duration(h.min_delay),
            max_extra: p.float(h.max_extra),
            burst: p.count(h.burst),
            max_hedges: p.count(h.max_hedges),
        };
        if let Err(e) = hedging.validate() {
            prop_assert!(named(&e, &["client.hedging."]), "{e}");
        }
    }

    #[test]
    fn health_check(mut p in picks(40)) {
        let d = HealthCheckConfig { test_urls: vec!["http://127.0.0.1:9/".into()], ..HealthCheckConfig::default() };
        let config = HealthCheckConfig {
            interval: p.duration(d.interval),
            timeout: p.duration(d.timeout),
            concurrency: p.size(d.concurrency),
            ..d
        };
        if let Err(e) = config.validate() {
            prop_assert!(named(&e, &["health_check."]), "{e}");
            let refused = [config.interval, config.timeout].iter().any(|d| d.is_zero() || *d > Duration::from_secs(365 * 86_400))
                || !(1..=HealthCheckConfig::MAX_CONCURRENCY).contains(&config.concurrency);
            prop_assert!(refused, "{e}");
        }
    }

    #[cfg(feature = "redis")]
    #[test]
    fn shared_state(mut p in picks(40)) {
        let d = SharedStateConfig::default();
        let config = SharedStateConfig {
            registry_ttl: p.duration(d.registry_ttl),
            heartbeat_interval: p.duration(d.heartbeat_interval),
            sync_interval: p.duration(d.sync_interval),
            removal_grace: p.duration(d.removal_grace),
            poll_interval: p.duration(d.poll_interval),
            retry_base_delay: p.duration(d.retry_base_delay),
            retry_max_delay: p.duration(d.retry_max_delay),
            max_pending: p.size(d.max_pending),
            max_polled: p.size(d.max_polled),
            ..SharedStateConfig::default()
        };
        if let Err(e) = config.validate() {
            prop_assert!(named(&e, &["shared."]), "{e}");
        }
    }
}

#[test]
fn the_settings_the_adversarial_pass_broke_are_refused_by_name() {
    let refused = |config: PoolConfig| config.validate().map_err(|e| e.field.into_owned());
    let mut config = PoolConfig::default();
    config.ejection.max_ejection = Duration::MAX;
    assert_eq!(refused(config), Err("ejection.max_ejection".to_owned()));
    let mut config = PoolConfig::default();
    config.bans.max_retry_after = Duration::MAX;
    assert_eq!(refused(config), Err("bans.max_retry_after".to_owned()));
    let mut config = PoolConfig::default();
    config.evidence.max_sites = usize::MAX;
    assert_eq!(refused(config), Err("evidence.max_sites".to_owned()));
    let huge = AdaptiveTimeout { multiplier: 1e308, ..AdaptiveTimeout::default() };
    assert_eq!(huge.validate().map_err(|e| e.field.into_owned()), Err("client.adaptive_timeout.multiplier".to_owned()));
}
