//! The pool leases real proxies: requests go through tinyproxy (HTTP) and danted (SOCKS5)
//! on loopback, a dead proxy among them fails, its failures are reported on the lease, and
//! the pool ejects it so that the rest of the run goes through the live ones.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use harvester::proxypool::balance::RoundRobin;
use harvester::proxypool::{Outcome, Proxy, ProxyMeta, ProxyPool, RequestContext, Requirements, Scheme};
use harvester_testbed::support::raw_http::{self, RawResponse, basic_auth};
use harvester_testbed::support::raw_socks5::socks5_connect;
use harvester_testbed::support::{Dante, Tinyproxy};
use harvester_testbed::{TargetServer, free_port};
use tokio::net::TcpStream;

/// GET `/` of `target` through `proxy`, speaking the proxy's protocol by hand.
async fn get_through(proxy: &Proxy, target: &TargetServer) -> Result<RawResponse, String> {
    let mut stream = TcpStream::connect((proxy.host(), proxy.port())).await.map_err(|e| format!("connect: {e}"))?;
    let authority = target.addr().to_string();
    match proxy.scheme() {
        Scheme::Http => {
            let auth = proxy.credentials().map(|c| basic_auth(c.username(), c.password()));
            let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Proxy-Authorization", a.as_str())).collect();
            Ok(raw_http::get(&mut stream, &format!("{}/", target.url()), &authority, &headers).await)
        }
        Scheme::Socks5 | Scheme::Socks5h => {
            let credentials = proxy.credentials().map(|c| (c.username(), c.password()));
            socks5_connect(&mut stream, credentials, target.addr()).await?;
            Ok(raw_http::get(&mut stream, "/", &authority, &[]).await)
        }
        Scheme::Https => Err("no TLS proxy in this test".to_owned()),
    }
}

#[tokio::test]
async fn pool_routes_through_live_proxies_and_ejects_the_dead_one() {
    let target = TargetServer::start().await.expect("target starts");
    let http = Tinyproxy::start_with_auth("scraper", "hunter2");
    let socks = Dante::start();
    let dead_port = free_port().expect("a free port on 127.0.0.1");
    let meta = |id: &str| ProxyMeta { id: Some(id.into()), ..ProxyMeta::default() };
    let pool = ProxyPool::builder().balancer(RoundRobin::new()).build().expect("default config");
    pool.extend([
        Proxy::with_meta(&http.url(), meta("tinyproxy")).expect("tinyproxy URL"),
        Proxy::with_meta(&socks.url(), meta("danted")).expect("danted URL"),
        Proxy::with_meta(&format!("http://127.0.0.1:{dead_port}"), meta("dead")).expect("dead URL"),
    ])
    .expect("unique ids");
    let req = RequestContext::new().target_host(&target.addr().ip().to_string());

    let mut served: BTreeMap<String, usize> = BTreeMap::new();
    let mut failed: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..30 {
        let lease = pool.acquire(&Requirements::ANY, &req).expect("live proxies remain");
        let id = lease.id().to_string();
        let started = Instant::now();
        match get_through(lease.proxy(), &target).await {
            Ok(response) if response.status == 200 && response.body == "hello" => {
                *served.entry(id).or_default() += 1;
                lease.report(Outcome::success(started.elapsed()));
            }
            Ok(response) => panic!("{id} answered {response:?}\n{}\n{}", http.logs(), socks.logs()),
            Err(error) => {
                assert_eq!(id, "dead", "a live proxy failed: {error}\n{}\n{}", http.logs(), socks.logs());
                *failed.entry(id).or_default() += 1;
                lease.report(Outcome::network_failure(started.elapsed()));
            }
        }
    }

    assert_eq!(failed.get("dead"), Some(&5), "five failures in a row eject the dead proxy, no more reach it");
    assert_eq!(served.values().sum::<usize>(), 25);
    assert!(served["tinyproxy"] >= 10 && served["danted"] >= 10, "both live proxies carry traffic: {served:?}");
    assert_eq!(target.requests_served(), 25);
    let stats = pool.stats();
    assert_eq!(stats.ejected, 1);
    let dead = pool.proxy_stats("dead").expect("still in the pool");
    assert_eq!(dead.ejected_for.map(|d| d <= Duration::from_secs(30)), Some(true));
    assert_eq!(pool.proxy_stats("tinyproxy").expect("present").success_rate, Some(1.0));
}
