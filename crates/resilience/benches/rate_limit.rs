//! What one rate-limit decision costs, next to governor 0.10 measured in the same run.
//!
//! ```text
//! cargo bench -p harvester-resilience --bench rate_limit
//! ```
//!
//! Groups (ns per check; quotas high enough that checks succeed, so both sides do the
//! full compare-and-swap):
//! - `rate_limit/clock`: one reading of each clock: ours reads tokio's (`std::time::Instant`,
//!   a vDSO call), governor reads `quanta` (the TSC). The difference is in every check.
//! - `rate_limit/direct`: one unkeyed limiter; `ours` vs `governor` (`RateLimiter::direct`);
//!   `ours_quanta_clock` is ours reading governor's clock through the [`Clock`] seam, so
//!   that the two limiters are compared on the same time source.
//! - `rate_limit/keyed_1024`: 1024 `String` keys taken round robin; `ours` vs `governor`
//!   (`RateLimiter::keyed`: DashMap and std's SipHash, as ours); `ours_quanta_clock` as
//!   above; `ours_host_key` keys by [`HostKey`].
//! - `rate_limit/service`: one call through `RateLimitLayer` over a no-op service
//!   (`poll_ready`, `call`, the response pinned and polled once where it lies, as an executor
//!   does); `+recorder` with a counting `metrics` recorder installed when the layer is built,
//!   to show what the metric handles cost on the hot path.
//!
//! After the groups, the means are read back from criterion's estimates and printed with
//! the ratios to governor (the DESIGN.md target: keyed ≤ governor's keyed check). Timings
//! are short on purpose: the machine has 2 shared cores.

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::Duration;

use criterion::Criterion;
use governor::clock::{Clock as _, QuantaClock, QuantaInstant, Reference as _};
use harvester_resilience::BoxError;
use harvester_resilience::rate_limit::{
    Clock, HostKey, KeyedRateLimiter, Quota, RateLimitLayer, RateLimiter, TokioClock,
};
use support::{AtomicRecorder, answers_at_once, begin_run, criterion_dir, mean_ns, print_figure};
use tower::{Layer, service_fn};

const KEYS: usize = 1024;
const HIGH_RATE: u32 = 1_000_000_000;

fn ours_quota() -> Quota {
    Quota::per_second(HIGH_RATE).expect("valid quota")
}

fn governor_quota() -> governor::Quota {
    governor::Quota::per_second(NonZeroU32::new(HIGH_RATE).expect("non-zero"))
}

/// governor's clock behind our [`Clock`] seam.
struct Quanta {
    clock: QuantaClock,
    origin: QuantaInstant,
}

impl Quanta {
    fn new() -> Quanta {
        let clock = QuantaClock::default();
        let origin = clock.now();
        Quanta { clock, origin }
    }
}

impl Clock for Quanta {
    #[inline]
    fn now_nanos(&self) -> u64 {
        self.clock.now().duration_since(self.origin).as_u64()
    }
}

fn bench_clock(c: &mut Criterion) {
    let mut group = c.benchmark_group("rate_limit/clock");
    let tokio = TokioClock::new();
    group.bench_function("ours_tokio", |b| b.iter(|| black_box(tokio.now_nanos())));
    let quanta = Quanta::new();
    group.bench_function("governor_quanta", |b| b.iter(|| black_box(quanta.now_nanos())));
    group.finish();
}

fn bench_direct(c: &mut Criterion) {
    let mut group = c.benchmark_group("rate_limit/direct");
    let ours = RateLimiter::new(ours_quota());
    group.bench_function("ours", |b| b.iter(|| black_box(ours.check().is_ok())));
    let ours_quanta = RateLimiter::with_clock(ours_quota(), Quanta::new());
    group.bench_function("ours_quanta_clock", |b| b.iter(|| black_box(ours_quanta.check().is_ok())));
    let governor = governor::RateLimiter::direct(governor_quota());
    group.bench_function("governor", |b| b.iter(|| black_box(governor.check().is_ok())));
    group.finish();
}

