//! The collector behind `examples/collect`: what a host application builds from the
//! harvester crates, kept apart from the command line so the end-to-end tests run it too.
//!
//! - [`files`]: the files a run names, refused together when two are one file.
//! - [`input`]: the URL list and the proxy list, refused with the line at fault.
//! - [`stack`]: the tower stack every fetch goes through (bulkhead, retry with a budget and
//!   a fresh proxy per attempt, per-host rate limit and circuit breaker, timeout, the
//!   `ProxyClient`).
//! - [`records`]: one output line per URL, and the pipeline stages that turn a fetched page
//!   into a cleaned `DataRecord` (validate → extract → transform).
//! - [`output`]: the JSONL file, written by the pipeline's sink and its dead-letter sink, and
//!   the tally the report is made of.
//! - [`run`]: the job itself: fetch every URL, feed the pipeline, stop cleanly on request.
//! - [`report`]: the JSON summary.
//! - [`telemetry`]: Prometheus `/metrics`, `/health` and `/ready`, progress on a terminal or
//!   in log lines.

// Each user (the example, each test) uses a different part.
#![allow(dead_code)]

pub mod files;
pub mod input;
pub mod output;
pub mod records;
pub mod report;
pub mod run;
pub mod stack;
pub mod telemetry;
