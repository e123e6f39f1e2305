//! Test support shared by every test of the workspace: real servers on loopback.
//!
//! Root-package tests include it with `mod support;`; a crate's tests with
//! `#[path = "../../../tests/support/mod.rs"] mod support;`.
//!
//! Every server runs as a child process (or, for the target and the fault proxies, tasks of
//! the test's tokio runtime) on a free port of 127.0.0.1, and stops when its guard is dropped.
//! Nothing here touches a system service the packages may have started, nor any address
//! outside 127.0.0.0/8.
//!
//! - [`ServerProcess`]: the generic guard (spawn, wait until the port answers, kill on drop).
//! - [`Tinyproxy`]: an HTTP proxy with CONNECT, optionally behind basic auth.
//! - [`Dante`]: a SOCKS5 proxy, optionally with username/password auth.
//! - [`Redis`]: a throwaway redis-server.
//! - [`TargetServer`]: the site the traffic is for, in process: `/`, `/status/NNN`, `/slow`,
//!   `/retry-after`, `/captcha`, `/bytes`, `/echo-headers`.
//! - [`TlsTargetServer`]: the same pages over HTTPS with a fresh self-signed certificate.
//! - [`FaultProxy`]: HTTP proxies that fail: closed port, hanging, slow, banning (403, 429,
//!   captcha), flapping.
//! - [`http1`]: the HTTP/1.1 wire format the in-process servers speak (bounded head reads,
//!   responses that always carry `Content-Length`), for a test that needs a server of its own.
//! - [`raw_http`]: just enough of an HTTP/1.1 client to speak through a proxy by hand.
//! - [`raw_socks5`]: the same for SOCKS5.

// Each test binary uses a different part of the support.
#![allow(dead_code, unused_imports)]

mod dante;
mod fault_proxy;
mod forward;
pub mod http1;
mod in_process;
mod pages;
pub mod raw_http;
pub mod raw_socks5;
mod redis;
mod server;
mod target;
mod tinyproxy;
mod tls_target;

pub use dante::Dante;
pub use fault_proxy::FaultProxy;
pub use pages::{CAPTCHA_MARKER, CAPTCHA_PAGE};
pub use redis::Redis;
pub use server::{ServerProcess, find_program, is_root};
pub use target::TargetServer;
pub use tinyproxy::Tinyproxy;
pub use tls_target::TlsTargetServer;

use std::net::{Ipv4Addr, TcpListener};

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// Another process may take it before the caller binds it; [`ServerProcess::start`] retries
/// with a new port when its server fails to start.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address of a bound listener").port()
}
