//! The two ways a fallback answers: a value made from the error, or another service.

use std::future::{Future, Ready, ready};

use futures::TryFutureExt;
use futures::future::MapErr;
use tower::Service;
use tower::util::Oneshot;

use crate::error::BoxError;

/// How a [`Fallback`](super::Fallback) answers a call whose error matched.
///
/// Implemented by [`FallbackValue`] and [`FallbackService`].
pub trait FallbackHandler<Req> {
    /// The answer's response type, that of the wrapped service.
    type Response;
    /// What is kept of each request before it goes to the wrapped service, for the answer.
    type Kept;
    /// The answer.
    type Future: Future<Output = Result<Self::Response, BoxError>>;

    /// Keeps what the answer will need of `request`.
    fn keep(&self, request: &Req) -> Self::Kept;

    /// Answers the call whose request left `kept` and which failed with `error`.
    fn answer(&self, kept: Self::Kept, error: BoxError) -> Self::Future;
}

/// Answers with the response a closure makes from the error. Keeps nothing of the request.
#[derive(Clone, Debug)]
pub struct FallbackValue<F>(pub(super) F);

impl<Req, F, Res> FallbackHandler<Req> for FallbackValue<F>
where
    F: Fn(BoxError) -> Res,
{
    type Response = Res;
    type Kept = ();
    type Future = Ready<Result<Res, BoxError>>;

    fn keep(&self, _: &Req) -> Self::Kept {}

    fn answer(&self, (): (), error: BoxError) -> Self::Future {
        ready(Ok((self.0)(error)))
    }
}

/// Answers by sending a clone of the request to an alternative service.
#[derive(Clone, Debug)]
pub struct FallbackService<A>(pub(super) A);

impl<Req, A> FallbackHandler<Req> for FallbackService<A>
where
    Req: Clone,
    A: Service<Req> + Clone,
    A::Error: Into<BoxError>,
{
    type Response = A::Response;
    type Kept = Req;
    type Future = MapErr<Oneshot<A, Req>, fn(A::Error) -> BoxError>;

    fn keep(&self, request: &Req) -> Self::Kept {
        request.clone()
    }

    fn answer(&self, request: Req, _: BoxError) -> Self::Future {
        Oneshot::new(self.0.clone(), request).map_err(Into::into as fn(A::Error) -> BoxError)
    }
}

/// The predicate and the handler, shared by every clone and call.
pub(super) struct Shared<P, H> {
    pub(super) predicate: P,
    pub(super) handler: H,
}
