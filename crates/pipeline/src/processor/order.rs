//! Ordered mode: records leave in the order they entered, whatever the stages' parallelism.
//!
//! The input numbers each record; the sink side holds records that arrive early in a reorder
//! buffer until every earlier number has arrived or is known to be gone (dropped or
//! dead-lettered: a stage reports such a number as a gap). A window bounds how far the input
//! may run ahead of the output, so one slow record cannot make the buffer grow without
//! limit: the input waits once `window` records are between it and the output.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use tokio::sync::{Semaphore, SemaphorePermit};

/// Numbers records at the input and bounds how many are between the input and the output.
pub(crate) struct Sequencer {
    next: AtomicU64,
    window: Arc<Semaphore>,
}

impl Sequencer {
    pub(crate) fn new(window: usize) -> (Arc<Sequencer>, Arc<Semaphore>) {
        let window = Arc::new(Semaphore::new(window));
        (Arc::new(Sequencer { next: AtomicU64::new(0), window: window.clone() }), window)
    }

    /// Waits until `count` more records may enter the window.
    pub(crate) async fn admit(&self, count: usize) -> Option<SemaphorePermit<'_>> {
        self.window.acquire_many(u32::try_from(count).ok()?).await.ok()
    }

    /// Lets `count` more records enter the window if they may now.
    pub(crate) fn try_admit(&self, count: usize) -> Option<SemaphorePermit<'_>> {
        self.window.try_acquire_many(u32::try_from(count).ok()?).ok()
    }

    /// The first of `count` consecutive numbers. The admission permit is kept until the
    /// output releases the records; call only right before the (non-waiting) send, so a
    /// cancelled send cannot lose a number.
    pub(crate) fn number(&self, admitted: SemaphorePermit<'_>, count: usize) -> u64 {
        admitted.forget();
        self.next.fetch_add(count as u64, Relaxed)
    }
}

enum Slot<T> {
    Waiting,
    Ready(T),
    Gone,
}

/// The sink side's reorder buffer.
pub(crate) struct Reorder<T> {
    /// The number of the record at the front of `slots`.
    front: u64,
    slots: VecDeque<Slot<T>>,
    window: Arc<Semaphore>,
}

impl<T> Reorder<T> {
    pub(crate) fn new(window: Arc<Semaphore>) -> Self {
        Reorder { front: 0, slots: VecDeque::new(), window }
    }

    fn slot(&mut self, seq: u64) -> Option<&mut Slot<T>> {
        // A number behind the front was already released; ignoring it cannot happen in a
        // correct run, and must not corrupt the buffer if it does.
        let index = usize::try_from(seq.checked_sub(self.front)?).ok()?;
        if index >= self.slots.len() {
            self.slots.resize_with(index + 1, || Slot::Waiting);
        }
        self.slots.get_mut(index)
    }

    /// Record `seq` arrived.
    pub(crate) fn insert(&mut self, seq: u64, record: T) {
        if let Some(slot) = self.slot(seq) {
            *slot = Slot::Ready(record);
        }
    }

    /// Record `seq` will never arrive (dropped or dead-lettered).
    pub(crate) fn skip(&mut self, seq: u64) {
        if let Some(slot) = self.slot(seq) {
            *slot = Slot::Gone;
        }
    }

    /// Moves the records that are next in order into `out`, up to `max`.
    pub(crate) fn release(&mut self, out: &mut Vec<T>, max: usize) {
        let mut released = 0;
        while out.len() < max {
            match self.slots.front() {
                Some(Slot::Ready(_) | Slot::Gone) => {}
                Some(Slot::Waiting) | None => break,
            }
            if let Some(Slot::Ready(record)) = self.slots.pop_front() {
                out.push(record);
            }
            self.front += 1;
            released += 1;
        }
        self.window.add_permits(released);
    }

    /// Moves every record still held into `out` in order, passing over numbers that never
    /// arrived (their senders were cancelled at shutdown).
    pub(crate) fn release_all(&mut self, out: &mut Vec<T>) {
        let released = self.slots.len();
        out.extend(self.slots.drain(..).filter_map(|slot| match slot {
            Slot::Ready(record) => Some(record),
            Slot::Waiting | Slot::Gone => None,
        }));
        self.front += released as u64;
        self.window.add_permits(released);
    }
}
