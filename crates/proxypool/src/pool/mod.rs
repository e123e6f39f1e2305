//! The [`ProxyPool`]: proxies, their live health, and `acquire`.
//!
//! Picks read an immutable `Snapshot` through an atomic pointer and take
//! no lock; writers (add, remove, upsert, replace) serialise among themselves, build the
//! next snapshot and swap it in. A proxy's health lives in its `Member`, which survives
//! metadata updates and outlives its removal for as long as a lease holds it.
//!
//! Health decisions leave and enter the pool as [`HealthEvent`]s:
//! [`subscribe_health`](ProxyPool::subscribe_health) and
//! [`apply_remote`](ProxyPool::apply_remote), for sharing them between instances.

mod batch;

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::broadcast;

use crate::balance::{Balancer, Candidates, ExpectedSuccess};
use crate::clock::{Nanos, duration_to_nanos, nanos_to_duration};
use crate::config::PoolConfig;
use crate::error::{ConfigError, PoolError};
use crate::health::latency::LatencyStats;
use crate::health::{
    HealthContext, HealthEvent, HealthEventKind, LatencyQuantiles, ProbeResult, ProxyHealth, RemoteEffect,
};
use crate::lease::Lease;
use crate::proxy::{Proxy, ProxyId, ProxyKind};
use crate::requirements::{RequestContext, Requirements};
use crate::stats::{PoolStats, ProxyStats, SiteSpend};

use crate::snapshot::{Filter, Member, Snapshot, Unavailable, unavailable};
pub use batch::BatchReport;

/// What unfiltered requirements resolve to, shared by every pick that filters on nothing.
static NO_FILTER: Filter = Filter::NONE;

/// What the slow path found.
enum Diagnosis {
    /// Retry with ejections ignored.
    Panic,
    Error(PoolError),
}

impl Diagnosis {
    fn into_error(self) -> PoolError {
        match self {
            Diagnosis::Error(e) => e,
            // Only returned when the request is not yet in panic mode; after the retry in
            // panic mode the ejected proxies count as available.
            Diagnosis::Panic => PoolError::NoneAvailable { matching: 0, busy: 0, ejected: 0, banned: 0 },
        }
    }
}

struct Shared {
    snapshot: ArcSwap<Snapshot>,
    context: Arc<HealthContext>,
    balancer: Arc<dyn Balancer>,
    writer: Mutex<()>,
}

/// A pool of proxies; cheap to clone, and every clone is the same pool.
///
/// See the [crate docs](crate) for an example.
#[derive(Clone)]
pub struct ProxyPool {
    shared: Arc<Shared>,
}

/// Builds a [`ProxyPool`]; see [`ProxyPool::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct ProxyPoolBuilder {
    config: PoolConfig,
    balancer: Arc<dyn Balancer>,
    seed: Option<u64>,
}

impl ProxyPoolBuilder {
    /// Health, ejection and ban settings (validated by `build`).
    pub fn config(mut self, config: PoolConfig) -> Self {
        self.config = config;
        self
    }

    /// The balancer `acquire` uses. Default: [`ExpectedSuccess`].
    pub fn balancer(mut self, balancer: impl Balancer) -> Self {
        self.balancer = Arc::new(balancer);
        self
    }

    /// Seeds the randomness every balancer draws from (through
    /// [`Candidates::random_below`] and friends), so that the same picks from one thread
    /// on the same pool repeat exactly: for simulations and tests. Without a seed each
    /// thread draws from its own generator, seeded by the OS.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// An empty pool, or the config field that is out of range.
    pub fn build(self) -> Result<ProxyPool, ConfigError> {
        self.config.validate()?;
        Ok(ProxyPool::from_parts(self.config, self.balancer, self.seed))
    }
}

impl ProxyPool {
    /// A builder with the default config and balancer.
    pub fn builder() -> ProxyPoolBuilder {
        ProxyPoolBuilder { config: PoolConfig::default(), balancer: Arc::new(ExpectedSuccess::new()), seed: None }
    }

