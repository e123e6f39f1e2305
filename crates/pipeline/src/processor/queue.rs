//! The queues between stages: bounded in records, moving records in chunks.
//!
//! A stage worker that takes a run of records from its queue passes what it kept on as one
//! chunk, so a full pipeline pays one queue operation per run instead of one per record
//! (micro-batching). A lightly loaded pipeline moves chunks of one: nothing waits for a chunk
//! to fill. Capacity is counted in records, not chunks, so memory stays bounded by the queue
//! size whatever the chunk sizes.
//!
//! Written here rather than taken from tokio's bounded `mpsc`: that channel's capacity counts
//! messages, and a chunked queue must count records. It is tokio's own recipe (a semaphore for
//! capacity in front of an unbounded list) with the permit count set by the chunk length.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};

/// A record with its place in the input order (used by ordered mode; zero otherwise).
pub(crate) struct Entry<T> {
    pub(crate) seq: u64,
    pub(crate) record: T,
}

/// Records moved as one message. A single record travels inline: a pipeline moving one
/// record at a time allocates nothing per record on its way through the queues.
pub(crate) enum Chunk<T> {
    One(Entry<T>),
    Many(Vec<Entry<T>>),
}

impl<T> Chunk<T> {
    /// `records` as a chunk: inline when there is one.
    pub(crate) fn of(mut records: Vec<Entry<T>>) -> Chunk<T> {
        if records.len() == 1
            && let Some(one) = records.pop()
        {
            return Chunk::One(one);
        }
        Chunk::Many(records)
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Chunk::One(_) => 1,
            Chunk::Many(records) => records.len(),
        }
    }

    /// The records, in order.
    pub(crate) fn into_vec(self) -> Vec<Entry<T>> {
        match self {
            Chunk::One(one) => vec![one],
            Chunk::Many(records) => records,
        }
    }
}

/// The sending half; cloneable. The queue closes when every sender is gone.
pub(crate) struct QueueSender<T> {
    permits: Arc<Semaphore>,
    tx: mpsc::UnboundedSender<Chunk<T>>,
}

impl<T> Clone for QueueSender<T> {
    fn clone(&self) -> Self {
        QueueSender { permits: self.permits.clone(), tx: self.tx.clone() }
    }
}

/// The receiving half; shared by a stage's workers behind a lock.
pub(crate) struct QueueReceiver<T> {
    permits: Arc<Semaphore>,
    rx: mpsc::UnboundedReceiver<Chunk<T>>,
    /// A chunk received but too long for the run being filled; first in the next run. Its
    /// records still count as queued.
    stash: Option<Chunk<T>>,
}

/// Observes a queue's depth without keeping it open.
#[derive(Clone)]
pub(crate) struct QueueGauge {
    permits: Arc<Semaphore>,
    capacity: usize,
}

/// A queue holding at most `capacity` records.
pub(crate) fn queue<T>(capacity: usize) -> (QueueSender<T>, QueueReceiver<T>, QueueGauge) {
    let permits = Arc::new(Semaphore::new(capacity));
    let (tx, rx) = mpsc::unbounded_channel();
    (
        QueueSender { permits: permits.clone(), tx },
        QueueReceiver { permits: permits.clone(), rx, stash: None },
        QueueGauge { permits, capacity },
    )
}

impl<T> QueueSender<T> {
    /// Sends `chunk`, waiting until there is room for all of its records; the chunk comes
    /// back when the queue closed. A chunk must not be longer than the queue's capacity
    /// (callers split at [`run_length`]).
    pub(crate) async fn send(&self, chunk: Chunk<T>) -> Result<(), Chunk<T>> {
        let Ok(count) = u32::try_from(chunk.len()) else { return Err(chunk) };
        match self.permits.acquire_many(count).await {
            // Forgotten: the receiver gives the room back when it takes the chunk.
            Ok(permit) => permit.forget(),
            Err(_) => return Err(chunk),
        }
        self.tx.send(chunk).map_err(|error| error.0)
    }
}

/// The first queue's sending side, shared by every [`Sender`](super::Sender) handle: one
/// place to close the input at shutdown, without a sender clone per send.
pub(crate) struct InputQueue<T> {
    permits: Arc<Semaphore>,
    tx: std::sync::Mutex<Option<mpsc::UnboundedSender<Chunk<T>>>>,
    /// Ordered mode's window, closed with the input so that no sender waits on it forever.
    window: Option<Arc<Semaphore>>,
}

impl<T> InputQueue<T> {
    pub(crate) fn new(queue: QueueSender<T>, window: Option<Arc<Semaphore>>) -> Self {
        InputQueue { permits: queue.permits, tx: std::sync::Mutex::new(Some(queue.tx)), window }
    }

