//! Stopping: [`StreamProcessor::shutdown`] drains stage by stage within a deadline;
//! [`StreamProcessor::abort`] and `Drop` cancel at once.

use std::time::Duration;

use tokio::task::{AbortHandle, JoinHandle};

use super::{Report, StreamProcessor, lock};

impl<T: Send + Sync + 'static> StreamProcessor<T> {
    /// Stops taking input, lets every stage finish its queue in order, writes what is left to
    /// the sinks and flushes them. What is not done by `deadline` is aborted and reported as
    /// in flight.
    pub async fn shutdown(self, deadline: Duration) -> Report {
        for feed in lock(&self.feeds).drain(..) {
            feed.abort();
        }
        self.input.close();
        // Taken before draining: the drain moves handles out, and a late abort must reach them.
        let everything = self.abort_handles();
        let drained = tokio::time::timeout(deadline, self.drain()).await.is_ok();
        if !drained {
            tracing::warn!(?deadline, "pipeline shutdown deadline passed; aborting the rest");
            for handle in everything {
                handle.abort();
            }
            self.cancel().await;
        }
        Report::from_metrics(self.metrics(), !drained)
    }

    /// Cancels every task at once and reports what was queued or in flight.
    pub async fn abort(self) -> Report {
        self.input.close();
        self.cancel().await;
        Report::from_metrics(self.metrics(), false)
    }

    async fn drain(&self) {
        // A stage's queue closes once the previous stage's workers are gone and the template
        // sender is dropped; stage by stage, everything queued is handled first.
        for slot in &self.stages {
            // Taken first, so no worker can be started behind the drain's back.
            lock(&slot.outputs).take();
            let workers = std::mem::take(&mut *lock(&slot.workers));
            for worker in workers {
                let _ = worker.await;
            }
        }
        let sink = lock(&self.sink_task).take();
        if let Some(sink) = sink {
            let _ = sink.await;
        }
        let dead_letters = lock(&self.dead_letter_task).take();
        if let Some(dead_letters) = dead_letters {
            let _ = dead_letters.await;
        }
    }

    fn abort_handles(&self) -> Vec<AbortHandle> {
        let mut handles: Vec<AbortHandle> = lock(&self.feeds).iter().map(JoinHandle::abort_handle).collect();
        handles.push(self.gauges.abort_handle());
        for slot in &self.stages {
            handles.extend(lock(&slot.workers).iter().map(JoinHandle::abort_handle));
        }
        handles.extend(lock(&self.sink_task).iter().map(JoinHandle::abort_handle));
        handles.extend(lock(&self.dead_letter_task).iter().map(JoinHandle::abort_handle));
        handles
    }

    async fn cancel(&self) {
        // First, so that a concurrent `set_workers` cannot start a worker behind the abort.
        for slot in &self.stages {
            lock(&slot.outputs).take();
        }
        for handle in self.abort_handles() {
            handle.abort();
        }
        // Wait until the aborted tasks are gone, so the counters are final.
        let mut handles: Vec<JoinHandle<()>> = lock(&self.feeds).drain(..).collect();
        for slot in &self.stages {
            handles.append(&mut lock(&slot.workers));
        }
        handles.extend(lock(&self.sink_task).take());
        handles.extend(lock(&self.dead_letter_task).take());
        for handle in handles {
            let _ = handle.await;
        }
    }
}

impl<T: Send + Sync + 'static> Drop for StreamProcessor<T> {
    fn drop(&mut self) {
        self.input.close();
        for slot in &self.stages {
            lock(&slot.outputs).take();
        }
        for handle in self.abort_handles() {
            handle.abort();
        }
    }
}
