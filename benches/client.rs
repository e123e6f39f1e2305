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

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use harvester::proxypool::{Proxy, ProxyClient, ProxyPool};
use support::{TargetServer, Tinyproxy};

const CONCURRENCY: usize = 16;

fn bench_client(c: &mut Criterion) {
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
            rt.block_on(run(iters, |_| {
                let bare = bare.clone();
                let url = url.clone();
                async move {
                    let response = bare.get(&url).send().await.expect("served");
                    assert!(response.status().is_success());
                    response.bytes().await.expect("body");
                }
            }))
        })
    });
    group.bench_function("proxy_client", |b| {
        b.iter_custom(|iters| {
            rt.block_on(run(iters, |_| {
                let ours = ours.clone();
                let url = url.clone();
                async move {
                    let request = http::Request::get(url).body(Bytes::new()).expect("request");
                    let response = ours.send(request).await.expect("served");
                    assert!(response.status().is_success());
                }
            }))
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

criterion_group!(benches, bench_client);
criterion_main!(benches);
