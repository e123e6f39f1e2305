//! The immutable view of the pool that picks read: the proxies in slots, with region,
//! provider, kind and tag indexes and interned ids so that filtering compares integers.
//!
//! Writers build a new snapshot and swap it in; a pick holds the one it loaded for its
//! whole duration, so a concurrent add or remove never changes the set under it.

use std::collections::HashMap;
use std::sync::Arc;

use crate::clock::Nanos;
use crate::config::HealthConfig;
use crate::hash::hash_str;
use crate::health::{Chunk, HealthContext, Hot, HotRef, ProxyHealth};
use crate::proxy::{Proxy, ProxyId};
use crate::requirements::Requirements;

const NONE: u32 = u32::MAX;

/// One version of a proxy in the pool: what a lease holds (one `Arc` per lease). An
/// update of the proxy's metadata makes a new member that shares the old one's health,
/// so leases taken before the update keep the proxy they were given.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) proxy: Arc<Proxy>,
    pub(crate) health: Arc<ProxyHealth>,
    /// The health's hot line, so that ending a lease touches this member and that line only.
    pub(crate) hot: HotRef,
    pub(crate) context: Arc<HealthContext>,
}

/// What a pick reads of one slot before it looks at the slot itself, in a dense array
/// beside the slots (24 bytes): where the proxy's hot line is, its session limit, and the
/// member a lease takes. An unfiltered pick reads this and the hot line of each proxy it
/// looks at, and the slot only of the one it takes.
pub(crate) struct Dense {
    chunk: Arc<Chunk>,
    pub(crate) member: Arc<Member>,
    /// 0 for no limit (0 sessions is refused when the proxy is built).
    max_sessions: u32,
    line: u16,
}

impl Dense {
    /// The proxy's hot line.
    #[inline]
    pub(crate) fn hot(&self) -> &Hot {
        self.chunk.line(self.line)
    }

    #[inline]
    pub(crate) fn max_sessions(&self) -> Option<u32> {
        (self.max_sessions != 0).then_some(self.max_sessions)
    }

    /// At its session limit.
    #[inline]
    fn is_full(&self, hot: &Hot) -> bool {
        self.max_sessions != 0 && hot.in_flight() >= self.max_sessions
    }
}

/// One proxy in one snapshot: exactly one cache line, holding what filtering reads, so a
/// filtered pick touches this line besides its `Dense` entry and hot line.
#[repr(align(64))]
pub(crate) struct Slot {
    /// The same health as `member.health`, one pointer hop closer for picks.
    health: Arc<ProxyHealth>,
    pub(crate) member: Arc<Member>,
    tags: Box<[u32]>,
    cost: f64,
    pub(crate) id_hash: u64,
    region: u32,
    provider: u32,
    /// For the weighted balancer's scan, which would otherwise go to the proxy for it.
    weight: u32,
    kind_bit: u8,
}

impl Slot {
    #[inline]
    pub(crate) fn health(&self) -> &ProxyHealth {
        &self.health
    }

    #[inline]
    pub(crate) fn proxy(&self) -> &Proxy {
        &self.member.proxy
    }

    #[inline]
    pub(crate) fn cost(&self) -> f64 {
        self.cost
    }

    #[inline]
    pub(crate) fn weight(&self) -> u32 {
        self.weight
    }

    /// The proxy's kind group (see `health::sites::kind_group`), without going to its
    /// metadata.
    #[inline]
    pub(crate) fn kind_group(&self) -> usize {
        if self.kind_bit == 0 { crate::health::sites::KIND_GROUPS - 1 } else { self.kind_bit.trailing_zeros() as usize }
    }

    #[inline]
    pub(crate) fn matches(&self, f: &Filter, cfg: &HealthConfig) -> bool {
        (0..Filter::STEPS).all(|step| self.matches_step(f, step, cfg))
    }

    /// One filter of the evaluation order `Filter::describe` names.
    #[inline]
    fn matches_step(&self, f: &Filter, step: usize, cfg: &HealthConfig) -> bool {
        match step {
            0 => f.region.is_none_or(|r| r == self.region),
            1 => f.kinds == 0 || f.kinds & self.kind_bit != 0,
            2 => f.providers.is_empty() || f.providers.contains(&self.provider),
            3 => f.tags.iter().all(|t| self.tags.binary_search(t).is_ok()),
            4 => f.max_cost.is_none_or(|max| self.cost <= max),
            5 => !f.avoid.contains(&self.id_hash),
            _ => f.min_quality.is_none_or(|min| self.health().quality(cfg) >= min),
        }
    }
}

