//! The response future of [`RateLimit`](super::RateLimit).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower::Service;

use crate::error::{BoxError, RateLimited};

pin_project! {
    /// Resolves to the inner service's response; in wait mode, first sleeps until the
    /// reserved cell is due. Dropping it while it sleeps forfeits the cell (the limiter
    /// errs on the side of the target: it never hands a cell out twice).
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
        Called { #[pin] future: S::Future },
        // Boxed so that the common, unlimited path keeps a small future.
        Waiting { sleep: Pin<Box<Sleep>>, call: Option<(S, Req)> },
        // Boxed already (as it leaves), so that the future stays small.
        Refused { error: Option<BoxError> },
    }
}

impl<S: Service<Req>, Req> ResponseFuture<S, Req> {
    pub(crate) fn called(future: S::Future) -> Self {
        ResponseFuture { state: State::Called { future } }
    }

    pub(crate) fn waiting(until: Instant, ready: S, req: Req) -> Self {
        ResponseFuture {
            state: State::Waiting { sleep: Box::pin(tokio::time::sleep_until(until)), call: Some((ready, req)) },
        }
    }

    pub(crate) fn refused(error: RateLimited) -> Self {
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
                StateProj::Called { future } => return future.poll(cx).map_err(Into::into),
                StateProj::Waiting { sleep, call } => {
                    ready!(sleep.as_mut().poll(cx));
                    let Some((mut service, req)) = call.take() else {
                        return Poll::Ready(Err("rate limit future polled after completion".into()));
                    };
                    state.set(State::Called { future: service.call(req) });
                }
                StateProj::Refused { error } => {
                    return Poll::Ready(Err(match error.take() {
                        Some(error) => error,
                        None => "rate limit future polled after completion".into(),
                    }));
                }
            }
        }
    }
}

impl<S: Service<Req>, Req> fmt::Debug for ResponseFuture<S, Req> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Called { .. } => "called",
            State::Waiting { .. } => "waiting",
            State::Refused { .. } => "refused",
        };
        f.debug_struct("ResponseFuture").field("state", &state).finish()
    }
}
