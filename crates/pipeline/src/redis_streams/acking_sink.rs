//! [`AckingSink`]: stores deliveries' records in the user's sink, then acknowledges their
//! entries.

use async_trait::async_trait;

use super::delivery::Delivery;
use crate::sink::{DeadLetter, Sink, SinkError};

/// Wraps the sink records are stored in, and acknowledges each record's stream entry once
/// the sink has accepted the batch holding it: the entry is never acknowledged before the
/// record is stored, so a crash at any point leaves it pending, to be delivered again.
///
/// It is the processor's sink (over [`Delivery<T>`], around a `Sink<T>`) or its
/// dead-letter sink (over `DeadLetter<Delivery<T>>`, around a `Sink<DeadLetter<T>>`): a
/// dead-lettered record's entry is acknowledged once its dead letter is stored. A batch the
/// inner sink refuses is acknowledged by nobody; the processor retries it, then
/// dead-letters it.
///
/// "Stored" means what the inner sink's `write` promises. A sink that only buffers (a
/// [`BatchSink`](crate::batch::BatchSink)) would have entries acknowledged before their
/// records are written: give the processor the real sink (it batches by itself), or use
/// [`flushing`](AckingSink::flushing) for a sink that makes writes durable on `flush`
/// (a [`JsonlSink`](crate::sinks::JsonlSink) with [`FsyncPolicy::OnFlush`](crate::sinks::FsyncPolicy::OnFlush)).
///
/// The inner sink is given copies of the records (`T: Clone`), one batch at a time.
///
/// ```
/// use std::sync::Arc;
/// use harvester_pipeline::processor::{Stage, StreamProcessor};
/// use harvester_pipeline::redis_streams::{AckingSink, Delivery};
/// use harvester_pipeline::sinks::MemorySink;
/// use harvester_pipeline::{DeadLetter, StageOutcome};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let stored = Arc::new(MemorySink::<u64>::new("stored"));
/// let failed = Arc::new(MemorySink::<DeadLetter<u64>>::new("failed"));
/// let processor = StreamProcessor::builder()
///     .stage(Stage::new("double", Delivery::handler(|n: u64| async move { StageOutcome::Keep(n * 2) })))
///     .sink(AckingSink::new(stored.clone()))
///     .dead_letter(AckingSink::new(failed.clone()))
///     .build()?;
/// // Feed it with `RedisStreamSource::spawn(processor.sender())`.
/// # let _ = processor.shutdown(std::time::Duration::from_secs(1)).await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct AckingSink<S> {
    inner: S,
    flush_before_ack: bool,
}

impl<S> AckingSink<S> {
    /// Acknowledges after `inner.write` succeeded.
    pub fn new(inner: S) -> Self {
        AckingSink { inner, flush_before_ack: false }
    }

    /// Acknowledges after `inner.write` and then `inner.flush` succeeded, for a sink whose
    /// writes become durable on flush. Costs a flush per batch.
    pub fn flushing(inner: S) -> Self {
        AckingSink { inner, flush_before_ack: true }
    }

    /// The wrapped sink.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    async fn store<R: Send + Sync + 'static>(&self, records: &[R]) -> Result<(), SinkError>
    where
        S: Sink<R>,
    {
        self.inner.write(records).await?;
        if self.flush_before_ack {
            self.inner.flush().await?;
        }
        Ok(())
    }
}

#[async_trait]
impl<T, S> Sink<Delivery<T>> for AckingSink<S>
where
    T: Clone + Send + Sync + 'static,
    S: Sink<T>,
{
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn write(&self, batch: &[Delivery<T>]) -> Result<(), SinkError> {
        let records: Vec<T> = batch.iter().map(|delivery| delivery.record().clone()).collect();
        self.store(&records).await?;
        for delivery in batch {
            delivery.ack();
        }
        Ok(())
    }

    async fn flush(&self) -> Result<(), SinkError> {
        self.inner.flush().await
    }
}

