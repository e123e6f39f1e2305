//! What a breaker judges, over which window, and how long it stays open.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// The largest number of half-open probes: probe counts live in 12 bits of the state word.
pub(crate) const MAX_HALF_OPEN_CALLS: u32 = (1 << 12) - 1;
/// The largest count-based window: large enough for any sensible sample, small enough that the
/// ring of outcomes (one byte a call) stays a few hundred KiB per breaker at most.
pub(crate) const MAX_WINDOW_CALLS: u32 = 1 << 20;
/// The largest number of buckets of a time-based window; judging reads every bucket.
pub(crate) const MAX_WINDOW_BUCKETS: u32 = 1024;

/// Configuration of a circuit breaker (and of every breaker of a keyed one).
///
/// Defaults follow resilience4j (50 % failures over the last 100 calls, at least 100 calls, open
/// 60 s, 10 half-open probes, a call slower than 60 s is slow), except that the open wait grows:
/// a target that fails its probes again is likely down for longer, and jitter keeps the breakers
/// of many hosts, opened together by one proxy outage, from probing together.
///
/// ```
/// use std::time::Duration;
/// use harvester_resilience::breaker::{BreakerConfig, SlidingWindow};
///
/// let config = BreakerConfig {
///     failure_rate_threshold: 25.0,
///     window: SlidingWindow::Time { span: Duration::from_secs(30), buckets: 10 },
///     minimum_calls: 20,
///     ..BreakerConfig::default()
/// };
/// assert!(config.validate().is_ok());
///
/// let refused = BreakerConfig { failure_rate_threshold: 0.0, ..BreakerConfig::default() };
/// assert_eq!(refused.validate().unwrap_err().field, "breaker.failure_rate_threshold");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// Name in metrics (`breaker` label) and tracing events.
    pub name: String,
    /// Percentage of failed calls in the window at which the breaker opens, in (0, 100].
    pub failure_rate_threshold: f64,
    /// Percentage of slow calls in the window at which the breaker opens, in (0, 100].
    pub slow_call_rate_threshold: f64,
    /// A call that takes at least this long is slow (whether it succeeded or not).
    #[serde(with = "humantime_serde")]
    pub slow_call_duration: Duration,
    /// Whether calls are timed to tell slow ones. Timing takes two clock reads a call (about
    /// 24 ns each on a 2-vCPU VM, more than the rest of the breaker's work); `false` turns
    /// slow-call detection off when only failures matter.
    pub slow_call_detection: bool,
    /// Which recent calls are judged.
    pub window: SlidingWindow,
    /// No verdict before this many calls are in the window. A count-based window never holds
    /// more than its size, so the effective minimum is at most the window size.
    pub minimum_calls: u32,
    /// How long the breaker stays open the first time (and every time, with
    /// [`OpenWaitGrowth::Fixed`]).
    #[serde(with = "humantime_serde")]
    pub open_wait: Duration,
    /// The cap of a growing open wait.
    #[serde(with = "humantime_serde")]
    pub max_open_wait: Duration,
    /// Whether the wait grows each time the breaker reopens from half-open.
    pub open_wait_growth: OpenWaitGrowth,
    /// Calls let through while half-open. The rest are refused while they run; all of them
    /// succeeding closes the breaker, one failing reopens it. At most 4095.
    pub half_open_permitted_calls: u32,
    /// Keyed mode: the most keys (hosts, proxies) tracked at once. A new key beyond it evicts
    /// idle keys first, else the least recently used ones.
    pub max_keys: usize,
    /// Keyed mode: a key not called for this long is forgotten (checked when new keys arrive,
    /// no background task). A forgotten key starts closed.
    #[serde(with = "humantime_serde")]
    pub key_idle_timeout: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            name: "breaker".to_owned(),
            failure_rate_threshold: 50.0,
            slow_call_rate_threshold: 100.0,
            slow_call_duration: Duration::from_secs(60),
            slow_call_detection: true,
            window: SlidingWindow::Count { calls: 100 },
            minimum_calls: 100,
            open_wait: Duration::from_secs(60),
            // Envoy's cap on outlier ejection.
            max_open_wait: Duration::from_secs(300),
            open_wait_growth: OpenWaitGrowth::Exponential { multiplier: 2.0, jitter: Jitter::Full },
            half_open_permitted_calls: 10,
            max_keys: 10_000,
            key_idle_timeout: Duration::from_secs(600),
        }
    }
}

