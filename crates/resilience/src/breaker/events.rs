//! The states a breaker moves through, and what it tells the outside world about them: state changes (callbacks and a broadcast channel),
//! `tracing` events, and `metrics`.
//!
//! # Metrics
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `harvester_breaker_calls_total` | counter | `breaker`, `outcome` = `success` \| `failure` |
//! | `harvester_breaker_slow_calls_total` | counter | `breaker` |
//! | `harvester_breaker_rejected_total` | counter | `breaker` |
//! | `harvester_breaker_transitions_total` | counter | `breaker`, `to` (a [`BreakerState`] name) |
//! | `harvester_breaker_would_open_total` | counter | `breaker` (metrics-only mode crossed a threshold) |
//! | `harvester_breaker_state` | gauge | `breaker`: 0 closed, 1 open, 2 half-open, 3 forced open, 4 forced closed, 5 disabled, 6 metrics only |
//! | `harvester_breaker_keys` | gauge | `breaker` (keyed mode: keys tracked) |
//! | `harvester_breaker_open_keys` | gauge | `breaker` (keyed mode: keys open, half-open or forced open) |
//!
//! The handles are registered when the breaker is built, so that a call never builds a metric
//! key: **a recorder installed after the breaker was built does not see its metrics.** Install
//! the recorder first. Keyed breakers share one set of handles (no per-key label: hosts are too
//! many to be labels); per-key detail is in [`KeyedBreaker::snapshot`](super::KeyedBreaker::snapshot)
//! and in the events, which carry the key.
//!
//! # Tracing
//!
//! Opening is a `WARN` event, other transitions `INFO`, a refused call `DEBUG`; all with the
//! fields `breaker` and `key`.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use std::fmt;

use metrics::{Counter, Gauge};
use tokio::sync::broadcast;
use tokio::time::Instant;

/// What a breaker does with calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum BreakerState {
    /// Calls pass and are judged.
    Closed = 0,
    /// Calls are refused until the open wait is over.
    Open = 1,
    /// A few probe calls pass; their outcome closes or reopens the breaker.
    HalfOpen = 2,
    /// Every call is refused until the breaker is [reset](super::Breaker::reset).
    ForcedOpen = 3,
    /// Every call passes; outcomes count in the call metrics but are never judged.
    ForcedClosed = 4,
    /// Every call passes and nothing is recorded.
    Disabled = 5,
    /// Every call passes and is judged; crossing a threshold is reported, never acted on.
    MetricsOnly = 6,
}

