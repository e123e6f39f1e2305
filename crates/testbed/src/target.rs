//! The site the test traffic is for: a tiny HTTP/1.1 server inside the test process.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::in_process::InProcessServer;
use crate::pages::{self, PageStats};

/// An HTTP/1.1 server on 127.0.0.1 that answers one request per connection, every response
/// with `Content-Length` and `Connection: close`:
///
/// - `GET /` → `200` with body `hello`;
/// - `GET /status/NNN` → status `NNN` (200..=599) with body `status NNN` (empty for 204, 304);
/// - `GET /slow?ms=N` → `200` with body `slow` after N milliseconds (`tokio::time::sleep`, so
///   a paused test clock skips the wait);
/// - `GET /retry-after?secs=N&status=S` → status S (default 429) with `Retry-After: N`;
/// - `GET /captcha` → `200`, an HTML page containing [`crate::CAPTCHA_MARKER`] and `captcha`;
/// - `GET /bytes?n=N` → `200` with a body of N bytes of `x`;
/// - `GET /echo-headers` → `200`, the request's header fields one per line as
///   `name: value` with lower-cased names, in the order received;
/// - `GET /product/N` (N in `0..=1_000_000`, no sign or leading zero) → `200`, the HTML page
///   of a product with `<title>Product N</title>` and the product in one of four markups
///   taking turns by N ([`crate::Markup`]): classes (the name in `<h1 class="name">`, the
///   price in `<span class="price">` in a format that varies with N: `$1,299.00`,
///   `1.299,00 €`, `USD 1299`, …, a description with messy whitespace in
///   `<p class="description">`), schema.org JSON-LD, schema.org microdata, or OpenGraph
///   meta tags; the same N always gives the same page, and [`crate::Product::get`] tells
///   what it shows;
/// - `GET /discontinued/ANYTHING` → `200`, [`crate::SOFT_404_PAGE`]: a "not found" page
///   served as a success (a soft 404), with other products' prices and none of its own;
/// - `GET /catalogue?n=K` (K in `0..=1_000_001`, else `400`) → `200`, `text/plain`, the paths
///   `/product/0` to `/product/K-1`, one per line;
/// - anything else → `404`; a malformed or oversized request head → `400`.
///
/// Accepts both origin-form (`/path`) and absolute-form (`http://host/path`) request targets,
/// so it can also be addressed directly as if it were a proxy. Stops when dropped, open
/// connections included. Must be started inside a tokio runtime.
#[must_use = "the server stops as soon as it is dropped"]
pub struct TargetServer {
    server: InProcessServer,
    stats: Arc<PageStats>,
}

impl TargetServer {
    /// Binds a free port on 127.0.0.1 and starts serving.
    ///
    /// # Errors
    /// When no port of 127.0.0.1 can be bound.
    pub async fn start() -> io::Result<Self> {
        let stats = Arc::new(PageStats::default());
        let shared = Arc::clone(&stats);
        let server = InProcessServer::start(move |stream| pages::serve_pages(stream, Arc::clone(&shared))).await?;
        Ok(TargetServer { server, stats })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// How many requests it has answered (responses written completely).
    pub fn requests_served(&self) -> usize {
        self.stats.answered()
    }

    /// How many well-formed requests for `path` (without the query: `/slow`, `/status/503`)
    /// have arrived, answered or not yet.
    pub fn requests_to(&self, path: &str) -> usize {
        self.stats.requests_to(path)
    }

    /// How many connections it has accepted.
    pub fn connections(&self) -> usize {
        self.server.connections()
    }
}
