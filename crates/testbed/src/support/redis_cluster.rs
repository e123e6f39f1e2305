//! A throwaway Redis Cluster (three masters on loopback), and the choice between it and a
//! standalone redis-server that the distributed tests run on.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Redis, ServerProcess, eventually, find_program, free_port};

/// Masters of the cluster: the fewest `redis-cli --cluster create` accepts.
const MASTERS: usize = 3;
/// How long the nodes may take to agree on the slots once created.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// A Redis Cluster of three masters (no replicas) on free ports of 127.0.0.1, each slot
/// served, stopped when dropped. Needs `redis-server` and `redis-cli` (package
/// redis-tools; `scripts/test.sh` installs both).
///
/// ```no_run
/// use harvester_testbed::support::RedisCluster;
///
/// # async fn run() {
/// let cluster = RedisCluster::start().await; // every node says cluster_state:ok
/// println!("seed node: {}", cluster.url());
/// # }
/// ```
#[must_use = "the cluster stops as soon as it is dropped"]
pub struct RedisCluster {
    nodes: Vec<ServerProcess>,
}

impl RedisCluster {
    /// Starts three nodes with `--cluster-enabled yes`, joins them with
    /// `redis-cli --cluster create ... --cluster-replicas 0`, and waits until every node
    /// reports `cluster_state:ok`.
    ///
    /// # Panics
    /// When a program is missing, the cluster cannot be created, or it is not ready within
    /// 30 s; the message carries what the nodes and redis-cli said.
    pub async fn start() -> RedisCluster {
        let nodes: Vec<ServerProcess> = (0..MASTERS).map(|_| ServerProcess::start("redis-server", arguments)).collect();
        let cluster = RedisCluster { nodes };
        let cli = find_program("redis-cli")
            .unwrap_or_else(|| panic!("redis-cli not found; run scripts/test.sh, which installs redis-tools"));
        let output = Command::new(cli)
            .args(["--cluster", "create"])
            .args(cluster.nodes.iter().map(|node| node.addr().to_string()))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| panic!("run redis-cli --cluster create: {error}"));
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed ({}):\n{}{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            cluster.logs()
        );
        for node in &cluster.nodes {
            let addr = node.addr();
            eventually(READY_WITHIN, &format!("cluster_state:ok on {addr}"), || async move {
                cluster_info(addr).await.is_some_and(|info| info.contains("cluster_state:ok"))
            })
            .await;
        }
        cluster
    }

    /// `redis://127.0.0.1:PORT` of the first node: the seed a client discovers the others
    /// from.
    pub fn url(&self) -> String {
        format!("redis://{}", self.nodes[0].addr())
    }

    /// `redis://127.0.0.1:PORT` of every node.
    pub fn node_urls(&self) -> Vec<String> {
        self.nodes.iter().map(|node| format!("redis://{}", node.addr())).collect()
    }

    /// What every node logged so far.
    pub fn logs(&self) -> String {
        self.nodes.iter().map(ServerProcess::logs).collect()
    }
}

