//! The pages of the target site, served the same way over plain TCP ([`crate::TargetServer`])
//! and TLS (`TlsTargetServer`, feature `tls`): one request per connection.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::catalogue::{self, Product};
use crate::http1::{self, Body, RequestHead, Response};

/// What a captcha page contains, and what a client checks to recognise one.
pub const CAPTCHA_MARKER: &str = "<title>Are you a robot?</title>";
/// The whole captcha page, as `/captcha` and [`crate::FaultProxy::captcha`] send it.
pub const CAPTCHA_PAGE: &str = "<!doctype html>\n<html><head><title>Are you a robot?</title></head>\
     <body><h1>One more step</h1><p>Solve the captcha to continue.</p></body></html>\n";
/// What `/discontinued/N` sends with `200`: a shop's "not found" page (a soft 404), with
/// the prices of what it recommends instead and no product of its own.
pub const SOFT_404_PAGE: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
     <title>Product not found</title></head>\n<body><h1>Sorry, this product is no longer available</h1>\n\
     <p>You might like instead:</p><ul><li><a href=\"/product/1\">Product 1</a> <span>$12.00</span></li></ul>\n\
     </body></html>\n";
/// Longest wait `/slow` agrees to, so a typo cannot hang a test for hours.
const MAX_SLOW_MS: u64 = 10 * 60 * 1000;
/// Largest body `/bytes` agrees to send.
const MAX_FILLER_BYTES: usize = 256 * 1024 * 1024;

/// What the target has seen: requests per path (on arrival) and responses fully written.
/// [`serve_pages`] keeps it up to date; share one through an `Arc` between connections.
#[derive(Debug, Default)]
pub struct PageStats {
    answered: AtomicUsize,
    by_path: Mutex<HashMap<String, usize>>,
}

impl PageStats {
    /// How many responses were written completely.
    pub fn answered(&self) -> usize {
        self.answered.load(Ordering::SeqCst)
    }

    /// How many well-formed requests arrived for `path` (without the query).
    pub fn requests_to(&self, path: &str) -> usize {
        self.by_path.lock().unwrap_or_else(PoisonError::into_inner).get(path).copied().unwrap_or(0)
    }

    fn record(&self, path: &str) {
        *self.by_path.lock().unwrap_or_else(PoisonError::into_inner).entry(path.to_owned()).or_default() += 1;
    }
}

/// Reads one request from `stream`, answers it from the pages of [`crate::TargetServer`]
/// (see there for the list) and closes the connection; a request head that is malformed or
/// too large is answered `400`. The request and the complete answer are counted in `stats`.
///
/// [`crate::TargetServer`] runs it on each TCP connection; a server of your own can run it on
/// any stream, one behind your own TLS acceptor for instance.
pub async fn serve_pages<S>(mut stream: S, stats: Arc<PageStats>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Some((head, _body)) = http1::read_request(&mut stream).await else {
        return;
    };
    let (path, query) = split_query(origin_form(&head.target));
    stats.record(path);
    let response = page(path, query, &head).await;
    if http1::write_response(&mut stream, &response).await.is_ok() {
        stats.answered.fetch_add(1, Ordering::SeqCst);
        http1::close_gracefully(&mut stream).await;
    }
}

async fn page(path: &str, query: &str, head: &RequestHead) -> Response {
    match path {
        "/" => Response::text(200, "hello"),
        "/slow" => match number_param::<u64>(query, "ms") {
            Some(ms) if ms <= MAX_SLOW_MS => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Response::text(200, "slow")
            }
            _ => Response::text(400, format!("/slow needs ms=N with N at most {MAX_SLOW_MS}")),
        },
        "/retry-after" => {
            let status = match param(query, "status") {
                None => Some(429),
                Some(status) => status.parse::<u16>().ok().filter(|status| (200..=599).contains(status)),
            };
            match (number_param::<u64>(query, "secs"), status) {
                (Some(secs), Some(status)) => {
                    Response::text(status, format!("retry after {secs}s")).with_header("Retry-After", secs.to_string())
                }
                _ => Response::text(400, "/retry-after needs secs=N and takes status=200..599"),
            }
        }
        "/captcha" => Response::html(200, CAPTCHA_PAGE),
        "/bytes" => match number_param::<usize>(query, "n") {
            Some(length) if length <= MAX_FILLER_BYTES => {
                Response { body: Body::Filler(length), ..Response::text(200, "") }
            }
            _ => Response::text(400, format!("/bytes needs n=N with N at most {MAX_FILLER_BYTES}")),
        },
        "/catalogue" => match number_param::<u32>(query, "n") {
            Some(count) if count <= Product::LAST + 1 => Response::text(200, catalogue::listing(count)),
            _ => Response::text(400, format!("/catalogue needs n=K with K at most {}", Product::LAST + 1)),
        },
        "/echo-headers" => {
            let mut listing = String::new();
            for (name, value) in &head.headers {
                let _ = writeln!(listing, "{}: {value}", name.to_ascii_lowercase());
            }
            Response::text(200, listing)
        }
        _ => {
            if let Some(number) = path.strip_prefix("/product/") {
                product_page(number)
            } else if path.starts_with("/discontinued/") {
                Response::html(200, SOFT_404_PAGE)
            } else if let Some(status) = path.strip_prefix("/status/") {
                status_page(status)
            } else {
                not_found()
            }
        }
    }
}

fn product_page(number: &str) -> Response {
    match Product::from_path_segment(number) {
        Some(product) => Response::html(200, product.page()),
        None => not_found(),
    }
}

fn status_page(status: &str) -> Response {
    match status.parse::<u16>() {
        Ok(status) if (200..=599).contains(&status) => {
            let body = if matches!(status, 204 | 304) { String::new() } else { format!("status {status}") };
            Response::text(status, body)
        }
        _ => not_found(),
    }
}

fn not_found() -> Response {
    Response::text(404, "not found")
}

/// `http://host:port/path` → `/path`; an origin-form target as it is.
fn origin_form(target: &str) -> &str {
    match target.split_once("://") {
        Some((_, rest)) => rest.find(['/', '?']).map_or("/", |start| &rest[start..]),
        None => target,
    }
}

/// `/path?query` → (`/path`, `query`); a target that starts with `?` has path `/`.
fn split_query(target: &str) -> (&str, &str) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    (if path.is_empty() { "/" } else { path }, query)
}

fn param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query.split('&').filter_map(|pair| pair.split_once('=')).find(|(key, _)| *key == name).map(|(_, value)| value)
}

fn number_param<N: std::str::FromStr>(query: &str, name: &str) -> Option<N> {
    param(query, name)?.parse().ok()
}
