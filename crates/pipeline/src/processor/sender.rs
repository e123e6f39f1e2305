//! The input side: a cloneable [`Sender`] into the first stage's queue.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use thiserror::Error;
use tokio::sync::mpsc;

use super::lock;
use super::metrics::TotalCounters;

/// Why a record was not accepted; the record comes back.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
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
    input: Arc<Mutex<Option<mpsc::Sender<T>>>>,
    totals: Arc<TotalCounters>,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender { input: self.input.clone(), totals: self.totals.clone() }
    }
}

impl<T> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

impl<T> Sender<T> {
    pub(crate) fn new(input: Arc<Mutex<Option<mpsc::Sender<T>>>>, totals: Arc<TotalCounters>) -> Self {
        Sender { input, totals }
    }

    fn queue(&self) -> Option<mpsc::Sender<T>> {
        // A clone per send, so shutdown closes the queue by dropping the one in the slot.
        lock(&self.input).clone()
    }

    /// Sends `record`, waiting while the first queue is full (backpressure).
    pub async fn send(&self, record: T) -> Result<(), SendError<T>> {
        let Some(queue) = self.queue() else { return Err(SendError::Closed(record)) };
        queue.send(record).await.map_err(|error| SendError::Closed(error.0))?;
        self.totals.received.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Sends `record` if there is room now; otherwise counts it as rejected and gives it back
    /// (drop-newest admission).
    pub fn try_send(&self, record: T) -> Result<(), SendError<T>> {
        let Some(queue) = self.queue() else { return Err(SendError::Closed(record)) };
        match queue.try_send(record) {
            Ok(()) => {
                self.totals.received.fetch_add(1, Relaxed);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(record)) => {
                self.totals.rejected.fetch_add(1, Relaxed);
                Err(SendError::Full(record))
            }
            Err(mpsc::error::TrySendError::Closed(record)) => Err(SendError::Closed(record)),
        }
    }
}
