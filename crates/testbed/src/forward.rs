//! A forwarding HTTP proxy that reaches 127.0.0.0/8 only, for the proxies that work:
//! an absolute-form request is forwarded without its hop-by-hop fields (`Proxy-Authorization`
//! included, as a real proxy does) and the answer relayed; `CONNECT host:port` opens a tunnel.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::http1::{self, RequestHead, Response};

/// Header fields that concern one connection, never forwarded.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "upgrade",
];

/// Serves one client connection: reads the request, waits `delay`, then forwards it (or
/// tunnels, for `CONNECT`) and relays the answer. Refuses with `400` what it cannot parse,
/// `403` a destination outside 127.0.0.0/8 (names other than `localhost` are never resolved),
/// and `502` a destination that cannot be reached or answers garbage.
///
/// The working [`crate::FaultProxy`] kinds run it; with [`crate::InProcessServer`] it makes a
/// proxy with a fault of your own around it:
///
/// ```
/// use std::time::Duration;
///
/// use harvester_testbed::{InProcessServer, forward};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// // A proxy that is slower on every second connection.
/// let turn = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
/// let proxy = InProcessServer::start(move |client| {
///     let slow = turn.fetch_xor(true, std::sync::atomic::Ordering::SeqCst);
///     forward(client, if slow { Duration::from_millis(500) } else { Duration::ZERO })
/// })
/// .await?;
/// # let _ = proxy.addr();
/// # Ok(())
/// # }
/// ```
pub async fn forward(mut client: TcpStream, delay: Duration) {
    let Some((head, early)) = http1::read_request(&mut client).await else {
        return;
    };
    tokio::time::sleep(delay).await;
    let outcome = if head.is_connect() {
        tunnel(&mut client, &head, &early).await
    } else {
        relay(&mut client, &head, &early).await
    };
    match outcome {
        Ok(()) => http1::close_gracefully(&mut client).await,
        Err(refusal) => http1::answer_and_close(&mut client, &refusal).await,
    }
}

/// `CONNECT host:port`: connects, answers `200`, then copies both ways until either side ends.
async fn tunnel(client: &mut TcpStream, head: &RequestHead, early: &[u8]) -> Result<(), Response> {
    let destination = loopback_destination(&head.target, None)?;
    let mut upstream = connect(destination).await?;
    if client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.is_err()
        || upstream.write_all(early).await.is_err()
    {
        return Ok(());
    }
    let _ = tokio::io::copy_bidirectional(client, &mut upstream).await;
    Ok(())
}

/// `METHOD http://host:port/path`: sends `METHOD /path` upstream with `Connection: close`,
/// relays the response head with `Connection: close`, then the rest until upstream ends. The
/// request body, if any, streams upstream meanwhile.
async fn relay(client: &mut TcpStream, head: &RequestHead, early: &[u8]) -> Result<(), Response> {
    let Some((authority, path)) = absolute_form(&head.target) else {
        return Err(Response::text(400, "a proxy request needs an absolute-form http:// target"));
    };
    let destination = loopback_destination(authority, Some(80))?;
    let mut upstream = connect(destination).await?;
    let mut request = format!("{} {path} HTTP/1.1\r\n", head.method);
    if head.header("Host").is_none() {
        request.push_str(&format!("Host: {authority}\r\n"));
    }
    for (name, value) in &head.headers {
        if !HOP_BY_HOP.iter().any(|hop| name.eq_ignore_ascii_case(hop)) {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    request.push_str("Connection: close\r\n\r\n");
    if upstream.write_all(request.as_bytes()).await.is_err() || upstream.write_all(early).await.is_err() {
        return Err(Response::text(502, format!("{destination} went away while taking the request")));
    }

    let (mut client_read, mut client_write) = client.split();
    let (mut upstream_read, mut upstream_write) = upstream.split();
    let upload = async {
        let _ = tokio::io::copy(&mut client_read, &mut upstream_write).await;
        let _ = upstream_write.shutdown().await;
        // Only the response decides when the exchange is over.
        std::future::pending::<()>().await;
    };
    let download = async {
        let Ok((response_head, rest)) = http1::read_head(&mut upstream_read).await else {
            return false;
        };
        let Some(response_head) = close_delimited(&response_head) else {
            return false;
        };
        if client_write.write_all(response_head.as_bytes()).await.is_ok() && client_write.write_all(&rest).await.is_ok()
        {
            let _ = tokio::io::copy(&mut upstream_read, &mut client_write).await;
        }
        true
    };
    let head_relayed = tokio::select! {
        () = upload => false,
        relayed = download => relayed,
    };
    if head_relayed { Ok(()) } else { Err(Response::text(502, format!("{destination} sent no valid response head"))) }
}

/// A response head with its connection fields replaced by `Connection: close`, blank line
/// included; `None` when it is not an HTTP/1.x response head.
fn close_delimited(head: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().filter(|line| line.starts_with("HTTP/1."))?;
    let mut rewritten = format!("{status_line}\r\n");
    for line in lines {
        let name = line.split_once(':').map_or(line, |(name, _)| name).trim();
        if !["connection", "proxy-connection", "keep-alive"].iter().any(|hop| name.eq_ignore_ascii_case(hop)) {
            rewritten.push_str(line);
            rewritten.push_str("\r\n");
        }
    }
    rewritten.push_str("Connection: close\r\n\r\n");
    Some(rewritten)
}

/// `http://authority/path?query` → (`authority`, `/path?query`); `None` for any other form.
pub(crate) fn absolute_form(target: &str) -> Option<(&str, String)> {
    let scheme = target.get(..7).filter(|scheme| scheme.eq_ignore_ascii_case("http://"))?;
    let rest = &target[scheme.len()..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let path = match path.chars().next() {
        Some('/') => path.to_owned(),
        Some(_) => format!("/{path}"),
        None => "/".to_owned(),
    };
    Some((authority, path))
}

/// The address named by `host[:port]`, if it is in 127.0.0.0/8 (`localhost` counts as
/// 127.0.0.1); other names are refused without being resolved.
pub(crate) fn loopback_destination(authority: &str, default_port: Option<u16>) -> Result<SocketAddr, Response> {
    let forbidden =
        || Response::text(403, format!("{authority} is outside 127.0.0.0/8; this proxy reaches loopback only"));
    let bad = || Response::text(400, format!("cannot read host and port from {authority:?}"));
    if authority.starts_with('[') {
        return Err(forbidden());
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, port.parse::<u16>().ok().filter(|port| *port != 0).ok_or_else(bad)?),
        None => (authority, default_port.ok_or_else(bad)?),
    };
    if host.is_empty() {
        return Err(bad());
    }
    let ip = if host.eq_ignore_ascii_case("localhost") {
        Ipv4Addr::LOCALHOST
    } else {
        host.parse::<Ipv4Addr>().ok().filter(Ipv4Addr::is_loopback).ok_or_else(forbidden)?
    };
    Ok(SocketAddr::from((ip, port)))
}

async fn connect(destination: SocketAddr) -> Result<TcpStream, Response> {
    TcpStream::connect(destination)
        .await
        .map_err(|error| Response::text(502, format!("cannot connect to {destination}: {error}")))
}
