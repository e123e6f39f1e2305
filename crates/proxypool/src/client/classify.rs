//! What an answer, or its absence, says about the proxy that carried the request.

use std::fmt;
use std::time::{Duration, SystemTime};

use harvester_core::retry_after::of_headers;
use http::{HeaderMap, StatusCode};

use crate::health::Outcome;

/// The judgement on one request through one proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// The target answered as it should.
    Success,
    /// The target refused this proxy; bars it from this host for `retry_after` when the
    /// target said how long, else for a growing cooldown.
    Ban {
        /// The target's Retry-After, if it sent one.
        retry_after: Option<Duration>,
    },
    /// The target said this proxy sent too much (429): bars it from this host like a ban,
    /// and teaches the pool the host's per-proxy rate (see
    /// [`OutcomeKind::RateLimited`](crate::OutcomeKind::RateLimited)).
    RateLimited {
        /// The target's Retry-After, if it sent one.
        retry_after: Option<Duration>,
    },
    /// The target answered with an error of its own (404, 500…): not the proxy's fault,
    /// so it counts as a success for the proxy's health.
    TargetError,
    /// The proxy failed: refused or reset connection, bad proxy credentials, handshake.
    ProxyFailure,
    /// No answer within the timeout.
    Timeout,
}

impl Verdict {
    /// The outcome to report on the lease.
    pub fn outcome(self, latency: Duration) -> Outcome {
        match self {
            Verdict::Success | Verdict::TargetError => Outcome::success(latency),
            Verdict::Ban { retry_after } => Outcome::ban(latency, retry_after),
            Verdict::RateLimited { retry_after } => Outcome::rate_limited(latency, retry_after),
            Verdict::ProxyFailure => Outcome::network_failure(latency),
            Verdict::Timeout => Outcome::timeout(latency),
        }
    }

    /// True for a ban, a rate limit included: the host refused this proxy for now.
    pub fn is_ban(self) -> bool {
        matches!(self, Verdict::Ban { .. } | Verdict::RateLimited { .. })
    }

    /// True for an answer worth keeping: a success, or the target's own error.
    pub fn is_answer(self) -> bool {
        matches!(self, Verdict::Success | Verdict::TargetError)
    }
}

/// Why a request failed before any answer came, as a classifier sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// The request or the connection timed out.
    Timeout,
    /// The connection to the proxy, or through it, could not be made.
    Connect,
    /// The connection broke while sending or receiving.
    Transport,
    /// The proxy works but could not reach the target: it refused the tunnel (an HTTP
    /// proxy's CONNECT answered with an error, e.g. 502 for a dead site or 403 for a
    /// forbidden one) or its SOCKS server replied host or network unreachable or
    /// connection refused.
    TargetUnreachable,
    /// The request itself could not be sent (a builder or redirect error): the caller's
    /// doing, never reported on the proxy.
    Caller,
}

/// Decides what an answer means for the proxy. Replace the default to teach the pool
/// the signs of a ban on the sites you collect from.
pub trait Classifier: Send + Sync + fmt::Debug + 'static {
    /// Judges a response by its status, headers and (size-capped) body.
    fn classify_response(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict;

    /// Judges a response from `host` (the request's host, lower-case, without port): what
    /// the client calls, so that a classifier can apply per-site rules. The default ignores
    /// the host and asks [`classify_response`](Self::classify_response).
    fn classify_response_for_host(&self, host: &str, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
        let _ = host;
        self.classify_response(status, headers, body)
    }

    /// Judges a request that got no answer. The default: timeouts are timeouts; a target
    /// the proxy cannot reach bars the proxy from that host only, for a cooldown (a site
    /// that is down must not get healthy proxies ejected one after the other); every
    /// other failure is the proxy's.
    fn classify_failure(&self, kind: FailureKind) -> Verdict {
        match kind {
            FailureKind::Timeout => Verdict::Timeout,
            FailureKind::TargetUnreachable => Verdict::Ban { retry_after: None },
            FailureKind::Caller => Verdict::TargetError,
            FailureKind::Connect | FailureKind::Transport => Verdict::ProxyFailure,
        }
    }
}

/// The default judgement, and why:
///
/// - **2xx and 3xx are success**, unless the body carries a ban marker: sites serve
///   captcha and "access denied" pages with 200.
/// - **403 and 503 are bans for the target host, 429 a rate limit there** (Retry-After
///   honoured, in seconds or as an HTTP date): these are what sites answer an IP they
///   block or throttle, and the same proxy usually still works for other sites. A rate
///   limit bars the proxy from the host like a ban and also teaches the pool the host's
///   per-proxy rate.
/// - **407 is a proxy failure**, not a ban: it means the proxy refuses our credentials,
///   which no other site would change, so the proxy should be ejected rather than tried
///   host after host.
/// - **Other statuses (404, 500, 502…) are the target's own errors**: the proxy delivered
///   them faithfully.
/// - **No answer**: a timeout is a timeout; a refused, reset or failed connection is the
///   proxy's failure.
#[derive(Clone, Debug)]
pub struct DefaultClassifier {
    ban_statuses: Vec<u16>,
    rate_limit_statuses: Vec<u16>,
    proxy_failure_statuses: Vec<u16>,
    markers: Vec<String>,
}

