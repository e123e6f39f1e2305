//! `ProxyClient` over the wire: real tinyproxy and danted, a TLS target, and fault proxies
//! that fail the ways real proxies do. Every address is on 127.0.0.0/8.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use harvester::proxypool::client::{ClientError, DefaultClassifier, HostPolicy, HostRule, Priority, Verdict};
use harvester::proxypool::health_check::{HealthCheckConfig, HealthChecker};
use harvester::proxypool::{
    EjectionConfig, PoolConfig, PoolError, ProxiedResponse, Proxy, ProxyClient, ProxyMeta, ProxyPool, RequestContext,
    Requirements,
};
use harvester_testbed::support::{Dante, Tinyproxy};
use harvester_testbed::{CAPTCHA_MARKER, FaultProxy, TargetServer, TlsTargetServer};

/// Short enough that faults show within seconds, long enough that a real proxy on a
/// loaded shared machine is not mistaken for a hanging one.
const TIMEOUT: Duration = Duration::from_secs(2);

fn proxy(id: &str, url: &str) -> Proxy {
    Proxy::with_meta(url, ProxyMeta { id: Some(id.into()), ..ProxyMeta::default() }).expect("valid proxy URL")
}

fn pool_of(proxies: impl IntoIterator<Item = Proxy>) -> ProxyPool {
    let pool = ProxyPool::builder().build().expect("default config");
    pool.extend(proxies).expect("unique ids");
    pool
}

fn client(pool: &ProxyPool) -> ProxyClient {
    ProxyClient::builder(pool.clone())
        .request_timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .classifier(DefaultClassifier::new().ban_marker(CAPTCHA_MARKER))
        .build()
        .expect("valid settings")
}

fn get(url: &str) -> http::Request<Bytes> {
    http::Request::get(url).body(Bytes::new()).expect("valid request")
}

#[tokio::test]
async fn http_and_https_through_tinyproxy_with_auth() {
    let target = TargetServer::start().await.expect("target starts");
    let tls = TlsTargetServer::start().await.expect("TLS target starts");
    let tinyproxy = Tinyproxy::start_with_auth("scraper", "hunter2");
    let pool = pool_of([proxy("tinyproxy", &tinyproxy.url())]);
    let client = ProxyClient::builder(pool.clone())
        .trust_root_pem(tls.cert_pem().as_bytes())
        .expect("valid PEM")
        .build()
        .expect("valid settings");

    let plain = client.send(get(&format!("{}/", target.url()))).await.expect("served over HTTP");
    assert_eq!((plain.status().as_u16(), &plain.body()[..], plain.proxy().as_str()), (200, &b"hello"[..], "tinyproxy"));
    assert_eq!(plain.verdict(), Verdict::Success);

    let secure = client.send(get(&format!("{}/", tls.url()))).await.expect("served over HTTPS through CONNECT");
    assert_eq!((secure.status().as_u16(), &secure.body()[..]), (200, &b"hello"[..]));
    assert_eq!(tls.requests_served(), 1);

    for url in [format!("{}/echo-headers", target.url()), format!("{}/echo-headers", tls.url())] {
        let echoed = client.send(get(&url)).await.expect("served");
        let headers = String::from_utf8_lossy(echoed.body()).to_lowercase();
        assert!(!headers.contains("proxy-authorization") && !headers.contains("hunter2"), "{url}: {headers}");
    }
    assert_eq!(pool.proxy_stats("tinyproxy").expect("present").successes, 4);
    assert_eq!(client.cached_clients(), 1, "one reqwest client serves every request through the proxy");
}

#[tokio::test]
async fn socks5_and_socks5h_through_danted_without_auth() {
    let target = TargetServer::start().await.expect("target starts");
    let open = Dante::start();
    let port = open.addr().port();
    let pool = pool_of([
        tagged_proxy("socks5", &format!("socks5://127.0.0.1:{port}")),
        tagged_proxy("socks5h", &format!("socks5h://127.0.0.1:{port}")),
    ]);
    let client = client(&pool);
    every_proxy_carries_requests(&client, &pool, &target).await;
}

