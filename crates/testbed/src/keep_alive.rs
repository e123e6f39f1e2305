//! A site and a forwarding proxy that keep connections open between requests, as real ones
//! do: what a client's own cost per request is measured through, since a proxy or site that
//! closes after every answer makes each request pay a new connection that hides it.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::forward::{absolute_form, loopback_destination};
use crate::http1::{self, Response};
use crate::in_process::InProcessServer;

/// Longest response body the proxy relays; the site's answers are far smaller.
const MAX_BODY: usize = 1 << 20;

/// A site on 127.0.0.1 that answers every `GET` with the same small HTML page and keeps the
/// connection open for the next request. Stops when dropped.
#[must_use = "the server stops as soon as it is dropped"]
pub struct KeepAliveSite {
    server: InProcessServer,
    requests: Arc<AtomicUsize>,
}

impl KeepAliveSite {
    /// Starts the site on a free port.
    ///
    /// # Errors
    /// When no port of 127.0.0.1 can be bound.
    pub async fn start() -> io::Result<Self> {
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&requests);
        let page = Response::html(200, "<html><head><title>ok</title></head><body><h1>ok</h1></body></html>");
        let server = InProcessServer::start(move |mut client| {
            let (counted, page) = (Arc::clone(&counted), page.clone());
            async move {
                // A head and a body written apart must not wait for each other's ACK (Nagle
                // against delayed ACKs: tens of milliseconds a request).
                let _ = client.set_nodelay(true);
                while http1::read_request(&mut client).await.is_some() {
                    counted.fetch_add(1, Ordering::Relaxed);
                    if http1::write_response_keep_alive(&mut client, &page).await.is_err() {
                        return;
                    }
                }
            }
        })
        .await?;
        Ok(KeepAliveSite { server, requests })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    /// Connections accepted so far: far fewer than [`requests`](Self::requests) when clients
    /// keep them alive.
    pub fn connections(&self) -> usize {
        self.server.connections()
    }
}

/// A forwarding HTTP proxy on 127.0.0.1 (loopback destinations only) that keeps both sides
/// open: each client connection gets one upstream connection per destination, reused for
/// every request the client sends on it. Plain `GET`s without a body, answers with a
/// `Content-Length`: enough to measure clients, not a general proxy. Stops when dropped.
#[must_use = "the proxy stops as soon as it is dropped"]
pub struct KeepAliveProxy {
    server: InProcessServer,
}

impl KeepAliveProxy {
    /// Starts the proxy on a free port.
    ///
    /// # Errors
    /// When no port of 127.0.0.1 can be bound.
    pub async fn start() -> io::Result<Self> {
        let server = InProcessServer::start(serve_client).await?;
        Ok(KeepAliveProxy { server })
    }

    /// `http://127.0.0.1:PORT`, the URL to configure a client with.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// Client connections accepted so far.
    pub fn connections(&self) -> usize {
        self.server.connections()
    }
}

/// Relays every request of one client connection; answers `400`/`403`/`502` and closes on
/// anything it cannot relay.
async fn serve_client(mut client: TcpStream) {
    let _ = client.set_nodelay(true);
    let mut upstream: Option<(SocketAddr, TcpStream)> = None;
    while let Some((head, _)) = http1::read_request(&mut client).await {
        let Some((authority, path)) = absolute_form(&head.target).filter(|_| head.method == "GET") else {
            http1::answer_and_close(&mut client, &Response::text(400, "a GET with an absolute-form target")).await;
            return;
        };
        let destination = match loopback_destination(authority, Some(80)) {
            Ok(destination) => destination,
            Err(refusal) => return http1::answer_and_close(&mut client, &refusal).await,
        };
        if upstream.as_ref().is_none_or(|(open, _)| *open != destination) {
            match TcpStream::connect(destination).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    upstream = Some((destination, stream));
                }
                Err(error) => {
                    let refusal = Response::text(502, format!("cannot connect to {destination}: {error}"));
                    return http1::answer_and_close(&mut client, &refusal).await;
                }
            }
        }
        let Some((_, stream)) = upstream.as_mut() else { return };
        let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
        let answer = match exchange(stream, request.as_bytes()).await {
            Ok(answer) => answer,
            Err(error) => {
                let refusal = Response::text(502, format!("{destination}: {error}"));
                return http1::answer_and_close(&mut client, &refusal).await;
            }
        };
        if client.write_all(&answer).await.is_err() {
            return;
        }
    }
}

/// Sends `request` on `upstream` and reads one answer delimited by its `Content-Length`.
async fn exchange(upstream: &mut TcpStream, request: &[u8]) -> io::Result<Vec<u8>> {
    upstream.write_all(request).await?;
    let (mut answer, body) = http1::read_sized_response(upstream, MAX_BODY).await?;
    answer.extend_from_slice(b"\r\n\r\n");
    answer.extend_from_slice(&body);
    Ok(answer)
}
