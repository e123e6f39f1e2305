//! Tail control: per-host attempt timeouts learned from latency, and hedged attempts.
//!
//! On a dirty fleet the slowest requests decide how long a job takes: a hanging proxy
//! holds its request for the whole timeout. Two things cut that tail, both driven by the
//! latency quantiles the pool keeps per host
//! ([`ProxyPool::latency_quantile`](crate::ProxyPool::latency_quantile) for the timeout;
//! [`ProxyPool::tail_latency`](crate::ProxyPool::tail_latency), at most a multiple of the
//! host's median so that a few slow proxies cannot make themselves the norm, for hedges):
//!
//! - an [`AdaptiveTimeout`] gives up on an attempt after a multiple of the host's high
//!   quantile, never later than the client's request timeout;
//! - [`Hedging`] sends a second attempt through another proxy when the first is still
//!   unanswered after the host's high quantile; the first good answer wins, the other
//!   attempt is dropped and reported [`Outcome::slow`](crate::Outcome::slow). A budget caps
//!   the extra requests (tower's hedge middleware has the same shape; this one picks the
//!   second proxy and reports the loser to the pool).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::Longest;
use crate::error::ConfigError;

/// The largest [`AdaptiveTimeout::multiplier`]: beyond it the request timeout always wins.
const MAX_MULTIPLIER: f64 = 1_000.0;
/// The most hedges one request may send (each is a request through another proxy).
const MAX_HEDGES: u32 = 8;

/// Per-host attempt timeouts: `multiplier` × the host's `quantile` latency, at least
/// `min`, and never more than the client's request timeout. Until the host has enough
/// samples the request timeout applies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdaptiveTimeout {
    /// The latency quantile the timeout follows. Default 0.99.
    pub quantile: f64,
    /// How many times that quantile an attempt may take, 1 to 1 000. Default 4: a proxy
    /// four times slower than 99 % of the host's answers is not worth waiting for.
    pub multiplier: f64,
    /// The shortest timeout, whatever the host's latency (at most a day). Default 1 s: a fast host must not
    /// turn a scheduling hiccup of a busy machine into a timeout.
    #[serde(with = "humantime_serde")]
    pub min: Duration,
}

impl Default for AdaptiveTimeout {
    fn default() -> Self {
        AdaptiveTimeout { quantile: 0.99, multiplier: 4.0, min: Duration::from_secs(1) }
    }
}

impl AdaptiveTimeout {
    /// Refuses out-of-range values, naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.quantile > 0.0 && self.quantile <= 1.0) {
            return Err(ConfigError::new(
                "client.adaptive_timeout.quantile",
                format!("{} must be in (0, 1]", self.quantile),
            ));
        }
        if !(1.0..=MAX_MULTIPLIER).contains(&self.multiplier) {
            return Err(ConfigError::new(
                "client.adaptive_timeout.multiplier",
                format!("{} must be in [1, {MAX_MULTIPLIER}]", self.multiplier),
            ));
        }
        Longest::DAY.check("client.adaptive_timeout.min", self.min, false)?;
        Ok(())
    }

    /// The timeout for an attempt at a host whose `quantile` latency is `latency`
    /// (`None`: not known yet), within `ceiling`.
    pub fn timeout(&self, latency: Option<Duration>, ceiling: Duration) -> Duration {
        match latency {
            // In floating point: a huge latency times the multiplier saturates at the
            // ceiling instead of overflowing a `Duration`.
            Some(latency) => Duration::try_from_secs_f64(latency.as_secs_f64() * self.multiplier)
                .unwrap_or(ceiling)
                .max(self.min)
                .min(ceiling),
            None => ceiling,
        }
    }
}

/// Hedged attempts: when an attempt is still unanswered after the host's `quantile`
/// latency (at least `min_delay`), another goes out through another proxy (and another
/// after as long again, up to `max_hedges`), and the first good answer (a success or the
/// target's own error, not a ban) wins. Only idempotent requests whose body can be copied
/// (GET, HEAD, OPTIONS) are hedged.
///
/// Extra requests are capped: each request earns `max_extra` of a hedge (default 0.1:
/// at most one extra request in ten), up to `burst` saved, and each hedge spends one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Hedging {
    /// The latency quantile after which an attempt is hedged. Default 0.95, so that one
    /// attempt in twenty at most is hedged on a healthy fleet.
    pub quantile: f64,
    /// Never hedge sooner than this (at most a day). Default 10 ms.
    #[serde(with = "humantime_serde")]
    pub min_delay: Duration,
    /// Extra requests allowed, as a share of requests. Default 0.1.
    pub max_extra: f64,
    /// Hedges that may go out before requests have earned them, and the most that can be
    /// saved up. Default 10: a job's first moments, when the pool knows least, are when
    /// hedges help most.
    pub burst: u32,
    /// Hedges per request at most (0 to 8): another goes out each time every attempt out has been
    /// slow again. Default 2: when a job starts, the proxy a hedge goes to may be as
    /// unknown (and as hanging) as the first.
    pub max_hedges: u32,
}

