//! The response future: records the outcome when the call finishes, frees a probe slot when
//! the call is dropped unfinished.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use harvester_core::time::Stamp;
use pin_project_lite::pin_project;
use tokio::time::Instant;

use super::classify::Classify;
use super::state::{OwnedPermit, Shared, Ticket};
use crate::error::{BoxError, CircuitOpen};

pin_project! {
    /// The response future of [`CircuitBreaker`](super::CircuitBreaker) and
    /// [`KeyedCircuitBreaker`](super::KeyedCircuitBreaker).
    ///
    /// Dropping it before it completes (a timeout, a cancelled task) records nothing; a
    /// half-open probe gives its slot back, so that cancelled probes cannot wedge the breaker
    /// half-open.
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F, C> {
        #[pin]
        kind: Kind<F, C>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, C> {
        Called {
            #[pin]
            future: F,
            classifier: C,
            // Dropped with the future; its `Drop` releases a probe slot.
            permit: Option<OwnedPermit>,
            started: Option<Stamp>,
        },
        Refused {
            error: CircuitOpen,
        },
    }
}

impl<F, C> ResponseFuture<F, C> {
    /// Asks `shared` for a permit and, if granted, makes the call. `now`, if the caller has
    /// read the clock already, saves reading it again.
    #[inline]
    pub(crate) fn guarded(shared: Arc<Shared>, classifier: C, now: Option<Instant>, call: impl FnOnce() -> F) -> Self {
        match shared.acquire() {
            Ok(ticket) => {
                let started = shared.times(ticket).then(|| now.map_or_else(Stamp::now, Stamp::at));
                let permit = (ticket != Ticket::Free).then(|| OwnedPermit::new(shared, ticket));
                let future = call();
                ResponseFuture { kind: Kind::Called { future, classifier, permit, started } }
            }
            Err(error) => ResponseFuture { kind: Kind::Refused { error } },
        }
    }

    /// A call no breaker watches (a keyed breaker found no key).
    pub(crate) fn unguarded(future: F, classifier: C) -> Self {
        ResponseFuture { kind: Kind::Called { future, classifier, permit: None, started: None } }
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    C: Classify<T, E>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called { future, classifier, permit, started } => {
                let result = ready!(future.poll(cx));
                if let Some(permit) = permit.take() {
                    let failed = classifier.is_failure(&result);
                    match *started {
                        // The window reads the clock itself only if it is time-based.
                        Some(started) => permit.record(failed, started.elapsed(), None),
                        None => permit.record(failed, Duration::ZERO, None),
                    }
                }
                Poll::Ready(result.map_err(Into::into))
            }
            KindProj::Refused { error } => Poll::Ready(Err(Box::new(error.clone()))),
        }
    }
}