impl BreakerState {
    /// `closed`, `open`, `half-open`, `forced open`, `forced closed`, `disabled` or
    /// `metrics only`.
    pub const fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
            BreakerState::ForcedOpen => "forced open",
            BreakerState::ForcedClosed => "forced closed",
            BreakerState::Disabled => "disabled",
            BreakerState::MetricsOnly => "metrics only",
        }
    }

    /// Whether calls may be refused in this state (open, half-open, forced open).
    pub const fn refuses(self) -> bool {
        matches!(self, BreakerState::Open | BreakerState::HalfOpen | BreakerState::ForcedOpen)
    }

    pub(super) const fn from_bits(bits: u64) -> BreakerState {
        match bits {
            0 => BreakerState::Closed,
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            3 => BreakerState::ForcedOpen,
            4 => BreakerState::ForcedClosed,
            5 => BreakerState::Disabled,
            _ => BreakerState::MetricsOnly,
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many state changes a slow [`subscribe`](super::Breaker::subscribe)r may fall behind
/// before it misses some (it then gets `RecvError::Lagged`).
pub const EVENT_CAPACITY: usize = 64;

/// A breaker moved from one state to another.
#[derive(Debug, Clone, PartialEq)]
pub struct StateChange {
    /// The state left.
    pub from: BreakerState,
    /// The state entered.
    pub to: BreakerState,
    /// Why.
    pub reason: Reason,
    /// The key, for a breaker of a [`KeyedBreaker`](super::KeyedBreaker).
    pub key: Option<Arc<str>>,
    /// When (tokio's clock).
    pub at: Instant,
    /// When the breaker opened: how long it stays open.
    pub open_for: Option<Duration>,
}

/// Why a breaker changed state.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Reason {
    /// The failure rate (a percentage) reached the threshold.
    FailureRate {
        /// Failed calls in the window, in percent.
        rate: f64,
    },
    /// The slow-call rate (a percentage) reached the threshold.
    SlowCallRate {
        /// Slow calls in the window, in percent.
        rate: f64,
    },
    /// The open wait is over: probes may go through.
    WaitElapsed,
    /// Every permitted half-open probe succeeded.
    ProbesSucceeded,
    /// A half-open probe failed.
    ProbeFailed,
    /// Enough half-open probes were slow to reach the slow-call rate threshold.
    SlowProbes {
        /// Slow probes among the permitted ones, in percent.
        rate: f64,
    },
    /// An operator forced or reset the state.
    Manual,
}

type Callback = Arc<dyn Fn(StateChange) + Send + Sync>;

const STATES: [BreakerState; 7] = [
    BreakerState::Closed,
    BreakerState::Open,
    BreakerState::HalfOpen,
    BreakerState::ForcedOpen,
    BreakerState::ForcedClosed,
    BreakerState::Disabled,
    BreakerState::MetricsOnly,
];

/// The metrics handles, callbacks and channel of a breaker, or of all breakers of a keyed one.
pub(crate) struct Emitter {
    pub(crate) name: Arc<str>,
    pub(crate) successes: Counter,
    pub(crate) failures: Counter,
    pub(crate) slow_calls: Counter,
    rejected: Counter,
    would_open: Counter,
    transitions: [Counter; 7],
    state: Gauge,
    pub(crate) keys: Option<Gauge>,
    open_keys: Option<Gauge>,
    callbacks: RwLock<Vec<Callback>>,
    sender: broadcast::Sender<StateChange>,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Emitter {
    /// Registers the metric handles with the recorder installed now.
    pub(crate) fn new(name: &str, keyed: bool) -> Emitter {
        let label = name.to_owned();
        let counter = |metric: &'static str| metrics::counter!(metric, "breaker" => label.clone());
        let calls = |outcome: &'static str| metrics::counter!("harvester_breaker_calls_total", "breaker" => label.clone(), "outcome" => outcome);
        let gauge = |metric: &'static str| metrics::gauge!(metric, "breaker" => label.clone());
        Emitter {
            name: name.into(),
            successes: calls("success"),
            failures: calls("failure"),
            slow_calls: counter("harvester_breaker_slow_calls_total"),
            rejected: counter("harvester_breaker_rejected_total"),
            would_open: counter("harvester_breaker_would_open_total"),
            transitions: STATES.map(|to| {
                metrics::counter!("harvester_breaker_transitions_total", "breaker" => label.clone(), "to" => to.as_str())
            }),
            state: if keyed {
                Gauge::noop()
            } else {
                let state = gauge("harvester_breaker_state");
                state.set(0.0);
                state
            },
            keys: keyed.then(|| gauge("harvester_breaker_keys")),
            open_keys: keyed.then(|| gauge("harvester_breaker_open_keys")),
            callbacks: RwLock::new(Vec::new()),
            sender: broadcast::channel(EVENT_CAPACITY).0,
        }
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<StateChange> {
        self.sender.subscribe()
    }

    pub(crate) fn on_state_change(&self, callback: Callback) {
        self.callbacks.write().unwrap_or_else(PoisonError::into_inner).push(callback);
    }

    pub(crate) fn rejected(&self, state: BreakerState, key: Option<&str>) {
        self.rejected.increment(1);
        tracing::debug!(breaker = %self.name, key = key.unwrap_or(""), %state, "circuit breaker refused a call");
    }

    /// Metrics-only mode crossed a threshold (reported once per crossing).
    pub(crate) fn would_open(&self, reason: Reason, key: Option<&str>) {
        self.would_open.increment(1);
        tracing::warn!(breaker = %self.name, key = key.unwrap_or(""), ?reason, "circuit breaker would open (metrics only)");
    }

    /// A key's breaker was forgotten in `state` (called under that breaker's lock, after
    /// which it publishes nothing).
    pub(crate) fn key_evicted(&self, state: BreakerState) {
        if let Some(open_keys) = &self.open_keys
            && state.refuses()
        {
            open_keys.decrement(1.0);
        }
    }

    /// Publishes a transition: log, metrics and broadcast. Runs under the breaker's lock, so
    /// that the state gauge and the subscribers see one breaker's transitions in order.
    pub(crate) fn publish(&self, change: &StateChange) {
        let key = change.key.as_deref().unwrap_or("");
        if change.to == BreakerState::Open {
            tracing::warn!(
                breaker = %self.name, key, from = %change.from, reason = ?change.reason, open_for = ?change.open_for,
                "circuit breaker opened"
            );
        } else {
            tracing::info!(
                breaker = %self.name, key, from = %change.from, to = %change.to, reason = ?change.reason,
                "circuit breaker changed state"
            );
        }
        self.transitions[change.to as usize].increment(1);
        self.state.set(f64::from(change.to as u8));
        if let Some(open_keys) = &self.open_keys {
            match (change.from.refuses(), change.to.refuses()) {
                (false, true) => open_keys.increment(1.0),
                (true, false) => open_keys.decrement(1.0),
                _ => {}
            }
        }
        // No subscriber is not an error.
        let _ = self.sender.send(change.clone());
    }

    /// Calls the callbacks with a published transition. Runs after the breaker's lock is
    /// released, so a callback may call back into the breaker; callbacks on different threads
    /// may therefore see two quick transitions in either order (the broadcast does not).
    pub(crate) fn notify(&self, change: StateChange) {
        let callbacks = self.callbacks.read().unwrap_or_else(PoisonError::into_inner).clone();
        for callback in callbacks {
            callback(change.clone());
        }
    }
}
