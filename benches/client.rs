//! What `ProxyClient` costs per request on top of bare reqwest, both sending the same GETs
//! through the same proxy to the same in-process site, 16 in flight, in the same run:
//! the pool, the lease, the per-proxy client cache and the classifier.
//!
//! ```text
//! cargo bench -p harvester --bench client      # or: scripts/bench.sh client
//! ```
//!
//! Two groups, each with both clients:
//! - `keep_alive`: through [`KeepAliveProxy`] to [`KeepAliveSite`], which keep connections
//!   open as real proxies and sites do, and with both clients keeping theirs (their
//!   defaults): a request costs tens of microseconds, so our overhead is visible. DESIGN.md:
//!   ours ≤ 1.1× bare reqwest per request.
//! - `through_tinyproxy`: through a real tinyproxy, which closes every client connection after
//!   one answer, so both clients open a connection per request (about a millisecond each):
//!   what a proxy that does not keep connections costs, where our overhead disappears.
//!
//! Criterion reports the time per request (each iteration sends `iters` requests, 16 at a
//! time); after its report the bench prints this run's means with their confidence intervals
//! as `FIGURE` lines for `scripts/bench.sh`. Without tinyproxy installed the second group is
//! skipped, saying so.

#[path = "support/figures.rs"]
mod figures;

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use futures::StreamExt;
use harvester::proxypool::{Proxy, ProxyClient, ProxyPool};
use harvester_testbed::support::{Tinyproxy, find_program};
use harvester_testbed::{KeepAliveProxy, KeepAliveSite, TargetServer};
use tokio::runtime::Runtime;

const CONCURRENCY: usize = 16;

/// Benches `bare_reqwest` and `proxy_client` in `group`, both sending GETs of `url` through
/// `proxy`; `keep_alive` false turns connection reuse off in both.
fn bench_pair(c: &mut Criterion, rt: &Runtime, group: &str, proxy: &str, url: &str, keep_alive: bool) {
    let idle = if keep_alive { CONCURRENCY } else { 0 };
    let bare = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(proxy).expect("valid proxy URL"))
        .pool_max_idle_per_host(idle)
        .build()
        .expect("client");
    let pool = ProxyPool::new([Proxy::parse(proxy).expect("valid proxy URL")]).expect("pool");
    let ours = ProxyClient::builder(pool).max_idle_per_proxy(idle).build().expect("client");

    let mut group = c.benchmark_group(group);
    group.throughput(Throughput::Elements(1));
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3)).sample_size(20);
    group.bench_function("bare_reqwest", |b| {
        b.iter_custom(|iters| {
            rt.block_on(run(iters, |_| {
                let (bare, url) = (bare.clone(), url.to_owned());
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
                let (ours, url) = (ours.clone(), url.to_owned());
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

/// Sends `iters` requests, `CONCURRENCY` at a time; the time they took.
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
    figures::begin_run();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    // Our one TLS stack; reqwest has no provider of its own in this build.
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let mut c = Criterion::default().configure_from_args();

    let (site, proxy) = rt.block_on(async {
        (KeepAliveSite::start().await.expect("site starts"), KeepAliveProxy::start().await.expect("proxy starts"))
    });
    bench_pair(&mut c, &rt, "keep_alive", &proxy.url(), &format!("{}/", site.url()), true);
    println!(
        "keep_alive: {} requests over {} proxy connections and {} site connections",
        site.requests(),
        proxy.connections(),
        site.connections()
    );

    let tinyproxy = find_program("tinyproxy").map(|_| Tinyproxy::start());
    let target = rt.block_on(TargetServer::start()).expect("target starts");
    if let Some(tinyproxy) = &tinyproxy {
        bench_pair(&mut c, &rt, "through_tinyproxy", &tinyproxy.url(), &format!("{}/", target.url()), false);
    }
    c.final_summary();

    let Some(dir) = figures::criterion_dir() else { return };
    for (group, target) in [("keep_alive", "ratio<=1.1"), ("through_tinyproxy", "-")] {
        let mean = |function| figures::mean_ns(&dir, group, function);
        let anchor = mean("bare_reqwest").map(|e| ("bare_reqwest", e));
        figures::print_figure(group, "proxy_client, per request", mean("proxy_client"), anchor, "ns", target);
    }
    if tinyproxy.is_none() {
        println!("client: tinyproxy not found on PATH, /usr/sbin or /usr/bin; through_tinyproxy skipped");
        figures::print_skipped("through_tinyproxy", "tinyproxy not installed (scripts/test.sh installs it)");
    }
}
