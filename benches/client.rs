//! Requests per second through `ProxyClient` against bare reqwest, both through the same
//! real tinyproxy on loopback to the same in-process target, at the same concurrency, in
//! the same run. The ratio (ours / bare) is what DESIGN.md's ≥ 0.9× target is about:
//! what the pool, the lease, the per-proxy client cache and the classifier cost on top
//! of the HTTP work itself.
//!
//! ```text
//! cargo bench -p harvester --bench client
//! python3 scripts/bench-summary.py
//! ```
//!
//! Each iteration sends `iters` GETs, 16 at a time; criterion reports time per request.
//! After its report the bench prints requests/s (all requests over their time) and the ratio, also
//! as `FIGURE` lines for `scripts/bench.sh`. Without tinyproxy installed it skips, saying so.

#[path = "support/figures.rs"]
mod figures;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use futures::StreamExt;
use harvester::proxypool::{Proxy, ProxyClient, ProxyPool};
use harvester_testbed::TargetServer;
use harvester_testbed::support::{Tinyproxy, find_program};

const CONCURRENCY: usize = 16;

/// Requests sent and the time they took, over every call criterion made (warm-up included), by
/// function. Whole totals, not a median of samples: warm-up's first samples send one or two
/// requests, far below the concurrency, and would count as much as the longest.
type Totals = Mutex<BTreeMap<&'static str, (u64, Duration)>>;

fn record(totals: &Totals, id: &'static str, iters: u64, elapsed: Duration) -> Duration {
    let mut totals = totals.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let (requests, time) = totals.entry(id).or_default();
    *requests += iters;
    *time += elapsed;
    elapsed
}

fn bench_client(c: &mut Criterion, totals: &Totals) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let target = rt.block_on(TargetServer::start()).expect("target starts");
    let tinyproxy = Tinyproxy::start();
    let url = format!("{}/", target.url());

    // Our one TLS stack; reqwest has no provider of its own in this build.
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    // tinyproxy closes every client connection after one request (without saying so), so
    // keeping connections alive gains nothing and only races: both clients open a fresh
    // connection per request.
    let bare = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(tinyproxy.url()).expect("valid proxy URL"))
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let pool = ProxyPool::new([Proxy::parse(&tinyproxy.url()).expect("valid proxy URL")]).expect("pool");
    let ours = ProxyClient::builder(pool).max_idle_per_proxy(0).build().expect("client");

    let mut group = c.benchmark_group("through_tinyproxy");
    group.throughput(Throughput::Elements(1));
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3)).sample_size(20);
    group.bench_function("bare_reqwest", |b| {
        b.iter_custom(|iters| {
            let elapsed = rt.block_on(run(iters, |_| {
                let bare = bare.clone();
                let url = url.clone();
                async move {
                    let response = bare.get(&url).send().await.expect("served");
                    assert!(response.status().is_success());
                    response.bytes().await.expect("body");
                }
            }));
            record(totals, "bare_reqwest", iters, elapsed)
        })
    });
    group.bench_function("proxy_client", |b| {
        b.iter_custom(|iters| {
            let elapsed = rt.block_on(run(iters, |_| {
                let ours = ours.clone();
                let url = url.clone();
                async move {
                    let request = http::Request::get(url).body(Bytes::new()).expect("request");
                    let response = ours.send(request).await.expect("served");
                    assert!(response.status().is_success());
                }
            }));
            record(totals, "proxy_client", iters, elapsed)
        })
    });
    group.finish();
}

async fn run<F, Fut>(iters: u64, request: F) -> Duration
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = ()>,
{
    let started = Instant::now();
    futures::stream::iter(0..iters).map(request).buffer_unordered(CONCURRENCY).collect::<Vec<()>>().await;
    started.elapsed()
}

fn main() {
    if find_program("tinyproxy").is_none() {
        println!("client: tinyproxy not found on PATH, /usr/sbin or /usr/bin; skipped");
        figures::print_skipped("through_tinyproxy", "tinyproxy not installed (scripts/test.sh installs it)");
        return;
    }
    let totals = Totals::default();
    let mut c = Criterion::default().configure_from_args();
    bench_client(&mut c, &totals);
    c.final_summary();

    let totals = totals.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    let per_second = |id| totals.get(id).map(|&(requests, time)| requests as f64 / time.as_secs_f64());
    if let (Some(bare), Some(ours)) = (per_second("bare_reqwest"), per_second("proxy_client")) {
        println!("\nrequests/s, {CONCURRENCY} in flight (all requests sent over their time):");
        println!("  bare reqwest  {bare:8.0}");
        println!("  ProxyClient   {ours:8.0}   ratio ProxyClient / bare {:.2} (target >= 0.9)", ours / bare);
        let anchor = Some(("bare_reqwest", bare));
        figures::print_figure("through_tinyproxy", "proxy_client", ours, anchor, "requests/s", "ratio>=0.9");
    }
}