impl BreakerConfig {
    /// Refuses out-of-range values, naming the field (`breaker.open_wait`, …).
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_percent("breaker.failure_rate_threshold", self.failure_rate_threshold)?;
        check_percent("breaker.slow_call_rate_threshold", self.slow_call_rate_threshold)?;
        if self.slow_call_duration.is_zero() {
            return Err(ConfigError::new("breaker.slow_call_duration", "must be greater than zero"));
        }
        match self.window {
            SlidingWindow::Count { calls } => {
                if calls == 0 || calls > MAX_WINDOW_CALLS {
                    return Err(ConfigError::new(
                        "breaker.window.calls",
                        format!("must be in 1..={MAX_WINDOW_CALLS}, got {calls}"),
                    ));
                }
            }
            SlidingWindow::Time { span, buckets } => {
                if buckets == 0 || buckets > MAX_WINDOW_BUCKETS {
                    return Err(ConfigError::new(
                        "breaker.window.buckets",
                        format!("must be in 1..={MAX_WINDOW_BUCKETS}, got {buckets}"),
                    ));
                }
                if span < Duration::from_millis(1) * buckets {
                    return Err(ConfigError::new(
                        "breaker.window.span",
                        format!("must be at least 1 ms per bucket ({buckets} buckets), got {span:?}"),
                    ));
                }
            }
        }
        if self.minimum_calls == 0 {
            return Err(ConfigError::new("breaker.minimum_calls", "must be at least 1"));
        }
        if self.open_wait.is_zero() {
            return Err(ConfigError::new("breaker.open_wait", "must be greater than zero"));
        }
        if self.max_open_wait < self.open_wait {
            return Err(ConfigError::new(
                "breaker.max_open_wait",
                format!("must be at least open_wait ({:?}), got {:?}", self.open_wait, self.max_open_wait),
            ));
        }
        if let OpenWaitGrowth::Exponential { multiplier, .. } = self.open_wait_growth
            && !(multiplier.is_finite() && multiplier >= 1.0)
        {
            return Err(ConfigError::new(
                "breaker.open_wait_growth.multiplier",
                format!("must be a finite number of at least 1, got {multiplier}"),
            ));
        }
        if self.half_open_permitted_calls == 0 || self.half_open_permitted_calls > MAX_HALF_OPEN_CALLS {
            return Err(ConfigError::new(
                "breaker.half_open_permitted_calls",
                format!("must be in 1..={MAX_HALF_OPEN_CALLS}, got {}", self.half_open_permitted_calls),
            ));
        }
        if self.max_keys == 0 {
            return Err(ConfigError::new("breaker.max_keys", "must be at least 1"));
        }
        if self.key_idle_timeout.is_zero() {
            return Err(ConfigError::new("breaker.key_idle_timeout", "must be greater than zero"));
        }
        Ok(())
    }
}

fn check_percent(field: &'static str, value: f64) -> Result<(), ConfigError> {
    // Written so that NaN is refused too.
    if value > 0.0 && value <= 100.0 {
        Ok(())
    } else {
        Err(ConfigError::new(field, format!("must be a percentage in (0, 100], got {value}")))
    }
}

/// Which recent calls the failure and slow-call rates are computed over.
///
/// In a configuration file: `{ kind = "count", calls = 100 }` or
/// `{ kind = "time", span = "30s", buckets = 10 }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SlidingWindow {
    /// The last `calls` calls.
    Count {
        /// How many calls, 1..=1 048 576.
        calls: u32,
    },
    /// The calls of the last `span`, kept in `buckets` slices of `span / buckets`: a whole
    /// bucket is forgotten at once, so the window covers between `span - span / buckets` and
    /// `span`.
    Time {
        /// How far back.
        #[serde(with = "humantime_serde")]
        span: Duration,
        /// Into how many slices, 1..=1024, each at least 1 ms.
        buckets: u32,
    },
}