#[tokio::test]
#[ignore = "needs root: danted checks passwords against system accounts (scripts/test.sh runs it as root)"]
async fn socks5_through_danted_with_auth_and_a_wrong_password_is_the_proxys_failure() {
    // Given a danted that requires a username and password
    let target = TargetServer::start().await.expect("target starts");
    let authed = Dante::start_with_auth("harvester-socks", "s0cks-Pass");
    // When requests go through it with the right credentials, then they are served
    let pool = pool_of([tagged_proxy("socks5-auth", &authed.url())]);
    every_proxy_carries_requests(&client(&pool), &pool, &target).await;
    // And with a wrong password, the proxy failed, and the password stays out of the error
    let wrong = pool_of([proxy("wrong", &format!("socks5://harvester-socks:nope@{}", authed.addr()))]);
    let err = client(&wrong).send(get(&format!("{}/", target.url()))).await.expect_err("wrong password");
    assert!(matches!(err, ClientError::ProxyFailed { .. }), "{err}");
    assert!(!format!("{err} {err:?}").contains("nope"), "the password stays out of errors: {err}");
}

/// A proxy tagged with its own id, so that a request can ask for it.
fn tagged_proxy(id: &str, url: &str) -> Proxy {
    let meta = ProxyMeta { id: Some(id.into()), tags: [id.to_owned()].into(), ..ProxyMeta::default() };
    Proxy::with_meta(url, meta).expect("valid proxy URL")
}

/// Every proxy of `pool` (made with [`tagged_proxy`]) serves the request that asks for it by
/// tag; a tag no proxy has gets no proxy (proof that the request's `Requirements` are read).
async fn every_proxy_carries_requests(client: &ProxyClient, pool: &ProxyPool, target: &TargetServer) {
    let mut request = get(&format!("{}/", target.url()));
    request.extensions_mut().insert(Requirements::new().tag("no-such-tag"));
    let err = client.send(request).await.expect_err("no proxy has that tag");
    assert!(matches!(err, ClientError::NoProxy { source: PoolError::NoMatch { .. }, .. }), "{err}");
    for id in pool.proxies().iter().map(|p| p.id().to_string()) {
        let mut request = get(&format!("{}/", target.url()));
        request.extensions_mut().insert(Requirements::new().tag(id.clone()));
        let response = client.send(request).await.unwrap_or_else(|err| panic!("{id}: {err}"));
        assert_eq!((response.proxy().as_str(), &response.body()[..]), (id.as_str(), &b"hello"[..]));
    }
}

/// [`client`], for tests where a local `client` hides it.
fn client_for(pool: &ProxyPool) -> ProxyClient {
    client(pool)
}

#[tokio::test]
async fn dead_and_hanging_proxies_fail_typed_and_get_ejected() {
    let target = TargetServer::start().await.expect("target starts");
    let closed = FaultProxy::closed().await.expect("fault proxy starts");
    let hanging = FaultProxy::hanging().await.expect("fault proxy starts");
    let config = PoolConfig {
        ejection: EjectionConfig { max_ejected_fraction: 1.0, panic_threshold: 0.0, ..EjectionConfig::default() },
        ..PoolConfig::default()
    };
    for (id, fault, expect_timeout) in [("closed", &closed, false), ("hanging", &hanging, true)] {
        let pool = ProxyPool::builder().config(config.clone()).build().expect("valid");
        pool.add(proxy(id, &fault.url())).expect("fresh pool");
        let client = client(&pool);
        for _ in 0..5 {
            let err = client.send(get(&format!("{}/", target.url()))).await.expect_err("a faulty proxy");
            match (&err, expect_timeout) {
                (ClientError::TimedOut { proxy, .. }, true) | (ClientError::ProxyFailed { proxy, .. }, false) => {
                    assert_eq!(proxy.as_str(), id)
                }
                _ => panic!("{id}: unexpected {err:?}"),
            }
        }
        let err = client.send(get(&format!("{}/", target.url()))).await.expect_err("ejected");
        assert!(
            matches!(err, ClientError::NoProxy { source: PoolError::AllEjected { .. }, .. }),
            "{id}: after five failures the pool stops sending to it: {err}"
        );
    }
    assert_eq!(target.requests_served(), 0);
}

