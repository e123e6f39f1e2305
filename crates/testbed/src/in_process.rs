//! The accept loop every in-process server runs: a free port of 127.0.0.1, one task per
//! connection, a count of accepted connections, and everything stopped on drop.

use std::collections::BTreeSet;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// A listener on a free port of 127.0.0.1 that hands each accepted connection to its own task.
/// Dropping it stops accepting and aborts every open connection. Must be started inside a
/// tokio runtime.
///
/// ```
/// use harvester_testbed::{InProcessServer, http1};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// // A server that answers every request `503`.
/// let server = InProcessServer::start(|mut stream| async move {
///     if http1::read_request(&mut stream).await.is_some() {
///         http1::answer_and_close(&mut stream, &http1::Response::text(503, "down")).await;
///     }
/// })
/// .await?;
/// assert!(server.addr().ip().is_loopback());
/// # Ok(())
/// # }
/// ```
#[must_use = "the server stops as soon as it is dropped"]
pub struct InProcessServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl InProcessServer {
    /// Binds a free port on 127.0.0.1 and runs `handle` on every connection it accepts.
    ///
    /// # Errors
    /// When no port of 127.0.0.1 can be bound (no loopback interface, out of ports or file
    /// descriptors).
    pub async fn start<F, Fut>(handle: F) -> io::Result<Self>
    where
        F: Fn(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::clone(&connections);
        let task = tokio::spawn(async move {
            // Dropping the set (when this task is aborted) aborts every open connection.
            let mut open = JoinSet::new();
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        accepted.fetch_add(1, Ordering::SeqCst);
                        while open.try_join_next().is_some() {}
                        open.spawn(handle(stream));
                    }
                    // Out of file descriptors and the like: try again shortly.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        });
        Ok(InProcessServer { addr, connections, task })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many connections it has accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for InProcessServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago, and that this process has not handed
/// out before (two concurrent tests never get the same port from it).
///
/// Another process, or a listener bound to port 0, may still take it before the caller binds
/// it, so a caller that starts a server on it should be ready to try again with a new port.
///
/// # Errors
/// When no port of 127.0.0.1 can be bound.
pub fn free_port() -> io::Result<u16> {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    // Enough tries to get past every port handed out so far: the kernel's choice is not
    // sequential, and a test run hands out a few hundred at most.
    for _ in 0..1_000 {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = listener.local_addr()?.port();
        if HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner).insert(port) {
            return Ok(port);
        }
    }
    Err(io::Error::new(io::ErrorKind::AddrInUse, "every free port of 127.0.0.1 was handed out before"))
}
