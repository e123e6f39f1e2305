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
pub(crate) mod snapshot;

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::broadcast;

use crate::balance::random::RandomSource;
use crate::balance::{Balancer, Candidates, ExpectedSuccess};
use crate::clock::{Clock, Nanos, duration_to_nanos, nanos_to_duration};
use crate::config::PoolConfig;
use crate::error::{ConfigError, PoolError};
use crate::health::learning::PoolEvidence;
use crate::health::{
    Effect, EjectionTracker, HealthEvent, HealthEventKind, LatencyQuantiles, ProxyHealth, RemoteEffect,
};
use crate::lease::Lease;
use crate::proxy::{Proxy, ProxyId};
use crate::requirements::Requirements;
use crate::stats::{PoolStats, ProxyStats};

pub use batch::BatchReport;
use snapshot::{Filter, Snapshot};

/// What unfiltered requirements resolve to, shared by every pick that filters on nothing.
static NO_FILTER: Filter = Filter::NONE;

/// Health events held for a subscriber that falls behind; beyond, it loses the oldest
/// (and learns how many from `RecvError::Lagged`). Events are rare (ejections, bans).
const HEALTH_EVENTS_BUFFERED: usize = 1024;

/// What every proxy's health needs from its pool: config, clock, ejection bookkeeping,
/// the pool-wide evidence, the randomness balancers draw from. Kept apart from the
/// snapshot so that members can point at it without a cycle.
#[derive(Debug)]
pub(crate) struct PoolCore {
    pub(crate) config: PoolConfig,
    pub(crate) clock: Clock,
    pub(crate) ejections: EjectionTracker,
    pub(crate) events: broadcast::Sender<HealthEvent>,
    pub(crate) evidence: PoolEvidence,
    pub(crate) random: RandomSource,
}

impl PoolCore {
    /// Tells the subscribers, if any, what this pool decided about `proxy`. A report
    /// that decided nothing (nearly all of them) returns at once: the channel is only
    /// touched for an ejection or a ban.
    #[inline]
    pub(crate) fn announce(&self, proxy: &ProxyId, effect: Effect, host: Option<&Arc<str>>, now: Nanos) {
        if effect == Effect::None || self.events.receiver_count() == 0 {
            return;
        }
        let kind = match effect {
            Effect::None => return,
            Effect::Ejected { until } => HealthEventKind::Ejected { duration: nanos_to_duration(until - now) },
            Effect::Banned { until } => {
                HealthEventKind::Banned { host: host.cloned(), duration: nanos_to_duration(until - now) }
            }
        };
        // Err only when every subscriber has gone since the check: nobody to tell.
        let _ = self.events.send(HealthEvent { proxy: proxy.clone(), kind });
    }
}

