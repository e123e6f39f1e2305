//! [`TriedProxies`]: the proxies a request went through on its earlier attempts.

use crate::proxy::ProxyId;

/// The proxies a request went through on earlier attempts, carried in its extensions: the
/// [`ProxyClient`](super::ProxyClient) sends the next attempt through a proxy not among
/// them (any proxy once all were). A retry policy adds the proxy of each failed attempt
/// to the request it sends again; the client itself only reads it.
///
/// ```
/// use harvester_proxypool::ProxyId;
/// use harvester_proxypool::client::TriedProxies;
///
/// let mut request = http::Request::get("http://127.0.0.1:8080/").body(bytes::Bytes::new()).expect("valid");
/// let mut tried = TriedProxies::default();
/// tried.push(ProxyId::from("dc-1"));
/// request.extensions_mut().insert(tried);
/// assert_eq!(request.extensions().get::<TriedProxies>().map(|t| t.proxies().len()), Some(1));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TriedProxies(Vec<ProxyId>);

impl TriedProxies {
    /// Adds `proxy` (once).
    pub fn push(&mut self, proxy: ProxyId) {
        if !self.0.contains(&proxy) {
            self.0.push(proxy);
        }
    }

    /// The proxies tried so far, in order.
    pub fn proxies(&self) -> &[ProxyId] {
        &self.0
    }

    /// True when `proxy` was tried.
    pub fn contains(&self, proxy: &ProxyId) -> bool {
        self.0.contains(proxy)
    }
}
