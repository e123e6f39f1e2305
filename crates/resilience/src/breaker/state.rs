//! The state machine: closed, open, half-open and the forced modes, with the permits that
//! carry a call from "may I?" to "how did it go".
//!
//! The whole state is one `AtomicU64` (see [`word`]). Asking for a permit while closed is one
//! load; recording a success is one more load, the load of the current [`Period`] and the
//! window's `fetch_add`. Transitions are rare and take a mutex, so that the open wait is written
//! before the open state is published, that two threads never both win the same transition and
//! that transitions are published in the order they happen; half-open probe slots are taken and
//! given back with compare-and-swap on the state word.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};

use arc_swap::ArcSwap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;

use super::config::{BreakerConfig, Settings};
use super::events::{BreakerState, Emitter, Reason, StateChange};
use super::window::{self, Counts, Window};
use crate::error::{CircuitOpen, ConfigError};

/// The state word: `[generation:25][slow probes:12][finished probes:12][probes taken:12][state:3]`.
///
/// Every transition bumps the generation, so a permit granted in one period cannot record
/// into the next (a success from before an opening must not count as a half-open probe).
mod word {
    use super::BreakerState;

    pub(super) const TAKEN_ONE: u64 = 1 << 3;
    pub(super) const DONE_ONE: u64 = 1 << 15;
    pub(super) const SLOW_ONE: u64 = 1 << 27;
    const COUNT_MASK: u64 = (1 << 12) - 1;
    const GEN_SHIFT: u32 = 39;
    const GEN_MASK: u64 = (1 << 25) - 1;

    pub(super) const fn pack(state: BreakerState, generation: u64) -> u64 {
        (generation & GEN_MASK) << GEN_SHIFT | state as u64
    }
    pub(super) const fn state(w: u64) -> BreakerState {
        BreakerState::from_bits(w & 0b111)
    }
    pub(super) const fn generation(w: u64) -> u64 {
        w >> GEN_SHIFT
    }
    pub(super) const fn taken(w: u64) -> u32 {
        (w >> 3 & COUNT_MASK) as u32
    }
    pub(super) const fn done(w: u64) -> u32 {
        (w >> 15 & COUNT_MASK) as u32
    }
    pub(super) const fn slow(w: u64) -> u32 {
        (w >> 27 & COUNT_MASK) as u32
    }
}

/// What a granted call must do when it finishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ticket {
    /// Closed or metrics-only: the outcome goes into the window of generation `generation`.
    Judged { generation: u64 },
    /// A half-open probe of generation `generation`.
    Probe { generation: u64 },
    /// Forced closed: the outcome only counts in the call metrics.
    Counted,
    /// Disabled: nothing to do.
    Free,
}

#[derive(Debug, Default)]
struct Control {
    /// Reopenings from half-open in a row: the exponent of the open wait's growth.
    reopened: u32,
    /// The breaker's key was evicted from its keyed breaker: it still guards the calls that
    /// hold it, but its transitions are no longer published (the key may have a new breaker).
    evicted: bool,
}

/// The window of one closed or metrics-only period, with what goes with it.
///
/// A window is never cleared in place (a call recording concurrently could leave its totals
/// off for good): every transition into a judging state, and every reset, installs a fresh
/// period, and a call records only into the period of its own generation, so a late call
/// lands in a discarded window or nowhere.
#[derive(Debug)]
struct Period {
    /// The generation of the state word this period was installed for.
    generation: u64,
    window: Window,
    /// Metrics-only mode: a threshold is crossed and was reported.
    over_threshold: AtomicBool,
}

impl Period {
    fn new(settings: &Settings, generation: u64) -> Arc<Period> {
        Arc::new(Period {
            generation,
            window: Window::new(&settings.config.window),
            over_threshold: AtomicBool::new(false),
        })
    }
}

/// The state shared by every clone of a breaker.
pub(crate) struct Shared {
    word: AtomicU64,
    /// Replaced (under `control`) before the word of a new judging generation is published.
    period: ArcSwap<Period>,
    /// End of the open wait, in nanoseconds since `base`; written before `Open` is published.
    open_until: AtomicU64,
    rejected: AtomicU64,
    control: Mutex<Control>,
    settings: Arc<Settings>,
    emitter: Arc<Emitter>,
    key: Option<Arc<str>>,
    base: Instant,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("name", &self.emitter.name)
            .field("key", &self.key)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

fn saturating_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 * 100.0 / whole as f64 }
}

