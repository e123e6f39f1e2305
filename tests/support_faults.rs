//! The in-process servers of the test support behave as documented: every page of the
//! target (plain and TLS) and every fault proxy. If one of these fails, look at the test
//! support before the code under test.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use harvester_testbed::support::raw_http::{self, RawResponse, basic_auth};
use harvester_testbed::{CAPTCHA_MARKER, FaultProxy, TargetServer, TlsTargetServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

// ----- the target's pages -----

#[tokio::test]
async fn target_answers_every_page_with_content_length() {
    let target = TargetServer::start().await.expect("target starts");

    for (path, status, body) in [
        ("/", 200, "hello"),
        ("/status/503", 503, "status 503"),
        ("/slow?ms=1", 200, "slow"),
        ("/nowhere", 404, "not found"),
    ] {
        let response = get_direct(&target, path, &[]).await;
        assert_eq!((response.status, response.body.as_str()), (status, body), "{path}: {response:?}");
        assert_eq!(response.header("Content-Length"), Some(body.len().to_string().as_str()), "{path}");
        assert_eq!(response.header("Connection"), Some("close"), "{path}");
    }
    assert_eq!(target.requests_served(), 4);
}

#[tokio::test]
async fn target_accepts_absolute_form_targets() {
    let target = TargetServer::start().await.expect("target starts");

    let mut stream = connect(target.addr()).await;
    let url = format!("{}/status/418", target.url());
    let response = raw_http::get(&mut stream, &url, &target.addr().to_string(), &[]).await;

    assert_eq!(response.status, 418, "{response:?}");
    assert_eq!(target.requests_to("/status/418"), 1);
}

#[tokio::test(start_paused = true)]
async fn target_slow_page_answers_after_the_delay() {
    let target = TargetServer::start().await.expect("target starts");
    let started = Instant::now();

    let response = get_direct(&target, "/slow?ms=45000", &[]).await;

    assert_eq!((response.status, response.body.as_str()), (200, "slow"));
    assert!(started.elapsed() >= Duration::from_secs(45), "answered after {:?}", started.elapsed());
    assert_eq!(target.requests_to("/slow"), 1);
}

#[tokio::test]
async fn target_retry_after_page_sends_the_header_with_429_or_the_given_status() {
    let target = TargetServer::start().await.expect("target starts");

    let limited = get_direct(&target, "/retry-after?secs=7", &[]).await;
    assert_eq!(limited.status, 429, "{limited:?}");
    assert_eq!(limited.header("Retry-After"), Some("7"));

    let unavailable = get_direct(&target, "/retry-after?secs=3&status=503", &[]).await;
    assert_eq!(unavailable.status, 503, "{unavailable:?}");
    assert_eq!(unavailable.header("Retry-After"), Some("3"));

    let malformed = get_direct(&target, "/retry-after?secs=soon", &[]).await;
    assert_eq!(malformed.status, 400, "{malformed:?}");
    assert_eq!(target.requests_to("/retry-after"), 3);
}

#[tokio::test]
async fn target_captcha_page_carries_the_marker() {
    let target = TargetServer::start().await.expect("target starts");

    let response = get_direct(&target, "/captcha", &[]).await;

    assert_eq!(response.status, 200);
    assert!(response.body.contains(CAPTCHA_MARKER), "{response:?}");
    assert!(response.body.contains("captcha"), "{response:?}");
    assert!(response.header("Content-Type").is_some_and(|kind| kind.starts_with("text/html")));
}

#[tokio::test]
async fn target_bytes_page_sends_exactly_n_bytes() {
    let target = TargetServer::start().await.expect("target starts");

    let response = get_direct(&target, "/bytes?n=100000", &[]).await;

    assert_eq!(response.status, 200);
    assert_eq!(response.header("Content-Length"), Some("100000"));
    assert_eq!(response.body.len(), 100_000);
    assert!(response.body.bytes().all(|byte| byte == b'x'));
}

#[tokio::test]
async fn target_echo_headers_page_lists_the_request_headers_lower_cased() {
    let target = TargetServer::start().await.expect("target starts");

    let response = get_direct(&target, "/echo-headers", &[("X-Probe", "one two")]).await;

    assert_eq!(response.status, 200);
    let lines: Vec<&str> = response.body.lines().collect();
    assert!(lines.contains(&"x-probe: one two"), "{lines:?}");
    assert!(lines.contains(&format!("host: {}", target.addr()).as_str()), "{lines:?}");
}

#[tokio::test]
async fn target_answers_400_to_a_malformed_request() {
    let target = TargetServer::start().await.expect("target starts");

    let mut stream = connect(target.addr()).await;
    stream.write_all(b"this is not http\r\n\r\n").await.expect("write garbage");
    let response = raw_http::read_response(&mut stream).await;

    assert_eq!(response.status, 400, "{response:?}");
    assert_eq!(target.requests_served(), 0);
}

// ----- the TLS target -----

#[tokio::test]
async fn tls_target_serves_the_pages_to_a_client_that_trusts_its_certificate() {
    let target = TlsTargetServer::start().await.expect("TLS target starts");
    assert!(target.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(target.url(), format!("https://{}", target.addr()));

    for name in ["127.0.0.1", "localhost"] {
        let mut tls = tls_connect(&target, name, trusting(&target.cert_der()))
            .await
            .unwrap_or_else(|error| panic!("handshake as {name}: {error}"));
        let response = raw_http::get(&mut tls, "/", name, &[]).await;
        assert_eq!((response.status, response.body.as_str()), (200, "hello"), "{name}");
    }
    assert_eq!(target.requests_to("/"), 2);
}

#[tokio::test]
async fn tls_target_is_refused_by_a_client_that_does_not_trust_it() {
    let target = TlsTargetServer::start().await.expect("TLS target starts");

    let handshake = tls_connect(&target, "127.0.0.1", trusting(&[])).await;

    assert!(handshake.is_err(), "an untrusted certificate was accepted");
    assert_eq!(target.requests_served(), 0);
}

// ----- the fault proxies -----

#[tokio::test]
async fn closed_proxy_refuses_connections() {
    let proxy = FaultProxy::closed().await.expect("fault proxy starts");

    let refused = TcpStream::connect(proxy.addr()).await;

    assert_eq!(refused.map(drop).map_err(|error| error.kind()), Err(ErrorKind::ConnectionRefused));
    assert_eq!(proxy.url(), format!("http://{}", proxy.addr()));
    assert_eq!(proxy.connections(), 0);
}

#[tokio::test(start_paused = true)]
async fn hanging_proxy_accepts_but_never_answers() {
    let target = TargetServer::start().await.expect("target starts");
    let proxy = FaultProxy::hanging().await.expect("fault proxy starts");

    let mut stream = send_get(proxy.addr(), &format!("{}/", target.url()), &[]).await;
    let mut answer = Vec::new();
    let waited = timeout(Duration::from_secs(300), stream.read_to_end(&mut answer)).await;

    assert!(waited.is_err(), "the hanging proxy answered {answer:?}");
    assert_eq!(proxy.connections(), 1);
    assert_eq!(target.requests_served(), 0);
}

#[tokio::test]
async fn forwarding_proxy_relays_the_target_body_and_strips_proxy_credentials() {
    let target = TargetServer::start().await.expect("target starts");
    let proxy = FaultProxy::slow(Duration::ZERO).await.expect("fault proxy starts");

    let hello = get_via(proxy.addr(), &format!("{}/", target.url()), &[]).await;
    assert_eq!((hello.status, hello.body.as_str()), (200, "hello"));

    let credentials = basic_auth("scraper", "hunter2");
    let headers = [("Proxy-Authorization", credentials.as_str()), ("X-Probe", "seen")];
    let echoed = get_via(proxy.addr(), &format!("{}/echo-headers", target.url()), &headers).await;
    assert_eq!(echoed.status, 200);
    assert!(echoed.body.contains("x-probe: seen"), "{echoed:?}");
    assert!(!echoed.body.contains("proxy-authorization"), "credentials leaked to the target: {echoed:?}");

    let large = get_via(proxy.addr(), &format!("{}/bytes?n=300000", target.url()), &[]).await;
    assert_eq!(large.body.len(), 300_000);
    assert_eq!(target.requests_served(), 3);
    assert_eq!(proxy.connections(), 3);
}

#[tokio::test]
async fn forwarding_proxy_tunnels_connect() {
    let target = TargetServer::start().await.expect("target starts");
    let proxy = FaultProxy::slow(Duration::ZERO).await.expect("fault proxy starts");

    let mut stream = connect(proxy.addr()).await;
    let authority = target.addr().to_string();
    let established = send_connect(&mut stream, &authority).await;
    assert_eq!(established.status, 200, "{established:?}");

    let response = raw_http::get(&mut stream, "/", &authority, &[]).await;
    assert_eq!((response.status, response.body.as_str()), (200, "hello"));
}

#[tokio::test]
async fn forwarding_proxy_refuses_destinations_outside_loopback_and_garbage() {
    let proxy = FaultProxy::slow(Duration::ZERO).await.expect("fault proxy starts");

    for url in ["http://192.0.2.1/", "http://example.com:8080/", "http://[::1]:80/"] {
        let refused = get_via(proxy.addr(), url, &[]).await;
        assert_eq!(refused.status, 403, "{url}: {refused:?}");
    }
    let mut stream = connect(proxy.addr()).await;
    assert_eq!(send_connect(&mut stream, "192.0.2.1:443").await.status, 403);

    let origin_form = get_via(proxy.addr(), "/", &[]).await;
    assert_eq!(origin_form.status, 400, "{origin_form:?}");

    let mut stream = connect(proxy.addr()).await;
    stream.write_all(&vec![b'a'; 100 * 1024]).await.expect("write an endless head");
    assert_eq!(raw_http::read_response(&mut stream).await.status, 400);
}

#[tokio::test(start_paused = true)]
async fn slow_proxy_holds_the_request_for_the_delay_before_forwarding() {
    let target = TargetServer::start().await.expect("target starts");
    let delay = Duration::from_secs(20);
    let proxy = FaultProxy::slow(delay).await.expect("fault proxy starts");
    let started = Instant::now();

    let mut stream = send_get(proxy.addr(), &format!("{}/", target.url()), &[]).await;
    let early = timeout(delay - Duration::from_millis(1), raw_http::read_response(&mut stream)).await;
    assert!(early.is_err(), "answered before the delay: {early:?}");
    assert_eq!(target.requests_to("/"), 0);

    let response = raw_http::read_response(&mut stream).await;
    assert_eq!((response.status, response.body.as_str()), (200, "hello"));
    assert!(started.elapsed() >= delay, "answered after {:?}", started.elapsed());
    assert_eq!(target.requests_to("/"), 1);
}

#[tokio::test(start_paused = true)]
async fn slow_proxy_answers_connect_after_the_delay() {
    let target = TargetServer::start().await.expect("target starts");
    let delay = Duration::from_secs(20);
    let proxy = FaultProxy::slow(delay).await.expect("fault proxy starts");
    let started = Instant::now();

    let mut stream = connect(proxy.addr()).await;
    let established = send_connect(&mut stream, &target.addr().to_string()).await;

    assert_eq!(established.status, 200, "{established:?}");
    assert!(started.elapsed() >= delay, "established after {:?}", started.elapsed());
}

#[tokio::test]
async fn banning_proxies_answer_themselves_and_never_reach_the_target() {
    let target = TargetServer::start().await.expect("target starts");
    let url = format!("{}/", target.url());

    let banned = FaultProxy::banning_403().await.expect("fault proxy starts");
    assert_eq!(get_via(banned.addr(), &url, &[]).await.status, 403);

    let limited = FaultProxy::rate_limiting_429(30).await.expect("fault proxy starts");
    let response = get_via(limited.addr(), &url, &[]).await;
    assert_eq!(response.status, 429, "{response:?}");
    assert_eq!(response.header("Retry-After"), Some("30"));

    let captcha = FaultProxy::captcha().await.expect("fault proxy starts");
    let response = get_via(captcha.addr(), &url, &[]).await;
    assert_eq!(response.status, 200);
    assert!(response.body.contains(CAPTCHA_MARKER), "{response:?}");

    let teapot = FaultProxy::answering(418, &[("X-Why", "teapot"), ("Content-Length", "999")], "short")
        .await
        .expect("fault proxy starts");
    let response = get_via(teapot.addr(), &url, &[]).await;
    assert_eq!((response.status, response.body.as_str()), (418, "short"));
    assert_eq!(response.header("X-Why"), Some("teapot"));
    assert_eq!(response.header("Content-Length"), Some("5"));

    assert_eq!(target.requests_served(), 0);
}

#[tokio::test]
async fn banning_proxy_refuses_connect_with_its_status() {
    let target = TargetServer::start().await.expect("target starts");
    let proxy = FaultProxy::banning_403().await.expect("fault proxy starts");

    let mut stream = connect(proxy.addr()).await;
    let refused = send_connect(&mut stream, &target.addr().to_string()).await;

    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(target.connections(), 0);
}

#[tokio::test]
async fn flapping_proxy_forwards_while_up_and_fails_requests_while_down() {
    let target = TargetServer::start().await.expect("target starts");
    let proxy = FaultProxy::flapping().await.expect("fault proxy starts");
    let url = format!("{}/", target.url());

    assert_eq!(get_via(proxy.addr(), &url, &[]).await.body, "hello");

    proxy.set_up(false);
    let mut stream = send_get(proxy.addr(), &url, &[]).await;
    let mut answer = Vec::new();
    let read = stream.read_to_end(&mut answer).await;
    assert!(read.is_err() || answer.is_empty(), "a down proxy answered {answer:?}");

    proxy.set_up(true);
    assert_eq!(get_via(proxy.addr(), &url, &[]).await.body, "hello");
    assert_eq!(target.requests_served(), 2);
    assert_eq!(proxy.connections(), 3);
}

// ----- helpers -----

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.unwrap_or_else(|error| panic!("connect to {addr}: {error}"))
}

/// `GET path` straight to the target.
async fn get_direct(target: &TargetServer, path: &str, headers: &[(&str, &str)]) -> RawResponse {
    let mut stream = connect(target.addr()).await;
    raw_http::get(&mut stream, path, &target.addr().to_string(), headers).await
}

/// `GET url` (absolute form) through the proxy at `proxy`, read to the end.
async fn get_via(proxy: SocketAddr, url: &str, headers: &[(&str, &str)]) -> RawResponse {
    let mut stream = send_get(proxy, url, headers).await;
    raw_http::read_response(&mut stream).await
}

/// Writes `GET url` to the proxy at `proxy` without reading the answer.
async fn send_get(proxy: SocketAddr, url: &str, headers: &[(&str, &str)]) -> TcpStream {
    let host = url.split("://").nth(1).and_then(|rest| rest.split('/').next()).unwrap_or("unknown");
    let mut request = format!("GET {url} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut stream = connect(proxy).await;
    stream.write_all(request.as_bytes()).await.expect("write the request");
    stream
}

/// Sends `CONNECT authority` and reads the answer's head.
async fn send_connect(stream: &mut TcpStream, authority: &str) -> RawResponse {
    let request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write CONNECT");
    raw_http::read_head(stream).await
}

/// A client configuration (ring provider) that trusts `cert_der` only (nothing when empty).
fn trusting(cert_der: &[u8]) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    if !cert_der.is_empty() {
        roots.add(CertificateDer::from(cert_der.to_vec())).expect("a valid certificate");
    }
    ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// Connects to the TLS target over TCP and shakes hands presenting `server_name`.
async fn tls_connect(
    target: &TlsTargetServer,
    server_name: &str,
    config: ClientConfig,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let name = ServerName::try_from(server_name.to_owned()).expect("a valid server name");
    let tcp = connect(target.addr()).await;
    TlsConnector::from(Arc::new(config)).connect(name, tcp).await
}