    /// A pool with the default config and balancer holding `proxies`; fails on a
    /// duplicate id.
    pub fn new(proxies: impl IntoIterator<Item = Proxy>) -> Result<ProxyPool, PoolError> {
        // The default config is valid (a unit test in `config` holds it to that).
        let pool = ProxyPool::from_parts(PoolConfig::default(), Arc::new(ExpectedSuccess::new()), None);
        pool.extend(proxies)?;
        Ok(pool)
    }

    fn from_parts(config: PoolConfig, balancer: Arc<dyn Balancer>, seed: Option<u64>) -> ProxyPool {
        let context = Arc::new(HealthContext::new(config, seed));
        ProxyPool {
            shared: Arc::new(Shared {
                snapshot: ArcSwap::from_pointee(Snapshot::default()),
                context,
                balancer,
                writer: Mutex::new(()),
            }),
        }
    }

    /// Leases a proxy that meets `req` for `request`, chosen by the pool's balancer.
    #[inline]
    pub fn acquire(&self, req: &Requirements, request: &RequestContext) -> Result<Lease, PoolError> {
        self.acquire_with(req, request, &*self.shared.balancer)
    }

    /// Leases a proxy that meets `req` for `request`, chosen by `balancer` (e.g. one per
    /// target site).
    pub fn acquire_with(
        &self,
        req: &Requirements,
        request: &RequestContext,
        balancer: &dyn Balancer,
    ) -> Result<Lease, PoolError> {
        let snap = self.shared.snapshot.load();
        if snap.slots.is_empty() {
            return Err(PoolError::Empty);
        }
        let ctx = &*self.shared.context;
        // Most picks filter on nothing: they share one empty filter rather than build and drop one.
        let resolved;
        let (filter, set) = if req.is_unfiltered() && request.avoided().is_empty() {
            (&NO_FILTER, None)
        } else {
            resolved = snap
                .resolve(req, request.avoided())
                .map_err(|filter| PoolError::NoMatch { filter, pool_size: snap.slots.len() })?;
            (&resolved.0, resolved.1)
        };
        let candidates = Candidates::new(
            (&snap.slots, &snap.dense),
            set,
            filter,
            request.target_host_name(),
            request.sticky_key_name(),
            ctx,
            snap.generation,
        );
        let mut lost_race = false;
        match self.pick(&candidates, request, balancer, &mut lost_race) {
            Some(lease) => Ok(lease),
            None => {
                let why = self.explain_no_pick(&snap, &candidates, (req, request), lost_race, balancer);
                if let Diagnosis::Panic = why {
                    // Too few of the proxies this request may use are healthy: like Envoy's
                    // panic threshold per cluster, use the ejected ones rather than none.
                    candidates.force_panic();
                    if let Some(lease) = self.pick(&candidates, request, balancer, &mut lost_race) {
                        return Ok(lease);
                    }
                    return Err(self
                        .explain_no_pick(&snap, &candidates, (req, request), lost_race, balancer)
                        .into_error());
                }
                Err(why.into_error())
            }
        }
    }

    /// Asks the balancer and takes a session on its choice. A pick can lose a race for a
    /// proxy's last session; a few tries settle it.
    #[inline]
    fn pick(
        &self,
        candidates: &Candidates<'_>,
        request: &RequestContext,
        balancer: &dyn Balancer,
        lost_race: &mut bool,
    ) -> Option<Lease> {
        for _ in 0..3 {
            let i = balancer.pick(candidates)?;
            if !candidates.confirm(i) {
                return None; // a wrong answer from a user's balancer: explained by the caller
            }
            let dense = candidates.dense_ref(i);
            if dense.hot().try_begin(dense.max_sessions(), || candidates.now_if_read()) {
                let position = candidates.slot(i) as u32;
                return Some(Lease::new(
                    dense.member.clone(),
                    request.target_host_shared().cloned(),
                    position,
                    candidates.generation(),
                ));
            }
            *lost_race = true;
        }
        None
    }

