use super::{Balancer, Candidates, RoundRobin};
use crate::hash::{hash_str, mix64};

/// Keeps a session on one proxy: rendezvous (highest random weight) hashing of the
/// request's sticky key against every eligible candidate's id.
///
/// A key stays on its proxy while that proxy is eligible; when it is ejected, banned,
/// full or removed, only the keys that lived on it move, each to its next-best proxy,
/// and adding a proxy takes about 1/N of the keys. Requests without a sticky key go to
/// the fallback balancer (round robin by default). O(candidates) per pick: every
/// candidate's score is one multiply-xorshift mix.
#[derive(Debug, Default)]
pub struct Sticky<B = RoundRobin> {
    fallback: B,
}

impl Sticky {
    /// Sticky with round robin for requests without a key.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<B: Balancer> Sticky<B> {
    /// Sticky with `fallback` for requests without a key.
    pub fn with_fallback(fallback: B) -> Self {
        Sticky { fallback }
    }

    /// Rendezvous score of candidate `i` for `key`.
    fn score(c: &Candidates<'_>, key_hash: u64, i: usize) -> u64 {
        mix64(key_hash ^ c.id_hash(i))
    }
}

impl<B: Balancer> Balancer for Sticky<B> {
    fn name(&self) -> &'static str {
        "sticky"
    }

    fn pick(&self, c: &Candidates<'_>) -> Option<usize> {
        let Some(key) = c.sticky_key() else {
            return self.fallback.pick(c);
        };
        let key_hash = hash_str(key);
        (0..c.len()).filter(|&i| c.is_eligible(i)).max_by_key(|&i| Self::score(c, key_hash, i))
    }
}