#[tokio::test]
async fn requests_leave_only_through_their_proxy_even_with_the_longest_credentials() {
    let target = TargetServer::start().await.expect("target starts");
    let forwarding = FaultProxy::slow(Duration::ZERO).await.expect("fault proxy starts");
    let longest = "p".repeat(Proxy::MAX_CREDENTIAL_LEN);
    let url = forwarding.url().replacen("http://", &format!("http://{longest}:{longest}@"), 1);
    let pool = pool_of([proxy("longest", &url)]);
    let client = client(&pool);
    for _ in 0..3 {
        let response = client.send(get(&format!("{}/", target.url()))).await.expect("served through the proxy");
        assert_eq!(response.proxy().as_str(), "longest");
    }
    // Every request reached the target, and every one went through the proxy: had the
    // client dropped the proxy, the target would have been reached with none.
    assert_eq!(target.requests_served(), 3);
    assert!(forwarding.connections() >= 1, "the proxy saw the requests");
    assert_eq!(target.connections(), forwarding.connections(), "one upstream connection per client connection");
}

#[tokio::test]
async fn bans_bar_a_proxy_from_the_banning_host_only() {
    let target = TargetServer::start().await.expect("target starts");
    let other_target = TargetServer::start().await.expect("target starts");
    let banning = FaultProxy::banning_403().await.expect("fault proxy starts");
    let limiting = FaultProxy::rate_limiting_429(120).await.expect("fault proxy starts");
    let captcha = FaultProxy::captcha().await.expect("fault proxy starts");
    let rate_limited = Verdict::RateLimited { retry_after: Some(Duration::from_secs(120)) };
    for (id, fault, verdict) in [
        ("403", &banning, Verdict::Ban { retry_after: None }),
        ("429", &limiting, rate_limited),
        ("captcha", &captcha, Verdict::Ban { retry_after: None }),
    ] {
        let pool = pool_of([proxy(id, &fault.url())]);
        let client = client(&pool);
        let response = client.send(get(&format!("{}/", target.url()))).await.expect("an answer, if a bad one");
        assert_eq!(response.verdict(), verdict, "{id}");
        let err = client.send(get(&format!("{}/", target.url()))).await.expect_err("banned for this host");
        assert!(matches!(err, ClientError::NoProxy { source: PoolError::AllBanned { .. }, .. }), "{id}: {err}");
        // The same proxy is still tried for another site (the port differs, the host is the
        // same loopback address, so the test names the other site by `localhost`).
        let elsewhere = format!("http://localhost:{}/", other_target.addr().port());
        let response = client.send(get(&elsewhere)).await.expect("not banned by another host");
        assert!(response.verdict().is_ban(), "{id}: the fake exit IP is banned there too, which the pool learns");
        let stats = pool.proxy_stats(id).expect("present");
        assert_eq!(stats.bans_active.len(), 2, "{id}: one ban per host");
        assert_eq!((stats.times_ejected, stats.consecutive_failures), (0, 0), "{id}: bans are not failures");
    }
}

#[tokio::test]
async fn a_flapping_proxy_is_ejected_while_down_and_back_after_a_probe() {
    let target = TargetServer::start().await.expect("target starts");
    let flapping = FaultProxy::flapping().await.expect("fault proxy starts");
    let config = PoolConfig {
        ejection: EjectionConfig { max_ejected_fraction: 1.0, panic_threshold: 0.0, ..EjectionConfig::default() },
        ..PoolConfig::default()
    };
    let pool = ProxyPool::builder().config(config).build().expect("valid");
    pool.add(proxy("flapping", &flapping.url())).expect("fresh pool");
    let client = client(&pool);
    let url = format!("{}/", target.url());
    client.send(get(&url)).await.expect("up");
    flapping.set_up(false);
    for _ in 0..5 {
        client.send(get(&url)).await.expect_err("down");
    }
    assert!(pool.proxy_stats("flapping").expect("present").ejected_for.is_some());
    flapping.set_up(true);
    let health = HealthCheckConfig { test_urls: vec![url.clone()], timeout: TIMEOUT, ..HealthCheckConfig::default() };
    let report = HealthChecker::new(pool.clone(), client.clone(), health).expect("valid").run_cycle().await;
    assert_eq!((report.probed, report.healthy, report.restored), (1, 1, 1));
    let response = client.send(get(&url)).await.expect("back in rotation at once, not after 30 s");
    assert_eq!(response.proxy().as_str(), "flapping");
}

