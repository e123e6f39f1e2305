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

impl Counter {
    /// The instant on tokio's timeline of the counter's `raw` reading.
    #[inline]
    fn place(&self, raw: u64) -> Instant {
        self.at + Duration::from_nanos(self.clock.delta_as_nanos(self.raw, raw))
    }

    /// Nanoseconds from the counter's `raw` reading to a reading now.
    #[inline]
    fn nanos_since(&self, raw: u64) -> u64 {
        self.clock.delta_as_nanos(raw, self.clock.raw())
    }
}

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
        counter.place(raw)
    } else {
        Instant::now()
    }
}

/// The time elapsed since `earlier`, by [`now`]; zero for an instant in the future.
#[inline]
pub fn since(earlier: Instant) -> Duration {
    now().saturating_duration_since(earlier)
}

/// A moment to count elapsed nanoseconds from, as cheaply as the clock allows.
///
/// [`Mark::elapsed_nanos`] gives what `since(mark.instant())` gives, in nanoseconds; on the
/// time-stamp counter it subtracts two raw readings and scales the difference, where going
/// through [`now`] builds an `Instant` (a division of nanoseconds into seconds) only to take
/// it apart again: about 4 ns of a rate limiter's 50 ns check. A mark made on tokio's clock,
/// or read after the program went back to it, counts through tokio's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    at: Instant,
    /// The counter's raw reading at `at`, when the mark was made on the counter.
    raw: Option<u64>,
}

impl Mark {
    /// The moment now, by [`now`].
    pub fn now() -> Mark {
        if TSC.load(Ordering::Relaxed) {
            let counter = counter();
            let raw = counter.clock.raw();
            let at = counter.place(raw);
            Mark { at, raw: Some(raw) }
        } else {
            Mark { at: Instant::now(), raw: None }
        }
    }

    /// The moment as an instant on tokio's timeline.
    pub fn instant(&self) -> Instant {
        self.at
    }

    /// Nanoseconds since the mark, by [`now`] (zero if the clock reads earlier).
    #[inline]
    pub fn elapsed_nanos(&self) -> u64 {
        if let Some(raw) = self.raw
            && TSC.load(Ordering::Relaxed)
        {
            return counter().nanos_since(raw);
        }
        u64::try_from(since(self.at).as_nanos()).unwrap_or(u64::MAX)
    }
}

/// One reading of the clock, for timing a span: on the time-stamp counter just its raw
/// value (no `Instant` is made), else tokio's instant. A breaker times every call with two
/// of these; through [`now`] each reading also built an `Instant`.
#[derive(Clone, Copy, Debug)]
pub struct Stamp(Reading);

#[derive(Clone, Copy, Debug)]
enum Reading {
    Raw(u64),
    At(Instant),
}

impl Stamp {
    /// The clock now, by [`now`]'s source.
    #[inline]
    pub fn now() -> Stamp {
        if TSC.load(Ordering::Relaxed) {
            Stamp(Reading::Raw(counter().clock.raw()))
        } else {
            Stamp(Reading::At(Instant::now()))
        }
    }

    /// A reading already taken as an instant.
    pub fn at(instant: Instant) -> Stamp {
        Stamp(Reading::At(instant))
    }

    /// The reading as an instant on tokio's timeline, what [`now`] would have said then.
    pub fn instant(&self) -> Instant {
        match self.0 {
            Reading::Raw(raw) => counter().place(raw),
            Reading::At(at) => at,
        }
    }

    /// The time since the reading, by [`now`] (zero if the clock reads earlier).
    #[inline]
    pub fn elapsed(&self) -> Duration {
        match self.0 {
            Reading::Raw(raw) => {
                let counter = counter();
                if TSC.load(Ordering::Relaxed) {
                    Duration::from_nanos(counter.nanos_since(raw))
                } else {
                    // The program went back to tokio's clock since: place the reading on it.
                    since(counter.place(raw))
                }
            }
            Reading::At(at) => since(at),
        }
    }
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

    #[test]
    fn a_mark_counts_what_since_counts_on_either_clock() {
        use_tsc();
        let mark = Mark::now();
        std::thread::sleep(Duration::from_millis(2));
        let (by_raw, by_instant) = (mark.elapsed_nanos(), since(mark.instant()));
        let by_instant = u64::try_from(by_instant.as_nanos()).expect("small");
        assert!(by_raw >= 2_000_000, "{by_raw}");
        assert!(by_raw.abs_diff(by_instant) < 1_000_000, "{by_raw} vs {by_instant}");
        use_tokio();
        assert!(mark.elapsed_nanos() >= by_raw, "back on tokio's clock it still counts from the mark");
    }

    #[test]
    fn a_stamp_times_a_span_on_either_clock() {
        use_tsc();
        let stamp = Stamp::now();
        std::thread::sleep(Duration::from_millis(2));
        let on_counter = stamp.elapsed();
        assert!(on_counter >= Duration::from_millis(2) && on_counter < Duration::from_secs(5), "{on_counter:?}");
        use_tokio();
        assert!(stamp.elapsed() + Duration::from_millis(1) >= on_counter, "read on tokio's clock after the switch");
        let at = Stamp::at(Instant::now());
        assert!(at.elapsed() < Duration::from_secs(5));
    }
}
