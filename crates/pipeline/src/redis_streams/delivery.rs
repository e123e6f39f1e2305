//! [`Delivery`]: a record read from a stream, carrying the entry it came from until a sink
//! has stored it.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use super::ack::Acks;
use crate::processor::StageOutcome;

/// A record from a [`RedisStreamSource`](super::RedisStreamSource), with the stream entry
/// it came from. The processor of a stream source carries `Delivery<T>`; the entry is
/// acknowledged when the record is stored ([`AckingSink`](super::AckingSink)) or dropped
/// on purpose (a [`Delivery::handler`] stage returning [`StageOutcome::Drop`]), and delivered
/// again when the record leaves the pipeline any other way.
///
/// Clones share the entry: acknowledging one acknowledges all (a stage with a timeout
/// clones the record before each attempt).
///
/// ```
/// use harvester_pipeline::processor::{StageOutcome, Stage};
/// use harvester_pipeline::redis_streams::Delivery;
///
/// // A stage over `Delivery<String>` written as a stage over `String`.
/// let trim = Stage::new(
///     "trim",
///     Delivery::handler(|page: String| async move {
///         if page.trim().is_empty() { StageOutcome::Drop } else { StageOutcome::Keep(page.trim().to_owned()) }
///     }),
/// );
/// # let _ = trim;
/// ```
pub struct Delivery<T> {
    record: T,
    entry: Arc<Entry>,
}

/// The stream entry behind one or more clones of a delivery.
pub(crate) struct Entry {
    id: Arc<str>,
    deliveries: u32,
    acked: AtomicBool,
    acks: Arc<Acks>,
}

impl Entry {
    fn ack(&self) {
        if !self.acked.swap(true, Ordering::AcqRel) {
            self.acks.ack(self.id.clone());
        }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        if !*self.acked.get_mut() {
            self.acks.abandon(&self.id);
        }
    }
}

impl<T> Delivery<T> {
    /// A delivery of entry `id` (its lease already taken), delivered `deliveries` times;
    /// the caller counts it as delivered.
    pub(crate) fn new(record: T, id: Arc<str>, deliveries: u32, acks: Arc<Acks>) -> Self {
        Delivery { record, entry: Arc::new(Entry { id, deliveries, acked: AtomicBool::new(false), acks }) }
    }

    /// The record.
    pub fn record(&self) -> &T {
        &self.record
    }

    /// The record, to change in place.
    pub fn record_mut(&mut self) -> &mut T {
        &mut self.record
    }

    /// The stream entry's id (`1700000000000-0`).
    pub fn entry_id(&self) -> &str {
        &self.entry.id
    }

    /// How many times the entry was delivered, this time included (1 the first time; more
    /// after a consumer stopped before storing it).
    pub fn deliveries(&self) -> u32 {
        self.entry.deliveries
    }

    /// Whether the entry was acknowledged (or queued for `XACK`) already.
    pub fn is_acked(&self) -> bool {
        self.entry.acked.load(Ordering::Acquire)
    }

    /// Acknowledges the entry now: the record is done with and must not be delivered
    /// again. [`AckingSink`](super::AckingSink) calls this after storing; call it yourself
    /// only for a record your own code has stored or chosen to discard. Calling it again
    /// does nothing.
    pub fn ack(&self) {
        self.entry.ack();
    }

    /// The same delivery with the record replaced by `f(record)`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Delivery<U> {
        Delivery { record: f(self.record), entry: self.entry }
    }

    /// Turns a handler of records into a handler of deliveries, for
    /// [`Stage::new`](crate::processor::Stage::new): [`StageOutcome::Keep`] and
    /// [`StageOutcome::Error`] keep the entry with the record; [`StageOutcome::Drop`] acknowledges the
    /// entry (dropping is a decision about the record, which must not come back). A
    /// handler that panics or is cancelled abandons the entry, which is delivered again.
    pub fn handler<F, Fut>(handler: F) -> impl Fn(Delivery<T>) -> HandleRecord<Fut, T> + Send + Sync + 'static
    where
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = StageOutcome<T>>,
    {
        move |delivery: Delivery<T>| HandleRecord {
            handling: handler(delivery.record),
            entry: Some(delivery.entry),
            _record: PhantomData,
        }
    }
}

impl<T: Clone> Clone for Delivery<T> {
    fn clone(&self) -> Self {
        Delivery { record: self.record.clone(), entry: self.entry.clone() }
    }
}

impl<T: fmt::Debug> fmt::Debug for Delivery<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("record", &self.record)
            .field("entry_id", &self.entry.id)
            .field("deliveries", &self.entry.deliveries)
            .field("acked", &self.is_acked())
            .finish()
    }
}

pin_project_lite::pin_project! {
    /// The future of a [`Delivery::handler`] stage: the record handler's future, with the
    /// entry carried across it.
    pub struct HandleRecord<Fut, T> {
        #[pin]
        handling: Fut,
        entry: Option<Arc<Entry>>,
        _record: PhantomData<fn() -> T>,
    }
}

