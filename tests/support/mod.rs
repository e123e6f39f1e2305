//! Only for `crates/redis/tests/connection.rs`, which includes this file by path: the
//! redis-server guard of `harvester_testbed::support`, compiled from its source so that the
//! crate needs no new feature. Every other test uses `harvester_testbed::support` directly.

// The crate uses the guard of one server only.
#![allow(dead_code)]

#[path = "../../crates/testbed/src/support/redis.rs"]
mod redis;
#[path = "../../crates/testbed/src/support/server.rs"]
mod server;

use harvester_testbed::free_port;
pub use redis::Redis;
use server::ServerProcess;