    /// The slow path: says why no proxy could be leased.
    fn explain_no_pick(
        &self,
        snap: &Snapshot,
        candidates: &Candidates<'_>,
        (req, request): (&Requirements, &RequestContext),
        lost_race: bool,
        balancer: &dyn Balancer,
    ) -> Diagnosis {
        let ctx = &*self.shared.context;
        let now = ctx.now();
        let host = request.target_host_name();
        let filter = candidates.filter();
        // In panic mode (pool-wide, or forced for this request) ejected proxies were offered.
        let ejections_count = !candidates.panicking();
        let (mut matching, mut busy, mut ejected, mut banned, mut available) = (0, 0, 0, 0, 0);
        let (mut first_return, mut first_unban) = (Nanos::MAX, Nanos::MAX);
        for i in 0..candidates.len() {
            let at = candidates.slot(i);
            let unavailable = unavailable(
                &snap.slots[at],
                &snap.dense[at],
                filter,
                host,
                || now,
                || !ejections_count,
                &ctx.config().health,
            );
            match unavailable {
                Some(Unavailable::Unmatched) => continue,
                None => available += 1,
                Some(Unavailable::Ejected { until }) => {
                    ejected += 1;
                    first_return = first_return.min(until);
                }
                Some(Unavailable::Banned { until }) => {
                    banned += 1;
                    first_unban = first_unban.min(until);
                }
                Some(Unavailable::Busy) => busy += 1,
            }
            matching += 1;
        }
        let wait = |until: Nanos| nanos_to_duration(until.saturating_sub(now));
        let healthy_share = (matching - ejected) as f64 / matching.max(1) as f64;
        let error = match () {
            _ if matching == 0 => PoolError::NoMatch {
                filter: snap.emptying_filter(filter, req, request.avoided(), &ctx.config().health),
                pool_size: snap.slots.len(),
            },
            _ if ejected > 0 && healthy_share < ctx.config().ejection.panic_threshold => {
                return Diagnosis::Panic;
            }
            _ if available > 0 && lost_race => PoolError::AllBusy { matching },
            _ if available > 0 => PoolError::BalancerDeclined { balancer: balancer.name(), available },
            _ if ejected == matching => PoolError::AllEjected { matching, retry_in: wait(first_return) },
            _ if banned == matching => {
                PoolError::AllBanned { host: host.unwrap_or("*").to_owned(), matching, retry_in: wait(first_unban) }
            }
            _ if busy == matching => PoolError::AllBusy { matching },
            _ => PoolError::NoneAvailable { matching, busy, ejected, banned },
        };
        Diagnosis::Error(error)
    }

    /// Adds a proxy; fails if its id is taken.
    pub fn add(&self, proxy: Proxy) -> Result<(), PoolError> {
        self.extend([proxy]).map(|_| ())
    }

    /// Adds many proxies in one snapshot swap; all or none: fails on the first id that
    /// is taken or repeated. Returns how many were added.
    pub fn extend(&self, proxies: impl IntoIterator<Item = Proxy>) -> Result<usize, PoolError> {
        self.write(|current, next| {
            let mut added: HashSet<ProxyId> = HashSet::new();
            let mut joining = Vec::new();
            for proxy in proxies {
                if current.contains(proxy.id().as_str()) || !added.insert(proxy.id().clone()) {
                    return Err(PoolError::DuplicateId(proxy.id().clone()));
                }
                joining.push((proxy, None));
            }
            next.extend(self.new_members(joining));
            Ok(added.len())
        })
    }

    /// Adds the proxy, or replaces the metadata of the proxy with its id while keeping
    /// that proxy's health. Returns true if it replaced one.
    pub fn upsert(&self, proxy: Proxy) -> bool {
        let result = self.write(|current, next| {
            if let Some(pos) = current.position(proxy.id().as_str()) {
                next[pos] = self.new_member(proxy, next[pos].health.clone());
                return Ok(true);
            }
            next.push(self.new_member(proxy, Arc::new(self.shared.context.new_health())));
            Ok(false)
        });
        result.unwrap_or(false)
    }

