//! A stage: a named async handler run by a pool of workers, with a per-record timeout and a
//! policy for records that fail.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use tokio::sync::{Mutex, mpsc};

use super::limits::{BuildError, LONGEST_WAIT, MAX_ATTEMPTS, MAX_WORKERS, check};
use super::metrics::{Event, StageMetrics, WorkerTally};
use super::queue::{Chunk, Entry, QueueReceiver, QueueSender};
use crate::sink::DeadLetter;

/// What a handler decided about one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageOutcome<T> {
    /// Pass the (possibly changed) record on to the next stage.
    Keep(T),
    /// Discard the record on purpose (counted as dropped).
    Drop,
    /// The record failed; it comes back so the stage can retry or dead-letter it.
    Error(T, String),
}

/// What a stage does with a record whose handler returned [`StageOutcome::Error`] or timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorPolicy {
    /// Run the handler again, up to `max_attempts` attempts in all, waiting `base_delay`, then
    /// twice that, and so on between attempts; dead-letter the record when attempts run out.
    Retry {
        /// Attempts in all, the first included (1 means no retry).
        max_attempts: u32,
        /// Wait before the second attempt; doubled before each further one.
        base_delay: Duration,
    },
    /// Send the record to the dead-letter sink at once.
    DeadLetter,
    /// Discard the record (counted as dropped).
    Drop,
}

/// Starts one worker of a stage. Made by [`Stage::new`], where the handler's type is known:
/// the worker's loop is compiled for that handler, so each record's future lives inside
/// the worker's own future instead of in an allocation of its own.
pub(crate) type WorkerFn<T> = Arc<
    dyn Fn(Arc<StageRuntime<T>>, WorkerOutputs<T>, Arc<std::sync::atomic::AtomicUsize>) -> BoxFuture<'static, ()>
        + Send
        + Sync,
>;

/// One step of the pipeline: a name, an async handler, its workers, a timeout and an error policy.
///
/// The default is one worker, no timeout and [`ErrorPolicy::DeadLetter`].
pub struct Stage<T> {
    pub(crate) name: String,
    pub(crate) workers: usize,
    pub(crate) timeout: Option<Duration>,
    /// Copies the record before a timed attempt, so a timed-out record can still be retried
    /// or dead-lettered. Set only by [`Stage::timeout`], which is why only that needs `T: Clone`.
    pub(crate) backup: Option<fn(&T) -> T>,
    pub(crate) policy: ErrorPolicy,
    pub(crate) worker: WorkerFn<T>,
}

impl<T> fmt::Debug for Stage<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stage")
            .field("name", &self.name)
            .field("workers", &self.workers)
            .field("timeout", &self.timeout)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Stage<T> {
    /// A stage named `name` running `handler` on each record.
    pub fn new<F, Fut>(name: impl Into<String>, handler: F) -> Self
    where
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = StageOutcome<T>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        Stage {
            name: name.into(),
            workers: 1,
            timeout: None,
            backup: None,
            policy: ErrorPolicy::DeadLetter,
            worker: Arc::new(move |stage, outputs, target| {
                Box::pin(run_worker(stage, outputs, target, handler.clone()))
            }),
        }
    }

    /// How many records the stage handles at once (1 to 100 000; checked by `build`).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// What to do with a record that fails.
    pub fn on_error(mut self, policy: ErrorPolicy) -> Self {
        self.policy = policy;
        self
    }
}

impl<T: Clone + Send + 'static> Stage<T> {
    /// Gives each attempt at most `limit`; an attempt that runs longer is cancelled and counts
    /// as an error "timed out after …". Needs `T: Clone`: the record is copied before each
    /// attempt because a cancelled handler cannot give it back.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self.backup = Some(T::clone);
        self
    }
}

impl<T> Stage<T> {
    /// Refuses settings outside their ranges (see [`StreamProcessorBuilder::build`]).
    ///
    /// [`StreamProcessorBuilder::build`]: super::StreamProcessorBuilder::build
    pub(crate) fn validate(&self) -> Result<(), BuildError> {
        let field = |name: &str| format!("stage {:?}: {name}", self.name);
        check((1..=MAX_WORKERS).contains(&self.workers), field("workers"), self.workers, "1..=100000")?;
        if let Some(limit) = self.timeout {
            check(!limit.is_zero() && limit <= LONGEST_WAIT, field("timeout"), limit, "more than zero, at most a day")?;
        }
        if let ErrorPolicy::Retry { max_attempts, base_delay } = self.policy {
            check((1..=MAX_ATTEMPTS).contains(&max_attempts), field("max_attempts"), max_attempts, "1..=1000")?;
            check(base_delay <= LONGEST_WAIT, field("base_delay"), base_delay, "at most a day")?;
        }
        Ok(())
    }
}

