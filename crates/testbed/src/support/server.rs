//! The generic guard around a server binary running as a child process.

use std::ffi::OsString;
use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::free_port;

/// How long a server may take from spawn until its port accepts connections.
const READY_DEADLINE: Duration = Duration::from_secs(10);
/// How long a server may take to exit after SIGTERM before it gets SIGKILL.
const STOP_DEADLINE: Duration = Duration::from_secs(5);
/// Fresh ports tried when a server exits before it is ready (another process took the port).
const START_ATTEMPTS: usize = 3;
/// Directories searched after PATH: sbin ones are missing from a non-root PATH.
const FALLBACK_DIRS: [&str; 5] = ["/usr/sbin", "/usr/bin", "/sbin", "/usr/local/sbin", "/usr/local/bin"];

/// A server binary running on a free port of 127.0.0.1, stopped when dropped.
///
/// Its stdout and stderr go to `output.log` in a private temporary directory, which also holds
/// whatever configuration the caller wrote there; [`ServerProcess::logs`] returns every `*.log`
/// file in it, so a failing test can show what the server said.
#[must_use = "the server stops as soon as it is dropped"]
pub struct ServerProcess {
    name: String,
    port: u16,
    child: Child,
    // Dropped after the child is stopped (fields drop after `Drop::drop` runs).
    dir: TempDir,
}

impl ServerProcess {
    /// Starts `program` and waits until its port on 127.0.0.1 accepts connections.
    ///
    /// `configure` receives the instance's private directory and the port to listen on, writes
    /// any configuration it needs there, and returns the command line arguments.
    ///
    /// # Panics
    /// When the program is not installed, or does not answer within the deadline; the message
    /// carries the server's logs.
    pub fn start(program: &str, configure: impl Fn(&Path, u16) -> Vec<OsString>) -> Self {
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port().expect("a free port on 127.0.0.1");
            match ServerProcess::start_on(program, port, &configure) {
                Ok(server) => return server,
                Err(failure) => failures.push(failure),
            }
        }
        panic!("{program} failed to start {START_ATTEMPTS} times:\n{}", failures.join("\n"))
    }

    /// Starts `program` on `port` (say, the port of an instance just stopped, to restart it
    /// in place) and waits until the port accepts connections; `Err` with the server's logs
    /// when it exits first (the port is taken).
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub fn start_on(program: &str, port: u16, configure: impl Fn(&Path, u16) -> Vec<OsString>) -> Result<Self, String> {
        let path = find_program(program).unwrap_or_else(|| {
            panic!("{program} not found on PATH, /usr/sbin or /usr/bin; run scripts/test.sh, which installs it")
        });
        let dir = tempfile::Builder::new()
            .prefix(&format!("harvester-{program}-"))
            .tempdir()
            .expect("create a temporary directory");
        let args = configure(dir.path(), port);
        let output = File::create(dir.path().join("output.log")).expect("create output.log");
        let child = Command::new(&path)
            .args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("clone the output.log handle"))
            .stderr(output)
            .spawn()
            .unwrap_or_else(|error| panic!("spawn {}: {error}", path.display()));
        let mut server = ServerProcess { name: program.to_owned(), port, child, dir };
        match server.wait_until_ready() {
            Ok(()) => Ok(server),
            Err(Readiness::Exited(status)) => Err(format!("port {port}: exited with {status}\n{}", server.logs())),
            Err(Readiness::TimedOut) => panic!(
                "{program} did not accept connections on 127.0.0.1:{port} within {READY_DEADLINE:?}\n{}",
                server.logs()
            ),
        }
    }

    /// Stops the server now (SIGTERM, then SIGKILL if it lingers); its logs stay readable.
    pub fn stop_now(&mut self) {
        self.stop();
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Its private temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Every `*.log` file of its directory, each under a header naming it.
    pub fn logs(&self) -> String {
        let mut files: Vec<PathBuf> = fs::read_dir(self.dir.path())
            .map(|entries| {
                entries
                    .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                    .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        let mut logs = String::new();
        for file in files {
            let text = fs::read_to_string(&file).unwrap_or_else(|error| format!("(unreadable: {error})\n"));
            logs.push_str(&format!("----- {} {} -----\n", self.name, file.display()));
            logs.push_str(&text);
            if !text.ends_with('\n') {
                logs.push('\n');
            }
        }
        logs
    }

    /// Polls the port until it accepts a connection, the child exits, or the deadline passes.
    fn wait_until_ready(&mut self) -> Result<(), Readiness> {
        let deadline = Instant::now() + READY_DEADLINE;
        let addr = self.addr();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Readiness::Exited(status.to_string()));
            }
            // A connection alone may reach another server that took the port between
            // `free_port` and our child's bind (a concurrent test's): ready only once the
            // listener is this child's own.
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
                && listens_on(self.child.id(), self.port) != Some(false)
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Readiness::TimedOut);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM first, so forking servers (danted) take their children down with them;
    /// SIGKILL when that does not end it in time.
    fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // The shell's builtin `kill`: procps is not on every minimal image.
        let _ = Command::new("sh")
            .args(["-c", "kill -TERM \"$0\"", &self.child.id().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_DEADLINE;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) => thread::sleep(Duration::from_millis(10)),
                Err(_) => break,
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether process `pid` holds the socket listening on 127.0.0.1:`port`, read from Linux's
/// /proc; `None` where /proc cannot tell (another OS), so the caller falls back to trusting
/// the connection.
fn listens_on(pid: u32, port: u16) -> Option<bool> {
    let table = fs::read_to_string("/proc/net/tcp").ok()?;
    // Columns: sl, local address (hex IPv4:port), remote address, state (0A = LISTEN), ..., inode (10th).
    let local = format!("0100007F:{port:04X}");
    let inodes: Vec<&str> = table
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|columns| columns.len() > 9 && columns[1] == local && columns[3] == "0A")
        .map(|columns| columns[9])
        .collect();
    let fds = fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    let owned = fds.filter_map(Result::ok).filter_map(|fd| fs::read_link(fd.path()).ok()).any(|target| {
        let target = target.to_string_lossy();
        inodes.iter().any(|inode| target == format!("socket:[{inode}]"))
    });
    Some(owned)
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

enum Readiness {
    Exited(String),
    TimedOut,
}

/// The path of `name` found on PATH or in the usual system directories.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path_dirs =
        std::env::var_os("PATH").map(|path| std::env::split_paths(&path).collect::<Vec<_>>()).unwrap_or_default();
    path_dirs
        .into_iter()
        .chain(FALLBACK_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Whether this process runs with effective uid 0 (needed to create system accounts and to
/// let danted read /etc/shadow).
pub fn is_root() -> bool {
    // The second field of `Uid:` is the effective uid.
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}
