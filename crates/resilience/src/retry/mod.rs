//! Retry failed calls, with backoff, within a retry budget.
//!
//! A [`RetryLayer`] wraps a service in [`Retry`]: when an attempt fails, the call is made
//! again, up to `max_attempts` in all, after a [`Backoff`] delay. What counts as failed is
//! decided twice: an [`ErrorPolicy`] over errors (by default [`decide_by_default`]: every
//! error except the refusals a retry cannot help) and a [`ResponsePolicy`] over successful
//! responses (by default none is retried; [`RetryOnStatus`] retries HTTP 429, 503, ...).
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::time::Duration;
//!
//! use harvester_resilience::retry::{RetryConfig, RetryLayer, RetryOnStatus};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), harvester_resilience::BoxError> {
//! let config = RetryConfig { max_attempts: 4, base_delay: Duration::from_millis(10), ..RetryConfig::default() };
//! let retry = RetryLayer::new(config)?.retry_on_response(RetryOnStatus::transient());
//!
//! // An upstream that is busy twice, then answers.
//! let calls = Arc::new(AtomicU32::new(0));
//! let upstream = service_fn(move |_: http::Request<String>| {
//!     let status = if calls.fetch_add(1, Ordering::Relaxed) < 2 { 503 } else { 200 };
//!     async move { http::Response::builder().status(status).body(String::new()) }
//! });
//!
//! let client = ServiceBuilder::new().layer(retry).service(upstream);
//! let response = client.oneshot(http::Request::new("query".to_owned())).await?;
//! assert_eq!(response.status(), 200);
//! # Ok(())
//! # }
//! ```
//!
//! # When to come back
//!
//! The wait before a retry is the backoff delay, or longer when the upstream said when to
//! come back: a response's `Retry-After` (delta-seconds or an HTTP date, read by
//! [`RetryOnStatus`] or by your policy through [`retry_after`]) or the `retry_in` of a
//! [`RateLimited`](crate::RateLimited) rejection from an inner rate limiter. Such a request
//! is capped by `max_retry_after`: the wait is `max(backoff, min(asked, max_retry_after))`.
//!
//! With `attempt_timeout`, an attempt running longer is dropped and counts as failed with
//! [`TimedOut`](crate::TimedOut), which the default policy retries.
//!
//! # The budget
//!
//! Retries multiply load exactly when an upstream is failing. The [`RetryBudget`] (Finagle's,
//! tower's `TpsBudget`) lets retries add at most `retry_percent` of the calls (20 %) plus
//! `min_per_sec` retries a second (10) over the last `ttl` (10 s), whatever `max_attempts`
//! says: 1000 calls to a dead upstream with 3 attempts make about 1300 attempts, not 3000.
//! It is shared by every clone of the layer's services. When it refuses a retry, an error
//! becomes [`RetryBudgetExhausted`](crate::RetryBudgetExhausted) (with the last error as
//! text and as its `source`); a retryable response is returned as it is, so its status and
//! body stay readable.
//!
//! # Requests must be `Clone`
//!
//! Each call keeps a copy of its request for the later attempts. For HTTP, buffer the body
//! first: `http::Request<bytes::Bytes>` is `Clone` and cheap to clone (the body is
//! reference-counted). A streaming body cannot be replayed: collect it into `Bytes` before
//! the retry layer, or do not retry that request.
//!
//! # Observing
//!
//! Counters `harvester_retry_attempts_total`, `harvester_retry_retries_total`,
//! `harvester_retry_budget_exhausted_total` and the gauge `harvester_retry_budget_tokens`
//! (updated at each retry), labelled `retry = <name>`, through the `metrics` facade; a
//! `tracing` debug event for each retry and each call given up.

mod backoff;
mod budget;
mod config;
mod future;
mod layer;
mod policy;
mod service;
mod shared;

pub use backoff::Backoff;
pub use budget::RetryBudget;
pub use config::{BackoffKind, BudgetConfig, RetryConfig};
pub use future::ResponseFuture;
pub use layer::RetryLayer;
pub use policy::{
    Decision, DefaultErrorPolicy, ErrorPolicy, NeverRetryResponses, PrepareRetry, ResponsePolicy, RetryOnStatus,
    SameRequest, decide_by_default, parse_retry_after, retry_after,
};
pub use service::Retry;
