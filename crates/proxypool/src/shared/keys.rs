//! The names of everything the shared state keeps in Redis, in one place.
//!
//! Every name starts with the connection's key prefix and the configured namespace as a
//! hash tag (`harvester:{proxies}:` by default): every key of one namespace is in one
//! slot of a Redis Cluster, so each script may touch any of them. Proxy ids, regions,
//! providers and hosts are user text: inside a name, `%` and `:` are percent-encoded, so
//! that no two different inputs share a name (`a:b` + `c` never meets `a` + `b:c`); `{`
//! and `}` in them are harmless (the tag is the first one, in the prefix).

use crate::proxy::ProxyId;

use super::tier::QualityTier;

/// The names of the keys and the channel, for one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    /// Names under `key_prefix` + `{namespace}:` (the namespace without its trailing
    /// colons as the hash tag; [`SharedStateConfig::validate`](super::SharedStateConfig::validate)
    /// makes sure it is a tag).
    pub(crate) fn new(key_prefix: &str, namespace: &str) -> Keys {
        Keys { prefix: format!("{key_prefix}{{{}}}:", namespace.trim_end_matches(':')) }
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

    /// The name of the running ejection of one proxy, a member of [`verdicts`](Self::verdicts)
    /// and a field of [`verdict_json`](Self::verdict_json).
    pub(crate) fn ejection(id: &ProxyId) -> String {
        format!("eject:{}", escape(id.as_str()))
    }

    /// The name of the running ban of one proxy by one host (`None`: by every host).
    pub(crate) fn ban(id: &ProxyId, host: Option<&str>) -> String {
        format!("ban:{}:{}", escape(id.as_str()), host.map(escape).unwrap_or_default())
    }

    /// The running verdicts: a sorted set of verdict names scored by their end (Redis
    /// milliseconds), which the polling fallback reads.
    pub(crate) fn verdicts(&self) -> String {
        format!("{}verdicts", self.prefix)
    }

    /// The running verdicts' JSON: a hash from verdict name to JSON, beside
    /// [`verdicts`](Self::verdicts), so that a script reading them names both keys.
    pub(crate) fn verdict_json(&self) -> String {
        format!("{}verdicts:json", self.prefix)
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
    fn names_start_with_prefix_and_namespace_as_hash_tag() {
        let keys = Keys::new("harvester:", "proxies:");
        assert_eq!(keys.entry("p1"), "harvester:{proxies}:entry:p1");
        assert_eq!(keys.region("eu-west"), "harvester:{proxies}:index:region:eu-west");
        assert_eq!(keys.tier(QualityTier::High), "harvester:{proxies}:index:tier:high");
        assert_eq!(keys.verdicts(), "harvester:{proxies}:verdicts");
        assert_eq!(keys.verdict_json(), "harvester:{proxies}:verdicts:json");
        assert_eq!(Keys::ban(&ProxyId::from("p1"), None), "ban:p1:");
        assert_eq!(keys.channel(), "harvester:{proxies}:health");
    }

    #[test]
    fn user_text_cannot_make_two_names_meet() {
        let a = Keys::ban(&ProxyId::from("a:b"), Some("c"));
        let b = Keys::ban(&ProxyId::from("a"), Some("b:c"));
        assert_ne!(a, b);
        assert_eq!(escape("50%:x"), "50%25%3Ax");
    }

    /// Every key one script call may get, for proxies and hosts of any text.
    fn every_key(keys: &Keys, texts: &[String]) -> Vec<String> {
        let mut all = vec![keys.all(), keys.verdicts(), keys.verdict_json()];
        all.extend(QualityTier::ALL.map(|tier| keys.tier(tier)));
        for text in texts {
            all.extend([keys.entry(text), keys.region(text), keys.provider(text)]);
        }
        all
    }

    proptest::proptest! {
        #[test]
        fn every_key_of_a_namespace_is_in_one_slot(
            prefix in "[a-z:]{0,10}",
            namespace in "[a-z0-9:.-]{1,10}",
            texts in proptest::collection::vec(".{0,12}", 1..6),
        ) {
            proptest::prop_assume!(!namespace.trim_end_matches(':').is_empty());
            let keys = Keys::new(&prefix, &namespace);
            let every = every_key(&keys, &texts);
            let tag = harvester_redis::hash_tag(&every[0]).map(str::to_owned);
            proptest::prop_assert_eq!(tag.as_deref(), Some(namespace.trim_end_matches(':')));
            for key in &every {
                proptest::prop_assert_eq!(harvester_redis::hash_tag(key), tag.as_deref(), "{}", key);
            }
            proptest::prop_assert!(harvester_redis::same_slot(&every));
        }
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
