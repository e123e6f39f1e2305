//! Balancers: which of the eligible proxies a request gets.
//!
//! The pool narrows the proxies to the candidates that may serve a request (through its
//! indexes and the requirements) and hands them to a [`Balancer`] as [`Candidates`]. The
//! balancer returns the position of its choice among them. It asks
//! [`Candidates::is_eligible`] for what it considers, so it never sees the details of
//! filters, ejections, bans or session limits, and it only pays for the candidates it
//! looks at: round robin and power of two choices look at one or two.
//!
//! | balancer | picks | cost per pick |
//! |---|---|---|
//! | [`RoundRobin`] | the next eligible proxy in turn | O(1) |
//! | [`SmoothWeightedRoundRobin`] | by weight, spread evenly (nginx's algorithm) | O(candidates) |
//! | [`LeastConnections`] | the fewest requests in flight | O(candidates) |
//! | [`LeastLatency`] | the lowest latency EWMA | O(candidates) |
//! | [`PowerOfTwoChoices`] | the better of two random proxies by peak EWMA × (in-flight + 1) | O(1) |
//! | [`AdaptiveQuality`] | the best composite score of quality, availability, cost, recency, per-site success and trend | O(candidates) |
//! | [`Sticky`] | the same proxy for the same session key (rendezvous hashing) | O(candidates) |
//!
//! A balancer of your own implements [`Balancer`]:
//!
//! ```
//! use harvester_proxypool::balance::{Balancer, Candidates};
//!
//! /// Always the first eligible candidate.
//! #[derive(Debug)]
//! struct First;
//!
//! impl Balancer for First {
//!     fn name(&self) -> &'static str { "first" }
//!     fn pick(&self, candidates: &Candidates<'_>) -> Option<usize> {
//!         (0..candidates.len()).find(|&i| candidates.is_eligible(i))
//!     }
//! }
//! ```

mod adaptive;
mod least_connections;
mod least_latency;
mod p2c;
mod round_robin;
mod sticky;
mod weighted;

use std::cell::Cell;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use adaptive::AdaptiveQuality;
pub use least_connections::LeastConnections;
pub use least_latency::LeastLatency;
pub use p2c::PowerOfTwoChoices;
pub use round_robin::RoundRobin;
pub use sticky::Sticky;
pub use weighted::SmoothWeightedRoundRobin;

use crate::clock::{Nanos, nanos_to_duration};
use crate::health::ProxyHealth;
use crate::pool::PoolCore;
use crate::pool::snapshot::{Filter, Slot};
use crate::proxy::Proxy;

/// Chooses one proxy among the candidates for a request.
///
/// Implementations must be cheap and must not block: `pick` runs on every `acquire`.
/// Return the position (`0..candidates.len()`) of an eligible candidate, or `None` when
/// none is eligible. The pool checks the answer, so a wrong one costs a request an
/// error, never the pool its invariants.
pub trait Balancer: Send + Sync + fmt::Debug + 'static {
    /// A short name for errors and reports.
    fn name(&self) -> &'static str;

    /// Picks a candidate by position.
    fn pick(&self, candidates: &Candidates<'_>) -> Option<usize>;
}

impl<B: Balancer + ?Sized> Balancer for Arc<B> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn pick(&self, candidates: &Candidates<'_>) -> Option<usize> {
        (**self).pick(candidates)
    }
}

impl<B: Balancer + ?Sized> Balancer for Box<B> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn pick(&self, candidates: &Candidates<'_>) -> Option<usize> {
        (**self).pick(candidates)
    }
}

/// The proxies that may serve one request, as a balancer sees them.
///
/// Positions run from 0 to `len()`. A position is eligible when the proxy matches the
/// requirements, is below its session limit, is not ejected (unless the pool is in panic
/// mode) and is not banned by the target host.
pub struct Candidates<'a> {
    slots: &'a [Slot],
    set: Option<&'a [u32]>,
    filter: &'a Filter,
    host: Option<&'a str>,
    sticky: Option<&'a str>,
    core: &'a PoolCore,
    generation: u64,
    now: Cell<Nanos>,
    panic: Cell<Option<bool>>,
    /// The last position found eligible, so the pool need not check it twice.
    last_eligible: Cell<usize>,
}

