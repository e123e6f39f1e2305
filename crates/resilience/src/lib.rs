//! # harvester-resilience
//!
//! tower layers that keep a collector standing when targets and proxies fail: a
//! [`breaker`] that stops calling what keeps failing, [`retry`] with backoff and a retry
//! budget shared by every clone, a GCRA [`rate_limit`] (direct or per key), a
//! [`bulkhead`] with named partitions, a [`timeout`] and a [`fallback`].
//!
//! Every layer composes with `tower::ServiceBuilder`, is `Clone`, and every clone of a
//! service shares one state: a breaker opened by one task is open for all, and a rate
//! limit holds across every clone and thread. Time comes from tokio's clock, so tests run
//! under `tokio::time::pause`. A refusal is a typed error (see [`error`]): the services
//! return `tower::BoxError`, and [`Rejection::of`] tells which layer refused and why.
//!
//! The keyed layers (a breaker per host, a rate limit per key, distributed or not) find a
//! request's key with one [`KeyExtractor`] trait (see [`key`]): a closure
//! `Fn(&Req) -> Option<K>`, [`key::TargetHost`] or [`key::ExtensionKey`]; a request
//! without a key passes. Every layer takes its configuration by value.
//!
//! Metrics go through the `metrics` facade and events through `tracing`; neither needs a
//! recorder or subscriber to be installed.
//!
//! ## Feature flags
//!
//! - `redis`: [`distributed`], a GCRA rate limit shared by every process through Redis
//!   (one Lua script per check, a local deny-cache, a policy for when Redis is down), on
//!   the connection of the `harvester-redis` crate.
//! - `redis-tls`: `rediss://` URLs for it, over rustls with the ring provider (the `tls`
//!   feature of `harvester-redis`).

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod breaker;
pub mod bulkhead;
mod deadline;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod distributed;
pub mod error;
pub mod fallback;
pub mod key;
pub mod rate_limit;
pub mod retry;
pub mod timeout;

pub use breaker::{
    Breaker, BreakerConfig, CircuitBreaker, CircuitBreakerLayer, KeyedBreaker, KeyedCircuitBreakerLayer,
};
pub use bulkhead::{BulkheadConfig, BulkheadLayer};
pub use error::{
    BoxError, BulkheadFull, CircuitOpen, ConfigError, LimiterUnavailable, RateLimited, Rejection, RetryBudgetExhausted,
    TimedOut,
};
pub use fallback::{Fallback, FallbackLayer};
pub use key::KeyExtractor;
pub use rate_limit::{Quota, RateLimitConfig, RateLimitLayer};
pub use retry::{Backoff, Retry, RetryBudget, RetryConfig, RetryLayer};
pub use timeout::{Timeout, TimeoutLayer};
