//! What the pool knows about each target site across all its proxies.
//!
//! Per site: how often it accepts each kind of proxy (the prior for a proxy never tried
//! there: a site that bans datacenter addresses is expected to ban the next one too),
//! the per-proxy request rate at which it starts answering 429 (learned from those
//! answers), its latency quantiles, and a short list of the proxies with the best
//! evidence there, so that a balancer can start from them instead of scanning the pool.
//!
//! The table is bounded: past [`EvidenceConfig::max_sites`](crate::config::EvidenceConfig)
//! the least recently seen sites are forgotten, an eighth at a time.

use std::collections::HashMap;

use foldhash::fast::RandomState;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use super::evidence::{FadingPair, fade};
use super::latency::LatencyStats;
use crate::clock::Nanos;
use crate::proxy::ProxyKind;

/// Groups a site's acceptance is kept by: one per [`ProxyKind`], one for proxies
/// without a kind.
pub(crate) const KIND_GROUPS: usize = 4;

/// The group of a proxy of `kind`.
#[inline]
pub(crate) fn kind_group(kind: Option<ProxyKind>) -> usize {
    kind.map_or(KIND_GROUPS - 1, |k| k as usize)
}

/// Every site the pool has heard from.
#[derive(Debug, Default)]
pub(crate) struct SiteTable {
    sites: RwLock<HashMap<Arc<str>, Arc<SiteStats>, RandomState>>,
}

impl SiteTable {
    /// The site's statistics, if it is known.
    pub(crate) fn get(&self, host: &str) -> Option<Arc<SiteStats>> {
        self.sites.read().unwrap_or_else(PoisonError::into_inner).get(host).cloned()
    }

    /// The site's statistics, made on first sight; marks the site seen at `now`.
    pub(crate) fn get_or_insert(&self, host: &str, now: Nanos, max_sites: usize) -> Arc<SiteStats> {
        if let Some(site) = self.get(host) {
            site.last_seen.store(now, Ordering::Relaxed);
            return site;
        }
        let mut sites = self.sites.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(site) = sites.get(host) {
            return site.clone();
        }
        if sites.len() >= max_sites.max(1) {
            forget_least_recent(&mut sites, max_sites.max(1));
        }
        let site = Arc::new(SiteStats { last_seen: AtomicU64::new(now), ..SiteStats::default() });
        sites.insert(Arc::from(host), site.clone());
        site
    }

    /// Every known site's account, by kind group.
    pub(crate) fn spending(&self) -> Vec<(Arc<str>, [SpendCounts; KIND_GROUPS])> {
        let sites = self.sites.read().unwrap_or_else(PoisonError::into_inner);
        sites.iter().map(|(host, site)| (host.clone(), site.spending())).collect()
    }

    /// Sites known now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.sites.read().unwrap_or_else(PoisonError::into_inner).len()
    }
}

/// Drops the least recently seen eighth of the table (at least one site), so that a
/// stream of new sites costs O(log n) each rather than a scan each.
fn forget_least_recent(sites: &mut HashMap<Arc<str>, Arc<SiteStats>, RandomState>, max_sites: usize) {
    let mut seen: Vec<Nanos> = sites.values().map(|s| s.last_seen.load(Ordering::Relaxed)).collect();
    let drop = (max_sites / 8).max(1).min(seen.len());
    let (_, &mut cutoff, _) = seen.select_nth_unstable(drop - 1);
    let mut left = drop;
    sites.retain(|_, s| {
        if left > 0 && s.last_seen.load(Ordering::Relaxed) <= cutoff {
            left -= 1;
            false
        } else {
            true
        }
    });
}

/// One site's statistics over every proxy.
#[derive(Debug, Default)]
pub(crate) struct SiteStats {
    last_seen: AtomicU64,
    /// Accepted and refused answers, by [`kind_group`].
    by_kind: [FadingPair; KIND_GROUPS],
    tolerance: RateTolerance,
    pub(crate) latency: LatencyStats,
    pub(crate) leaders: Leaders,
    /// Requests sent, answered and paid for, by [`kind_group`]: an account, not evidence
    /// (it never fades).
    spend: [Spend; KIND_GROUPS],
}

/// One kind group's account at a site.
#[derive(Debug, Default)]
struct Spend {
    requests: AtomicU64,
    successes: AtomicU64,
    /// In billionths of the proxies' currency: an integer sum, exact and lock-free.
    cost_nanos: AtomicU64,
}

/// Billionths of a currency unit per unit.
const NANOS_PER_UNIT: f64 = 1e9;

/// A kind group's account at a site, read.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct SpendCounts {
    pub(crate) requests: u64,
    pub(crate) successes: u64,
    pub(crate) cost: f64,
}

