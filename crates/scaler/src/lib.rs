//! # harvester-scaler
//!
//! How many workers should a stage run, how many requests may be in flight, how many
//! replicas should a collector have? This crate answers with deterministic engines: each
//! takes a [`Sample`] of metrics and the time it was taken (given, never read from a clock)
//! and returns a [`Recommendation`] — a replica count, a typed [`Reason`] and a sentence.
//!
//! | engine | decides by |
//! |---|---|
//! | [`ReactiveScaler`] | the seed's thresholds on cpu / memory / queue depth: ×2 up, ÷2 down, cooldown |
//! | [`Hpa`] | the Kubernetes HPA algorithm, exactly: ratio, tolerance, max over metrics, missing-metric rules, stabilisation windows, Pods / Percent policies, `selectPolicy`, the ×2 / 4 limit |
//! | [`Predictive`] | an HPA plus a demand forecast (linear trend or Holt), used when the fit is confident |
//! | [`Scheduled`] | any engine, with daily or weekly windows that raise the minimum |
//! | [`CostCap`] | any engine, with the cost per hour reported and a budget that caps replicas |
//!
//! [`anomaly::Detector`] watches error rate, latency, queue depth and memory against rolling
//! baselines (median and MAD) and reports warnings and critical anomalies as events, log
//! lines and metrics.
//!
//! Every engine implements [`Engine`], so wrappers stack and a [`Driver`] runs any of them: a
//! tokio task that samples a [`MetricSource`] at an interval, asks the engine, applies the
//! answer through an [`Actuator`] and keeps a bounded history of its [`Decision`]s.
//! [`ConcurrencyLimit`] is an actuator: a semaphore that grows at once and shrinks without
//! taking permits from their holders.
//!
//! Bad metric values (NaN, ±∞, negative) are treated as missing, never as errors; each engine
//! documents what missing metrics do (the HPA follows Kubernetes).
//!
//! ## Feature flags
//!
//! - `pipeline` (off by default): module `stage`, a `StageWorkers` actuator and a `StageMetrics`
//!   source for a stage of a `harvester-pipeline` processor.
//!
//! ```
//! use std::time::Duration;
//! use harvester_scaler::{Engine, Hpa, HpaConfig, MetricSpec, PodReading, Reason, Sample, Timestamp};
//!
//! // Two replicas at 90 % and 110 % of their cpu request, 50 % wanted: ⌈2 × 100 / 50⌉ = 4.
//! let mut hpa = Hpa::new(HpaConfig::new([MetricSpec::utilization("cpu", 50)]))?;
//! let pods = [PodReading::ready(0.9).with_request(1.0), PodReading::ready(1.1).with_request(1.0)];
//! let decision = hpa.recommend(&Sample::new(2).with_pods("cpu", pods), Timestamp::from_unix_secs(0));
//! assert_eq!(decision.replicas, 4);
//! assert_eq!(decision.reason, Reason::AboveTarget { metric: "cpu".into() });
//! # Ok::<(), harvester_scaler::ConfigError>(())
//! ```

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod actuator;
pub mod anomaly;
pub mod concurrency;
pub mod cost;
pub mod driver;
pub mod engine;
pub mod error;
pub mod hpa;
mod pending;
pub mod predict;
pub mod reactive;
pub mod recommendation;
pub mod sample;
pub mod schedule;
#[cfg(feature = "pipeline")]
#[cfg_attr(docsrs, doc(cfg(feature = "pipeline")))]
pub mod stage;
pub mod time;

pub use actuator::Actuator;
pub use concurrency::{ConcurrencyLimit, ConcurrencyPermit};
pub use cost::{CostCap, CostConfig};
pub use driver::{Decision, Driver, DriverConfig, DriverFailed, MetricSource, RoundOutcome, TokioWallClock, WallClock};
pub use engine::Engine;
pub use error::{ActuatorError, ConfigError, SourceError};
pub use hpa::{
    Behavior, Hpa, HpaConfig, MetricSpec, MetricTarget, PolicyKind, ScalingPolicy, ScalingRules, SelectPolicy,
    Tolerance,
};
pub use predict::{Forecast, ForecastModel, Predictive, PredictiveConfig};
pub use reactive::{ReactiveConfig, ReactiveScaler};
pub use recommendation::{Bound, Direction, Reason, Recommendation};
pub use sample::{PodReading, PodState, Reading, Sample};
pub use schedule::{ScheduleConfig, ScheduleWindow, Scheduled, TimeOfDay, Weekday};
#[cfg(feature = "pipeline")]
#[cfg_attr(docsrs, doc(cfg(feature = "pipeline")))]
pub use stage::{StageMetrics, StageWorkers};
pub use time::Timestamp;
