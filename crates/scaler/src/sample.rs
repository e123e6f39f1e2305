//! [`Sample`]: what an engine decides from — the replicas running now and named metric
//! readings, each either one value for the whole target or one value per replica.
//!
//! A value that is not a finite, non-negative number (NaN, ±∞, negative) is **treated as
//! missing**, never as an error: a scaler must keep deciding when one exporter misbehaves, and
//! every engine has a defined rule for missing metrics (the HPA's is Kubernetes': no scaling
//! when every metric is missing, no scale-down when some are).
//!
//! ```
//! use harvester_scaler::{PodReading, Sample};
//!
//! let sample = Sample::new(3)
//!     .with_value("queue_depth", 1_200.0)
//!     .with_pods("cpu", [PodReading::ready(0.9).with_request(1.0), PodReading::missing().with_request(1.0)]);
//! assert_eq!(sample.value("queue_depth"), Some(1_200.0));
//! assert_eq!(Sample::new(3).with_value("cpu", f64::NAN).value("cpu"), None);
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The state of one replica as the HPA's pod grouping sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PodState {
    /// Running and counted: its value (or its absence) takes part in the calculation.
    #[default]
    Ready,
    /// Starting, or not ready yet (Kubernetes: pending, or a CPU sample taken during
    /// initialisation). Left out, except on a scale-up, where it counts as using nothing.
    Unready,
    /// Going away (Kubernetes: being deleted, or failed). Left out entirely.
    Ignored,
}

/// One replica's reading of a per-replica metric.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct PodReading {
    /// The replica's value; `None` (or a bad number) when it has none.
    pub value: Option<f64>,
    /// What the replica requested of the resource, for `Utilization` targets (in the same
    /// unit as `value`).
    pub request: Option<f64>,
    /// Whether the replica counts.
    pub state: PodState,
}

impl PodReading {
    /// A ready replica reading `value`.
    pub fn ready(value: f64) -> Self {
        PodReading { value: Some(value), request: None, state: PodState::Ready }
    }

    /// A ready replica without a reading.
    pub fn missing() -> Self {
        PodReading { value: None, request: None, state: PodState::Ready }
    }

    /// A replica that is not ready (see [`PodState::Unready`]).
    pub fn unready() -> Self {
        PodReading { value: None, request: None, state: PodState::Unready }
    }

    /// A replica going away (see [`PodState::Ignored`]).
    pub fn ignored() -> Self {
        PodReading { value: None, request: None, state: PodState::Ignored }
    }

    /// Sets what the replica requested of the resource.
    pub fn with_request(mut self, request: f64) -> Self {
        self.request = Some(request);
        self
    }

    /// The value, if it is a usable number.
    pub fn usable_value(&self) -> Option<f64> {
        self.value.filter(|v| usable(*v))
    }

    /// The request, if it is a usable number.
    pub fn usable_request(&self) -> Option<f64> {
        self.request.filter(|v| usable(*v))
    }
}

/// A metric reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reading {
    /// One value for the whole target: a queue depth, an arrival rate, a mean utilisation.
    Value(f64),
    /// One reading per replica.
    Pods(Vec<PodReading>),
}

/// The replicas running now and the metrics read at one moment.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Sample {
    /// Replicas (workers, permits…) running now: what the actuator last set.
    pub replicas: u32,
    /// Replicas ready to work, when fewer than `replicas` (Kubernetes' ready pod count, used
    /// by whole-target `Value` metrics). `None`: all of them.
    #[serde(default)]
    pub ready_replicas: Option<u32>,
    /// Readings by metric name.
    #[serde(default)]
    pub metrics: BTreeMap<String, Reading>,
}

impl Sample {
    /// A sample of `replicas` running replicas and no metric yet.
    pub fn new(replicas: u32) -> Self {
        Sample { replicas, ready_replicas: None, metrics: BTreeMap::new() }
    }

    /// Adds a whole-target reading.
    pub fn with_value(mut self, name: impl Into<String>, value: f64) -> Self {
        self.metrics.insert(name.into(), Reading::Value(value));
        self
    }

    /// Adds a per-replica reading.
    pub fn with_pods(mut self, name: impl Into<String>, pods: impl IntoIterator<Item = PodReading>) -> Self {
        self.metrics.insert(name.into(), Reading::Pods(pods.into_iter().collect()));
        self
    }

    /// Sets the ready replica count.
    pub fn with_ready(mut self, ready: u32) -> Self {
        self.ready_replicas = Some(ready);
        self
    }

    /// Ready replicas: `ready_replicas`, else `replicas`.
    pub fn ready(&self) -> u32 {
        self.ready_replicas.unwrap_or(self.replicas)
    }

    /// A whole-target reading, if present and usable.
    pub fn value(&self, name: &str) -> Option<f64> {
        match self.metrics.get(name) {
            Some(Reading::Value(v)) if usable(*v) => Some(*v),
            _ => None,
        }
    }
}

/// Finite and not negative: the only numbers a metric may take.
pub(crate) fn usable(value: f64) -> bool {
    value.is_finite() && value >= 0.0
}
