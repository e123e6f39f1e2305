//! The staged stream processor: records of one type pass named stages in order, each run by
//! a pool of workers, through bounded queues, into a batching [`Sink`]; failures end in a
//! dead-letter sink, and shutdown accounts for every record.
//!
//! ```
//! use std::time::Duration;
//! use async_trait::async_trait;
//! use harvester_pipeline::processor::{ErrorPolicy, StageOutcome, Stage, StreamProcessor};
//! use harvester_pipeline::{Sink, SinkError};
//!
//! struct Print;
//! #[async_trait]
//! impl Sink<u32> for Print {
//!     fn name(&self) -> &str { "print" }
//!     async fn write(&self, batch: &[u32]) -> Result<(), SinkError> { println!("{batch:?}"); Ok(()) }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let processor = StreamProcessor::builder()
//!     .stage(Stage::new("validate", |n: u32| async move { if n % 2 == 0 { StageOutcome::Keep(n) } else { StageOutcome::Drop } }).workers(2))
//!     .stage(
//!         Stage::new("double", |n: u32| async move { StageOutcome::Keep(n * 2) })
//!             .timeout(Duration::from_secs(1))
//!             .on_error(ErrorPolicy::Retry { max_attempts: 3, base_delay: Duration::from_millis(10) }),
//!     )
//!     .queue_size(1_000)
//!     .sink(Print)
//!     .build()?;
//! let sender = processor.sender();
//! for n in 0..10 {
//!     sender.send(n).await?;
//! }
//! let report = processor.shutdown(Duration::from_secs(5)).await;
//! assert_eq!((report.received, report.output, report.dropped), (10, 5, 5));
//! # Ok(())
//! # }
//! ```
//!
//! # How records move
//!
//! - **Backpressure.** Every queue holds at most `queue_size` records; [`Sender::send`] waits
//!   for room in the first. Without ordered mode the processor holds at most
//!   `(stages + 1) × queue_size + Σ workers × run + max(batch_size, run)` records in its
//!   stages, where `run = queue_size / 4` within 1 to 256: a queue per stage and one before the sink, a
//!   run per worker, and what the sink task is writing (plus, for failures, the dead-letter
//!   queue of `queue_size` and its batch). In ordered mode records that finished early wait
//!   for earlier ones outside the queues: the ordered window bounds them instead.
//! - **Micro-batching.** A worker takes a run of up to a quarter of its queue (at most 256
//!   records) with one queue operation and passes the records it kept on as one chunk, so a
//!   busy pipeline pays per run, not per record, for its queues, and a queue of four records
//!   or more holds at least four runs, so a stage can fill one while the next takes another.
//!   Handlers that finish at once run back to back, every eight records spending a unit of
//!   tokio's task budget (128 a poll), so a busy worker yields to the runtime's other tasks
//!   as a task reading a channel does; a handler that computes for long still holds its
//!   thread while it runs: give such work its own (`tokio::task::spawn_blocking`). Nothing waits for a run to fill (an idle
//!   pipeline moves runs of one), and whenever a handler has to wait (I/O, a timer, a
//!   retry's backoff) the records kept before it are passed on first. Handlers still see one record at a time, with the same outcomes,
//!   timeouts and retries. [`Sender::send_all`] (and `feed`, which sends what its stream has
//!   ready) put records in as chunks too.
//! - **Ordered mode** ([`StreamProcessorBuilder::ordered`]). Records reach the sink in the
//!   order they were sent, whatever the parallelism; dropped and dead-lettered records leave
//!   no hole. A window bounds how far the input may run ahead of a slow record.
//! - **One record type.** Stages map `T` to `T`. A pipeline whose records change shape uses
//!   a type that can hold every shape (an enum, or a record with a JSON payload like
//!   [`DataRecord`](crate::record::DataRecord)); that keeps one dead-letter sink able to hold
//!   a record that failed in any stage.
//!
//! Records must be `Send + Sync + 'static` (the sink borrows a batch across an await).
//! `T` needs `Clone` only for stages with a [`Stage::timeout`]: a handler cancelled by its
//! timeout cannot hand the record back, so it is copied before each timed attempt. Retries
//! without a timeout use the record returned in [`StageOutcome::Error`].

