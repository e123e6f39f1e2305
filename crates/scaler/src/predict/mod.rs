//! Predictive scaling: forecast demand a little ahead and scale for it before it arrives.
//!
//! A [`Predictive`] engine keeps the demand readings of a sliding `window`, fits a model to
//! them — a least-squares [linear trend](ForecastModel::LinearTrend) or
//! [Holt's](ForecastModel::Holt) double exponential smoothing — and forecasts the demand
//! `horizon` ahead. The forecast joins its [`Hpa`]'s metrics for the round as one more metric,
//! `forecast(<demand>)`, with an average-value target of `target_per_replica`, so the HPA takes
//! the **maximum** of the reactive proposals and the predicted one, and its stabilisation,
//! policies and bounds apply to both. Prediction can only add replicas: a forecast of falling
//! demand loses to the current metrics.
//!
//! Each fit has a confidence in `0..=1` (R² for the trend; for Holt, one minus the one-step
//! forecast errors over the series' variance). Below `min_confidence`, or with fewer than
//! `min_samples` readings, the forecast is not used and the engine is its HPA alone (the
//! recommendation's message says so). [`Predictive::forecast`] shows the last fit.
//!
//! ```
//! use std::time::Duration;
//! use harvester_scaler::{Engine, HpaConfig, MetricSpec, Predictive, PredictiveConfig, Reason, Sample, Timestamp};
//!
//! let hpa = HpaConfig { max_replicas: 50, ..HpaConfig::new([MetricSpec::average_value("rps", 100.0)]) };
//! let mut engine = Predictive::new(hpa, PredictiveConfig::new("rps", 100.0))?;
//! let t0 = Timestamp::from_unix_secs(0);
//! // Demand climbs 50 rps every 15 s; replicas keep up with the current demand.
//! let mut round = |n: u32| {
//!     let rps = 200.0 + 50.0 * f64::from(n);
//!     let replicas = (rps / 100.0).ceil() as u32;
//!     engine.recommend(&Sample::new(replicas).with_value("rps", rps), t0 + Duration::from_secs(15 * u64::from(n)))
//! };
//! for n in 0..11 {
//!     round(n);
//! }
//! // 750 rps now, 1150 forecast two minutes ahead: 12 replicas, not 8.
//! let last = round(11);
//! assert!(matches!(last.reason, Reason::Predicted { .. }), "{last:?}");
//! assert_eq!(last.replicas, 12);
//! # Ok::<(), harvester_scaler::ConfigError>(())
//! ```

mod holt;
mod linear;

use std::collections::VecDeque;
use std::ops::RangeInclusive;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::error::ConfigError;
use crate::hpa::{ExtraMetric, Hpa, HpaConfig, Target, milli};
use crate::recommendation::{Reason, Recommendation};
use crate::sample::{Reading, Sample, usable};
use crate::time::{Timestamp, older_than};

/// A fitted model's forecast and how much to trust it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Fit {
    forecast: f64,
    confidence: f64,
}

/// How demand is forecast.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum ForecastModel {
    /// Least-squares line through the window; confidence R².
    LinearTrend,
    /// Holt's double exponential smoothing; confidence from the one-step errors.
    Holt {
        /// Level smoothing, in `(0, 1]`: higher follows the last readings more.
        alpha: f64,
        /// Trend smoothing, in `(0, 1]`: higher follows slope changes faster.
        beta: f64,
    },
}

impl ForecastModel {
    /// Holt with α 0.5, β 0.3: quick to follow a new slope, still smoothing single spikes.
    pub const HOLT: ForecastModel = ForecastModel::Holt { alpha: 0.5, beta: 0.3 };
}

/// Configuration of the prediction part of a [`Predictive`] engine.
///
/// Defaults (ours; there is no standard): linear trend over a 10-minute window, 2 minutes
/// ahead (about the time a new worker takes to matter), at least 6 readings, confidence 0.8.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictiveConfig {
    /// The demand reading (a whole-target value: arrivals per second, records queued…).
    pub demand_metric: String,
    /// Demand one replica should carry; the forecast asks for ⌈forecast ÷ this⌉ replicas.
    pub target_per_replica: f64,
    /// The model.
    #[serde(default = "default_model")]
    pub model: ForecastModel,
    /// How much history the fit sees.
    #[serde(default = "default_window", with = "humantime_serde")]
    pub window: Duration,
    /// How far ahead to forecast.
    #[serde(default = "default_horizon", with = "humantime_serde")]
    pub horizon: Duration,
    /// Fits below this confidence are not used.
    #[serde(default = "default_min_confidence")]
    pub min_confidence: f64,
    /// Readings needed in the window before forecasting; at least 3.
    #[serde(default = "default_min_samples")]
    pub min_samples: usize,
}

fn default_model() -> ForecastModel {
    ForecastModel::LinearTrend
}
fn default_window() -> Duration {
    Duration::from_secs(600)
}
fn default_horizon() -> Duration {
    Duration::from_secs(120)
}
fn default_min_confidence() -> f64 {
    0.8
}
fn default_min_samples() -> usize {
    6
}

impl PredictiveConfig {
    /// Defaults for `demand_metric` at `target_per_replica`.
    pub fn new(demand_metric: impl Into<String>, target_per_replica: f64) -> Self {
        PredictiveConfig {
            demand_metric: demand_metric.into(),
            target_per_replica,
            model: default_model(),
            window: default_window(),
            horizon: default_horizon(),
            min_confidence: default_min_confidence(),
            min_samples: default_min_samples(),
        }
    }

