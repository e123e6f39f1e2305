//! # harvester
//!
//! Collect web data at high volume through pools of outbound proxies. This crate is
//! the facade: it re-exports the member crates so that one dependency brings them all.
//!
//! | module | crate | what it does |
//! |---|---|---|
//! | [`proxypool`] | `harvester-proxypool` | which proxy a request goes through: pool, balancers, leases, health, bans, and `ProxyClient` to send through it |
//! | [`pipeline`] | `harvester-pipeline` | staged stream processor: bounded queues, micro-batching, ordered mode, dead letters, batching sinks |
//! | [`resilience`] | `harvester-resilience` | tower layers: circuit breaker, retry with budget, rate limit, bulkhead, timeout, fallback |
//! | [`scaler`] | `harvester-scaler` | how many workers: reactive, Kubernetes HPA, predictive, scheduled and cost-capped engines, actuators, a driver |
//!
//! ```
//! use harvester::proxypool::{Proxy, ProxyPool, RequestContext, Requirements};
//!
//! let pool = ProxyPool::new([Proxy::parse("http://10.0.0.1:3128")?])?;
//! let lease = pool.acquire(&Requirements::ANY, &RequestContext::new())?;
//! assert_eq!(lease.proxy().port(), 3128);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

pub use harvester_pipeline as pipeline;
pub use harvester_proxypool as proxypool;
pub use harvester_resilience as resilience;
pub use harvester_scaler as scaler;

/// The README's examples, compiled and run as doctests so that it cannot drift.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
