//! The seed's reactive scaler: thresholds on cpu, memory and queue depth; double on a breach,
//! halve when everything is quiet; a cooldown after every change; clamped to the bounds.
//!
//! Up when **any** watched metric is above its up-threshold (cpu or memory above
//! `scale_up_threshold`, queue depth above `queue_up_threshold`): replicas double, capped at
//! `max_replicas`. Down when **every** watched metric is below its down-threshold: replicas
//! halve (rounding down), floored at `min_replicas`. After a change, nothing changes for
//! `cooldown`. Replicas running outside the bounds are brought back at once (that counts as a
//! change). A change counts once it was made: the cooldown starts, from the round that
//! recommended it, when the next sample runs exactly the recommended replicas; a change the
//! actuator failed to apply, or that a wrapper replaced, starts none.
//!
//! Metrics a sample does not carry are not watched (a stage with no memory figure scales on
//! the rest). A metric present with a bad value (NaN, ±∞, negative) is missing: it cannot
//! cause a scale-up and it blocks a scale-down ([`Reason::MetricsMissing`]); a sample with no
//! watched metric at all holds too.
//!
//! ```
//! use std::time::Duration;
//! use harvester_scaler::{Engine, ReactiveConfig, ReactiveScaler, Reason, Sample, Timestamp};
//!
//! let mut scaler = ReactiveScaler::new(ReactiveConfig { cooldown: Duration::from_secs(60), ..ReactiveConfig::default() })?;
//! let t0 = Timestamp::from_unix_secs(0);
//! assert_eq!(scaler.recommend(&Sample::new(2).with_value("queue_depth", 5_000.0), t0).replicas, 4);
//! // Still backed up 30 s later, but the cooldown holds.
//! let held = scaler.recommend(&Sample::new(4).with_value("queue_depth", 5_000.0), t0 + Duration::from_secs(30));
//! assert_eq!((held.replicas, held.reason), (4, Reason::Cooldown { remaining: Duration::from_secs(30) }));
//! # Ok::<(), harvester_scaler::ConfigError>(())
//! ```

use std::ops::RangeInclusive;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::error::ConfigError;
use crate::pending::PendingChange;
use crate::recommendation::{Bound, Reason, Recommendation};
use crate::sample::{Reading, Sample, usable};
use crate::time::Timestamp;

/// Configuration of a [`ReactiveScaler`].
///
/// Defaults: 1 to 10 replicas; cpu or memory above 0.8 or a queue above 1 000 doubles; cpu and
/// memory below 0.3 and a queue below 100 halves (the seed's queue thresholds; its utilisation
/// thresholds had no defaults, these are ours); 60 s cooldown (ours too: long enough for new
/// workers to take load before the next look).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReactiveConfig {
    /// Fewest replicas.
    pub min_replicas: u32,
    /// Most replicas; at least `min_replicas` and 1.
    pub max_replicas: u32,
    /// Name of the cpu reading (a whole-target value, utilisation as a fraction).
    pub cpu_metric: String,
    /// Name of the memory reading (a whole-target value, utilisation as a fraction).
    pub memory_metric: String,
    /// Name of the queue depth reading (a whole-target value, records waiting).
    pub queue_metric: String,
    /// Cpu or memory above this scales up.
    pub scale_up_threshold: f64,
    /// Cpu and memory below this (with a short queue) scale down; below `scale_up_threshold`.
    pub scale_down_threshold: f64,
    /// A queue deeper than this scales up.
    pub queue_up_threshold: f64,
    /// A queue shorter than this allows a scale-down; below `queue_up_threshold`.
    pub queue_down_threshold: f64,
    /// No change for this long after a change (counted once a sample runs it).
    #[serde(with = "humantime_serde")]
    pub cooldown: Duration,
}

impl Default for ReactiveConfig {
    fn default() -> Self {
        ReactiveConfig {
            min_replicas: 1,
            max_replicas: 10,
            cpu_metric: "cpu".to_owned(),
            memory_metric: "memory".to_owned(),
            queue_metric: "queue_depth".to_owned(),
            scale_up_threshold: 0.8,
            scale_down_threshold: 0.3,
            queue_up_threshold: 1_000.0,
            queue_down_threshold: 100.0,
            cooldown: Duration::from_secs(60),
        }
    }
}

impl ReactiveConfig {
    /// Refuses out-of-range values, naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_replicas == 0 {
            return Err(ConfigError::new("reactive.max_replicas", "must be at least 1"));
        }
        if self.min_replicas > self.max_replicas {
            return Err(ConfigError::new(
                "reactive.min_replicas",
                format!("{} is above max_replicas {}", self.min_replicas, self.max_replicas),
            ));
        }
        for (field, name) in [
            ("reactive.cpu_metric", &self.cpu_metric),
            ("reactive.memory_metric", &self.memory_metric),
            ("reactive.queue_metric", &self.queue_metric),
        ] {
            if name.is_empty() {
                return Err(ConfigError::new(field, "must not be empty"));
            }
        }
        for (field, value) in [
            ("reactive.scale_up_threshold", self.scale_up_threshold),
            ("reactive.scale_down_threshold", self.scale_down_threshold),
            ("reactive.queue_up_threshold", self.queue_up_threshold),
            ("reactive.queue_down_threshold", self.queue_down_threshold),
        ] {
            if !usable(value) {
                return Err(ConfigError::new(field, format!("{value} is not a finite, non-negative number")));
            }
        }
        if self.scale_down_threshold >= self.scale_up_threshold {
            return Err(ConfigError::new("reactive.scale_down_threshold", "must be below scale_up_threshold"));
        }
        if self.queue_down_threshold >= self.queue_up_threshold {
            return Err(ConfigError::new("reactive.queue_down_threshold", "must be below queue_up_threshold"));
        }
        Ok(())
    }
}