/// What one worker needs; shared by all workers of a stage.
pub(crate) struct StageRuntime<T> {
    pub(crate) name: String,
    pub(crate) timeout: Option<Duration>,
    pub(crate) backup: Option<fn(&T) -> T>,
    pub(crate) policy: ErrorPolicy,
    pub(crate) worker: WorkerFn<T>,
    pub(crate) input: Arc<Mutex<QueueReceiver<T>>>,
    pub(crate) metrics: Arc<StageMetrics>,
    /// Wakes idle workers when the target drops, so surplus ones retire at once.
    pub(crate) retire: tokio::sync::Notify,
    /// Most records taken per lock and passed on per chunk.
    pub(crate) run_length: usize,
}

/// Where a worker sends what it is done with.
pub(crate) struct WorkerOutputs<T> {
    pub(crate) next: QueueSender<T>,
    pub(crate) dead_letters: mpsc::Sender<DeadLetter<T>>,
    /// Ordered mode: numbers of records that left the pipeline early, so the output stops
    /// waiting for them.
    pub(crate) gaps: Option<mpsc::UnboundedSender<u64>>,
}

/// The next queue closed while records were being passed on (the processor is being aborted).
pub(crate) struct Closed;

/// Takes runs of records (up to the run length per lock) until the queue closes, or until the
/// stage has more workers than its target (then this worker retires between runs, after
/// handling every record of its run, so none is lost).
///
/// Kept records are passed on as one chunk per run (micro-batching), except that whenever a
/// handler (or a retry's backoff) has to wait, what was kept before it is passed on first:
/// batching never holds a finished record behind a slow one.
///
/// Records taken but not yet started are counted as held (reported with the queue depth);
/// one record at a time is in flight. Time is read once before and once after a run: busy
/// time is added per run and each record's latency is the run's time over its length.
async fn run_worker<T, H, Fut>(
    stage: Arc<StageRuntime<T>>,
    outputs: WorkerOutputs<T>,
    target: Arc<std::sync::atomic::AtomicUsize>,
    handler: Arc<H>,
) where
    T: Send + 'static,
    H: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = StageOutcome<T>> + Send + 'static,
{
    use std::sync::atomic::Ordering::Relaxed;
    let tally = stage.metrics.tally();
    let max = stage.run_length;
    let mut run: Vec<Entry<T>> = Vec::with_capacity(max);
    let mut kept = Kept { records: Vec::with_capacity(max) };
    // The one handler future in flight, in this worker's own state: see `handle_run`.
    let mut slot = std::pin::pin!(None::<Fut>);
    'runs: loop {
        // A busy stage: records are waiting and no other worker holds the queue. Taken
        // without arming the retire notice (which costs a lock of its own each time).
        if stage.metrics.try_retire(target.load(Relaxed)) {
            return;
        }
        let taken_at_once = match stage.input.try_lock() {
            Ok(mut input) => {
                let taken = input.try_recv_run(&mut run, max);
                if taken > 0 {
                    // Counted before the lock is released, so taken records are never unaccounted.
                    stage.metrics.take_run(run.len());
                }
                taken > 0
            }
            Err(_) => false,
        };
        if !taken_at_once {
            // Armed before the target is read, so a scale-down between the two still wakes it.
            let retire = stage.retire.notified();
            let mut retire = std::pin::pin!(retire);
            retire.as_mut().enable();
            if stage.metrics.try_retire(target.load(Relaxed)) {
                return;
            }
            {
                // An idle worker waits for the queue; a scale-down wakes it to retire now rather
                // than at its next record.
                let mut input = tokio::select! {
                    biased;
                    () = &mut retire => continue 'runs,
                    input = stage.input.lock() => input,
                };
                // Checked again: the target may have dropped while this worker waited for the lock.
                if stage.metrics.try_retire(target.load(Relaxed)) {
                    return;
                }
                // Cancelling `recv_run` while it waits loses nothing (see `QueueReceiver`).
                let taken = tokio::select! {
                    biased;
                    () = &mut retire => continue 'runs,
                    taken = input.recv_run(&mut run, max) => taken,
                };
                if taken == 0 {
                    break;
                }
                // Counted before the lock is released, so taken records are never unaccounted.
                stage.metrics.take_run(run.len());
            }
        }
        let len = run.len();
        let started = harvester_core::time::now();
        let worker = Worker { stage: &stage, handler: &*handler, outputs: &outputs, tally: &tally };
        if worker.handle_run(&mut run.drain(..), &mut kept, slot.as_mut()).await.is_err() {
            // The next queue is gone: only abort does that, so there is nothing left to do
            // (the rest of the run stays counted as held, like records left in a queue).
            break 'runs;
        }
        if kept.pass_on(&stage, &outputs).await.is_err() {
            break;
        }
        stage.metrics.finish_run(len, harvester_core::time::since(started));
    }
    stage.metrics.worker_stopped();
}

