//! The site the test traffic is for: a tiny HTTP/1.1 server inside the test process.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Longest request head it reads before giving up on a connection.
const MAX_HEAD: usize = 64 * 1024;

/// An HTTP/1.1 server on 127.0.0.1 that answers one request per connection:
///
/// - `GET /` → `200` with body `hello`;
/// - `GET /status/NNN` → status `NNN` with body `status NNN`;
/// - anything else → `404`.
///
/// Accepts both origin-form (`/path`) and absolute-form (`http://host/path`) request targets,
/// so it can also be addressed directly as if it were a proxy. Stops when dropped, open
/// connections included. Must be started inside a tokio runtime.
pub struct TargetServer {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl TargetServer {
    /// Binds a free port on 127.0.0.1 and starts serving.
    pub async fn start() -> Self {
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind the target server on 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address of a bound listener");
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            // Dropping the set (when the task is aborted) aborts every open connection.
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                while connections.try_join_next().is_some() {}
                connections.spawn(serve(stream, Arc::clone(&counter)));
            }
        });
        TargetServer { addr, requests, task }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many requests it has answered.
    pub fn requests_served(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for TargetServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut stream: TcpStream, requests: Arc<AtomicUsize>) {
    let Some(head) = read_head(&mut stream).await else {
        return;
    };
    let target = head.lines().next().and_then(|line| line.split_whitespace().nth(1)).unwrap_or("/");
    let (status, body) = route(origin_form(target));
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n{body}",
        reason = reason(status),
        length = body.len(),
    );
    if stream.write_all(response.as_bytes()).await.is_ok() {
        requests.fetch_add(1, Ordering::SeqCst);
        let _ = stream.shutdown().await;
    }
}

/// Reads up to the blank line that ends the request head; `None` if the client goes away first.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        let read = stream.read(&mut buf).await.ok()?;
        if read == 0 || head.len() > MAX_HEAD {
            return None;
        }
        head.extend_from_slice(&buf[..read]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// `http://host:port/path` → `/path`; an origin-form target as it is.
fn origin_form(target: &str) -> &str {
    match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |slash| &rest[slash..]),
        None => target,
    }
}

fn route(path: &str) -> (u16, String) {
    if path == "/" {
        return (200, "hello".to_owned());
    }
    match path.strip_prefix("/status/").map(str::parse::<u16>) {
        Some(Ok(status)) if (100..=999).contains(&status) => (status, format!("status {status}")),
        _ => (404, "not found".to_owned()),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        407 => "Proxy Authentication Required",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