#[tokio::test]
async fn a_slow_proxy_loses_traffic_to_a_fast_one() {
    let target = TargetServer::start().await.expect("target starts");
    let slow = FaultProxy::slow(Duration::from_millis(150)).await.expect("fault proxy starts");
    let fast = FaultProxy::slow(Duration::ZERO).await.expect("fault proxy starts");
    let pool = pool_of([proxy("slow", &slow.url()), proxy("fast", &fast.url())]);
    let client = client(&pool);
    let mut served: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..40 {
        let response = client.send(get(&format!("{}/", target.url()))).await.expect("both work");
        *served.entry(response.proxy().to_string()).or_default() += 1;
    }
    assert!(served["fast"] >= 30, "power of two choices prefers the fast proxy: {served:?}");
}

#[tokio::test]
async fn bodies_are_capped_without_blaming_the_proxy() {
    let target = TargetServer::start().await.expect("target starts");
    let forwarding = FaultProxy::slow(Duration::ZERO).await.expect("fault proxy starts");
    let pool = pool_of([proxy("p", &forwarding.url())]);
    let client = ProxyClient::builder(pool.clone()).max_body_bytes(1000).build().expect("valid");
    let ok = client.send(get(&format!("{}/bytes?n=1000", target.url()))).await.expect("exactly the cap");
    assert_eq!(ok.body().len(), 1000);
    let err = client.send(get(&format!("{}/bytes?n=1001", target.url()))).await.expect_err("over the cap");
    assert_eq!(err, ClientError::BodyTooLarge { proxy: "p".into(), limit: 1000 });
    assert_eq!(pool.proxy_stats("p").expect("present").successes, 2);
}

#[tokio::test]
async fn host_rules_choose_the_proxies_and_high_priority_may_fall_back() {
    let target = TargetServer::start().await.expect("target starts");
    let eu = FaultProxy::slow(Duration::ZERO).await.expect("fault proxy starts");
    let us = FaultProxy::slow(Duration::ZERO).await.expect("fault proxy starts");
    let with_region = |id: &str, url: &str, region: &str| {
        Proxy::with_meta(url, ProxyMeta { id: Some(id.into()), region: Some(region.into()), ..ProxyMeta::default() })
            .expect("valid")
    };
    let pool = pool_of([with_region("eu", &eu.url(), "eu"), with_region("us", &us.url(), "us")]);
    let policy = HostPolicy::new(Requirements::new().region("us")).rule(
        HostRule::new("localhost", Requirements::new().region("eu").tag("premium"))
            .expect("valid pattern")
            .fallback(Requirements::new().region("eu")),
    );
    let client = ProxyClient::builder(pool).policy(policy).build().expect("valid");
    let by_ip = client.send(get(&format!("{}/", target.url()))).await.expect("default route");
    assert_eq!(by_ip.proxy().as_str(), "us");

    let by_name = format!("http://localhost:{}/", target.addr().port());
    let err = client.send(get(&by_name)).await.expect_err("no premium eu proxy, normal priority");
    assert!(matches!(err, ClientError::NoProxy { source: PoolError::NoMatch { .. }, .. }), "{err}");
    let mut urgent = get(&by_name);
    urgent.extensions_mut().insert(Priority::High);
    assert_eq!(client.send(urgent).await.expect("the fallback serves it").proxy().as_str(), "eu");
}