/// What a worker handles its records with.
struct Worker<'a, T, H> {
    stage: &'a StageRuntime<T>,
    handler: &'a H,
    outputs: &'a WorkerOutputs<T>,
    tally: &'a WorkerTally,
}

/// Where the quick part of a run stopped.
enum Stop<T> {
    /// Every record of the run is handled.
    Done,
    /// The handler of record `seq` has to wait; its future is in the slot.
    Waiting(u64),
    /// The first attempt at record `seq` ended in a way the quick part does not settle.
    Tried(u64, Attempt<T>),
}

/// How one attempt ended: the handler's outcome, or what went wrong ("panicked", ...).
type Attempt<T> = Result<StageOutcome<T>, &'static str>;

impl<T, H, Fut> Worker<'_, T, H>
where
    T: Send + 'static,
    H: Fn(T) -> Fut + Sync,
    Fut: Future<Output = StageOutcome<T>> + Send,
{
    /// Handles a run's records in order.
    ///
    /// Records whose handler finishes at once and keeps or drops the record are handled in
    /// one poll of the worker, one after another: the handler's future is made in `slot`,
    /// polled once and settled there, with no future of our own per record (quick handlers
    /// are the common case, and such a future per record was most of what a record cost).
    /// A handler that has to wait passes the kept records on first and is then awaited in
    /// its slot; a failure, a panic, and every record of a stage with a timeout take the
    /// full way ([`handle_record`], [`settle`]).
    async fn handle_run(
        &self,
        entries: &mut std::vec::Drain<'_, Entry<T>>,
        kept: &mut Kept<T>,
        mut slot: std::pin::Pin<&mut Option<Fut>>,
    ) -> Result<(), Closed> {
        if self.stage.timeout.is_some() {
            for entry in entries {
                self.tally.start_record();
                handle_record(self.stage, self.handler, self.outputs, entry, kept).await?;
                self.tally.finish_record();
            }
            return Ok(());
        }
        loop {
            let stop = std::future::poll_fn(|cx| self.run_ready(cx, entries, kept, slot.as_mut())).await;
            let (seq, tried) = match stop {
                Stop::Done => return Ok(()),
                Stop::Tried(seq, tried) => (seq, tried),
                Stop::Waiting(seq) => {
                    if let Err(closed) = kept.pass_on(self.stage, self.outputs).await {
                        // Dropped now, not after the worker has said it stopped: whatever the
                        // handler holds is released with the worker.
                        slot.set(None);
                        return Err(closed);
                    }
                    let tried = std::future::poll_fn(|cx| poll_caught(slot.as_mut(), cx)).await;
                    slot.set(None);
                    (seq, tried)
                }
            };
            settle(self.stage, self.handler, self.outputs, seq, tried, kept).await?;
            self.tally.finish_record();
        }
    }

    /// The quick part of [`handle_run`](Self::handle_run): handles records while their
    /// handlers finish at once with `Keep` or `Drop`, spending a unit of the task's budget
    /// (tokio's cooperative scheduling, as a channel's message does) every
    /// [`RECORDS_PER_BUDGET_UNIT`] records: when it runs out, pending, so that the worker
    /// lets the runtime's other tasks run before it goes on (it is woken at once), however
    /// many ready handlers its queue holds.
    fn run_ready(
        &self,
        cx: &mut std::task::Context<'_>,
        entries: &mut std::vec::Drain<'_, Entry<T>>,
        kept: &mut Kept<T>,
        mut slot: std::pin::Pin<&mut Option<Fut>>,
    ) -> std::task::Poll<Stop<T>> {
        use std::panic::{AssertUnwindSafe, catch_unwind};
        use std::task::Poll;
        for handled in 0.. {
            if handled % RECORDS_PER_BUDGET_UNIT == 0 {
                std::task::ready!(tokio::task::coop::poll_proceed(cx)).made_progress();
            }
            let Some(Entry { seq, record }) = entries.next() else { return Poll::Ready(Stop::Done) };
            self.tally.start_record();
            // A panic must not take the worker (and, in ordered mode, the whole output)
            // down: neither one while the handler makes its future nor one while it runs.
            let Ok(future) = catch_unwind(AssertUnwindSafe(|| (self.handler)(record))) else {
                return Poll::Ready(Stop::Tried(seq, Err("panicked")));
            };
            slot.set(Some(future));
            match poll_caught(slot.as_mut(), cx) {
                Poll::Pending => return Poll::Ready(Stop::Waiting(seq)),
                Poll::Ready(tried) => {
                    slot.set(None);
                    match tried {
                        Ok(StageOutcome::Keep(record)) => kept.records.push(Entry { seq, record }),
                        Ok(StageOutcome::Drop) => {
                            self.stage.metrics.count(Event::Dropped);
                            leave(self.outputs, seq);
                        }
                        tried => return Poll::Ready(Stop::Tried(seq, tried)),
                    }
                    self.tally.finish_record();
                }
            }
        }
        Poll::Ready(Stop::Done)
    }
}

