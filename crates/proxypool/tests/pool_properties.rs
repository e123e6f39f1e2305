//! Invariants that hold after any sequence of pool operations.

use std::time::Duration;

use harvester_proxypool::balance::{
    AdaptiveQuality, LeastConnections, LeastLatency, PowerOfTwoChoices, RoundRobin, SmoothWeightedRoundRobin, Sticky,
};
use harvester_proxypool::{
    Balancer, Lease, Outcome, PoolConfig, Proxy, ProxyMeta, ProxyPool, RequestContext, Requirements,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Acquire { host: u8, sticky: Option<u8> },
    Report { lease: usize, outcome: u8, millis: u16 },
    Drop { lease: usize },
    Add { id: u8, max_sessions: Option<u8> },
    Remove { id: u8 },
    Advance { secs: u16 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..3, proptest::option::of(0u8..5)).prop_map(|(host, sticky)| Op::Acquire { host, sticky }),
        3 => (0usize..64, 0u8..4, 0u16..5000).prop_map(|(lease, outcome, millis)| Op::Report { lease, outcome, millis }),
        1 => (0usize..64).prop_map(|lease| Op::Drop { lease }),
        1 => (0u8..12, proptest::option::of(1u8..3)).prop_map(|(id, max_sessions)| Op::Add { id, max_sessions }),
        1 => (0u8..12).prop_map(|id| Op::Remove { id }),
        1 => (1u16..400).prop_map(|secs| Op::Advance { secs }),
    ]
}

fn balancer(which: u8) -> Box<dyn Balancer> {
    match which % 7 {
        0 => Box::new(RoundRobin::new()),
        1 => Box::new(SmoothWeightedRoundRobin::new()),
        2 => Box::new(LeastConnections::new()),
        3 => Box::new(LeastLatency::new()),
        4 => Box::new(PowerOfTwoChoices::new()),
        5 => Box::new(AdaptiveQuality::new()),
        _ => Box::new(Sticky::new()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn in_flight_counts_exactly_the_live_leases_and_ejections_respect_the_cap(
        which in 0u8..7,
        ops in prop::collection::vec(op(), 1..120),
    ) {
        // The pool's clock is tokio's: a paused runtime lets the test move time, so that
        // ejections and bans run out in the middle of the sequence.
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().expect("runtime");
        let _clock = rt.enter();
        let pool = ProxyPool::builder().balancer(balancer(which)).config(PoolConfig::default()).build().expect("valid");
        let mut leases: Vec<Lease> = Vec::new();
        for op in ops {
            match op {
                Op::Acquire { host, sticky } => {
                    let mut req = RequestContext::new().target_host(&format!("h{host}.example"));
                    if let Some(key) = sticky {
                        req = req.sticky_key(format!("k{key}"));
                    }
                    if let Ok(lease) = pool.acquire(&Requirements::ANY, &req) {
                        leases.push(lease);
                    }
                }
                Op::Report { lease, outcome, millis } if !leases.is_empty() => {
                    let lease = leases.swap_remove(lease % leases.len());
                    let latency = Duration::from_millis(u64::from(millis));
                    lease.report(match outcome {
                        0 => Outcome::success(latency),
                        1 => Outcome::network_failure(latency),
                        2 => Outcome::timeout(latency),
                        _ => Outcome::ban(latency, None),
                    });
                }
                Op::Drop { lease } if !leases.is_empty() => {
                    drop(leases.swap_remove(lease % leases.len()));
                }
                Op::Add { id, max_sessions } => {
                    let meta = ProxyMeta { id: Some(format!("p{id}")), max_sessions: max_sessions.map(u32::from), ..Default::default() };
                    let _ = pool.add(Proxy::with_meta("http://127.0.0.1:9", meta).expect("valid"));
                }
                Op::Remove { id } => {
                    let _ = pool.remove(&format!("p{id}").as_str().into());
                }
                Op::Advance { secs } => rt.block_on(tokio::time::advance(Duration::from_secs(u64::from(secs)))),
                _ => {}
            }
            let stats = pool.stats();
            // A lease on a proxy that was removed (even if its id came back since) no longer
            // counts in the pool: it holds the old proxy's state.
            let in_pool = leases
                .iter()
                .filter(|l| pool.get(l.id().as_str()).is_some_and(|p| std::sync::Arc::ptr_eq(&p, l.proxy_arc())))
                .count();
            prop_assert_eq!(stats.in_flight, in_pool as u64);
            // The cap, or past it (while other proxies answer) as far as panic mode allows.
            let e = &pool.config().ejection;
            let cap = ((stats.size as f64 * e.max_ejected_fraction).floor() as usize).max(1);
            let unpanicked = (0..=stats.size).rev().find(|k| (stats.size - k) as f64 >= e.panic_threshold * stats.size as f64);
            let bound = cap.max(unpanicked.unwrap_or(0));
            prop_assert!(stats.ejected <= bound, "{} ejected of {} exceeds the bound {}", stats.ejected, stats.size, bound);
            for p in stats.proxies.iter().filter(|p| p.ejected_for.is_some()) {
                prop_assert!(p.ejected_for <= Some(pool.config().ejection.max_ejection), "{} ejected too long", p.id);
            }
            for p in &stats.proxies {
                if let Some(max) = pool.get(p.id.as_str()).and_then(|x| x.meta().max_sessions) {
                    prop_assert!(p.in_flight <= max, "{} has {} in flight over its max {}", p.id, p.in_flight, max);
                }
            }
        }
        drop(leases);
        prop_assert_eq!(pool.stats().in_flight, 0);
    }
}
