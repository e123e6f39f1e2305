//! The keep-alive site and proxy: many requests, few connections, answers intact.

use harvester_testbed::{KeepAliveProxy, KeepAliveSite};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Reads one response delimited by its Content-Length; returns (head, body) as text.
async fn read_response(stream: &mut TcpStream) -> (String, String) {
    let (head, body) = harvester_testbed::http1::read_sized_response(stream, 1 << 20).await.expect("a response");
    (String::from_utf8(head).expect("text"), String::from_utf8(body).expect("text"))
}

#[tokio::test]
async fn one_client_connection_carries_many_requests_through_the_proxy_to_one_site_connection() {
    let site = KeepAliveSite::start().await.expect("site");
    let proxy = KeepAliveProxy::start().await.expect("proxy");
    let mut client = TcpStream::connect(proxy.url().trim_start_matches("http://")).await.expect("connect");

    for n in 0..5 {
        let request = format!("GET {}/page/{n} HTTP/1.1\r\nHost: site\r\n\r\n", site.url());
        client.write_all(request.as_bytes()).await.expect("send");
        let (head, body) = read_response(&mut client).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(!head.to_ascii_lowercase().contains("connection: close"), "{head}");
        assert!(body.contains("<title>ok</title>"), "{body}");
    }

    assert_eq!(site.requests(), 5);
    assert_eq!((proxy.connections(), site.connections()), (1, 1), "both sides kept their connection");
}

#[tokio::test]
async fn the_proxy_refuses_a_destination_outside_loopback() {
    let proxy = KeepAliveProxy::start().await.expect("proxy");
    let mut client = TcpStream::connect(proxy.url().trim_start_matches("http://")).await.expect("connect");
    client.write_all(b"GET http://192.0.2.1/ HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("send");
    let (head, _) = read_response(&mut client).await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
}
