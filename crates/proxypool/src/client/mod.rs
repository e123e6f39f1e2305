//! The pool over the wire: [`ProxyClient`], a tower `Service` that sends each request
//! through a leased proxy and teaches the pool from the answer.
//!
//! Per request the client picks [`Requirements`](crate::Requirements) (from the request's extensions, else
//! from the [`HostPolicy`] for its host), leases a proxy for the target host, sends the
//! request through a reqwest client built for that proxy (HTTP, HTTPS through CONNECT,
//! SOCKS5 and SOCKS5h, with proxy authentication), reads the body up to a cap, asks the
//! [`Classifier`] what the answer means, reports that on the lease, and returns the
//! response with the id of the proxy that served it.
//!
//! ```no_run
//! use bytes::Bytes;
//! use harvester_proxypool::client::ProxyClient;
//! use harvester_proxypool::{Proxy, ProxyPool};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = ProxyPool::new([Proxy::parse("socks5h://user:secret@127.0.0.1:1080")?])?;
//! let client = ProxyClient::builder(pool).build()?;
//! let request = http::Request::get("http://127.0.0.1:8080/").body(Bytes::new())?;
//! let response = client.send(request).await?;
//! println!("{} via {}", response.status(), response.proxy());
//! # Ok(())
//! # }
//! ```
//!
//! TLS is rustls with the ring provider; the client installs ring as the process's
//! default rustls provider when none is installed yet.
//!
//! The module is split as tower splits a service: [`ProxyClientBuilder`] and the
//! serde-ready [`ClientConfig`] (with `validate`); the service itself ([`ProxyClient`]);
//! one exchange with a proxy; the [`Classifier`] that turns an answer into a
//! [`Verdict`]; the [`ProxiedResponse`]; and tail control ([`Hedging`],
//! [`AdaptiveTimeout`]), per-host routing ([`HostPolicy`]) and the per-proxy client cache.

mod builder;
mod cache;
mod classify;
mod config;
mod error;
mod exchange;
mod policy;
mod response;
mod service;
mod tail;
mod tried;

pub use builder::ProxyClientBuilder;
pub use classify::{Classifier, DefaultClassifier, FailureKind, Verdict};
pub use config::ClientConfig;
pub use error::ClientError;
pub use policy::{HostPolicy, HostRule, Priority, Route};
pub use response::ProxiedResponse;
pub use service::ProxyClient;
pub use tail::{AdaptiveTimeout, Hedging};
pub use tried::TriedProxies;
