//! What one uncontended call through the bulkhead costs, next to tower's
//! `ConcurrencyLimitLayer` over the same no-op service, measured in the same run.
//!
//! ```text
//! cargo bench -p harvester-resilience --bench bulkhead
//! ```
//!
//! Each iteration is a whole call as a caller makes it: `poll_ready`, `call`, the response
//! future pinned and polled once where it lies, as an executor does (the no-op service answers
//! at once, so no runtime is needed), then dropped, which gives the place back. Functions of the
//! `bulkhead/call` group:
//! - `bare`: the no-op service alone (the floor);
//! - `tower_concurrency_limit`: tower's layer, limit 50;
//! - `ours`: our bulkhead, one partition of 50;
//! - `ours_partitioned`: the seed's three partitions, chosen per request by a closure.
//!
//! The means are read back from criterion's estimates and printed with the ratio ours /
//! tower. Timings are short on purpose: the machine has 2 shared cores.

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use harvester_resilience::BoxError;
use harvester_resilience::bulkhead::{BulkheadConfig, BulkheadLayer, PartitionConfig};
use support::{answers_at_once, begin_run, criterion_dir, mean_ns, print_figure};
use tower::limit::ConcurrencyLimitLayer;
use tower::{Layer, service_fn};

fn bench_call(c: &mut Criterion) {
    let mut group = c.benchmark_group("bulkhead/call");
    let noop = service_fn(|_: &'static str| std::future::ready(Ok::<_, BoxError>(())));

    let mut bare = noop;
    group.bench_function("bare", |b| b.iter(|| black_box(answers_at_once(&mut bare, "regular"))));

    let mut tower = ConcurrencyLimitLayer::new(50).layer(noop);
    group.bench_function("tower_concurrency_limit", |b| b.iter(|| black_box(answers_at_once(&mut tower, "regular"))));

    let single = BulkheadConfig::single(PartitionConfig::new(50));
    let mut ours = BulkheadLayer::new(single).expect("valid config").layer(noop);
    group.bench_function("ours", |b| b.iter(|| black_box(answers_at_once(&mut ours, "regular"))));

    let layer = BulkheadLayer::partitioned(BulkheadConfig::default(), |name: &&'static str| Some(*name));
    let mut partitioned = layer.expect("valid config").layer(noop);
    group.bench_function("ours_partitioned", |b| b.iter(|| black_box(answers_at_once(&mut partitioned, "regular"))));
    group.finish();
}

fn print_ratios() {
    let Some(dir) = criterion_dir() else { return };
    let group = "bulkhead/call";
    let Some(tower) = mean_ns(&dir, group, "tower_concurrency_limit") else { return };
    println!("\nmean ns per call; ratio = ours / tower ConcurrencyLimit (same run):");
    for function in ["bare", "tower_concurrency_limit", "ours", "ours_partitioned"] {
        if let Some(ns) = mean_ns(&dir, group, function) {
            println!("  {function:<24} {:>6.1} ns   ratio {:.2}", ns.value, ns.value / tower.value);
        }
    }
    let anchor = Some(("tower_concurrency_limit", tower));
    for function in ["ours", "ours_partitioned"] {
        print_figure(group, function, mean_ns(&dir, group, function), anchor, "ns", "-");
    }
    print_figure(group, "bare", mean_ns(&dir, group, "bare"), None, "ns", "-");
}

fn main() {
    begin_run();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1500))
        .configure_from_args();
    bench_call(&mut c);
    c.final_summary();
    print_ratios();
}