/// The one availability rule, for picking and for explaining an empty pick alike: `None`
/// when the proxy in `slot` (with `dense` its entry) may serve a request now, else the
/// first reason it may not, checked in this order: the request's filter, the proxy's
/// session limit, an ejection (which does not count while `ejections_ignored`: panic
/// mode), a ban by the target host. The clock and panic mode are read only when needed,
/// and the slot and the proxy's health only when the hot line says they must be.
#[inline]
pub(crate) fn unavailable(
    slot: &Slot,
    dense: &Dense,
    filter: &Filter,
    host: Option<&str>,
    now: impl Fn() -> Nanos,
    ejections_ignored: impl FnOnce() -> bool,
    cfg: &HealthConfig,
) -> Option<Unavailable> {
    if filter.needs_check() && !slot.matches(filter, cfg) {
        return Some(Unavailable::Unmatched);
    }
    let hot = dense.hot();
    // The session limit first: one load, and the reason a pool under load sees most.
    if dense.is_full(hot) {
        return Some(Unavailable::Busy);
    }
    if hot.ejection_end() != 0
        && let Some(until) = slot.health().ejected_until(&now)
        && !ejections_ignored()
    {
        return Some(Unavailable::Ejected { until });
    }
    if hot.may_be_banned(&now)
        && let Some(until) = slot.health().banned_until(host, &now)
    {
        return Some(Unavailable::Banned { until });
    }
    None
}

/// Why a proxy may not serve a request now; see [`unavailable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unavailable {
    /// It does not meet the request's requirements.
    Unmatched,
    /// Ejected until then.
    Ejected { until: Nanos },
    /// Banned by the target host until then.
    Banned { until: Nanos },
    /// At its session limit.
    Busy,
}

/// Requirements with names resolved to the snapshot's interned ids.
#[derive(Debug, Default)]
pub(crate) struct Filter {
    region: Option<u32>,
    kinds: u8,
    providers: Vec<u32>,
    tags: Vec<u32>,
    max_cost: Option<f64>,
    min_quality: Option<f64>,
    /// Id hashes of proxies to pass over (a retry's earlier proxies); a few at most.
    avoid: Vec<u64>,
    /// False when no filter is set, or when the one filter set is exactly what the
    /// index list serving the candidates holds: then no candidate needs checking.
    check: bool,
}

impl Filter {
    const STEPS: usize = 7;

    /// No filter at all: what unfiltered requirements resolve to.
    pub(crate) const NONE: Filter = Filter {
        region: None,
        kinds: 0,
        providers: Vec::new(),
        tags: Vec::new(),
        max_cost: None,
        min_quality: None,
        avoid: Vec::new(),
        check: false,
    };

    /// Must each candidate be checked against the filter?
    #[inline]
    pub(crate) fn needs_check(&self) -> bool {
        self.check
    }

    fn describe(step: usize, req: &Requirements, avoid: &[ProxyId]) -> String {
        match step {
            0 => format!("region={}", req.region.as_deref().unwrap_or_default()),
            1 => format!("kind in [{}]", req.kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")),
            2 => format!("provider in [{}]", req.providers.join(", ")),
            3 => format!("tags [{}]", req.tags.join(", ")),
            4 => format!("max_cost={}", req.max_cost.unwrap_or_default()),
            5 => format!("avoid [{}]", avoid.iter().map(ProxyId::as_str).collect::<Vec<_>>().join(", ")),
            _ => format!("min_quality={}", req.min_quality.unwrap_or_default()),
        }
    }
}

/// The immutable set of proxies with its indexes.
#[derive(Default)]
pub(crate) struct Snapshot {
    pub(crate) generation: u64,
    pub(crate) slots: Vec<Slot>,
    /// One entry per slot, in slot order.
    pub(crate) dense: Vec<Dense>,
    by_id: HashMap<ProxyId, u32>,
    regions: HashMap<Box<str>, u32>,
    by_region: Vec<Vec<u32>>,
    providers: HashMap<Box<str>, u32>,
    by_provider: Vec<Vec<u32>>,
    by_kind: [Vec<u32>; 3],
    tags: HashMap<Box<str>, u32>,
    by_tag: Vec<Vec<u32>>,
}

impl Snapshot {
    pub(crate) fn build(generation: u64, members: impl IntoIterator<Item = Arc<Member>>) -> Snapshot {
        let mut s = Snapshot { generation, ..Snapshot::default() };
        let members = members.into_iter();
        s.slots.reserve(members.size_hint().0);
        s.dense.reserve(members.size_hint().0);
        for member in members {
            let proxy = &member.proxy;
            let pos = s.slots.len() as u32;
            let meta = proxy.meta();
            let region = meta.region.as_deref().map_or(NONE, |r| intern(&mut s.regions, &mut s.by_region, r, pos));
            let provider =
                meta.provider.as_deref().map_or(NONE, |p| intern(&mut s.providers, &mut s.by_provider, p, pos));
            let mut tags: Vec<u32> = meta.tags.iter().map(|t| intern(&mut s.tags, &mut s.by_tag, t, pos)).collect();
            tags.sort_unstable();
            let kind_bit = meta.kind.map_or(0, |k| {
                s.by_kind[k as usize].push(pos);
                k.bit()
            });
            s.by_id.insert(proxy.id().clone(), pos);
            let (chunk, line) = member.hot.clone().into_parts();
            s.dense.push(Dense { chunk, line, max_sessions: meta.max_sessions.unwrap_or(0), member: member.clone() });
            s.slots.push(Slot {
                id_hash: hash_str(proxy.id().as_str()),
                cost: meta.cost_per_request,
                weight: meta.weight,
                region,
                provider,
                kind_bit,
                tags: tags.into_boxed_slice(),
                health: member.health.clone(),
                member,
            });
        }
        s
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    pub(crate) fn position(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).map(|&p| p as usize)
    }

