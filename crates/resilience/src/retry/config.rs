//! Retry settings, with defaults and validation.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::backoff::Backoff;
use crate::error::ConfigError;

/// How a retry layer retries. Every field has a default; [`validate`](RetryConfig::validate)
/// refuses a bad value up front, naming the field (`RetryLayer::new` calls it).
///
/// ```
/// use std::time::Duration;
/// use harvester_resilience::retry::{BackoffKind, RetryConfig};
///
/// let config = RetryConfig {
///     max_attempts: 5,
///     backoff: BackoffKind::Decorrelated,
///     attempt_timeout: Some(Duration::from_secs(10)),
///     ..RetryConfig::default()
/// };
/// assert!(config.validate().is_ok());
/// assert_eq!(RetryConfig { max_attempts: 0, ..config }.validate().unwrap_err().field, "retry.max_attempts");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Names this layer in metrics labels (`retry = "<name>"`) and tracing events.
    /// Default `default`.
    pub name: String,
    /// Attempts in all, the first included; at least 1 (1 never retries). Default 3, as
    /// resilience4j: with a fresh proxy for each attempt, a third failure says more about
    /// the target than about the proxies.
    pub max_attempts: u32,
    /// The backoff's shape. Default exponential. A custom function is set in code with
    /// `RetryLayer::backoff`.
    pub backoff: BackoffKind,
    /// The first retry's delay (before jitter). At most one day. Default 100 ms.
    #[serde(with = "humantime_serde")]
    pub base_delay: Duration,
    /// No backoff delay exceeds this. At most one day. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// Randomise delays so that clients failing together do not retry together. Default on.
    pub jitter: bool,
    /// A limit on each attempt; an attempt exceeding it fails with `TimedOut` and counts as
    /// a failed attempt. At most one day. Default none (put a `Timeout` around the whole
    /// retry as well).
    #[serde(with = "humantime_serde")]
    pub attempt_timeout: Option<Duration>,
    /// The longest wait a `Retry-After` header or a rate limiter's `retry_in` may impose;
    /// longer requests are cut to it. Zero ignores them. At most one day. Default 30 s, the default call
    /// timeout: a longer wait holds a worker idle longer than a call may take.
    #[serde(with = "humantime_serde")]
    pub max_retry_after: Duration,
    /// The retry budget shared by every clone of the layer's services.
    pub budget: BudgetConfig,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            name: "default".to_owned(),
            max_attempts: 3,
            backoff: BackoffKind::Exponential,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            jitter: true,
            attempt_timeout: None,
            max_retry_after: Duration::from_secs(30),
            budget: BudgetConfig::default(),
        }
    }
}

impl RetryConfig {
    /// The longest `base_delay`, `max_delay`, `attempt_timeout` and `max_retry_after` may be:
    /// one day. A longer wait is a mistake (or a hostile `Retry-After`), not a retry.
    pub const MAX_DURATION: Duration = Duration::from_secs(86_400);

    /// Refuses values out of range, naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_attempts == 0 {
            return Err(ConfigError::new(
                "retry.max_attempts",
                "must be at least 1 (1 makes a single attempt and never retries)",
            ));
        }
        if self.backoff != BackoffKind::Constant && self.base_delay.is_zero() {
            return Err(ConfigError::new(
                "retry.base_delay",
                "must be greater than zero for exponential and decorrelated backoff (use constant for immediate retries)",
            ));
        }
        if self.backoff != BackoffKind::Constant && self.base_delay > self.max_delay {
            return Err(ConfigError::new(
                "retry.max_delay",
                format!("{:?} is below retry.base_delay {:?}", self.max_delay, self.base_delay),
            ));
        }
        if self.attempt_timeout.is_some_and(|t| t.is_zero()) {
            return Err(ConfigError::new("retry.attempt_timeout", "must be greater than zero (or left out)"));
        }
        for (field, value) in [
            ("retry.base_delay", Some(self.base_delay)),
            ("retry.max_delay", Some(self.max_delay)),
            ("retry.attempt_timeout", self.attempt_timeout),
            ("retry.max_retry_after", Some(self.max_retry_after)),
        ] {
            if let Some(value) = value.filter(|&value| value > Self::MAX_DURATION) {
                return Err(ConfigError::new(field, format!("{value:?} exceeds {:?} (one day)", Self::MAX_DURATION)));
            }
        }
        self.budget.validate()
    }

    /// The backoff these settings describe.
    pub fn to_backoff(&self) -> Backoff {
        let backoff = match self.backoff {
            BackoffKind::Exponential => Backoff::exponential(self.base_delay, self.max_delay),
            BackoffKind::Decorrelated => Backoff::decorrelated(self.base_delay, self.max_delay),
            BackoffKind::Constant => Backoff::constant(self.base_delay),
        };
        if self.jitter { backoff } else { backoff.without_jitter() }
    }
}

