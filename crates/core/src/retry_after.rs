//! The `Retry-After` header: how long a server asks a client to wait.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderValue, header};

/// A `Retry-After` value as a wait from `now`: delta-seconds (`120`) or an HTTP date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`; zero when already past). `None` when it is neither.
///
/// An HTTP date is wall-clock time, so it is measured against `now` (the system clock),
/// not tokio's clock. Callers cap the wait: a hostile server may ask for years.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use http::HeaderValue;
/// use harvester_core::retry_after::parse;
///
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 2015-10-21 07:28:00 UTC
/// assert_eq!(parse(&HeaderValue::from_static("120"), now), Some(Duration::from_secs(120)));
/// let date = HeaderValue::from_static("Wed, 21 Oct 2015 07:29:30 GMT");
/// assert_eq!(parse(&date, now), Some(Duration::from_secs(90)));
/// assert_eq!(parse(&HeaderValue::from_static("soon"), now), None);
/// ```
pub fn parse(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(text).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The wait `headers` ask for in their `Retry-After`, from `now`; see [`parse`].
pub fn of_headers(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    parse(headers.get(header::RETRY_AFTER)?, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_without_a_valid_value_ask_for_nothing() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2026 07:28:00 GMT").expect("valid date");
        let mut headers = HeaderMap::new();
        assert_eq!(of_headers(&headers, now), None);
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2026 07:30:00 GMT"));
        assert_eq!(of_headers(&headers, now), Some(Duration::from_secs(120)));
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2026 07:00:00 GMT"));
        assert_eq!(of_headers(&headers, now), Some(Duration::ZERO), "a date already past");
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static(" 7 "));
        assert_eq!(of_headers(&headers, now), Some(Duration::from_secs(7)));
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("-1"));
        assert_eq!(of_headers(&headers, now), None);
    }
}
