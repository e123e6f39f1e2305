//! Proxy state shared by every instance through Redis (feature `redis`): which proxies
//! exist, and which are ejected or banned.
//!
//! Without it, each instance of a collector learns alone: a proxy one instance has
//! ejected keeps failing for every other, and a site's ban is rediscovered by each.
//! Here, each instance runs one [`SharedState`], a background task beside its
//! [`ProxyPool`](crate::ProxyPool):
//!
//! - **Registry** ([`ProxyRegistry`]). An instance [`register`](SharedState::register)s
//!   its proxies; each becomes an entry with a TTL (`registry_ttl`), rewritten at every
//!   heartbeat while the instance lives, so the proxies of an instance that died leave
//!   by themselves. Entries are indexed by region, provider and [`QualityTier`] (the
//!   seed's sets, as sorted sets scored by expiry). Every `sync_interval`, each instance
//!   loads the registry into its pool: new proxies are added, changed ones updated, and
//!   those gone from the registry (for longer than `removal_grace`) removed. A proxy the
//!   application added itself is never touched.
//! - **Health.** Every ejection, ban (with its host) and early restoration the pool
//!   decides ([`ProxyPool::subscribe_health`](crate::ProxyPool::subscribe_health)) is
//!   written to a key that lives as long as the verdict and announced on a pub/sub
//!   channel. The other instances apply it to their pools
//!   ([`ProxyPool::apply_remote`](crate::ProxyPool::apply_remote)) as soon as they hear
//!   it, and read the running verdicts every `poll_interval` in case they did not (not
//!   subscribed at the time). A remote ejection counts against each pool's own cap on
//!   ejections and in its panic mode; a ban bars the proxy from that host only. A remote
//!   verdict is never announced again, and an instance ignores its own: no echo.
//!
//! Picks never wait on Redis: every Redis command runs in the background task, and the
//! pool decides from its local state, shared verdicts included. **When Redis is away**,
//! each instance goes on with its local health (and the proxies it has); its decisions
//! wait (up to `max_pending`) and are announced, with the time they have left, when
//! Redis answers again; the task retries with backoff (`retry_base_delay` to `retry_max_delay`) and
//! subscribes again by itself.
//!
//! **Secrets.** Registry entries hold each proxy's URL with its credentials: other
//! instances need them to connect. Redis then holds secrets: give the instances a Redis
//! user whose ACL allows only this namespace's keys (`~harvester:{proxies}:*`) and channel
//! (`&harvester:{proxies}:*`), and use `rediss://` (feature `redis-tls`) outside a trusted
//! network. Nothing here logs, prints or `Debug`s the credentials; anyone who can write
//! those keys can eject the proxies of every instance (a remote verdict lasts at most
//! the pool's own longest ejection or ban).
//!
//! Keys, under the connection's prefix and the namespace as a hash tag
//! (`harvester:{proxies}:` by default): `entry:<id>`, `index:all`,
//! `index:region:<region>`, `index:provider:<provider>`, `index:tier:<tier>`, and the
//! running verdicts, `verdicts` (a sorted set of verdict names, `eject:<id>` and
//! `ban:<id>:<host>`, scored by their end) with their JSON in the hash `verdicts:json`;
//! channel `health`. Every script takes its time from Redis and receives every key it
//! touches in `KEYS`, and the one hash tag puts all of a namespace's keys in one slot:
//! the shared state works on a Redis Cluster as on one server
//! ([`RedisConfig::cluster`](harvester_redis::RedisConfig::cluster)). (Until this layout,
//! the namespace was not a tag — `harvester:proxies:entry:<id>` — and each verdict had a
//! key of its own: instances of the two versions do not share state.)
//!
//! ```no_run
//! use std::sync::Arc;
//! use harvester_proxypool::shared::{SharedState, SharedStateConfig};
//! use harvester_proxypool::{Proxy, ProxyPool};
//! use harvester_redis::{RedisConfig, RedisConnection};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = ProxyPool::new([])?;
//! let mine = Arc::new(Proxy::parse("http://user:secret@10.0.0.1:3128")?);
//! pool.add((*mine).clone())?;
//!
//! let redis = RedisConnection::lazy(&RedisConfig { url: "redis://127.0.0.1:6379".into(), ..Default::default() })?;
//! let config = SharedStateConfig { instance: Some("crawler-1".into()), ..Default::default() };
//! let shared = SharedState::start(pool.clone(), redis, config)?;
//! shared.register([mine]).await?;
//! // ... acquire and report as usual: ejections and bans reach every instance, and the
//! // other instances' proxies arrive in `pool` ...
//! shared.shutdown().await?;
//! # Ok(())
//! # }
//! ```

mod backoff;
mod channel;
mod config;
mod entry;
mod episodes;
mod error;
mod keys;
mod mirror;
mod pending;
mod registry;
mod scripts;
mod state;
mod tier;
mod verdict;

pub use config::SharedStateConfig;
pub use entry::RegisteredProxy;
pub use error::SharedStateError;
pub use registry::{ProxyRegistry, RegistryIndex};
pub use state::{SharedState, SharedStatus};
pub use tier::QualityTier;
