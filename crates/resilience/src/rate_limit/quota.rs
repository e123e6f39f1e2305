//! How much traffic a limiter lets through: a rate and a burst.

use std::time::Duration;

use crate::error::ConfigError;

/// Longest replenish period accepted, so that arithmetic on nanoseconds cannot overflow.
const LONGEST_PERIOD: Duration = Duration::from_secs(365 * 24 * 3600);
/// Longest time a full burst may take to replenish (interval × burst), for the same reason.
const LONGEST_BURST_NANOS: u64 = 100 * 365 * 24 * 3600 * 1_000_000_000;

/// A rate (cells per period) and a burst (cells that may pass at once after a quiet spell).
///
/// A quota is a value: build it with a named constructor, adjust the burst, hand it to a
/// limiter. Out-of-range values are refused with a [`ConfigError`] naming the field.
///
/// The interval between cells is the period divided by the rate, rounded *up* to the
/// nanosecond: the limiter may be a hair slower than asked, never faster, so that over any
/// span `t` at most `rate × t + burst` calls pass.
///
/// ```
/// use std::time::Duration;
/// use harvester_resilience::rate_limit::Quota;
///
/// let quota = Quota::per_second(50)?.allow_burst(10)?;
/// assert_eq!(quota.replenish_interval(), Duration::from_millis(20));
/// assert_eq!(quota.burst(), 10);
///
/// let err = Quota::per_second(5)?.allow_burst(0).unwrap_err();
/// assert_eq!(err.field, "rate_limit.burst");
/// # Ok::<(), harvester_resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    /// Nanoseconds between two cells at the sustained rate (GCRA's emission interval `T`).
    interval_nanos: u64,
    burst: u32,
}

impl Quota {
    /// `rate` cells every `period`, with a burst of `rate`.
    pub fn new(rate: u32, period: Duration) -> Result<Quota, ConfigError> {
        if rate == 0 {
            return Err(ConfigError::new("rate_limit.rate", "must be at least 1 call per period"));
        }
        if period.is_zero() {
            return Err(ConfigError::new("rate_limit.per", "must be greater than zero"));
        }
        if period > LONGEST_PERIOD {
            return Err(ConfigError::new("rate_limit.per", "must be at most a year"));
        }
        let period_nanos = duration_nanos(period);
        if period_nanos < u64::from(rate) {
            // One cell per nanosecond is the finest the limiter keeps time in; more would be
            // rounded down to it, a different limit than the one asked for.
            return Err(ConfigError::new(
                "rate_limit.rate",
                format!("{rate} per {period:?} is more than one per nanosecond, the finest rate there is"),
            ));
        }
        let interval_nanos = period_nanos.div_ceil(u64::from(rate));
        Quota { interval_nanos, burst: 1 }.allow_burst(rate)
    }

    /// `rate` cells per second, with a burst of `rate`.
    pub fn per_second(rate: u32) -> Result<Quota, ConfigError> {
        Quota::new(rate, Duration::from_secs(1))
    }

    /// `rate` cells per minute, with a burst of `rate`.
    pub fn per_minute(rate: u32) -> Result<Quota, ConfigError> {
        Quota::new(rate, Duration::from_secs(60))
    }

    /// `rate` cells per hour, with a burst of `rate`.
    pub fn per_hour(rate: u32) -> Result<Quota, ConfigError> {
        Quota::new(rate, Duration::from_secs(3600))
    }

    /// One cell every `interval`, with a burst of 1.
    pub fn with_period(interval: Duration) -> Result<Quota, ConfigError> {
        Quota::new(1, interval)
    }

    /// The same rate with a burst of `burst` cells (at least 1).
    pub fn allow_burst(self, burst: u32) -> Result<Quota, ConfigError> {
        if burst == 0 {
            return Err(ConfigError::new("rate_limit.burst", "must be at least 1"));
        }
        match self.interval_nanos.checked_mul(u64::from(burst)) {
            Some(total) if total <= LONGEST_BURST_NANOS => Ok(Quota { burst, ..self }),
            _ => Err(ConfigError::new(
                "rate_limit.burst",
                format!(
                    "{burst} cells at one per {:?} take more than 100 years to replenish",
                    self.replenish_interval()
                ),
            )),
        }
    }

    /// Time between two cells at the sustained rate.
    pub fn replenish_interval(&self) -> Duration {
        Duration::from_nanos(self.interval_nanos)
    }

    /// Cells that may pass at once after a quiet spell.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// Quiet time after which the whole burst is available again.
    pub fn burst_replenished_in(&self) -> Duration {
        Duration::from_nanos(self.interval_nanos * u64::from(self.burst))
    }

    pub(crate) fn interval_nanos(&self) -> u64 {
        self.interval_nanos
    }

    /// `share` (in (0, 1]) of this quota: the interval stretched by `1 / share` (rounded
    /// up), the burst scaled down (at least 1). What one of several instances may take
    /// alone when they cannot coordinate.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn share(self, share: f64) -> Result<Quota, ConfigError> {
        if !(share > 0.0 && share <= 1.0) {
            return Err(ConfigError::new("failure_policy.share", "must be greater than 0 and at most 1"));
        }
        let interval = (self.interval_nanos as f64 / share).ceil();
        if !(interval.is_finite() && interval <= LONGEST_BURST_NANOS as f64) {
            return Err(ConfigError::new("failure_policy.share", "leaves less than one call per 100 years"));
        }
        let burst = ((f64::from(self.burst) * share).floor() as u32).max(1);
        Quota { interval_nanos: interval as u64, burst: 1 }.allow_burst(burst)
    }
}

/// A duration in nanoseconds, saturating at `u64::MAX` (about 584 years).
pub(crate) fn duration_nanos(d: Duration) -> u64 {
    d.as_secs().saturating_mul(1_000_000_000).saturating_add(u64::from(d.subsec_nanos()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_stretches_the_interval_and_shrinks_the_burst() {
        let quota = Quota::per_second(10).and_then(|q| q.share(0.25)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(quota.replenish_interval(), Duration::from_millis(400));
        assert_eq!(quota.burst(), 2);
        let tiny = Quota::per_second(2).and_then(|q| q.share(0.1)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(tiny.burst(), 1, "never below one cell");
        for share in [0.0, -1.0, 1.5, f64::NAN] {
            let err = Quota::per_second(2).and_then(|q| q.share(share)).expect_err("out of range");
            assert_eq!(err.field, "failure_policy.share");
        }
    }

    #[test]
    fn more_than_one_cell_per_nanosecond_is_refused_not_rounded() {
        let err = Quota::new(u32::MAX, Duration::from_nanos(1)).expect_err("finer than the clock");
        assert_eq!(err.field, "rate_limit.rate");
        let finest = Quota::new(1_000, Duration::from_micros(1)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(finest.replenish_interval(), Duration::from_nanos(1));
    }
}
