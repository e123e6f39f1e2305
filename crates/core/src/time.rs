//! The clock every layer and the pool read: `tokio::time::Instant`s, from tokio's clock by
//! default (so `tokio::time::pause` and `advance` drive them in tests), or from the CPU's
//! time-stamp counter once a program calls [`use_tsc`].
//!
//! Why a seam: reading the time is a fixed part of every check a layer makes (a rate limit,
//! a breaker's slow-call timing, a retry budget, a pick's latency) and on virtual machines
//! the system clock is slow: `std::time::Instant::now` (a vDSO `clock_gettime`, which tokio's
//! clock is outside tests) measured 38 ns here, where the time-stamp counter, read through
//! [`quanta`], took 12 ns. Tokio cannot tell a library whether its time is paused, so the
//! choice is the program's: a binary calls [`use_tsc`] at start (the `collect` binary and the
//! benchmarks do); libraries and tests read tokio's clock unless told otherwise.
//!
//! Instants from either source are `tokio::time::Instant`s on one timeline: the counter's
//! readings are placed after an instant of the system clock taken when it was calibrated,
//! so a deadline computed from [`now`] can be given to `tokio::time::sleep_until`. Its rate
//! is calibrated against the system clock by `quanta`; over an hour the two may drift apart
//! by a few milliseconds at most.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Whether [`now`] reads the time-stamp counter.
static TSC: AtomicBool = AtomicBool::new(false);

/// The counter's clock and where its readings sit on tokio's timeline.
struct Counter {
    clock: quanta::Clock,
    /// A raw reading of the counter…
    raw: u64,
    /// …and the system clock's instant at that reading.
    at: Instant,
}

static COUNTER: OnceLock<Counter> = OnceLock::new();

fn counter() -> &'static Counter {
    COUNTER.get_or_init(|| {
        let clock = quanta::Clock::new();
        let raw = clock.raw();
        let at = Instant::from_std(std::time::Instant::now());
        Counter { clock, raw, at }
    })
}

/// From now on, [`now`] reads the time-stamp counter (calibrated once, on first use, which
/// takes a few milliseconds). For programs, not libraries: tokio's paused time no longer
/// reaches the layers after this.
pub fn use_tsc() {
    counter();
    TSC.store(true, Ordering::Release);
}

/// From now on, [`now`] reads tokio's clock (the default).
pub fn use_tokio() {
    TSC.store(false, Ordering::Release);
}

/// Whether [`now`] reads the time-stamp counter.
pub fn uses_tsc() -> bool {
    TSC.load(Ordering::Relaxed)
}

/// The time now: tokio's clock, or the time-stamp counter after [`use_tsc`].
#[inline]
pub fn now() -> Instant {
    if TSC.load(Ordering::Relaxed) {
        let counter = counter();
        let raw = counter.clock.raw();
        counter.at + Duration::from_nanos(counter.clock.delta_as_nanos(counter.raw, raw))
    } else {
        Instant::now()
    }
}

/// The time elapsed since `earlier`, by [`now`]; zero for an instant in the future.
#[inline]
pub fn since(earlier: Instant) -> Duration {
    now().saturating_duration_since(earlier)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both sources are one timeline: a reading of the counter falls between two readings
    /// of the system clock taken around it, within the counter's calibration error.
    #[test]
    fn the_counter_runs_on_the_system_clocks_timeline() {
        use_tsc();
        for _ in 0..1_000 {
            let before = Instant::from_std(std::time::Instant::now());
            let read = now();
            let after = Instant::from_std(std::time::Instant::now());
            let slack = Duration::from_millis(5);
            assert!(read + slack >= before && read <= after + slack, "{read:?} not within [{before:?}, {after:?}]");
        }
        // Never backwards.
        let mut last = now();
        for _ in 0..100_000 {
            let next = now();
            assert!(next >= last);
            last = next;
        }
        use_tokio();
        assert!(!uses_tsc());
    }
}
