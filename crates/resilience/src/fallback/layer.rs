//! The fallback layer.

use std::fmt;
use std::sync::Arc;

use tower::Layer;

use super::handler::{FallbackService, FallbackValue, Shared};
use super::service::Fallback;

/// Wraps services in [`Fallback`]; cloning it is cheap (the predicate and the handler
/// are shared).
#[must_use = "a layer does nothing until it wraps a service"]
pub struct FallbackLayer<P, H> {
    shared: Arc<Shared<P, H>>,
}

impl<P, F> FallbackLayer<P, FallbackValue<F>> {
    /// Errors for which `predicate` holds are answered with `answer(error)`.
    pub fn value(predicate: P, answer: F) -> Self {
        FallbackLayer { shared: Arc::new(Shared { predicate, handler: FallbackValue(answer) }) }
    }
}

impl<P, A> FallbackLayer<P, FallbackService<A>> {
    /// Calls whose error satisfies `predicate` are sent to `alternative` instead.
    pub fn service(predicate: P, alternative: A) -> Self {
        FallbackLayer { shared: Arc::new(Shared { predicate, handler: FallbackService(alternative) }) }
    }
}

impl<P, H> Clone for FallbackLayer<P, H> {
    fn clone(&self) -> Self {
        FallbackLayer { shared: Arc::clone(&self.shared) }
    }
}

impl<S, P, H> Layer<S> for FallbackLayer<P, H> {
    type Service = Fallback<S, P, H>;

    fn layer(&self, inner: S) -> Self::Service {
        Fallback::from_shared(inner, Arc::clone(&self.shared))
    }
}

impl<P, H> fmt::Debug for FallbackLayer<P, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackLayer").finish_non_exhaustive()
    }
}