mod builder;
mod control;
mod limits;
mod metrics;
mod order;
mod output;
mod queue;
mod report;
mod sender;
mod shutdown;
mod stage;

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::{Stream, StreamExt};
use thiserror::Error;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use builder::StreamProcessorBuilder;
pub use control::StageControl;
pub use limits::{
    BuildError, LONGEST_WAIT, MAX_ATTEMPTS, MAX_BATCH_SIZE, MAX_ORDERED_WINDOW, MAX_QUEUE_SIZE, MAX_WORKERS,
};
pub use metrics::{ProcessorMetrics, StageSnapshot};
pub use output::SinkRetry;
pub use report::Report;
pub use sender::{SendError, Sender};
pub use stage::{ErrorPolicy, Stage, StageOutcome};

use self::metrics::{StageMetrics, TotalCounters};
use self::order::{Reorder, Sequencer};
use self::output::SinkInput;
use self::queue::{InputQueue, QueueGauge, run_length};
use self::stage::{StageRuntime, WorkerOutputs};
use crate::sink::Sink;

/// What [`StreamProcessor::feed`] does with a record when the first queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Wait for room (backpressure on the stream).
    #[default]
    Block,
    /// Drop the new record and count it as rejected.
    DropNewest,
}

/// Why a run-time change was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProcessorError {
    /// No stage has that name.
    #[error("no stage named {0:?}")]
    UnknownStage(String),
    /// A stage's workers must be in 1..=[`MAX_WORKERS`].
    #[error("stage {stage:?}: {workers} workers is out of range (1..=100000)")]
    WorkersOutOfRange {
        /// The stage's name.
        stage: String,
        /// The count asked for.
        workers: usize,
    },
    /// The processor was shut down or dropped.
    #[error("stage {0:?}: the processor has stopped")]
    Stopped(String),
}

fn lock<G>(mutex: &Mutex<G>) -> MutexGuard<'_, G> {
    // The guarded values are plain handles; a panic elsewhere cannot leave them half-updated.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One stage as the processor runs it.
struct StageSlot<T> {
    runtime: Arc<StageRuntime<T>>,
    target: Arc<AtomicUsize>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    /// Observes the stage's queue depth without keeping the queue open.
    queue: QueueGauge,
    /// Handed to new workers; dropped at shutdown so the next queue can close.
    outputs: Mutex<Option<WorkerOutputs<T>>>,
    started: Instant,
}

/// A running staged stream processor. See the [module documentation](self).
///
/// Dropping it aborts every task at once (records in flight are lost); call
/// [`shutdown`](Self::shutdown) to drain.
#[must_use = "dropping the processor aborts its tasks at once; keep it and call shutdown to drain"]
pub struct StreamProcessor<T: Send + Sync + 'static> {
    stages: Vec<Arc<StageSlot<T>>>,
    input: Arc<InputQueue<T>>,
    sequencer: Option<Arc<Sequencer>>,
    run_length: usize,
    totals: Arc<TotalCounters>,
    sink_task: Mutex<Option<JoinHandle<()>>>,
    dead_letter_task: Mutex<Option<JoinHandle<()>>>,
    feeds: Mutex<Vec<JoinHandle<()>>>,
    /// Refreshes the facade's gauges every second.
    gauges: JoinHandle<()>,
    overflow: Overflow,
    started: Instant,
}