/// Ready records handled per unit of tokio's task budget (128 a poll): a worker gives its
/// thread up after about a thousand ready handlers. A unit per record made it yield every
/// 128, and each yield (a deferred wake) cost a trivial pipeline a quarter of its throughput.
const RECORDS_PER_BUDGET_UNIT: usize = 8;

/// Polls the handler's future in `slot` (empty: pending), catching a panic.
#[inline]
fn poll_caught<T, Fut: Future<Output = StageOutcome<T>>>(
    slot: std::pin::Pin<&mut Option<Fut>>,
    cx: &mut std::task::Context<'_>,
) -> std::task::Poll<Attempt<T>> {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::task::Poll;
    let Some(future) = slot.as_pin_mut() else { return Poll::Pending };
    match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
        Ok(Poll::Ready(outcome)) => Poll::Ready(Ok(outcome)),
        Ok(Poll::Pending) => Poll::Pending,
        Err(_) => Poll::Ready(Err("panicked")),
    }
}

/// The records a worker kept and has not passed on yet.
struct Kept<T> {
    records: Vec<Entry<T>>,
}

impl<T> Kept<T> {
    /// Sends the kept records on as one chunk, counting them as ok.
    async fn pass_on(&mut self, stage: &StageRuntime<T>, outputs: &WorkerOutputs<T>) -> Result<(), Closed> {
        if self.records.is_empty() {
            return Ok(());
        }
        // One record goes inline; more go in an allocation of their exact size, and this
        // buffer keeps its own for the next run.
        let chunk = match self.records.len() {
            1 => Chunk::One(self.records.remove(0)),
            _ => Chunk::Many(self.records.drain(..).collect()),
        };
        stage.metrics.kept(chunk.len() as u64);
        outputs.next.send(chunk).await.map_err(|_| Closed)
    }
}

/// One attempt without a time limit (a retry's; first attempts take the quick path of
/// [`Worker::handle_run`]): the handler's future, made and polled in place, passing on the
/// kept records first if it cannot finish at once. A panic while the handler makes its
/// future or while it runs is caught.
async fn attempt<T, Fut>(
    handler: &impl Fn(T) -> Fut,
    record: T,
    kept: &mut Kept<T>,
    stage: &StageRuntime<T>,
    outputs: &WorkerOutputs<T>,
) -> Result<Attempt<T>, Closed>
where
    Fut: Future<Output = StageOutcome<T>>,
{
    use std::panic::{AssertUnwindSafe, catch_unwind};
    let Ok(future) = catch_unwind(AssertUnwindSafe(|| handler(record))) else { return Ok(Err("panicked")) };
    let mut slot = std::pin::pin!(Some(future));
    await_passing_on(std::future::poll_fn(|cx| poll_caught(slot.as_mut(), cx)), kept, stage, outputs).await
}

/// Awaits `future`, first passing on the kept records if it cannot finish at once.
async fn await_passing_on<T, F: Future>(
    future: F,
    kept: &mut Kept<T>,
    stage: &StageRuntime<T>,
    outputs: &WorkerOutputs<T>,
) -> Result<F::Output, Closed> {
    let mut future = std::pin::pin!(future);
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(future.as_mut().poll(cx))).await;
    match first {
        std::task::Poll::Ready(output) => Ok(output),
        std::task::Poll::Pending => {
            kept.pass_on(stage, outputs).await?;
            Ok(future.await)
        }
    }
}

