//! The retry service.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower::Service;

use super::budget::RetryBudget;
use super::future::ResponseFuture;
use super::policy::{DefaultErrorPolicy, ErrorPolicy, NeverRetryResponses, PrepareRetry, ResponsePolicy, SameRequest};
use super::shared::Calls;
use crate::error::BoxError;

/// Retries failed calls of `S` with backoff, within a retry budget; made by
/// [`RetryLayer`](super::RetryLayer).
///
/// Every clone shares the settings, the policies and the budget. Each call keeps a clone of
/// its request for the attempts after the first, hence `Req: Clone` (see the
/// [module docs](super) for requests with bodies). Those attempts go through a clone of the
/// wrapped service as the layer received it (one spare, shared by the clones of this
/// service), made only when a call is retried: a call answered at once clones nothing. A
/// service that keeps state of its own per clone (not behind an `Arc`) therefore retries
/// from the state it had when it was wrapped.
pub struct Retry<S, R = NeverRetryResponses, E = DefaultErrorPolicy, P = SameRequest> {
    inner: S,
    calls: Arc<Calls<S, R, E, P>>,
}

impl<S, R, E, P> Retry<S, R, E, P> {
    pub(super) fn from_calls(inner: S, calls: Arc<Calls<S, R, E, P>>) -> Self {
        Retry { inner, calls }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably. A change reaches first attempts only: retries go
    /// through clones of the service as the layer received it (see [`Retry`]).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, consuming the retry.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The budget this service draws on, if any.
    pub fn retry_budget(&self) -> Option<&Arc<RetryBudget>> {
        self.calls.shared.settings.budget.as_ref()
    }
}

impl<S: Clone, R, E, P> Clone for Retry<S, R, E, P> {
    fn clone(&self) -> Self {
        Retry { inner: self.inner.clone(), calls: Arc::clone(&self.calls) }
    }
}

impl<S, Req, R, E, P> Service<Req> for Retry<S, R, E, P>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    Req: Clone,
    R: ResponsePolicy<S::Response>,
    E: ErrorPolicy,
    P: PrepareRetry<Req, S::Response>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req, R, E, P>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let settings = &self.calls.shared.settings;
        if let Some(budget) = &settings.budget {
            budget.deposit();
        }
        settings.metrics.attempts.increment(1);
        let spare = request.clone();
        let future = self.inner.call(request);
        ResponseFuture::new(future, Arc::clone(&self.calls), spare)
    }
}

impl<S: fmt::Debug, R, E, P> fmt::Debug for Retry<S, R, E, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry").field("inner", &self.inner).field("settings", &self.calls.shared.settings).finish()
    }
}