impl Shared {
    fn nanos(&self, at: Instant) -> u64 {
        saturating_nanos(at.saturating_duration_since(self.base))
    }

    pub(crate) fn state(&self) -> BreakerState {
        word::state(self.word.load(Acquire))
    }

    /// Whether the call's duration matters (to tell slow calls).
    pub(crate) fn times(&self, ticket: Ticket) -> bool {
        self.settings.config.slow_call_detection && matches!(ticket, Ticket::Judged { .. } | Ticket::Probe { .. })
    }

    /// Asks for a permit.
    #[inline]
    pub(crate) fn acquire(&self) -> Result<Ticket, CircuitOpen> {
        let mut w = self.word.load(Acquire);
        loop {
            match word::state(w) {
                BreakerState::Closed | BreakerState::MetricsOnly => {
                    return Ok(Ticket::Judged { generation: word::generation(w) });
                }
                BreakerState::ForcedClosed => return Ok(Ticket::Counted),
                BreakerState::Disabled => return Ok(Ticket::Free),
                BreakerState::ForcedOpen => return Err(self.reject(BreakerState::ForcedOpen, None)),
                BreakerState::Open => {
                    let now = self.nanos(harvester_core::time::now());
                    let until = self.open_until.load(Relaxed);
                    if now < until {
                        return Err(self.reject(BreakerState::Open, Some(Duration::from_nanos(until - now))));
                    }
                    self.move_to(Some(word::generation(w)), BreakerState::HalfOpen, Reason::WaitElapsed);
                    w = self.word.load(Acquire);
                }
                BreakerState::HalfOpen => {
                    if word::taken(w) >= self.settings.config.half_open_permitted_calls {
                        // The probes running decide; there is no time to announce.
                        return Err(self.reject(BreakerState::HalfOpen, None));
                    }
                    match self.word.compare_exchange_weak(w, w + word::TAKEN_ONE, AcqRel, Acquire) {
                        Ok(_) => return Ok(Ticket::Probe { generation: word::generation(w) }),
                        Err(actual) => w = actual,
                    }
                }
            }
        }
    }

    fn reject(&self, state: BreakerState, retry_in: Option<Duration>) -> CircuitOpen {
        self.rejected.fetch_add(1, Relaxed);
        self.emitter.rejected(state, self.key.as_deref());
        CircuitOpen { state: state.as_str(), retry_in, key: self.key.as_deref().map(str::to_owned) }
    }

    /// Records a finished call. `now` (when the call finished) saves a time-based window a
    /// clock read.
    #[inline]
    pub(crate) fn record(&self, ticket: Ticket, failed: bool, elapsed: Duration, now: Option<Instant>) {
        if ticket == Ticket::Free {
            return;
        }
        let config = &self.settings.config;
        let slow = config.slow_call_detection && elapsed >= config.slow_call_duration;
        if failed {
            self.emitter.failures.increment(1);
        } else {
            self.emitter.successes.increment(1);
        }
        if slow {
            self.emitter.slow_calls.increment(1);
        }
        match ticket {
            Ticket::Judged { generation } => self.record_judged(generation, failed, slow, now),
            Ticket::Probe { generation } => self.record_probe(generation, failed, slow),
            Ticket::Counted | Ticket::Free => {}
        }
    }

    #[inline]
    fn record_judged(&self, generation: u64, failed: bool, slow: bool, now: Option<Instant>) {
        let w = self.word.load(Acquire);
        if word::generation(w) != generation {
            return;
        }
        // A guard, not a clone: no reference count is touched. The period of `generation`
        // was installed before its word was published, so it is this one unless a transition
        // has happened since, and then the call counts nowhere.
        let period = self.period.load();
        if period.generation != generation {
            return;
        }
        let now_nanos = || self.nanos(now.unwrap_or_else(harvester_core::time::now));
        let Some(counts) = period.window.record(window::encode(failed, slow), self.settings.min_calls, now_nanos)
        else {
            return;
        };
        match (self.judge(counts), word::state(w)) {
            (Some(reason), BreakerState::Closed) => {
                drop(period);
                self.move_to(Some(generation), BreakerState::Open, reason);
            }
            (Some(reason), BreakerState::MetricsOnly) if !period.over_threshold.swap(true, Relaxed) => {
                self.emitter.would_open(reason, self.key.as_deref());
            }
            (None, BreakerState::MetricsOnly) if period.over_threshold.load(Relaxed) => {
                period.over_threshold.store(false, Relaxed);
            }
            _ => {}
        }
    }

