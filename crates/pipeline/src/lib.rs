//! # harvester-pipeline
//!
//! Collected pages become records that must be validated, enriched, transformed and
//! stored at the rate they arrive, without losing one and without unbounded memory.
//! This crate is the plumbing: a staged stream processor with bounded queues and
//! backpressure, error policies ending in a dead-letter sink, batching sinks, and a
//! graceful shutdown that accounts for every record.
//!
//! Status: under construction (see the README). [`sink`] defines what the processor
//! writes to.

#![forbid(unsafe_code)]

pub mod sink;

pub use sink::{DeadLetter, Sink, SinkError};
