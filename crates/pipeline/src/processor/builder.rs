//! Assembling a [`StreamProcessor`]: stages in order, queue size, sinks; `build` refuses a bad
//! configuration with the field named.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use super::output::SinkRetry;
use super::stage::Stage;
use super::{Overflow, StreamProcessor};
use crate::sink::{DeadLetter, Sink};

/// The most workers one stage may run.
pub const MAX_WORKERS: usize = 100_000;
/// The largest queue in front of a stage or a sink.
pub const MAX_QUEUE_SIZE: usize = 1 << 24;
/// The largest batch written to a sink at once (a batch's buffer is allocated up front).
pub const MAX_BATCH_SIZE: usize = 1_000_000;
/// The largest ordered window.
pub const MAX_ORDERED_WINDOW: usize = 1 << 30;
/// The most attempts of a stage's or a sink's retry policy.
pub const MAX_ATTEMPTS: u32 = 1_000;
/// The longest timeout or retry backoff.
pub const LONGEST_WAIT: Duration = Duration::from_secs(86_400);

/// Why [`StreamProcessorBuilder::build`] refused to build: no stage or sink, a stage name
/// used twice, a number out of range, no runtime.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BuildError {
    /// No stage was added.
    #[error("stages: add at least one stage")]
    NoStages,
    /// Two stages share a name (names address stages in `set_workers` and metrics).
    #[error("stage {stage:?}: name used twice")]
    DuplicateStage {
        /// The repeated name.
        stage: String,
    },
    /// A number outside its documented range: `queue_size`, `batch_size`,
    /// `ordered_window`, `sink_retry.*`, or a stage's `workers`, `timeout` or retry policy.
    #[error("{field}: {value} is out of range ({allowed})")]
    OutOfRange {
        /// The setting, e.g. `batch_size` or `stage "fetch": workers`.
        field: String,
        /// The value given.
        value: String,
        /// The range it must be in.
        allowed: &'static str,
    },
    /// No sink was given.
    #[error("sink: a sink is required")]
    NoSink,
    /// `build` was called outside a tokio runtime, so there is nowhere to run the workers.
    #[error("build must be called inside a tokio runtime")]
    NoRuntime,
}

impl BuildError {
    /// The setting that was refused, when the error is about one number.
    pub fn field(&self) -> Option<&str> {
        match self {
            BuildError::OutOfRange { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// Refuses `value` unless `ok`, naming `field`.
pub(crate) fn check<V: fmt::Debug>(
    ok: bool,
    field: impl Into<String>,
    value: V,
    allowed: &'static str,
) -> Result<(), BuildError> {
    if ok { Ok(()) } else { Err(BuildError::OutOfRange { field: field.into(), value: format!("{value:?}"), allowed }) }
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
    ///
    /// Ranges: `queue_size` 1..=[`MAX_QUEUE_SIZE`], `batch_size` 1..=[`MAX_BATCH_SIZE`],
    /// `ordered_window` 1..=[`MAX_ORDERED_WINDOW`], a stage's workers 1..=[`MAX_WORKERS`],
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
        check(retry.backoff <= LONGEST_WAIT, "sink_retry.backoff", retry.backoff, "at most a day")?;
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
