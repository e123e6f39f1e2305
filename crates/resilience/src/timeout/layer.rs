//! The timeout layer.

use std::time::Duration;

use tower::Layer;

use super::service::Timeout;

/// Wraps services in [`Timeout`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a layer does nothing until it wraps a service"]
pub struct TimeoutLayer {
    after: Duration,
}

impl TimeoutLayer {
    /// Calls fail with `TimedOut` when they take longer than `after`. A zero limit fails
    /// every call that is not finished at its first poll.
    pub fn new(after: Duration) -> Self {
        TimeoutLayer { after }
    }

    /// The limit.
    pub fn after(&self) -> Duration {
        self.after
    }
}

impl Default for TimeoutLayer {
    /// 30 s, the seed's request timeout.
    fn default() -> Self {
        TimeoutLayer::new(Duration::from_secs(30))
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Timeout::new(inner, self.after)
    }
}