impl Default for DefaultClassifier {
    fn default() -> Self {
        DefaultClassifier {
            ban_statuses: vec![403, 503],
            rate_limit_statuses: vec![429],
            proxy_failure_statuses: vec![407],
            markers: Vec::new(),
        }
    }
}

impl DefaultClassifier {
    /// The default rules.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also treats a response whose body contains `marker` (ASCII case-insensitive) as a
    /// ban, e.g. `"captcha"` or `"access denied"`.
    pub fn ban_marker(mut self, marker: impl Into<String>) -> Self {
        let marker = marker.into().to_ascii_lowercase();
        if !marker.is_empty() {
            self.markers.push(marker);
        }
        self
    }

    /// Replaces the statuses that mean a ban (default 403, 503).
    pub fn ban_statuses(mut self, statuses: impl IntoIterator<Item = u16>) -> Self {
        self.ban_statuses = statuses.into_iter().collect();
        self
    }

    /// Replaces the statuses that mean a rate limit (default 429). They are checked
    /// before the ban statuses.
    pub fn rate_limit_statuses(mut self, statuses: impl IntoIterator<Item = u16>) -> Self {
        self.rate_limit_statuses = statuses.into_iter().collect();
        self
    }

    /// Replaces the statuses that mean the proxy failed (default 407).
    pub fn proxy_failure_statuses(mut self, statuses: impl IntoIterator<Item = u16>) -> Self {
        self.proxy_failure_statuses = statuses.into_iter().collect();
        self
    }

    fn has_marker(&self, body: &[u8]) -> bool {
        self.markers.iter().any(|m| contains_ignore_ascii_case(body, m.as_bytes()))
    }
}

impl Classifier for DefaultClassifier {
    fn classify_response(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
        let code = status.as_u16();
        if self.proxy_failure_statuses.contains(&code) {
            Verdict::ProxyFailure
        } else if self.rate_limit_statuses.contains(&code) {
            Verdict::RateLimited { retry_after: of_headers(headers, SystemTime::now()) }
        } else if self.ban_statuses.contains(&code) {
            Verdict::Ban { retry_after: of_headers(headers, SystemTime::now()) }
        } else if (status.is_success() || status.is_redirection()) && self.has_marker(body) {
            Verdict::Ban { retry_after: None }
        } else if status.is_success() || status.is_redirection() {
            Verdict::Success
        } else {
            Verdict::TargetError
        }
    }
}

fn contains_ignore_ascii_case(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(status: u16, headers: &[(&str, &str)], body: &str) -> Verdict {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                http::HeaderName::from_bytes(k.as_bytes()).expect("valid name"),
                v.parse().expect("valid value"),
            );
        }
        DefaultClassifier::new().ban_marker("CAPTCHA").classify_response(
            StatusCode::from_u16(status).expect("valid status"),
            &map,
            body.as_bytes(),
        )
    }

    #[test]
    fn default_rules_follow_their_documentation() {
        assert_eq!(classify(200, &[], "hello"), Verdict::Success);
        assert_eq!(classify(301, &[], ""), Verdict::Success);
        assert_eq!(classify(404, &[], ""), Verdict::TargetError);
        assert_eq!(classify(500, &[], ""), Verdict::TargetError);
        assert_eq!(classify(407, &[], ""), Verdict::ProxyFailure);
        assert_eq!(classify(403, &[], ""), Verdict::Ban { retry_after: None });
        assert_eq!(classify(503, &[], ""), Verdict::Ban { retry_after: None });
        assert_eq!(
            classify(429, &[("retry-after", "120")], ""),
            Verdict::RateLimited { retry_after: Some(Duration::from_secs(120)) }
        );
        assert_eq!(classify(200, &[], "<title>Please solve this Captcha</title>"), Verdict::Ban { retry_after: None });
    }

    #[test]
    fn the_host_aware_judgement_defaults_to_the_plain_one() {
        let classifier = DefaultClassifier::new().ban_marker("captcha");
        for (status, body) in [(200, "fine"), (200, "a captcha"), (403, ""), (404, "")] {
            let status = StatusCode::from_u16(status).expect("valid status");
            assert_eq!(
                classifier.classify_response_for_host("shop.example", status, &HeaderMap::new(), body.as_bytes()),
                classifier.classify_response(status, &HeaderMap::new(), body.as_bytes()),
            );
        }
    }

    #[test]
    fn verdicts_map_to_outcomes() {
        let ms = Duration::from_millis(5);
        assert_eq!(Verdict::TargetError.outcome(ms), Outcome::success(ms));
        assert_eq!(Verdict::ProxyFailure.outcome(ms), Outcome::network_failure(ms));
        assert_eq!(Verdict::Timeout.outcome(ms), Outcome::timeout(ms));
    }
}
