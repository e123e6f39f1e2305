//! Just enough of an HTTP/1.1 client to talk through a proxy by hand.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A response as read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// Header lines after the status line, `(name, value)`, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body (up to `Content-Length` when given), lossily decoded.
    pub body: String,
}

impl RawResponse {
    /// The first header called `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }
}

/// Writes `GET target` with `Connection: close` and the given extra headers, then reads the
/// response to the end of the stream.
///
/// `target` is what goes on the request line: `http://host:port/path` to a forwarding proxy,
/// `/path` to a server or inside a tunnel.
pub async fn get<S>(stream: &mut S, target: &str, host: &str, headers: &[(&str, &str)]) -> RawResponse
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut request = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("write the request");
    read_response(stream).await
}

/// Reads a whole response, up to the end of the stream.
pub async fn read_response<S: AsyncRead + Unpin>(stream: &mut S) -> RawResponse {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read the response");
    let text = String::from_utf8_lossy(&raw);
    let (head, body) =
        text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("response without a complete head: {text:?}"));
    let mut response = parse_head(head);
    let length = response.header("Content-Length").and_then(|length| length.trim().parse::<usize>().ok());
    response.body = match length {
        Some(length) => body.get(..length).unwrap_or(body).to_owned(),
        None => body.to_owned(),
    };
    response
}

/// Reads only the response head, byte by byte so nothing after it is consumed; for the
/// answer to `CONNECT`, after which the stream becomes the tunnel.
pub async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> RawResponse {
    let mut raw = Vec::new();
    while !raw.ends_with(b"\r\n\r\n") {
        let byte = stream
            .read_u8()
            .await
            .unwrap_or_else(|error| panic!("stream ended inside a response head ({error}): {raw:?}"));
        raw.push(byte);
    }
    let text = String::from_utf8_lossy(&raw);
    parse_head(text.trim_end_matches("\r\n"))
}

fn parse_head(head: &str) -> RawResponse {
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP status line: {status_line:?}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    RawResponse { status, headers, body: String::new() }
}

/// The `Proxy-Authorization` (or `Authorization`) value for basic auth: `Basic base64(user:password)`.
pub fn basic_auth(user: &str, password: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{password}");
    let mut encoded = String::from("Basic ");
    for chunk in input.as_bytes().chunks(3) {
        let bytes = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let triple = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]);
        for index in 0..4 {
            if index <= chunk.len() {
                let sextet = (triple >> (18 - 6 * index)) & 0x3f;
                encoded.push(char::from(ALPHABET[sextet as usize]));
            } else {
                encoded.push('=');
            }
        }
    }
    encoded
}
