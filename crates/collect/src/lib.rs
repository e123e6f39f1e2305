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
//! - [`input`]: the URL list and the proxy list, refused with the line at fault; the URL
//!   list streamed a line at a time.
//! - [`url_set`]: the URLs of a list as 64-bit fingerprints, each with a mark (handed out,
//!   or done).
//! - [`work`]: where a run's URLs come from (a list, a shared queue) and how a URL's work
//!   is settled once its final line is written.
//! - [`url_file`]: the `--urls` file as a run's work, read twice (checked, then handed
//!   out), never held whole.
//! - [`extraction`]: reading a product out of a real page (JSON-LD, microdata, OpenGraph and
//!   meta tags, the visible page, per-host rules of `--extract-rules`), telling ban and
//!   captcha pages by their structure, and soft 404s.
//! - [`stack`]: the tower stack every fetch goes through.
//! - [`records`]: the output line, and the pipeline stages that turn a fetched page into a
//!   cleaned `DataRecord` (validate → extract → transform).
//! - [`resume`]: `--resume`: the final lines an earlier run left in `--out` kept (one per
//!   URL, a torn last line and interrupted lines dropped), the file repaired atomically, and
//!   their URLs skipped.
//! - [`output`]: the JSONL file, written by the pipeline's sink and its dead-letter sink, and
//!   the tally the report is made of.
//! - `queue` (feature `redis`): a work queue on Redis Streams shared by many collectors:
//!   enqueue, take over a dead collector's URLs, export one line per URL.
//! - [`costs`]: what the run cost per provider, kind of proxy and site, per request and per
//!   collected URL, and which proxies to prefer where.
//! - [`run`]: the job itself: fetch every URL, feed the pipeline, stop cleanly on request.
//! - [`report`]: the JSON summary.
//! - [`telemetry`]: Prometheus `/metrics`, `/health` and `/ready`, progress on a terminal or
//!   in log lines.
//!
//! ## Layers
//!
//! Each module imports only from the modules listed before it; the workspace's
//! `tests/layering.rs` reads this list and checks every import against it:
//! `files`, `input` → `url_set` → `work` → `url_file`, `extraction`, `demo`, `stack` → `records` →
//! `resume` → `output` → `queue`, `costs` → `telemetry` → `run` → `report` → `cli`.
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
//! classification: the client's classifier is the job's
//! [`PageClassifier`](extraction::PageClassifier), which judges statuses as the default
//! does and a `2xx` page by its structure (bot-wall titles, challenge elements, a captcha
//! widget on a page with no product, the host's markers of `--extract-rules`). The verdict
//! travels with the [`Page`](stack::Page) to the retry and the breaker, and with the
//! [`Fetched`](records::Fetched) through the pipeline to `validate`. The output sink writes
//! each URL's [`Line`](records::Line).
//!
//! ## Extraction
//!
//! The `extract` stage parses each page once (html5ever, through `scraper`) and reads the
//! product's name, price, currency, description and availability from, in order of trust:
//! the host's rule of `--extract-rules`, schema.org JSON-LD, schema.org microdata,
//! OpenGraph and product meta tags, then the first `<h1>`, the `<title>` and a visible text
//! that reads as a price. Each field's source is written in the record's
//! `processing_metadata.field_sources` (`"json-ld"`, `"microdata"`, `"meta"`, `"rule"`, …).
//! A page that says "not found" and carries no product is a soft 404: its line is
//! `failed` with `soft 404: …`. See [`extraction`] for the details and the rule file.
//!
//! ## Feature flags
//!
//! - `redis`: `--redis`, the per-host rate limit and the proxies' health shared by every
//!   collector on one Redis.

#![forbid(unsafe_code)]

pub mod cli;
pub mod costs;
pub mod demo;
pub mod extraction;
pub mod files;
pub mod input;
pub mod output;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod queue;
pub mod records;
pub mod report;
pub mod resume;
pub mod run;
pub mod stack;
pub mod telemetry;
pub mod url_file;
pub mod url_set;
pub mod work;
