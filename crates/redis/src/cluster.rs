//! What a Redis Cluster asks of keys: every multi-key command, transaction and script
//! touches one hash slot. And how to tell a cluster node from a standalone Redis.

use redis::cluster_routing::Slot;

/// The hash tag of `key`: the text between its first `{` and the first `}` after it,
/// when not empty. A cluster places a key by its hash tag when it has one (else by the
/// whole key), so keys with the same tag share a slot.
///
/// ```
/// use harvester_redis::hash_tag;
///
/// assert_eq!(hash_tag("harvester:{proxies}:index:all"), Some("proxies"));
/// assert_eq!(hash_tag("harvester:pages"), None);
/// assert_eq!(hash_tag("a{}b{c}"), None, "an empty first tag counts as none");
/// ```
pub fn hash_tag(key: &str) -> Option<&str> {
    let open = key.find('{')?;
    let close = key[open + 1..].find('}')?;
    let tag = &key[open + 1..open + 1 + close];
    (!tag.is_empty()).then_some(tag)
}

/// Whether every key of `keys` hashes to one cluster slot (true for none or one): what a
/// script, a `MULTI`/`EXEC` or a multi-key command needs on a cluster.
///
/// ```
/// use harvester_redis::same_slot;
///
/// assert!(same_slot(["harvester:{proxies}:entry:p1", "harvester:{proxies}:index:all"]));
/// assert!(same_slot(["pages", "{pages}:dead"]), "the tag of one is the whole other");
/// assert!(!same_slot(["pages", "pages:dead"]));
/// ```
pub fn same_slot<K: AsRef<[u8]>>(keys: impl IntoIterator<Item = K>) -> bool {
    let mut slots = keys.into_iter().map(|key| Slot::for_key(key.as_ref()));
    match slots.next() {
        Some(first) => slots.all(|slot| slot == first),
        None => true,
    }
}

/// `cluster_enabled` from the text of `INFO cluster`: `Some(true)` on a cluster node,
/// `Some(false)` on a standalone Redis, `None` when the text does not say.
pub(crate) fn cluster_enabled(info: &str) -> Option<bool> {
    info.lines().find_map(|line| match line.trim().strip_prefix("cluster_enabled:")? {
        "1" => Some(true),
        "0" => Some(false),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_cluster_tells_the_mode() {
        assert_eq!(cluster_enabled("# Cluster\r\ncluster_enabled:1\r\n"), Some(true));
        assert_eq!(cluster_enabled("# Cluster\r\ncluster_enabled:0\r\n"), Some(false));
        assert_eq!(cluster_enabled("# Server\r\nredis_version:7.0.15\r\n"), None);
    }

    #[test]
    fn hash_tags_follow_the_cluster_rule() {
        assert_eq!(hash_tag("{user1000}.following"), Some("user1000"));
        assert_eq!(hash_tag("foo{}{bar}"), None);
        assert_eq!(hash_tag("foo{{bar}}zap"), Some("{bar"));
        assert_eq!(hash_tag("foo{bar}{zap}"), Some("bar"));
        assert_eq!(hash_tag("no tag"), None);
        assert_eq!(hash_tag("open{ only"), None);
    }

    proptest::proptest! {
        #[test]
        fn keys_with_one_tag_share_a_slot(tag in "[a-z0-9:]{1,12}", a in "[^{}]{0,12}", b in "[^{}]{0,12}") {
            let first = format!("{a}{{{tag}}}{b}");
            let second = format!("{b}{{{tag}}}:dead");
            proptest::prop_assert!(same_slot([first.as_str(), second.as_str(), tag.as_str()]));
        }
    }
}
