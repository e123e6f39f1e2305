//! Assembling a [`StreamProcessor`]: stages in order, queue size, sinks; `build` refuses a bad
//! configuration with the field named.

use std::collections::HashSet;
use std::sync::Arc;

use thiserror::Error;

use super::output::SinkRetry;
use super::stage::Stage;
use super::{Overflow, StreamProcessor};
use crate::sink::{DeadLetter, Sink};

/// Why [`StreamProcessorBuilder::build`] refused the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// No stage was added.
    #[error("stages: add at least one stage")]
    NoStages,
    /// A stage has zero workers.
    #[error("stage {stage:?}: workers must be at least 1")]
    ZeroWorkers {
        /// The stage's name.
        stage: String,
    },
    /// Two stages share a name (names address stages in `set_workers` and metrics).
    #[error("stage {stage:?}: name used twice")]
    DuplicateStage {
        /// The repeated name.
        stage: String,
    },
    /// `queue_size` is zero.
    #[error("queue_size: must be at least 1")]
    ZeroQueueSize,
    /// `batch_size` is zero.
    #[error("batch_size: must be at least 1")]
    ZeroBatchSize,
    /// `sink_retry.max_attempts` is zero.
    #[error("sink_retry.max_attempts: must be at least 1")]
    ZeroSinkAttempts,
    /// `ordered_window` is zero.
    #[error("ordered_window: must be at least 1")]
    ZeroOrderedWindow,
    /// `ordered_window` is larger than a semaphore can count.
    #[error("ordered_window: must be at most {max}")]
    OrderedWindowTooLarge {
        /// The largest window.
        max: usize,
    },
    /// `queue_size` is larger than a semaphore can count.
    #[error("queue_size: must be at most {max}")]
    QueueSizeTooLarge {
        /// The largest queue.
        max: usize,
    },
    /// No sink was given.
    #[error("sink: a sink is required")]
    NoSink,
    /// `build` was called outside a tokio runtime, so there is nowhere to run the workers.
    #[error("build must be called inside a tokio runtime")]
    NoRuntime,
}

/// Builds a [`StreamProcessor`]; start with [`StreamProcessor::builder`].
pub struct StreamProcessorBuilder<T: Send + Sync + 'static> {
    pub(crate) stages: Vec<Stage<T>>,
    pub(crate) queue_size: usize,
    pub(crate) batch_size: usize,
    pub(crate) sink_retry: SinkRetry,
    pub(crate) overflow: Overflow,
    /// Ordered mode: `Some(None)` for the default window.
    pub(crate) ordered: Option<Option<usize>>,
    pub(crate) sink: Option<Arc<dyn Sink<T>>>,
    pub(crate) dead_letter: Option<Arc<dyn Sink<DeadLetter<T>>>>,
}

impl<T: Send + Sync + 'static> Default for StreamProcessorBuilder<T> {
    fn default() -> Self {
        StreamProcessorBuilder {
            stages: Vec::new(),
            queue_size: 10_000,
            batch_size: 1_000,
            sink_retry: SinkRetry::default(),
            overflow: Overflow::Block,
            ordered: None,
            sink: None,
            dead_letter: None,
        }
    }
}

impl<T: Send + Sync + 'static> StreamProcessorBuilder<T> {
    /// Appends a stage; records pass the stages in the order they were added.
    pub fn stage(mut self, stage: Stage<T>) -> Self {
        self.stages.push(stage);
        self
    }

    /// Capacity of each queue: in front of every stage, in front of the sink and of the
    /// dead-letter sink. Default 10 000 (the seed's).
    pub fn queue_size(mut self, queue_size: usize) -> Self {
        self.queue_size = queue_size;
        self
    }

    /// Most records written to a sink at once. Default 1 000.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// How a failing sink write is retried before its records are dead-lettered.
    pub fn sink_retry(mut self, retry: SinkRetry) -> Self {
        self.sink_retry = retry;
        self
    }

    /// What [`StreamProcessor::feed`] does when the first queue is full. Default: wait.
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// Ordered mode: records reach the sink in the order they were sent, whatever the stages'
    /// parallelism (records dropped or dead-lettered on the way leave no hole). Records that
    /// finish early wait for earlier ones; to bound that wait's memory, at most
    /// `queue_size × (stages + 1)` records may be between the input and the sink, and the
    /// input waits (or, with [`Overflow::DropNewest`], rejects) beyond that. See
    /// [`ordered_window`](Self::ordered_window) to choose another bound.
    pub fn ordered(mut self) -> Self {
        self.ordered = Some(None);
        self
    }

    /// Ordered mode with at most `window` records between the input and the sink.
    pub fn ordered_window(mut self, window: usize) -> Self {
        self.ordered = Some(Some(window));
        self
    }

    /// Where records that pass every stage go.
    pub fn sink(mut self, sink: impl Sink<T>) -> Self {
        self.sink = Some(Arc::new(sink));
        self
    }

    /// Where failed records go. Without one, dead letters are counted and logged.
    pub fn dead_letter(mut self, sink: impl Sink<DeadLetter<T>>) -> Self {
        self.dead_letter = Some(Arc::new(sink));
        self
    }

    /// Checks the configuration and starts the workers (inside the current tokio runtime).
    pub fn build(self) -> Result<StreamProcessor<T>, ConfigError> {
        if self.stages.is_empty() {
            return Err(ConfigError::NoStages);
        }
        let mut names = HashSet::new();
        for stage in &self.stages {
            if stage.workers == 0 {
                return Err(ConfigError::ZeroWorkers { stage: stage.name.clone() });
            }
            if !names.insert(stage.name.as_str()) {
                return Err(ConfigError::DuplicateStage { stage: stage.name.clone() });
            }
        }
        if self.queue_size == 0 {
            return Err(ConfigError::ZeroQueueSize);
        }
        if self.batch_size == 0 {
            return Err(ConfigError::ZeroBatchSize);
        }
        let max_window = tokio::sync::Semaphore::MAX_PERMITS;
        let ordered = match self.ordered {
            None => None,
            Some(None) => Some(self.queue_size.saturating_mul(self.stages.len() + 1).min(max_window)),
            Some(Some(0)) => return Err(ConfigError::ZeroOrderedWindow),
            Some(Some(window)) if window > max_window => {
                return Err(ConfigError::OrderedWindowTooLarge { max: max_window });
            }
            Some(Some(window)) => Some(window),
        };
        if self.queue_size > max_window {
            return Err(ConfigError::QueueSizeTooLarge { max: max_window });
        }
        if self.sink_retry.max_attempts == 0 {
            return Err(ConfigError::ZeroSinkAttempts);
        }
        let Some(sink) = self.sink.clone() else {
            return Err(ConfigError::NoSink);
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ConfigError::NoRuntime);
        }
        Ok(StreamProcessor::start(self, sink, ordered))
    }
}
