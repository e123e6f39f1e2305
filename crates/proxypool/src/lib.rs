//! # harvester-proxypool
//!
//! Which proxy a request goes through. A [`ProxyPool`] holds HTTP, HTTPS and SOCKS5
//! proxies, hands out [`Lease`]s through a pluggable [`Balancer`], and learns from every
//! [`Outcome`] reported on a lease: whether each proxy answers, how each site treats it
//! and proxies of its kind, latency, and bans per target host. The default balancer,
//! [`ExpectedSuccess`](balance::ExpectedSuccess), sends each request through the proxy
//! most likely to succeed at its host (see [`balance`], and [`config::EvidenceConfig`] for
//! what the pool learns). Proxies that keep failing are ejected for a growing time; a
//! proxy banned by one site stays available for every other site.
//!
//! ```
//! use std::time::Duration;
//! use harvester_proxypool::{Outcome, Proxy, ProxyPool, RequestContext, Requirements};
//!
//! let pool = ProxyPool::builder().build()?;
//! pool.add(Proxy::parse("http://10.0.0.1:3128")?)?;
//! pool.add(Proxy::parse("socks5h://user:secret@10.0.0.2:1080")?)?;
//!
//! let lease = pool.acquire(&Requirements::ANY, &RequestContext::new().target_host("shop.example"))?;
//! // ... send the request through lease.proxy() ...
//! lease.report(Outcome::success(Duration::from_millis(180)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The pick path takes no lock for round robin and P2C: the pool's proxies live in an
//! immutable snapshot that writers replace atomically, each proxy's live state is a set of
//! atomics, and requirements on region, kind, provider and tags are served from indexes
//! precomputed in the snapshot. The exceptions: a proxy that some site is banning now has
//! its per-site table read under a read lock; the default balancer reads each candidate's
//! evidence at the target site under that read lock; the smooth weighted round robin
//! balancer updates every candidate's score together under a mutex; and the moment an
//! ejection has ended, the pool's ejection count is corrected once under a mutex.
//!
//! What a round-robin or P2C pick reads of a proxy (in flight, ejected, ban hint, peak
//! latency, answer share) is one 64-byte line in a dense table of such lines, reached from
//! a 24-byte entry per snapshot slot; the members leases hold are allocated side by side.
//! Round robin gives each thread a cursor of its own, so no pick writes a line another
//! thread's picks write, beyond the in-flight count of a proxy both happen to take.
//!
//! ## Layers
//!
//! Each module imports only from the modules listed before it (its own submodules
//! aside); the workspace's `tests/layering.rs` reads this list and checks every import against it.
//!
//! 1. leaves: `clock`, `hash`, `random`, [`proxy`] (with its error), `error`, [`config`],
//!    [`requirements`] (what may serve, and the request it is for), [`list`];
//! 2. [`health`]: outcomes, each proxy's live state, and the context that records an
//!    outcome, announces and logs it;
//! 3. `snapshot`: the slots picks read, the filters, and the one availability rule that
//!    picking and explaining an empty pick share;
//! 4. [`stats`], [`balance`] (balancers see [`Candidates`](balance::Candidates) over the
//!    snapshot and the health context), [`lease`];
//! 5. [`pool`];
//! 6. [`client`] (builder and config, service, exchange, classification, response), then
//!    [`health_check`], which probes through it;
//! 7. `shared`, with the `redis` feature (proxy state shared by every instance).

//! ## Feature flags
//!
//! - `redis`: `shared`, a registry of proxies in Redis (with TTL and indexes by region,
//!   provider and quality tier) and ejections and bans seen by every instance, on
//!   `harvester-redis`.
//! - `redis-tls`: `rediss://` URLs for it, over rustls with the ring provider.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod balance;
pub mod client;
mod clock;
pub mod config;
mod error;
mod hash;
pub mod health;
pub mod health_check;
pub mod lease;
pub mod list;
pub mod pool;
pub mod proxy;
mod random;
pub mod requirements;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod shared;
mod snapshot;
pub mod stats;

pub use balance::Balancer;
pub use client::{ClientError, ProxiedResponse, ProxyClient, ProxyClientBuilder};
pub use config::{BanConfig, EjectionConfig, EvidenceConfig, HealthConfig, PoolConfig};
pub use error::{ConfigError, PoolError};
pub use health::{HealthEvent, HealthEventKind, LatencyQuantiles, Outcome, OutcomeKind, RemoteEffect};
pub use lease::Lease;
pub use list::{ListError, ListFormat, Loaded, Location, ProxyList, RejectReason, Rejected};
pub use pool::{BatchReport, ProxyPool, ProxyPoolBuilder};
pub use proxy::{Credentials, Proxy, ProxyError, ProxyId, ProxyKind, ProxyMeta, Scheme};
pub use requirements::{RequestContext, Requirements};
pub use stats::{HostBan, PoolStats, ProxyStats, SiteSpend};