    /// Waits until there is room for `count` records; fails once the input is closed.
    pub(crate) async fn reserve(&self, count: usize) -> Result<tokio::sync::SemaphorePermit<'_>, QueueClosed> {
        let count = u32::try_from(count).map_err(|_| QueueClosed)?;
        self.permits.acquire_many(count).await.map_err(|_| QueueClosed)
    }

    /// Holds room for `count` records if there is room now.
    pub(crate) fn try_reserve(&self, count: usize) -> Result<Option<tokio::sync::SemaphorePermit<'_>>, QueueClosed> {
        let count = u32::try_from(count).map_err(|_| QueueClosed)?;
        match self.permits.try_acquire_many(count) {
            Ok(permit) => Ok(Some(permit)),
            Err(tokio::sync::TryAcquireError::NoPermits) => Ok(None),
            Err(tokio::sync::TryAcquireError::Closed) => Err(QueueClosed),
        }
    }

    /// Sends `chunk` into the room `reserved` holds (as many permits as records).
    pub(crate) fn send(&self, reserved: tokio::sync::SemaphorePermit<'_>, chunk: Chunk<T>) -> Result<(), Chunk<T>> {
        debug_assert_eq!(chunk.len(), reserved.num_permits());
        let tx = super::lock(&self.tx);
        let Some(tx) = tx.as_ref() else { return Err(chunk) };
        // Forgotten: the receiver gives the room back when it takes the chunk.
        reserved.forget();
        tx.send(chunk).map_err(|error| error.0)
    }

    /// Stops taking input: waiting and later sends fail, and the queue closes once what it
    /// holds is taken.
    pub(crate) fn close(&self) {
        super::lock(&self.tx).take();
        self.permits.close();
        if let Some(window) = &self.window {
            window.close();
        }
    }
}

/// The queue's receiver is gone.
#[derive(Debug)]
pub(crate) struct QueueClosed;

impl<T> QueueReceiver<T> {
    /// Moves the next chunk and whatever else is ready into `run`, as long as the run stays
    /// within `max` records (a single chunk longer than `max` is taken whole); returns the
    /// number of records moved, 0 when the queue is closed and empty.
    pub(crate) async fn recv_run(&mut self, run: &mut Vec<Entry<T>>, max: usize) -> usize {
        let first = match self.stash.take() {
            Some(chunk) => chunk,
            None => match self.rx.recv().await {
                Some(chunk) => chunk,
                None => return 0,
            },
        };
        let mut moved = self.take(run, first);
        self.fill(run, max, &mut moved);
        moved
    }

    /// What [`recv_run`](Self::recv_run) moves, without waiting: 0 when nothing is ready
    /// now (or the queue is closed and empty; `recv_run` tells them apart).
    pub(crate) fn try_recv_run(&mut self, run: &mut Vec<Entry<T>>, max: usize) -> usize {
        let first = match self.stash.take() {
            Some(chunk) => chunk,
            None => match self.rx.try_recv() {
                Ok(chunk) => chunk,
                Err(_) => return 0,
            },
        };
        let mut moved = self.take(run, first);
        self.fill(run, max, &mut moved);
        moved
    }

    /// Adds what else is ready to a run of `moved` records, staying within `max`.
    fn fill(&mut self, run: &mut Vec<Entry<T>>, max: usize, moved: &mut usize) {
        while *moved < max {
            match self.rx.try_recv() {
                Ok(chunk) if *moved + chunk.len() <= max => *moved += self.take(run, chunk),
                Ok(chunk) => {
                    self.stash = Some(chunk);
                    break;
                }
                Err(_) => break,
            }
        }
    }

    fn take(&self, run: &mut Vec<Entry<T>>, chunk: Chunk<T>) -> usize {
        let len = chunk.len();
        self.permits.add_permits(len);
        match chunk {
            Chunk::One(one) => run.push(one),
            // Take over the chunk's allocation rather than copying into a run too small for it.
            Chunk::Many(records) if run.is_empty() && run.capacity() < records.len() => *run = records,
            Chunk::Many(mut records) => run.append(&mut records),
        }
        len
    }
}

impl<T> Drop for QueueReceiver<T> {
    fn drop(&mut self) {
        // Senders waiting for room would wait forever: closing the semaphore wakes them with
        // an error.
        self.permits.close();
    }
}

impl QueueGauge {
    /// Records waiting in the queue now.
    pub(crate) fn depth(&self) -> usize {
        self.capacity.saturating_sub(self.permits.available_permits())
    }
}

/// Most records a worker takes per lock, and the longest chunk a queue is sent: long enough to
/// spread a queue operation over many records (with chunks of 64, the pipeline parked and
/// woke its threads half again as often per record as with 256), short enough that a run is
/// handled quickly, and a quarter of the queue, so that a queue of four records or more holds
/// four runs: an upstream stage fills one while the stage takes another.
pub(crate) fn run_length(queue_size: usize) -> usize {
    (queue_size / 4).clamp(1, 256)
}
