//! redis-server: a throwaway instance for the distributed-mode tests.

use std::net::SocketAddr;

use super::ServerProcess;

/// A redis-server on 127.0.0.1 that persists nothing, stopped when dropped.
pub struct Redis {
    server: ServerProcess,
}

impl Redis {
    /// Starts an empty instance.
    pub fn start() -> Self {
        let server = ServerProcess::start("redis-server", |dir, port| {
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
        });
        Redis { server }
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