    /// The verdict on a window: which threshold, if any, is reached.
    fn judge(&self, counts: Counts) -> Option<Reason> {
        if counts.calls < self.settings.min_calls {
            return None;
        }
        let config = &self.settings.config;
        let rate = percent(counts.failures, counts.calls);
        if rate >= config.failure_rate_threshold {
            return Some(Reason::FailureRate { rate });
        }
        let rate = percent(counts.slow, counts.calls);
        (rate >= config.slow_call_rate_threshold).then_some(Reason::SlowCallRate { rate })
    }

    fn record_probe(&self, generation: u64, failed: bool, slow: bool) {
        if failed {
            self.move_to(Some(generation), BreakerState::Open, Reason::ProbeFailed);
            return;
        }
        let permitted = self.settings.config.half_open_permitted_calls;
        let mut w = self.word.load(Acquire);
        loop {
            if word::generation(w) != generation || word::state(w) != BreakerState::HalfOpen {
                return;
            }
            let next = w + word::DONE_ONE + if slow { word::SLOW_ONE } else { 0 };
            match self.word.compare_exchange_weak(w, next, AcqRel, Acquire) {
                Ok(_) => break w = next,
                Err(actual) => w = actual,
            }
        }
        let slow_rate = percent(u64::from(word::slow(w)), u64::from(permitted));
        if slow && slow_rate >= self.settings.config.slow_call_rate_threshold {
            self.move_to(Some(generation), BreakerState::Open, Reason::SlowProbes { rate: slow_rate });
        } else if word::done(w) >= permitted {
            self.move_to(Some(generation), BreakerState::Closed, Reason::ProbesSucceeded);
        }
    }

    /// A permit dropped without an outcome (its call was cancelled): a probe gives its slot
    /// back and counts as neither success nor failure.
    pub(crate) fn release(&self, ticket: Ticket) {
        let Ticket::Probe { generation } = ticket else { return };
        let mut w = self.word.load(Acquire);
        while word::generation(w) == generation && word::state(w) == BreakerState::HalfOpen && word::taken(w) > 0 {
            match self.word.compare_exchange_weak(w, w - word::TAKEN_ONE, AcqRel, Acquire) {
                Ok(_) => return,
                Err(actual) => w = actual,
            }
        }
    }

    /// Moves to `to` if the state is still of `generation` (any, when `None`) and is not
    /// already `to`. Returns whether it moved.
    fn move_to(&self, generation: Option<u64>, to: BreakerState, reason: Reason) -> bool {
        self.transition(generation, to, reason, false)
    }

    /// [`move_to`](Self::move_to); with `renew`, a breaker already in `to` still starts a new
    /// generation with a fresh window (silently: nothing changed state).
    fn transition(&self, generation: Option<u64>, to: BreakerState, reason: Reason, renew: bool) -> bool {
        let now = harvester_core::time::now();
        let change = {
            let mut control = self.control.lock().unwrap_or_else(PoisonError::into_inner);
            let w = self.word.load(Acquire);
            let from = word::state(w);
            if generation.is_some_and(|g| g != word::generation(w)) || (from == to && !renew) {
                return false;
            }
            let next = word::pack(to, word::generation(w) + 1);
            let mut open_for = None;
            match to {
                BreakerState::Open => {
                    control.reopened =
                        if from == BreakerState::HalfOpen { control.reopened.saturating_add(1) } else { 0 };
                    let config = &self.settings.config;
                    let wait = config.open_wait_growth.wait(config.open_wait, config.max_open_wait, control.reopened);
                    self.open_until.store(self.nanos(now).saturating_add(saturating_nanos(wait)), Relaxed);
                    open_for = Some(wait);
                }
                BreakerState::HalfOpen => {}
                _ => {
                    control.reopened = 0;
                    // Before the word: a call of the new generation must find its period.
                    self.period.store(Period::new(&self.settings, word::generation(next)));
                }
            }
            // A plain store is enough: the lock excludes other transitions, and a probe's
            // compare-and-swap against the old word fails and sees the new generation.
            self.word.store(next, Release);
            if from == to || control.evicted {
                return true;
            }
            let change = StateChange { from, to, reason, key: self.key.clone(), at: now, open_for };
            // Under the lock, so that the gauge and the channel see transitions in order.
            self.emitter.publish(&change);
            change
        };
        // Outside the lock: a callback may call back into the breaker.
        self.emitter.notify(change);
        true
    }

