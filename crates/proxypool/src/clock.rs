//! The pool's notion of time: nanoseconds since the pool was built, read from tokio's
//! clock so that tests drive it with `tokio::time::pause` and `advance`.
//!
//! Times are stored in atomics as `u64` nanoseconds with 0 meaning "never", which is
//! why [`Clock::now`] never returns 0.

use std::time::Duration;

use tokio::time::Instant;

/// Nanoseconds since the pool's epoch; 0 is reserved for "never" / "not set".
pub(crate) type Nanos = u64;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    epoch: Instant,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Clock { epoch: harvester_core::time::now() }
    }

    pub(crate) fn now(&self) -> Nanos {
        // +1 keeps "now" distinct from the "never" sentinel at the very first instant.
        duration_to_nanos(harvester_core::time::since(self.epoch)).saturating_add(1)
    }
}

pub(crate) fn duration_to_nanos(d: Duration) -> Nanos {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

pub(crate) fn nanos_to_duration(n: Nanos) -> Duration {
    Duration::from_nanos(n)
}
