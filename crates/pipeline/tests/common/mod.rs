//! Helpers shared by the processor's test files.

#![allow(dead_code)]

use std::sync::Arc;

use harvester_pipeline::processor::{Stage, StageOutcome};
use harvester_pipeline::sinks::MemorySink;
use tokio::sync::Semaphore;

/// A memory sink shared with the test, which reads what was written.
pub fn memory<T>() -> Arc<MemorySink<T>> {
    Arc::new(MemorySink::new("memory"))
}

/// A handler that keeps every record.
pub async fn keep(n: u64) -> StageOutcome<u64> {
    StageOutcome::Keep(n)
}

/// A stage whose handler waits for a permit of `gate` per record: it holds records until the
/// test opens the gate.
pub fn gated_stage(gate: Arc<Semaphore>) -> Stage<u64> {
    Stage::new("gated", move |n: u64| {
        let gate = gate.clone();
        async move {
            if let Ok(permit) = gate.acquire().await {
                permit.forget();
            }
            StageOutcome::Keep(n)
        }
    })
}
