//! What the `collect` tests share: the built binary, input files, the output's lines, a bare
//! HTTP GET, and a job for the library's runs. Each test file uses some of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use harvester_collect::output::OutMode;
use harvester_collect::run::{self, Job};
use harvester_collect::stack::StackSettings;
use harvester_collect::work::Work;
use harvester_proxypool::ProxyPool;
use serde_json::Value;

/// The `collect` binary, built by cargo with this test's features.
pub fn collect_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_collect"))
}

/// `collect` with `args`, run to its end.
pub fn run(args: &[&str]) -> Output {
    Command::new(collect_binary()).args(args).output().expect("collect runs")
}

/// Writes `text` to `name` in `dir`.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write input");
    path
}

/// What `output` said on standard error.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The JSON lines of `path` (none while it does not exist; a line that does not parse, such as
/// one being written, is left out).
pub fn lines_of(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// `GET path` of the HTTP server at `addr`: its status and body, `None` while it is not up.
/// HTTP/1.0, so that the answer comes whole (never chunked).
pub async fn http_get(addr: impl tokio::net::ToSocketAddrs, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: test\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await.ok()?;
        let status = response.split(' ').nth(1)?.parse().ok()?;
        let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
        Some((status, body))
    };
    // A stalled server must fail the test's deadline, not hang it.
    tokio::time::timeout(Duration::from_secs(10), exchange).await.ok().flatten()
}

/// The body of `GET path` at `addr`, empty while the server is not up.
pub async fn http_body(addr: impl tokio::net::ToSocketAddrs, path: &str) -> String {
    http_get(addr, path).await.map(|(_, body)| body).unwrap_or_default()
}

/// The stack's settings: `concurrency` URLs at once, `rate_per_host`, `max_attempts` per
/// URL, each attempt within `attempt_timeout`; no hedging, fixed timeouts, no Redis.
pub fn settings(concurrency: usize, rate_per_host: u32, max_attempts: u32, attempt_timeout: Duration) -> StackSettings {
    StackSettings {
        concurrency,
        rate_per_host,
        max_attempts,
        attempt_timeout,
        hedge_share: 0.0,
        adaptive_timeout: false,
        #[cfg(feature = "redis")]
        redis: None,
    }
}

/// A job over `work` through `pool` into `out`, with `stack`, one worker per stage.
pub fn job(work: Box<dyn Work>, pool: ProxyPool, out: PathBuf, stack: StackSettings) -> Job {
    Job {
        work,
        pool,
        stack,
        stage_workers: 1,
        scaling: run::Scaling::default(),
        out,
        out_mode: OutMode::Create,
        extra_root_pem: None,
    }
}
