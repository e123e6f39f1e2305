//! [`ProxiedResponse`]: an answer that came back through a proxy.

use std::time::Duration;

use bytes::Bytes;

use super::classify::Verdict;
use crate::proxy::ProxyId;

/// A response that came back through a proxy, with the proxy's id and the verdict.
#[derive(Debug)]
pub struct ProxiedResponse {
    proxy: ProxyId,
    verdict: Verdict,
    latency: Duration,
    response: http::Response<Bytes>,
}

impl ProxiedResponse {
    pub(crate) fn new(proxy: ProxyId, verdict: Verdict, latency: Duration, response: http::Response<Bytes>) -> Self {
        ProxiedResponse { proxy, verdict, latency, response }
    }

    /// The id of the proxy that carried the request.
    pub fn proxy(&self) -> &ProxyId {
        &self.proxy
    }

    /// What the classifier made of the answer (a ban page is a response too).
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// From sending the request to the end of the body.
    pub fn latency(&self) -> Duration {
        self.latency
    }

    /// The status.
    pub fn status(&self) -> http::StatusCode {
        self.response.status()
    }

    /// The response with its whole body.
    pub fn response(&self) -> &http::Response<Bytes> {
        &self.response
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        self.response.body()
    }

    /// Takes the response.
    pub fn into_response(self) -> http::Response<Bytes> {
        self.response
    }
}
