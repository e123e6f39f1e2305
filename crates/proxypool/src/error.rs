//! The pool's errors and the config error every setting check returns. None of them ever
//! carries a proxy's credentials (a proxy's own parse error is [`ProxyError`](crate::ProxyError)).

use std::time::Duration;

use thiserror::Error;

use crate::proxy::ProxyId;

/// Why `acquire` gave no lease, or why a pool change was refused.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The pool has no proxies at all.
    #[error("the proxy pool is empty")]
    Empty,
    /// The requirements filtered every proxy out; `filter` names the one that emptied the set.
    #[error("no proxy matches the requirements: {filter} left none of {pool_size} proxies")]
    NoMatch {
        /// The first filter, in evaluation order, after which no proxy was left.
        filter: String,
        /// Proxies in the pool.
        pool_size: usize,
    },
    /// Every matching proxy is at its `max_sessions`.
    #[error("all {matching} matching proxies are at their max sessions")]
    AllBusy {
        /// Proxies that matched the requirements.
        matching: usize,
    },
    /// Every matching proxy is ejected as an outlier.
    #[error("all {matching} matching proxies are ejected; the first returns in {retry_in:?}")]
    AllEjected {
        /// Proxies that matched the requirements.
        matching: usize,
        /// When the first of them comes back.
        retry_in: Duration,
    },
    /// Every matching proxy is banned by the target host.
    #[error("all {matching} matching proxies are banned by {host}; the first ban ends in {retry_in:?}")]
    AllBanned {
        /// The target host that banned them.
        host: String,
        /// Proxies that matched the requirements.
        matching: usize,
        /// When the first ban ends.
        retry_in: Duration,
    },
    /// Matching proxies exist but each is busy, ejected or banned.
    #[error(
        "none of {matching} matching proxies is available: {busy} at max sessions, {ejected} ejected, {banned} banned by the target"
    )]
    NoneAvailable {
        /// Proxies that matched the requirements.
        matching: usize,
        /// Of those, at max sessions.
        busy: usize,
        /// Of those, ejected.
        ejected: usize,
        /// Of those, banned by the target host.
        banned: usize,
    },
    /// The balancer declined to pick among available proxies.
    #[error("the {balancer} balancer picked no proxy although {available} were available")]
    BalancerDeclined {
        /// The balancer's name.
        balancer: &'static str,
        /// Available candidates it was offered.
        available: usize,
    },
    /// `add` was given an id the pool already has.
    #[error("duplicate proxy id '{0}'")]
    DuplicateId(ProxyId),
    /// `update` or `remove` named an id the pool does not have.
    #[error("no proxy with id '{0}' in the pool")]
    UnknownId(ProxyId),
}

pub use harvester_core::ConfigError;