#[tokio::test]
async fn the_client_is_a_tower_service() {
    use tower::Service;
    let target = TargetServer::start().await.expect("target starts");
    let forwarding = FaultProxy::slow(Duration::ZERO).await.expect("fault proxy starts");
    let mut service = client(&pool_of([proxy("p", &forwarding.url())]));
    futures::future::poll_fn(|cx| Service::<http::Request<Bytes>>::poll_ready(&mut service, cx))
        .await
        .expect("always ready");
    let response = service.call(get(&format!("{}/status/404", target.url()))).await.expect("an answer");
    assert_eq!((response.status().as_u16(), response.verdict()), (404, Verdict::TargetError));
}

/// A thousand requests over a fleet where half the proxies are faulty: each ends served by
/// a good proxy, or with a typed reason; none is lost, none outlives its timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_requests_over_a_mixed_fleet_all_end_well_or_typed() {
    let target = TargetServer::start().await.expect("target starts");
    let tinyproxy = Tinyproxy::start();
    let dante = Dante::start();
    let closed = FaultProxy::closed().await.expect("fault proxy starts");
    let hanging = FaultProxy::hanging().await.expect("fault proxy starts");
    let banning = FaultProxy::banning_403().await.expect("fault proxy starts");
    let flapping = FaultProxy::flapping().await.expect("fault proxy starts");
    flapping.set_up(false);
    let pool = pool_of([
        proxy("tinyproxy", &tinyproxy.url()),
        proxy("danted", &dante.url()),
        proxy("closed", &closed.url()),
        proxy("hanging", &hanging.url()),
        proxy("banning", &banning.url()),
        proxy("flapping", &flapping.url()),
    ]);
    let client = client(&pool);
    let url = format!("{}/", target.url());
    let outcomes: Vec<Result<&str, String>> = futures::stream::iter(0..1000)
        .map(|_| {
            let client = client.clone();
            let url = url.clone();
            // The guard is the request timeout plus slack: if it fires, a request hung.
            async move { typed_end(tokio::time::timeout(TIMEOUT * 4, client.send(get(&url))).await) }
        })
        .buffer_unordered(50)
        .collect()
        .await;

    assert_eq!(outcomes.len(), 1000, "none lost");
    let mut tally: BTreeMap<&str, usize> = BTreeMap::new();
    for outcome in &outcomes {
        let kind = outcome.as_ref().unwrap_or_else(|untyped| panic!("an outcome without its typed reason: {untyped}"));
        *tally.entry(kind).or_default() += 1;
    }
    let stats = pool.stats();
    let requests_to = |id: &str| stats.proxies.iter().find(|p| p.id.as_str() == id).expect("present").requests;
    // Only the four faulty proxies can fail a request (a good one timing out on a loaded
    // machine aside), and the pool must learn to avoid them fast. One that fails
    // `consecutive_failures` (5) times in a row is ejected for 30 s, longer than this run; the
    // banning one is barred from the host by its first ban. Before its failures come back,
    // power of two choices sends a proxy about its share of the 50 requests in flight
    // (50 / 6, so 9), which makes 5 + 9 = 14 at most for each (13 seen on an idle machine).
    // Twice that for a loaded machine, rounded: 25 each, 100 for the four, so at least 900 of
    // the 1 000 served.
    let to_faulty: u64 = ["closed", "hanging", "banning", "flapping"].into_iter().map(requests_to).sum();
    assert!(to_faulty <= 100, "the pool learns fast which proxies to avoid: {to_faulty} to faulty ones, {tally:?}");
    assert!(tally.get("served").copied().unwrap_or(0) >= 900, "{tally:?}");
    assert_eq!(target.requests_served(), tally["served"], "every served request reached the target once");
    // Each faulty proxy got little traffic, and any that got enough to be judged (the five
    // failures in a row that eject) was ejected; one the balancer stopped trying after a
    // failure or two need not be (that is the better outcome, and it depends on timing).
    let to_eject = EjectionConfig::default().consecutive_failures;
    for faulty in ["closed", "hanging", "flapping"] {
        let s = stats.proxies.iter().find(|p| p.id.as_str() == faulty).expect("present");
        assert!(s.requests <= 60, "{faulty} got little traffic: {s:?}");
        assert!(s.times_ejected > 0 || s.requests < u64::from(to_eject), "{faulty} was ejected: {s:?}");
    }
    let banning = stats.proxies.iter().find(|p| p.id.as_str() == "banning").expect("present");
    assert_eq!(banning.bans_active.len(), 1);
}

