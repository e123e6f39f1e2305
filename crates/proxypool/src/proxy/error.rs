//! Why a proxy URL or its metadata was refused. Never carries the credentials.

use thiserror::Error;

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
