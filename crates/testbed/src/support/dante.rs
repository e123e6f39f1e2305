//! danted: a real SOCKS5 proxy.

use std::ffi::OsString;
use std::fs;
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use super::{ServerProcess, find_program, is_root};

/// A danted instance on 127.0.0.1, stopped when dropped.
///
/// Clients and destinations are both limited to 127.0.0.0/8.
#[must_use = "the server stops as soon as it is dropped"]
pub struct Dante {
    server: ServerProcess,
    credentials: Option<(String, String)>,
}

impl Dante {
    /// Starts a SOCKS5 proxy without authentication (method 0x00).
    pub fn start() -> Self {
        Self::launch(None)
    }

    /// Starts a SOCKS5 proxy that requires username/password authentication (RFC 1929).
    ///
    /// Dante checks such credentials against the system's accounts (passwd/shadow), so this
    /// creates the system user `user` with `password` when needed (idempotent). That needs
    /// root, so the tests that call this are marked `#[ignore = "needs root: …"]` and
    /// `scripts/test.sh` runs them only as root (and says it skipped them otherwise).
    ///
    /// # Panics
    /// When not root: a test that needs these credentials cannot pass without them, and
    /// must not pass silently either.
    pub fn start_with_auth(user: &str, password: &str) -> Self {
        assert!(
            is_root(),
            "danted username auth checks system accounts: creating user {user:?} needs root \
             (run this test as root, as scripts/test.sh does when it can)"
        );
        ensure_system_user(user, password);
        Self::launch(Some((user.to_owned(), password.to_owned())))
    }

    fn launch(credentials: Option<(String, String)>) -> Self {
        let method = if credentials.is_some() { "username" } else { "none" };
        // As root danted must be told whom to run as; reading /etc/shadow for username auth
        // needs the privileged one. As another user these lines would make it fail to start.
        let users = if is_root() { "user.privileged: root\nuser.unprivileged: nobody\n" } else { "" };
        let server = ServerProcess::start("danted", |dir, port| {
            let conf = format!(
                "logoutput: {log}\n\
                 internal: 127.0.0.1 port = {port}\n\
                 external: 127.0.0.1\n\
                 clientmethod: none\n\
                 socksmethod: {method}\n\
                 {users}\
                 client pass {{\n    from: 127.0.0.0/8 to: 127.0.0.0/8\n    log: error\n}}\n\
                 socks pass {{\n    from: 127.0.0.0/8 to: 127.0.0.0/8\n    socksmethod: {method}\n    log: error\n}}\n",
                log = dir.join("danted.log").display(),
            );
            let path = dir.join("danted.conf");
            fs::write(&path, conf).expect("write danted.conf");
            // Foreground unless -D; one mother process; the pid file kept out of /var/run.
            vec![
                "-f".into(),
                OsString::from(path),
                "-N".into(),
                "1".into(),
                "-p".into(),
                OsString::from(dir.join("danted.pid")),
            ]
        });
        Dante { server, credentials }
    }

    /// `socks5://127.0.0.1:PORT`, or `socks5://user:password@127.0.0.1:PORT` with auth.
    pub fn url(&self) -> String {
        match &self.credentials {
            Some((user, password)) => format!("socks5://{user}:{password}@{}", self.addr()),
            None => format!("socks5://{}", self.addr()),
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// What danted logged so far.
    pub fn logs(&self) -> String {
        self.server.logs()
    }
}

/// Serialises account changes of the tests in this process; other processes are handled by
/// re-checking after a failed `useradd` and retrying `chpasswd` (it fails while another holds
/// the shadow lock).
static ACCOUNTS: Mutex<()> = Mutex::new(());

/// Makes sure the system account `user` exists (no home, no login shell) with `password`.
fn ensure_system_user(user: &str, password: &str) {
    let _guard = ACCOUNTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !user_exists(user) {
        let useradd = find_program("useradd").expect("useradd not found (package passwd)");
        let created = Command::new(useradd)
            .args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user])
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        assert!(created || user_exists(user), "useradd {user} failed and the user does not exist");
    }
    let chpasswd = find_program("chpasswd").expect("chpasswd not found (package passwd)");
    let mut last_error = String::new();
    for attempt in 0..10 {
        if attempt > 0 {
            thread::sleep(Duration::from_millis(100));
        }
        let mut child = Command::new(&chpasswd)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn chpasswd");
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(format!("{user}:{password}\n").as_bytes())
            .expect("write to chpasswd");
        let output = child.wait_with_output().expect("wait for chpasswd");
        if output.status.success() {
            return;
        }
        last_error = String::from_utf8_lossy(&output.stderr).into_owned();
    }
    panic!("chpasswd for {user} kept failing: {last_error}");
}

fn user_exists(user: &str) -> bool {
    Command::new("id")
        .args(["-u", user])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}
