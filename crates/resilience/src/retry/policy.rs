//! What is worth retrying: decisions on responses and on errors, and `Retry-After`.

use std::time::{Duration, SystemTime};

use http::StatusCode;

use crate::error::{BoxError, Rejection};

/// What to do with an attempt's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Hand the outcome to the caller.
    Return,
    /// Retry after the backoff delay (or the `retry_in` of a rate limiter's rejection).
    Retry,
    /// Retry after at least this long (capped by `max_retry_after`), or after the backoff
    /// delay if that is longer: the upstream said when to come back.
    RetryAfter(Duration),
}

impl Decision {
    /// [`Retry`](Decision::Retry) when `retry`, else [`Return`](Decision::Return).
    pub fn retry_if(retry: bool) -> Self {
        if retry { Decision::Retry } else { Decision::Return }
    }
}

/// Decides whether a successful response is retried: an `Ok` 503 or 429 usually should be.
///
/// Any `Fn(&Res) -> Decision` is one; [`RetryOnStatus`] is a ready-made one for
/// `http::Response<B>` that honours `Retry-After`.
pub trait ResponsePolicy<Res> {
    /// The decision for `response`.
    fn decide(&self, response: &Res) -> Decision;
}

impl<F, Res> ResponsePolicy<Res> for F
where
    F: Fn(&Res) -> Decision,
{
    fn decide(&self, response: &Res) -> Decision {
        self(response)
    }
}

/// Edits a request before it is sent again, from how the last attempt went: what the next
/// attempt must know of the ones before it (the proxy it went through, to avoid it; a fresh
/// token). Called after every attempt that ended, before the decision; the request is
/// dropped when no attempt follows.
///
/// Any `Fn(&mut Req, &Result<Res, BoxError>)` is one; [`SameRequest`] (the default) sends
/// the same request every time.
pub trait PrepareRetry<Req, Res> {
    /// Edits `request` after an attempt that ended with `last`.
    fn prepare(&self, request: &mut Req, last: &Result<Res, BoxError>);
}

impl<F, Req, Res> PrepareRetry<Req, Res> for F
where
    F: Fn(&mut Req, &Result<Res, BoxError>),
{
    fn prepare(&self, request: &mut Req, last: &Result<Res, BoxError>) {
        self(request, last)
    }
}

/// Sends the same request on every attempt: the default [`PrepareRetry`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SameRequest;

impl<Req, Res> PrepareRetry<Req, Res> for SameRequest {
    fn prepare(&self, _: &mut Req, _: &Result<Res, BoxError>) {}
}

/// Decides whether an error is retried.
///
/// Any `Fn(&BoxError) -> Decision` is one. When a policy says [`Decision::Retry`] for a
/// rejection of this crate that carries a `retry_in` (a rate limiter's, a breaker's), the
/// retry waits at least that long.
pub trait ErrorPolicy {
    /// The decision for `error`.
    fn decide(&self, error: &BoxError) -> Decision;
}

impl<F> ErrorPolicy for F
where
    F: Fn(&BoxError) -> Decision,
{
    fn decide(&self, error: &BoxError) -> Decision {
        self(error)
    }
}

/// Every response is returned as it is: only errors are retried. The default.
#[derive(Clone, Copy, Debug, Default)]
pub struct NeverRetryResponses;

impl<Res> ResponsePolicy<Res> for NeverRetryResponses {
    fn decide(&self, _: &Res) -> Decision {
        Decision::Return
    }
}

/// Retries every error except the refusals that a retry cannot help; the default. See
/// [`decide_by_default`].
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultErrorPolicy;

impl ErrorPolicy for DefaultErrorPolicy {
    fn decide(&self, error: &BoxError) -> Decision {
        decide_by_default(error)
    }
}