impl<T: Send + Sync + 'static> StreamProcessor<T> {
    /// Starts a builder.
    pub fn builder() -> StreamProcessorBuilder<T> {
        StreamProcessorBuilder::default()
    }

    fn start(config: StreamProcessorBuilder<T>, sink: Arc<dyn Sink<T>>, ordered: Option<usize>) -> Self {
        let started = harvester_core::time::now();
        // A chunk must fit the ordered window too, or its sender could never be admitted.
        let run_length = run_length(config.queue_size).min(ordered.unwrap_or(usize::MAX));
        let totals = Arc::new(TotalCounters::new(sink.name()));
        let (dl_tx, dl_rx) = mpsc::channel(config.queue_size);
        let dead_letter_task = tokio::spawn(output::run_dead_letters(
            config.dead_letter,
            dl_rx,
            config.batch_size,
            config.sink_retry,
            totals.clone(),
        ));
        let (out_tx, out_rx, _) = queue::queue(config.queue_size);
        let mut input_window = None;
        let (sequencer, gaps_tx, order) = match ordered {
            Some(window) => {
                let (sequencer, window) = Sequencer::new(window);
                input_window = Some(window.clone());
                let (gaps_tx, gaps_rx) = mpsc::unbounded_channel();
                (Some(sequencer), Some(gaps_tx), Some((Reorder::new(window), gaps_rx)))
            }
            None => (None, None, None),
        };
        let sink_task = tokio::spawn(output::run_sink(
            sink,
            SinkInput { queue: out_rx, order },
            dl_tx.clone(),
            config.batch_size,
            config.sink_retry,
            totals.clone(),
        ));
        // Built from the last stage back, so each stage knows the queue after it.
        let mut next = out_tx;
        let mut stages = Vec::with_capacity(config.stages.len());
        for stage in config.stages.into_iter().rev() {
            let (tx, rx, gauge) = queue::queue(config.queue_size);
            let runtime = Arc::new(StageRuntime {
                metrics: Arc::new(StageMetrics::new(&stage.name)),
                name: stage.name,
                timeout: stage.timeout,
                backup: stage.backup,
                policy: stage.policy,
                worker: stage.worker,
                input: Arc::new(tokio::sync::Mutex::new(rx)),
                retire: tokio::sync::Notify::new(),
                run_length,
            });
            let slot = Arc::new(StageSlot {
                runtime,
                target: Arc::new(AtomicUsize::new(0)),
                workers: Mutex::new(Vec::new()),
                queue: gauge,
                outputs: Mutex::new(Some(WorkerOutputs { next, dead_letters: dl_tx.clone(), gaps: gaps_tx.clone() })),
                started,
            });
            slot.scale_to(stage.workers);
            stages.push(slot);
            next = tx;
        }
        stages.reverse();
        let gauges = tokio::spawn(refresh_gauges(stages.iter().map(|slot| StageControl::new(slot.clone())).collect()));
        StreamProcessor {
            gauges,
            stages,
            input: Arc::new(InputQueue::new(next, input_window)),
            sequencer,
            run_length,
            totals,
            sink_task: Mutex::new(Some(sink_task)),
            dead_letter_task: Mutex::new(Some(dead_letter_task)),
            feeds: Mutex::new(Vec::new()),
            overflow: config.overflow,
            started,
        }
    }

    /// A cloneable handle that puts records into the first stage's queue.
    pub fn sender(&self) -> Sender<T> {
        Sender::new(self.input.clone(), self.totals.clone(), self.sequencer.clone(), self.run_length)
    }

    /// Spawns a task that sends every item of `stream`, waiting or dropping when the first queue
    /// is full as [`Overflow`] says. The task stops when the stream ends or at shutdown.
    pub fn feed<S>(&self, stream: S)
    where
        S: Stream<Item = T> + Send + 'static,
    {
        let sender = self.sender();
        let overflow = self.overflow;
        let run_length = self.run_length;
        let task = tokio::spawn(async move {
            // What the stream has ready is sent as one chunk; nothing waits for a chunk to fill.
            let mut chunks = std::pin::pin!(stream.ready_chunks(run_length));
            while let Some(records) = chunks.next().await {
                let open = match overflow {
                    Overflow::Block => sender.send_all(records).await.is_ok(),
                    Overflow::DropNewest => {
                        records.into_iter().all(|record| !matches!(sender.try_send(record), Err(SendError::Closed(_))))
                    }
                };
                if !open {
                    break;
                }
            }
        });
        let mut feeds = lock(&self.feeds);
        feeds.retain(|feed| !feed.is_finished());
        feeds.push(task);
    }

    /// Sends every item of `stream` (waiting for room), then shuts down within `deadline`.
    pub async fn run_stream<S>(self, stream: S, deadline: std::time::Duration) -> Report
    where
        S: Stream<Item = T> + Send,
    {
        let sender = self.sender();
        let mut chunks = std::pin::pin!(stream.ready_chunks(self.run_length));
        while let Some(records) = chunks.next().await {
            if sender.send_all(records).await.is_err() {
                break;
            }
        }
        drop(sender);
        self.shutdown(deadline).await
    }

    /// Sets the number of workers of stage `stage`: new workers start at once; surplus
    /// workers retire at once when idle, else after the run of records they hold (none is
    /// lost).
    pub fn set_workers(&self, stage: &str, workers: usize) -> Result<(), ProcessorError> {
        self.stage_control(stage)?.set_workers(workers)
    }

    /// A handle on stage `stage` that can read its metrics and set its workers while the
    /// processor runs; what a scaler needs. It does not keep the processor alive.
    pub fn stage_control(&self, stage: &str) -> Result<StageControl, ProcessorError> {
        let slot = self
            .stages
            .iter()
            .find(|slot| slot.runtime.name == stage)
            .ok_or_else(|| ProcessorError::UnknownStage(stage.to_owned()))?;
        Ok(StageControl::new(slot.clone()))
    }

    /// Counters of every stage and of the whole processor, now.
    pub fn metrics(&self) -> ProcessorMetrics {
        let uptime = harvester_core::time::since(self.started);
        let stages: Vec<StageSnapshot> = self
            .stages
            .iter()
            .map(|slot| slot.runtime.metrics.snapshot(&slot.runtime.name, slot.queue.depth(), uptime))
            .collect();
        let dropped = stages.iter().map(|s| s.dropped).sum();
        let sink = self.totals.sink.snapshot();
        let stage_dead = stages.iter().map(|s| s.dead_lettered).sum::<u64>();
        ProcessorMetrics {
            received: self.totals.received.load(Relaxed),
            output: sink.written,
            dropped,
            dead_lettered: stage_dead + sink.dead_lettered,
            rejected: self.totals.rejected.load(Relaxed),
            dead_letters_lost: self.totals.dead_letters_lost.load(Relaxed),
            sink,
            stages,
        }
    }
}

