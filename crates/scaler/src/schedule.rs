//! Scheduled scaling: time windows, daily or on given weekdays, that raise the minimum.
//!
//! A [`Scheduled`] engine wraps any engine: during a window, replicas are at least the
//! window's `min_replicas` (capped at the inner engine's maximum); outside every window the
//! inner engine decides alone. Times are wall-clock `HH:MM` in one fixed UTC offset (no time
//! zone database: a zone with daylight saving needs its two offsets as two configurations, or
//! windows written in UTC). A window whose end is before its start runs past midnight into the
//! next day; its weekdays name the day it starts.
//!
//! A window changes only the answer. The wrapped engine learns from the next sample that its
//! own number was not run, so a change the window overrode leaves it no false event: no HPA
//! scale event against its policies, no reactive cooldown (see [`Engine`]).
//!
//! ```
//! use harvester_scaler::{Engine, ReactiveConfig, ReactiveScaler, Reason, Sample, ScheduleConfig, ScheduleWindow, Scheduled, TimeOfDay, Timestamp, Weekday};
//!
//! // Friday 22:00 to Saturday 02:00 (UTC): at least 6 replicas for the weekly crawl.
//! let window = ScheduleWindow::new("weekly crawl", TimeOfDay::new(22, 0)?, TimeOfDay::new(2, 0)?, 6).on([Weekday::Fri]);
//! let config = ScheduleConfig { utc_offset_minutes: 0, windows: vec![window] };
//! let mut engine = Scheduled::new(config, ReactiveScaler::new(ReactiveConfig::default())?)?;
//! // 1970-01-03 was a Saturday; 01:30 is still inside Friday's window.
//! let saturday_0130 = Timestamp::from_unix_secs(2 * 86_400 + 90 * 60);
//! let decision = engine.recommend(&Sample::new(2).with_value("cpu", 0.5), saturday_0130);
//! assert_eq!(decision.replicas, 6);
//! assert!(matches!(decision.reason, Reason::Scheduled { .. }));
//! # Ok::<(), harvester_scaler::ConfigError>(())
//! ```

use std::fmt;
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::error::ConfigError;
use crate::recommendation::{Reason, Recommendation};
use crate::sample::Sample;
use crate::time::Timestamp;

const MINUTES_PER_DAY: u16 = 24 * 60;
const SECONDS_PER_DAY: i128 = 86_400;
/// The widest offset in use anywhere, with room: ±18 h.
const MAX_OFFSET_MINUTES: i32 = 18 * 60;

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

impl Weekday {
    const ALL: [Weekday; 7] =
        [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat, Weekday::Sun];

    /// The weekday of day number `day` since 1970-01-01 (a Thursday); negative days count back.
    fn of_day(day: i128) -> Weekday {
        Weekday::ALL[(day + 3).rem_euclid(7) as usize]
    }
}

/// A wall-clock time, `00:00` to `24:00` (the end of a day), to the minute; written `"HH:MM"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeOfDay {
    minutes: u16,
}

impl TimeOfDay {
    /// `hours:minutes`; `24:00` is the end of the day.
    pub fn new(hours: u8, minutes: u8) -> Result<Self, ConfigError> {
        let total = u16::from(hours) * 60 + u16::from(minutes);
        if minutes >= 60 || total > MINUTES_PER_DAY {
            return Err(ConfigError::new(
                "schedule.time",
                format!("{hours:02}:{minutes:02} is not within 00:00..=24:00"),
            ));
        }
        Ok(TimeOfDay { minutes: total })
    }

    /// Minutes since midnight.
    pub fn minutes(self) -> u16 {
        self.minutes
    }
}

impl TryFrom<String> for TimeOfDay {
    type Error = ConfigError;

    fn try_from(text: String) -> Result<Self, ConfigError> {
        let refuse = || ConfigError::new("schedule.time", format!("{text:?} is not HH:MM"));
        let (hours, minutes) = text.split_once(':').ok_or_else(refuse)?;
        if hours.is_empty() || hours.len() > 2 || minutes.len() != 2 {
            return Err(refuse());
        }
        TimeOfDay::new(hours.parse().map_err(|_| refuse())?, minutes.parse().map_err(|_| refuse())?)
    }
}

impl From<TimeOfDay> for String {
    fn from(time: TimeOfDay) -> String {
        time.to_string()
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.minutes / 60, self.minutes % 60)
    }
}

