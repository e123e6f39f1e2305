//! The errors of this crate. None of them ever carries a proxy's credentials.

use std::time::Duration;

use thiserror::Error;

use crate::proxy::ProxyId;

/// A proxy URL or its metadata is not acceptable.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The input was blank.
    #[error("empty proxy URL")]
    Empty,
    /// No `scheme://` prefix.
    #[error("missing scheme: expected http://, https://, socks5:// or socks5h://")]
    MissingScheme,
    /// A scheme other than the four supported.
    #[error("unsupported scheme '{0}': expected http, https, socks5 or socks5h")]
    UnsupportedScheme(String),
    /// No host between `://` (or `@`) and the port.
    #[error("missing host")]
    MissingHost,
    /// The host is neither an IP address nor a valid host name (the value is not shown:
    /// in a URL missing its `@`, it would be the user name).
    #[error("invalid host: {0}")]
    InvalidHost(&'static str),
    /// The port is not a number (the value is not shown: in a URL missing its `@`, it
    /// would be the password).
    #[error("invalid port: expected a number from 1 to 65535")]
    InvalidPort,
    /// The port is 0 or above 65535. The number is kept only when it has at most five
    /// digits: a longer one may be a numeric password before a missing `@`.
    #[error("port {} out of range 1..=65535", .0.map_or_else(|| "***".to_owned(), |p| p.to_string()))]
    PortOutOfRange(Option<u64>),
    /// The URL has a path, query or fragment, which a proxy URL cannot use.
    #[error("a proxy URL has no path, query or fragment")]
    UnexpectedPath,
    /// `:password@` without a user name.
    #[error("credentials have an empty user name")]
    EmptyUsername,
    /// Bad percent-encoding in the user name or password (which are not shown).
    #[error("credentials are not valid percent-encoded UTF-8")]
    BadCredentialsEncoding,
    /// The user name or the password is longer than
    /// [`Proxy::MAX_CREDENTIAL_LEN`](crate::Proxy::MAX_CREDENTIAL_LEN) bytes (decoded).
    #[error("the user name or password is longer than {0} bytes")]
    CredentialsTooLong(usize),
    /// The URL is longer than [`Proxy::MAX_URL_LEN`](crate::Proxy::MAX_URL_LEN) bytes.
    #[error("the proxy URL is longer than {0} bytes")]
    UrlTooLong(usize),
    /// A kind other than residential, datacenter or mobile.
    #[error("unknown kind '{0}': expected residential, datacenter or mobile")]
    UnknownKind(String),
    /// Cost is negative or not a finite number.
    #[error("cost_per_request {0} must be a finite number >= 0")]
    InvalidCost(f64),
    /// Weight 0 would make the proxy unreachable for weighted balancers.
    #[error("weight must be at least 1")]
    InvalidWeight,
    /// `max_sessions = 0` would make the proxy unusable.
    #[error("max_sessions must be at least 1 (leave it out for no limit)")]
    InvalidMaxSessions,
    /// A text field that must not be blank is blank.
    #[error("{0} must not be blank")]
    EmptyField(&'static str),
}

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

/// A configuration value is out of its valid range; `field` names it.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("invalid config {field}: {reason}")]
pub struct ConfigError {
    /// Dotted path of the field, e.g. `ejection.max_ejected_fraction`.
    pub field: &'static str,
    /// What is wrong and what is allowed.
    pub reason: String,
}

impl ConfigError {
    pub(crate) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        ConfigError { field, reason: reason.into() }
    }
}
