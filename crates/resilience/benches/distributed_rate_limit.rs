//! Distributed GCRA checks per second from one process against a real redis-server on
//! loopback, next to a single `INCR` per call (the cheapest useful command) at the same
//! concurrency, in the same run. DESIGN.md's target: ≥ 100 k checks/s per process
//! (published Lua GCRA: 129–137 k/s).
//!
//! ```text
//! cargo bench -p harvester-resilience --features redis --bench distributed_rate_limit
//! ```
//!
//! The bench starts its own redis-server on a free port of 127.0.0.1 (through harvester-testbed's support; it skips, saying
//! so, when `redis-server` is not installed). Every function keeps 64 calls in flight on
//! one multiplexed connection (`ConnectionManager`, pipelined), from one task:
//! - `incr`: `INCR` of one key, the baseline;
//! - `check`: [`DistributedRateLimiter::check`] on one key (EVALSHA of the GCRA script);
//! - `check_keyed_1024`: [`DistributedKeyedRateLimiter::check_key`] over 1024 host keys.
//!
//! Quotas are high enough that every check is admitted, so each one is a round trip (a
//! refused key would be answered by the deny-cache without one). After criterion's report
//! the bench prints checks/s and the ratio to `INCR`.

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use futures::StreamExt;
use harvester_resilience::distributed::{
    DistributedKeyedRateLimiter, DistributedRateLimiter, RedisConfig, RedisConnection,
};
use harvester_resilience::rate_limit::{HostKey, Quota};
use harvester_testbed::support::{Redis, find_program};
use support::{Estimate, begin_run, criterion_dir, mean_ns, print_figure, print_skipped, quick_criterion};

const IN_FLIGHT: usize = 64;
const KEYS: usize = 1024;

/// Runs `iters` calls of `call`, `IN_FLIGHT` at a time, on `runtime`; the time taken.
fn run<F, Fut>(runtime: &tokio::runtime::Runtime, iters: u64, call: F) -> Duration
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = bool>,
{
    runtime.block_on(async {
        let start = Instant::now();
        let ok = futures::stream::iter(0..iters)
            .map(&call)
            .buffer_unordered(IN_FLIGHT)
            .fold(0u64, |ok, answered| async move { ok + u64::from(answered) })
            .await;
        let elapsed = start.elapsed();
        assert_eq!(ok, iters, "every call must succeed (Redis up, quota never reached)");
        elapsed
    })
}

fn main() {
    begin_run();
    if find_program("redis-server").is_none() {
        println!("distributed_rate_limit: redis-server not found; skipped");
        print_skipped("distributed_rate_limit", "redis-server not found");
        return;
    }
    let server = Redis::start();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let config = RedisConfig { url: server.url(), ..Default::default() };
    let connection = runtime.block_on(RedisConnection::connect(&config)).expect("connect to the bench's redis-server");
    let baseline = runtime
        .block_on(async { redis::Client::open(config.url.as_str())?.get_connection_manager().await })
        .expect("baseline connection");
    let quota = Quota::per_second(1_000_000_000).and_then(|q| q.allow_burst(1_000_000_000)).expect("valid quota");
    let direct = DistributedRateLimiter::new(connection.clone(), "bench", quota);
    let keyed = DistributedKeyedRateLimiter::<HostKey>::new(connection, "bench-hosts", quota);
    let hosts: Vec<HostKey> = (0..KEYS).map(|i| HostKey::new(&format!("host-{i}.example.com"))).collect();

    let mut c: Criterion = quick_criterion();
    let mut group = c.benchmark_group("distributed_rate_limit");
    group.throughput(Throughput::Elements(1));
    group.bench_function("incr", |b| {
        b.iter_custom(|iters| {
            run(&runtime, iters, |_| {
                let mut connection = baseline.clone();
                async move { redis::cmd("INCR").arg("bench-incr").query_async::<i64>(&mut connection).await.is_ok() }
            })
        })
    });
    group.bench_function("check", |b| {
        b.iter_custom(|iters| {
            run(&runtime, iters, |_| {
                let direct = direct.clone();
                async move { black_box(direct.check().await).is_ok() }
            })
        })
    });
    group.bench_function("check_keyed_1024", |b| {
        b.iter_custom(|iters| {
            run(&runtime, iters, |i| {
                let keyed = keyed.clone();
                let host = hosts[i as usize % KEYS].clone();
                async move { black_box(keyed.check_key(&host).await).is_ok() }
            })
        })
    });
    group.finish();
    c.final_summary();

    let Some(dir) = criterion_dir() else { return };
    let per_second = |id: &str| mean_ns(&dir, "distributed_rate_limit", id).map(|e: Estimate| e.map(|ns| 1e9 / ns));
    let incr = per_second("incr");
    for id in ["check", "check_keyed_1024"] {
        print_figure("distributed_rate_limit", id, per_second(id), incr.map(|e| ("incr", e)), "checks/s", ">=100000");
    }
    drop(server);
}
