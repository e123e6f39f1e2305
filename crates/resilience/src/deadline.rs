//! Deadlines for tokio's timers, from the clock seam.

use std::time::Duration;

use tokio::time::Instant;

/// About 30 years: the deadline of a wait too long for `Instant` (tokio's `sleep` does the same).
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// `wait` from now by the clock seam ([`harvester_core::time::now`]), or [`FAR_FUTURE`]
/// from now when that overflows `Instant`: a custom backoff or a caller's setting must not
/// make a layer panic. `tokio::time::sleep(wait)` would read tokio's clock for this, a
/// system clock call on every request where the program chose the time-stamp counter.
pub(crate) fn deadline_after(wait: Duration) -> Instant {
    after(harvester_core::time::now(), wait)
}

/// `wait` after `start`, or [`FAR_FUTURE`] after it when that overflows `Instant`.
pub(crate) fn after(start: Instant, wait: Duration) -> Instant {
    start.checked_add(wait).unwrap_or_else(|| start + FAR_FUTURE)
}
