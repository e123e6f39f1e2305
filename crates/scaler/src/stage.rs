//! A stage of a `harvester-pipeline` processor, scaled (feature `pipeline`): [`StageWorkers`]
//! sets its workers, [`StageMetrics`] reads its load.
//!
//! Both hold a [`StageControl`], which does not keep the processor alive: once it is shut
//! down, they fail with an error (the driver records it and goes on).
//!
//! [`StageMetrics`] gives, per sample, three whole-target readings:
//!
//! - `queue_depth`: records waiting in front of the stage (including those a worker has taken
//!   but not started);
//! - `in_flight`: records being handled;
//! - `busy`: the share of the workers' time spent in the handler since the previous sample,
//!   `Δbusy ÷ (Δt × workers)`, in `0..=1`. The first sample has no interval, so no `busy`
//!   reading (engines treat it as missing for that round).
//!
//! An HPA on `busy` with a `Value` target works like Kubernetes' CPU utilisation: desired =
//! ⌈busy ÷ target × workers⌉.
//!
//! ```no_run
//! use std::time::Duration;
//! use harvester_pipeline::processor::{StageOutcome, Stage, StreamProcessor};
//! use harvester_pipeline::sinks::MemorySink;
//! use harvester_scaler::{Driver, DriverConfig, Hpa, HpaConfig, MetricSpec, StageMetrics, StageWorkers};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let processor = StreamProcessor::builder()
//!     .stage(Stage::new("enrich", |n: u64| async move { StageOutcome::Keep(n) }))
//!     .sink(MemorySink::new("out"))
//!     .build()?;
//! let control = processor.stage_control("enrich")?;
//! let hpa = Hpa::new(HpaConfig { max_replicas: 16, ..HpaConfig::new([MetricSpec::value("busy", 0.7)]) })?;
//! let driver = Driver::spawn(DriverConfig::default(), hpa, StageMetrics::new(control.clone()), StageWorkers::new(control))?;
//! # drop(driver);
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use harvester_pipeline::processor::StageControl;

use crate::actuator::Actuator;
use crate::driver::MetricSource;
use crate::error::{ActuatorError, SourceError};
use crate::sample::Sample;
use crate::time::Timestamp;

/// No worker count set through the actuator yet.
const UNSET: usize = usize::MAX;

/// Sets a stage's workers; clones share the count they set.
///
/// It reports the count it last set (Kubernetes' *spec* replicas) rather than the live
/// workers, which include surplus workers still finishing their run after a scale-down;
/// before its first change it reports the live workers.
///
/// Zero workers is refused: a stage with no worker would never drain its queue. Keep the
/// engine's `min_replicas` at 1 or more (an [`HpaConfig`](crate::HpaConfig) accepts 0 when it
/// has a whole-target metric, and would then ask for 0 on an idle stage). A 0 asked for anyway
/// fails with an [`ActuatorError`], which the [`Driver`](crate::Driver) records as
/// [`RoundOutcome::ActuatorFailed`](crate::RoundOutcome::ActuatorFailed); the workers stay as they are.
#[derive(Debug, Clone)]
pub struct StageWorkers {
    control: StageControl,
    set: Arc<AtomicUsize>,
}

impl StageWorkers {
    /// An actuator for the stage `control` controls.
    pub fn new(control: StageControl) -> Self {
        StageWorkers { control, set: Arc::new(AtomicUsize::new(UNSET)) }
    }

    /// The stage's control.
    pub fn control(&self) -> &StageControl {
        &self.control
    }

    fn error(&self, reason: impl std::fmt::Display) -> ActuatorError {
        ActuatorError::new(self.control.name(), reason.to_string())
    }
}

#[async_trait]
impl Actuator for StageWorkers {
    async fn current(&self) -> Result<u32, ActuatorError> {
        let workers = match self.set.load(Ordering::Acquire) {
            UNSET => self.control.workers().map_err(|e| self.error(e))?,
            set => set,
        };
        Ok(u32::try_from(workers).unwrap_or(u32::MAX))
    }

    /// Zero is refused (a stage needs a worker): keep `min_replicas` at 1 or more.
    async fn apply(&self, replicas: u32) -> Result<(), ActuatorError> {
        let workers = usize::try_from(replicas).map_err(|e| self.error(e))?;
        self.control.set_workers(workers).map_err(|e| self.error(e))?;
        self.set.store(workers, Ordering::Release);
        Ok(())
    }
}

/// Reads a stage's queue depth, in-flight records and recent busy share.
#[derive(Debug, Clone)]
pub struct StageMetrics {
    control: StageControl,
    previous: Option<(Timestamp, Duration)>,
}

impl StageMetrics {
    /// Metrics of the stage `control` controls.
    pub fn new(control: StageControl) -> Self {
        StageMetrics { control, previous: None }
    }

    /// The name of the `busy` reading.
    pub const BUSY: &'static str = "busy";
    /// The name of the `queue_depth` reading.
    pub const QUEUE_DEPTH: &'static str = "queue_depth";
    /// The name of the `in_flight` reading.
    pub const IN_FLIGHT: &'static str = "in_flight";
}

#[async_trait]
impl MetricSource for StageMetrics {
    async fn sample(&mut self, replicas: u32, now: Timestamp) -> Result<Sample, SourceError> {
        let snapshot = self.control.snapshot().map_err(|e| SourceError::new(self.control.name(), e.to_string()))?;
        let mut sample = Sample::new(replicas)
            .with_value(Self::QUEUE_DEPTH, snapshot.queue_depth as f64)
            .with_value(Self::IN_FLIGHT, snapshot.in_flight as f64);
        if let Some((then, busy_then)) = self.previous {
            let elapsed = now.saturating_since(then).as_secs_f64() * snapshot.workers.max(1) as f64;
            if elapsed > 0.0 {
                let busy = snapshot.busy.saturating_sub(busy_then).as_secs_f64();
                sample = sample.with_value(Self::BUSY, (busy / elapsed).clamp(0.0, 1.0));
            }
        }
        self.previous = Some((now, snapshot.busy));
        Ok(sample)
    }
}
