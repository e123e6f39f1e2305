//! [`Timestamp`]: the time an engine is told, never reads.
//!
//! Engines are pure: the caller passes the time of each sample. One value serves both needs —
//! intervals (stabilisation windows, cooldowns, policy periods) and the calendar (schedule
//! windows) — so it is a UTC time since the Unix epoch. Tests and simulations start wherever
//! they like (`Timestamp::from_unix_secs(0)` is a Thursday); the [`Driver`](crate::Driver)
//! takes it from a [`WallClock`](crate::WallClock).

use std::fmt;
use std::ops::Add;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A UTC instant, as the time since the Unix epoch (1970-01-01T00:00:00Z). Written in RFC 3339
/// (`"2023-11-14T22:13:20Z"`) by serde.
///
/// ```
/// use std::time::Duration;
/// use harvester_scaler::Timestamp;
///
/// let start = Timestamp::from_unix_secs(1_700_000_000);
/// let later = start + Duration::from_secs(15);
/// assert_eq!(later.saturating_since(start), Duration::from_secs(15));
/// assert_eq!(start.saturating_since(later), Duration::ZERO);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(Duration);

impl Timestamp {
    /// 1970-01-01T00:00:00Z.
    pub const EPOCH: Timestamp = Timestamp(Duration::ZERO);

    /// `secs` seconds after the epoch.
    pub const fn from_unix_secs(secs: u64) -> Self {
        Timestamp(Duration::from_secs(secs))
    }

    /// `since_epoch` after the epoch.
    pub const fn from_unix(since_epoch: Duration) -> Self {
        Timestamp(since_epoch)
    }

    /// The time since the epoch.
    pub const fn as_unix(self) -> Duration {
        self.0
    }

    /// Whole seconds since the epoch.
    pub const fn unix_secs(self) -> u64 {
        self.0.as_secs()
    }

    /// The time from `earlier` to `self`; zero when `earlier` is later.
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    /// `self - earlier` in nanoseconds, negative when `earlier` is later (time given by a
    /// caller may go backwards; comparisons must still be exact).
    pub(crate) fn nanos_since(self, earlier: Timestamp) -> i128 {
        self.0.as_nanos() as i128 - earlier.0.as_nanos() as i128
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;

    /// Saturates at the largest representable time instead of overflowing.
    fn add(self, rhs: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(rhs))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let time = SystemTime::UNIX_EPOCH
            .checked_add(self.0)
            .ok_or_else(|| serde::ser::Error::custom("timestamp beyond the system's range"))?;
        humantime_serde::serialize(&time, serializer)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let time: SystemTime = humantime_serde::deserialize(deserializer)?;
        time.duration_since(SystemTime::UNIX_EPOCH)
            .map(Timestamp)
            .map_err(|_| serde::de::Error::custom("timestamp before 1970"))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}s", self.0.as_secs(), self.0.subsec_millis())
    }
}

/// Whether a record made at `at` is *younger* than `window` at `now`, i.e. strictly after
/// `now - window` (Go's `at.After(now.Add(-window))`).
pub(crate) fn within(now: Timestamp, at: Timestamp, window: Duration) -> bool {
    now.nanos_since(at) < window.as_nanos() as i128
}

/// Whether a record made at `at` is *older* than `window` at `now`, i.e. strictly before
/// `now - window` (Go's `at.Before(now.Add(-window))`).
pub(crate) fn older_than(now: Timestamp, at: Timestamp, window: Duration) -> bool {
    now.nanos_since(at) > window.as_nanos() as i128
}
