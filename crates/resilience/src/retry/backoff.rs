//! How long to wait before each retry.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, RngExt};

/// The wait before a retry, as a function of the attempt that failed.
///
/// Attempts are numbered from 1: `delay(1, ..)` is the wait before the first retry. Every
/// computed delay is at most `max`, and jitter is on unless [`Backoff::without_jitter`]
/// turns it off: clients that failed together then do not retry together (AWS,
/// "Exponential Backoff And Jitter"; tower jitters by default too).
///
/// | constructor | with jitter (default) | without jitter |
/// |---|---|---|
/// | [`exponential`](Backoff::exponential) | uniform in `[0, min(max, base·2^(n-1))]` ("full jitter") | `min(max, base·2^(n-1))` |
/// | [`decorrelated`](Backoff::decorrelated) | uniform in `[base, min(max, 3·previous)]` ("decorrelated jitter") | `min(max, 3·previous)` |
/// | [`constant`](Backoff::constant) | uniform in `[delay/2, delay]` | `delay` |
/// | [`custom`](Backoff::custom) | `f(n)` as returned | `f(n)` |
///
/// `previous` is the delay the backoff chose for the retry before, `base` before the first.
///
/// ```
/// use std::time::Duration;
/// use harvester_resilience::retry::Backoff;
///
/// let backoff = Backoff::exponential(Duration::from_millis(100), Duration::from_secs(5)).without_jitter();
/// assert_eq!(backoff.delay(1, Duration::ZERO), Duration::from_millis(100));
/// assert_eq!(backoff.delay(4, Duration::ZERO), Duration::from_millis(800));
/// assert_eq!(backoff.delay(30, Duration::ZERO), Duration::from_secs(5));
///
/// let linear = Backoff::custom(|attempt| Duration::from_millis(250) * attempt);
/// assert_eq!(linear.delay(3, Duration::ZERO), Duration::from_millis(750));
/// ```
#[derive(Clone)]
pub struct Backoff {
    shape: Shape,
    base: Duration,
    max: Duration,
    jitter: bool,
}

#[derive(Clone)]
enum Shape {
    Exponential,
    Decorrelated,
    Constant,
    Custom(Arc<dyn Fn(u32) -> Duration + Send + Sync>),
}

impl Backoff {
    /// `base · 2^(attempt-1)`, capped at `max`, with full jitter.
    pub fn exponential(base: Duration, max: Duration) -> Self {
        Backoff { shape: Shape::Exponential, base, max, jitter: true }
    }

    /// AWS decorrelated jitter: a uniform time between `base` and three times the previous
    /// delay, capped at `max`. Grows about as fast as exponential backoff while keeping
    /// clients apart better.
    pub fn decorrelated(base: Duration, max: Duration) -> Self {
        Backoff { shape: Shape::Decorrelated, base, max, jitter: true }
    }

    /// The same `delay` before every retry (jittered down to half of it by default).
    pub fn constant(delay: Duration) -> Self {
        Backoff { shape: Shape::Constant, base: delay, max: delay, jitter: true }
    }

    /// Your own function of the attempt that failed (1 for the first retry). Its value is
    /// used as is: neither capped nor jittered.
    pub fn custom(delay: impl Fn(u32) -> Duration + Send + Sync + 'static) -> Self {
        Backoff { shape: Shape::Custom(Arc::new(delay)), base: Duration::ZERO, max: Duration::MAX, jitter: false }
    }

    /// The same backoff with jitter turned off: every delay is the upper bound of its range.
    pub fn without_jitter(mut self) -> Self {
        self.jitter = false;
        self
    }

    /// The wait before retrying after `attempt` failed (1 for the first), given the
    /// `previous` delay this backoff chose (`Duration::ZERO` before the first retry).
    pub fn delay(&self, attempt: u32, previous: Duration) -> Duration {
        self.delay_with(attempt, previous, &mut rand::rng())
    }

    /// [`delay`](Backoff::delay) drawing its jitter from `rng`.
    pub fn delay_with<G: Rng + ?Sized>(&self, attempt: u32, previous: Duration, rng: &mut G) -> Duration {
        match &self.shape {
            Shape::Custom(delay) => delay(attempt),
            Shape::Exponential => {
                let factor = 1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX);
                let ceiling = self.base.saturating_mul(factor).min(self.max);
                if self.jitter { uniform(rng, Duration::ZERO, ceiling) } else { ceiling }
            }
            Shape::Decorrelated => {
                let previous = if previous.is_zero() { self.base } else { previous };
                let ceiling = previous.saturating_mul(3).min(self.max);
                if self.jitter { uniform(rng, self.base.min(ceiling), ceiling) } else { ceiling }
            }
            Shape::Constant => {
                if self.jitter {
                    uniform(rng, self.base / 2, self.base)
                } else {
                    self.base
                }
            }
        }
    }
}

/// A uniform duration in `[low, high]`, at nanosecond resolution (saturating at 584 years).
fn uniform<G: Rng + ?Sized>(rng: &mut G, low: Duration, high: Duration) -> Duration {
    let low = saturating_nanos(low);
    let high = saturating_nanos(high);
    if high <= low {
        return Duration::from_nanos(low);
    }
    Duration::from_nanos(rng.random_range(low..=high))
}

fn saturating_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl fmt::Debug for Backoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shape = match self.shape {
            Shape::Exponential => "exponential",
            Shape::Decorrelated => "decorrelated",
            Shape::Constant => "constant",
            Shape::Custom(_) => "custom",
        };
        f.debug_struct("Backoff")
            .field("shape", &shape)
            .field("base", &self.base)
            .field("max", &self.max)
            .field("jitter", &self.jitter)
            .finish()
    }
}
