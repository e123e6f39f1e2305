use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use crate::sink::{Sink, SinkError};

/// Keeps every written record in memory, in order. For tests, and for embedding the
/// pipeline where the caller collects the output itself.
#[derive(Debug)]
pub struct MemorySink<T> {
    name: String,
    records: Mutex<Vec<T>>,
    flushes: AtomicU64,
}

impl<T> MemorySink<T> {
    /// An empty sink called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        MemorySink { name: name.into(), records: Mutex::new(Vec::new()), flushes: AtomicU64::new(0) }
    }

    /// A snapshot of the records written so far.
    pub fn records(&self) -> Vec<T>
    where
        T: Clone,
    {
        self.lock().clone()
    }

    /// How many records were written so far.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Takes the records written so far, leaving the sink empty.
    pub fn take(&self) -> Vec<T> {
        std::mem::take(&mut *self.lock())
    }

    /// How many times `flush` was called.
    pub fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    // A panic while holding the lock cannot leave a half-written Vec behind (extend is
    // the only mutation), so a poisoned lock is safe to keep using.
    fn lock(&self) -> MutexGuard<'_, Vec<T>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl<T: Clone + Send + Sync + 'static> Sink<T> for MemorySink<T> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn write(&self, batch: &[T]) -> Result<(), SinkError> {
        self.lock().extend_from_slice(batch);
        Ok(())
    }

    async fn flush(&self) -> Result<(), SinkError> {
        self.flushes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
