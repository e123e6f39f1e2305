//! [`StageControl`]: a handle on one running stage for whoever sets its workers (a scaler).

use std::sync::{Arc, Weak};

use super::{MAX_WORKERS, ProcessorError, StageSlot, StageSnapshot};

/// The stage as a scaler sees it: metrics, and a worker count to set.
trait ControlledStage: Send + Sync {
    fn set_workers(&self, workers: usize);
    fn snapshot(&self) -> StageSnapshot;
}

impl<T: Send + Sync + 'static> ControlledStage for StageSlot<T> {
    fn set_workers(&self, workers: usize) {
        self.scale_to(workers);
    }

    fn snapshot(&self) -> StageSnapshot {
        self.runtime.metrics.snapshot(&self.runtime.name, self.queue.depth(), self.started.elapsed())
    }
}

/// A handle on one stage of a running [`StreamProcessor`](super::StreamProcessor), from
/// [`stage_control`](super::StreamProcessor::stage_control): reads the stage's metrics and
/// sets its workers. Cheap to clone, not generic over the record type, and it does not keep
/// the processor alive: once the processor is shut down or dropped, calls fail with
/// [`ProcessorError::Stopped`].
#[derive(Clone)]
pub struct StageControl {
    name: Arc<str>,
    stage: Weak<dyn ControlledStage>,
}

impl std::fmt::Debug for StageControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageControl").field("stage", &self.name).finish_non_exhaustive()
    }
}

impl StageControl {
    pub(super) fn new<T: Send + Sync + 'static>(slot: Arc<StageSlot<T>>) -> Self {
        let name: Arc<str> = Arc::from(slot.runtime.name.as_str());
        let slot: Arc<dyn ControlledStage> = slot;
        StageControl { name, stage: Arc::downgrade(&slot) }
    }

    /// The stage's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn stage(&self) -> Result<Arc<dyn ControlledStage>, ProcessorError> {
        self.stage.upgrade().ok_or_else(|| ProcessorError::Stopped(self.name.to_string()))
    }

    /// Sets the stage's workers: new workers start at once, surplus workers retire after the
    /// run of records they hold (none is lost).
    pub fn set_workers(&self, workers: usize) -> Result<(), ProcessorError> {
        if !(1..=MAX_WORKERS).contains(&workers) {
            return Err(ProcessorError::WorkersOutOfRange { stage: self.name.to_string(), workers });
        }
        self.stage()?.set_workers(workers);
        Ok(())
    }

    /// Live workers now (retiring workers count until they finish their run).
    pub fn workers(&self) -> Result<usize, ProcessorError> {
        Ok(self.stage()?.snapshot().workers)
    }

    /// The stage's counters now; [`StageSnapshot::busy`] over time gives its recent load.
    pub fn snapshot(&self) -> Result<StageSnapshot, ProcessorError> {
        Ok(self.stage()?.snapshot())
    }
}
