//! Health decisions as events: what a pool decided from its own reports and probes, for
//! others to learn from, and the verdicts of others that it may apply.
//!
//! [`ProxyPool::subscribe_health`](crate::ProxyPool::subscribe_health) streams every
//! ejection, ban and early restoration this pool decides;
//! [`ProxyPool::apply_remote`](crate::ProxyPool::apply_remote) applies one decided
//! elsewhere (by another instance sharing the same proxies). Verdicts applied that way
//! are never streamed, so a sync that publishes what it hears and applies what others
//! publish cannot echo.
//!
//! ```
//! use std::time::Duration;
//! use harvester_proxypool::health::{HealthEvent, HealthEventKind, RemoteEffect};
//! use harvester_proxypool::{Outcome, Proxy, ProxyPool, RequestContext, Requirements};
//!
//! let here = ProxyPool::new([Proxy::parse("http://10.0.0.1:3128")?])?;
//! let there = ProxyPool::new([Proxy::parse("http://10.0.0.1:3128")?])?;
//! let mut decisions = here.subscribe_health();
//!
//! let lease = here.acquire(&Requirements::ANY, &RequestContext::new().target_host("shop.example"))?;
//! lease.report(Outcome::ban(Duration::from_millis(90), Some(Duration::from_secs(60))));
//!
//! let event = decisions.try_recv()?;
//! assert!(matches!(&event.kind, HealthEventKind::Banned { host: Some(h), .. } if &**h == "shop.example"));
//! assert_eq!(there.apply_remote(&event), RemoteEffect::Applied);
//! assert!(there.acquire(&Requirements::ANY, &RequestContext::new().target_host("shop.example")).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::Arc;
use std::time::Duration;

use crate::proxy::ProxyId;

/// One health decision about one proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthEvent {
    /// The proxy it is about.
    pub proxy: ProxyId,
    /// What was decided.
    pub kind: HealthEventKind,
}

/// What was decided about a proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HealthEventKind {
    /// Out of rotation for every host, for `duration` from now (outlier ejection).
    Ejected {
        /// How long the ejection lasts from the moment of the event.
        duration: Duration,
    },
    /// Barred from one target host (`None`: from every host) for `duration` from now.
    Banned {
        /// The host that banned the proxy; `None` for a ban reported without a host.
        host: Option<Arc<str>>,
        /// How long the ban lasts from the moment of the event.
        duration: Duration,
    },
    /// Back in rotation before its ejection ran out (a successful active probe).
    Restored,
}

/// What [`ProxyPool::apply_remote`](crate::ProxyPool::apply_remote) did with a verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RemoteEffect {
    /// The pool now honours it.
    Applied,
    /// Nothing to do: as long an ejection or ban already runs, or (restoration) the proxy
    /// was not ejected, or the duration was zero.
    Unchanged,
    /// The pool holds no proxy with that id (it may arrive later: apply it again then).
    UnknownProxy,
    /// Refused: the pool's cap on the share of proxies ejected at once is reached.
    /// Remote ejections count against the cap like local ones.
    CapReached,
    /// Refused: outlier ejection is turned off in this pool's configuration.
    EjectionDisabled,
}