/// A cluster node on `port`, its bus on another free port (the default, port + 10000,
/// may be taken or past 65535), its state in `dir`.
fn arguments(dir: &Path, port: u16) -> Vec<OsString> {
    let bus = free_port().expect("a free port on 127.0.0.1 for the cluster bus");
    [
        "--port",
        &port.to_string(),
        "--cluster-port",
        &bus.to_string(),
        "--bind",
        "127.0.0.1",
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        &dir.join("nodes.conf").display().to_string(),
        "--cluster-node-timeout",
        "5000",
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

/// The text of `CLUSTER INFO` from the node at `addr`, or `None` when it does not answer.
async fn cluster_info(addr: std::net::SocketAddr) -> Option<String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream.write_all(b"CLUSTER INFO\r\n").await.ok()?;
        let mut reply = Vec::new();
        let mut buffer = [0u8; 4096];
        // A bulk string: `$<length>\r\n<text>\r\n`; read until the whole text is in.
        loop {
            let read = stream.read(&mut buffer).await.ok()?;
            if read == 0 {
                return None;
            }
            reply.extend_from_slice(&buffer[..read]);
            let text = String::from_utf8_lossy(&reply);
            let (header, body) = text.split_once("\r\n")?;
            let length: usize = header.strip_prefix('$')?.parse().ok()?;
            if body.len() >= length {
                return Some(body[..length].to_owned());
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(1), exchange).await.ok().flatten()
}

/// Which Redis a distributed test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisKind {
    /// One redis-server ([`Redis`]).
    Standalone,
    /// A three-master cluster ([`RedisCluster`]).
    Cluster,
}

/// A running Redis of either kind: what a test written once for both holds.
#[must_use = "the servers stop as soon as they are dropped"]
pub enum RedisDeployment {
    /// One redis-server.
    Standalone(Redis),
    /// A three-master cluster.
    Cluster(RedisCluster),
}

impl RedisDeployment {
    /// Starts a Redis of `kind`.
    pub async fn start(kind: RedisKind) -> RedisDeployment {
        match kind {
            RedisKind::Standalone => RedisDeployment::Standalone(Redis::start()),
            RedisKind::Cluster => RedisDeployment::Cluster(RedisCluster::start().await),
        }
    }
}

/// What a test needs to know of a running Redis, whichever kind: where to connect, with
/// which `cluster` flag, each server to look at, and what they logged.
pub trait RedisServer {
    /// The URL to connect to (a cluster's seed node).
    fn url(&self) -> String;
    /// Whether it is a cluster: the `cluster` flag of a client's configuration.
    fn is_cluster(&self) -> bool;
    /// `redis://127.0.0.1:PORT` of every server: the one, or each node of the cluster.
    fn node_urls(&self) -> Vec<String>;
    /// What the servers logged so far.
    fn logs(&self) -> String;
}

impl RedisServer for Redis {
    fn url(&self) -> String {
        Redis::url(self)
    }

    fn is_cluster(&self) -> bool {
        false
    }

    fn node_urls(&self) -> Vec<String> {
        vec![Redis::url(self)]
    }

    fn logs(&self) -> String {
        Redis::logs(self)
    }
}

impl RedisServer for RedisCluster {
    fn url(&self) -> String {
        RedisCluster::url(self)
    }

    fn is_cluster(&self) -> bool {
        true
    }

    fn node_urls(&self) -> Vec<String> {
        RedisCluster::node_urls(self)
    }

    fn logs(&self) -> String {
        RedisCluster::logs(self)
    }
}

impl RedisServer for RedisDeployment {
    fn url(&self) -> String {
        self.server().url()
    }

    fn is_cluster(&self) -> bool {
        self.server().is_cluster()
    }

    fn node_urls(&self) -> Vec<String> {
        self.server().node_urls()
    }

    fn logs(&self) -> String {
        self.server().logs()
    }
}

impl RedisDeployment {
    fn server(&self) -> &dyn RedisServer {
        match self {
            RedisDeployment::Standalone(redis) => redis,
            RedisDeployment::Cluster(cluster) => cluster,
        }
    }
}

/// Two `#[tokio::test]`s per named `async fn(RedisKind)`: `<name>::standalone` and
/// `<name>::cluster`, so that a distributed test is written once and runs on both.
///
/// ```ignore
/// use harvester_testbed::support::{RedisDeployment, RedisKind, RedisServer};
///
/// async fn writes_are_read_back(kind: RedisKind) {
///     let redis = RedisDeployment::start(kind).await;
///     // ... connect to redis.url() with `cluster: redis.is_cluster()` ...
/// }
///
/// harvester_testbed::on_standalone_and_cluster!(writes_are_read_back);
/// ```
#[macro_export]
macro_rules! on_standalone_and_cluster {
    ($($test:ident),+ $(,)?) => {
        $(
            mod $test {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn standalone() {
                    super::$test($crate::support::RedisKind::Standalone).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn cluster() {
                    super::$test($crate::support::RedisKind::Cluster).await
                }
            }
        )+
    };
}
