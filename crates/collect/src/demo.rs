//! The embedded demo: a product site and a faulty fleet of proxies, all in this process on
//! 127.0.0.1 (the `harvester-testbed` crate's servers), so that `cargo run --example collect`
//! shows the whole job with nothing to set up.

use std::sync::Arc;
use std::time::Duration;

use harvester_proxypool::{Proxy, ProxyKind, ProxyMeta};
use harvester_testbed::{FaultProxy, TargetServer};
use tokio::task::JoinHandle;

use crate::input::{Target, UrlList};

/// Pages the demo collects.
pub const PAGES: usize = 300;

/// The demo's servers; they stop when it is dropped.
#[must_use = "the demo servers stop as soon as it is dropped"]
pub struct Demo {
    site: TargetServer,
    fleet: Vec<(&'static str, &'static str, Arc<FaultProxy>)>,
    flapper: JoinHandle<()>,
}

impl Demo {
    /// Starts the site and the fleet: four good proxies (one of them slow) and six bad ones,
    /// each bad in its own way.
    pub async fn start() -> std::io::Result<Demo> {
        let site = TargetServer::start().await?;
        let flapping = Arc::new(FaultProxy::flapping().await?);
        let fleet = vec![
            ("good-1", "acme", Arc::new(FaultProxy::slow(Duration::ZERO).await?)),
            ("good-2", "acme", Arc::new(FaultProxy::slow(Duration::ZERO).await?)),
            ("good-3", "globex", Arc::new(FaultProxy::slow(Duration::ZERO).await?)),
            ("slow", "globex", Arc::new(FaultProxy::slow(Duration::from_millis(300)).await?)),
            ("dead", "initech", Arc::new(FaultProxy::closed().await?)),
            ("hanging", "initech", Arc::new(FaultProxy::hanging().await?)),
            ("banned-403", "umbrella", Arc::new(FaultProxy::banning_403().await?)),
            ("captcha", "umbrella", Arc::new(FaultProxy::captcha().await?)),
            ("throttled-429", "umbrella", Arc::new(FaultProxy::rate_limiting_429(30).await?)),
            ("flapping", "initech", flapping.clone()),
        ];
        // The flapping proxy is up for 2 s, then down for 2 s, and so on.
        let flapper = tokio::spawn(async move {
            for up in [false, true].into_iter().cycle() {
                tokio::time::sleep(Duration::from_secs(2)).await;
                flapping.set_up(up);
            }
        });
        Ok(Demo { site, fleet, flapper })
    }

    /// The product pages, each once.
    pub fn urls(&self) -> UrlList {
        let targets =
            (0..PAGES).filter_map(|n| Target::parse(&format!("{}/product/{n}", self.site.url())).ok()).collect();
        UrlList { targets, duplicates: 0 }
    }

    /// The fleet as a proxy list, with ids and providers.
    pub fn proxies(&self) -> Vec<Proxy> {
        self.fleet
            .iter()
            .filter_map(|(id, provider, proxy)| {
                let (kind, cost_per_request) = terms(provider);
                let meta = ProxyMeta {
                    id: Some((*id).into()),
                    provider: Some((*provider).into()),
                    region: Some("local".into()),
                    kind: Some(kind),
                    cost_per_request,
                    ..ProxyMeta::default()
                };
                Proxy::with_meta(&proxy.url(), meta).ok()
            })
            .collect()
    }
}

/// What each of the demo's providers sells, and at what price per request (made up, in the
/// proportions of real offers: residential dearer than datacenter, mobile dearest).
fn terms(provider: &str) -> (ProxyKind, f64) {
    match provider {
        "acme" => (ProxyKind::Residential, 0.003),
        "globex" | "initech" => (ProxyKind::Datacenter, 0.0005),
        _ => (ProxyKind::Mobile, 0.008),
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.flapper.abort();
    }
}
