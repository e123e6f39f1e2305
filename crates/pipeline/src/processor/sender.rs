//! The input side: a cloneable [`Sender`] into the first stage's queue.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use super::metrics::TotalCounters;
use super::order::Sequencer;
use super::queue::{Chunk, Entry, InputQueue};
use thiserror::Error;

/// Why a record was not accepted; the record comes back.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SendError<T> {
    /// The processor is shutting down (or gone) and takes no more input.
    #[error("the processor is shutting down")]
    Closed(T),
    /// The first queue is full ([`Sender::try_send`] only); counted as rejected.
    #[error("the first queue is full")]
    Full(T),
}

/// Puts records into a [`StreamProcessor`](super::StreamProcessor). Cheap to clone.
pub struct Sender<T> {
    input: Arc<InputQueue<T>>,
    totals: Arc<TotalCounters>,
    /// Ordered mode only.
    sequencer: Option<Arc<Sequencer>>,
    run_length: usize,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender {
            input: self.input.clone(),
            totals: self.totals.clone(),
            sequencer: self.sequencer.clone(),
            run_length: self.run_length,
        }
    }
}

impl<T> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").field("ordered", &self.sequencer.is_some()).finish_non_exhaustive()
    }
}

impl<T> Sender<T> {
    pub(crate) fn new(
        input: Arc<InputQueue<T>>,
        totals: Arc<TotalCounters>,
        sequencer: Option<Arc<Sequencer>>,
        run_length: usize,
    ) -> Self {
        Sender { input, totals, sequencer, run_length }
    }

    /// Sends `record`, waiting while the first queue is full (backpressure).
    pub async fn send(&self, record: T) -> Result<(), SendError<T>> {
        let mut one = One(Some(record));
        match (self.send_chunk(&mut one).await, one.0) {
            (Ok(()), _) => Ok(()),
            (Err(()), Some(record)) => Err(SendError::Closed(record)),
            (Err(()), None) => unreachable!("a refused record comes back whole"),
        }
    }

    /// Sends every record of `records` in order, waiting for room as needed. Moving records
    /// in groups is cheaper than one by one: prefer this when records come in batches.
    ///
    /// On error, the records not accepted come back (those before them were accepted).
    pub async fn send_all(&self, records: Vec<T>) -> Result<(), SendError<Vec<T>>> {
        let mut rest = records;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(self.run_length));
            let mut chunk = std::mem::replace(&mut rest, tail);
            if self.send_chunk(&mut chunk).await.is_err() {
                chunk.append(&mut rest);
                return Err(SendError::Closed(chunk));
            }
        }
        Ok(())
    }

    /// Sends `records` (at most the run length) as one chunk; on error they stay in `records`.
    async fn send_chunk(&self, records: &mut impl Outgoing<T>) -> Result<(), ()> {
        let count = records.count();
        let admitted = match &self.sequencer {
            Some(sequencer) => Some(sequencer.admit(count).await.ok_or(())?),
            None => None,
        };
        let reserved = self.input.reserve(count).await.map_err(|_| ())?;
        // No waiting from here on: a cancelled send cannot leave a number unused.
        let first = match (&self.sequencer, admitted) {
            (Some(sequencer), Some(admitted)) => sequencer.number(admitted, count),
            _ => 0,
        };
        let chunk = records.number(first);
        // Counted before the records can reach a stage, so no snapshot sees more leave than
        // arrived; taken back if the send fails.
        self.totals.received.fetch_add(count as u64, Relaxed);
        match self.input.send(reserved, chunk) {
            Ok(()) => Ok(()),
            Err(chunk) => {
                self.totals.received.fetch_sub(count as u64, Relaxed);
                records.restore(chunk);
                Err(())
            }
        }
    }

    /// Sends `record` if there is room now; otherwise counts it as rejected and gives it back
    /// (drop-newest admission).
    pub fn try_send(&self, record: T) -> Result<(), SendError<T>> {
        let reserved = match self.input.try_reserve(1) {
            Ok(Some(reserved)) => reserved,
            Ok(None) => return Err(self.reject(record)),
            Err(_) => return Err(SendError::Closed(record)),
        };
        let admitted = match &self.sequencer {
            Some(sequencer) => match sequencer.try_admit(1) {
                Some(admitted) => Some(admitted),
                None => return Err(self.reject(record)),
            },
            None => None,
        };
        let seq = match (&self.sequencer, admitted) {
            (Some(sequencer), Some(admitted)) => sequencer.number(admitted, 1),
            _ => 0,
        };
        self.totals.received.fetch_add(1, Relaxed);
        match self.input.send(reserved, Chunk::One(Entry { seq, record })) {
            Ok(()) => Ok(()),
            Err(chunk) => {
                self.totals.received.fetch_sub(1, Relaxed);
                Err(SendError::Closed(only_record(chunk)))
            }
        }
    }

    fn reject(&self, record: T) -> SendError<T> {
        self.totals.rejected.fetch_add(1, Relaxed);
        SendError::Full(record)
    }
}

/// What a send carries: a record, or records, numbered into a chunk on the way in and
/// given back if the queue refuses them.
trait Outgoing<T> {
    fn count(&self) -> usize;
    /// The records as a chunk, numbered from `first`; leaves this empty.
    fn number(&mut self, first: u64) -> Chunk<T>;
    /// Takes back what the queue refused.
    fn restore(&mut self, chunk: Chunk<T>);
}

/// One record (`None` once it is on its way).
struct One<T>(Option<T>);

impl<T> Outgoing<T> for One<T> {
    fn count(&self) -> usize {
        usize::from(self.0.is_some())
    }

    fn number(&mut self, first: u64) -> Chunk<T> {
        match self.0.take() {
            Some(record) => Chunk::One(Entry { seq: first, record }),
            None => Chunk::Many(Vec::new()),
        }
    }

    fn restore(&mut self, chunk: Chunk<T>) {
        self.0 = Some(only_record(chunk));
    }
}

impl<T> Outgoing<T> for Vec<T> {
    fn count(&self) -> usize {
        self.len()
    }

    fn number(&mut self, first: u64) -> Chunk<T> {
        Chunk::of(std::mem::take(self).into_iter().zip(first..).map(|(record, seq)| Entry { seq, record }).collect())
    }

    fn restore(&mut self, chunk: Chunk<T>) {
        self.extend(chunk.into_vec().into_iter().map(|entry| entry.record));
    }
}

/// The record of a refused chunk of one: it comes back whole, and an empty one is never sent.
fn only_record<T>(chunk: Chunk<T>) -> T {
    match chunk.into_vec().pop() {
        Some(entry) => entry.record,
        None => unreachable!("a refused chunk of one record came back empty"),
    }
}
