//! The timeout's response future.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;

use crate::deadline::deadline_after;
use crate::error::{BoxError, TimedOut};

pin_project! {
    /// The future of a [`Timeout`](super::Timeout) call.
    pub struct ResponseFuture<F> {
        #[pin]
        response: F,
        #[pin]
        deadline: Sleep,
        after: Duration,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(response: F, after: Duration) -> Self {
        ResponseFuture { response, deadline: tokio::time::sleep_until(deadline_after(after)), after }
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // The response first: one that is ready at the deadline still counts.
        if let Poll::Ready(result) = this.response.poll(cx) {
            return Poll::Ready(result.map_err(Into::into));
        }
        match this.deadline.poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(TimedOut { after: *this.after }.into())),
            Poll::Pending => Poll::Pending,
        }
    }
}
