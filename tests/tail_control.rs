//! Tail control over the wire: a hanging proxy's request is hedged through another proxy
//! and reported slow, hedges stop when the budget is spent, and attempts give up after a
//! multiple of their host's latency, even those sent before that latency was known.
//! Real in-process servers on 127.0.0.1; the host's latency is taught to the pool through
//! leases, so that no assertion depends on how fast this machine is.

use std::time::Duration;

use bytes::Bytes;
use harvester::proxypool::balance::{Balancer, Candidates, Failover};
use harvester::proxypool::client::{AdaptiveTimeout, ClientError, Hedging};
use harvester::proxypool::{Outcome, Proxy, ProxyClient, ProxyMeta, ProxyPool, RequestContext, Requirements};
use harvester_testbed::{FaultProxy, TargetServer};

/// Only the proxy with this id.
#[derive(Debug)]
struct Only(&'static str);

impl Balancer for Only {
    fn name(&self) -> &'static str {
        "only"
    }

    fn pick(&self, c: &Candidates<'_>) -> Option<usize> {
        (0..c.len()).find(|&i| c.proxy(i).id().as_str() == self.0 && c.is_eligible(i))
    }
}

struct Scene {
    target: TargetServer,
    hanging: FaultProxy,
    good: FaultProxy,
    pool: ProxyPool,
}

impl Scene {
    async fn start() -> Scene {
        let target = TargetServer::start().await.expect("target starts");
        let hanging = FaultProxy::hanging().await.expect("fault proxy starts");
        let good = FaultProxy::slow(Duration::ZERO).await.expect("fault proxy starts");
        let pool = ProxyPool::builder().balancer(Failover).build().expect("valid config");
        for (id, fault) in [("hanging", &hanging), ("good", &good)] {
            let meta = ProxyMeta { id: Some(id.into()), ..ProxyMeta::default() };
            pool.add(Proxy::with_meta(&fault.url(), meta).expect("valid proxy URL")).expect("unique ids");
        }
        Scene { target, hanging, good, pool }
    }

    fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// Teaches the pool that the host answers in 5 ms (through the good proxy, without
    /// sending anything).
    fn learn_latency(&self) {
        for _ in 0..30 {
            let lease = self.pool.acquire_with(
                &Requirements::ANY,
                &RequestContext::new().target_host(self.host()),
                &Only("good"),
            );
            lease.expect("the good proxy is eligible").report(Outcome::success(Duration::from_millis(5)));
        }
    }

    fn page(&self) -> http::Request<Bytes> {
        http::Request::get(format!("{}/product/1", self.target.url())).body(Bytes::new()).expect("valid request")
    }

    fn stats(&self, id: &str) -> harvester::proxypool::ProxyStats {
        self.pool.proxy_stats(id).expect("in the pool")
    }
}

#[tokio::test]
async fn a_hanging_attempt_is_hedged_through_another_proxy_and_reported_slow() {
    let scene = Scene::start().await;
    scene.learn_latency();
    let client = ProxyClient::builder(scene.pool.clone())
        .request_timeout(Duration::from_secs(30))
        .hedging(Hedging::default())
        .build()
        .expect("valid settings");
    let good_before = scene.stats("good").requests;

    let response = client.send(scene.page()).await.expect("the hedge answers");

    assert_eq!(response.proxy().as_str(), "good", "the hanging proxy took the first attempt, the hedge won");
    assert!(String::from_utf8_lossy(response.body()).contains("Product 1"));
    assert_eq!(scene.hanging.connections(), 1, "the first attempt did go to the hanging proxy");
    let hanging = scene.stats("hanging");
    assert_eq!((hanging.slow, hanging.timeouts, hanging.in_flight), (1, 0, 0), "abandoned, reported slow, released");
    assert_eq!(scene.stats("good").requests, good_before + 1);
    assert_eq!(scene.good.connections(), 1, "and the hedge went through the good one");
}

