//! One exchange with a proxy: the request, its body up to a cap, what went wrong if
//! nothing came back, and the guard that reports the lease however the attempt ends.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::time::Instant;

use super::classify::FailureKind;
use super::error::error_chain;
use crate::health::Outcome;
use crate::lease::Lease;
use crate::proxy::Proxy;

/// What came back from one exchange with a proxy.
pub(crate) enum Exchange {
    Complete(http::Response<Bytes>),
    TooLarge { status: http::StatusCode, headers: http::HeaderMap },
}

/// Holds a lease while its request is out and reports it if dropped unreported: as slow
/// when the attempt lost a hedged race after it was late, not at all when it lost before,
/// else as timed out (a layer above gave up on it).
pub(crate) struct ReportOnDrop {
    pub(crate) lease: Option<Lease>,
    pub(crate) started: Instant,
    pub(crate) abandoned: Abandoned,
}

/// How an attempt of a hedged race ended for the others, set before it is dropped.
#[derive(Clone, Debug, Default)]
pub(crate) struct Abandoned(Arc<std::sync::atomic::AtomicU8>);

impl Abandoned {
    const OVERDUE: u8 = 1;
    const CANCELLED: u8 = 2;

    /// It lost after waiting past the host's hedging delay: evidence that its proxy is slow.
    pub(crate) fn overdue(&self) {
        self.0.store(Self::OVERDUE, std::sync::atomic::Ordering::Release);
    }

    /// It lost before it was late (another attempt answered first): no evidence either way.
    pub(crate) fn cancel(&self) {
        self.0.store(Self::CANCELLED, std::sync::atomic::Ordering::Release);
    }

    fn state(&self) -> u8 {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }
}

impl ReportOnDrop {
    pub(crate) fn report(&mut self, outcome: Outcome) {
        if let Some(lease) = self.lease.take() {
            lease.report(outcome);
        }
    }

    pub(crate) fn release(&mut self) {
        self.lease = None;
    }
}

impl Drop for ReportOnDrop {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            let elapsed = self.started.elapsed();
            match self.abandoned.state() {
                Abandoned::OVERDUE => lease.report(Outcome::slow(elapsed)),
                // Dropping the lease unreported ends it without a word on the proxy.
                Abandoned::CANCELLED => drop(lease),
                // Still out (0, the default): a layer above gave up on it.
                _ => lease.report(Outcome::timeout(elapsed)),
            }
        }
    }
}

/// Why an exchange got no answer.
pub(crate) struct Failure {
    pub(crate) kind: FailureKind,
    pub(crate) message: String,
    /// The connection closed before any answer: typically a kept-alive connection the
    /// proxy had just closed (tinyproxy closes after every request without saying so).
    stale: bool,
}

/// [`exchange`], sent again when an attempt died on a stale kept-alive connection and
/// the request is idempotent and cloneable: a race of connection reuse, not a failure of
/// the proxy, as browsers also treat it. Another idle connection may be stale too (a
/// proxy like tinyproxy closes every one), so up to [`STALE_RETRIES`] more attempts are
/// made; each takes a stale connection out of the pool for good.
pub(crate) async fn exchange_once_more_if_stale(
    client: &reqwest::Client,
    request: reqwest::Request,
    max_body: usize,
) -> Result<Exchange, Failure> {
    let idempotent = matches!(*request.method(), http::Method::GET | http::Method::HEAD | http::Method::OPTIONS);
    let mut spare = if idempotent { request.try_clone() } else { None };
    let mut result = exchange(client, request, max_body).await;
    for _ in 0..STALE_RETRIES {
        match (&result, spare.take()) {
            (Err(failure), Some(again)) if failure.stale => {
                spare = again.try_clone();
                result = exchange(client, again, max_body).await;
            }
            _ => break,
        }
    }
    result
}

/// Further attempts after a stale kept-alive connection.
const STALE_RETRIES: usize = 3;

/// One request and its body, up to `max_body` bytes.
async fn exchange(client: &reqwest::Client, request: reqwest::Request, max_body: usize) -> Result<Exchange, Failure> {
    let mut response = client.execute(request).await.map_err(failure)?;
    let too_large = |r: &reqwest::Response| Exchange::TooLarge { status: r.status(), headers: r.headers().clone() };
    if response.content_length().is_some_and(|len| len > max_body as u64) {
        return Ok(too_large(&response));
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(failure)? {
        if body.len() + chunk.len() > max_body {
            return Ok(too_large(&response));
        }
        body.extend_from_slice(&chunk);
    }
    let mut out = http::Response::new(body.freeze());
    *out.status_mut() = response.status();
    *out.version_mut() = response.version();
    *out.headers_mut() = std::mem::take(response.headers_mut());
    Ok(Exchange::Complete(out))
}

fn failure(e: reqwest::Error) -> Failure {
    let message = error_chain(&e);
    let kind = if e.is_builder() || e.is_redirect() {
        FailureKind::Caller
    } else if e.is_timeout() {
        FailureKind::Timeout
    } else if e.is_connect() && names_unreachable_target(&message) {
        FailureKind::TargetUnreachable
    } else if e.is_connect() {
        FailureKind::Connect
    } else {
        FailureKind::Transport
    };
    let mut stale = false;
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        stale |= s.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_incomplete_message);
        source = s.source();
    }
    Failure { kind, message, stale }
}

/// The tunnel and SOCKS errors of the HTTP stack are not public types, so their text is
/// the only sign that the proxy answered but could not reach the target. A 407 to
/// CONNECT ("proxy authorization required") stays the proxy's failure.
fn names_unreachable_target(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    ["tunnel error: unsuccessful", "host unreachable", "network unreachable", "connection refused by destination"]
        .iter()
        .any(|sign| m.contains(sign))
        || (m.contains("socks") && m.contains("connection refused"))
}

/// Removes the proxy's credentials, raw or percent-encoded, from a message of the HTTP
/// stack: an error may quote the proxy URL it was given.
pub(crate) fn scrub(message: &str, proxy: &Proxy) -> String {
    let Some(credentials) = proxy.credentials() else { return message.to_owned() };
    let mut out = message.to_owned();
    let encoded = proxy.url_with_credentials();
    let userinfo = encoded.split_once("://").and_then(|(_, rest)| rest.rsplit_once('@')).map(|(u, _)| u.to_owned());
    for secret in [userinfo.as_deref().unwrap_or(""), credentials.password(), credentials.username()] {
        if secret.len() >= 2 {
            out = out.replace(secret, "***");
        }
    }
    for part in userinfo.as_deref().unwrap_or("").split(':') {
        if part.len() >= 2 {
            out = out.replace(part, "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_raw_and_encoded_credentials() {
        let proxy = Proxy::parse("http://us%40er:p%3Ass-w0rd@127.0.0.1:1").expect("valid");
        let message = "error for http://us%40er:p%3Ass-w0rd@127.0.0.1:1 (user us@er, password p:ss-w0rd)";
        let scrubbed = scrub(message, &proxy);
        assert!(!scrubbed.contains("p:ss-w0rd") && !scrubbed.contains("p%3Ass") && !scrubbed.contains("us@er"));
        assert!(scrubbed.contains("127.0.0.1:1"), "{scrubbed}");
    }
}