    /// Removes the proxy with `id`. Leases on it stay valid until dropped.
    pub fn remove(&self, id: &ProxyId) -> Result<Arc<Proxy>, PoolError> {
        self.write(|current, next| {
            let pos = current.position(id.as_str()).ok_or_else(|| PoolError::UnknownId(id.clone()))?;
            let member = next.remove(pos);
            member.health.mark_removed(self.shared.context.ejections());
            Ok(member.proxy.clone())
        })
    }

    /// Makes the pool hold exactly `proxies` (say, a reloaded list): proxies that stay
    /// keep their health, new ones start fresh, missing ones are removed. Fails on a
    /// repeated id without changing anything.
    pub fn replace_all(&self, proxies: impl IntoIterator<Item = Proxy>) -> Result<(), PoolError> {
        self.write(|current, next| {
            let mut seen = HashSet::new();
            let mut joining = Vec::new();
            for proxy in proxies {
                if !seen.insert(proxy.id().clone()) {
                    return Err(PoolError::DuplicateId(proxy.id().clone()));
                }
                let health = current.position(proxy.id().as_str()).map(|pos| current.slots[pos].member.health.clone());
                joining.push((proxy, health));
            }
            let kept = self.new_members(joining);
            for slot in &current.slots {
                if !seen.contains(slot.proxy().id()) {
                    slot.member.health.mark_removed(self.shared.context.ejections());
                }
            }
            *next = kept;
            Ok(())
        })
    }

    /// Members for `joining`: each proxy with the health it keeps or, for `None`, a fresh
    /// one on the pool's table. The fresh healths are allocated first, one after another.
    /// The scanning balancers read every candidate's health in slot order; allocated side
    /// by side (at one stride, where the allocator has the room), the hardware prefetches
    /// them, where between their proxies' and members' allocations it did not: least latency
    /// over a pool of 100k proxies built alone took 8.4 ms a pick with the healths
    /// interleaved and 2.1 ms with them side by side.
    pub(super) fn new_members(&self, joining: Vec<(Proxy, Option<Arc<ProxyHealth>>)>) -> Vec<Arc<Member>> {
        let fresh: Vec<Arc<ProxyHealth>> = joining
            .iter()
            .filter(|(_, kept)| kept.is_none())
            .map(|_| Arc::new(self.shared.context.new_health()))
            .collect();
        let mut fresh = fresh.into_iter();
        joining
            .into_iter()
            .map(|(proxy, kept)| {
                let health = kept.or_else(|| fresh.next()).expect("a fresh health was made for each proxy without one");
                self.new_member(proxy, health)
            })
            .collect()
    }

    fn new_member(&self, proxy: Proxy, health: Arc<ProxyHealth>) -> Arc<Member> {
        Arc::new(Member { proxy: Arc::new(proxy), hot: health.hot_ref(), health, context: self.shared.context.clone() })
    }

    /// Runs one change under the writer lock: `change` sees the current snapshot and
    /// edits a copy of its members (in slot order), which becomes the next snapshot if it
    /// returns `Ok`. O(pool size) per change: batch with `extend` or `replace_all`.
    fn write<T>(
        &self,
        change: impl FnOnce(&Snapshot, &mut Vec<Arc<Member>>) -> Result<T, PoolError>,
    ) -> Result<T, PoolError> {
        let _writer = self.shared.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.shared.snapshot.load_full();
        let mut next: Vec<Arc<Member>> = current.slots.iter().map(|s| s.member.clone()).collect();
        let out = change(&current, &mut next)?;
        pack_new_members(&mut next);
        self.shared.context.ejections().set_pool_size(next.len());
        self.shared.snapshot.store(Arc::new(Snapshot::build(current.generation + 1, next)));
        Ok(out)
    }