/// A recurring window that holds at least `min_replicas`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleWindow {
    /// Named in recommendations.
    pub name: String,
    /// The days it starts on; empty: every day.
    #[serde(default)]
    pub days: Vec<Weekday>,
    /// Start, included.
    pub start: TimeOfDay,
    /// End, excluded; before `start`: the next day.
    pub end: TimeOfDay,
    /// The minimum while it runs.
    pub min_replicas: u32,
}

impl ScheduleWindow {
    /// A daily window.
    pub fn new(name: impl Into<String>, start: TimeOfDay, end: TimeOfDay, min_replicas: u32) -> Self {
        ScheduleWindow { name: name.into(), days: Vec::new(), start, end, min_replicas }
    }

    /// Restricts it to windows starting on `days`.
    pub fn on(mut self, days: impl IntoIterator<Item = Weekday>) -> Self {
        self.days = days.into_iter().collect();
        self
    }

    fn starts_on(&self, day: Weekday) -> bool {
        self.days.is_empty() || self.days.contains(&day)
    }

    /// Whether it runs at `second` of local day number `day`.
    fn runs(&self, day: i128, second: i128) -> bool {
        let (start, end) = (i128::from(self.start.minutes) * 60, i128::from(self.end.minutes) * 60);
        if start < end {
            self.starts_on(Weekday::of_day(day)) && (start..end).contains(&second)
        } else {
            (second >= start && self.starts_on(Weekday::of_day(day)))
                || (second < end && self.starts_on(Weekday::of_day(day - 1)))
        }
    }
}

/// Windows and the offset their times are in.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Local time minus UTC, in minutes (e.g. 60 for CET, -300 for EST); within ±18 h.
    #[serde(default)]
    pub utc_offset_minutes: i32,
    /// The windows; where several run, the highest minimum wins.
    pub windows: Vec<ScheduleWindow>,
}

impl ScheduleConfig {
    /// Refuses out-of-range values, naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        // `unsigned_abs`: `i32::MIN.abs()` overflows.
        if self.utc_offset_minutes.unsigned_abs() > MAX_OFFSET_MINUTES.unsigned_abs() {
            return Err(ConfigError::new(
                "schedule.utc_offset_minutes",
                format!("{} is beyond ±18 h", self.utc_offset_minutes),
            ));
        }
        for (index, window) in self.windows.iter().enumerate() {
            if window.name.is_empty() {
                return Err(ConfigError::new(format!("schedule.windows[{index}].name"), "must not be empty"));
            }
            if window.start == window.end {
                return Err(ConfigError::new(
                    format!("schedule.windows[{index}].end"),
                    "equals start: the window would be empty (use 00:00 to 24:00 for a whole day)",
                ));
            }
            if window.start.minutes == MINUTES_PER_DAY {
                return Err(ConfigError::new(format!("schedule.windows[{index}].start"), "24:00 is only an end"));
            }
        }
        Ok(())
    }

    /// The running window with the highest minimum at `now`, if any.
    pub fn active(&self, now: Timestamp) -> Option<&ScheduleWindow> {
        let local = i128::from(now.unix_secs()) + i128::from(self.utc_offset_minutes) * 60;
        let (day, second) = (local.div_euclid(SECONDS_PER_DAY), local.rem_euclid(SECONDS_PER_DAY));
        self.windows.iter().filter(|w| w.runs(day, second)).max_by_key(|w| w.min_replicas)
    }
}

/// An engine whose minimum rises during scheduled windows. See the [module documentation](self).
pub struct Scheduled {
    config: ScheduleConfig,
    inner: Box<dyn Engine>,
}

impl fmt::Debug for Scheduled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduled").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Scheduled {
    /// `inner` with the windows of `config`, validated.
    pub fn new(config: ScheduleConfig, inner: impl Engine + 'static) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Scheduled { config, inner: Box::new(inner) })
    }

    /// The schedule.
    pub fn config(&self) -> &ScheduleConfig {
        &self.config
    }
}

impl Engine for Scheduled {
    fn recommend(&mut self, sample: &Sample, now: Timestamp) -> Recommendation {
        let recommendation = self.inner.recommend(sample, now);
        let Some(window) = self.config.active(now) else { return recommendation };
        let floor = window.min_replicas.min(*self.inner.replica_range().end());
        if recommendation.replicas >= floor {
            return recommendation;
        }
        let message = format!(
            "window {:?} ({}-{}) holds {floor} replicas; engine said {}",
            window.name, window.start, window.end, recommendation
        );
        Recommendation {
            replicas: floor,
            reason: Reason::Scheduled { window: window.name.clone(), min_replicas: window.min_replicas },
            message,
            cost_per_hour: None,
        }
    }

    fn replica_range(&self) -> RangeInclusive<u32> {
        self.inner.replica_range()
    }
}