/// The typed reason a request of the mixed fleet ended with, or (`Err`) why it has none:
/// served by a good proxy; refused by the banning proxy's ban; failed by a proxy that
/// refused or dropped the connection (closed, flapping) or that did not answer in time
/// (hanging; a good one on a loaded machine); no proxy to lease. Anything else (a faulty
/// proxy serving, the target's error, a ban from a proxy that does not ban, an untyped or
/// unexpected error, a request outliving its timeout) is a failure of the test.
fn typed_end(
    ended: Result<Result<ProxiedResponse, ClientError>, tokio::time::error::Elapsed>,
) -> Result<&'static str, String> {
    const GOOD: [&str; 2] = ["tinyproxy", "danted"];
    match ended {
        Err(_) => Err("HUNG: a request outlived its timeout".to_owned()),
        Ok(Ok(r)) => match r.verdict() {
            Verdict::Success if GOOD.contains(&r.proxy().as_str()) => Ok("served"),
            Verdict::Ban { .. } if r.proxy().as_str() == "banning" => Ok("banned"),
            verdict => Err(format!("{verdict:?} ({}) from {}", r.status(), r.proxy())),
        },
        Ok(Err(ClientError::ProxyFailed { proxy, .. })) if ["closed", "flapping"].contains(&proxy.as_str()) => {
            Ok("proxy failed")
        }
        Ok(Err(ClientError::TimedOut { .. })) => Ok("timed out"),
        Ok(Err(ClientError::NoProxy { .. })) => Ok("no proxy"),
        Ok(Err(other)) => Err(format!("{other:?}")),
    }
}

/// A proxy like tinyproxy: it keeps the connection open after an answer without saying
/// it will close it, then closes it when the next request arrives. The client must send
/// that request again on a fresh connection rather than blame the proxy.
#[tokio::test]
async fn a_request_on_a_stale_kept_alive_connection_is_sent_again_not_blamed_on_the_proxy() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = connections.clone();
    let server = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let Ok(n @ 1..) = stream.read(&mut buf).await else { return };
                    head.extend_from_slice(&buf[..n]);
                }
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello").await;
                // The next request on this connection is read, then the connection dropped.
                let _ = stream.read(&mut buf).await;
            });
        }
    });
    let pool = pool_of([proxy("stale", &format!("http://{addr}"))]);
    let client = client(&pool);
    for _ in 0..3 {
        let response = client.send(get("http://127.0.0.1:9/")).await.expect("served, on a fresh connection if needed");
        assert_eq!(&response.body()[..], b"hello");
    }
    let stats = pool.proxy_stats("stale").expect("present");
    assert_eq!((stats.successes, stats.failures), (3, 0));
    assert!(connections.load(std::sync::atomic::Ordering::SeqCst) >= 3, "each request needed its own connection");
    server.abort();
}

#[tokio::test]
async fn the_client_of_a_removed_proxy_is_dropped_and_the_cache_is_bounded() {
    let target = TargetServer::start().await.expect("target starts");
    let (a, b, c) = (
        FaultProxy::slow(Duration::ZERO).await.expect("fault proxy starts"),
        FaultProxy::slow(Duration::ZERO).await.expect("fault proxy starts"),
        FaultProxy::slow(Duration::ZERO).await.expect("fault proxy starts"),
    );
    let pool = ProxyPool::builder().balancer(harvester::proxypool::balance::RoundRobin::new()).build().expect("valid");
    pool.extend([proxy("a", &a.url()), proxy("b", &b.url())]).expect("unique");
    let client = ProxyClient::builder(pool.clone()).max_cached_clients(2).build().expect("valid");
    let url = format!("{}/", target.url());
    for _ in 0..2 {
        client.send(get(&url)).await.expect("served");
    }
    assert_eq!(client.cached_clients(), 2);
    pool.remove(&"a".into()).expect("present");
    client.send(get(&url)).await.expect("served by b");
    assert_eq!(client.cached_clients(), 1, "a's client left with a");
    pool.add(proxy("c", &c.url())).expect("new id");
    pool.add(proxy("a", &a.url())).expect("back again");
    for _ in 0..3 {
        client.send(get(&url)).await.expect("served");
    }
    assert_eq!(client.cached_clients(), 2, "never more than the bound");
}