impl<Fut, T> fmt::Debug for HandleRecord<Fut, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandleRecord").finish_non_exhaustive()
    }
}

impl<Fut: Future<Output = StageOutcome<T>>, T> Future for HandleRecord<Fut, T> {
    type Output = StageOutcome<Delivery<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let outcome = ready!(this.handling.poll(cx));
        // Only a poll after completion finds it taken; such a poll gets nothing.
        let Some(entry) = this.entry.take() else { return Poll::Pending };
        Poll::Ready(match outcome {
            StageOutcome::Keep(record) => StageOutcome::Keep(Delivery { record, entry }),
            StageOutcome::Drop => {
                entry.ack();
                StageOutcome::Drop
            }
            StageOutcome::Error(record, error) => StageOutcome::Error(Delivery { record, entry }, error),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use tokio::sync::mpsc;

    use super::super::ack::Acks;
    use super::super::lease::Leases;
    use super::super::stats::SourceCounters;
    use super::*;

    /// Deliveries of entries `0-1`, `0-2`, … as a source would make them, and the queue
    /// their acknowledgements go to.
    pub(crate) fn deliveries<T>(records: Vec<T>) -> (Vec<Delivery<T>>, Arc<Acks>, mpsc::UnboundedReceiver<Arc<str>>) {
        let leases = Arc::new(Leases::default());
        let (acks, queue) = Acks::new(leases, Arc::new(SourceCounters::new("test")));
        let deliveries = records
            .into_iter()
            .zip(1..)
            .map(|(record, n)| {
                let id: Arc<str> = Arc::from(format!("0-{n}"));
                assert!(acks.leases().take(&id));
                acks.counters().delivered(1);
                Delivery::new(record, id, 1, acks.clone())
            })
            .collect();
        (deliveries, acks, queue)
    }

    fn acked(queue: &mut mpsc::UnboundedReceiver<Arc<str>>) -> Vec<String> {
        std::iter::from_fn(|| queue.try_recv().ok()).map(|id| id.to_string()).collect()
    }

    #[tokio::test]
    async fn a_kept_record_carries_its_entry_unacknowledged() {
        let (mut deliveries, acks, mut queue) = deliveries(vec![1u32]);
        let stage = Delivery::handler(|n: u32| async move { StageOutcome::Keep(n + 1) });

        let outcome = stage(deliveries.remove(0)).await;

        let StageOutcome::Keep(kept) = outcome else { panic!("kept") };
        assert_eq!((*kept.record(), kept.entry_id(), kept.is_acked()), (2, "0-1", false));
        assert!(acked(&mut queue).is_empty());
        assert!(acks.leases().holds("0-1"));
    }

    #[tokio::test]
    async fn a_dropped_record_acknowledges_its_entry() {
        let (mut deliveries, acks, mut queue) = deliveries(vec![1u32]);
        let stage = Delivery::handler(|_: u32| async move { StageOutcome::Drop });

        assert!(matches!(stage(deliveries.remove(0)).await, StageOutcome::Drop));

        assert_eq!(acked(&mut queue), vec!["0-1"]);
        assert_eq!(acks.counters().snapshot().abandoned, 0);
    }

    #[tokio::test]
    async fn a_failed_record_keeps_its_entry_for_the_retry_or_the_dead_letter() {
        let (mut deliveries, _acks, mut queue) = deliveries(vec![1u32]);
        let stage = Delivery::handler(|n: u32| async move { StageOutcome::Error(n, "no".into()) });

        let StageOutcome::Error(failed, error) = stage(deliveries.remove(0)).await else { panic!("failed") };

        assert_eq!((*failed.record(), error.as_str(), failed.is_acked()), (1, "no", false));
        assert!(acked(&mut queue).is_empty());
    }

    #[test]
    fn a_delivery_dropped_unacknowledged_is_abandoned_and_its_lease_released() {
        let (deliveries, acks, mut queue) = deliveries(vec![1u32, 2]);

        drop(deliveries);

        assert!(acked(&mut queue).is_empty());
        assert!(!acks.leases().holds("0-1") && !acks.leases().holds("0-2"));
        let stats = acks.counters().snapshot();
        assert_eq!((stats.delivered, stats.abandoned, stats.in_flight), (2, 2, 0));
    }

    #[test]
    fn clones_share_one_entry() {
        let (mut deliveries, acks, mut queue) = deliveries(vec![1u32]);
        let original = deliveries.remove(0);
        let copy = original.clone();

        drop(copy);
        assert_eq!(acks.counters().snapshot().abandoned, 0, "the original still holds the entry");
        let copy = original.clone();
        copy.ack();
        copy.ack();

        assert!(original.is_acked());
        assert_eq!(acked(&mut queue), vec!["0-1"], "acknowledged once");
        drop((original, copy));
        assert_eq!(acks.counters().snapshot().abandoned, 0);
        assert!(acks.leases().holds("0-1"), "released only once XACK succeeded");
    }
}
