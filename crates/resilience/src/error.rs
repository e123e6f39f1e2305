//! What the layers say when they refuse a call, and configuration errors.
//!
//! Services of this crate fail with [`BoxError`], as tower's own layers do, so that they
//! stack in any order. A refusal is one of the concrete types below inside it; an error
//! of the inner service passes through unchanged. [`Rejection::of`] looks inside:
//!
//! ```
//! use std::time::Duration;
//! use harvester_resilience::{BoxError, Rejection, RateLimited};
//!
//! let err: BoxError = Box::new(RateLimited { retry_in: Duration::from_millis(250), key: None });
//! match Rejection::of(&*err) {
//!     Some(Rejection::RateLimited(r)) => assert_eq!(r.retry_in, Duration::from_millis(250)),
//!     other => panic!("{other:?}"),
//! }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

/// The error type of every service in this crate.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The circuit breaker refused the call.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("circuit {state}{}: call refused{}", key.as_ref().map(|k| format!(" for {k}")).unwrap_or_default(), retry_in.map(|d| format!(", may close in {d:?}")).unwrap_or_default())]
pub struct CircuitOpen {
    /// `open`, `half-open` (all probes taken) or `forced open`.
    pub state: &'static str,
    /// When the breaker may let a call through again; `None` when forced open, or when
    /// half-open with every probe slot taken (no time can be promised then).
    pub retry_in: Option<Duration>,
    /// The key of a keyed breaker.
    pub key: Option<String>,
}

/// The rate limiter refused the call (reject mode, or the wait would exceed the maximum).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("rate limited{}: earliest retry in {retry_in:?}", key.as_ref().map(|k| format!(" for {k}")).unwrap_or_default())]
pub struct RateLimited {
    /// The earliest time from now a call may be allowed.
    pub retry_in: Duration,
    /// The key of a keyed limiter.
    pub key: Option<String>,
}

/// A shared (distributed) rate limiter could not decide, and its failure policy is to refuse:
/// its store did not answer in time or at all.
///
/// `reason` never holds credentials.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("rate limiter '{limiter}' unavailable{}: {reason}", key.as_ref().map(|k| format!(" for {k}")).unwrap_or_default())]
pub struct LimiterUnavailable {
    /// The limiter's name.
    pub limiter: String,
    /// The key of a keyed limiter.
    pub key: Option<String>,
    /// What failed, e.g. "no answer from redis://127.0.0.1:6379 within 200ms".
    pub reason: String,
}

/// The bulkhead had no free place within the wait allowed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("bulkhead '{partition}' full: {max_concurrent} calls running, waited {waited:?}")]
pub struct BulkheadFull {
    /// The partition's name.
    pub partition: String,
    /// Its limit.
    pub max_concurrent: usize,
    /// How long the call waited before giving up (zero when the queue was full).
    pub waited: Duration,
}

/// The call did not finish in time.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("timed out after {after:?}")]
pub struct TimedOut {
    /// The limit that ran out.
    pub after: Duration,
}

/// A retry was needed but the retry budget had no token: retries may not multiply load.
///
/// The last attempt's error is its [`source`](std::error::Error::source), so that an outer
/// layer can still tell a [`TimedOut`] or a [`RateLimited`] inside. Equality compares
/// `attempts` and `last_error` only (errors are not comparable).
///
/// ```
/// use std::error::Error;
/// use std::time::Duration;
/// use harvester_resilience::{BoxError, RetryBudgetExhausted, TimedOut};
///
/// let refused = RetryBudgetExhausted::new(2, Box::new(TimedOut { after: Duration::from_secs(5) }));
/// assert_eq!(refused.last_error, "timed out after 5s");
/// assert!(refused.source().and_then(|e| e.downcast_ref::<TimedOut>()).is_some());
/// ```
#[derive(Debug, Clone)]
pub struct RetryBudgetExhausted {
    /// Attempts made.
    pub attempts: u32,
    /// The last attempt's error, as text.
    pub last_error: String,
    /// The last attempt's error itself (shared, so that the refusal stays `Clone`); `None`
    /// only when built by hand without one.
    pub source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl RetryBudgetExhausted {
    /// A refusal after `attempts` attempts, the last of which failed with `last_error`.
    pub fn new(attempts: u32, last_error: BoxError) -> Self {
        RetryBudgetExhausted { attempts, last_error: last_error.to_string(), source: Some(Arc::from(last_error)) }
    }
}

impl fmt::Display for RetryBudgetExhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "retry budget exhausted after {} attempt(s); last error: {}", self.attempts, self.last_error)
    }
}

impl std::error::Error for RetryBudgetExhausted {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // The error inside the `Arc`, not the `Arc`: downcasting the source must find it.
        self.source.as_deref().map(|error| error as &(dyn std::error::Error + 'static))
    }
}

impl PartialEq for RetryBudgetExhausted {
    fn eq(&self, other: &Self) -> bool {
        self.attempts == other.attempts && self.last_error == other.last_error
    }
}

impl Eq for RetryBudgetExhausted {}

/// Which layer refused a call, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection<'a> {
    /// See [`CircuitOpen`].
    CircuitOpen(&'a CircuitOpen),
    /// See [`RateLimited`].
    RateLimited(&'a RateLimited),
    /// See [`BulkheadFull`].
    BulkheadFull(&'a BulkheadFull),
    /// See [`TimedOut`].
    TimedOut(&'a TimedOut),
    /// See [`RetryBudgetExhausted`].
    RetryBudgetExhausted(&'a RetryBudgetExhausted),
    /// See [`LimiterUnavailable`].
    LimiterUnavailable(&'a LimiterUnavailable),
}

impl<'a> Rejection<'a> {
    /// The rejection inside `error`, if one of this crate's layers refused the call.
    pub fn of(error: &'a (dyn std::error::Error + Send + Sync + 'static)) -> Option<Rejection<'a>> {
        if let Some(e) = error.downcast_ref::<CircuitOpen>() {
            Some(Rejection::CircuitOpen(e))
        } else if let Some(e) = error.downcast_ref::<RateLimited>() {
            Some(Rejection::RateLimited(e))
        } else if let Some(e) = error.downcast_ref::<BulkheadFull>() {
            Some(Rejection::BulkheadFull(e))
        } else if let Some(e) = error.downcast_ref::<TimedOut>() {
            Some(Rejection::TimedOut(e))
        } else if let Some(e) = error.downcast_ref::<LimiterUnavailable>() {
            Some(Rejection::LimiterUnavailable(e))
        } else {
            error.downcast_ref::<RetryBudgetExhausted>().map(Rejection::RetryBudgetExhausted)
        }
    }
}

pub use harvester_core::ConfigError;
