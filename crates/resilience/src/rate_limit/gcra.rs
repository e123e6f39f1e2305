//! The generic cell rate algorithm over one atomic, and the direct (unkeyed) limiter.
//!
//! GCRA keeps a single number per limiter, the *theoretical arrival time* (TAT): when the
//! next cell would be due if traffic had flowed at exactly the sustained rate. A cell
//! arriving at `now` conforms when `TAT - τ <= now`, where `τ = (burst - 1) × T` is the
//! tolerance and `T` the interval between cells; a conforming cell moves the TAT to
//! `max(TAT, now) + T`. Over any span `t` at most `t / T + burst` cells conform.
//!
//! The TAT is stored as nanoseconds since the clock's origin in one `AtomicU64`, and every
//! decision is one compare-and-swap: no lock, no allocation.
//!
//! *Reserving* generalises the check to wait mode: a cell that does not conform now but
//! would within `max_wait` is admitted at its earliest conforming time `TAT - τ`, and the
//! TAT moves exactly as if the cell had arrived then. Because the TAT moves at reservation
//! time, concurrent waiters are spaced `T` apart and the bound above holds for the times
//! at which reserved calls actually go.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::clock::{Clock, TokioClock};
use super::quota::{Quota, duration_nanos};

/// The algorithm's two constants, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gcra {
    /// Emission interval `T`.
    interval: u64,
    /// Tolerance `τ = (burst - 1) × T`.
    tolerance: u64,
}

impl Gcra {
    pub(crate) fn new(quota: Quota) -> Gcra {
        let interval = quota.interval_nanos();
        Gcra { interval, tolerance: interval * u64::from(quota.burst() - 1) }
    }

    /// The emission interval `T`.
    pub(crate) fn interval(&self) -> u64 {
        self.interval
    }

    /// Admits one cell at `now` if it conforms within `max_wait`: `Ok(wait)` with the time
    /// the caller must still wait (zero in the common case), or the refusal. All times in
    /// nanoseconds on the limiter's clock.
    #[inline]
    pub(crate) fn reserve(&self, tat: &AtomicU64, now: u64, max_wait: u64) -> Result<u64, NotUntil> {
        // Relaxed is enough: the decision depends on this one atomic only, and every
        // read-modify-write of a single atomic sees its modifications in one total order.
        let mut current = tat.load(Ordering::Relaxed);
        loop {
            let earliest = current.saturating_sub(self.tolerance);
            let wait = earliest.saturating_sub(now);
            if wait > max_wait {
                return Err(NotUntil { earliest, retry_in: Duration::from_nanos(wait) });
            }
            let next = current.max(now).saturating_add(self.interval);
            match tat.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Ok(wait),
                Err(actual) => current = actual,
            }
        }
    }

    /// [`reserve`](Self::reserve) of `cost` cells at once (at least 1, at most the burst):
    /// they conform when the last of them would, and move the TAT by `cost × T`. Kept apart
    /// from `reserve` so that the one-cell hot path stays as it is measured.
    pub(crate) fn reserve_n(&self, tat: &AtomicU64, now: u64, cost: u32, max_wait: u64) -> Result<u64, NotUntil> {
        let cost = u64::from(cost.max(1));
        let mut current = tat.load(Ordering::Relaxed);
        loop {
            let base = current.max(now);
            let earliest = base.saturating_add((cost - 1) * self.interval).saturating_sub(self.tolerance);
            let wait = earliest.saturating_sub(now);
            if wait > max_wait {
                return Err(NotUntil { earliest, retry_in: Duration::from_nanos(wait) });
            }
            let next = base.saturating_add(cost * self.interval);
            match tat.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Ok(wait),
                Err(actual) => current = actual,
            }
        }
    }
}

/// The stored TAT of a key is no longer needed: a state whose TAT is not after `now`
/// decides every later call exactly as a fresh state would.
#[inline]
pub(crate) fn is_stale(tat: u64, now: u64) -> bool {
    tat <= now
}

/// A refusal: how long until the same call could succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotUntil {
    earliest: u64,
    retry_in: Duration,
}

impl NotUntil {
    /// A refusal at `now` of a call that may succeed at `earliest` (clock readings).
    pub(crate) fn at(now: u64, earliest: u64) -> NotUntil {
        NotUntil { earliest, retry_in: Duration::from_nanos(earliest.saturating_sub(now)) }
    }

    /// How long after the refused call a call could be allowed (if nobody takes the cell
    /// first).
    pub fn retry_in(&self) -> Duration {
        self.retry_in
    }

    /// The clock reading (nanoseconds since the limiter's origin) at which a call could be
    /// allowed.
    pub fn earliest_nanos(&self) -> u64 {
        self.earliest
    }
}

impl std::fmt::Display for NotUntil {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rate limited: earliest retry in {:?}", self.retry_in)
    }
}