impl<'a> Candidates<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        slots: &'a [Slot],
        set: Option<&'a [u32]>,
        filter: &'a Filter,
        host: Option<&'a str>,
        sticky: Option<&'a str>,
        core: &'a PoolCore,
        generation: u64,
    ) -> Self {
        Candidates {
            slots,
            set,
            filter,
            host,
            sticky,
            core,
            generation,
            now: Cell::new(0),
            panic: Cell::new(None),
            last_eligible: Cell::new(usize::MAX),
        }
    }

    /// Treats ejected proxies as eligible for this request: panic mode for the set of
    /// proxies this request can use, when too few of them are healthy.
    pub(crate) fn force_panic(&self) {
        self.panic.set(Some(true));
    }

    /// Checks a balancer's answer: in range and eligible (without a second check when
    /// the balancer just found it eligible).
    #[inline]
    pub(crate) fn confirm(&self, i: usize) -> bool {
        i < self.len() && (self.last_eligible.get() == i || self.is_eligible(i))
    }

    /// How many candidates there are (eligible or not).
    #[inline]
    pub fn len(&self) -> usize {
        match self.set {
            Some(set) => set.len(),
            None => self.slots.len(),
        }
    }

    /// True when there is no candidate at all.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The position in the pool's snapshot of candidate `i`: stable for one
    /// [`generation`](Self::generation), so a balancer can keep per-proxy state in a
    /// vector of [`pool_len`](Self::pool_len) entries.
    #[inline]
    pub fn slot(&self, i: usize) -> usize {
        match self.set {
            Some(set) => set[i] as usize,
            None => i,
        }
    }

    /// Changes whenever proxies are added, removed or updated.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// How many proxies the whole pool has in this generation.
    pub fn pool_len(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    pub(crate) fn slot_ref(&self, i: usize) -> &'a Slot {
        &self.slots[self.slot(i)]
    }

    /// May candidate `i` serve this request now?
    ///
    /// Like every accessor taking a position, panics if `i >= len()`, as slice indexing does.
    #[inline]
    pub fn is_eligible(&self, i: usize) -> bool {
        let slot = self.slot_ref(i);
        if self.filter.needs_check() && !slot.matches(self.filter, &self.core.config.health) {
            return false;
        }
        let health = slot.health();
        if slot.is_full(health) {
            return false;
        }
        if health.ejected_until(|| self.now()).is_some() && !self.in_panic() {
            return false;
        }
        if health.banned_until(self.host, || self.now()).is_some() {
            return false;
        }
        self.last_eligible.set(i);
        true
    }

    /// The proxy at candidate `i`.
    #[inline]
    pub fn proxy(&self, i: usize) -> &'a Proxy {
        self.slot_ref(i).proxy()
    }

    /// The live health of candidate `i`.
    #[inline]
    pub fn health(&self, i: usize) -> &'a ProxyHealth {
        self.slot_ref(i).health()
    }

    /// The quality score of candidate `i` under the pool's health config.
    pub fn quality(&self, i: usize) -> f64 {
        self.health(i).quality(&self.core.config.health)
    }

    /// Peak EWMA latency of candidate `i` in seconds, decayed to now; 0 before any sample.
    #[inline]
    pub fn peak_latency(&self, i: usize) -> f64 {
        self.health(i).peak_latency(self.now(), &self.core.config.health)
    }

    /// A key that orders candidates as their decayed peak EWMA latencies do, read
    /// without the clock: `ln(peak) + time of the last sample / τ`; `-inf` before the
    /// first sample.
    #[inline]
    pub fn peak_key(&self, i: usize) -> f64 {
        self.health(i).peak_key()
    }

    /// Time since candidate `i` last succeeded; `None` if it never has.
    pub fn since_last_success(&self, i: usize) -> Option<Duration> {
        self.health(i).last_success().map(|at| nanos_to_duration(self.now().saturating_sub(at)))
    }

    /// A stable 64-bit hash of candidate `i`'s id (for rendezvous hashing).
    #[inline]
    pub fn id_hash(&self, i: usize) -> u64 {
        self.slot_ref(i).id_hash
    }

    /// The request's target host, if given.
    pub fn target_host(&self) -> Option<&'a str> {
        self.host
    }

    /// The request's sticky session key, if given.
    pub fn sticky_key(&self) -> Option<&'a str> {
        self.sticky
    }

    /// The pool clock, read at most once per pick.
    #[inline]
    pub(crate) fn now(&self) -> Nanos {
        let now = self.now.get();
        if now != 0 {
            return now;
        }
        let now = self.core.clock.now();
        self.now.set(now);
        now
    }

    fn in_panic(&self) -> bool {
        if let Some(p) = self.panic.get() {
            return p;
        }
        let p = self.core.ejections.in_panic(self.now(), &self.core.config.ejection);
        self.panic.set(Some(p));
        p
    }

    pub(crate) fn panicking(&self) -> bool {
        self.panic.get() == Some(true)
    }

    pub(crate) fn filter(&self) -> &'a Filter {
        self.filter
    }
}

impl fmt::Debug for Candidates<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Candidates").field("len", &self.len()).field("generation", &self.generation).finish()
    }
}

/// The eligible candidate with the lowest `key`, for the balancers that scan. The scan
/// starts at a random position, so ties rotate instead of piling on the first proxy, and
/// stops early at a candidate whose key nothing can beat.
pub(crate) fn min_eligible_by<K: PartialOrd>(
    c: &Candidates<'_>,
    mut key: impl FnMut(usize) -> K,
    unbeatable: impl Fn(&K) -> bool,
) -> Option<usize> {
    let n = c.len();
    if n == 0 {
        return None;
    }
    let start = random_below(n);
    let mut best: Option<(usize, K)> = None;
    for i in (start..n).chain(0..start) {
        if !c.is_eligible(i) {
            continue;
        }
        let k = key(i);
        if best.as_ref().is_none_or(|(_, b)| k < *b) {
            let done = unbeatable(&k);
            best = Some((i, k));
            if done {
                break;
            }
        }
    }
    best.map(|(i, _)| i)
}

thread_local! {
    static WYRAND: Cell<u64> = const { Cell::new(0) };
}

/// A uniformly random position below `n` (n > 0).
///
/// Hand-written on purpose: a pick draws two or three numbers, and `rand::rng()` costs
/// about 5 ns a draw (thread-local handle plus a ChaCha block), a third of the whole
/// pick's budget. wyrand in a thread-local cell costs about 1 ns and is plenty for
/// spreading load; nothing here needs unpredictability. Lemire's multiply-shift maps it
/// to `0..n` without a division.
#[inline]
pub(crate) fn random_below(n: usize) -> usize {
    let r = WYRAND.with(|state| {
        let mut s = state.get();
        if s == 0 {
            s = rand::random::<u64>() | 1;
        }
        s = s.wrapping_add(0xa076_1d64_78bd_642f);
        state.set(s);
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    });
    ((u128::from(r) * n as u128) >> 64) as usize
}

/// A 64-bit mixer (SplitMix64's finaliser): spreads rendezvous scores uniformly.
#[inline]
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
