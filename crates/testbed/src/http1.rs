//! The part of HTTP/1.1 the in-process servers speak: a message head read with a size bound,
//! a request head parsed strictly enough to answer 400 to garbage, and complete responses that
//! always carry `Content-Length` and `Connection: close`.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Longest message head read before the peer is answered 400.
pub const MAX_HEAD: usize = 64 * 1024;
/// How long a closing connection waits for the peer to stop sending; unread input at close
/// would make the kernel send a reset that can destroy the response in the peer's buffer.
const DRAIN_DEADLINE: Duration = Duration::from_secs(1);
/// Most bytes drained from a closing connection.
const DRAIN_LIMIT: usize = 1024 * 1024;

/// Why no message head could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeadError {
    /// The peer went away (or the read failed) before the head was complete.
    Closed,
    /// The head grew past [`MAX_HEAD`].
    TooLarge,
    /// Not an HTTP/1.x head: bad request line, a header line without a colon, not UTF-8.
    Malformed,
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The method as sent, e.g. `GET` or `CONNECT`.
    pub method: String,
    /// The request target as sent: `/path?query`, `http://host:port/path` or `host:port`.
    pub target: String,
    /// The header fields in the order received, names as sent.
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    /// The first header called `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    /// Whether this asks for a tunnel.
    pub fn is_connect(&self) -> bool {
        self.method.eq_ignore_ascii_case("CONNECT")
    }
}

/// Reads up to the blank line that ends a message head. Returns the head without that blank
/// line and whatever was read past it (the start of a body, or of tunnelled bytes).
pub async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Result<(Vec<u8>, Vec<u8>), HeadError> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // Only the new bytes and the three before them can complete the terminator.
        let searched_from = buffer.len().saturating_sub(chunk.len() + 3);
        if let Some(offset) = buffer[searched_from..].windows(4).position(|window| window == b"\r\n\r\n") {
            let end = searched_from + offset;
            let rest = buffer.split_off(end + 4);
            buffer.truncate(end);
            return Ok((buffer, rest));
        }
        if buffer.len() > MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return Err(HeadError::Closed),
            Ok(read) => buffer.extend_from_slice(&chunk[..read]),
        }
    }
}

/// Reads one response whose body its `Content-Length` delimits (at most `max_body` bytes),
/// leaving a kept-alive connection at the start of the next message. Returns the head
/// (without its blank line) and the body.
///
/// # Errors
/// `InvalidData` for a missing or unreadable head, no usable `Content-Length`, or more bytes
/// than it announced; the stream's own errors otherwise.
pub async fn read_sized_response<S: AsyncRead + Unpin>(
    stream: &mut S,
    max_body: usize,
) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let (head, mut body) = read_head(stream).await.map_err(|_| invalid("no response head"))?;
    let text = std::str::from_utf8(&head).map_err(|_| invalid("a response head that is not text"))?;
    let length = text
        .split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .filter(|length| *length <= max_body)
        .ok_or_else(|| invalid("no usable Content-Length"))?;
    if body.len() > length {
        return Err(invalid("more bytes than the Content-Length"));
    }
    let already = body.len();
    body.resize(length, 0);
    stream.read_exact(&mut body[already..]).await?;
    Ok((head, body))
}

/// Reads and parses a request head. A malformed or oversized one is answered `400` and the
/// connection closed; `None` then, and when the peer goes away first.
pub async fn read_request<S>(stream: &mut S) -> Option<(RequestHead, Vec<u8>)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let parsed = match read_head(stream).await {
        Ok((head, early)) => parse_request_head(&head).map(|head| (head, early)),
        Err(error) => Err(error),
    };
    match parsed {
        Ok(request) => Some(request),
        Err(HeadError::Closed) => None,
        Err(HeadError::TooLarge | HeadError::Malformed) => {
            answer_and_close(stream, &Response::text(400, "bad request")).await;
            None
        }
    }
}