    /// The breaker's key was evicted: from now on its transitions are not published, and it
    /// no longer counts in the `open_keys` gauge.
    pub(crate) fn evict(&self) {
        let mut control = self.control.lock().unwrap_or_else(PoisonError::into_inner);
        if !control.evicted {
            control.evicted = true;
            self.emitter.key_evicted(self.state());
        }
    }

    fn snapshot(&self) -> Snapshot {
        let w = self.word.load(Acquire);
        let now = self.nanos(harvester_core::time::now());
        let counts = self.period.load().window.counts(|| now);
        let state = word::state(w);
        Snapshot {
            state,
            failure_rate: percent(counts.failures, counts.calls),
            slow_call_rate: percent(counts.slow, counts.calls),
            calls_in_window: counts.calls,
            failed_calls: counts.failures,
            slow_calls: counts.slow,
            rejected: self.rejected.load(Relaxed),
            half_open_in: (state == BreakerState::Open)
                .then(|| Duration::from_nanos(self.open_until.load(Relaxed).saturating_sub(now))),
            probes_running: if state == BreakerState::HalfOpen { word::taken(w) - word::done(w) } else { 0 },
        }
    }
}

/// A point-in-time view of a breaker.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The state.
    pub state: BreakerState,
    /// Failed calls in the window, in percent (0 when the window is empty).
    pub failure_rate: f64,
    /// Slow calls in the window, in percent (0 when the window is empty).
    pub slow_call_rate: f64,
    /// Calls in the window. The window is emptied when the breaker closes again, so while
    /// open or half-open it still shows the calls that opened it.
    pub calls_in_window: u64,
    /// Failed calls in the window.
    pub failed_calls: u64,
    /// Slow calls in the window.
    pub slow_calls: u64,
    /// Calls refused since the breaker was built.
    pub rejected: u64,
    /// While open: how long until the next call is let through as a probe (zero once the
    /// wait is over; the breaker turns half-open at that next call).
    pub half_open_in: Option<Duration>,
    /// While half-open: probes let through and not finished yet.
    pub probes_running: u32,
}

/// The outcome of a call made under a [`Permit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallOutcome {
    /// Whether the call failed.
    pub failed: bool,
    /// How long it took; at least `slow_call_duration` makes it slow.
    pub elapsed: Duration,
}

impl CallOutcome {
    /// A call that succeeded after `elapsed`.
    pub const fn success(elapsed: Duration) -> CallOutcome {
        CallOutcome { failed: false, elapsed }
    }

    /// A call that failed after `elapsed`.
    pub const fn failure(elapsed: Duration) -> CallOutcome {
        CallOutcome { failed: true, elapsed }
    }
}

/// Leave to make one call, from [`Breaker::try_acquire`]. Report how it went with
/// [`record`](Permit::record); a permit dropped unrecorded (the call was cancelled) counts as
/// nothing and gives a half-open probe slot back.
#[must_use = "record the outcome of the call; a dropped permit counts as nothing"]
pub struct Permit<'a> {
    shared: &'a Shared,
    ticket: Option<Ticket>,
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").field("probe", &self.is_probe()).finish()
    }
}

impl Permit<'_> {
    /// Records the call's outcome.
    #[inline]
    pub fn record(mut self, outcome: CallOutcome) {
        if let Some(ticket) = self.ticket.take() {
            self.shared.record(ticket, outcome.failed, outcome.elapsed, None);
        }
    }

    /// Whether this call is a half-open probe.
    pub fn is_probe(&self) -> bool {
        matches!(self.ticket, Some(Ticket::Probe { .. }))
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.shared.release(ticket);
        }
    }
}

/// A permit that owns its breaker, held by a response future.
#[derive(Debug)]
#[must_use = "dropping it gives the permit back at once"]
pub(crate) struct OwnedPermit {
    shared: Arc<Shared>,
    ticket: Option<Ticket>,
}

impl OwnedPermit {
    pub(crate) fn new(shared: Arc<Shared>, ticket: Ticket) -> OwnedPermit {
        OwnedPermit { shared, ticket: Some(ticket) }
    }

    pub(crate) fn record(mut self, failed: bool, elapsed: Duration, now: Option<Instant>) {
        if let Some(ticket) = self.ticket.take() {
            self.shared.record(ticket, failed, elapsed, now);
        }
    }
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.shared.release(ticket);
        }
    }
}