/// The backoff shapes a configuration file can name; see [`Backoff`] for each one's range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackoffKind {
    /// `base · 2^n` capped at `max_delay`, full jitter.
    #[default]
    Exponential,
    /// Between `base` and three times the previous delay, capped at `max_delay`.
    Decorrelated,
    /// `base_delay` every time (`max_delay` unused).
    Constant,
}

/// A retry budget (Finagle's `RetryBudget`, tower's `TpsBudget`): retries may add at most
/// `retry_percent` of the calls, plus `min_per_sec` retries a second, over the last `ttl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetConfig {
    /// Turn the budget on or off. Default on: without it, a failing upstream receives
    /// `max_attempts` times the load exactly when it can least take it.
    pub enabled: bool,
    /// Retries allowed per call, as a fraction: 0.2 allows one retry for every five calls.
    /// 0, or in `[0.001, 1000]`; resolution 0.001 (finer digits are dropped, never rounded
    /// up). Default 0.2 (Finagle, tower).
    pub retry_percent: f64,
    /// Retries allowed every second whatever the traffic, so that a quiet client can still
    /// retry. At most 1 000 000, and `min_per_sec × ttl` (the reserve) below 2 147 483
    /// retries: 35 791 a second over 60 s. Default 10 (Finagle, tower).
    pub min_per_sec: u32,
    /// How long a call's deposit and a retry's withdrawal count. Between 1 s and 60 s.
    /// Default 10 s.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig { enabled: true, retry_percent: 0.2, min_per_sec: 10, ttl: Duration::from_secs(10) }
    }
}

impl BudgetConfig {
    /// The most `min_per_sec` may be.
    pub const MAX_MIN_PER_SEC: u32 = 1_000_000;

    /// Refuses values out of range, naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.retry_percent.is_finite() && (0.0..=1000.0).contains(&self.retry_percent)) {
            return Err(ConfigError::new(
                "retry.budget.retry_percent",
                format!("{} must be in [0, 1000] (0.2 allows one retry per five calls)", self.retry_percent),
            ));
        }
        if self.retry_percent > 0.0 && self.retry_percent < 0.001 {
            return Err(ConfigError::new(
                "retry.budget.retry_percent",
                format!("{} is below the resolution 0.001 (use 0 for no share of calls)", self.retry_percent),
            ));
        }
        if self.min_per_sec > Self::MAX_MIN_PER_SEC {
            return Err(ConfigError::new(
                "retry.budget.min_per_sec",
                format!("{} exceeds {}", self.min_per_sec, Self::MAX_MIN_PER_SEC),
            ));
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&self.ttl) {
            return Err(ConfigError::new("retry.budget.ttl", format!("{:?} must be between 1 s and 60 s", self.ttl)));
        }
        // The reserve, in thousandths of a token, must fit a bucket's signed 32-bit balance:
        // spending all of it within one bucket must still be recorded.
        let reserve_units = f64::from(self.min_per_sec) * self.ttl.as_secs_f64() * 1000.0;
        if reserve_units >= f64::from(i32::MAX) {
            return Err(ConfigError::new(
                "retry.budget.min_per_sec",
                format!(
                    "{} over a ttl of {:?} is a reserve of {} retries, above the {} a budget can hold (lower min_per_sec or ttl)",
                    self.min_per_sec,
                    self.ttl,
                    reserve_units / 1000.0,
                    i32::MAX / 1000
                ),
            ));
        }
        Ok(())
    }
}
