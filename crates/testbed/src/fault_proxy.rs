//! Proxies that fail the way real ones do: a dead port, a proxy that never answers, a slow
//! one, an exit IP that the site bans (403, 429 with `Retry-After`, a captcha page) and one
//! that goes down and comes back.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::forward::forward;
use crate::http1::{self, Response};
use crate::in_process::{InProcessServer, free_port};
use crate::pages::CAPTCHA_PAGE;

/// An HTTP proxy on 127.0.0.1 with a fault, in process, stopped (open connections included)
/// when dropped. Every constructor must run inside a tokio runtime, and fails only when no
/// port of 127.0.0.1 can be bound.
///
/// None of them contacts anything outside 127.0.0.0/8, and a malformed or oversized request
/// head is answered `400`.
///
/// ```
/// use harvester_testbed::FaultProxy;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let proxy = FaultProxy::rate_limiting_429(30).await?;
/// // GET http://127.0.0.1:PORT/ through proxy.url() → 429 with `Retry-After: 30`.
/// assert!(proxy.url().starts_with("http://127.0.0.1:"));
/// # Ok(())
/// # }
/// ```
#[must_use = "the proxy stops as soon as it is dropped"]
pub struct FaultProxy {
    addr: SocketAddr,
    /// `None` for [`FaultProxy::closed`], which has nothing listening.
    server: Option<InProcessServer>,
    up: Arc<AtomicBool>,
}

#[derive(Clone)]
enum Fault {
    Hang,
    Forward { delay: Duration },
    Answer(Arc<Response>),
}

impl FaultProxy {
    /// A port nothing listens on: connections are refused. It was free a moment ago; another
    /// process could take it, as with [`free_port`].
    pub async fn closed() -> io::Result<Self> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
        Ok(FaultProxy { addr, server: None, up: Arc::new(AtomicBool::new(false)) })
    }

    /// Accepts connections and reads from them but never answers; each stays open until the
    /// proxy is dropped.
    pub async fn hanging() -> io::Result<Self> {
        Self::launch(Fault::Hang).await
    }

    /// A working forwarding proxy that waits `delay` after reading each request before it
    /// acts on it: an absolute-form `GET http://127.0.0.1:PORT/path` is then forwarded and
    /// the response relayed; `CONNECT 127.0.0.1:PORT` is then answered
    /// `200 Connection established` and tunnelled. Destinations outside 127.0.0.0/8 get `403`,
    /// unreachable ones `502`. `Proxy-Authorization` is not forwarded.
    pub async fn slow(delay: Duration) -> io::Result<Self> {
        Self::launch(Fault::Forward { delay }).await
    }

    /// Answers every request itself with `status`, `headers` and `body`, never contacting
    /// the target: what a client sees through a proxy whose exit IP the site bans. A `CONNECT`
    /// gets the same answer, so HTTPS through it fails at the tunnel (with a `2xx` status the
    /// client takes the tunnel as open and then reads the body where it expects TLS).
    /// `Content-Length` and `Connection: close` are always set by the proxy.
    pub async fn answering(status: u16, headers: &[(&str, &str)], body: &str) -> io::Result<Self> {
        let response = Response {
            status,
            headers: headers.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect(),
            body: http1::Body::Bytes(body.as_bytes().to_vec()),
        };
        Self::launch(Fault::Answer(Arc::new(response))).await
    }

    /// Answers everything `403 Forbidden` with body `banned`.
    pub async fn banning_403() -> io::Result<Self> {
        Self::answering(403, &[("Content-Type", "text/plain; charset=utf-8")], "banned").await
    }

    /// Answers everything `429 Too Many Requests` with `Retry-After: retry_after_secs`.
    pub async fn rate_limiting_429(retry_after_secs: u64) -> io::Result<Self> {
        let retry_after = retry_after_secs.to_string();
        let headers = [("Content-Type", "text/plain; charset=utf-8"), ("Retry-After", retry_after.as_str())];
        Self::answering(429, &headers, "too many requests").await
    }

    /// Answers everything `200` with the captcha page ([`crate::CAPTCHA_PAGE`], which contains
    /// [`crate::CAPTCHA_MARKER`]).
    pub async fn captcha() -> io::Result<Self> {
        Self::answering(200, &[("Content-Type", "text/html; charset=utf-8")], CAPTCHA_PAGE).await
    }

    /// A working forwarding proxy (as [`FaultProxy::slow`] without delay), up at first, that
    /// [`FaultProxy::set_up`] takes down and brings back.
    pub async fn flapping() -> io::Result<Self> {
        Self::launch(Fault::Forward { delay: Duration::ZERO }).await
    }

    /// Takes the proxy down (`false`) or brings it back (`true`). While down it accepts
    /// connections and closes them at once, before reading anything; connections accepted
    /// while up carry on. Meant for [`FaultProxy::flapping`], but works on every kind; no
    /// effect on [`FaultProxy::closed`].
    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many connections it has accepted, while up or down (always 0 for
    /// [`FaultProxy::closed`]).
    pub fn connections(&self) -> usize {
        self.server.as_ref().map_or(0, InProcessServer::connections)
    }

    async fn launch(fault: Fault) -> io::Result<Self> {
        let up = Arc::new(AtomicBool::new(true));
        let switch = Arc::clone(&up);
        let server = InProcessServer::start(move |stream| {
            let fault = fault.clone();
            let is_up = switch.load(Ordering::SeqCst);
            async move {
                if !is_up {
                    return;
                }
                match fault {
                    Fault::Hang => hang(stream).await,
                    Fault::Forward { delay } => forward(stream, delay).await,
                    Fault::Answer(response) => answer(stream, &response).await,
                }
            }
        })
        .await?;
        Ok(FaultProxy { addr: server.addr(), server: Some(server), up })
    }
}

/// Reads and discards whatever comes, then holds the connection until aborted.
async fn hang(mut stream: TcpStream) {
    let mut sink = [0u8; 4096];
    while matches!(stream.read(&mut sink).await, Ok(read) if read > 0) {}
    std::future::pending::<()>().await;
}

/// Reads the request head, then answers `response` whatever was asked.
async fn answer(mut stream: TcpStream, response: &Response) {
    if http1::read_request(&mut stream).await.is_some() {
        http1::answer_and_close(&mut stream, response).await;
    }
}