/// A hedge that loses before it was late says nothing about its proxy: a good proxy that
/// is often the spare in a race must not be counted slow, nor ejected for losing.
#[tokio::test]
async fn a_hedge_that_loses_before_it_was_late_is_not_counted_against_its_proxy() {
    let target = TargetServer::start().await.expect("target starts");
    // The first attempt answers after 600 ms; the host's latency is taught as 400 ms, so a
    // hedge leaves at 400 ms and has waited about 200 ms, half the delay, when it loses.
    let late = FaultProxy::slow(Duration::from_millis(600)).await.expect("fault proxy starts");
    let spare = FaultProxy::hanging().await.expect("fault proxy starts");
    let pool = ProxyPool::builder().balancer(Failover).build().expect("valid config");
    for (id, fault) in [("late", &late), ("spare", &spare)] {
        let meta = ProxyMeta { id: Some(id.into()), ..ProxyMeta::default() };
        pool.add(Proxy::with_meta(&fault.url(), meta).expect("valid proxy URL")).expect("unique ids");
    }
    for _ in 0..30 {
        let lease =
            pool.acquire_with(&Requirements::ANY, &RequestContext::new().target_host("127.0.0.1"), &Only("late"));
        lease.expect("eligible").report(Outcome::success(Duration::from_millis(400)));
    }
    let client = ProxyClient::builder(pool.clone())
        .request_timeout(Duration::from_secs(30))
        .hedging(Hedging { max_hedges: 1, ..Hedging::default() })
        .build()
        .expect("valid settings");
    let page = http::Request::get(format!("{}/product/1", target.url())).body(Bytes::new()).expect("valid request");

    let response = client.send(page).await.expect("the first attempt answers");

    assert_eq!(response.proxy().as_str(), "late");
    assert_eq!(spare.connections(), 1, "a hedge did go out to the spare");
    let spare = pool.proxy_stats("spare").expect("in the pool");
    assert_eq!(
        (spare.slow, spare.timeouts, spare.failures, spare.consecutive_failures, spare.in_flight),
        (0, 0, 0, 0, 0),
        "released without a word on the proxy"
    );
}

#[tokio::test]
async fn no_hedge_goes_out_once_the_budget_is_spent() {
    let scene = Scene::start().await;
    scene.learn_latency();
    let client = ProxyClient::builder(scene.pool.clone())
        .request_timeout(Duration::from_millis(300))
        .hedging(Hedging { burst: 1, max_extra: 0.0, ..Hedging::default() })
        .build()
        .expect("valid settings");

    let first = client.send(scene.page()).await.expect("the one hedge of the burst answers");
    assert_eq!(first.proxy().as_str(), "good");
    let second = client.send(scene.page()).await.expect_err("no hedge is left, the first attempt times out");

    assert!(matches!(&second, ClientError::TimedOut { proxy, .. } if proxy.as_str() == "hanging"), "{second}");
    assert_eq!(scene.hanging.connections(), 2);
    let hanging = scene.stats("hanging");
    assert_eq!((hanging.slow, hanging.timeouts), (1, 1));
}

#[tokio::test]
async fn an_attempt_gives_up_after_a_multiple_of_its_hosts_latency() {
    let scene = Scene::start().await;
    scene.learn_latency();
    let client = ProxyClient::builder(scene.pool.clone())
        .request_timeout(Duration::from_secs(30))
        .adaptive_timeout(AdaptiveTimeout::default())
        .build()
        .expect("valid settings");

    let err = client.send(scene.page()).await.expect_err("the hanging proxy never answers");

    // 4 × a 5 ms p99 is far below the 1 s floor, so the floor holds, not the 30 s.
    assert!(
        matches!(&err, ClientError::TimedOut { proxy, after } if proxy.as_str() == "hanging" && *after == Duration::from_secs(1)),
        "{err}"
    );
}

#[tokio::test]
async fn an_attempt_sent_before_its_host_was_known_is_held_to_the_timeout_learned_since() {
    let scene = Scene::start().await;
    let client = ProxyClient::builder(scene.pool.clone())
        .request_timeout(Duration::from_secs(30))
        .adaptive_timeout(AdaptiveTimeout::default())
        .build()
        .expect("valid settings");

    let sent = tokio::spawn({
        let (client, page) = (client.clone(), scene.page());
        async move { client.send(page).await }
    });
    // Once the request is out (the hanging proxy has its connection), the pool learns the
    // host's latency from other answers.
    while scene.hanging.connections() == 0 {
        tokio::task::yield_now().await;
    }
    scene.learn_latency();
    let err = sent.await.expect("the task ends").expect_err("the hanging proxy never answers");

    assert!(matches!(&err, ClientError::TimedOut { after, .. } if *after == Duration::from_secs(1)), "{err}");
}

#[test]
fn bad_tail_settings_are_refused_naming_the_field() {
    let pool = ProxyPool::new([]).expect("empty pool");
    let err = ProxyClient::builder(pool.clone())
        .hedging(Hedging { max_extra: 2.0, ..Hedging::default() })
        .build()
        .expect_err("a share above 1");
    assert_eq!(err.field, "client.hedging.max_extra");
    let err = ProxyClient::builder(pool)
        .adaptive_timeout(AdaptiveTimeout { min: Duration::ZERO, ..AdaptiveTimeout::default() })
        .build()
        .expect_err("a zero floor");
    assert_eq!(err.field, "client.adaptive_timeout.min");
}