/// How the open wait changes when a breaker reopens after failed probes.
///
/// The first opening always waits exactly `open_wait`; the `n`th reopening in a row waits up to
/// `min(max_open_wait, open_wait × multiplierⁿ)`. Closing resets `n`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum OpenWaitGrowth {
    /// Always `open_wait`.
    Fixed,
    /// Multiplied at each reopening, capped at `max_open_wait`, with jitter.
    Exponential {
        /// Growth factor, at least 1.
        multiplier: f64,
        /// How the wait is spread.
        jitter: Jitter,
    },
}

/// How a grown open wait `w` is spread. Never shorter than `open_wait`: a breaker reopening
/// after a near-zero wait would hammer the target it protects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Jitter {
    /// Exactly `w`.
    None,
    /// Uniform in `[open_wait, w]`: the widest spread.
    Full,
    /// `w / 2` plus uniform in `[0, w / 2]`, at least `open_wait`: keeps at least half the
    /// growth.
    Equal,
}

impl OpenWaitGrowth {
    /// The wait before half-open after `reopened` reopenings in a row (0 for the first
    /// opening), drawing the jitter.
    ///
    /// ```
    /// use std::time::Duration;
    /// use harvester_resilience::breaker::{Jitter, OpenWaitGrowth};
    ///
    /// let growth = OpenWaitGrowth::Exponential { multiplier: 2.0, jitter: Jitter::None };
    /// let (base, max) = (Duration::from_secs(10), Duration::from_secs(60));
    /// assert_eq!(growth.wait(base, max, 0), Duration::from_secs(10));
    /// assert_eq!(growth.wait(base, max, 2), Duration::from_secs(40));
    /// assert_eq!(growth.wait(base, max, 3), Duration::from_secs(60));
    /// ```
    pub fn wait(&self, open_wait: Duration, max_open_wait: Duration, reopened: u32) -> Duration {
        let OpenWaitGrowth::Exponential { multiplier, jitter } = *self else {
            return open_wait;
        };
        let max = max_open_wait.max(open_wait);
        let grown = open_wait.as_secs_f64() * multiplier.powi(reopened.min(i32::MAX as u32) as i32);
        // Only a validated multiplier (finite, at least 1) grows the wait; any other value
        // (negative, zero, NaN: this function is public) falls back to `open_wait`. An overflow
        // to infinity, or past what a `Duration` holds, is capped.
        let grown = if grown.is_nan() || grown <= 0.0 {
            open_wait
        } else if grown < max.as_secs_f64() {
            Duration::try_from_secs_f64(grown).unwrap_or(max)
        } else {
            max
        };
        let grown = grown.clamp(open_wait, max);
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        match jitter {
            Jitter::None => grown,
            Jitter::Full => Duration::from_nanos(rand::random_range(nanos(open_wait)..=nanos(grown))),
            Jitter::Equal => {
                let half = nanos(grown) / 2;
                let drawn = Duration::from_nanos(half + rand::random_range(0..=half));
                drawn.max(open_wait)
            }
        }
    }
}

/// A validated configuration and the values derived from it once.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) config: BreakerConfig,
    /// `minimum_calls`, capped at the size of a count window.
    pub(crate) min_calls: u64,
}

impl Settings {
    pub(crate) fn new(config: BreakerConfig) -> Result<Settings, ConfigError> {
        config.validate()?;
        let min_calls = match config.window {
            SlidingWindow::Count { calls } => config.minimum_calls.min(calls),
            SlidingWindow::Time { .. } => config.minimum_calls,
        };
        Ok(Settings { min_calls: u64::from(min_calls), config })
    }
}
