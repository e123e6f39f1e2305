use std::time::Duration;

use thiserror::Error;

use crate::error::PoolError;
use crate::proxy::ProxyId;

/// Why a request through the [`ProxyClient`](super::ProxyClient) got no response.
///
/// An answer from the target, whatever its status, is not an error: it comes back as a
/// [`ProxiedResponse`](super::ProxiedResponse) with its [`Verdict`](super::Verdict). No
/// variant ever carries a proxy's credentials: messages from the HTTP stack are scrubbed
/// of them before they are stored.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The request cannot be sent: no host in its URL, an unsupported scheme, a body that
    /// does not convert.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// No proxy could be leased for the request.
    #[error("no proxy for {host}: {source}")]
    NoProxy {
        /// The target host.
        host: String,
        /// Why the pool gave none.
        #[source]
        source: PoolError,
    },
    /// The HTTP client for the proxy could not be built (for example an unusable proxy URL).
    #[error("cannot build a client for proxy {proxy}: {message}")]
    ClientBuild {
        /// The proxy.
        proxy: ProxyId,
        /// What the HTTP stack said, without credentials.
        message: String,
    },
    /// The proxy failed: connection refused or reset, proxy handshake or authentication
    /// failed, or the connection broke mid-answer.
    #[error("proxy {proxy} failed: {message}")]
    ProxyFailed {
        /// The proxy.
        proxy: ProxyId,
        /// What the HTTP stack said, without credentials.
        message: String,
    },
    /// The proxy could not reach the target (tunnel refused, SOCKS host unreachable): the
    /// proxy is barred from this host for a while, not ejected.
    #[error("proxy {proxy} could not reach the target: {message}")]
    TargetUnreachable {
        /// The proxy.
        proxy: ProxyId,
        /// What the HTTP stack said, without credentials.
        message: String,
    },
    /// No complete answer within the request timeout.
    #[error("request through proxy {proxy} timed out after {after:?}")]
    TimedOut {
        /// The proxy.
        proxy: ProxyId,
        /// The timeout that ran out.
        after: Duration,
    },
    /// The body was larger than the configured cap; the proxy did its job.
    #[error("response through proxy {proxy} exceeds the body cap of {limit} bytes")]
    BodyTooLarge {
        /// The proxy.
        proxy: ProxyId,
        /// The cap.
        limit: usize,
    },
}

impl ClientError {
    /// The proxy the request went through, when it got that far.
    pub fn proxy(&self) -> Option<&ProxyId> {
        match self {
            ClientError::ClientBuild { proxy, .. }
            | ClientError::ProxyFailed { proxy, .. }
            | ClientError::TargetUnreachable { proxy, .. }
            | ClientError::TimedOut { proxy, .. }
            | ClientError::BodyTooLarge { proxy, .. } => Some(proxy),
            ClientError::InvalidRequest(_) | ClientError::NoProxy { .. } => None,
        }
    }
}

/// An error with its sources, for messages (scrubbed of credentials by the caller).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}
