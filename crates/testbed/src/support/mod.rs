//! Test support shared by every test tree of the workspace: real servers on loopback, and
//! just enough of a client to speak through a proxy by hand.
//!
//! The process servers run as child processes on a free port of 127.0.0.1 and stop when their
//! guard is dropped. A test that needs one panics loudly when its binary is missing
//! ("tinyproxy not found on PATH, ..."): `scripts/test.sh` installs them. Nothing here touches
//! a system service the packages may have started, nor any address outside 127.0.0.0/8.
//!
//! - [`ServerProcess`]: the generic guard (spawn, wait until the port answers, kill on drop).
//! - [`Tinyproxy`]: an HTTP proxy with CONNECT, optionally behind basic auth.
//! - [`Dante`]: a SOCKS5 proxy, optionally with username/password auth.
//! - [`Redis`]: a throwaway redis-server, which a test can stop and restart on the same port.
//! - [`RedisCluster`]: a throwaway Redis Cluster of three masters; [`RedisDeployment`] is
//!   either, [`RedisServer`] what a test asks of any of them, and
//!   [`on_standalone_and_cluster!`](crate::on_standalone_and_cluster) runs one
//!   test body on both.
//! - [`raw_http`]: just enough of an HTTP/1.1 client to speak through a proxy by hand.
//! - [`raw_socks5`]: the same for SOCKS5.
//! - [`eventually`] and [`eventually_some`]: wait, with a deadline, for a condition that
//!   another task or process makes true.
//!
//! The in-process servers (the target and the fault proxies) are at the crate's root.
//!
//! ```no_run
//! use harvester_testbed::support::Tinyproxy;
//!
//! let proxy = Tinyproxy::start(); // panics when tinyproxy is not installed
//! println!("send through {}", proxy.url());
//! ```

mod dante;
mod eventually;
pub mod extremes;
pub mod raw_http;
pub mod raw_socks5;
mod redis;
mod redis_cluster;
mod server;
mod tinyproxy;

use crate::free_port;

pub use dante::Dante;
pub use eventually::{eventually, eventually_some};
pub use redis::{Redis, command_calls};
pub use redis_cluster::{RedisCluster, RedisDeployment, RedisKind, RedisServer};
pub use server::{ServerProcess, find_program, is_root};
pub use tinyproxy::Tinyproxy;
