//! A bulkhead: a bound on the calls running at once, in named partitions, so that one kind
//! of work cannot take every connection, proxy session or worker from the others.
//!
//! Each partition has `max_concurrent` places (a `tokio::sync::Semaphore`), a queue of at
//! most `max_queue` waiting calls and a `max_wait`. A call takes a free place at once; else
//! it queues and waits; a call finding the queue full is refused at once
//! ([`BulkheadFull`](crate::BulkheadFull) with `waited` zero), one still waiting `max_wait`
//! after the call is refused then (`waited` = `max_wait`). The wait counts from the call,
//! but a queued call only claims a place once its response future is polled: queued calls
//! get places in the order their futures start waiting, a place given back while they wait
//! goes to them (the semaphore is fair; no new call can take it), and a place free while
//! queued futures are not polled yet goes to the next call rather than sitting idle. A
//! call's place is held by its response future and given back when that completes or is
//! dropped — success, error, panic or cancellation alike.
//!
//! Partitions are chosen per request by a closure returning a partition name; a request
//! naming none, or a partition that does not exist, goes to the default partition. The
//! default configuration is the seed's: `critical` 10, `regular` (default) 50, `monitoring` 5.
//!
//! Metrics (labels `bulkhead`, `partition`): gauges `harvester_bulkhead_in_flight` and
//! `harvester_bulkhead_queued`, counter `harvester_bulkhead_rejected_total`. Refusals emit a
//! `tracing` debug event.
//!
//! ```
//! use std::time::Duration;
//! use harvester_resilience::bulkhead::{BulkheadConfig, BulkheadLayer};
//! use harvester_resilience::{BoxError, Rejection};
//! use tower::{Service, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), BoxError> {
//! // Requests say their partition in a header; the rest are "regular".
//! let layer = BulkheadLayer::partitioned(BulkheadConfig::default(), |req: &http::Request<()>| {
//!     req.headers().get("x-partition").and_then(|v| v.to_str().ok())
//! })?;
//! let bulkhead = layer.bulkhead().clone();
//! let mut service = ServiceBuilder::new().layer(layer).service_fn(|_req: http::Request<()>| async {
//!     tokio::time::sleep(Duration::from_secs(10)).await;
//!     Ok::<_, BoxError>("done")
//! });
//!
//! // Five monitoring calls fill their partition, five more fill its queue...
//! let monitoring = || http::Request::get("/health").header("x-partition", "monitoring").body(()).unwrap();
//! let mut running = Vec::new();
//! for _ in 0..10 {
//!     running.push(service.ready().await?.call(monitoring()));
//! }
//! assert_eq!(bulkhead.stats("monitoring").unwrap().available, 0);
//! // ...so the next one is refused at once, while regular calls still have places.
//! let refused = service.ready().await?.call(monitoring()).await.unwrap_err();
//! assert!(matches!(Rejection::of(&*refused), Some(Rejection::BulkheadFull(full)) if full.waited.is_zero()));
//! assert_eq!(bulkhead.stats("regular").unwrap().available, 50);
//! # Ok(())
//! # }
//! ```

mod config;
mod future;
mod layer;
mod partition;
mod service;

pub use config::{BulkheadConfig, PartitionConfig};
pub use future::ResponseFuture;
pub use layer::BulkheadLayer;
pub use partition::{Bulkhead, PartitionStats};
pub use service::{BulkheadService, DefaultPartition, SelectPartition};
