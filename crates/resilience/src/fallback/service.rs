//! The fallback service.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower::Service;

use super::future::ResponseFuture;
use super::handler::{FallbackHandler, FallbackService, FallbackValue, Shared};
use crate::error::BoxError;

/// Answers calls of `S` that fail with a chosen error through a [`FallbackHandler`]; made
/// by [`FallbackLayer`](super::FallbackLayer).
pub struct Fallback<S, P, H> {
    inner: S,
    shared: Arc<Shared<P, H>>,
}

impl<S, P, F> Fallback<S, P, FallbackValue<F>> {
    /// Answers errors of `inner` for which `predicate` holds with `answer(error)`.
    pub fn value(inner: S, predicate: P, answer: F) -> Self {
        Fallback::from_shared(inner, Arc::new(Shared { predicate, handler: FallbackValue(answer) }))
    }
}

impl<S, P, A> Fallback<S, P, FallbackService<A>> {
    /// Sends calls of `inner` whose error satisfies `predicate` to `alternative`.
    pub fn service(inner: S, predicate: P, alternative: A) -> Self {
        Fallback::from_shared(inner, Arc::new(Shared { predicate, handler: FallbackService(alternative) }))
    }
}

impl<S, P, H> Fallback<S, P, H> {
    pub(super) fn from_shared(inner: S, shared: Arc<Shared<P, H>>) -> Self {
        Fallback { inner, shared }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, consuming the fallback.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, P, H> Clone for Fallback<S, P, H> {
    fn clone(&self) -> Self {
        Fallback { inner: self.inner.clone(), shared: Arc::clone(&self.shared) }
    }
}

impl<S, Req, P, H> Service<Req> for Fallback<S, P, H>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    P: Fn(&BoxError) -> bool,
    H: FallbackHandler<Req, Response = S::Response>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, Req, P, H>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let kept = self.shared.handler.keep(&request);
        ResponseFuture::new(self.inner.call(request), kept, Arc::clone(&self.shared))
    }
}

impl<S: fmt::Debug, P, H> fmt::Debug for Fallback<S, P, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fallback").field("inner", &self.inner).finish_non_exhaustive()
    }
}
