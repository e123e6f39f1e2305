//! # harvester-pipeline
//!
//! Collected pages become records that must be validated, enriched, transformed and
//! stored at the rate they arrive, without losing one and without unbounded memory.
//! This crate is the plumbing: a staged stream processor with bounded queues and
//! backpressure, error policies ending in a dead-letter sink, batching sinks, and a
//! graceful shutdown that accounts for every record.
//!
//! [`processor`] is the staged stream processor (micro-batching between stages, optional
//! ordered output, run-time worker counts through [`processor::StageControl`]); [`sink`]
//! defines what it writes to; [`batch`] groups records for a sink by
//! count, bytes and wait; [`sinks`] has ready sinks (memory, callback, JSONL file);
//! [`record`] has the seed's `DataRecord` and ready-made cleaning and validation steps.
//! `redis_streams` (feature `redis`) reads a Redis stream into a processor as a consumer
//! group, acknowledging entries only after their records are stored, and appends to one.
//!
//! ## Feature flags
//!
//! - `redis`: the `redis_streams` module (Redis Streams source and sink, on
//!   `harvester-redis`).

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod batch;
pub mod processor;
pub mod record;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis_streams;
pub mod sink;
mod sink_stats;
pub mod sinks;

pub use processor::{
    ErrorPolicy, Report, SendError, Sender, Stage, StageOutcome, StreamProcessor, StreamProcessorBuilder,
};
pub use sink::{DeadLetter, Sink, SinkError};
pub use sink_stats::SinkStats;