impl SiteStats {
    /// Counts an answer of the site to a proxy of `group`: accepted or refused.
    pub(crate) fn record_answer(&self, group: usize, accepted: bool, now: Nanos, half_life: f64) {
        let (good, bad) = if accepted { (1.0, 0.0) } else { (0.0, 1.0) };
        self.by_kind[group.min(KIND_GROUPS - 1)].add(good, bad, now, half_life);
    }

    /// Accounts one request through a proxy of `group` costing `cost`: whether the site
    /// answered it with a success.
    pub(crate) fn record_spend(&self, group: usize, success: bool, cost: f64) {
        let spend = &self.spend[group.min(KIND_GROUPS - 1)];
        spend.requests.fetch_add(1, Ordering::Relaxed);
        if success {
            spend.successes.fetch_add(1, Ordering::Relaxed);
        }
        // A cost is finite and non-negative (checked when the proxy was made); saturating.
        spend.cost_nanos.fetch_add((cost * NANOS_PER_UNIT).round() as u64, Ordering::Relaxed);
    }

    /// Each kind group's account.
    pub(crate) fn spending(&self) -> [SpendCounts; KIND_GROUPS] {
        std::array::from_fn(|group| {
            let spend = &self.spend[group];
            SpendCounts {
                requests: spend.requests.load(Ordering::Relaxed),
                successes: spend.successes.load(Ordering::Relaxed),
                cost: spend.cost_nanos.load(Ordering::Relaxed) as f64 / NANOS_PER_UNIT,
            }
        })
    }

    /// Accepted and refused answers to proxies of each kind group.
    #[inline]
    pub(crate) fn acceptance(&self, now: Nanos, half_life: f64) -> [(f64, f64); KIND_GROUPS] {
        std::array::from_fn(|group| self.by_kind[group].get(now, half_life))
    }

    /// The per-proxy request count (over the rate window) this site tolerates, as
    /// learned; `None` while it has never rate-limited a proxy it had accepted.
    #[inline]
    pub(crate) fn rate_tolerance(&self, now: Nanos, relax_half_life: f64) -> Option<f64> {
        self.tolerance.get(now, relax_half_life)
    }

    /// Learns from a 429 to a proxy that had `recent` requests at this site.
    pub(crate) fn learn_rate_limit(&self, recent: f64, now: Nanos, relax_half_life: f64) {
        self.tolerance.learn(recent, now, relax_half_life);
    }
}

/// The lowest request count at which the site rate-limited a proxy it accepted before,
/// relaxing upwards (doubling every relax half-life) so that a site that grew more
/// tolerant is found out.
#[derive(Debug, Default)]
struct RateTolerance {
    /// `f64` bits; 0 while unknown.
    value: AtomicU64,
    stamp: AtomicU64,
}

impl RateTolerance {
    fn get(&self, now: Nanos, relax_half_life: f64) -> Option<f64> {
        let value = f64::from_bits(self.value.load(Ordering::Acquire));
        (value > 0.0).then(|| value / fade(now.saturating_sub(self.stamp.load(Ordering::Acquire)), relax_half_life))
    }

    fn learn(&self, observed: f64, now: Nanos, relax_half_life: f64) {
        // Never below one request: a site that refuses the first request is banning
        // the address, not limiting its rate.
        let observed = observed.max(1.0);
        let next = self.get(now, relax_half_life).map_or(observed, |current| current.min(observed));
        self.value.store(next.to_bits(), Ordering::Release);
        self.stamp.store(now, Ordering::Release);
    }
}

/// Proxies of each kind group with the best evidence at a site: at most this many.
pub(crate) const LEADERS_PER_GROUP: usize = 8;
const EMPTY: u64 = u64::MAX;

/// Short lists, one per kind group, of snapshot slots with their estimated success at the
/// site, kept by reports and read by picks without a lock. One list per kind keeps the
/// best of every kind in view, so that a balancer weighing success against price always
/// sees the cheap kinds' best next to the dear kinds' best. Slots are positions in one
/// snapshot generation: lists of another generation are ignored and started afresh.
#[derive(Debug)]
pub(crate) struct Leaders {
    generation: AtomicU64,
    /// `slot << 32 | estimate scaled to u32`, or `EMPTY`.
    entries: [[AtomicU64; LEADERS_PER_GROUP]; KIND_GROUPS],
    writer: Mutex<()>,
}

impl Default for Leaders {
    fn default() -> Self {
        Leaders {
            generation: AtomicU64::new(0),
            entries: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(EMPTY))),
            writer: Mutex::new(()),
        }
    }
}