    /// Sets the model.
    pub fn with_model(mut self, model: ForecastModel) -> Self {
        self.model = model;
        self
    }

    /// Refuses out-of-range values, naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.demand_metric.is_empty() {
            return Err(ConfigError::new("predictive.demand_metric", "must not be empty"));
        }
        if milli(self.target_per_replica).is_none_or(|m| m <= 0) {
            return Err(ConfigError::new(
                "predictive.target_per_replica",
                format!("{} must be a positive, finite number", self.target_per_replica),
            ));
        }
        if self.window.is_zero() {
            return Err(ConfigError::new("predictive.window", "must be longer than zero"));
        }
        if !(0.0..=1.0).contains(&self.min_confidence) {
            return Err(ConfigError::new(
                "predictive.min_confidence",
                format!("{} is not within 0..=1", self.min_confidence),
            ));
        }
        if self.min_samples < 3 {
            return Err(ConfigError::new("predictive.min_samples", "must be at least 3"));
        }
        if let ForecastModel::Holt { alpha, beta } = self.model {
            for (field, value) in [("predictive.model.alpha", alpha), ("predictive.model.beta", beta)] {
                if !(value > 0.0 && value <= 1.0) {
                    return Err(ConfigError::new(field, format!("{value} is not within (0, 1]")));
                }
            }
        }
        Ok(())
    }
}

/// The last forecast a [`Predictive`] engine made.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Forecast {
    /// Demand forecast at the horizon (never negative).
    pub demand: f64,
    /// Confidence of the fit, in `0..=1`.
    pub confidence: f64,
    /// Readings it was fitted to.
    pub samples: usize,
    /// Whether it took part in the recommendation (confident enough and usable).
    pub used: bool,
}

/// An [`Hpa`] that also scales for forecast demand. See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct Predictive {
    hpa: Hpa,
    config: PredictiveConfig,
    metric: String,
    target: Target,
    history: VecDeque<(Timestamp, f64)>,
    last: Option<Forecast>,
}

impl Predictive {
    /// An HPA with `hpa` and a forecast with `config`, both validated.
    pub fn new(hpa: HpaConfig, config: PredictiveConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let target = milli(config.target_per_replica)
            .filter(|m| *m > 0)
            .map(Target::AverageValue)
            .ok_or_else(|| ConfigError::new("predictive.target_per_replica", "out of range"))?;
        let metric = format!("forecast({})", config.demand_metric);
        Ok(Predictive { hpa: Hpa::new(hpa)?, config, metric, target, history: VecDeque::new(), last: None })
    }

    /// The last forecast, if one could be made.
    pub fn forecast(&self) -> Option<Forecast> {
        self.last
    }

    /// The configuration of the prediction part.
    pub fn config(&self) -> &PredictiveConfig {
        &self.config
    }

    fn fit(&self, now: Timestamp) -> Option<Fit> {
        if self.history.len() < self.config.min_samples {
            return None;
        }
        // Seconds relative to now keep the numbers small and the forecast point at `horizon`.
        let points: Vec<(f64, f64)> =
            self.history.iter().map(|(at, demand)| (at.nanos_since(now) as f64 / 1e9, *demand)).collect();
        let at = self.config.horizon.as_secs_f64();
        let fit = match self.config.model {
            ForecastModel::LinearTrend => linear::fit(&points, at),
            ForecastModel::Holt { alpha, beta } => holt::fit(&points, at, alpha, beta),
        }?;
        let confidence = if fit.confidence.is_finite() { fit.confidence } else { 0.0 };
        Some(Fit { forecast: fit.forecast, confidence })
    }
}

impl Engine for Predictive {
    fn recommend(&mut self, sample: &Sample, now: Timestamp) -> Recommendation {
        if let Some(demand) = sample.value(&self.config.demand_metric) {
            self.history.push_back((now, demand));
        }
        while self.history.front().is_some_and(|(at, _)| older_than(now, *at, self.config.window)) {
            self.history.pop_front();
        }
        let fit = self.fit(now);
        let demand = fit.map(|f| f.forecast.max(0.0));
        let usable_fit = fit.zip(demand).filter(|(f, d)| f.confidence >= self.config.min_confidence && usable(*d));
        let extra = usable_fit.filter(|(_, d)| milli(*d).is_some()).map(|(_, d)| ExtraMetric {
            name: &self.metric,
            target: self.target,
            reading: Reading::Value(d),
        });
        let used = extra.is_some();
        let mut recommendation = self.hpa.reconcile(sample, now, extra);
        self.last = fit.zip(demand).map(|(f, d)| Forecast {
            demand: d,
            confidence: f.confidence,
            samples: self.history.len(),
            used,
        });
        match (&recommendation.reason, self.last) {
            (Reason::AboveTarget { metric }, Some(forecast)) if *metric == self.metric => {
                recommendation.reason =
                    Reason::Predicted { forecast: forecast.demand, confidence: forecast.confidence };
            }
            (_, Some(forecast)) if !used => {
                recommendation.message.push_str(&format!(
                    "; forecast not used (confidence {:.2} < {:.2})",
                    forecast.confidence, self.config.min_confidence
                ));
            }
            (_, None) => recommendation.message.push_str(&format!(
                "; no forecast yet ({} of {} readings)",
                self.history.len(),
                self.config.min_samples
            )),
            _ => {}
        }
        recommendation
    }

    fn replica_range(&self) -> RangeInclusive<u32> {
        self.hpa.replica_range()
    }
}
