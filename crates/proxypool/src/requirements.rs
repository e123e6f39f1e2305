//! What may serve a request, and the request it is for.
//!
//! [`Requirements`] filter the proxies (region, kind, provider, tags, quality, cost): a
//! value that configuration and routing rules hold and share. [`RequestContext`] is the
//! request's own part (its target host, a sticky session key, the proxies it already
//! went through), built per request.
//!
//! ```
//! use harvester_proxypool::{ProxyKind, RequestContext, Requirements};
//!
//! let residential_in_us = Requirements::new().region("us").kind(ProxyKind::Residential).min_quality(0.85);
//! let request = RequestContext::new().target_host("WWW.Example-Shop.com").sticky_key("cart-4711");
//! assert_eq!(request.target_host_name(), Some("www.example-shop.com"));
//! # let _ = residential_in_us;
//! ```

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::proxy::{ProxyId, ProxyKind};

/// Which proxies may serve a request. Empty requirements match every proxy.
///
/// Region, kinds (any of), providers (any of), tags (all of), minimum quality, maximum
/// cost.
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
}

/// The request one `acquire` is for: its target host, sticky session key and the proxies
/// to pass over. Empty for a request to no particular host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestContext {
    target_host: Option<Arc<str>>,
    sticky_key: Option<String>,
    avoid: Vec<ProxyId>,
}

impl Requirements {
    /// Requirements that match every proxy, as a constant to borrow.
    pub const ANY: Requirements = Requirements {
        region: None,
        kinds: Vec::new(),
        providers: Vec::new(),
        tags: Vec::new(),
        min_quality: None,
        max_cost: None,
    };

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

    /// True when no filter is set.
    pub fn is_unfiltered(&self) -> bool {
        self.region.is_none()
            && self.kinds.is_empty()
            && self.providers.is_empty()
            && self.tags.is_empty()
            && self.min_quality.is_none()
            && self.max_cost.is_none()
    }
}

impl RequestContext {
    /// A request to no particular host.
    pub fn new() -> Self {
        Self::default()
    }

    /// The host the request goes to, normalised (lower-case, no port, IPv6 without
    /// brackets: [`harvester_core::host::normalize`]): bans and per-site statistics are kept
    /// per host.
    pub fn target_host(mut self, host: &str) -> Self {
        self.target_host = Some(Arc::from(&*harvester_core::host::normalize(host)));
        self
    }

    /// Keeps requests with the same key on the same proxy (sticky balancer).
    pub fn sticky_key(mut self, key: impl Into<String>) -> Self {
        self.sticky_key = Some(key.into());
        self
    }

    /// Passes over `proxy`: one a retried request already went through. A filter like the
    /// requirements (an `acquire` fails when it leaves no proxy); the
    /// [`ProxyClient`](crate::client::ProxyClient) then falls back to every proxy.
    pub fn avoid(mut self, proxy: ProxyId) -> Self {
        self.avoid.push(proxy);
        self
    }

    /// Passes over each of `proxies`; see [`avoid`](Self::avoid).
    pub fn avoiding(mut self, proxies: impl IntoIterator<Item = ProxyId>) -> Self {
        self.avoid.extend(proxies);
        self
    }

    /// The target host, lower-case, if set.
    pub fn target_host_name(&self) -> Option<&str> {
        self.target_host.as_deref()
    }

    /// The target host, shared with the lease.
    pub(crate) fn target_host_shared(&self) -> Option<&Arc<str>> {
        self.target_host.as_ref()
    }

    /// The sticky session key, if set.
    pub fn sticky_key_name(&self) -> Option<&str> {
        self.sticky_key.as_deref()
    }

    /// The proxies to pass over.
    pub fn avoided(&self) -> &[ProxyId] {
        &self.avoid
    }
}
