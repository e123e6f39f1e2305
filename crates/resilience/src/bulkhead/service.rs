//! The bulkhead `Service`.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower::Service;

use super::future::ResponseFuture;
use super::partition::Bulkhead;
use crate::error::BoxError;

/// How a bulkhead finds the partition of a request: its name, or `None` for the default.
///
/// Implemented by every closure `Fn(&Req) -> Option<&str>`, and by [`DefaultPartition`].
pub trait SelectPartition<Req> {
    /// The partition `req` belongs to; `None` (or a name that is not a partition) means
    /// the default partition.
    fn select<'r>(&'r self, req: &'r Req) -> Option<&'r str>;
}

impl<Req, F> SelectPartition<Req> for F
where
    F: Fn(&Req) -> Option<&str>,
{
    #[inline]
    fn select<'r>(&'r self, req: &'r Req) -> Option<&'r str> {
        self(req)
    }
}

/// Every request goes to the default partition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefaultPartition;

impl<Req> SelectPartition<Req> for DefaultPartition {
    #[inline]
    fn select<'r>(&'r self, _req: &'r Req) -> Option<&'r str> {
        None
    }
}

/// Bounds the calls running at once in each partition; built by
/// [`BulkheadLayer`](super::BulkheadLayer). Every clone shares the partitions.
///
/// `poll_ready` only asks the inner service: places are taken for calls, not for
/// readiness. Tower's `ConcurrencyLimit` takes its permit in `poll_ready`, so a service
/// that is polled ready and then dropped or cloned without a call (as routers and
/// balancers do) holds a place no call uses, and a caller waiting in `poll_ready` has no
/// bound on its wait and no queue limit. Here `call` takes a free place at once; when none
/// is free, the call joins the partition's bounded queue (refused at once if the queue is
/// full) and its response future waits for a place, up to the max wait counted from the
/// call, then calls the inner service it took from `self` (the ready one; a clone stays
/// behind). The place goes back when the response future completes or is dropped, on
/// error, panic or cancellation alike.
pub struct BulkheadService<S, P> {
    inner: S,
    bulkhead: Bulkhead,
    selector: Arc<P>,
}

impl<S, P> BulkheadService<S, P> {
    pub(crate) fn new(inner: S, bulkhead: Bulkhead, selector: Arc<P>) -> Self {
        BulkheadService { inner, bulkhead, selector }
    }

    /// The partitions, shared with every clone.
    pub fn bulkhead(&self) -> &Bulkhead {
        &self.bulkhead
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, consuming this one.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, P, Req> Service<Req> for BulkheadService<S, P>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    P: SelectPartition<Req>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let partition = self.bulkhead.partition(self.selector.select(&req));
        // A place given back while calls wait goes to them (the semaphore is fair), so a free
        // place is one no waiting call needs.
        if let Some(place) = partition.try_enter() {
            return ResponseFuture::running(self.inner.call(req), place);
        }
        // The max wait counts from the call, not from the response future's first poll.
        match partition.join_queue(harvester_core::time::now()) {
            Ok(slot) => {
                let wait = Box::pin(Arc::clone(partition).wait_for_place(slot));
                let clone = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::queued(wait, ready, req)
            }
            Err(full) => ResponseFuture::refused(full),
        }
    }
}

impl<S: Clone, P> Clone for BulkheadService<S, P> {
    fn clone(&self) -> Self {
        BulkheadService {
            inner: self.inner.clone(),
            bulkhead: self.bulkhead.clone(),
            selector: Arc::clone(&self.selector),
        }
    }
}

impl<S: fmt::Debug, P> fmt::Debug for BulkheadService<S, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BulkheadService").field("inner", &self.inner).field("bulkhead", &self.bulkhead).finish()
    }
}
