//! The fallback's response future.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::handler::{FallbackHandler, Shared};
use crate::error::BoxError;

pin_project! {
    /// The future of a [`Fallback`](super::Fallback) call.
    pub struct ResponseFuture<F, Req, P, H>
    where
        H: FallbackHandler<Req>,
    {
        #[pin]
        state: State<F, H::Future>,
        kept: Option<H::Kept>,
        shared: Arc<Shared<P, H>>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, A> {
        Primary { #[pin] future: F },
        Answering { #[pin] future: A },
    }
}

impl<F, Req, P, H> ResponseFuture<F, Req, P, H>
where
    H: FallbackHandler<Req>,
{
    pub(super) fn new(future: F, kept: H::Kept, shared: Arc<Shared<P, H>>) -> Self {
        ResponseFuture { state: State::Primary { future }, kept: Some(kept), shared }
    }
}

impl<F, T, E, Req, P, H> Future for ResponseFuture<F, Req, P, H>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    P: Fn(&BoxError) -> bool,
    H: FallbackHandler<Req, Response = T>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Primary { future } => {
                    let error = match ready!(future.poll(cx)) {
                        Ok(response) => return Poll::Ready(Ok(response)),
                        Err(error) => error.into(),
                    };
                    let kept = match this.kept.take() {
                        Some(kept) if (this.shared.predicate)(&error) => kept,
                        _ => return Poll::Ready(Err(error)),
                    };
                    tracing::debug!(%error, "answering with the fallback");
                    let future = this.shared.handler.answer(kept, error);
                    this.state.set(State::Answering { future });
                }
                StateProj::Answering { future } => return future.poll(cx),
            }
        }
    }
}
