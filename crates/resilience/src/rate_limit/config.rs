//! Rate limits described in configuration files.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::gcra::RateLimiter;
use super::keyed::{DEFAULT_MAX_KEYS, Keyed, KeyedRateLimiter};
use super::quota::Quota;
use super::service::Limit;
use crate::error::{ConfigError, RateLimited};
use crate::key::{HostKey, TargetHost};

/// Longest wait accepted in wait mode.
const LONGEST_WAIT: Duration = Duration::from_secs(24 * 3600);

/// What happens to a call that finds no cell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Refused at once with [`RateLimited`].
    #[default]
    Reject,
    /// Waits for its cell up to `max_wait`; refused at once when it would wait longer.
    Wait,
}

/// What shares one rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyBy {
    /// One rate for every request.
    Global,
    /// One rate per target host ([`HostKey::of`]).
    #[default]
    Host,
}

/// A rate limit for HTTP requests, as read from a file.
///
/// In TOML:
///
/// ```toml
/// [rate_limit]
/// rate = 2          # calls per `per`
/// per = "1s"
/// burst = 5
/// mode = "wait"     # or "reject"
/// max_wait = "3s"
/// key = "host"      # or "global"
/// ```
///
/// ```
/// use std::time::Duration;
/// use harvester_resilience::rate_limit::{Mode, RateLimitConfig, RateLimitLayer};
///
/// let config = RateLimitConfig { rate: 2, burst: Some(5), mode: Mode::Wait, max_wait: Duration::from_secs(3), ..Default::default() };
/// let layer = RateLimitLayer::from_config(config)?;
/// assert_eq!(layer.max_wait(), Duration::from_secs(3));
///
/// let zero = RateLimitConfig { rate: 0, ..Default::default() };
/// assert_eq!(zero.validate().unwrap_err().field, "rate_limit.rate");
/// # Ok::<(), harvester_resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Label of the limiter's metrics and events. Default `rate_limit`.
    pub name: String,
    /// Calls per `per`, at least 1. Default 10.
    pub rate: u32,
    /// The period of `rate`. Default 1 s.
    #[serde(with = "humantime_serde")]
    pub per: Duration,
    /// Calls that may go at once after a quiet spell. Default: `rate`.
    pub burst: Option<u32>,
    /// Refuse at once, or wait up to `max_wait`. Default reject.
    pub mode: Mode,
    /// Longest wait in wait mode (greater than zero, at most a day). Default 5 s.
    #[serde(with = "humantime_serde")]
    pub max_wait: Duration,
    /// One rate for all, or per target host. Default per host.
    pub key: KeyBy,
    /// Keys tracked at most when keyed. Default 100 000.
    pub max_keys: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            name: "rate_limit".to_owned(),
            rate: 10,
            per: Duration::from_secs(1),
            burst: None,
            mode: Mode::Reject,
            max_wait: Duration::from_secs(5),
            key: KeyBy::Host,
            max_keys: DEFAULT_MAX_KEYS,
        }
    }
}

impl RateLimitConfig {
    /// Refuses out-of-range values, naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.quota()?;
        if self.mode == Mode::Wait && self.max_wait.is_zero() {
            return Err(ConfigError::new("rate_limit.max_wait", "must be greater than zero in wait mode"));
        }
        if self.max_wait > LONGEST_WAIT {
            return Err(ConfigError::new("rate_limit.max_wait", "must be at most a day"));
        }
        if self.max_keys == 0 {
            return Err(ConfigError::new("rate_limit.max_keys", "must be at least 1"));
        }
        Ok(())
    }

    /// The quota it describes.
    pub fn quota(&self) -> Result<Quota, ConfigError> {
        Quota::new(self.rate, self.per)?.allow_burst(self.burst.unwrap_or(self.rate))
    }

    /// The longest wait the mode allows: zero in reject mode.
    pub fn effective_max_wait(&self) -> Duration {
        match self.mode {
            Mode::Reject => Duration::ZERO,
            Mode::Wait => self.max_wait,
        }
    }
}

/// The limit a [`RateLimitConfig`] describes for HTTP requests: one for all, or one per
/// target host.
#[derive(Debug)]
pub enum HttpLimit {
    /// [`KeyBy::Global`].
    Global(RateLimiter),
    /// [`KeyBy::Host`].
    PerHost(Keyed<HostKey, TargetHost>),
}

impl HttpLimit {
    /// Builds the limit of a valid `config`.
    pub fn from_config(config: RateLimitConfig) -> Result<HttpLimit, ConfigError> {
        config.validate()?;
        let quota = config.quota()?;
        Ok(match config.key {
            KeyBy::Global => HttpLimit::Global(RateLimiter::new(quota)),
            KeyBy::Host => HttpLimit::PerHost(Keyed::new(
                KeyedRateLimiter::new(quota).with_max_keys(config.max_keys)?,
                TargetHost::or_empty(),
            )),
        })
    }
}

impl<B> Limit<http::Request<B>> for HttpLimit {
    #[inline]
    fn reserve(&self, req: &http::Request<B>, max_wait: Duration) -> Result<Duration, RateLimited> {
        match self {
            HttpLimit::Global(limiter) => Limit::<http::Request<B>>::reserve(limiter, req, max_wait),
            HttpLimit::PerHost(keyed) => keyed.reserve(req, max_wait),
        }
    }
}
