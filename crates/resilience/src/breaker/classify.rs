//! Which results count as failures.

/// Decides whether a call's result is a failure for the breaker.
///
/// Implemented by closures `Fn(&Result<Res, E>) -> bool`, so a response can fail too:
///
/// ```
/// use harvester_resilience::breaker::Classify;
///
/// // A 429 means the target is pushing back: count it, so the breaker backs off too.
/// let classifier = |result: &Result<u16, std::io::Error>| !matches!(result, Ok(status) if *status < 429);
/// assert!(classifier.is_failure(&Ok(429)));
/// assert!(!classifier.is_failure(&Ok(200)));
/// ```
pub trait Classify<Res, E> {
    /// Whether `result` is a failure.
    fn is_failure(&self, result: &Result<Res, E>) -> bool;
}

impl<F, Res, E> Classify<Res, E> for F
where
    F: Fn(&Result<Res, E>) -> bool,
{
    fn is_failure(&self, result: &Result<Res, E>) -> bool {
        self(result)
    }
}

/// The default: an `Err` is a failure, any `Ok` a success.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorIsFailure;

impl<Res, E> Classify<Res, E> for ErrorIsFailure {
    fn is_failure(&self, result: &Result<Res, E>) -> bool {
        result.is_err()
    }
}

/// For `http::Response`s: an `Err` or a status of 500 or more is a failure.
///
/// ```
/// use harvester_resilience::breaker::{Classify, ServerErrorIsFailure};
///
/// let unavailable = http::Response::builder().status(503).body(()).unwrap();
/// assert!(ServerErrorIsFailure.is_failure(&Ok::<_, ()>(unavailable)));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerErrorIsFailure;

impl<B, E> Classify<http::Response<B>, E> for ServerErrorIsFailure {
    fn is_failure(&self, result: &Result<http::Response<B>, E>) -> bool {
        result.as_ref().map_or(true, |response| response.status().as_u16() >= 500)
    }
}
