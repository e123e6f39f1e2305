//! The cheap, cloneable configuration that wraps services in a breaker.

use std::fmt;

use tower::Layer;

use super::classify::ErrorIsFailure;
use super::config::BreakerConfig;
use super::events::StateChange;
use super::service::CircuitBreaker;
use super::state::Breaker;
use crate::error::ConfigError;

/// Wraps services in a [`CircuitBreaker`]. Every service it makes, and every clone of those,
/// shares one [`Breaker`]: a breaker opened by one task is open for all.
#[derive(Clone)]
#[must_use = "a layer does nothing until it wraps a service"]
pub struct CircuitBreakerLayer<C = ErrorIsFailure> {
    breaker: Breaker,
    classifier: C,
}

impl<C> fmt::Debug for CircuitBreakerLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerLayer").field("breaker", &self.breaker).finish_non_exhaustive()
    }
}

impl CircuitBreakerLayer {
    /// A layer with a new breaker; `Err` is a failure, `Ok` a success.
    pub fn new(config: BreakerConfig) -> Result<Self, ConfigError> {
        Ok(Breaker::new(config)?.layer())
    }
}

impl Breaker {
    /// A layer around this breaker; `Err` is a failure, `Ok` a success.
    pub fn layer(&self) -> CircuitBreakerLayer {
        CircuitBreakerLayer { breaker: self.clone(), classifier: ErrorIsFailure }
    }
}

impl<C> CircuitBreakerLayer<C> {
    /// Decides what a failure is with `classifier` instead (e.g.
    /// [`ServerErrorIsFailure`](super::ServerErrorIsFailure) or a closure).
    pub fn classify<C2>(self, classifier: C2) -> CircuitBreakerLayer<C2> {
        CircuitBreakerLayer { breaker: self.breaker, classifier }
    }

    /// Calls `callback` on every state change; see [`Breaker::on_state_change`].
    pub fn on_state_change(self, callback: impl Fn(StateChange) + Send + Sync + 'static) -> Self {
        self.breaker.on_state_change(callback);
        self
    }

    /// The breaker, to subscribe, take snapshots or force its state.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }
}

impl<S, C: Clone> Layer<S> for CircuitBreakerLayer<C> {
    type Service = CircuitBreaker<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreaker::new(inner, self.breaker.clone(), self.classifier.clone())
    }
}
