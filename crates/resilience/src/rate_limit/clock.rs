//! Where a limiter reads the time: the workspace's clock seam by default
//! ([`harvester_core::time`]: tokio's clock, so that tests under `tokio::time::pause` are
//! exact, or the time-stamp counter in a program that asks for it); any other monotonic
//! source through [`Clock`].

use std::fmt;

use harvester_core::time::Mark;
use tokio::time::Instant;

use super::quota::duration_nanos;

/// A monotonic time source for limiters.
///
/// A limiter keeps its state in nanoseconds since its clock's origin, so a clock only has
/// to count them. Reading the clock is a fixed part of every check: tokio's clock (the
/// default) reads `std::time::Instant` (a vDSO `clock_gettime`, about 20–25 ns on a VM); a
/// TSC-based clock such as `quanta` is cheaper, at the price of not following tokio's
/// paused time.
pub trait Clock: Send + Sync {
    /// Nanoseconds since an origin fixed for the clock's life; never decreasing.
    fn now_nanos(&self) -> u64;
}

/// The workspace's clock ([`harvester_core::time::now`]: tokio's, unless the program chose
/// the time-stamp counter), counted from the instant the clock was made. Follows
/// `tokio::time::pause` and `advance` while it reads tokio's clock.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokioClock {
    origin: Mark,
}

impl TokioClock {
    /// A clock whose origin is now.
    pub fn new() -> TokioClock {
        TokioClock { origin: Mark::now() }
    }

    /// The instant it counts from.
    pub fn origin(&self) -> Instant {
        self.origin.instant()
    }

    /// The reading at `at`: nanoseconds since the origin, zero for instants before it.
    #[inline]
    pub fn nanos_at(&self, at: Instant) -> u64 {
        duration_nanos(at.saturating_duration_since(self.origin.instant()))
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        TokioClock::new()
    }
}

impl Clock for TokioClock {
    #[inline]
    fn now_nanos(&self) -> u64 {
        // On the time-stamp counter, straight from raw readings (see `Mark`).
        self.origin.elapsed_nanos()
    }
}

impl fmt::Debug for TokioClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokioClock").finish_non_exhaustive()
    }
}
