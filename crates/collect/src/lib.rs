//! # harvester-collect
//!
//! The main job: collect a list of URLs through a pool of proxies, end to end, into one JSON
//! line per URL, and a report of the run. It is what a host application builds from the
//! harvester crates: the [`ProxyClient`](harvester_proxypool::ProxyClient) picks a proxy per
//! attempt and classifies each answer, the resilience layers pace, retry and break per host,
//! the pipeline cleans each page into a record and writes it, the scaler sizes the CPU
//! stages. The `collect` binary (and `cargo run --example collect` at the workspace root) is
//! [`cli::main`]; the end-to-end tests drive [`run`] directly.
//!
//! - [`cli`]: the command line: flags, checks before any work, summary, exit codes.
//! - [`demo`]: the embedded demo, a product site and a faulty fleet on 127.0.0.1.
//! - [`files`]: the files a run names, refused together when two are one file.
//! - [`input`]: the URL list and the proxy list, refused with the line at fault.
//! - [`stack`]: the tower stack every fetch goes through.
//! - [`records`]: the output line, and the pipeline stages that turn a fetched page into a
//!   cleaned `DataRecord` (validate → extract → transform).
//! - [`output`]: the JSONL file, written by the pipeline's sink and its dead-letter sink, and
//!   the tally the report is made of.
//! - [`run`]: the job itself: fetch every URL, feed the pipeline, stop cleanly on request.
//! - [`report`]: the JSON summary.
//! - [`telemetry`]: Prometheus `/metrics`, `/health` and `/ready`, progress on a terminal or
//!   in log lines.
//!
//! ## Layers
//!
//! Each module imports only from the modules listed before it; the workspace's
//! `tests/layering.rs` reads this list and checks every import against it:
//! `files`, `input` → `demo`, `stack` → `records` → `output` → `telemetry` → `run` →
//! `report` → `cli`.
//!
//! ## The request path
//!
//! A URL is admitted by [`run`] when one of `--concurrency` slots is free (the one
//! concurrency limit) and goes through the [`stack`] as a [`Fetch`](stack::Fetch):
//! **retry** (a budget, backoff, each attempt through a proxy the URL has not tried) →
//! **rate limit** per host (every attempt counts; the client's hedges, capped by `--hedge`,
//! do not) → **circuit breaker** per host (the site's failures only) → the `ProxyClient`. The client's attempt timeout is the one timeout of an
//! attempt, and its [`Verdict`](harvester_proxypool::client::Verdict) on the answer (a
//! success, a ban, a captcha page counted as a ban, the target's error) is the one
//! classification: it travels with the [`Page`](stack::Page) to the retry and the breaker,
//! and with the [`Fetched`](records::Fetched) through the pipeline to `validate`. The
//! output sink writes each URL's [`Line`](records::Line).
//!
//! ## Feature flags
//!
//! - `redis`: `--redis`, the per-host rate limit and the proxies' health shared by every
//!   collector on one Redis.

#![forbid(unsafe_code)]

pub mod cli;
pub mod demo;
pub mod files;
pub mod input;
pub mod output;
pub mod records;
pub mod report;
pub mod run;
pub mod stack;
pub mod telemetry;
