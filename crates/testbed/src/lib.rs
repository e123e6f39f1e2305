//! # harvester-testbed
//!
//! Loopback servers for demos and tests: a target site and good or faulty HTTP proxies.
//!
//! A collector is only as good as its behaviour when proxies die, hang, crawl or get banned,
//! and that is hard to show against the real internet. This crate puts the whole scene inside
//! the process: a site to collect from and a fleet of proxies that fail the way real ones do,
//! each on a free port of 127.0.0.1, each stopped when dropped. Nothing here contacts an
//! address outside 127.0.0.0/8.
//!
//! - [`TargetServer`]: the site, with status, slow, rate-limit and captcha pages and a product
//!   catalogue (`/product/N`, `/catalogue?n=K`) whose content [`Product`] predicts, its pages
//!   in the markups real shops use in turn ([`Markup`]: classes, JSON-LD, microdata,
//!   OpenGraph).
//! - [`TlsTargetServer`] (feature `tls`): the same pages over HTTPS with a fresh self-signed
//!   certificate.
//! - [`FaultProxy`]: HTTP proxies that work ([`FaultProxy::slow`] with no delay), or are dead,
//!   hanging, slow, banning (403, 429, captcha) or flapping.
//! - [`KeepAliveSite`] and [`KeepAliveProxy`]: a site and a forwarding proxy that keep
//!   connections open between requests, to measure a client's own cost per request.
//! - [`InProcessServer`], [`http1`], [`forward()`] and [`serve_pages`]: the parts they are
//!   built from, for a server of your own.
//!
//! Every server runs as tasks of the caller's tokio runtime, so it must be started inside one;
//! a paused test clock (`tokio::time::pause`) also governs its delays.
//!
//! ```
//! use harvester_testbed::{FaultProxy, Product, TargetServer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let target = TargetServer::start().await?;
//! let good = FaultProxy::slow(std::time::Duration::ZERO).await?;
//! let banned = FaultProxy::banning_403().await?;
//! // Collect `{target}/product/7` through `good` and `banned`; the page shows this price:
//! let expected = Product::get(7).map(|product| product.price);
//! assert!(expected.is_some());
//! # let _ = (target.url(), good.url(), banned.url());
//! # Ok(())
//! # }
//! ```
//!
//! ## Feature flags
//!
//! - `tls`: [`TlsTargetServer`], with rustls on the ring provider and rcgen.
//! - `sim`: [`sim`], the proxy-selection simulator: a real `ProxyPool` driven in virtual
//!   time through a seeded world of proxies and sites, with an oracle to compare against.
//! - `support`: [`support`], what test trees share: server processes on loopback (tinyproxy,
//!   danted, redis-server), raw HTTP and SOCKS5 clients, and [`support::eventually`].

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// The map above links `TlsTargetServer` and `sim`, which exist only with their features.
#![cfg_attr(not(all(feature = "tls", feature = "sim", feature = "support")), allow(rustdoc::broken_intra_doc_links))]

mod catalogue;
mod fault_proxy;
mod forward;
pub mod http1;
mod in_process;
mod keep_alive;
mod pages;
#[cfg(feature = "sim")]
#[cfg_attr(docsrs, doc(cfg(feature = "sim")))]
pub mod sim;
#[cfg(feature = "support")]
#[cfg_attr(docsrs, doc(cfg(feature = "support")))]
pub mod support;
mod target;
#[cfg(feature = "tls")]
mod tls_target;

pub use catalogue::{Markup, Product};
pub use fault_proxy::FaultProxy;
pub use forward::forward;
pub use in_process::{InProcessServer, free_port};
pub use keep_alive::{KeepAliveProxy, KeepAliveSite};
pub use pages::{CAPTCHA_MARKER, CAPTCHA_PAGE, PageStats, SOFT_404_PAGE, serve_pages};
pub use target::TargetServer;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use tls_target::TlsTargetServer;