/// A circuit breaker's state machine, shared by all its clones (and by every service made by
/// its [`layer`](Breaker::layer)).
///
/// Use it directly around any kind of call, or through [`CircuitBreakerLayer`](super::CircuitBreakerLayer):
///
/// ```
/// use std::time::Duration;
/// use harvester_resilience::breaker::{Breaker, BreakerConfig, BreakerState, CallOutcome};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let breaker = Breaker::new(BreakerConfig { minimum_calls: 2, ..BreakerConfig::default() }).unwrap();
/// for _ in 0..2 {
///     let permit = breaker.try_acquire().unwrap();
///     permit.record(CallOutcome::failure(Duration::from_millis(3)));
/// }
/// assert_eq!(breaker.state(), BreakerState::Open);
/// let refused = breaker.try_acquire().unwrap_err();
/// assert_eq!(refused.retry_in, Some(Duration::from_secs(60)));
/// # }
/// ```
#[derive(Clone)]
pub struct Breaker {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("name", &self.shared.emitter.name)
            .field("key", &self.shared.key)
            .field("state", &self.state())
            .finish()
    }
}

impl Breaker {
    /// A closed breaker. Registers its metrics with the recorder installed now.
    pub fn new(config: BreakerConfig) -> Result<Breaker, ConfigError> {
        let settings = Arc::new(Settings::new(config)?);
        let emitter = Arc::new(Emitter::new(&settings.config.name, false));
        Ok(Breaker::with_parts(settings, emitter, None))
    }

    pub(crate) fn with_parts(settings: Arc<Settings>, emitter: Arc<Emitter>, key: Option<Arc<str>>) -> Breaker {
        Breaker {
            shared: Arc::new(Shared {
                word: AtomicU64::new(word::pack(BreakerState::Closed, 0)),
                period: ArcSwap::new(Period::new(&settings, 0)),
                open_until: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
                control: Mutex::new(Control::default()),
                settings,
                emitter,
                key,
                base: harvester_core::time::now(),
            }),
        }
    }

    /// Leave to make a call, or why not. Turns an open breaker whose wait is over half-open.
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, CircuitOpen> {
        let ticket = self.shared.acquire()?;
        Ok(Permit { shared: &self.shared, ticket: Some(ticket) })
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        self.shared.state()
    }

    /// Rates, counts and timing as of now.
    pub fn snapshot(&self) -> Snapshot {
        self.shared.snapshot()
    }

    /// The configuration.
    pub fn config(&self) -> &BreakerConfig {
        &self.shared.settings.config
    }

    /// The key, for a breaker of a [`KeyedBreaker`](super::KeyedBreaker).
    pub fn key(&self) -> Option<&str> {
        self.shared.key.as_deref()
    }

    /// A receiver of every later state change (of every key, for a keyed breaker's).
    pub fn subscribe(&self) -> broadcast::Receiver<StateChange> {
        self.shared.emitter.subscribe()
    }

    /// Calls `callback` on every later state change, on the task that caused it, after the
    /// breaker's lock is released (so it may call into the breaker). Keep it short: it runs in
    /// the path of a request. Two transitions in quick succession on different tasks may reach
    /// the callbacks in either order; [`subscribe`](Breaker::subscribe) sees them in order.
    pub fn on_state_change(&self, callback: impl Fn(StateChange) + Send + Sync + 'static) {
        self.shared.emitter.on_state_change(Arc::new(callback));
    }

    /// Refuses every call until [`reset`](Breaker::reset).
    pub fn force_open(&self) {
        self.shared.move_to(None, BreakerState::ForcedOpen, Reason::Manual);
    }

    /// Lets every call through without judging it until [`reset`](Breaker::reset); outcomes
    /// still count in the call metrics.
    pub fn force_closed(&self) {
        self.shared.move_to(None, BreakerState::ForcedClosed, Reason::Manual);
    }

    /// Lets every call through and records nothing until [`reset`](Breaker::reset).
    pub fn disable(&self) {
        self.shared.move_to(None, BreakerState::Disabled, Reason::Manual);
    }

    /// Shadow mode: judges every call as if closed (rates, snapshot, metrics) and reports a
    /// crossed threshold (`WARN` event, `harvester_breaker_would_open_total`) instead of
    /// opening. Starts with an empty window.
    pub fn metrics_only(&self) {
        self.shared.move_to(None, BreakerState::MetricsOnly, Reason::Manual);
    }

    /// Closes the breaker with an empty window and the first open wait, from any state.
    pub fn reset(&self) {
        // From closed too: a new generation, so that calls granted before cannot count.
        self.shared.transition(None, BreakerState::Closed, Reason::Manual, true);
    }
}
