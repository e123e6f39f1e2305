//! tinyproxy: a real HTTP proxy (plain forwarding and CONNECT tunnels).

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::net::SocketAddr;

use super::ServerProcess;

/// A tinyproxy instance on 127.0.0.1, stopped when dropped.
///
/// Configured with no `ConnectPort` line, which tinyproxy reads as "CONNECT to any port", so
/// tunnels reach targets on ephemeral ports. No `Via` header is added.
#[must_use = "the server stops as soon as it is dropped"]
pub struct Tinyproxy {
    server: ServerProcess,
    credentials: Option<(String, String)>,
}

impl Tinyproxy {
    /// Starts an open proxy (loopback clients only).
    pub fn start() -> Self {
        Self::launch(None)
    }

    /// Starts a proxy that requires `Proxy-Authorization: Basic` with `user` and `password`
    /// and answers 407 without it. Both must be plain tokens (no spaces or quotes).
    pub fn start_with_auth(user: &str, password: &str) -> Self {
        Self::launch(Some((user.to_owned(), password.to_owned())))
    }

    fn launch(credentials: Option<(String, String)>) -> Self {
        let server = ServerProcess::start("tinyproxy", |dir, port| {
            let mut conf = format!(
                "Port {port}\n\
                 Listen 127.0.0.1\n\
                 Timeout 30\n\
                 Allow 127.0.0.1\n\
                 MaxClients 100\n\
                 DisableViaHeader Yes\n\
                 LogLevel Info\n\
                 LogFile \"{log}\"\n\
                 PidFile \"{pid}\"\n",
                log = dir.join("tinyproxy.log").display(),
                pid = dir.join("tinyproxy.pid").display(),
            );
            if let Some((user, password)) = &credentials {
                writeln!(conf, "BasicAuth {user} {password}").expect("write to a String");
            }
            let path = dir.join("tinyproxy.conf");
            fs::write(&path, conf).expect("write tinyproxy.conf");
            // -d: stay in the foreground, so the guard owns the process.
            vec!["-d".into(), "-c".into(), OsString::from(path)]
        });
        Tinyproxy { server, credentials }
    }

    /// `http://127.0.0.1:PORT`, or `http://user:password@127.0.0.1:PORT` with auth.
    pub fn url(&self) -> String {
        match &self.credentials {
            Some((user, password)) => format!("http://{user}:{password}@{}", self.addr()),
            None => format!("http://{}", self.addr()),
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// What tinyproxy logged so far.
    pub fn logs(&self) -> String {
        self.server.logs()
    }
}
