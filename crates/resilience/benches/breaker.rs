//! What a closed circuit breaker costs per call, next to failsafe and tower-resilience in the
//! same run (DESIGN.md target: ≤ 30 ns; anchors failsafe 111–121 ns, tower-resilience
//! 313–350 ns).
//!
//! ```text
//! cargo bench -p harvester-resilience --bench breaker
//! ```
//!
//! Every function in the group `breaker_closed` is one call on a closed breaker with the
//! default configuration (count window of 100):
//! - `ours_raw`: `Breaker::try_acquire` + `Permit::record(success)`, the state machine alone;
//! - `ours_raw_time_window`: the same with a 30 s / 10 bucket time window (reads the clock);
//! - `ours_service`: `poll_ready` + `call` + polling the response future of
//!   `CircuitBreakerLayer` around a ready no-op service (adds the `Arc` for the future and the
//!   two clock reads that time the call for slow-call detection);
//! - `ours_service_live_metrics`: the same with a metrics recorder whose counters are atomics,
//!   installed before the breaker is built (without one, counter handles are no-ops);
//! - `ours_keyed_service_1k_hosts`: the per-host layer, cycling over 1024 hosts;
//! - `failsafe`: `failsafe::Config::new().build()` then `CircuitBreaker::call(|| Ok(()))`;
//! - `tower_resilience`: its `CircuitBreakerLayer` (default builder) around the same no-op
//!   service, driven like ours with `now_or_never`.
//!
//! After criterion's report, this run's means (with their confidence intervals) are read back
//! from criterion's estimates and printed as figures, each against the anchor doing the same
//! work: `ours_raw` against `failsafe` (a state machine called directly), `ours_service`
//! against `tower_resilience` (a tower service, `poll_ready` + `call` + the future). Timings are short on purpose: the machine has 2 shared cores.

#[path = "support/mod.rs"]
mod support;

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use failsafe::CircuitBreaker as _;
use futures::FutureExt;
use harvester_resilience::breaker::{
    Breaker, BreakerConfig, CallOutcome, CircuitBreakerLayer, KeyedCircuitBreakerLayer, SlidingWindow,
};
use support::{AtomicRecorder, begin_run, criterion_dir, mean_ns, print_figure};
use tower::{Layer, Service, ServiceExt, service_fn};

fn no_op<R>(_: R) -> Ready<Result<(), Infallible>> {
    ready(Ok(()))
}

/// `poll_ready` (through `ServiceExt::ready`) then `call`, both completing at once.
fn call_once<S: Service<R>, R>(service: &mut S, request: R) -> Option<Result<S::Response, S::Error>> {
    match service.ready().now_or_never()? {
        Ok(ready) => ready.call(request).now_or_never(),
        Err(error) => Some(Err(error)),
    }
}

fn closed(c: &mut Criterion) {
    let mut group = c.benchmark_group("breaker_closed");
    group.warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_millis(1500));

    let breaker = Breaker::new(BreakerConfig::default()).expect("valid config");
    group.bench_function("ours_raw", |b| {
        b.iter(|| {
            let permit = breaker.try_acquire().expect("closed");
            permit.record(black_box(CallOutcome::success(Duration::ZERO)));
        })
    });

    let time_window = BreakerConfig {
        window: SlidingWindow::Time { span: Duration::from_secs(30), buckets: 10 },
        ..BreakerConfig::default()
    };
    let breaker = Breaker::new(time_window).expect("valid config");
    group.bench_function("ours_raw_time_window", |b| {
        b.iter(|| {
            let permit = breaker.try_acquire().expect("closed");
            permit.record(black_box(CallOutcome::success(Duration::ZERO)));
        })
    });

    let mut service = service_fn(no_op::<()>);
    group.bench_function("baseline_no_op_service", |b| b.iter(|| black_box(call_once(&mut service, ()))));

    let layer = CircuitBreakerLayer::new(BreakerConfig::default()).expect("valid config");
    let mut service = layer.layer(service_fn(no_op::<()>));
    group.bench_function("ours_service", |b| b.iter(|| black_box(call_once(&mut service, ()))));

    let untimed = BreakerConfig { slow_call_detection: false, ..BreakerConfig::default() };
    let layer = CircuitBreakerLayer::new(untimed).expect("valid config");
    let mut service = layer.layer(service_fn(no_op::<()>));
    group.bench_function("ours_service_untimed", |b| b.iter(|| black_box(call_once(&mut service, ()))));

    let layer = metrics::with_local_recorder(&AtomicRecorder, || CircuitBreakerLayer::new(BreakerConfig::default()))
        .expect("valid config");
    let mut service = layer.layer(service_fn(no_op::<()>));
    group.bench_function("ours_service_live_metrics", |b| b.iter(|| black_box(call_once(&mut service, ()))));

    let layer = KeyedCircuitBreakerLayer::per_host(BreakerConfig::default()).expect("valid config");
    let mut service = layer.layer(service_fn(no_op::<http::Request<()>>));
    let hosts: Vec<http::Uri> =
        (0..1024).map(|i| format!("https://host-{i}.example/").parse().expect("valid uri")).collect();
    let mut next = 0;
    group.bench_function("ours_keyed_service_1k_hosts", |b| {
        b.iter(|| {
            next = (next + 1) % hosts.len();
            let mut request = http::Request::new(());
            *request.uri_mut() = hosts[next].clone();
            black_box(call_once(&mut service, request))
        })
    });

    let failsafe = failsafe::Config::new().build();
    group.bench_function("failsafe", |b| b.iter(|| black_box(failsafe.call(|| Ok::<(), ()>(())))));

    let layer = tower_resilience::circuitbreaker::CircuitBreakerLayer::builder().build().expect("valid config");
    let mut service = layer.layer(service_fn(no_op::<()>));
    group.bench_function("tower_resilience", |b| b.iter(|| black_box(call_once(&mut service, ()))));

    group.finish();
}

/// Each function's mean against the anchor doing the same work, for `scripts/bench.sh`:
/// a state machine against a state machine (ours raw, failsafe's `call`), a tower service
/// against a tower service (ours, tower-resilience's layer, both with their defaults).
fn print_figures() {
    let Some(dir) = criterion_dir() else { return };
    let group = "breaker_closed";
    let mean = |function| mean_ns(&dir, group, function);
    let pairs: [(&str, Option<&str>, &str); 7] = [
        // DESIGN's ≤ 30 ns is for the state machine with the default configuration.
        ("ours_raw", Some("failsafe"), "<=30"),
        ("ours_raw_time_window", Some("failsafe"), "-"),
        // Service against service: both layers with their defaults (ours times calls for
        // slow-call detection by default; `_untimed` turns that off).
        ("ours_service", Some("tower_resilience"), "-"),
        ("ours_service_untimed", Some("tower_resilience"), "-"),
        ("ours_service_live_metrics", Some("ours_service"), "-"),
        ("ours_keyed_service_1k_hosts", None, "-"),
        ("baseline_no_op_service", None, "-"),
    ];
    for (ours, anchor, target) in pairs {
        let anchor = anchor.and_then(|name| mean(name).map(|e| (name, e)));
        print_figure(group, ours, mean(ours), anchor, "ns", target);
    }
}

fn main() {
    begin_run();
    let mut c = Criterion::default().configure_from_args();
    closed(&mut c);
    c.final_summary();
    print_figures();
}
