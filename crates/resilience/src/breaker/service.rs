//! The circuit breaker `Service`.

use std::fmt;
use std::task::{Context, Poll};

use tower::Service;

use super::classify::{Classify, ErrorIsFailure};
use super::future::ResponseFuture;
use super::state::Breaker;
use crate::error::BoxError;

/// Calls the inner service while its [`Breaker`] allows it and records how each call went.
///
/// `poll_ready` only asks the inner service: the breaker decides in `call`. A decision taken
/// in `poll_ready` would belong to this one clone and be lost between clones (tower clones a
/// ready service and calls the clone); a half-open probe slot reserved there could leak when
/// a ready service is dropped without being called. A refusal is an error, returned at once:
/// `Err(Box<CircuitOpen>)` as [`BoxError`]; the inner service's own errors pass through
/// boxed.
#[derive(Clone)]
pub struct CircuitBreaker<S, C = ErrorIsFailure> {
    inner: S,
    breaker: Breaker,
    classifier: C,
}

impl<S: fmt::Debug, C> fmt::Debug for CircuitBreaker<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker").field("inner", &self.inner).field("breaker", &self.breaker).finish()
    }
}

impl<S, C> CircuitBreaker<S, C> {
    /// Wraps `inner` in `breaker`, judging results with `classifier`.
    pub fn new(inner: S, breaker: Breaker, classifier: C) -> Self {
        CircuitBreaker { inner, breaker, classifier }
    }

    /// The breaker.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, C, Req> Service<Req> for CircuitBreaker<S, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    C: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        let inner = &mut self.inner;
        ResponseFuture::guarded(self.breaker.shared.clone(), self.classifier.clone(), None, || inner.call(request))
    }
}
