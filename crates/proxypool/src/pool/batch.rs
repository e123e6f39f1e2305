//! Many additions, updates and removals in one snapshot swap.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{Member, ProxyPool};
use crate::proxy::{Proxy, ProxyId};

/// What [`ProxyPool::apply_batch`] changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Proxies new to the pool.
    pub added: usize,
    /// Proxies whose metadata or URL was replaced (their health kept).
    pub replaced: usize,
    /// Proxies removed.
    pub removed: usize,
}

impl ProxyPool {
    /// Upserts `upserts` and removes `removals` in one snapshot swap: what
    /// [`upsert`](Self::upsert) and [`remove`](Self::remove) do one by one, at the cost of
    /// one change, for merging a large set (say, a shared registry) into the pool. An id
    /// upserted twice takes the last version; an id both upserted and removed is removed;
    /// unknown ids to remove are ignored. Proxies that stay keep their health.
    pub fn apply_batch(
        &self,
        upserts: impl IntoIterator<Item = Proxy>,
        removals: impl IntoIterator<Item = ProxyId>,
    ) -> BatchReport {
        let removals: HashSet<ProxyId> = removals.into_iter().collect();
        // New proxies join in the order given; a repeated id keeps its first place.
        let mut order: Vec<ProxyId> = Vec::new();
        let mut latest: HashMap<ProxyId, Proxy> = HashMap::new();
        for proxy in upserts.into_iter().filter(|p| !removals.contains(p.id())) {
            if !latest.contains_key(proxy.id()) {
                order.push(proxy.id().clone());
            }
            latest.insert(proxy.id().clone(), proxy);
        }
        let result = self.write(|_, next| {
            let mut report = BatchReport::default();
            let mut kept: Vec<Arc<Member>> = Vec::with_capacity(next.len() + latest.len());
            for member in next.drain(..) {
                if removals.contains(member.proxy.id()) {
                    member.health.mark_removed(self.shared.context.ejections());
                    report.removed += 1;
                } else if let Some(proxy) = latest.remove(member.proxy.id()) {
                    report.replaced += 1;
                    kept.push(self.new_member(proxy, member.health.clone()));
                } else {
                    kept.push(member);
                }
            }
            let joining: Vec<_> = order.iter().filter_map(|id| latest.remove(id)).map(|proxy| (proxy, None)).collect();
            report.added += joining.len();
            kept.extend(self.new_members(joining));
            *next = kept;
            Ok(report)
        });
        result.unwrap_or_default()
    }
}
