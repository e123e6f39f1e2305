//! Limit how long a call may take.
//!
//! A [`TimeoutLayer`] wraps a service in [`Timeout`]: a call that has not finished after
//! the limit is dropped (which cancels it) and fails with [`TimedOut`](crate::TimedOut),
//! whose `after` says which limit ran out. Errors of the inner service pass through as
//! they are. The limit runs on tokio's clock, so tests drive it with
//! `tokio::time::pause`. It counts from the call; the timer itself is made only when the
//! response is not ready at its first poll, so that poll (like any poll of a response that
//! waits) must run inside a tokio runtime with time enabled.
//!
//! ```
//! use std::time::Duration;
//!
//! use harvester_resilience::{Rejection, TimeoutLayer};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let slow = service_fn(|_: ()| async {
//!     tokio::time::sleep(Duration::from_secs(60)).await;
//!     Ok::<_, std::convert::Infallible>("late")
//! });
//! let client = ServiceBuilder::new().layer(TimeoutLayer::new(Duration::from_secs(30))).service(slow);
//!
//! let error = client.oneshot(()).await.unwrap_err();
//! assert!(matches!(Rejection::of(&*error), Some(Rejection::TimedOut(t)) if t.after == Duration::from_secs(30)));
//! # }
//! ```
//!
//! Around a [`Retry`](crate::Retry), the timeout bounds the whole call, waits included;
//! for a limit on each attempt use the retry's `attempt_timeout`.

mod future;
mod layer;
mod service;

pub use future::ResponseFuture;
pub use layer::TimeoutLayer;
pub use service::Timeout;
