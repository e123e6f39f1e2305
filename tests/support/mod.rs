//! Test support shared by every test of the workspace: real servers on loopback.
//!
//! Root-package tests include it with `mod support;`; a crate's tests with
//! `#[path = "../../../tests/support/mod.rs"] mod support;` (and `harvester-testbed` among
//! the crate's dev-dependencies).
//!
//! The process servers here run as child processes on a free port of 127.0.0.1 and stop when
//! their guard is dropped; the in-process ones (the target and the fault proxies) come from
//! the `harvester-testbed` crate and are re-exported here. Nothing here touches a system
//! service the packages may have started, nor any address outside 127.0.0.0/8.
//!
//! - [`ServerProcess`]: the generic guard (spawn, wait until the port answers, kill on drop).
//! - [`Tinyproxy`]: an HTTP proxy with CONNECT, optionally behind basic auth.
//! - [`Dante`]: a SOCKS5 proxy, optionally with username/password auth.
//! - [`Redis`]: a throwaway redis-server, which a test can stop and restart on the same port.
//! - [`TargetServer`]: the site the traffic is for, in process: `/`, `/status/NNN`, `/slow`,
//!   `/retry-after`, `/captcha`, `/bytes`, `/echo-headers`, `/product/N`, `/catalogue`.
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
pub mod raw_http;
pub mod raw_socks5;
mod redis;
mod server;
mod tinyproxy;

pub use dante::Dante;
pub use harvester_testbed::http1;
pub use harvester_testbed::{
    CAPTCHA_MARKER, CAPTCHA_PAGE, FaultProxy, InProcessServer, PageStats, Product, TargetServer, TlsTargetServer,
    forward, free_port, serve_pages,
};
pub use redis::Redis;
pub use server::{ServerProcess, find_program, is_root};
pub use tinyproxy::Tinyproxy;