    /// Records an active health probe of `proxy` (ignored if that proxy has left the pool
    /// or changed since): its result counts like a request's outcome, and a success ends
    /// a running ejection at once. Returns true when it brought the proxy back.
    pub fn record_probe(&self, proxy: &Arc<Proxy>, result: ProbeResult) -> bool {
        let snap = self.shared.snapshot.load();
        let Some(slot) = snap.position(proxy.id().as_str()).map(|pos| &snap.slots[pos]) else { return false };
        if !Arc::ptr_eq(&slot.member.proxy, proxy) {
            return false;
        }
        self.shared.context.record_probe(proxy, slot.health(), result)
    }

    /// A stream of the health decisions this pool makes from its own reports and probes:
    /// every ejection, every ban (with its host) and every early end of an ejection, each
    /// with how long it lasts. Natural ends are not sent (every holder of the event knows
    /// when they come). Verdicts applied with [`apply_remote`](Self::apply_remote) are
    /// never sent, so that sharing decisions between pools cannot echo.
    ///
    /// A subscriber that falls more than 1024 events behind loses the oldest
    /// ([`RecvError::Lagged`](broadcast::error::RecvError::Lagged)). See
    /// [`health::events`](crate::health::events).
    pub fn subscribe_health(&self) -> broadcast::Receiver<HealthEvent> {
        self.shared.context.subscribe()
    }

    /// Applies a health verdict decided elsewhere (another pool, another process), as if
    /// from now; never waits, never sends it back to [`subscribe_health`](Self::subscribe_health).
    ///
    /// - An ejection counts against this pool's cap on the share ejected at once and in
    ///   its panic mode exactly like a local one (refused with
    ///   [`RemoteEffect::CapReached`] when the cap is reached): a fleet of instances must
    ///   not eject, between them, more than each allows itself. It also counts towards
    ///   the proxy's growing ejection time here. It only ever lengthens a running
    ///   ejection, lasts at most this pool's `ejection.max_ejection`, and is refused when
    ///   ejection is turned off.
    /// - A ban bars the proxy from that host only (or every host for `None`), lasts at
    ///   most the longer of `bans.max_cooldown` and `bans.max_retry_after`, and only ever
    ///   lengthens a running ban; the host's statistics and ban streak are left alone.
    /// - A restoration ends a running ejection at once, with a fresh start, as a
    ///   successful probe here would.
    pub fn apply_remote(&self, event: &HealthEvent) -> RemoteEffect {
        let snap = self.shared.snapshot.load();
        let Some(slot) = snap.position(event.proxy.as_str()).map(|pos| &snap.slots[pos]) else {
            return RemoteEffect::UnknownProxy;
        };
        let ctx = &*self.shared.context;
        let now = ctx.now();
        let health = slot.health();
        match &event.kind {
            HealthEventKind::Ejected { duration } => {
                let length = (*duration).min(ctx.config().ejection.max_ejection);
                health.eject_remote(now.saturating_add(duration_to_nanos(length)), now, ctx.config(), ctx.ejections())
            }
            HealthEventKind::Banned { host, duration } => {
                let bans = &ctx.config().bans;
                let length = (*duration).min(bans.max_cooldown.max(bans.max_retry_after));
                health.ban_remote(host.as_deref(), now.saturating_add(duration_to_nanos(length)), now, ctx.config())
            }
            HealthEventKind::Restored => {
                if health.restore(now, ctx.ejections()) {
                    RemoteEffect::Applied
                } else {
                    RemoteEffect::Unchanged
                }
            }
        }
    }

    /// Changes with every add, remove, upsert or replace.
    pub fn generation(&self) -> u64 {
        self.shared.snapshot.load().generation
    }

    /// How many proxies the pool holds.
    pub fn len(&self) -> usize {
        self.shared.snapshot.load().slots.len()
    }