/// Takes a snapshot of every stage each second, which sets the facade's gauges (queue depth,
/// in flight) without a gauge update per record. Ends when the processor is gone.
async fn refresh_gauges(stages: Vec<StageControl>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if stages.iter().any(|stage| stage.snapshot().is_err()) {
            return;
        }
    }
}

impl<T: Send + Sync + 'static> StageSlot<T> {
    /// Sets the target and starts the missing workers; surplus workers retire on their own.
    fn scale_to(&self, target: usize) {
        let outputs = lock(&self.outputs);
        let Some(outputs) = outputs.as_ref() else { return };
        // Held while counting and spawning, so two concurrent calls cannot both fill the gap.
        let mut workers = lock(&self.workers);
        self.target.store(target, Relaxed);
        let live = self.runtime.metrics.workers.load(Relaxed);
        let missing = target.saturating_sub(live);
        workers.retain(|worker| !worker.is_finished());
        self.runtime.metrics.add_workers(missing);
        if live > target {
            self.runtime.retire.notify_waiters();
        }
        for _ in 0..missing {
            let outputs = WorkerOutputs {
                next: outputs.next.clone(),
                dead_letters: outputs.dead_letters.clone(),
                gaps: outputs.gaps.clone(),
            };
            workers.push(tokio::spawn((self.runtime.worker)(self.runtime.clone(), outputs, self.target.clone())));
        }
    }
}
