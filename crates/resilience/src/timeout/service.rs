//! The timeout service.

use std::task::{Context, Poll};
use std::time::Duration;

use tower::Service;

use super::future::ResponseFuture;
use crate::error::BoxError;

/// Fails calls of `S` that take longer than a limit with [`TimedOut`](crate::TimedOut).
#[derive(Clone, Debug)]
pub struct Timeout<S> {
    inner: S,
    after: Duration,
}

impl<S> Timeout<S> {
    /// Wraps `inner` with the limit `after`.
    pub fn new(inner: S, after: Duration) -> Self {
        Timeout { inner, after }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, consuming the timeout.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, Req> Service<Req> for Timeout<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness is not limited: a service waiting for capacity is the business of a
        // bulkhead or a rate limiter, which have their own maximum waits.
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        ResponseFuture::new(self.inner.call(request), self.after)
    }
}