    /// True when the pool holds no proxy.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The proxy with `id`, if present.
    pub fn get(&self, id: &str) -> Option<Arc<Proxy>> {
        let snap = self.shared.snapshot.load();
        snap.position(id).map(|pos| snap.slots[pos].member.proxy.clone())
    }

    /// Every proxy, in insertion order.
    pub fn proxies(&self) -> Vec<Arc<Proxy>> {
        self.shared.snapshot.load().slots.iter().map(|s| s.member.proxy.clone()).collect()
    }

    /// The pool's configuration.
    pub fn config(&self) -> &PoolConfig {
        self.shared.context.config()
    }

    /// The name of the pool's balancer.
    pub fn balancer_name(&self) -> &'static str {
        self.shared.balancer.name()
    }

    /// A point-in-time report of the pool and every proxy, without credentials.
    pub fn stats(&self) -> PoolStats {
        let snap = self.shared.snapshot.load();
        let ctx = &*self.shared.context;
        let now = ctx.now();
        let proxies: Vec<ProxyStats> =
            snap.slots.iter().map(|s| ProxyStats::read(s.proxy(), s.health(), ctx, now)).collect();
        PoolStats::summarise(proxies, ctx.in_panic(now), snap.generation)
    }

    /// What the requests cost, per site and kind of proxy: every request the pool recorded
    /// for a known site, in no particular order. Sites forgotten past
    /// [`EvidenceConfig::max_sites`](crate::config::EvidenceConfig) take their account with
    /// them. Per proxy, [`ProxyStats::requests`] times the proxy's cost is the same sum.
    pub fn site_spending(&self) -> Vec<SiteSpend> {
        let groups: [Option<ProxyKind>; 4] = std::array::from_fn(|group| ProxyKind::ALL.get(group).copied());
        let mut rows = Vec::new();
        for (host, counts) in self.shared.context.evidence().sites.spending() {
            for (group, counts) in counts.iter().enumerate() {
                if counts.requests > 0 {
                    rows.push(SiteSpend {
                        host: host.to_string(),
                        kind: groups.get(group).copied().flatten(),
                        requests: counts.requests,
                        successes: counts.successes,
                        cost: counts.cost,
                    });
                }
            }
        }
        rows
    }

    /// Latency quantiles of the successful answers from `host` over the last one to two
    /// [`latency_window`](crate::config::EvidenceConfig::latency_window)s (`None` for
    /// every host: over all hosts), or `None` before
    /// [`min_latency_samples`](crate::config::EvidenceConfig::min_latency_samples).
    pub fn latency(&self, host: Option<&str>) -> Option<LatencyQuantiles> {
        let ctx = &*self.shared.context;
        let e = &ctx.config().evidence;
        let (now, window) = (ctx.now(), duration_to_nanos(e.latency_window));
        match host {
            Some(host) => ctx.evidence().sites.get(host)?.latency.quantiles(now, window, e.min_latency_samples),
            None => ctx.evidence().latency.quantiles(now, window, e.min_latency_samples),
        }
    }

    /// The `q` quantile (0..=1) of the successful answers' latency at `host`, falling back
    /// to every host's while `host` has too few samples; `None` while neither has
    /// enough. The true quantile: what the client's adaptive timeout follows (its hedges
    /// follow [`tail_latency`](Self::tail_latency)).
    pub fn latency_quantile(&self, host: &str, q: f64) -> Option<Duration> {
        self.host_quantile(host, q, false)
    }

    /// The `q` quantile of the successful answers' latency at `host` as a tail threshold:
    /// like [`latency_quantile`](Self::latency_quantile), but at most
    /// [`tail_spread`](crate::config::EvidenceConfig::tail_spread) times the median. What
    /// the client hedges by.
    ///
    /// A proxy that adds a second to every answer still answers, so it is not ejected for
    /// failing; when a few of them get a fair share of requests (round robin does that)
    /// the high quantiles become their latency, and a threshold taken from them would
    /// never find them slow. The median stays with the other proxies until half the
    /// answers are slow.
    pub fn tail_latency(&self, host: &str, q: f64) -> Option<Duration> {
        self.host_quantile(host, q, true)
    }

    /// The `q` quantile at `host`, falling back to every host's; `capped` at
    /// `tail_spread` × the median.
    fn host_quantile(&self, host: &str, q: f64, capped: bool) -> Option<Duration> {
        let ctx = &*self.shared.context;
        let e = &ctx.config().evidence;
        let (now, window, spread) = (ctx.now(), duration_to_nanos(e.latency_window), capped.then_some(e.tail_spread));
        let at = |stats: &LatencyStats| stats.quantile(q, spread, now, window, e.min_latency_samples);
        ctx.evidence().sites.get(host).and_then(|site| at(&site.latency)).or_else(|| at(&ctx.evidence().latency))
    }

    /// The report for one proxy.
    pub fn proxy_stats(&self, id: &str) -> Option<ProxyStats> {
        let snap = self.shared.snapshot.load();
        let ctx = &*self.shared.context;
        let slot = &snap.slots[snap.position(id)?];
        Some(ProxyStats::read(slot.proxy(), slot.health(), ctx, ctx.now()))
    }
}

