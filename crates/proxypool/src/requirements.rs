//! What a request needs from its proxy.
//!
//! ```
//! use harvester_proxypool::{ProxyKind, Requirements};
//!
//! let req = Requirements::new()
//!     .region("us")
//!     .kind(ProxyKind::Residential)
//!     .min_quality(0.85)
//!     .target_host("www.example-shop.com")
//!     .sticky_key("cart-4711");
//! assert_eq!(req.target_host_name(), Some("www.example-shop.com"));
//! ```

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::proxy::{ProxyId, ProxyKind};

/// Filters and context for one `acquire`. Empty requirements match every proxy.
///
/// Filters: region, kinds (any of), providers (any of), tags (all of), minimum quality,
/// maximum cost. Context: the target host (for per-site bans and statistics) and a
/// sticky session key (for the sticky balancer).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Requirements {
    /// Only proxies in this region.
    pub region: Option<String>,
    /// Only proxies of one of these kinds; empty means any.
    pub kinds: Vec<ProxyKind>,
    /// Only proxies from one of these providers; empty means any.
    pub providers: Vec<String>,
    /// Only proxies carrying every one of these tags.
    pub tags: Vec<String>,
    /// Only proxies whose quality score is at least this.
    pub min_quality: Option<f64>,
    /// Only proxies whose cost per request is at most this.
    pub max_cost: Option<f64>,
    /// The host the request goes to: bans and per-site statistics are kept per host.
    /// Stored lower-case, shared cheaply with the lease.
    #[serde(with = "host_serde")]
    pub target_host: Option<Arc<str>>,
    /// Keeps requests with the same key on the same proxy (sticky balancer).
    pub sticky_key: Option<String>,
    /// Never these proxies: the ones a retried request already went through. A filter like
    /// the others (an `acquire` fails when it leaves no proxy); the
    /// [`ProxyClient`](crate::client::ProxyClient) fills it from
    /// [`TriedProxies`](crate::client::TriedProxies) and falls back to the whole set.
    /// Per request, so never read from or written to configuration.
    #[serde(skip)]
    pub avoid: Vec<ProxyId>,
}

impl Requirements {
    /// Requirements that match every proxy.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only proxies in `region`.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Also accept proxies of `kind` (the first call restricts to it).
    pub fn kind(mut self, kind: ProxyKind) -> Self {
        if !self.kinds.contains(&kind) {
            self.kinds.push(kind);
        }
        self
    }

    /// Also accept proxies from `provider` (the first call restricts to it).
    pub fn provider(mut self, provider: impl Into<String>) -> Self {
        self.providers.push(provider.into());
        self
    }

    /// Require `tag` as well as any tags already required.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Only proxies whose quality score is at least `q`.
    pub fn min_quality(mut self, q: f64) -> Self {
        self.min_quality = Some(q);
        self
    }

    /// Only proxies costing at most `cost` per request.
    pub fn max_cost(mut self, cost: f64) -> Self {
        self.max_cost = Some(cost);
        self
    }

    /// The target host (lower-cased), for bans and per-site statistics.
    pub fn target_host(mut self, host: &str) -> Self {
        self.target_host = Some(Arc::from(host.to_ascii_lowercase()));
        self
    }

    /// The sticky session key.
    pub fn sticky_key(mut self, key: impl Into<String>) -> Self {
        self.sticky_key = Some(key.into());
        self
    }

    /// The target host, if set.
    pub fn target_host_name(&self) -> Option<&str> {
        self.target_host.as_deref()
    }

    /// Passes over `proxy` (see [`avoid`](Self::avoid)).
    pub fn avoid(mut self, proxy: ProxyId) -> Self {
        self.avoid.push(proxy);
        self
    }

    /// True when no filter is set (context fields do not count).
    pub fn is_unfiltered(&self) -> bool {
        self.avoid.is_empty()
            && self.region.is_none()
            && self.kinds.is_empty()
            && self.providers.is_empty()
            && self.tags.is_empty()
            && self.min_quality.is_none()
            && self.max_cost.is_none()
    }
}

mod host_serde {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(host: &Option<Arc<str>>, s: S) -> Result<S::Ok, S::Error> {
        match host {
            Some(h) => s.serialize_some(&**h),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Arc<str>>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.map(|h| Arc::from(h.to_ascii_lowercase())))
    }
}
