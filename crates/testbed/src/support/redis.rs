//! redis-server: a throwaway instance for the distributed-mode tests.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use super::ServerProcess;

/// How long a restart may retry while the old instance's port is still being released.
const RESTART_DEADLINE: Duration = Duration::from_secs(10);

/// A redis-server on 127.0.0.1, stopped when dropped: one that persists nothing, or a
/// durable one that keeps every write across a restart.
#[must_use = "the server stops as soon as it is dropped"]
pub struct Redis {
    server: ServerProcess,
    /// Where a durable instance keeps its append-only file, across restarts.
    data: Option<tempfile::TempDir>,
}

impl Redis {
    /// Starts an empty instance that persists nothing.
    pub fn start() -> Self {
        Redis { server: ServerProcess::start("redis-server", |dir, port| arguments(dir, port, None)), data: None }
    }

    /// Starts an empty instance that syncs every write to its append-only file
    /// (`appendfsync always`) and finds it again after [`restart`](Self::restart): a
    /// Redis run as a work queue should be.
    pub fn start_durable() -> Self {
        let data = tempfile::Builder::new().prefix("redis-data").tempdir().expect("create a data directory");
        let path = data.path().to_owned();
        let server = ServerProcess::start("redis-server", move |dir, port| arguments(dir, port, Some(&path)));
        Redis { server, data: Some(data) }
    }

    /// Stops the instance now, as a crash or an outage would take it away: clients see
    /// their connections closed and new ones refused.
    pub fn stop(&mut self) {
        self.server.stop_now();
    }

    /// Starts a new instance on the same port (stopping the old one first if it still
    /// runs): what clients see when Redis restarts. It is empty, unless this one is
    /// durable: then it has every write the old one acknowledged.
    ///
    /// # Panics
    /// When the port cannot be had again within a deadline.
    pub fn restart(&mut self) {
        self.server.stop_now();
        let port = self.server.port();
        let deadline = Instant::now() + RESTART_DEADLINE;
        let data = self.data.as_ref().map(|data| data.path().to_owned());
        loop {
            match ServerProcess::start_on("redis-server", port, |dir, port| arguments(dir, port, data.as_deref())) {
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

/// An instance on `port`, logging in `dir`: persisting nothing, or with `data`, every
/// write synced to an append-only file there.
fn arguments(dir: &Path, port: u16, data: Option<&Path>) -> Vec<OsString> {
    let (appendonly, dir) = match data {
        Some(data) => ("yes", data),
        None => ("no", dir),
    };
    [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        appendonly,
        "--appendfsync",
        "always",
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
