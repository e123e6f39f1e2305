//! The timeout's response future.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use harvester_core::time::Stamp;
use pin_project_lite::pin_project;
use tokio::time::Sleep;

use crate::deadline;
use crate::error::{BoxError, TimedOut};

pin_project! {
    /// The future of a [`Timeout`](super::Timeout) call.
    pub struct ResponseFuture<F> {
        #[pin]
        response: F,
        // Read at the call: the limit counts from there, not from the first poll. A raw
        // reading, made an instant only when a timer is needed.
        called: Stamp,
        // Made at the first poll that finds the response pending. A response ready at once
        // (a cache, a refusal by an inner layer) never builds a timer, which takes a
        // reference on the runtime and gives it back, nor carries one through every move of
        // the futures around it.
        timer: Option<Pin<Box<Sleep>>>,
        after: Duration,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(response: F, after: Duration) -> Self {
        ResponseFuture { response, called: Stamp::now(), timer: None, after }
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
        let deadline = || deadline::after(this.called.instant(), *this.after);
        let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline())));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(TimedOut { after: *this.after }.into())),
            Poll::Pending => Poll::Pending,
        }
    }
}
