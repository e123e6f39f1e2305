//! Anomaly detection on a few running signals (error rate, latency, queue depth, memory):
//! each sample is judged against a rolling baseline of the signal's recent past, and a
//! sample far enough from it, for long enough, is an anomaly with a severity.
//!
//! The seed flags fixed levels (cpu above 80 %, queue depth above 1 000). A fixed level is
//! wrong for every job but one: 1 000 queued records is a backlog for one collector and a
//! normal day for another. Here the baseline is the signal's own **median** over the last
//! `window` samples and its spread the **median absolute deviation** (MAD, scaled by 1.4826
//! to match a standard deviation under Gaussian noise): both robust, so one spike neither
//! moves the baseline nor hides the next one, and a step is seen at once (the median moves
//! only once half the window has shifted). A sample's score is its distance from the median
//! in spreads (the larger of the MAD and the mean of the smallest 80 % of deviations, both
//! scaled to a standard deviation: the second is steadier on counts); the spread has a floor (`min_spread`, and `relative_floor` of the median) so
//! that a perfectly flat signal does not call every wobble an anomaly.
//!
//! A signal is **warning** once `confirm` samples in a row score at least `warning_score`,
//! **critical** once they score at least `critical_score` (or pass the signal's absolute
//! `critical_above`, e.g. an error rate above 50 %), and back to normal after `confirm`
//! samples below `warning_score`. Only the direction that hurts counts (a falling error rate
//! is good news). Each change of state is an [`AnomalyEvent`]: returned to the caller,
//! logged (`warn` / `error` / `info`), and counted in metrics
//! (`harvester_anomalies_total{signal, severity}`, `harvester_anomaly_severity{signal}`
//! = 0 normal, 1 warning, 2 critical).
//!
//! ```
//! use harvester_scaler::anomaly::{AnomalyConfig, Detector, Severity, Signal};
//!
//! let mut detector = Detector::new(AnomalyConfig::default())?;
//! // A steady error rate around 2 %…
//! for i in 0..60 {
//!     assert!(detector.observe(Signal::ErrorRate, 0.02 + 0.002 * ((i % 5) as f64 - 2.0)).is_none());
//! }
//! // …then a site starts refusing: 40 % of requests fail.
//! assert!(detector.observe(Signal::ErrorRate, 0.40).is_none());
//! assert!(detector.observe(Signal::ErrorRate, 0.41).is_none());
//! let third = detector.observe(Signal::ErrorRate, 0.39).expect("confirmed on the third sample");
//! assert_eq!(third.severity, Severity::Critical);
//! # Ok::<(), harvester_scaler::ConfigError>(())
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// What is watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Signal {
    /// Share of requests that failed over the last sampling period (0 to 1).
    ErrorRate,
    /// A latency, in seconds (e.g. the period's 95th percentile).
    Latency,
    /// Records or URLs waiting.
    QueueDepth,
    /// Resident memory, in bytes.
    Memory,
}

impl Signal {
    /// Every signal.
    pub const ALL: [Signal; 4] = [Signal::ErrorRate, Signal::Latency, Signal::QueueDepth, Signal::Memory];

    /// The name in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::ErrorRate => "error_rate",
            Signal::Latency => "latency",
            Signal::QueueDepth => "queue_depth",
            Signal::Memory => "memory",
        }
    }

    /// The smallest spread worth calling a deviation: 1 % of requests, 5 ms, 10 queued
    /// records, 8 MiB.
    fn min_spread(self) -> f64 {
        match self {
            Signal::ErrorRate => 0.01,
            Signal::Latency => 0.005,
            Signal::QueueDepth => 10.0,
            Signal::Memory => 8.0 * 1024.0 * 1024.0,
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Back within the baseline.
    Normal,
    /// Far from the baseline.
    Warning,
    /// Very far from it, or past the signal's absolute limit.
    Critical,
}

impl Severity {
    /// The name in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Normal => "normal",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    fn level(self) -> f64 {
        match self {
            Severity::Normal => 0.0,
            Severity::Warning => 1.0,
            Severity::Critical => 2.0,
        }
    }
}

/// How the [`Detector`] judges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnomalyConfig {
    /// Samples in a signal's baseline (8 to 10 000). Default 60: a minute at one sample a
    /// second.
    pub window: usize,
    /// Samples a signal needs before it is judged (at least 5, at most `window`). Default 20.
    pub warm_up: usize,
    /// Score (distance from the median, in spreads) of a warning. Default 4.
    pub warning_score: f64,
    /// Score of a critical anomaly (at least `warning_score`). Default 8.
    pub critical_score: f64,
    /// Samples in a row that confirm a change of state (1 to 100). Default 3: with two, a
    /// window of 60 samples of Gaussian noise whose spread came out low raised a false
    /// warning now and then (a property test found it); three in a row at 4 spreads are
    /// about one in 10⁸ samples even then.
    pub confirm: usize,
    /// Spread floor as a share of the median (0 to 1). Default 0.05.
    pub relative_floor: f64,
    /// An error rate at or above this is critical whatever the baseline (0 to 1; 1 turns
    /// it off). Default 0.5.
    pub critical_error_rate: f64,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        AnomalyConfig {
            window: 60,
            warm_up: 20,
            warning_score: 4.0,
            critical_score: 8.0,
            confirm: 3,
            relative_floor: 0.05,
            critical_error_rate: 0.5,
        }
    }
}

