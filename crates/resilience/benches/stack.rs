//! What the whole resilience stack costs per call when nothing fails: rate limit, circuit
//! breaker, retry (with its budget), bulkhead and timeout, built with
//! `tower::ServiceBuilder` over a no-op service, against the bare no-op service and
//! against tower's own layers for the parts tower has (concurrency limit, retry, timeout),
//! in the same run. DESIGN.md's target: ≤ 250 ns of overhead per call (Polly v8's
//! multi-strategy pipeline: 766 ns).
//!
//! ```text
//! cargo bench -p harvester-resilience --bench stack
//! ```
//!
//! Each call: `poll_ready`, `call`, one poll of the response future (every layer answers
//! at once), drop. After criterion's report the bench prints this run's means and the overhead.

#[path = "support/mod.rs"]
mod support;

use std::convert::Infallible;
use std::future::ready;
use std::time::Duration;

use harvester_resilience::breaker::{BreakerConfig, CircuitBreakerLayer};
use harvester_resilience::bulkhead::{BulkheadConfig, BulkheadLayer};
use harvester_resilience::rate_limit::{Quota, RateLimitLayer};
use harvester_resilience::retry::{RetryConfig, RetryLayer};
use harvester_resilience::timeout::TimeoutLayer;
use support::{answers_at_once, begin_run, bench_calls, criterion_dir, mean_ns, print_figure, quick_criterion};
use tower::{ServiceBuilder, service_fn};

fn main() {
    begin_run();
    let mut c = quick_criterion();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
    let _context = runtime.enter();
    let noop = service_fn(|request: u64| ready(Ok::<_, Infallible>(request)));

    let mut ours = ServiceBuilder::new()
        .layer(RateLimitLayer::direct(
            Quota::per_second(1_000_000_000).and_then(|q| q.allow_burst(1_000_000_000)).expect("valid quota"),
        ))
        .layer(CircuitBreakerLayer::new(BreakerConfig::default()).expect("valid config"))
        .layer(RetryLayer::new(RetryConfig::default()).expect("valid config"))
        .layer(BulkheadLayer::new(BulkheadConfig::default()).expect("valid config"))
        .layer(TimeoutLayer::new(Duration::from_secs(30)))
        .service(noop);
    let mut towers = ServiceBuilder::new()
        .concurrency_limit(50)
        .layer(tower::retry::RetryLayer::new(NeverRetry))
        .timeout(Duration::from_secs(30))
        .service(noop);

    // A stack that refused or deferred calls would be timed doing nothing.
    assert!(answers_at_once(&mut ours, 0), "ours: the stack must answer a call at once");
    assert!(answers_at_once(&mut towers, 0), "tower: the stack must answer a call at once");
    bench_calls(&mut c, "stack", "bare", noop);
    bench_calls(&mut c, "stack", "ours_full", ours);
    bench_calls(&mut c, "stack", "tower_partial", towers);
    c.final_summary();

    let Some(dir) = criterion_dir() else { return };
    let mean = |function| mean_ns(&dir, "stack", function);
    let (Some(bare), Some(ours), Some(tower)) = (mean("bare"), mean("ours_full"), mean("tower_partial")) else {
        return;
    };
    let (bare, ours, tower) = (bare.value, ours.value, tower.value);
    println!("\nstack, mean ns per call:");
    println!("  bare no-op service                                       {bare:7.1} ns");
    println!(
        "  ours: rate limit + breaker + retry + bulkhead + timeout  {ours:7.1} ns  (overhead {:.1} ns)",
        ours - bare
    );
    println!(
        "  tower: concurrency limit + retry + timeout               {tower:7.1} ns  (overhead {:.1} ns)",
        tower - bare
    );
    let overhead = |function| mean(function).zip(mean("bare")).map(|(e, bare)| e.minus(bare));
    print_figure(
        "stack",
        "ours_full, overhead over bare",
        overhead("ours_full"),
        overhead("tower_partial").map(|e| ("tower_partial, overhead over bare", e)),
        "ns",
        "<=250",
    );
    print_figure("stack", "bare no-op service", mean("bare"), None, "ns", "-");
}

/// tower's retry policy that never retries, to stand beside ours when nothing fails.
#[derive(Clone)]
struct NeverRetry;

impl<E> tower::retry::Policy<u64, u64, E> for NeverRetry {
    type Future = std::future::Ready<()>;

    fn retry(&mut self, _: &mut u64, _: &mut Result<u64, E>) -> Option<Self::Future> {
        None
    }

    fn clone_request(&mut self, request: &u64) -> Option<u64> {
        Some(*request)
    }
}