/// One version of a proxy in the pool: what a lease holds (one `Arc` per lease). An
/// update of the proxy's metadata makes a new member that shares the old one's health,
/// so leases taken before the update keep the proxy they were given.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) proxy: Arc<Proxy>,
    pub(crate) health: Arc<ProxyHealth>,
    pub(crate) core: Arc<PoolCore>,
}

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
    core: Arc<PoolCore>,
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
        let (events, _) = broadcast::channel(HEALTH_EVENTS_BUFFERED);
        let core = Arc::new(PoolCore {
            config,
            clock: Clock::new(),
            ejections: EjectionTracker::default(),
            events,
            evidence: PoolEvidence::default(),
            random: RandomSource::new(seed),
        });
        ProxyPool {
            shared: Arc::new(Shared {
                snapshot: ArcSwap::from_pointee(Snapshot::default()),
                core,
                balancer,
                writer: Mutex::new(()),
            }),
        }
    }

    /// Leases a proxy that meets `req`, chosen by the pool's balancer.
    #[inline]
    pub fn acquire(&self, req: &Requirements) -> Result<Lease, PoolError> {
        self.acquire_with(req, &*self.shared.balancer)
    }

    /// Leases a proxy that meets `req`, chosen by `balancer` (e.g. one per target site).
    pub fn acquire_with(&self, req: &Requirements, balancer: &dyn Balancer) -> Result<Lease, PoolError> {
        let snap = self.shared.snapshot.load();
        if snap.slots.is_empty() {
            return Err(PoolError::Empty);
        }
        let core = &*self.shared.core;
        // Most picks filter on nothing: they share one empty filter rather than build and drop one.
        let resolved;
        let (filter, set) = if req.is_unfiltered() {
            (&NO_FILTER, None)
        } else {
            resolved =
                snap.resolve(req).map_err(|filter| PoolError::NoMatch { filter, pool_size: snap.slots.len() })?;
            (&resolved.0, resolved.1)
        };
        let candidates = Candidates::new(
            &snap.slots,
            set,
            filter,
            req.target_host.as_deref(),
            req.sticky_key.as_deref(),
            core,
            snap.generation,
        );
        let mut lost_race = false;
        match self.pick(&candidates, req, balancer, &mut lost_race) {
            Some(lease) => Ok(lease),
            None => {
                let why = self.explain_no_pick(&snap, &candidates, req, lost_race, balancer);
                if let Diagnosis::Panic = why {
                    // Too few of the proxies this request may use are healthy: like Envoy's
                    // panic threshold per cluster, use the ejected ones rather than none.
                    candidates.force_panic();
                    if let Some(lease) = self.pick(&candidates, req, balancer, &mut lost_race) {
                        return Ok(lease);
                    }
                    return Err(self.explain_no_pick(&snap, &candidates, req, lost_race, balancer).into_error());
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
        req: &Requirements,
        balancer: &dyn Balancer,
        lost_race: &mut bool,
    ) -> Option<Lease> {
        for _ in 0..3 {
            let i = balancer.pick(candidates)?;
            if !candidates.confirm(i) {
                return None; // a wrong answer from a user's balancer: explained by the caller
            }
            let slot = candidates.slot_ref(i);
            if slot.health().try_begin(slot.max_sessions(), || candidates.now_if_read()) {
                let position = candidates.slot(i) as u32;
                return Some(Lease::new(
                    slot.member.clone(),
                    req.target_host.clone(),
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
        req: &Requirements,
        lost_race: bool,
        balancer: &dyn Balancer,
    ) -> Diagnosis {
        let core = &*self.shared.core;
        let now = core.clock.now();
        let host = req.target_host.as_deref();
        let filter = candidates.filter();
        // In panic mode (pool-wide, or forced for this request) ejected proxies were offered.
        let ejections_count = !candidates.panicking();
        let (mut matching, mut busy, mut ejected, mut banned, mut available) = (0, 0, 0, 0, 0);
        let (mut first_return, mut first_unban) = (Nanos::MAX, Nanos::MAX);
        for i in 0..candidates.len() {
            let slot = candidates.slot_ref(i);
            if filter.needs_check() && !slot.matches(filter, &core.config.health) {
                continue;
            }
            matching += 1;
            let health = slot.health();
            let mut out = false;
            if let Some(until) = health.ejected_until(|| now).filter(|_| ejections_count) {
                ejected += 1;
                first_return = first_return.min(until);
                out = true;
            }
            if let Some(until) = health.banned_until(host, || now) {
                banned += 1;
                first_unban = first_unban.min(until);
                out = true;
            }
            if slot.is_full(health) {
                busy += 1;
                out = true;
            }
            available += usize::from(!out);
        }
        let wait = |until: Nanos| nanos_to_duration(until.saturating_sub(now));
        let healthy_share = (matching - ejected) as f64 / matching.max(1) as f64;
        let error = match () {
            _ if matching == 0 => PoolError::NoMatch {
                filter: snap.emptying_filter(filter, req, &core.config.health),
                pool_size: snap.slots.len(),
            },
            _ if ejected > 0 && healthy_share < core.config.ejection.panic_threshold => {
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
            for proxy in proxies {
                if current.contains(proxy.id().as_str()) || !added.insert(proxy.id().clone()) {
                    return Err(PoolError::DuplicateId(proxy.id().clone()));
                }
                next.push(self.new_member(proxy, Arc::default()));
            }
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
            next.push(self.new_member(proxy, Arc::default()));
            Ok(false)
        });
        result.unwrap_or(false)
    }

    /// Removes the proxy with `id`. Leases on it stay valid until dropped.
    pub fn remove(&self, id: &ProxyId) -> Result<Arc<Proxy>, PoolError> {
        self.write(|current, next| {
            let pos = current.position(id.as_str()).ok_or_else(|| PoolError::UnknownId(id.clone()))?;
            let member = next.remove(pos);
            member.health.mark_removed(&self.shared.core.ejections);
            Ok(member.proxy.clone())
        })
    }

    /// Makes the pool hold exactly `proxies` (say, a reloaded list): proxies that stay
    /// keep their health, new ones start fresh, missing ones are removed. Fails on a
    /// repeated id without changing anything.
    pub fn replace_all(&self, proxies: impl IntoIterator<Item = Proxy>) -> Result<(), PoolError> {
        self.write(|current, next| {
            let mut seen = HashSet::new();
            let mut kept = Vec::new();
            for proxy in proxies {
                if !seen.insert(proxy.id().clone()) {
                    return Err(PoolError::DuplicateId(proxy.id().clone()));
                }
                let health = current.position(proxy.id().as_str()).map(|pos| current.slots[pos].member.health.clone());
                kept.push(self.new_member(proxy, health.unwrap_or_default()));
            }
            for slot in &current.slots {
                if !seen.contains(slot.proxy().id()) {
                    slot.member.health.mark_removed(&self.shared.core.ejections);
                }
            }
            *next = kept;
            Ok(())
        })
    }

    fn new_member(&self, proxy: Proxy, health: Arc<ProxyHealth>) -> Arc<Member> {
        Arc::new(Member { proxy: Arc::new(proxy), health, core: self.shared.core.clone() })
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
        self.shared.core.ejections.set_pool_size(next.len());
        self.shared.snapshot.store(Arc::new(Snapshot::build(current.generation + 1, next)));
        Ok(out)
    }

    /// Records an active health probe of `proxy` (ignored if that proxy has left the pool
    /// or changed since): its result counts like a request's outcome, and a success ends
    /// a running ejection at once. Returns true when it brought the proxy back.
    pub fn record_probe(&self, proxy: &Arc<Proxy>, result: crate::health_check::ProbeResult) -> bool {
        let snap = self.shared.snapshot.load();
        let Some(slot) = snap.position(proxy.id().as_str()).map(|pos| &snap.slots[pos]) else { return false };
        if !Arc::ptr_eq(&slot.member.proxy, proxy) {
            return false;
        }
        let core = &*self.shared.core;
        let now = core.clock.now();
        let (restored, effect) = slot.health().record_probe(result, now, &core.config, &core.ejections);
        if restored {
            tracing::info!(proxy = %proxy.id(), "proxy back in rotation after a successful probe");
            if core.events.receiver_count() > 0 {
                let _ = core.events.send(HealthEvent { proxy: proxy.id().clone(), kind: HealthEventKind::Restored });
            }
        }
        core.announce(proxy.id(), effect, None, now);
        restored
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
        self.shared.core.events.subscribe()
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
        let core = &*self.shared.core;
        let now = core.clock.now();
        let health = slot.health();
        match &event.kind {
            HealthEventKind::Ejected { duration } => {
                let length = (*duration).min(core.config.ejection.max_ejection);
                health.eject_remote(now.saturating_add(duration_to_nanos(length)), now, &core.config, &core.ejections)
            }
            HealthEventKind::Banned { host, duration } => {
                let bans = &core.config.bans;
                let length = (*duration).min(bans.max_cooldown.max(bans.max_retry_after));
                health.ban_remote(host.as_deref(), now.saturating_add(duration_to_nanos(length)), now, &core.config)
            }
            HealthEventKind::Restored => {
                if health.restore(now, &core.ejections) {
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
        &self.shared.core.config
    }

    /// The name of the pool's balancer.
    pub fn balancer_name(&self) -> &'static str {
        self.shared.balancer.name()
    }

    /// A point-in-time report of the pool and every proxy, without credentials.
    pub fn stats(&self) -> PoolStats {
        let snap = self.shared.snapshot.load();
        let core = &*self.shared.core;
        let now = core.clock.now();
        let proxies: Vec<ProxyStats> =
            snap.slots.iter().map(|s| ProxyStats::read(s.proxy(), s.health(), core, now)).collect();
        PoolStats::summarise(proxies, core.ejections.in_panic(now, &core.config.ejection), snap.generation)
    }

    /// Latency quantiles of the successful answers from `host` over the last one to two
    /// [`latency_window`](crate::config::EvidenceConfig::latency_window)s (`None` for
    /// every host: over all hosts), or `None` before
    /// [`min_latency_samples`](crate::config::EvidenceConfig::min_latency_samples).
    pub fn latency(&self, host: Option<&str>) -> Option<LatencyQuantiles> {
        let core = &*self.shared.core;
        let e = &core.config.evidence;
        let (now, window) = (core.clock.now(), duration_to_nanos(e.latency_window));
        match host {
            Some(host) => core.evidence.sites.get(host)?.latency.quantiles(now, window, e.min_latency_samples),
            None => core.evidence.latency.quantiles(now, window, e.min_latency_samples),
        }
    }

    /// The `q` quantile (0..=1) of the successful answers' latency at `host`, falling back
    /// to every host's while `host` has too few samples; `None` while neither has
    /// enough. What the client sets hedges and timeouts from.
    pub fn latency_quantile(&self, host: &str, q: f64) -> Option<Duration> {
        let core = &*self.shared.core;
        let e = &core.config.evidence;
        let (now, window) = (core.clock.now(), duration_to_nanos(e.latency_window));
        core.evidence
            .sites
            .get(host)
            .and_then(|site| site.latency.quantile(q, now, window, e.min_latency_samples))
            .or_else(|| core.evidence.latency.quantile(q, now, window, e.min_latency_samples))
    }

    /// The report for one proxy.
    pub fn proxy_stats(&self, id: &str) -> Option<ProxyStats> {
        let snap = self.shared.snapshot.load();
        let core = &*self.shared.core;
        let slot = &snap.slots[snap.position(id)?];
        Some(ProxyStats::read(slot.proxy(), slot.health(), core, core.clock.now()))
    }
}

impl fmt::Debug for ProxyPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyPool").field("len", &self.len()).field("balancer", &self.balancer_name()).finish()
    }
}