impl AnomalyConfig {
    /// Refuses settings that cannot work, naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(8..=10_000).contains(&self.window) {
            return Err(ConfigError::new("anomaly.window", "must be between 8 and 10000 samples"));
        }
        if self.warm_up < 5 || self.warm_up > self.window {
            return Err(ConfigError::new("anomaly.warm_up", "must be at least 5 and at most window"));
        }
        if !(self.warning_score.is_finite() && self.warning_score > 0.0) {
            return Err(ConfigError::new("anomaly.warning_score", "must be a positive number"));
        }
        if !(self.critical_score.is_finite() && self.critical_score >= self.warning_score) {
            return Err(ConfigError::new("anomaly.critical_score", "must be a number at least warning_score"));
        }
        if !(1..=100).contains(&self.confirm) {
            return Err(ConfigError::new("anomaly.confirm", "must be between 1 and 100 samples"));
        }
        if !(0.0..=1.0).contains(&self.relative_floor) {
            return Err(ConfigError::new("anomaly.relative_floor", "must be between 0 and 1"));
        }
        if !(0.0..=1.0).contains(&self.critical_error_rate) || self.critical_error_rate == 0.0 {
            return Err(ConfigError::new("anomaly.critical_error_rate", "must be above 0 and at most 1"));
        }
        Ok(())
    }
}

/// A signal changed state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalyEvent {
    /// The signal.
    pub signal: Signal,
    /// Its state now.
    pub severity: Severity,
    /// Its state before.
    pub previous: Severity,
    /// The sample that confirmed the change.
    pub value: f64,
    /// The baseline's median when it was judged.
    pub baseline: f64,
    /// The spread used (MAD × 1.4826, or the floor).
    pub spread: f64,
    /// `(value - baseline) / spread`.
    pub score: f64,
    /// The signal's sample count at the change (from 1).
    pub sample: u64,
}

impl fmt::Display for AnomalyEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.severity {
            Severity::Normal => {
                write!(f, "{} back to normal: {:.4} (baseline {:.4})", self.signal, self.value, self.baseline)
            }
            severity => write!(
                f,
                "{} {}: {:.4} against a baseline of {:.4} ({:.1} spreads above)",
                self.signal,
                severity.as_str(),
                self.value,
                self.baseline,
                self.score
            ),
        }
    }
}

/// One signal's recent past and state.
#[derive(Debug, Clone)]
struct Track {
    recent: VecDeque<f64>,
    state: Severity,
    /// The state the last samples point to, and for how many samples in a row.
    leaning: Severity,
    streak: usize,
    samples: u64,
}

/// Rolling baselines of several signals, each judged on every sample.
#[derive(Debug, Clone)]
pub struct Detector {
    config: AnomalyConfig,
    tracks: BTreeMap<Signal, Track>,
    scratch: Vec<f64>,
}

impl Detector {
    /// A detector with no history.
    pub fn new(config: AnomalyConfig) -> Result<Detector, ConfigError> {
        config.validate()?;
        Ok(Detector { config, tracks: BTreeMap::new(), scratch: Vec::new() })
    }

    /// The settings.
    pub fn config(&self) -> &AnomalyConfig {
        &self.config
    }

    /// The state of `signal` now.
    pub fn severity(&self, signal: Signal) -> Severity {
        self.tracks.get(&signal).map_or(Severity::Normal, |track| track.state)
    }