#[tokio::test]
async fn a_dead_target_bars_the_proxy_from_that_host_without_ejecting_it() {
    let target = TargetServer::start().await.expect("target starts");
    let dead_port = harvester_testbed::free_port().expect("a free port on 127.0.0.1");
    let tinyproxy = Tinyproxy::start();
    let dante = Dante::start();
    for (id, url) in [("tinyproxy", tinyproxy.url()), ("danted", dante.url())] {
        let pool = pool_of([proxy(id, &url)]);
        let client = client(&pool);
        // HTTPS goes through CONNECT (tinyproxy) or a SOCKS connect (danted) to a port
        // where nothing listens: the proxy answers that it cannot reach the target.
        let err = client.send(get(&format!("https://127.0.0.1:{dead_port}/"))).await.expect_err("dead target");
        assert!(matches!(err, ClientError::TargetUnreachable { .. }), "{id}: {err}");
        let err = client.send(get(&format!("https://127.0.0.1:{dead_port}/"))).await.expect_err("barred now");
        assert!(matches!(err, ClientError::NoProxy { source: PoolError::AllBanned { .. }, .. }), "{id}: {err}");
        let stats = pool.proxy_stats(id).expect("present");
        assert_eq!((stats.times_ejected, stats.consecutive_failures), (0, 0), "{id}: the proxy is not to blame");
        let alive = format!("http://localhost:{}/", target.addr().port());
        client.send(get(&alive)).await.unwrap_or_else(|e| panic!("{id} still serves other hosts: {e}"));
    }
}

#[tokio::test]
async fn a_proxy_refusing_our_credentials_is_the_proxys_failure_and_they_stay_secret() {
    let target = TargetServer::start().await.expect("target starts");
    let refusing = FaultProxy::answering(407, &[("Proxy-Authenticate", "Basic realm=\"proxy\"")], "")
        .await
        .expect("fault proxy starts");
    let port = refusing.addr().port();
    let pool = pool_of([proxy("refusing", &format!("http://scraper:Wr0ng-Secret@127.0.0.1:{port}"))]);
    let client = client(&pool);
    for url in [format!("{}/", target.url()), format!("http://localhost:{}/", target.addr().port())] {
        let err = client.send(get(&url)).await.expect_err("407");
        assert!(matches!(err, ClientError::ProxyFailed { .. }), "{err}");
        assert!(!format!("{err} {err:?}").contains("Wr0ng-Secret"), "{err:?}");
    }
    assert_eq!(pool.proxy_stats("refusing").expect("present").consecutive_failures, 2, "on any host");

    // tinyproxy refuses wrong credentials with a plain 401 page of its own, which the
    // default classifier cannot tell from a site's login page: the target's error.
    let tinyproxy = Tinyproxy::start_with_auth("scraper", "hunter2");
    let wrong = pool_of([proxy("wrong", &format!("http://scraper:Wr0ng-Secret@{}", tinyproxy.addr()))]);
    let response = client_for(&wrong).send(get(&format!("{}/", target.url()))).await.expect("an answer");
    assert_eq!((response.status().as_u16(), response.verdict()), (401, Verdict::TargetError));
    assert!(!format!("{response:?}").contains("Wr0ng-Secret"));
}