    /// Resolves the requirements, and the proxies to pass over, into a filter and the smallest index list that can
    /// serve them (`None`: scan the whole pool). `Err` names a filter value that no
    /// proxy in the pool has at all.
    pub(crate) fn resolve(&self, req: &Requirements, avoid: &[ProxyId]) -> Result<(Filter, Option<&[u32]>), String> {
        if req.is_unfiltered() && avoid.is_empty() {
            return Ok((Filter::default(), None));
        }
        let mut filter = Filter { max_cost: req.max_cost, min_quality: req.min_quality, ..Filter::default() };
        // How many filters are set, and whether the chosen index list holds exactly one.
        filter.avoid = avoid.iter().map(|id| hash_str(id.as_str())).collect();
        let mut set = usize::from(req.max_cost.is_some())
            + usize::from(req.min_quality.is_some())
            + usize::from(!filter.avoid.is_empty());
        let mut pick: Option<&[u32]> = None;
        let mut exact = false;
        if let Some(region) = &req.region {
            set += 1;
            let id = *self.regions.get(region.as_str()).ok_or_else(|| Filter::describe(0, req, avoid))?;
            filter.region = Some(id);
            (pick, exact) = smaller((pick, exact), &self.by_region[id as usize], true);
        }
        if !req.kinds.is_empty() {
            set += 1;
            for kind in &req.kinds {
                filter.kinds |= kind.bit();
            }
            if let [kind] = req.kinds.as_slice() {
                (pick, exact) = smaller((pick, exact), &self.by_kind[*kind as usize], true);
            }
        }
        if !req.providers.is_empty() {
            set += 1;
            filter.providers = req.providers.iter().filter_map(|p| self.providers.get(p.as_str()).copied()).collect();
            if filter.providers.is_empty() {
                return Err(Filter::describe(2, req, avoid));
            }
            if let [id] = filter.providers.as_slice() {
                (pick, exact) = smaller((pick, exact), &self.by_provider[*id as usize], true);
            }
        }
        for tag in &req.tags {
            set += 1;
            let id = *self.tags.get(tag.as_str()).ok_or_else(|| format!("tag={tag}"))?;
            filter.tags.push(id);
            (pick, exact) = smaller((pick, exact), &self.by_tag[id as usize], true);
        }
        filter.check = !(set == 1 && exact);
        Ok((filter, pick))
    }

    /// Names the first filter, in evaluation order, after which no proxy is left.
    pub(crate) fn emptying_filter(
        &self,
        filter: &Filter,
        req: &Requirements,
        avoid: &[ProxyId],
        cfg: &HealthConfig,
    ) -> String {
        let mut alive: Vec<&Slot> = self.slots.iter().collect();
        for step in 0..Filter::STEPS {
            alive.retain(|slot| slot.matches_step(filter, step, cfg));
            if alive.is_empty() {
                return Filter::describe(step, req, avoid);
            }
        }
        "the requirements".to_owned()
    }
}

/// The shorter of the current index list and `candidate`, with whether it alone
/// implements the filter it came from.
fn smaller<'a>(current: (Option<&'a [u32]>, bool), candidate: &'a [u32], exact: bool) -> (Option<&'a [u32]>, bool) {
    match current {
        (Some(c), e) if c.len() <= candidate.len() => (Some(c), e),
        _ => (Some(candidate), exact),
    }
}

fn intern(names: &mut HashMap<Box<str>, u32>, lists: &mut Vec<Vec<u32>>, name: &str, pos: u32) -> u32 {
    let id = *names.entry(Box::from(name)).or_insert_with(|| {
        lists.push(Vec::new());
        (lists.len() - 1) as u32
    });
    lists[id as usize].push(pos);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_one_cache_line_and_its_dense_entry_24_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 64);
        assert_eq!(std::mem::size_of::<Dense>(), 24);
    }
}
