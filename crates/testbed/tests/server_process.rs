//! The guard around server binaries: a server is ready only on a port of its own, never
//! on one that another listener took first.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;

use harvester_testbed::free_port;
use harvester_testbed::support::{Redis, ServerProcess};

fn redis_arguments(dir: &Path, port: u16) -> Vec<OsString> {
    let port = port.to_string();
    let dir = dir.display().to_string();
    ["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", &dir]
        .into_iter()
        .map(Into::into)
        .collect()
}

#[test]
fn a_server_whose_port_another_listener_holds_is_not_taken_for_ready() {
    // What a concurrent test's server does when it binds the port first: it accepts
    // connections there, so a bare connect would call our child ready.
    let squatter = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a port");
    let port = squatter.local_addr().expect("its address").port();

    let started = ServerProcess::start_on("redis-server", port, redis_arguments);

    let failure = started.err().expect("redis-server cannot have the port");
    assert!(failure.contains(&format!("port {port}")), "the failure names the port: {failure}");
}

#[test]
fn a_server_on_a_free_port_is_ready_and_answers() {
    let redis = Redis::start();
    let mut stream = std::net::TcpStream::connect(redis.addr()).expect("connect");
    std::io::Write::write_all(&mut stream, b"PING\r\n").expect("send");
    let mut reply = [0u8; 7];
    std::io::Read::read_exact(&mut stream, &mut reply).expect("read");
    assert_eq!(&reply, b"+PONG\r\n");
}

#[test]
fn free_port_never_hands_out_the_same_port_twice() {
    let ports: Vec<u16> = (0..300).map(|_| free_port().expect("a free port")).collect();
    let distinct: BTreeSet<u16> = ports.iter().copied().collect();
    assert_eq!(distinct.len(), ports.len(), "a port handed out twice");
}
