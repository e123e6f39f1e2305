//! Per-site proxy policy: which requirements (and balancer) a request gets by its target
//! host, the seed's "platform" rules made general.
//!
//! ```
//! use harvester_proxypool::client::{HostPolicy, HostRule, Priority};
//! use harvester_proxypool::{ProxyKind, Requirements};
//!
//! let policy = HostPolicy::new(Requirements::new())
//!     .rule(
//!         HostRule::new("*.example-shop.com", Requirements::new().kind(ProxyKind::Residential).min_quality(0.85))?
//!             .fallback(Requirements::new().min_quality(0.5)),
//!     );
//! let route = policy.route("www.example-shop.com");
//! assert_eq!(route.requirements.min_quality, Some(0.85));
//! assert!(route.fallback_for(Priority::High).is_some());
//! assert!(route.fallback_for(Priority::Normal).is_none());
//! # Ok::<(), harvester_proxypool::ConfigError>(())
//! ```

use std::fmt;
use std::sync::Arc;

use crate::balance::Balancer;
use crate::error::ConfigError;
use crate::requirements::Requirements;

/// How urgent a request is. Put it in the request's extensions; the default is `Normal`.
/// A rule's fallback requirements are tried only for `High` and `Critical` requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Can wait or fail.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Worth a lesser proxy rather than no answer.
    High,
    /// Worth any proxy.
    Critical,
}

/// A host pattern: `shop.example` (that host only) or `*.shop.example` (its subdomains).
#[derive(Clone, Debug, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    Subdomains(String),
}

impl HostPattern {
    fn parse(pattern: &str) -> Result<HostPattern, ConfigError> {
        let lower = pattern.trim().to_ascii_lowercase();
        let (wildcard, host) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, lower.as_str()),
        };
        let valid = !host.is_empty()
            && host.split('.').all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        if !valid {
            return Err(ConfigError::new(
                "policy.pattern",
                format!("'{pattern}' is not a host name or '*.' followed by one"),
            ));
        }
        Ok(if wildcard { HostPattern::Subdomains(format!(".{host}")) } else { HostPattern::Exact(host.to_owned()) })
    }

    /// How specific a match is (longer is more specific; exact beats any wildcard), or
    /// `None` if `host` does not match.
    fn specificity(&self, host: &str) -> Option<usize> {
        match self {
            HostPattern::Exact(h) => (h == host).then_some(usize::MAX),
            HostPattern::Subdomains(suffix) => host.ends_with(suffix.as_str()).then_some(suffix.len()),
        }
    }
}

/// Requirements, an optional fallback and an optional balancer for the hosts matching a
/// pattern.
#[derive(Clone)]
pub struct HostRule {
    pattern: HostPattern,
    requirements: Requirements,
    fallback: Option<Requirements>,
    balancer: Option<Arc<dyn Balancer>>,
}

impl HostRule {
    /// A rule for `pattern` (`host` or `*.host`); refuses anything else.
    pub fn new(pattern: &str, requirements: Requirements) -> Result<HostRule, ConfigError> {
        Ok(HostRule { pattern: HostPattern::parse(pattern)?, requirements, fallback: None, balancer: None })
    }

    /// Requirements to try when none of the proxies meeting the rule's can be leased and
    /// the request's priority is `High` or above.
    pub fn fallback(mut self, requirements: Requirements) -> Self {
        self.fallback = Some(requirements);
        self
    }

    /// The balancer for these hosts instead of the pool's.
    pub fn balancer(mut self, balancer: impl Balancer) -> Self {
        self.balancer = Some(Arc::new(balancer));
        self
    }
}

impl fmt::Debug for HostRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostRule")
            .field("pattern", &self.pattern)
            .field("requirements", &self.requirements)
            .field("fallback", &self.fallback)
            .field("balancer", &self.balancer.as_ref().map(|b| b.name()))
            .finish()
    }
}

/// The rules, most specific match first, and the requirements for every other host.
#[derive(Clone, Debug, Default)]
pub struct HostPolicy {
    rules: Vec<HostRule>,
    default: Requirements,
}

/// What the policy says for one host.
#[derive(Clone, Copy, Debug)]
pub struct Route<'a> {
    /// The requirements to lease with.
    pub requirements: &'a Requirements,
    fallback: Option<&'a Requirements>,
    balancer: Option<&'a Arc<dyn Balancer>>,
}

impl<'a> Route<'a> {
    /// The fallback requirements, if the rule has some and `priority` allows them.
    pub fn fallback_for(&self, priority: Priority) -> Option<&'a Requirements> {
        self.fallback.filter(|_| priority >= Priority::High)
    }

    /// The rule's balancer, if it has one.
    pub fn balancer(&self) -> Option<&'a dyn Balancer> {
        self.balancer.map(|b| &**b as &dyn Balancer)
    }
}

impl HostPolicy {
    /// A policy with no rules, giving every host `default`.
    pub fn new(default: Requirements) -> Self {
        HostPolicy { rules: Vec::new(), default }
    }

    /// Adds a rule.
    pub fn rule(mut self, rule: HostRule) -> Self {
        self.rules.push(rule);
        self
    }

    /// The route for `host` (lower-case): the most specific matching rule, else the default.
    pub fn route(&self, host: &str) -> Route<'_> {
        let best = self
            .rules
            .iter()
            .filter_map(|r| r.pattern.specificity(host).map(|s| (s, r)))
            .max_by_key(|(s, _)| *s)
            .map(|(_, r)| r);
        match best {
            Some(rule) => Route {
                requirements: &rule.requirements,
                fallback: rule.fallback.as_ref(),
                balancer: rule.balancer.as_ref(),
            },
            None => Route { requirements: &self.default, fallback: None, balancer: None },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_rule_wins() {
        let policy = HostPolicy::new(Requirements::new())
            .rule(HostRule::new("*.shop.example", Requirements::new().region("us")).expect("valid"))
            .rule(HostRule::new("*.eu.shop.example", Requirements::new().region("eu")).expect("valid"))
            .rule(HostRule::new("checkout.eu.shop.example", Requirements::new().region("de")).expect("valid"));
        let region = |host: &str| policy.route(host).requirements.region.clone();
        assert_eq!(region("www.shop.example").as_deref(), Some("us"));
        assert_eq!(region("www.eu.shop.example").as_deref(), Some("eu"));
        assert_eq!(region("checkout.eu.shop.example").as_deref(), Some("de"));
        assert_eq!(region("shop.example"), None, "a wildcard matches subdomains, not the domain itself");
        assert_eq!(region("notshop.example"), None);
    }

    #[test]
    fn bad_patterns_are_refused_with_the_pattern_named() {
        for bad in ["", "*.", "a..b", "*.*.x", "sh op.example", "x.example/path"] {
            let err = HostRule::new(bad, Requirements::new()).expect_err("invalid pattern");
            assert_eq!(err.field, "policy.pattern", "{bad}");
        }
    }
}
