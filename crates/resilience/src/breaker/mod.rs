//! A circuit breaker: stop calling what keeps failing, and try again carefully.
//!
//! A [`Breaker`] judges the recent calls in a sliding window ([`SlidingWindow`]: the last N
//! calls, or the calls of the last span of time in buckets). Once the window holds
//! `minimum_calls` calls and the share of failures reaches `failure_rate_threshold`, or the
//! share of calls slower than `slow_call_duration` reaches `slow_call_rate_threshold`, it
//! **opens**: calls are refused with [`CircuitOpen`](crate::CircuitOpen) for the open wait.
//! Then it turns **half-open** and lets `half_open_permitted_calls` probes through, refusing
//! the rest while they run: all probes succeeding closes it again, one failing (or enough slow
//! ones to reach the slow-call threshold) reopens it, with a wait that grows if configured
//! ([`OpenWaitGrowth`]). An operator may [force it open](Breaker::force_open) or
//! [closed](Breaker::force_closed), [disable](Breaker::disable) it, or run it in
//! [metrics-only](Breaker::metrics_only) shadow mode.
//!
//! What counts as a failure is a [`Classify`]er's call: by default an `Err`;
//! [`ServerErrorIsFailure`] also fails an HTTP response with a 5xx status, and any closure over
//! `&Result<Response, Error>` will do. State changes reach a callback and a broadcast channel
//! ([`StateChange`]), `tracing` and `metrics` (see [`events`]). A [`KeyedBreaker`] keeps one
//! breaker per key (target host, proxy), bounded in number.
//!
//! While closed, a call costs a load of the state word, a `fetch_add` on the window and a load
//! of the slot it overwrites: no lock, no allocation. Time is tokio's clock, so tests drive it
//! with `tokio::time::pause`.
//!
//! ```
//! use std::time::Duration;
//! use harvester_resilience::{BoxError, Rejection};
//! use harvester_resilience::breaker::{BreakerConfig, BreakerState, CircuitBreakerLayer, SlidingWindow};
//! use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), BoxError> {
//! let config = BreakerConfig {
//!     window: SlidingWindow::Count { calls: 20 },
//!     minimum_calls: 10,
//!     open_wait: Duration::from_secs(30),
//!     ..BreakerConfig::default()
//! };
//! let layer = CircuitBreakerLayer::new(config)?;
//! let breaker = layer.breaker().clone();
//! let mut target = ServiceBuilder::new()
//!     .layer(layer)
//!     .service(service_fn(|_: ()| async { Err::<(), _>("connection refused") }));
//!
//! for _ in 0..10 {
//!     let failed = target.ready().await?.call(()).await.unwrap_err();
//!     assert_eq!(failed.to_string(), "connection refused");
//! }
//! assert_eq!(breaker.state(), BreakerState::Open);
//!
//! let refused = target.ready().await?.call(()).await.unwrap_err();
//! match Rejection::of(&*refused) {
//!     Some(Rejection::CircuitOpen(open)) => assert_eq!(open.retry_in, Some(Duration::from_secs(30))),
//!     other => panic!("expected a refusal, got {other:?}"),
//! }
//! # Ok(())
//! # }
//! ```

mod classify;
mod config;
pub mod events;
mod future;
mod keyed;
mod layer;
mod service;
mod state;
mod window;

pub use crate::key::{ExtensionKey, HostKey, KeyExtractor, TargetHost};
pub use classify::{Classify, ErrorIsFailure, ServerErrorIsFailure};
pub use config::{BreakerConfig, Jitter, OpenWaitGrowth, SlidingWindow};
pub use events::{BreakerState, EVENT_CAPACITY, Reason, StateChange};
pub use future::ResponseFuture;
pub use keyed::{KeyedBreaker, KeyedCircuitBreaker, KeyedCircuitBreakerLayer};
pub use layer::CircuitBreakerLayer;
pub use service::CircuitBreaker;
pub use state::{Breaker, CallOutcome, Permit, Snapshot};