/// Handles one record to the end: kept (pushed to `kept`), dropped, or dead-lettered, with
/// retries as the policy says.
async fn handle_record<T, Fut>(
    stage: &StageRuntime<T>,
    handler: &(impl Fn(T) -> Fut + Sync),
    outputs: &WorkerOutputs<T>,
    entry: Entry<T>,
    kept: &mut Kept<T>,
) -> Result<(), Closed>
where
    T: Send + 'static,
    Fut: Future<Output = StageOutcome<T>> + Send,
{
    let Entry { seq, record } = entry;
    let tried = try_once(stage, handler, outputs, record, kept).await?;
    settle(stage, handler, outputs, seq, tried, kept).await
}

/// One attempt at `record`, within the stage's time limit if it has one.
async fn try_once<T, Fut>(
    stage: &StageRuntime<T>,
    handler: &(impl Fn(T) -> Fut + Sync),
    outputs: &WorkerOutputs<T>,
    record: T,
    kept: &mut Kept<T>,
) -> Result<Attempt<T>, Closed>
where
    T: Send + 'static,
    Fut: Future<Output = StageOutcome<T>> + Send,
{
    use futures::FutureExt;
    let Some(limit) = stage.timeout else {
        return attempt(handler, record, kept, stage, outputs).await;
    };
    let copy = stage.backup.map(|backup| backup(&record));
    // A panic must not take the worker (and, in ordered mode, the whole output) down:
    // neither one while the handler makes its future nor one while it runs.
    let attempt = std::panic::AssertUnwindSafe(async { handler(record).await }).catch_unwind();
    Ok(match await_passing_on(tokio::time::timeout(limit, attempt), kept, stage, outputs).await? {
        Ok(result) => result.map_err(|_| "panicked"),
        Err(_) => {
            stage.metrics.count(Event::TimedOut);
            match copy {
                Some(copy) => Ok(StageOutcome::Error(copy, format!("timed out after {limit:?}"))),
                // `Stage::timeout` always sets the copy; without one the record is gone.
                None => Err("timed out, and no copy of the record was kept"),
            }
        }
    })
}

/// Settles record `seq` after its first attempt ended as `tried`: kept (pushed to `kept`),
/// dropped, or dead-lettered, with further attempts as the policy says. A handler that
/// panics loses its record: it is counted as dropped and logged, and the worker goes on.
async fn settle<T, Fut>(
    stage: &StageRuntime<T>,
    handler: &(impl Fn(T) -> Fut + Sync),
    outputs: &WorkerOutputs<T>,
    seq: u64,
    mut tried: Attempt<T>,
    kept: &mut Kept<T>,
) -> Result<(), Closed>
where
    T: Send + 'static,
    Fut: Future<Output = StageOutcome<T>> + Send,
{
    let mut attempts = 1u32;
    loop {
        let outcome = match tried {
            Ok(outcome) => outcome,
            Err(what) => {
                tracing::error!(stage = %stage.name, attempts, "stage handler {what}; the record is lost (counted as dropped)");
                stage.metrics.count(Event::Failed);
                stage.metrics.count(Event::Dropped);
                leave(outputs, seq);
                return Ok(());
            }
        };
        let (failed, error) = match outcome {
            StageOutcome::Keep(record) => {
                kept.records.push(Entry { seq, record });
                return Ok(());
            }
            StageOutcome::Drop => {
                stage.metrics.count(Event::Dropped);
                leave(outputs, seq);
                return Ok(());
            }
            StageOutcome::Error(failed, error) => (failed, error),
        };
        stage.metrics.count(Event::Failed);
        match stage.policy {
            ErrorPolicy::Retry { max_attempts, base_delay } if attempts < max_attempts => {
                stage.metrics.count(Event::Retried);
                let wait = base_delay.saturating_mul(1u32 << (attempts - 1).min(16));
                await_passing_on(tokio::time::sleep(wait), kept, stage, outputs).await?;
                attempts += 1;
                tried = try_once(stage, handler, outputs, failed, kept).await?;
            }
            ErrorPolicy::Retry { .. } | ErrorPolicy::DeadLetter => {
                stage.metrics.count(Event::DeadLettered);
                leave(outputs, seq);
                let letter =
                    DeadLetter { record: failed, stage: stage.name.clone(), error, attempts, at: SystemTime::now() };
                outputs.dead_letters.send(letter).await.map_err(|_| Closed)?;
                return Ok(());
            }
            ErrorPolicy::Drop => {
                stage.metrics.count(Event::Dropped);
                leave(outputs, seq);
                return Ok(());
            }
        }
    }
}

/// Record `seq` leaves the pipeline before the output; ordered mode must stop waiting for it.
fn leave<T>(outputs: &WorkerOutputs<T>, seq: u64) {
    if let Some(gaps) = &outputs.gaps {
        // Fails only when the output is gone (abort), and then nobody waits for it.
        let _ = gaps.send(seq);
    }
}
