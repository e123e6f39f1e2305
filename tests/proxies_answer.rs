//! The real proxies the other tests rely on answer as expected on loopback: tinyproxy forwards
//! and tunnels, danted relays SOCKS5 with and without username auth. If one of these fails,
//! look at the test support or the installed servers before the code under test.

use std::net::SocketAddr;

use harvester_testbed::TargetServer;
use harvester_testbed::support::raw_http::{self, basic_auth};
use harvester_testbed::support::raw_socks5::socks5_connect;
use harvester_testbed::support::{Dante, Tinyproxy};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const DANTE_USER: &str = "harvester-socks";
const DANTE_PASSWORD: &str = "s0cks-Pass";

#[tokio::test]
async fn tinyproxy_forwards_a_get_to_the_target() {
    let target = TargetServer::start().await.expect("target starts");
    let proxy = Tinyproxy::start();

    let mut stream = connect(proxy.addr()).await;
    let url = format!("{}/", target.url());
    let response = raw_http::get(&mut stream, &url, &target.addr().to_string(), &[]).await;

    assert_eq!(response.status, 200, "{response:?}\n{}", proxy.logs());
    assert_eq!(response.body, "hello");
    assert_eq!(target.requests_served(), 1);
}

#[tokio::test]
async fn tinyproxy_tunnels_connect_to_a_target_on_any_port() {
    let target = TargetServer::start().await.expect("target starts");
    let proxy = Tinyproxy::start();

    let mut stream = connect(proxy.addr()).await;
    let authority = target.addr().to_string();
    let connect_request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
    stream.write_all(connect_request.as_bytes()).await.expect("write CONNECT");
    let established = raw_http::read_head(&mut stream).await;
    assert_eq!(established.status, 200, "{established:?}\n{}", proxy.logs());

    let response = raw_http::get(&mut stream, "/", &authority, &[]).await;
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.body, "hello");
}

#[tokio::test]
async fn tinyproxy_with_basic_auth_answers_407_without_credentials_and_200_with_them() {
    let target = TargetServer::start().await.expect("target starts");
    let proxy = Tinyproxy::start_with_auth("scraper", "hunter2");
    let url = format!("{}/", target.url());
    let host = target.addr().to_string();

    let mut anonymous = connect(proxy.addr()).await;
    let refused = raw_http::get(&mut anonymous, &url, &host, &[]).await;
    assert_eq!(refused.status, 407, "{refused:?}\n{}", proxy.logs());

    let mut authorised = connect(proxy.addr()).await;
    let credentials = basic_auth("scraper", "hunter2");
    let response = raw_http::get(&mut authorised, &url, &host, &[("Proxy-Authorization", &credentials)]).await;
    assert_eq!(response.status, 200, "{response:?}\n{}", proxy.logs());
    assert_eq!(response.body, "hello");
    assert_eq!(target.requests_served(), 1);
    assert_eq!(proxy.url(), format!("http://scraper:hunter2@{}", proxy.addr()));
}

#[tokio::test]
async fn dante_relays_a_socks5_connect_without_auth() {
    let target = TargetServer::start().await.expect("target starts");
    let proxy = Dante::start();

    let mut stream = connect(proxy.addr()).await;
    socks5_connect(&mut stream, None, target.addr())
        .await
        .unwrap_or_else(|refusal| panic!("{refusal}\n{}", proxy.logs()));
    let response = raw_http::get(&mut stream, "/", &target.addr().to_string(), &[]).await;

    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.body, "hello");
    assert_eq!(proxy.url(), format!("socks5://{}", proxy.addr()));
}

#[tokio::test]
#[ignore = "needs root: danted checks passwords against system accounts (scripts/test.sh runs it as root)"]
async fn dante_accepts_the_right_password_and_refuses_a_wrong_one() {
    let target = TargetServer::start().await.expect("target starts");
    let proxy = Dante::start_with_auth(DANTE_USER, DANTE_PASSWORD);

    let mut stream = connect(proxy.addr()).await;
    socks5_connect(&mut stream, Some((DANTE_USER, DANTE_PASSWORD)), target.addr())
        .await
        .unwrap_or_else(|refusal| panic!("{refusal}\n{}", proxy.logs()));
    let response = raw_http::get(&mut stream, "/", &target.addr().to_string(), &[]).await;
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.body, "hello");

    let mut intruder = connect(proxy.addr()).await;
    let refusal = socks5_connect(&mut intruder, Some((DANTE_USER, "wrong")), target.addr()).await;
    assert!(refusal.is_err(), "a wrong password was accepted\n{}", proxy.logs());
    assert_eq!(target.requests_served(), 1);
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.unwrap_or_else(|error| panic!("connect to {addr}: {error}"))
}
