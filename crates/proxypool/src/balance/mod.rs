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
//! | [`PowerOfTwoChoices`] | the better of two random proxies by peak EWMA × (in-flight + 1) ÷ answer share | O(1) |
//! | [`ExpectedSuccess`] (the default) | the most likely to succeed at the target host, by Thompson sampling over the pool's evidence; among the near-best, the cheapest, then the least loaded | O(1): the host's leaders and a few random candidates |
//! | [`AdaptiveQuality`] | the seed's composite score of quality, availability, cost, recency, per-site success and trend | O(candidates) |
//! | [`Sticky`] | the same proxy for the same session key (rendezvous hashing) | O(candidates) |
//! | [`Failover`] | the first eligible proxy in pool order: a primary and its backups | O(position of the first eligible) |
//!
//! A balancer of your own implements [`Balancer`]:
//!
//! ```
//! use harvester_proxypool::balance::{Balancer, Candidates};
//!
//! /// The cheapest eligible candidate.
//! #[derive(Debug)]
//! struct Cheapest;
//!
//! impl Balancer for Cheapest {
//!     fn name(&self) -> &'static str { "cheapest" }
//!     fn pick(&self, candidates: &Candidates<'_>) -> Option<usize> {
//!         (0..candidates.len())
//!             .filter(|&i| candidates.is_eligible(i))
//!             .min_by(|&a, &b| candidates.cost(a).total_cmp(&candidates.cost(b)))
//!     }
//! }
//! ```

mod adaptive;
mod expected;
mod failover;
mod least_connections;
mod least_latency;
mod p2c;
mod round_robin;
mod sticky;
mod weighted;

use std::cell::{Cell, OnceCell};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use adaptive::AdaptiveQuality;
pub use expected::{ExpectedSuccess, Objective};
pub use failover::Failover;
pub use least_connections::LeastConnections;
pub use least_latency::LeastLatency;
pub use p2c::PowerOfTwoChoices;
pub use round_robin::RoundRobin;
pub use sticky::Sticky;
pub use weighted::SmoothWeightedRoundRobin;

use crate::clock::{Nanos, nanos_to_duration};
use crate::health::Hot;
use crate::health::learning::{Context, Estimate};
use crate::health::{HealthContext, ProxyHealth};
use crate::proxy::Proxy;
use crate::snapshot::{Dense, Filter, Slot, unavailable};

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

/// The pool's belief about one candidate's chance of success; see
/// [`Candidates::success_estimate`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SuccessEstimate {
    /// The probability of success (posterior mean), in [0, 1].
    pub expected: f64,
    /// One draw from the belief, in (0, 1): wide when the evidence is thin, so that
    /// choosing by draws tries proxies in proportion to how good they might be, and
    /// spreads requests among equally good ones (Thompson sampling).
    pub sampled: f64,
    /// How many outcomes' worth of evidence the belief rests on, its starting point
    /// included.
    pub evidence: f64,
}

/// The proxies that may serve one request, as a balancer sees them.
///
/// Positions run from 0 to `len()`. A position is eligible when the proxy matches the
/// requirements, is below its session limit, is not ejected (unless the pool is in panic
/// mode) and is not banned by the target host.
pub struct Candidates<'a> {
    slots: &'a [Slot],
    dense: &'a [Dense],
    set: Option<&'a [u32]>,
    filter: &'a Filter,
    host: Option<&'a str>,
    sticky: Option<&'a str>,
    ctx: &'a HealthContext,
    generation: u64,
    now: Cell<Nanos>,
    panic: Cell<Option<bool>>,
    /// The last position found eligible, so the pool need not check it twice.
    last_eligible: Cell<usize>,
    /// What the estimates of this pick share, made on first use.
    context: OnceCell<Context<'a>>,
}