/// The default decision on an error:
///
/// - [`RateLimited`](crate::RateLimited): retried, no sooner than its `retry_in`.
/// - [`CircuitOpen`](crate::CircuitOpen): returned. An inner breaker that is open refuses
///   every call until its open wait ends (seconds to minutes): retrying now would spend
///   attempts and budget on certain refusals. A breaker keyed per proxy, with a fresh proxy
///   each attempt, is the exception: retry it with your own policy (its `retry_in` is
///   honoured then).
/// - [`BulkheadFull`](crate::BulkheadFull): returned. The call already waited the
///   bulkhead's maximum; a retry would queue more work on a saturated partition.
/// - [`RetryBudgetExhausted`](crate::RetryBudgetExhausted) from an inner retry: returned, so
///   that nested retries do not multiply.
/// - [`LimiterUnavailable`](crate::LimiterUnavailable): returned. A shared limiter that fails
///   closed refuses until its store answers again; retrying at once adds load, not cells.
/// - [`TimedOut`](crate::TimedOut) and every error of the inner service: retried.
///
/// Compose it in a policy of your own: `|e: &BoxError| if is_not_found(e) { Decision::Return } else { decide_by_default(e) }`.
pub fn decide_by_default(error: &BoxError) -> Decision {
    match Rejection::of(&**error) {
        Some(Rejection::RateLimited(limited)) => Decision::RetryAfter(limited.retry_in),
        Some(
            Rejection::CircuitOpen(_)
            | Rejection::BulkheadFull(_)
            | Rejection::RetryBudgetExhausted(_)
            | Rejection::LimiterUnavailable(_),
        ) => Decision::Return,
        _ => Decision::Retry,
    }
}

/// How long a rejection of this crate asks to wait before trying again.
pub(crate) fn rejection_retry_in(error: &BoxError) -> Option<Duration> {
    match Rejection::of(&**error)? {
        Rejection::RateLimited(limited) => Some(limited.retry_in),
        Rejection::CircuitOpen(open) => open.retry_in,
        _ => None,
    }
}

/// Retries `http::Response`s whose status is in a set, honouring their `Retry-After`.
///
/// ```
/// use http::StatusCode;
/// use harvester_resilience::retry::{Decision, ResponsePolicy, RetryOnStatus};
///
/// let policy = RetryOnStatus::new([StatusCode::TOO_MANY_REQUESTS, StatusCode::SERVICE_UNAVAILABLE]);
/// let busy = http::Response::builder().status(503).header("retry-after", "7").body(()).unwrap();
/// assert_eq!(policy.decide(&busy), Decision::RetryAfter(std::time::Duration::from_secs(7)));
/// assert_eq!(policy.decide(&http::Response::new(())), Decision::Return);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryOnStatus {
    /// One bit per status code 0..=639 (every valid code is in 100..=999; codes above 639
    /// are not standard and never retried).
    statuses: [u64; 10],
}

impl RetryOnStatus {
    /// Retries responses with any of `statuses`.
    pub fn new(statuses: impl IntoIterator<Item = StatusCode>) -> Self {
        let mut set = RetryOnStatus { statuses: [0; 10] };
        for status in statuses {
            let code = usize::from(status.as_u16());
            if let Some(word) = set.statuses.get_mut(code / 64) {
                *word |= 1 << (code % 64);
            }
        }
        set
    }

    /// 408, 429, 502, 503 and 504: the statuses that say "not now" rather than "never".
    /// 500 is left out: it is as often a bug that a retry repeats.
    pub fn transient() -> Self {
        Self::new([
            StatusCode::REQUEST_TIMEOUT,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::BAD_GATEWAY,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::GATEWAY_TIMEOUT,
        ])
    }

    /// Whether responses with `status` are retried.
    pub fn contains(&self, status: StatusCode) -> bool {
        let code = usize::from(status.as_u16());
        self.statuses.get(code / 64).is_some_and(|word| word & (1 << (code % 64)) != 0)
    }
}

impl<B> ResponsePolicy<http::Response<B>> for RetryOnStatus {
    fn decide(&self, response: &http::Response<B>) -> Decision {
        if !self.contains(response.status()) {
            return Decision::Return;
        }
        match retry_after(response) {
            Some(wait) => Decision::RetryAfter(wait),
            None => Decision::Retry,
        }
    }
}

/// The wait a response's `Retry-After` header asks for, if it has a valid one.
pub fn retry_after<B>(response: &http::Response<B>) -> Option<Duration> {
    harvester_core::retry_after::of_headers(response.headers(), SystemTime::now())
}

pub use harvester_core::retry_after::parse as parse_retry_after;