    /// Judges `value` of `signal` against its baseline, then adds it to the baseline.
    /// Returns the event when the signal's state changes. A value that is not a finite,
    /// non-negative number is missing: ignored.
    pub fn observe(&mut self, signal: Signal, value: f64) -> Option<AnomalyEvent> {
        if !(value.is_finite() && value >= 0.0) {
            return None;
        }
        let config = &self.config;
        let track = self.tracks.entry(signal).or_insert_with(|| Track {
            recent: VecDeque::with_capacity(config.window),
            state: Severity::Normal,
            leaning: Severity::Normal,
            streak: 0,
            samples: 0,
        });
        track.samples += 1;
        let mut event = None;
        if track.recent.len() >= config.warm_up {
            let (baseline, spread) = baseline_of(&track.recent, &mut self.scratch, signal, config);
            let score = (value - baseline) / spread;
            let mut judged = if score >= config.critical_score {
                Severity::Critical
            } else if score >= config.warning_score {
                Severity::Warning
            } else {
                Severity::Normal
            };
            if signal == Signal::ErrorRate && value >= config.critical_error_rate {
                judged = Severity::Critical;
            }
            if judged == track.leaning {
                track.streak += 1;
            } else {
                track.leaning = judged;
                track.streak = 1;
            }
            // Escalation from warning to critical, and every other change, needs `confirm`
            // samples pointing the same way.
            if track.leaning != track.state && track.streak >= config.confirm {
                let previous = track.state;
                track.state = track.leaning;
                event = Some(AnomalyEvent {
                    signal,
                    severity: track.state,
                    previous,
                    value,
                    baseline,
                    spread,
                    score,
                    sample: track.samples,
                });
            }
        }
        if track.recent.len() == config.window {
            track.recent.pop_front();
        }
        track.recent.push_back(value);
        if let Some(event) = &event {
            announce(event);
        }
        event
    }
}

/// The median of `recent` and its spread (MAD × 1.4826 or the trimmed mean deviation,
/// whichever is larger, and at least the floors).
fn baseline_of(recent: &VecDeque<f64>, scratch: &mut Vec<f64>, signal: Signal, config: &AnomalyConfig) -> (f64, f64) {
    scratch.clear();
    scratch.extend(recent.iter().copied());
    let median = median_of(scratch);
    for value in scratch.iter_mut() {
        *value = (*value - median).abs();
    }
    let mad = median_of(scratch);
    // On counts (an error rate of 100 requests moves in steps of 1 %) the MAD jumps between
    // steps and can come out at half the real spread. The mean of the smallest 80 % of the
    // deviations, scaled to a standard deviation, is smooth on counts and still ignores the
    // top 20 % (spikes); the larger of the two is the spread.
    let kept = (scratch.len() * 4 / 5).max(1);
    scratch.select_nth_unstable_by(kept - 1, f64::total_cmp);
    let trimmed = scratch[..kept].iter().sum::<f64>() / kept as f64 / TRIMMED_MEAN_DEVIATION;
    let spread = (1.4826 * mad).max(trimmed).max(signal.min_spread()).max(config.relative_floor * median.abs());
    (median, spread)
}

/// E[|Z| | |Z| below its 80th percentile] for a standard normal Z: 2 (φ(0) − φ(1.2816)) / 0.8.
const TRIMMED_MEAN_DEVIATION: f64 = 0.5586;

/// The median of `values` (reordered in place); `values` is not empty.
fn median_of(values: &mut [f64]) -> f64 {
    let odd = values.len() % 2 == 1;
    let middle = values.len() / 2;
    let (below, upper, _) = values.select_nth_unstable_by(middle, f64::total_cmp);
    let upper = *upper;
    if odd {
        upper
    } else {
        let lower = below.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lower + upper) / 2.0
    }
}

/// Logs the event and records it in metrics.
fn announce(event: &AnomalyEvent) {
    let signal = event.signal.as_str();
    metrics::gauge!("harvester_anomaly_severity", "signal" => signal).set(event.severity.level());
    match event.severity {
        Severity::Normal => tracing::info!(signal, value = event.value, baseline = event.baseline, "{event}"),
        severity => {
            metrics::counter!("harvester_anomalies_total", "signal" => signal, "severity" => severity.as_str())
                .increment(1);
            if severity == Severity::Critical {
                tracing::error!(signal, value = event.value, baseline = event.baseline, score = event.score, "{event}");
            } else {
                tracing::warn!(signal, value = event.value, baseline = event.baseline, score = event.score, "{event}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median_of(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median_of(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median_of(&mut [5.0]), 5.0);
    }

    #[test]
    fn bad_settings_are_refused_by_name() {
        let cases = [
            (AnomalyConfig { window: 2, ..AnomalyConfig::default() }, "anomaly.window"),
            (AnomalyConfig { warm_up: 61, ..AnomalyConfig::default() }, "anomaly.warm_up"),
            (AnomalyConfig { warning_score: f64::NAN, ..AnomalyConfig::default() }, "anomaly.warning_score"),
            (AnomalyConfig { critical_score: 1.0, ..AnomalyConfig::default() }, "anomaly.critical_score"),
            (AnomalyConfig { confirm: 0, ..AnomalyConfig::default() }, "anomaly.confirm"),
            (AnomalyConfig { relative_floor: -0.1, ..AnomalyConfig::default() }, "anomaly.relative_floor"),
            (AnomalyConfig { critical_error_rate: 0.0, ..AnomalyConfig::default() }, "anomaly.critical_error_rate"),
        ];
        for (config, field) in cases {
            let error = Detector::new(config).expect_err(field);
            assert!(error.to_string().contains(field), "{error}");
        }
    }
}