impl Default for Hedging {
    fn default() -> Self {
        Hedging { quantile: 0.95, min_delay: Duration::from_millis(10), max_extra: 0.1, burst: 10, max_hedges: 2 }
    }
}

impl Hedging {
    /// Refuses out-of-range values, naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.quantile > 0.0 && self.quantile <= 1.0) {
            return Err(ConfigError::new("client.hedging.quantile", format!("{} must be in (0, 1]", self.quantile)));
        }
        if !(self.max_extra.is_finite() && (0.0..=1.0).contains(&self.max_extra)) {
            return Err(ConfigError::new("client.hedging.max_extra", format!("{} must be in [0, 1]", self.max_extra)));
        }
        Longest::DAY.check("client.hedging.min_delay", self.min_delay, true)?;
        if self.max_hedges > MAX_HEDGES {
            return Err(ConfigError::new(
                "client.hedging.max_hedges",
                format!("{} must be at most {MAX_HEDGES}", self.max_hedges),
            ));
        }
        Ok(())
    }
}

/// Fixed-point units per hedge in the budget.
const UNIT: u64 = 1_000;

/// The hedges earned and not yet spent, in thousandths, shared by every clone of a client.
#[derive(Debug)]
pub(crate) struct HedgeBudget {
    tokens: AtomicU64,
    earn: u64,
    cap: u64,
}

impl HedgeBudget {
    pub(crate) fn new(hedging: &Hedging) -> HedgeBudget {
        let cap = u64::from(hedging.burst).max(1) * UNIT;
        HedgeBudget { tokens: AtomicU64::new(cap), earn: (hedging.max_extra * UNIT as f64) as u64, cap }
    }

    /// A request earns its share of a hedge.
    pub(crate) fn earn(&self) {
        let _ = self.tokens.fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| Some((t + self.earn).min(self.cap)));
    }

    /// Spends one hedge; false when none is left.
    pub(crate) fn try_spend(&self) -> bool {
        self.tokens.fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| t.checked_sub(UNIT)).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_allows_a_burst_then_one_hedge_per_ten_requests() {
        let budget = HedgeBudget::new(&Hedging { burst: 2, ..Hedging::default() });
        assert!(budget.try_spend() && budget.try_spend());
        assert!(!budget.try_spend(), "the burst is spent");
        for _ in 0..9 {
            budget.earn();
        }
        assert!(!budget.try_spend(), "nine requests earn 0.9 of a hedge");
        budget.earn();
        assert!(budget.try_spend(), "the tenth earns the rest");
        for _ in 0..1_000 {
            budget.earn();
        }
        assert!(budget.try_spend() && budget.try_spend() && !budget.try_spend(), "savings stop at the burst");
    }

    #[test]
    fn the_adaptive_timeout_follows_the_host_within_its_bounds() {
        let a = AdaptiveTimeout::default();
        let ceiling = Duration::from_secs(10);
        assert_eq!(a.timeout(None, ceiling), ceiling, "unknown host: the request timeout");
        assert_eq!(a.timeout(Some(Duration::from_millis(5)), ceiling), Duration::from_secs(1), "at least the minimum");
        assert_eq!(a.timeout(Some(Duration::from_millis(800)), ceiling), Duration::from_millis(3200));
        assert_eq!(a.timeout(Some(Duration::from_secs(5)), ceiling), ceiling, "never beyond the request timeout");
    }

    #[test]
    fn bad_settings_name_their_field() {
        let bad = AdaptiveTimeout { multiplier: 0.5, ..AdaptiveTimeout::default() };
        assert_eq!(
            bad.validate().map_err(|e| e.field.into_owned()),
            Err("client.adaptive_timeout.multiplier".to_owned())
        );
        let bad = Hedging { quantile: 1.5, ..Hedging::default() };
        assert_eq!(bad.validate().map_err(|e| e.field.into_owned()), Err("client.hedging.quantile".to_owned()));
    }
}
