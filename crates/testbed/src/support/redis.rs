//! redis-server: a throwaway instance for the distributed-mode tests.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use super::ServerProcess;

/// How long a restart may retry while the old instance's port is still being released.
const RESTART_DEADLINE: Duration = Duration::from_secs(10);

/// A redis-server on 127.0.0.1 that persists nothing, stopped when dropped.
#[must_use = "the server stops as soon as it is dropped"]
pub struct Redis {
    server: ServerProcess,
}

impl Redis {
    /// Starts an empty instance.
    pub fn start() -> Self {
        Redis { server: ServerProcess::start("redis-server", arguments) }
    }

    /// Stops the instance now, as a crash or an outage would take it away: clients see
    /// their connections closed and new ones refused.
    pub fn stop(&mut self) {
        self.server.stop_now();
    }

    /// Starts a new, empty instance on the same port (stopping the old one first if it
    /// still runs): what clients see when Redis restarts.
    ///
    /// # Panics
    /// When the port cannot be had again within a deadline.
    pub fn restart(&mut self) {
        self.server.stop_now();
        let port = self.server.port();
        let deadline = Instant::now() + RESTART_DEADLINE;
        loop {
            match ServerProcess::start_on("redis-server", port, arguments) {
                Ok(server) => {
                    self.server = server;
                    return;
                }
                // The old instance's socket may linger a moment: poll, bounded.
                Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
                Err(failure) => panic!("redis-server did not restart on port {port}: {failure}"),
            }
        }
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr())
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// What redis-server logged so far.
    pub fn logs(&self) -> String {
        self.server.logs()
    }
}

/// An instance that persists nothing, in its own directory, on `port`.
fn arguments(dir: &Path, port: u16) -> Vec<OsString> {
    [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--dir",
        &dir.display().to_string(),
    ]
    .into_iter()
    .map(Into::into)
    .collect()
}

/// The `calls` count of `command` (`cmdstat_<command>`, e.g. `evalsha`, `script|load`) in
/// the text of `INFO commandstats`; 0 when the server has not seen the command.
pub fn command_calls(commandstats: &str, command: &str) -> u64 {
    let prefix = format!("cmdstat_{command}:calls=");
    commandstats
        .lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .and_then(|rest| rest.split(',').next())
        .and_then(|calls| calls.trim().parse().ok())
        .unwrap_or(0)
}