/// Allocates the members this change made once more, one after another, so that the
/// members of proxies added together sit side by side in memory. A lease takes a
/// reference on its member: round robin over members made one at a time, between their
/// proxies' and healths' allocations, missed the cache on every pick of a large pool;
/// side by side, consecutive picks read consecutive lines, which the hardware prefetches.
/// New members are the ones only `members` holds; the rest are shared with the current
/// snapshot and stay as they are (leases may hold them).
fn pack_new_members(members: &mut [Arc<Member>]) {
    let fresh: Vec<usize> = (0..members.len()).filter(|&i| Arc::strong_count(&members[i]) == 1).collect();
    let packed: Vec<Arc<Member>> = fresh
        .iter()
        .map(|&i| {
            let m = &members[i];
            Arc::new(Member {
                proxy: m.proxy.clone(),
                health: m.health.clone(),
                hot: m.hot.clone(),
                context: m.context.clone(),
            })
        })
        .collect();
    for (i, member) in fresh.into_iter().zip(packed) {
        members[i] = member;
    }
}

impl fmt::Debug for ProxyPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyPool").field("len", &self.len()).field("balancer", &self.balancer_name()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Hot;

    fn proxies(range: std::ops::Range<usize>) -> Vec<Proxy> {
        range.map(|i| Proxy::parse(&format!("http://127.0.0.1:{}", 20_000 + i)).expect("a valid URL")).collect()
    }

    /// The addresses of the pool's hot lines, in slot order.
    fn lines(pool: &ProxyPool) -> Vec<usize> {
        pool.shared.snapshot.load().slots.iter().map(|s| s.health().hot() as *const Hot as usize).collect()
    }

    fn consecutive(lines: &[usize]) -> bool {
        lines.windows(2).all(|pair| pair[1] == pair[0] + std::mem::size_of::<Hot>())
    }

    #[test]
    fn proxies_joining_together_take_consecutive_lines_of_the_pools_table_however_they_join() {
        let pool = ProxyPool::builder().build().expect("the default config is valid");
        pool.extend(proxies(0..4)).expect("new ids");
        assert!(consecutive(&lines(&pool)), "extend");

        // Four kept, four new: the new ones continue the table, where a health made on its
        // own would have a line somewhere else.
        pool.replace_all(proxies(0..8)).expect("unique ids");
        let after_replace = lines(&pool);
        assert!(consecutive(&after_replace), "replace_all keeps the four and adds four after them");

        pool.apply_batch(proxies(8..12), []);
        let after_batch = lines(&pool);
        assert_eq!(after_batch[..8], after_replace[..]);
        assert!(consecutive(&after_batch), "apply_batch adds after them");
    }
}