/// The seed's threshold scaler. See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct ReactiveScaler {
    config: ReactiveConfig,
    last_change: Option<Timestamp>,
    pending: PendingChange,
}

/// What one watched metric says.
enum Watch {
    NotWatched,
    Missing,
    Above,
    Below,
    Between,
}

impl ReactiveScaler {
    /// A scaler with `config`, validated.
    pub fn new(config: ReactiveConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(ReactiveScaler { config, last_change: None, pending: PendingChange::default() })
    }

    /// The configuration.
    pub fn config(&self) -> &ReactiveConfig {
        &self.config
    }

    fn watch(sample: &Sample, name: &str, up: f64, down: f64) -> Watch {
        match sample.metrics.get(name) {
            None => Watch::NotWatched,
            Some(Reading::Value(v)) if usable(*v) => {
                if *v > up {
                    Watch::Above
                } else if *v < down {
                    Watch::Below
                } else {
                    Watch::Between
                }
            }
            Some(_) => Watch::Missing,
        }
    }

    /// The recommendation, given the cooldown as it stands.
    fn decide(&self, sample: &Sample, now: Timestamp) -> Recommendation {
        let c = &self.config;
        let (min, max, current) = (c.min_replicas, c.max_replicas, sample.replicas);
        if current < min {
            let message = format!("{current} replicas running, below min_replicas {min}");
            return Recommendation::new(min, Reason::Clamped { bound: Bound::Min }, message);
        }
        if current > max {
            let message = format!("{current} replicas running, above max_replicas {max}");
            return Recommendation::new(max, Reason::Clamped { bound: Bound::Max }, message);
        }
        if let Some(last) = self.last_change {
            let since = now.saturating_since(last);
            if since < c.cooldown {
                let remaining = c.cooldown - since;
                return Recommendation::new(
                    current,
                    Reason::Cooldown { remaining },
                    format!("last change {since:?} ago; cooldown {:?}", c.cooldown),
                );
            }
        }
        let watched = [
            (&c.cpu_metric, Self::watch(sample, &c.cpu_metric, c.scale_up_threshold, c.scale_down_threshold)),
            (&c.memory_metric, Self::watch(sample, &c.memory_metric, c.scale_up_threshold, c.scale_down_threshold)),
            (&c.queue_metric, Self::watch(sample, &c.queue_metric, c.queue_up_threshold, c.queue_down_threshold)),
        ];
        if let Some((metric, _)) = watched.iter().find(|(_, w)| matches!(w, Watch::Above)) {
            let metric = (*metric).clone();
            let doubled = current.saturating_mul(2).max(1);
            if doubled <= max {
                let message = format!("{metric} above its threshold: {current} -> {doubled}");
                return Recommendation::new(doubled, Reason::AboveTarget { metric }, message);
            }
            if current < max {
                let message = format!("{metric} above its threshold: {current} -> {max} (max_replicas)");
                return Recommendation::new(max, Reason::Clamped { bound: Bound::Max }, message);
            }
            return Recommendation::new(
                current,
                Reason::Clamped { bound: Bound::Max },
                format!("{metric} above its threshold, already at max_replicas {max}"),
            );
        }
        let missing = watched.iter().filter(|(_, w)| matches!(w, Watch::Missing)).count();
        let present = watched.iter().filter(|(_, w)| !matches!(w, Watch::NotWatched)).count();
        if missing > 0 || present == 0 {
            return Recommendation::new(
                current,
                Reason::MetricsMissing { missing, of: present },
                format!("{missing} of {present} watched metrics unreadable; no scale-down"),
            );
        }
        let all_below = watched.iter().all(|(_, w)| matches!(w, Watch::Below | Watch::NotWatched));
        if !all_below {
            return Recommendation::new(current, Reason::Steady, "metrics between thresholds");
        }
        let halved = current / 2;
        if halved >= min && halved < current {
            let message = format!("every metric below its threshold: {current} -> {halved}");
            return Recommendation::new(halved, Reason::BelowTarget, message);
        }
        if current > min {
            let message = format!("every metric below its threshold: {current} -> {min} (min_replicas)");
            return Recommendation::new(min, Reason::Clamped { bound: Bound::Min }, message);
        }
        Recommendation::new(
            current,
            Reason::Clamped { bound: Bound::Min },
            format!("every metric below its threshold, already at min_replicas {min}"),
        )
    }
}

impl Engine for ReactiveScaler {
    fn recommend(&mut self, sample: &Sample, now: Timestamp) -> Recommendation {
        if let Some(change) = self.pending.confirm(sample.replicas) {
            self.last_change = Some(change.at);
        }
        let recommendation = self.decide(sample, now);
        self.pending.record(sample.replicas, recommendation.replicas, now);
        recommendation
    }

    fn replica_range(&self) -> RangeInclusive<u32> {
        self.config.min_replicas..=self.config.max_replicas
    }
}