/// Parses a request head as returned by [`read_head`].
pub fn parse_request_head(head: &[u8]) -> Result<RequestHead, HeadError> {
    let text = std::str::from_utf8(head).map_err(|_| HeadError::Malformed)?;
    let mut lines = text.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (request_line.next(), request_line.next(), request_line.next(), request_line.next())
    else {
        return Err(HeadError::Malformed);
    };
    if method.is_empty() || target.is_empty() || !version.starts_with("HTTP/1.") {
        return Err(HeadError::Malformed);
    }
    let headers = lines
        .map(|line| match line.split_once(':') {
            Some((name, value)) if is_token(name) => Ok((name.to_owned(), value.trim().to_owned())),
            _ => Err(HeadError::Malformed),
        })
        .collect::<Result<_, _>>()?;
    Ok(RequestHead { method: method.to_owned(), target: target.to_owned(), headers })
}

fn is_token(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|byte| byte.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&byte))
}

/// A complete response; written with `Content-Length` and `Connection: close`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header fields besides `Content-Length` and `Connection`, which [`write_response`] sets.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Body,
}

/// A response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// These bytes.
    Bytes(Vec<u8>),
    /// This many bytes of `x`, written in chunks so a large body costs no memory.
    Filler(usize),
}

impl Body {
    fn len(&self) -> usize {
        match self {
            Body::Bytes(bytes) => bytes.len(),
            Body::Filler(length) => *length,
        }
    }
}

impl Response {
    /// A `text/plain` response.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Response {
            status,
            headers: vec![("Content-Type".to_owned(), "text/plain; charset=utf-8".to_owned())],
            body: Body::Bytes(body.into().into_bytes()),
        }
    }

    /// A `text/html` response.
    pub fn html(status: u16, body: impl Into<String>) -> Self {
        Response {
            status,
            headers: vec![("Content-Type".to_owned(), "text/html; charset=utf-8".to_owned())],
            body: Body::Bytes(body.into().into_bytes()),
        }
    }

    /// Adds a header field.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}

/// Writes `response` completely. Header fields called `Content-Length` or `Connection` in it
/// are replaced by the true length and `close`; a `204` (or `1xx`), which may have neither a
/// body nor a `Content-Length` (RFC 9110 §8.6), is sent without both.
pub async fn write_response<S: AsyncWrite + Unpin>(stream: &mut S, response: &Response) -> io::Result<()> {
    write_message(stream, response, true).await
}

/// Writes `response` completely and leaves the connection open for the next request: as
/// [`write_response`], without `Connection: close`.
pub async fn write_response_keep_alive<S: AsyncWrite + Unpin>(stream: &mut S, response: &Response) -> io::Result<()> {
    write_message(stream, response, false).await
}

async fn write_message<S: AsyncWrite + Unpin>(stream: &mut S, response: &Response, close: bool) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", response.status, reason(response.status));
    for (name, value) in &response.headers {
        if !name.eq_ignore_ascii_case("Content-Length") && !name.eq_ignore_ascii_case("Connection") {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    let bodiless = response.status == 204 || response.status < 200;
    if !bodiless {
        head.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    }
    head.push_str(if close { "Connection: close\r\n\r\n" } else { "\r\n" });
    stream.write_all(head.as_bytes()).await?;
    if bodiless {
        return stream.flush().await;
    }
    match &response.body {
        Body::Bytes(bytes) => stream.write_all(bytes).await?,
        Body::Filler(length) => {
            let filler = [b'x'; 8192];
            let mut left = *length;
            while left > 0 {
                let now = left.min(filler.len());
                stream.write_all(&filler[..now]).await?;
                left -= now;
            }
        }
    }
    stream.flush().await
}

/// Writes `response`, then closes the connection gracefully.
pub async fn answer_and_close<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, response: &Response) {
    if write_response(stream, response).await.is_ok() {
        close_gracefully(stream).await;
    }
}

/// Ends the sending side, then discards what the peer still sends (bounded in time and size)
/// so that closing does not reset the connection under a response the peer has yet to read.
pub async fn close_gracefully<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) {
    let _ = stream.shutdown().await;
    let drain = async {
        let mut sink = [0u8; 4096];
        let mut drained = 0;
        while drained < DRAIN_LIMIT {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(read) => drained += read,
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_DEADLINE, drain).await;
}

/// The reason phrase sent with `status`.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        418 => "I'm a teapot",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