impl<'a> Candidates<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        (slots, dense): (&'a [Slot], &'a [Dense]),
        set: Option<&'a [u32]>,
        filter: &'a Filter,
        host: Option<&'a str>,
        sticky: Option<&'a str>,
        ctx: &'a HealthContext,
        generation: u64,
    ) -> Self {
        Candidates {
            slots,
            dense,
            set,
            filter,
            host,
            sticky,
            ctx,
            generation,
            now: Cell::new(0),
            panic: Cell::new(None),
            last_eligible: Cell::new(usize::MAX),
            context: OnceCell::new(),
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
        let at = self.slot(i);
        let cfg = &self.ctx.config().health;
        let why = unavailable(
            &self.slots[at],
            &self.dense[at],
            self.filter,
            self.host,
            || self.now(),
            || self.in_panic(),
            cfg,
        );
        if why.is_some() {
            return false;
        }
        self.last_eligible.set(i);
        true
    }

    /// The dense entry of candidate `i`: its hot line, session limit and member.
    #[inline]
    pub(crate) fn dense_ref(&self, i: usize) -> &'a Dense {
        &self.dense[self.slot(i)]
    }

    /// Starts fetching what a pick reads of candidate `i` (its hot line, and the member a
    /// lease on it takes), so that the fetches of a few candidates overlap instead of
    /// following one another. Plain loads whose values are dropped: the crate has no
    /// `unsafe`, so no prefetch instruction.
    #[inline]
    pub(crate) fn touch(&self, i: usize) {
        let dense = self.dense_ref(i);
        std::hint::black_box((dense.hot().in_flight(), Arc::strong_count(&dense.member)));
    }

    /// The hot line of candidate `i`: what eligibility and P2C read.
    #[inline]
    pub(crate) fn hot(&self, i: usize) -> &'a Hot {
        self.dense_ref(i).hot()
    }

    /// The proxy at candidate `i`.
    #[inline]
    pub fn proxy(&self, i: usize) -> &'a Proxy {
        self.slot_ref(i).proxy()
    }

    /// The live health of candidate `i`.
    #[inline]
    pub(crate) fn health(&self, i: usize) -> &'a ProxyHealth {
        self.slot_ref(i).health()
    }

    /// Requests in flight through candidate `i` now.
    #[inline]
    pub fn in_flight(&self, i: usize) -> u32 {
        self.hot(i).in_flight()
    }

    /// Candidate `i`'s latency average, if it has answered.
    pub fn latency(&self, i: usize) -> Option<Duration> {
        self.health(i).latency()
    }

    /// Candidate `i`'s share of successes in its recent window, if it has any outcome.
    pub fn success_rate(&self, i: usize) -> Option<f64> {
        self.health(i).success_rate()
    }

    /// Candidate `i`'s current run of attempts without an answer.
    pub fn consecutive_failures(&self, i: usize) -> u32 {
        self.health(i).consecutive_failures()
    }

    /// The quality score of candidate `i` under the pool's health config.
    pub fn quality(&self, i: usize) -> f64 {
        self.health(i).quality(&self.ctx.config().health)
    }

    /// Peak EWMA latency of candidate `i` in seconds, decayed to now; 0 before any sample.
    #[inline]
    pub fn peak_latency(&self, i: usize) -> f64 {
        self.health(i).peak_latency(self.now(), &self.ctx.config().health)
    }

    /// A key that orders candidates as their decayed peak EWMA latencies do, read
    /// without the clock: `ln(peak) + time of the last sample / τ`; `-inf` before the
    /// first sample.
    #[inline]
    pub fn peak_key(&self, i: usize) -> f64 {
        self.hot(i).peak.key()
    }

    /// Time since candidate `i` last succeeded; `None` if it never has.
    pub fn since_last_success(&self, i: usize) -> Option<Duration> {
        self.health(i).last_success().map(|at| nanos_to_duration(self.now().saturating_sub(at)))
    }

    /// Share of candidate `i`'s answers from the target host that were not bans (fading
    /// with the evidence half-life); `None` without a target host or before any answer.
    pub fn target_success_rate(&self, i: usize) -> Option<f64> {
        let host = self.host?;
        self.health(i).target_success_rate(host, self.now(), self.ctx.fades())
    }

    /// What the pool expects of a request through candidate `i` at the target host now:
    /// the probability of success from its evidence (whether the proxy delivers at all;
    /// whether the host accepts it, from what the host answers proxies of its kind now
    /// and how this proxy fares against them there, or elsewhere when it is new there),
    /// discounted as it nears the host's learned rate tolerance and while a request of it
    /// is overdue; plus one draw from that belief, for Thompson sampling.
    pub fn success_estimate(&self, i: usize) -> SuccessEstimate {
        let estimate = self.estimate(i);
        let (a, b) = self.ctx.random().normal_pair();
        SuccessEstimate { expected: estimate.expected(), sampled: estimate.draw(a, b), evidence: estimate.weight() }
    }

    /// True when candidate `i` has not succeeded since it joined the pool or came back
    /// from an ejection and already has a request in flight: on probation, it should get
    /// no second request until its first one succeeds (Envoy's slow start, in its
    /// simplest form).
    #[inline]
    pub fn on_probation(&self, i: usize) -> bool {
        let hot = self.hot(i);
        !hot.proven.load(std::sync::atomic::Ordering::Relaxed) && hot.in_flight() > 0
    }

    /// Candidate `i`'s cost per request.
    #[inline]
    pub fn cost(&self, i: usize) -> f64 {
        self.slot_ref(i).cost()
    }

    /// Candidate `i`'s weight (its metadata's `weight`).
    #[inline]
    pub fn weight(&self, i: usize) -> u32 {
        self.slot_ref(i).weight()
    }

    /// Candidates with the best evidence at the target host, as the pool keeps them (a
    /// few at most; eligibility not checked): a place to start that does not depend on
    /// the pool's size. Empty without a target host.
    pub fn leaders(&self) -> impl Iterator<Item = usize> + '_ {
        let site = self.host.and_then(|_| self.context().site());
        site.into_iter().flat_map(move |site| {
            site.leaders.slots(self.generation).filter_map(move |slot| self.position_of_slot(slot as usize))
        })
    }

    /// The candidate position of pool slot `slot`, if it is a candidate.
    fn position_of_slot(&self, slot: usize) -> Option<usize> {
        match self.set {
            Some(set) => set.binary_search(&(slot as u32)).ok(),
            None => (slot < self.slots.len()).then_some(slot),
        }
    }

    /// A uniformly random number below `n` (n > 0), from the pool's randomness (seeded
    /// with [`ProxyPoolBuilder::seed`](crate::ProxyPoolBuilder::seed), reproducible).
    #[inline]
    pub fn random_below(&self, n: usize) -> usize {
        self.ctx.random().below(n)
    }

    /// 64 random bits from the pool's randomness.
    #[inline]
    pub fn random_u64(&self) -> u64 {
        self.ctx.random().next_u64()
    }

    pub(crate) fn context(&self) -> &Context<'a> {
        self.context.get_or_init(|| self.ctx.estimates(self.host, self.now()))
    }

    pub(crate) fn estimate(&self, i: usize) -> Estimate {
        let slot = self.slot_ref(i);
        self.context().estimate(slot.health(), slot.kind_group())
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

    /// The pick's time if it read the clock, else 0 ("unknown").
    #[inline]
    pub(crate) fn now_if_read(&self) -> Nanos {
        self.now.get()
    }

    /// The pool clock, read at most once per pick.
    #[inline]
    pub(crate) fn now(&self) -> Nanos {
        let now = self.now.get();
        if now != 0 {
            return now;
        }
        let now = self.ctx.now();
        self.now.set(now);
        now
    }

    fn in_panic(&self) -> bool {
        if let Some(p) = self.panic.get() {
            return p;
        }
        let p = self.ctx.in_panic(self.now());
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
    let start = c.random_below(n);
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
