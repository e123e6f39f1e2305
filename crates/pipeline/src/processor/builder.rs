//! Assembling a [`StreamProcessor`]: stages in order, queue size, sinks; `build` refuses a bad
//! configuration with the field named.

use std::collections::HashSet;
use std::sync::Arc;

use super::limits::{
    BuildError, LONGEST_WAIT, MAX_ATTEMPTS, MAX_BATCH_SIZE, MAX_ORDERED_WINDOW, MAX_QUEUE_SIZE, check,
};
use super::output::SinkRetry;
use super::stage::Stage;
use super::{Overflow, StreamProcessor};
use crate::sink::{DeadLetter, Sink};

/// Builds a [`StreamProcessor`]; start with [`StreamProcessor::builder`].
#[must_use = "a builder does nothing until it is built"]
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
    ///
    /// Ranges: `queue_size` 1..=[`MAX_QUEUE_SIZE`], `batch_size` 1..=[`MAX_BATCH_SIZE`],
    /// `ordered_window` 1..=[`MAX_ORDERED_WINDOW`], a stage's workers 1..=[`MAX_WORKERS`](super::MAX_WORKERS),
    /// attempts (of a stage's retry policy or of the sink's) 1..=[`MAX_ATTEMPTS`],
    /// timeouts more than zero and, like backoffs, at most [`LONGEST_WAIT`] (a day).
    pub fn build(self) -> Result<StreamProcessor<T>, BuildError> {
        if self.stages.is_empty() {
            return Err(BuildError::NoStages);
        }
        let mut names = HashSet::new();
        for stage in &self.stages {
            if !names.insert(stage.name.as_str()) {
                return Err(BuildError::DuplicateStage { stage: stage.name.clone() });
            }
            stage.validate()?;
        }
        check((1..=MAX_QUEUE_SIZE).contains(&self.queue_size), "queue_size", self.queue_size, "1..=16777216")?;
        check((1..=MAX_BATCH_SIZE).contains(&self.batch_size), "batch_size", self.batch_size, "1..=1000000")?;
        let retry = self.sink_retry;
        check(
            (1..=MAX_ATTEMPTS).contains(&retry.max_attempts),
            "sink_retry.max_attempts",
            retry.max_attempts,
            "1..=1000",
        )?;
        check(retry.base_delay <= LONGEST_WAIT, "sink_retry.base_delay", retry.base_delay, "at most a day")?;
        let ordered = match self.ordered {
            None => None,
            Some(None) => Some(self.queue_size.saturating_mul(self.stages.len() + 1).min(MAX_ORDERED_WINDOW)),
            Some(Some(window)) => {
                check((1..=MAX_ORDERED_WINDOW).contains(&window), "ordered_window", window, "1..=1073741824")?;
                Some(window)
            }
        };
        let Some(sink) = self.sink.clone() else {
            return Err(BuildError::NoSink);
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(BuildError::NoRuntime);
        }
        Ok(StreamProcessor::start(self, sink, ordered))
    }
}