fn bench_keyed(c: &mut Criterion) {
    let mut group = c.benchmark_group("rate_limit/keyed_1024");
    let keys: Vec<String> = (0..KEYS).map(|i| format!("host-{i}.example.com")).collect();

    let ours = KeyedRateLimiter::<String>::new(ours_quota());
    let ours_quanta = KeyedRateLimiter::<String, Quanta>::with_clock(ours_quota(), Quanta::new());
    let governor = governor::RateLimiter::keyed(governor_quota());
    for key in &keys {
        let _ = ours.check_key(key.as_str());
        let _ = ours_quanta.check_key(key.as_str());
        let _ = governor.check_key(key);
    }

    let mut i = 0;
    group.bench_function("ours", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(ours.check_key(keys[i].as_str()).is_ok())
        })
    });
    let mut i = 0;
    group.bench_function("ours_quanta_clock", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(ours_quanta.check_key(keys[i].as_str()).is_ok())
        })
    });
    let mut i = 0;
    group.bench_function("governor", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(governor.check_key(&keys[i]).is_ok())
        })
    });

    let host_keys: Vec<HostKey> = keys.iter().map(|k| HostKey::new(k)).collect();
    let by_host = KeyedRateLimiter::<HostKey>::new(ours_quota());
    let mut i = 0;
    group.bench_function("ours_host_key", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(by_host.check_key(&host_keys[i]).is_ok())
        })
    });
    group.finish();
}

fn bench_service(c: &mut Criterion) {
    let mut group = c.benchmark_group("rate_limit/service");
    let noop = service_fn(|_: ()| std::future::ready(Ok::<_, BoxError>(())));

    let mut plain = RateLimitLayer::direct(ours_quota()).layer(noop);
    group.bench_function("ours", |b| b.iter(|| black_box(answers_at_once(&mut plain, ()))));

    let recorder = AtomicRecorder;
    let layer = metrics::with_local_recorder(&recorder, || RateLimitLayer::direct(ours_quota()).named("bench"));
    let mut recorded = layer.layer(noop);
    group.bench_function("ours+recorder", |b| b.iter(|| black_box(answers_at_once(&mut recorded, ()))));

    let mut keyed = RateLimitLayer::keyed(ours_quota(), |req: &u32| Some(*req))
        .layer(service_fn(|_: u32| std::future::ready(Ok::<_, BoxError>(()))));
    let mut i = 0u32;
    group.bench_function("ours_keyed_1024", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS as u32;
            black_box(answers_at_once(&mut keyed, i))
        })
    });
    group.finish();
}

/// (group, ours, governor's, DESIGN.md's target) for each comparison with governor.
const AGAINST_GOVERNOR: [(&str, &str, &str, &str); 6] = [
    ("rate_limit/clock", "ours_tokio", "governor_quanta", "-"),
    ("rate_limit/direct", "ours", "governor", "-"),
    ("rate_limit/direct", "ours_quanta_clock", "governor", "-"),
    ("rate_limit/keyed_1024", "ours", "governor", "ratio<=1"),
    ("rate_limit/keyed_1024", "ours_quanta_clock", "governor", "ratio<=1"),
    ("rate_limit/keyed_1024", "ours_host_key", "governor", "ratio<=1"),
];

/// The functions of `rate_limit/service`, which has no anchor.
const SERVICE: [&str; 3] = ["ours", "ours+recorder", "ours_keyed_1024"];

/// The same means as figures, for `scripts/bench.sh`.
fn print_figures() {
    let Some(dir) = criterion_dir() else { return };
    let mean = |group, function| mean_ns(&dir, group, function);
    for (group, ours, theirs, target) in AGAINST_GOVERNOR {
        print_figure(group, ours, mean(group, ours), mean(group, theirs).map(|e| (theirs, e)), "ns", target);
    }
    for function in SERVICE {
        print_figure("rate_limit/service", function, mean("rate_limit/service", function), None, "ns", "-");
    }
}

fn main() {
    begin_run();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1500))
        .configure_from_args();
    bench_clock(&mut c);
    bench_direct(&mut c);
    bench_keyed(&mut c);
    bench_service(&mut c);
    c.final_summary();
    print_figures();
}