/// One GCRA limiter for everything that goes through it (no key).
///
/// Shared by reference (`Arc`) between tasks and threads; every method takes `&self`.
///
/// ```
/// use std::time::Duration;
/// use harvester_resilience::rate_limit::{Quota, RateLimiter};
///
/// let limiter = RateLimiter::new(Quota::per_second(2)?);
/// let start = limiter.epoch();
/// assert!(limiter.check_at(start).is_ok());
/// assert!(limiter.check_at(start).is_ok());
/// let refused = limiter.check_at(start).unwrap_err();
/// assert_eq!(refused.retry_in(), Duration::from_millis(500));
/// assert!(limiter.check_at(start + Duration::from_millis(500)).is_ok());
/// # Ok::<(), harvester_resilience::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct RateLimiter<C = TokioClock> {
    gcra: Gcra,
    quota: Quota,
    clock: C,
    tat: AtomicU64,
}

impl RateLimiter<TokioClock> {
    /// A limiter on tokio's clock, its origin now, a full burst available.
    pub fn new(quota: Quota) -> Self {
        RateLimiter::with_clock(quota, TokioClock::new())
    }

    /// The instant its clock counts from.
    pub fn epoch(&self) -> Instant {
        self.clock.origin()
    }

    /// [`check`](Self::check) at an explicit instant.
    #[inline]
    pub fn check_at(&self, now: Instant) -> Result<(), NotUntil> {
        self.check_at_nanos(self.clock.nanos_at(now))
    }

    /// [`reserve`](Self::reserve) at an explicit instant.
    #[inline]
    pub fn reserve_at(&self, now: Instant, max_wait: Duration) -> Result<Duration, NotUntil> {
        self.reserve_at_nanos(self.clock.nanos_at(now), max_wait)
    }
}

impl<C: Clock> RateLimiter<C> {
    /// A limiter reading `clock`, a full burst available.
    pub fn with_clock(quota: Quota, clock: C) -> Self {
        RateLimiter { gcra: Gcra::new(quota), quota, clock, tat: AtomicU64::new(0) }
    }

    /// The quota it enforces.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// The clock it reads.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Takes one cell now, or says when one will be available.
    #[inline]
    pub fn check(&self) -> Result<(), NotUntil> {
        self.check_at_nanos(self.clock.now_nanos())
    }

    /// Wait mode: takes the next cell if it is available within `max_wait`, and returns how
    /// long to wait before using it (zero when available now). The cell is taken at once,
    /// so the caller must go after the wait, or the cell is lost. Refuses beyond `max_wait`.
    #[inline]
    pub fn reserve(&self, max_wait: Duration) -> Result<Duration, NotUntil> {
        self.reserve_at_nanos(self.clock.now_nanos(), max_wait)
    }

    /// The raw check at an explicit clock reading (nanoseconds since the clock's origin),
    /// for tests and simulations. Readings should not decrease, as a clock's do not.
    #[inline]
    pub fn check_at_nanos(&self, now: u64) -> Result<(), NotUntil> {
        self.gcra.reserve(&self.tat, now, 0).map(|_| ())
    }

    /// The raw [`reserve`](Self::reserve) at an explicit clock reading.
    #[inline]
    pub fn reserve_at_nanos(&self, now: u64, max_wait: Duration) -> Result<Duration, NotUntil> {
        self.gcra.reserve(&self.tat, now, duration_nanos(max_wait)).map(Duration::from_nanos)
    }

    /// [`reserve`](Self::reserve) of `cost` cells (1 ..= burst) at once.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn reserve_n(&self, cost: u32, max_wait: Duration) -> Result<Duration, NotUntil> {
        let now = self.clock.now_nanos();
        self.gcra.reserve_n(&self.tat, now, cost, duration_nanos(max_wait)).map(Duration::from_nanos)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_cost_takes_that_many_cells_and_says_when_they_all_conform() {
        // T = 100 ms, burst 5.
        let gcra = Gcra::new(Quota::per_second(10).and_then(|q| q.allow_burst(5)).unwrap_or_else(|e| panic!("{e}")));
        let tat = AtomicU64::new(0);
        assert_eq!(gcra.reserve_n(&tat, 0, 3, 0), Ok(0));
        let refused = gcra.reserve_n(&tat, 0, 3, 0).expect_err("2 cells left");
        assert_eq!(refused.retry_in(), Duration::from_millis(100));
        assert_eq!(gcra.reserve_n(&tat, 0, 2, 0), Ok(0));
        assert_eq!(gcra.reserve_n(&tat, 0, 1, 250_000_000), Ok(100_000_000), "wait mode: the next cell in 100 ms");
    }

    proptest! {
        #[test]
        fn cells_taken_with_costs_never_exceed_rate_times_span_plus_burst(
            steps in proptest::collection::vec((1u32..=4, 0u64..150_000_000), 1..200),
        ) {
            // T = 100 ms, burst 4.
            let gcra = Gcra::new(Quota::per_second(10).and_then(|q| q.allow_burst(4)).unwrap_or_else(|e| panic!("{e}")));
            let tat = AtomicU64::new(0);
            let (mut now, mut cells) = (0u64, 0u64);
            for (cost, gap) in steps {
                now += gap;
                if gcra.reserve_n(&tat, now, cost, 0).is_ok() {
                    cells += u64::from(cost);
                }
                prop_assert!(cells <= now / 100_000_000 + 4, "{cells} cells by {now} ns");
            }
        }
    }
}
