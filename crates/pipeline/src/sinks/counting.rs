//! A sink that only counts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;

use crate::sink::{Sink, SinkError};

/// Counts the records written to it and keeps none: memory stays flat however many pass,
/// which is what throughput and memory measurements need.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use harvester_pipeline::Sink;
/// use harvester_pipeline::sinks::CountingSink;
///
/// let count = Arc::new(AtomicUsize::new(0));
/// let sink = CountingSink::new(count.clone());
/// sink.write(&[1u64, 2, 3]).await?;
/// assert_eq!(count.load(Ordering::Relaxed), 3);
/// # Ok::<(), harvester_pipeline::SinkError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, Default)]
pub struct CountingSink {
    count: Arc<AtomicUsize>,
}

impl CountingSink {
    /// A sink adding every written batch's length to `count`.
    pub fn new(count: Arc<AtomicUsize>) -> Self {
        CountingSink { count }
    }

    /// Records written so far.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl<T: Send + Sync + 'static> Sink<T> for CountingSink {
    fn name(&self) -> &str {
        "count"
    }

    async fn write(&self, batch: &[T]) -> Result<(), SinkError> {
        self.count.fetch_add(batch.len(), Ordering::Relaxed);
        Ok(())
    }
}