#[async_trait]
impl<T, S> Sink<DeadLetter<Delivery<T>>> for AckingSink<S>
where
    T: Clone + Send + Sync + 'static,
    S: Sink<DeadLetter<T>>,
{
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn write(&self, batch: &[DeadLetter<Delivery<T>>]) -> Result<(), SinkError> {
        let letters: Vec<DeadLetter<T>> = batch
            .iter()
            .map(|letter| DeadLetter {
                record: letter.record.record().clone(),
                stage: letter.stage.clone(),
                error: letter.error.clone(),
                attempts: letter.attempts,
                at: letter.at,
            })
            .collect();
        self.store(&letters).await?;
        for letter in batch {
            letter.record.ack();
        }
        Ok(())
    }

    async fn flush(&self) -> Result<(), SinkError> {
        self.inner.flush().await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::SystemTime;

    use tokio::sync::mpsc;

    use super::super::delivery::tests::deliveries;
    use super::*;
    use crate::sinks::MemorySink;

    fn acked(queue: &mut mpsc::UnboundedReceiver<Arc<str>>) -> Vec<String> {
        std::iter::from_fn(|| queue.try_recv().ok()).map(|id| id.to_string()).collect()
    }

    /// Stores into memory, failing writes (or flushes) while told to.
    struct Flaky {
        memory: MemorySink<u32>,
        fail_writes: AtomicBool,
        fail_flushes: AtomicBool,
    }

    #[async_trait]
    impl Sink<u32> for Flaky {
        fn name(&self) -> &str {
            "flaky"
        }

        async fn write(&self, batch: &[u32]) -> Result<(), SinkError> {
            if self.fail_writes.load(Ordering::Relaxed) {
                return Err(SinkError::new("flaky", "write refused"));
            }
            self.memory.write(batch).await
        }

        async fn flush(&self) -> Result<(), SinkError> {
            if self.fail_flushes.load(Ordering::Relaxed) {
                return Err(SinkError::new("flaky", "flush refused"));
            }
            Ok(())
        }
    }

    impl Flaky {
        fn new() -> Arc<Self> {
            Arc::new(Flaky {
                memory: MemorySink::new("memory"),
                fail_writes: AtomicBool::new(false),
                fail_flushes: AtomicBool::new(false),
            })
        }
    }

    #[tokio::test]
    async fn entries_are_acknowledged_only_after_the_inner_sink_stored_them() {
        let inner = Flaky::new();
        let sink = AckingSink::new(inner.clone());
        let (batch, _acks, mut queue) = deliveries(vec![1u32, 2, 3]);

        inner.fail_writes.store(true, Ordering::Relaxed);
        assert!(sink.write(&batch).await.is_err());
        assert!(acked(&mut queue).is_empty(), "a refused batch is not acknowledged");

        inner.fail_writes.store(false, Ordering::Relaxed);
        sink.write(&batch).await.expect("stored");
        assert_eq!(inner.memory.records(), vec![1, 2, 3]);
        assert_eq!(acked(&mut queue), vec!["0-1", "0-2", "0-3"]);
    }

    #[tokio::test]
    async fn a_flushing_sink_acknowledges_only_after_the_flush() {
        let inner = Flaky::new();
        let sink = AckingSink::flushing(inner.clone());
        let (batch, _acks, mut queue) = deliveries(vec![7u32]);

        inner.fail_flushes.store(true, Ordering::Relaxed);
        assert!(sink.write(&batch).await.is_err());
        assert!(acked(&mut queue).is_empty(), "written but not durable: not acknowledged");

        inner.fail_flushes.store(false, Ordering::Relaxed);
        sink.write(&batch).await.expect("stored and flushed");
        assert_eq!(acked(&mut queue), vec!["0-1"]);
    }

    #[tokio::test]
    async fn dead_letters_are_acknowledged_once_the_dead_letter_sink_stored_them() {
        let inner = Arc::new(MemorySink::<DeadLetter<u32>>::new("dead"));
        let sink = AckingSink::new(inner.clone());
        let (batch, _acks, mut queue) = deliveries(vec![5u32]);
        let letters: Vec<DeadLetter<Delivery<u32>>> = batch
            .into_iter()
            .map(|delivery| DeadLetter {
                record: delivery,
                stage: "parse".into(),
                error: "bad".into(),
                attempts: 2,
                at: SystemTime::UNIX_EPOCH,
            })
            .collect();

        sink.write(&letters).await.expect("stored");

        let stored = inner.records();
        assert_eq!((stored[0].record, stored[0].stage.as_str(), stored[0].attempts), (5, "parse", 2));
        assert_eq!(acked(&mut queue), vec!["0-1"]);
    }
}
