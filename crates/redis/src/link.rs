//! The connection commands are sent on, whether Redis is one server or a cluster.

use std::fmt;

use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// A connection to Redis that commands, pipelines and scripts run on, the same way for a
/// standalone Redis and for a Redis Cluster: it implements
/// [`redis::aio::ConnectionLike`], so `query_async(&mut connection)`,
/// `Script::invoke_async(&mut connection)` and `pipe().query_async(&mut connection)` work
/// on either.
///
/// [`RedisConnection::run`](crate::RedisConnection::run) hands one to its closure, and
/// [`manager`](crate::RedisConnection::manager) and
/// [`dedicated`](crate::RedisConnection::dedicated) return one. Cheap to clone; clones
/// share the underlying connection.
///
/// On a cluster, each command goes to the master of its key's slot (a keyless one to any
/// node), and a pipeline or script must touch **one slot**: give the keys of one call a
/// common hash tag (`{...}`, see [`same_slot`](crate::same_slot)), or Redis answers
/// `CROSSSLOT`.
#[derive(Clone)]
pub struct Connection {
    link: Link,
}

#[derive(Clone)]
enum Link {
    /// The shared, reconnecting connection to a standalone Redis.
    Managed(ConnectionManager),
    /// A dedicated connection to a standalone Redis.
    Multiplexed(MultiplexedConnection),
    /// Connections to every master of a cluster, routed by slot.
    Cluster(ClusterConnection),
}

impl Connection {
    pub(crate) fn managed(manager: ConnectionManager) -> Connection {
        Connection { link: Link::Managed(manager) }
    }

    pub(crate) fn multiplexed(connection: MultiplexedConnection) -> Connection {
        Connection { link: Link::Multiplexed(connection) }
    }

    pub(crate) fn cluster(connection: ClusterConnection) -> Connection {
        Connection { link: Link::Cluster(connection) }
    }

    /// Whether this connection talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.link, Link::Cluster(_))
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.link {
            Link::Managed(connection) => connection.req_packed_command(cmd),
            Link::Multiplexed(connection) => connection.req_packed_command(cmd),
            Link::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.link {
            Link::Managed(connection) => connection.req_packed_commands(pipeline, offset, count),
            Link::Multiplexed(connection) => connection.req_packed_commands(pipeline, offset, count),
            Link::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.link {
            Link::Managed(connection) => connection.get_db(),
            Link::Multiplexed(connection) => connection.get_db(),
            Link::Cluster(connection) => connection.get_db(),
        }
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.link {
            Link::Managed(_) => "shared",
            Link::Multiplexed(_) => "dedicated",
            Link::Cluster(_) => "cluster",
        };
        f.debug_struct("Connection").field("kind", &kind).finish_non_exhaustive()
    }
}
