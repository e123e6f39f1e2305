//! The request path of one URL: a retried fetch carries the proxies its earlier attempts
//! went through, so the next attempt goes through another one. Real in-process servers on
//! 127.0.0.1.

use std::time::Duration;

use harvester_collect::input::Target;
use harvester_collect::stack::{self, Fetch, StackSettings};
use harvester_proxypool::balance::Failover;
use harvester_proxypool::{Proxy, ProxyClient, ProxyMeta, ProxyPool};
use harvester_testbed::{FaultProxy, TargetServer};
use tower::ServiceExt;

#[tokio::test]
async fn a_retry_goes_through_a_proxy_the_url_has_not_tried() {
    let site = TargetServer::start().await.expect("site starts");
    let bad_gateway = FaultProxy::answering(502, &[], "bad gateway").await.expect("proxy starts");
    let good = FaultProxy::slow(Duration::ZERO).await.expect("proxy starts");
    let pool = ProxyPool::builder().balancer(Failover).build().expect("valid config");
    for (id, fault) in [("bad-gateway", &bad_gateway), ("good", &good)] {
        let meta = ProxyMeta { id: Some(id.into()), ..ProxyMeta::default() };
        pool.add(Proxy::with_meta(&fault.url(), meta).expect("valid proxy URL")).expect("unique ids");
    }
    let client = ProxyClient::builder(pool).request_timeout(Duration::from_secs(10)).build().expect("valid");
    let settings = StackSettings {
        concurrency: 4,
        rate_per_host: 1_000,
        max_attempts: 3,
        attempt_timeout: Duration::from_secs(10),
        hedge_share: 0.0,
        adaptive_timeout: false,
        #[cfg(feature = "redis")]
        redis: None,
    };
    let stack = stack::build(client, &settings).expect("valid settings");
    let fetch = Fetch::new(Target::parse(&format!("{}/product/7", site.url())).expect("valid URL"));

    let page = stack.service.oneshot(fetch.clone()).await.expect("the second attempt answers");

    assert_eq!(page.proxy.as_str(), "good");
    assert_eq!(fetch.attempts(), 2);
    assert_eq!(fetch.last_proxy().as_deref(), Some("good"));
    assert_eq!((bad_gateway.connections(), good.connections()), (1, 1), "one attempt through each");
}
