//! The response future: one call, through all its attempts.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep, sleep_until};
use tower::Service;

use super::policy::{Decision, ErrorPolicy, PrepareRetry, ResponsePolicy, rejection_retry_in};
use super::shared::{Calls, Shared};
use crate::deadline::deadline_after;
use crate::error::{BoxError, RetryBudgetExhausted, TimedOut};

pin_project! {
    /// The future of a [`Retry`](super::Retry) call.
    pub struct ResponseFuture<S, Req, R, E, P>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S::Future>,
        // The running attempt's deadline, or the end of the wait before the next attempt:
        // one timer for both, created when first needed and reset after. Boxed: most calls
        // never need it, and every layer above moves this future by value.
        sleep: Option<Pin<Box<Sleep>>>,
        // The service for attempts after the first: a clone of the retry service's spare,
        // made when the first retry is due (after its wait), then polled ready.
        service: Option<S>,
        calls: Arc<Calls<S, R, E, P>>,
        request: Req,
        attempts: u32,
        previous_delay: Duration,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Calling { #[pin] future: F },
        Waiting,
        Readying,
        // The result was handed out; polling again stays pending rather than call again.
        Done,
    }
}

impl<S, Req, R, E, P> ResponseFuture<S, Req, R, E, P>
where
    S: Service<Req>,
{
    pub(super) fn new(future: S::Future, calls: Arc<Calls<S, R, E, P>>, request: Req) -> Self {
        let sleep = calls.shared.settings.attempt_timeout.map(|after| Box::pin(sleep_until(deadline_after(after))));
        ResponseFuture {
            state: State::Calling { future },
            sleep,
            service: None,
            calls,
            request,
            attempts: 1,
            previous_delay: Duration::ZERO,
        }
    }
}

impl<S, Req, R, E, P> Future for ResponseFuture<S, Req, R, E, P>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    Req: Clone,
    R: ResponsePolicy<S::Response>,
    E: ErrorPolicy,
    P: PrepareRetry<Req, S::Response>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let shared = &this.calls.shared;
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { future } => {
                    let result = match future.poll(cx) {
                        Poll::Ready(result) => result.map_err(Into::into),
                        Poll::Pending => match (shared.settings.attempt_timeout, this.sleep.as_mut()) {
                            (Some(after), Some(deadline)) => {
                                ready!(deadline.as_mut().poll(cx));
                                Err(TimedOut { after }.into())
                            }
                            _ => return Poll::Pending,
                        },
                    };
                    // Drops a timed-out attempt's future, cancelling it.
                    this.state.set(State::Done);
                    shared.prepare.prepare(this.request, &result);
                    match next(shared, result, *this.attempts, this.previous_delay) {
                        Next::Return(result) => return Poll::Ready(result),
                        Next::Retry(wait) if wait.is_zero() => this.state.set(State::Readying),
                        Next::Retry(wait) => {
                            reset(this.sleep, deadline_after(wait));
                            this.state.set(State::Waiting);
                        }
                    }
                }
                StateProj::Waiting => {
                    if let Some(wait) = this.sleep.as_mut() {
                        ready!(wait.as_mut().poll(cx));
                    }
                    this.state.set(State::Readying);
                }
                StateProj::Readying => {
                    let service = this.service.get_or_insert_with(|| this.calls.spare());
                    if let Err(error) = ready!(service.poll_ready(cx)) {
                        return Poll::Ready(Err(error.into()));
                    }
                    *this.attempts += 1;
                    shared.settings.metrics.attempts.increment(1);
                    if let Some(after) = shared.settings.attempt_timeout {
                        reset(this.sleep, deadline_after(after));
                    }
                    let future = service.call(this.request.clone());
                    this.state.set(State::Calling { future });
                }
                StateProj::Done => return Poll::Pending,
            }
        }
    }
}

fn reset(sleep: &mut Option<Pin<Box<Sleep>>>, deadline: Instant) {
    match sleep {
        Some(timer) => timer.as_mut().reset(deadline),
        None => *sleep = Some(Box::pin(sleep_until(deadline))),
    }
}

enum Next<T> {
    Return(Result<T, BoxError>),
    Retry(Duration),
}

/// After attempt number `attempts` ended with `result`: return it, or retry after a wait.
fn next<T, R, E, P>(
    shared: &Shared<R, E, P>,
    result: Result<T, BoxError>,
    attempts: u32,
    previous: &mut Duration,
) -> Next<T>
where
    R: ResponsePolicy<T>,
    E: ErrorPolicy,
{
    let decision = match &result {
        Ok(response) => shared.response_policy.decide(response),
        Err(error) => match shared.error_policy.decide(error) {
            Decision::Retry => rejection_retry_in(error).map_or(Decision::Retry, Decision::RetryAfter),
            decision => decision,
        },
    };
    let asked = match decision {
        Decision::Return => return Next::Return(result),
        Decision::Retry => None,
        Decision::RetryAfter(wait) => Some(wait),
    };
    let settings = &shared.settings;
    if attempts >= settings.max_attempts {
        tracing::debug!(retry = %settings.name, attempts, "giving up: no attempt left");
        return Next::Return(result);
    }
    if let Some(budget) = &settings.budget {
        let granted = budget.try_withdraw();
        settings.metrics.budget_tokens.set(budget.balance());
        if !granted {
            settings.metrics.budget_exhausted.increment(1);
            tracing::debug!(retry = %settings.name, attempts, "giving up: retry budget exhausted");
            // A response stays a response: the caller can still read its status and body.
            return Next::Return(result.map_err(|error| RetryBudgetExhausted::new(attempts, error).into()));
        }
    }
    let backoff = settings.backoff.delay(attempts, *previous);
    *previous = backoff;
    let wait = match asked {
        Some(asked) => backoff.max(asked.min(settings.max_retry_after)),
        None => backoff,
    };
    settings.metrics.retries.increment(1);
    match &result {
        Err(error) => {
            tracing::debug!(retry = %settings.name, attempt = attempts, ?wait, %error, "retrying after error")
        }
        Ok(_) => tracing::debug!(retry = %settings.name, attempt = attempts, ?wait, "retrying after response"),
    }
    Next::Retry(wait)
}