#[tokio::test]
async fn unsendable_requests_are_refused_before_any_proxy_is_blamed() {
    let forwarding = FaultProxy::slow(Duration::ZERO).await.expect("fault proxy starts");
    let pool = pool_of([proxy("p", &forwarding.url())]);
    let client = client(&pool);
    for url in ["ftp://127.0.0.1/file", "/relative/path"] {
        let err = client.send(get(url)).await.expect_err("not sendable");
        assert!(matches!(err, ClientError::InvalidRequest(_)), "{url}: {err}");
    }
    assert_eq!(pool.proxy_stats("p").expect("present").requests, 0);
}

#[tokio::test]
async fn a_request_given_up_by_the_caller_counts_as_a_timeout() {
    let hanging = FaultProxy::hanging().await.expect("fault proxy starts");
    let pool = pool_of([proxy("hanging", &hanging.url())]);
    let client = ProxyClient::builder(pool.clone()).request_timeout(Duration::from_secs(30)).build().expect("valid");
    // A layer above with a shorter deadline drops the request future.
    let gave_up = tokio::time::timeout(Duration::from_millis(200), client.send(get("http://127.0.0.1:9/"))).await;
    assert!(gave_up.is_err());
    let stats = pool.proxy_stats("hanging").expect("present");
    assert_eq!((stats.timeouts, stats.in_flight), (1, 0));
}

#[tokio::test]
async fn a_ban_page_too_large_to_read_is_still_a_ban() {
    let target = TargetServer::start().await.expect("target starts");
    let big_ban = FaultProxy::answering(403, &[], &"x".repeat(5000)).await.expect("fault proxy starts");
    let pool = pool_of([proxy("big", &big_ban.url())]);
    let client = ProxyClient::builder(pool.clone()).max_body_bytes(1000).build().expect("valid");
    let err = client.send(get(&format!("{}/", target.url()))).await.expect_err("over the cap");
    assert!(matches!(err, ClientError::BodyTooLarge { .. }), "{err}");
    assert_eq!(pool.proxy_stats("big").expect("present").bans, 1);
}

#[tokio::test]
async fn attempts_sharing_tried_proxies_go_through_a_new_proxy_each_until_all_were_tried() {
    use harvester::proxypool::client::TriedProxies;

    let target = TargetServer::start().await.expect("target starts");
    let fleet = [
        FaultProxy::slow(Duration::ZERO).await.expect("proxy starts"),
        FaultProxy::slow(Duration::ZERO).await.expect("proxy starts"),
    ];
    // Sticky keeps one key on one proxy: without `TriedProxies` every attempt would go there.
    let pool = ProxyPool::builder().balancer(harvester::proxypool::balance::Sticky::new()).build().expect("valid");
    pool.extend(fleet.iter().enumerate().map(|(i, p)| proxy(&format!("p{i}"), &p.url()))).expect("unique ids");
    let client = client(&pool);
    let attempt = |tried: &TriedProxies| {
        let mut request = get(&format!("{}/", target.url()));
        request.extensions_mut().insert(RequestContext::new().sticky_key("one-session"));
        request.extensions_mut().insert(tried.clone());
        request
    };

    let alone: Vec<String> = {
        let mut used = Vec::new();
        for _ in 0..2 {
            let response = client.send(attempt(&TriedProxies::default())).await.expect("served");
            used.push(response.proxy().as_str().to_owned());
        }
        used
    };
    assert_eq!(alone[0], alone[1], "sticky: the same proxy for the same key");

    // A retry policy adds each attempt's proxy to the request it sends again.
    let mut tried = TriedProxies::default();
    let first = client.send(attempt(&tried)).await.expect("served");
    tried.push(first.proxy().clone());
    let second = client.send(attempt(&tried)).await.expect("served");
    assert_ne!(first.proxy(), second.proxy(), "the second attempt avoids the first proxy");
    tried.push(second.proxy().clone());
    let third = client.send(attempt(&tried)).await.expect("served once every proxy was tried");
    assert_eq!(third.proxy(), first.proxy(), "every proxy tried: any may serve, and sticky goes home");
    assert_eq!(tried.proxies(), [first.proxy().clone(), second.proxy().clone()]);
}
