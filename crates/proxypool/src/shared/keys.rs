//! The names of everything the shared state keeps in Redis, in one place.
//!
//! Every name starts with the connection's key prefix and the configured namespace
//! (`harvester:` and `proxies:` by default). Proxy ids, regions, providers and hosts are
//! user text: inside a name, `%` and `:` are percent-encoded, so that no two different
//! inputs share a name (`a:b` + `c` never meets `a` + `b:c`).

use crate::proxy::ProxyId;

use super::tier::QualityTier;

/// The names of the keys and the channel, for one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    /// Names under `key_prefix` + `namespace`.
    pub(crate) fn new(key_prefix: &str, namespace: &str) -> Keys {
        Keys { prefix: format!("{key_prefix}{namespace}") }
    }

    /// The registry entry of one proxy (a string holding its JSON, with a TTL).
    pub(crate) fn entry(&self, id: &str) -> String {
        format!("{}entry:{}", self.prefix, escape(id))
    }

    /// The index of every registered proxy (a sorted set of ids scored by expiry).
    pub(crate) fn all(&self) -> String {
        format!("{}index:all", self.prefix)
    }

    /// The index of the proxies in one region.
    pub(crate) fn region(&self, region: &str) -> String {
        format!("{}index:region:{}", self.prefix, escape(region))
    }

    /// The index of one provider's proxies.
    pub(crate) fn provider(&self, provider: &str) -> String {
        format!("{}index:provider:{}", self.prefix, escape(provider))
    }

    /// The index of one quality tier.
    pub(crate) fn tier(&self, tier: QualityTier) -> String {
        format!("{}index:tier:{}", self.prefix, tier.as_str())
    }

    /// The running ejection of one proxy (its verdict's JSON, TTL = the time left).
    pub(crate) fn ejection(&self, id: &ProxyId) -> String {
        format!("{}verdict:eject:{}", self.prefix, escape(id.as_str()))
    }

    /// The running ban of one proxy by one host (`None`: by every host).
    pub(crate) fn ban(&self, id: &ProxyId, host: Option<&str>) -> String {
        format!("{}verdict:ban:{}:{}", self.prefix, escape(id.as_str()), host.map(escape).unwrap_or_default())
    }

    /// The index of running verdicts (a sorted set of verdict keys scored by expiry),
    /// which the polling fallback reads.
    pub(crate) fn verdicts(&self) -> String {
        format!("{}verdicts", self.prefix)
    }

    /// The pub/sub channel verdicts are announced on.
    pub(crate) fn channel(&self) -> String {
        format!("{}health", self.prefix)
    }
}

/// `text` with `%` and `:` percent-encoded.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            ':' => out.push_str("%3A"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_start_with_prefix_and_namespace() {
        let keys = Keys::new("harvester:", "proxies:");
        assert_eq!(keys.entry("p1"), "harvester:proxies:entry:p1");
        assert_eq!(keys.region("eu-west"), "harvester:proxies:index:region:eu-west");
        assert_eq!(keys.tier(QualityTier::High), "harvester:proxies:index:tier:high");
        assert_eq!(keys.ban(&ProxyId::from("p1"), None), "harvester:proxies:verdict:ban:p1:");
        assert_eq!(keys.channel(), "harvester:proxies:health");
    }

    #[test]
    fn user_text_cannot_make_two_names_meet() {
        let keys = Keys::new("", "");
        let a = keys.ban(&ProxyId::from("a:b"), Some("c"));
        let b = keys.ban(&ProxyId::from("a"), Some("b:c"));
        assert_ne!(a, b);
        assert_eq!(escape("50%:x"), "50%25%3Ax");
    }

    proptest::proptest! {
        #[test]
        fn escaping_is_injective_and_leaves_no_colon(a in ".{0,12}", b in ".{0,12}") {
            proptest::prop_assert!(!escape(&a).contains(':'));
            if a != b {
                proptest::prop_assert_ne!(escape(&a), escape(&b));
            }
        }
    }
}