impl Leaders {
    /// Offers `slot` (of kind group `group`) with its estimate `mean`: it enters its
    /// group's list when there is room or when it beats the weakest entry, and an entry
    /// already there takes its new estimate. Best effort: when another report holds the
    /// lists, this offer is skipped.
    pub(crate) fn offer(&self, slot: u32, group: usize, generation: u64, mean: f64) {
        let Ok(_writer) = self.writer.try_lock() else { return };
        let current = self.generation.load(Ordering::Acquire);
        if generation < current {
            return; // a late report about an older snapshot
        }
        if generation != current {
            for e in self.entries.iter().flatten() {
                e.store(EMPTY, Ordering::Release);
            }
            self.generation.store(generation, Ordering::Release);
        }
        let entries = &self.entries[group.min(KIND_GROUPS - 1)];
        let packed = (u64::from(slot) << 32) | u64::from((mean.clamp(0.0, 1.0) * f64::from(u32::MAX - 1)) as u32);
        let mut weakest: Option<(usize, u64)> = None;
        for (i, e) in entries.iter().enumerate() {
            let v = e.load(Ordering::Acquire);
            if v != EMPTY && (v >> 32) as u32 == slot {
                e.store(packed, Ordering::Release);
                return;
            }
            let score = if v == EMPTY { 0 } else { (v & 0xffff_ffff) + 1 };
            if weakest.is_none_or(|(_, s)| score < s) {
                weakest = Some((i, score));
            }
        }
        if let Some((i, score)) = weakest
            && (packed & 0xffff_ffff) + 1 > score
        {
            entries[i].store(packed, Ordering::Release);
        }
    }

    /// The slots listed for `generation`, every group's.
    #[inline]
    pub(crate) fn slots(&self, generation: u64) -> impl Iterator<Item = u32> + '_ {
        let current = self.generation.load(Ordering::Acquire) == generation;
        self.entries
            .iter()
            .flatten()
            .map(|e| e.load(Ordering::Acquire))
            .filter(move |&v| current && v != EMPTY)
            .map(|v| (v >> 32) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Nanos = 1_000_000_000;

    #[test]
    fn leaders_keep_the_best_estimates_of_each_group_of_one_generation() {
        let l = Leaders::default();
        for slot in 0..LEADERS_PER_GROUP as u32 {
            l.offer(slot, 0, 7, 0.5);
        }
        l.offer(100, 0, 7, 0.4);
        assert!(!l.slots(7).any(|s| s == 100), "no better than the weakest");
        l.offer(101, 0, 7, 0.9);
        assert!(l.slots(7).any(|s| s == 101));
        assert_eq!(l.slots(7).count(), LEADERS_PER_GROUP);
        l.offer(200, 1, 7, 0.1);
        assert!(l.slots(7).any(|s| s == 200), "another kind has a list of its own");
        l.offer(101, 0, 7, 0.1);
        l.offer(102, 0, 7, 0.6);
        assert!(!l.slots(7).any(|s| s == 101), "an entry whose estimate fell is the next to go");
        assert_eq!(l.slots(8).count(), 0, "another generation's lists are not read");
        l.offer(3, 2, 8, 0.5);
        assert_eq!(l.slots(8).collect::<Vec<_>>(), vec![3]);
        l.offer(4, 2, 7, 0.9);
        assert_eq!(l.slots(8).collect::<Vec<_>>(), vec![3], "a late report about an older snapshot changes nothing");
    }

    #[test]
    fn rate_tolerance_takes_the_lowest_and_relaxes() {
        let t = RateTolerance::default();
        let relax = 300e9;
        assert_eq!(t.get(SEC, relax), None);
        t.learn(8.0, SEC, relax);
        t.learn(12.0, SEC, relax);
        assert_eq!(t.get(SEC, relax), Some(8.0));
        let later = t.get(301 * SEC, relax).expect("learned");
        assert!((later - 16.0).abs() < 1e-6, "doubles per relax half-life: {later}");
        t.learn(0.2, SEC, relax);
        assert_eq!(t.get(SEC, relax), Some(1.0), "never below one request");
    }

    #[test]
    fn the_table_forgets_the_least_recently_seen_sites() {
        let t = SiteTable::default();
        for i in 0..16u64 {
            t.get_or_insert(&format!("h{i}"), (i + 1) * SEC, 16);
        }
        t.get_or_insert("h0", 100 * SEC, 16);
        t.get_or_insert("new", 101 * SEC, 16);
        assert!(t.len() <= 16);
        assert!(t.get("h0").is_some(), "seen again lately");
        assert!(t.get("h1").is_none() && t.get("h2").is_none(), "the oldest eighth went");
        assert!(t.get("new").is_some());
    }
}
