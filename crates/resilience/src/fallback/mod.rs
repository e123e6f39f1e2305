//! Answer some failures differently: graceful degradation.
//!
//! A [`FallbackLayer`] wraps a service in [`Fallback`]. When a call fails with an error
//! that a predicate picks (for instance [`is_rejection`]: a breaker, a rate limiter, a
//! bulkhead or a timeout refused it), the call is answered another way instead of failing:
//!
//! - [`FallbackLayer::value`]: a response made from the error by a closure: a placeholder
//!   record, an empty page marked as degraded.
//! - [`FallbackLayer::service`]: the same request sent to an alternative service: a cache
//!   of pages already fetched, or a cheaper (datacenter) proxy pool when the residential
//!   one is refusing. The request is cloned before each call for this, hence `Req: Clone`.
//!
//! Other errors pass through unchanged, and so do errors of the alternative service.
//!
//! ```
//! use std::time::Duration;
//!
//! use harvester_resilience::fallback::{FallbackLayer, is_timeout};
//! use harvester_resilience::TimeoutLayer;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), harvester_resilience::BoxError> {
//! let slow_origin = service_fn(|url: String| async move {
//!     tokio::time::sleep(Duration::from_secs(60)).await;
//!     Ok::<_, std::convert::Infallible>(format!("fresh {url}"))
//! });
//! let cache = service_fn(|url: String| async move { Ok::<_, std::convert::Infallible>(format!("cached {url}")) });
//!
//! let client = ServiceBuilder::new()
//!     .layer(FallbackLayer::service(is_timeout, cache))
//!     .layer(TimeoutLayer::new(Duration::from_secs(5)))
//!     .service(slow_origin);
//!
//! assert_eq!(client.oneshot("https://shop.example/".to_owned()).await?, "cached https://shop.example/");
//! # Ok(())
//! # }
//! ```

mod future;
mod handler;
mod layer;
mod service;

pub use future::ResponseFuture;
pub use handler::{FallbackHandler, FallbackService, FallbackValue};
pub use layer::FallbackLayer;
pub use service::Fallback;

use crate::error::{BoxError, Rejection, TimedOut};

/// Whether one of this crate's layers refused the call (see [`Rejection`]).
pub fn is_rejection(error: &BoxError) -> bool {
    Rejection::of(&**error).is_some()
}

/// Whether the call timed out ([`TimedOut`]).
pub fn is_timeout(error: &BoxError) -> bool {
    error.is::<TimedOut>()
}
