//! The accept loop every in-process server runs: a free port of 127.0.0.1, one task per
//! connection, a count of accepted connections, and everything stopped on drop.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// A listener on a free port of 127.0.0.1 that hands each accepted connection to its own task.
/// Dropping it stops accepting and aborts every open connection. Must be started inside a
/// tokio runtime.
pub struct InProcessServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl InProcessServer {
    /// Binds a free port on 127.0.0.1 and runs `handle` on every connection it accepts.
    pub async fn start<F, Fut>(handle: F) -> Self
    where
        F: Fn(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address of a bound listener");
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
        InProcessServer { addr, connections, task }
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
