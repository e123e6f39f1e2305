//! The response future of [`BulkheadService`](super::BulkheadService).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tower::Service;

use super::partition::Place;
use crate::error::{BoxError, BulkheadFull};

/// Waiting in a partition's queue for a place.
pub(crate) type WaitForPlace = Pin<Box<dyn Future<Output = Result<Place, BulkheadFull>> + Send>>;

pin_project! {
    /// Resolves to the inner service's response. Holds the call's place while the inner
    /// future runs and gives it back when it completes or is dropped; a queued call first
    /// waits for a place (up to the partition's max wait), then calls the inner service.
    pub struct ResponseFuture<S, Req>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S, Req>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, Req>
    where
        S: Service<Req>,
    {
        Running { #[pin] future: S::Future, place: Place },
        Queued { wait: WaitForPlace, call: Option<(S, Req)> },
        // Boxed already (as it leaves), so that the future stays small.
        Refused { error: Option<BoxError> },
    }
}

impl<S: Service<Req>, Req> ResponseFuture<S, Req> {
    pub(crate) fn running(future: S::Future, place: Place) -> Self {
        ResponseFuture { state: State::Running { future, place } }
    }

    pub(crate) fn queued(wait: WaitForPlace, ready: S, req: Req) -> Self {
        ResponseFuture { state: State::Queued { wait, call: Some((ready, req)) } }
    }

    pub(crate) fn refused(error: BulkheadFull) -> Self {
        ResponseFuture { state: State::Refused { error: Some(error.into()) } }
    }
}

impl<S, Req> Future for ResponseFuture<S, Req>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Running { future, .. } => return future.poll(cx).map_err(Into::into),
                StateProj::Queued { wait, call } => {
                    let waited = ready!(wait.as_mut().poll(cx));
                    let next = match (waited, call.take()) {
                        (Ok(place), Some((mut service, req))) => State::Running { future: service.call(req), place },
                        (Err(full), _) => State::Refused { error: Some(full.into()) },
                        (Ok(_), None) => State::Refused { error: None },
                    };
                    state.set(next);
                }
                StateProj::Refused { error } => {
                    return Poll::Ready(Err(match error.take() {
                        Some(error) => error,
                        None => "bulkhead future polled after completion".into(),
                    }));
                }
            }
        }
    }
}

impl<S: Service<Req>, Req> fmt::Debug for ResponseFuture<S, Req> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Running { .. } => "running",
            State::Queued { .. } => "queued",
            State::Refused { .. } => "refused",
        };
        f.debug_struct("ResponseFuture").field("state", &state).finish()
    }
}
