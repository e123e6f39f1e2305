//! Which proxies of the registry the pool should gain, update or lose: the registry as
//! loaded, compared with what the pool holds.
//!
//! Only proxies this instance took from the registry are ever updated or removed: a
//! proxy the application added itself stays, whatever the registry says (even under the
//! same id). A mirrored proxy leaves only after missing from the registry for a grace
//! time, so that a Redis restart (an empty registry until the owners' next heartbeat)
//! does not empty the pool.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::proxy::{Proxy, ProxyId};

/// The proxies taken from the registry, and since when each has been missing from it.
#[derive(Debug, Default)]
pub(crate) struct RegistryMirror {
    mirrored: HashMap<ProxyId, Option<Instant>>,
}

/// The changes one load calls for.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct MirrorPlan {
    /// New or changed proxies.
    pub(crate) upserts: Vec<Proxy>,
    /// Proxies gone from the registry for longer than the grace time.
    pub(crate) removals: Vec<ProxyId>,
}

impl RegistryMirror {
    /// Compares `loaded` (the registry now) with the pool (`in_pool` looks a proxy up).
    pub(crate) fn plan(
        &mut self,
        now: Instant,
        grace: Duration,
        loaded: Vec<Proxy>,
        in_pool: impl Fn(&ProxyId) -> Option<Arc<Proxy>>,
    ) -> MirrorPlan {
        let mut plan = MirrorPlan::default();
        let mut present: HashSet<ProxyId> = HashSet::with_capacity(loaded.len());
        for proxy in loaded {
            if !present.insert(proxy.id().clone()) {
                continue;
            }
            let current = in_pool(proxy.id());
            match self.mirrored.get_mut(proxy.id()) {
                Some(missing_since) => {
                    *missing_since = None;
                    if current.as_deref() != Some(&proxy) {
                        plan.upserts.push(proxy);
                    }
                }
                // The application's own proxy: never ours to change.
                None if current.is_some() => {}
                None => {
                    self.mirrored.insert(proxy.id().clone(), None);
                    plan.upserts.push(proxy);
                }
            }
        }
        self.mirrored.retain(|id, missing_since| {
            if present.contains(id) {
                return true;
            }
            let since = *missing_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= grace {
                plan.removals.push(id.clone());
                return false;
            }
            true
        });
        plan.removals.sort();
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn proxy(id: &str, port: u16) -> Proxy {
        let meta = crate::proxy::ProxyMeta { id: Some(id.into()), ..Default::default() };
        Proxy::with_meta(&format!("http://127.0.0.1:{port}"), meta).unwrap_or_else(|e| panic!("{e}"))
    }

    fn pool_of(proxies: &[Proxy]) -> impl Fn(&ProxyId) -> Option<Arc<Proxy>> + '_ {
        |id| proxies.iter().find(|p| p.id() == id).cloned().map(Arc::new)
    }

    #[test]
    fn new_entries_are_added_and_changed_ones_updated() {
        let mut mirror = RegistryMirror::default();
        let now = Instant::now();
        let plan = mirror.plan(now, SEC, vec![proxy("a", 1), proxy("b", 2)], pool_of(&[]));
        assert_eq!(plan.upserts.len(), 2);
        let pool = [proxy("a", 1), proxy("b", 2)];
        let plan = mirror.plan(now, SEC, vec![proxy("a", 1), proxy("b", 3)], pool_of(&pool));
        assert_eq!(plan.upserts, vec![proxy("b", 3)], "only the changed one");
        assert!(plan.removals.is_empty());
    }

    #[test]
    fn the_applications_own_proxies_are_never_touched() {
        let mut mirror = RegistryMirror::default();
        let now = Instant::now();
        let own = [proxy("a", 1)];
        let plan = mirror.plan(now, SEC, vec![proxy("a", 9)], pool_of(&own));
        assert_eq!(plan, MirrorPlan::default());
        let plan = mirror.plan(now + 5 * SEC, SEC, vec![], pool_of(&own));
        assert_eq!(plan, MirrorPlan::default(), "nor removed when the registry loses them");
    }

    #[test]
    fn a_missing_entry_leaves_only_after_the_grace_time() {
        let mut mirror = RegistryMirror::default();
        let start = Instant::now();
        mirror.plan(start, 10 * SEC, vec![proxy("a", 1)], pool_of(&[]));
        let pool = [proxy("a", 1)];
        assert!(mirror.plan(start + SEC, 10 * SEC, vec![], pool_of(&pool)).removals.is_empty());
        assert!(mirror.plan(start + 5 * SEC, 10 * SEC, vec![], pool_of(&pool)).removals.is_empty());
        let plan = mirror.plan(start + 11 * SEC, 10 * SEC, vec![], pool_of(&pool));
        assert_eq!(plan.removals, vec![ProxyId::from("a")]);
    }

    #[test]
    fn an_entry_back_within_the_grace_time_starts_its_grace_over() {
        let mut mirror = RegistryMirror::default();
        let start = Instant::now();
        mirror.plan(start, 10 * SEC, vec![proxy("a", 1)], pool_of(&[]));
        let pool = [proxy("a", 1)];
        mirror.plan(start + SEC, 10 * SEC, vec![], pool_of(&pool));
        mirror.plan(start + 5 * SEC, 10 * SEC, vec![proxy("a", 1)], pool_of(&pool));
        assert!(mirror.plan(start + 12 * SEC, 10 * SEC, vec![], pool_of(&pool)).removals.is_empty());
        assert_eq!(mirror.plan(start + 22 * SEC, 10 * SEC, vec![], pool_of(&pool)).removals.len(), 1);
    }
}
