//! What a proxy is: where it listens, how to authenticate, and what we know about it.
//!
//! A [`Proxy`] is parsed from a URL (`http`, `https`, `socks5`, `socks5h`, optional
//! `user:pass@`, IPv4, IPv6 or a host name) and carries [`ProxyMeta`]: id, region,
//! provider, kind, tags, cost per request, max concurrent sessions and weight.
//!
//! Credentials are a secret: [`Proxy`]'s `Debug`, `Display` and `Serialize` all show
//! `***` in their place, and so does every error this crate returns. The only way to
//! read them is [`Proxy::credentials`] or [`Proxy::url_with_credentials`], which the
//! code that opens the connection calls.
//!
//! ```
//! use harvester_proxypool::{Proxy, ProxyKind, ProxyMeta};
//!
//! let proxy = Proxy::parse("socks5h://alice:s3cret@10.0.0.7:1080")?;
//! assert_eq!(proxy.to_string(), "socks5h://***:***@10.0.0.7:1080");
//! assert_eq!(proxy.credentials().map(|c| c.password()), Some("s3cret"));
//!
//! let meta = ProxyMeta { region: Some("eu".into()), kind: Some(ProxyKind::Residential), ..ProxyMeta::default() };
//! let proxy = Proxy::with_meta("http://10.0.0.8:3128", meta)?;
//! assert_eq!(proxy.meta().region.as_deref(), Some("eu"));
//! # Ok::<(), harvester_proxypool::ProxyError>(())
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize, Serializer};

mod error;

pub use error::ProxyError;

/// The protocol spoken to the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Plain HTTP proxy (`CONNECT` for HTTPS targets).
    Http,
    /// HTTP proxy reached over TLS.
    Https,
    /// SOCKS5, target names resolved by the client.
    Socks5,
    /// SOCKS5, target names resolved by the proxy.
    Socks5h,
}

impl Scheme {
    /// The URL scheme string.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Socks5 => "socks5",
            Scheme::Socks5h => "socks5h",
        }
    }

    /// The port used when the URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
            Scheme::Socks5 | Scheme::Socks5h => 1080,
        }
    }
}

impl FromStr for Scheme {
    type Err = ProxyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "http" => Ok(Scheme::Http),
            "https" => Ok(Scheme::Https),
            "socks5" => Ok(Scheme::Socks5),
            "socks5h" => Ok(Scheme::Socks5h),
            _ => Err(ProxyError::UnsupportedScheme(s.to_owned())),
        }
    }
}

/// Where a proxy's exit IP lives, which prices and ban rates differ by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyKind {
    /// A consumer ISP address.
    Residential,
    /// A hosting provider's address.
    Datacenter,
    /// A mobile carrier's address.
    Mobile,
}

impl ProxyKind {
    /// Every kind, in a fixed order.
    pub const ALL: [ProxyKind; 3] = [ProxyKind::Residential, ProxyKind::Datacenter, ProxyKind::Mobile];

    /// The lower-case name used in proxy lists.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyKind::Residential => "residential",
            ProxyKind::Datacenter => "datacenter",
            ProxyKind::Mobile => "mobile",
        }
    }

    pub(crate) fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl FromStr for ProxyKind {
    type Err = ProxyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "residential" => Ok(ProxyKind::Residential),
            "datacenter" => Ok(ProxyKind::Datacenter),
            "mobile" => Ok(ProxyKind::Mobile),
            _ => Err(ProxyError::UnknownKind(s.to_owned())),
        }
    }
}

/// A proxy's identity within a pool. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProxyId(Arc<str>);

impl ProxyId {
    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for ProxyId {
    fn from(s: &str) -> Self {
        ProxyId(Arc::from(s))
    }
}

impl From<String> for ProxyId {
    fn from(s: String) -> Self {
        ProxyId(Arc::from(s))
    }
}

impl fmt::Debug for ProxyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for ProxyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::borrow::Borrow<str> for ProxyId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// A user name and password for the proxy. Neither is ever printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    username: String,
    password: String,
}

impl Credentials {
    /// Credentials from their parts.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials { username: username.into(), password: password.into() }
    }

    /// The user name, percent-decoded.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The password, percent-decoded.
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials(***)")
    }
}

/// What we know about a proxy besides its address. Every field is optional or defaulted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyMeta {
    /// A stable id; derived from host, port and user name when absent.
    pub id: Option<String>,
    /// Region or country code of the exit IP, e.g. `us` or `eu-west`.
    pub region: Option<String>,
    /// The provider selling the proxy.
    pub provider: Option<String>,
    /// Residential, datacenter or mobile.
    pub kind: Option<ProxyKind>,
    /// Free-form labels that requirements can demand.
    pub tags: BTreeSet<String>,
    /// What one request through this proxy costs, in the user's currency. Non-negative.
    pub cost_per_request: f64,
    /// How many requests may be in flight through this proxy at once; `None` is no limit.
    pub max_sessions: Option<u32>,
    /// Relative share for weighted balancers; at least 1.
    pub weight: u32,
}

impl Default for ProxyMeta {
    fn default() -> Self {
        ProxyMeta {
            id: None,
            region: None,
            provider: None,
            kind: None,
            tags: BTreeSet::new(),
            cost_per_request: 0.0,
            max_sessions: None,
            weight: 1,
        }
    }
}

impl ProxyMeta {
    /// Refuses values no proxy can have, naming the field.
    pub fn validate(&self) -> Result<(), ProxyError> {
        if !self.cost_per_request.is_finite() || self.cost_per_request < 0.0 {
            return Err(ProxyError::InvalidCost(self.cost_per_request));
        }
        if self.weight == 0 {
            return Err(ProxyError::InvalidWeight);
        }
        if self.max_sessions == Some(0) {
            return Err(ProxyError::InvalidMaxSessions);
        }
        if let Some(id) = &self.id
            && id.trim().is_empty()
        {
            return Err(ProxyError::EmptyField("id"));
        }
        for (name, value) in [("region", &self.region), ("provider", &self.provider)] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(ProxyError::EmptyField(name));
            }
        }
        if self.tags.iter().any(|t| t.trim().is_empty()) {
            return Err(ProxyError::EmptyField("tags"));
        }
        Ok(())
    }
}

/// One outbound proxy: its endpoint, its secret credentials and its metadata.
///
/// Immutable once built; the pool shares it behind an `Arc`.
#[derive(Clone, PartialEq)]
pub struct Proxy {
    id: ProxyId,
    scheme: Scheme,
    host: String,
    port: u16,
    credentials: Option<Credentials>,
    meta: ProxyMeta,
}

impl Proxy {
    /// The longest proxy URL accepted, in bytes, as written (credentials percent-encoded).
    /// The HTTP stack cannot carry a proxy URL past 64 KiB and would then send requests
    /// without the proxy; real proxy URLs, session parameters in the user name included,
    /// stay far below this.
    pub const MAX_URL_LEN: usize = 4096;

    /// The longest user name or password accepted, in bytes once decoded.
    pub const MAX_CREDENTIAL_LEN: usize = 1024;

    /// Parses a proxy URL with default metadata.
    pub fn parse(url: &str) -> Result<Proxy, ProxyError> {
        Proxy::with_meta(url, ProxyMeta::default())
    }

    /// Parses a proxy URL and attaches metadata, validating both.
    pub fn with_meta(url: &str, meta: ProxyMeta) -> Result<Proxy, ProxyError> {
        meta.validate()?;
        let endpoint = parse_endpoint(url)?;
        let id = match &meta.id {
            Some(id) => ProxyId::from(id.trim()),
            None => derived_id(&endpoint),
        };
        Ok(Proxy {
            id,
            scheme: endpoint.scheme,
            host: endpoint.host,
            port: endpoint.port,
            credentials: endpoint.credentials,
            meta,
        })
    }

    /// The proxy's id, unique within a pool.
    pub fn id(&self) -> &ProxyId {
        &self.id
    }

    /// The protocol spoken to the proxy.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Host name or IP address; IPv6 addresses without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The secret credentials, for the code that authenticates. Never log them.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// The metadata.
    pub fn meta(&self) -> &ProxyMeta {
        &self.meta
    }

    /// The full URL including credentials (percent-encoded), for building a client.
    /// This string is a secret: never log it.
    pub fn url_with_credentials(&self) -> String {
        let mut url = format!("{}://", self.scheme.as_str());
        if let Some(c) = &self.credentials {
            url.push_str(&percent_encode_userinfo(&c.username));
            url.push(':');
            url.push_str(&percent_encode_userinfo(&c.password));
            url.push('@');
        }
        self.push_host_port(&mut url);
        url
    }

    /// The URL without credentials: `scheme://host:port`.
    pub fn url_without_credentials(&self) -> String {
        let mut url = format!("{}://", self.scheme.as_str());
        self.push_host_port(&mut url);
        url
    }

    /// A proxy with these credentials, without the length checks of parsing: for testing
    /// that the client refuses what parsing would have.
    #[cfg(test)]
    pub(crate) fn with_unchecked_credentials(mut self, username: &str, password: &str) -> Proxy {
        self.credentials = Some(Credentials::new(username, password));
        self
    }

    fn push_host_port(&self, url: &mut String) {
        use std::fmt::Write;
        if self.host.contains(':') {
            let _ = write!(url, "[{}]:{}", self.host, self.port);
        } else {
            let _ = write!(url, "{}:{}", self.host, self.port);
        }
    }
}

impl FromStr for Proxy {
    type Err = ProxyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Proxy::parse(s)
    }
}

/// `scheme://***:***@host:port` when credentials exist, else the plain URL.
impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.scheme.as_str())?;
        f.write_str("://")?;
        if self.credentials.is_some() {
            f.write_str("***:***@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("id", &self.id)
            .field("url", &format_args!("{self}"))
            .field("meta", &self.meta)
            .finish()
    }
}

/// For reports: the redacted URL plus metadata; credentials never leave.
impl Serialize for Proxy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Proxy", 9)?;
        s.serialize_field("id", &self.id)?;
        s.serialize_field("url", &self.to_string())?;
        s.serialize_field("region", &self.meta.region)?;
        s.serialize_field("provider", &self.meta.provider)?;
        s.serialize_field("kind", &self.meta.kind)?;
        s.serialize_field("tags", &self.meta.tags)?;
        s.serialize_field("cost_per_request", &self.meta.cost_per_request)?;
        s.serialize_field("max_sessions", &self.meta.max_sessions)?;
        s.serialize_field("weight", &self.meta.weight)?;
        s.end()
    }
}

struct Endpoint {
    scheme: Scheme,
    host: String,
    port: u16,
    credentials: Option<Credentials>,
}

/// Parses by hand rather than through `url::Url` so that no error can echo the
/// userinfo, and so that ports above 65535 get their own message.
fn parse_endpoint(input: &str) -> Result<Endpoint, ProxyError> {
    let input = input.trim();
    if input.is_empty() {
        return Err(ProxyError::Empty);
    }
    if input.len() > Proxy::MAX_URL_LEN {
        return Err(ProxyError::UrlTooLong(Proxy::MAX_URL_LEN));
    }
    let (scheme, rest) = input.split_once("://").ok_or(ProxyError::MissingScheme)?;
    // With a misplaced scheme (`user:pass@http://…`) the "scheme" holds the password.
    let scheme: Scheme = scheme.parse().map_err(|_| ProxyError::UnsupportedScheme(quote(scheme)))?;
    // The userinfo ends at the last '@', so passwords may hold '/', '?' or '#' unencoded;
    // after it, the authority ends at the first '/', '?' or '#'.
    let (userinfo, after_userinfo) = match rest.rfind('@') {
        Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
        None => (None, rest),
    };
    let (hostport, tail) = match after_userinfo.find(['/', '?', '#']) {
        Some(i) => after_userinfo.split_at(i),
        None => (after_userinfo, ""),
    };
    if !tail.is_empty() && tail != "/" {
        return Err(ProxyError::UnexpectedPath);
    }
    let credentials = match userinfo {
        None => None,
        Some(info) => {
            let (user, pass) = info.split_once(':').unwrap_or((info, ""));
            if user.is_empty() {
                return Err(ProxyError::EmptyUsername);
            }
            let user = harvester_core::percent::decode(user).ok_or(ProxyError::BadCredentialsEncoding)?;
            let pass = harvester_core::percent::decode(pass).ok_or(ProxyError::BadCredentialsEncoding)?;
            if user.len() > Proxy::MAX_CREDENTIAL_LEN || pass.len() > Proxy::MAX_CREDENTIAL_LEN {
                return Err(ProxyError::CredentialsTooLong(Proxy::MAX_CREDENTIAL_LEN));
            }
            Some(Credentials::new(user, pass))
        }
    };
    let (host, port) = split_host_port(hostport)?;
    let port = match port {
        None => scheme.default_port(),
        Some(p) => parse_port(p)?,
    };
    Ok(Endpoint { scheme, host, port, credentials })
}

/// Echoes a token of user input in an error only when it looks like a plain word (a
/// scheme, a kind, a key) and is short: anything else may be part of a password, and
/// shows as `***`.
pub(crate) fn quote(token: &str) -> String {
    const MAX: usize = 32;
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+')) {
        "***".to_owned()
    } else if token.len() > MAX {
        format!("{}…", &token[..MAX])
    } else {
        token.to_owned()
    }
}

/// Host and port errors never echo the value: in a URL whose `@` is missing
/// (`http://user:secret`), the "host" is the user name and the "port" the password.
fn split_host_port(hostport: &str) -> Result<(String, Option<&str>), ProxyError> {
    if hostport.is_empty() {
        return Err(ProxyError::MissingHost);
    }
    if let Some(rest) = hostport.strip_prefix('[') {
        let (ip, after) = rest.split_once(']').ok_or(ProxyError::InvalidHost("unclosed '[' in an IPv6 address"))?;
        let addr: std::net::Ipv6Addr =
            ip.parse().map_err(|_| ProxyError::InvalidHost("the address in brackets is not IPv6"))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or(ProxyError::InvalidHost("junk after the IPv6 address"))?),
        };
        return Ok((addr.to_string(), port));
    }
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (hostport, None),
    };
    if host.is_empty() {
        return Err(ProxyError::MissingHost);
    }
    if host.contains(':') {
        return Err(ProxyError::InvalidHost("an IPv6 address must be in brackets"));
    }
    let valid = host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    if !valid || host.len() > 253 {
        return Err(ProxyError::InvalidHost("not a host name or IP address"));
    }
    Ok((host.to_ascii_lowercase(), port))
}

/// A port out of range is named only when it has at most five digits (a mistyped port,
/// like 99999); a longer number is more likely a numeric password before a missing `@`.
fn parse_port(port: &str) -> Result<u16, ProxyError> {
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ProxyError::InvalidPort);
    }
    match port.parse::<u64>() {
        Ok(0) => Err(ProxyError::PortOutOfRange(Some(0))),
        Ok(p) => u16::try_from(p).map_err(|_| ProxyError::PortOutOfRange((port.len() <= 5).then_some(p))),
        Err(_) => Err(ProxyError::PortOutOfRange(None)),
    }
}

fn percent_encode_userinfo(s: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `host:port`, plus a hash of the user name when there are credentials: residential
/// gateways serve many "proxies" on one host and port, told apart only by the user name
/// (which often carries the account name, so it is hashed rather than shown). The
/// password never enters the id: ids are printed in outputs, reports and metrics, and a
/// hash of a password can be searched for the password. Stable across processes, so ids
/// survive restarts; set `id=` in the list to name a proxy yourself.
fn derived_id(endpoint: &Endpoint) -> ProxyId {
    let host = if endpoint.host.contains(':') { format!("[{}]", endpoint.host) } else { endpoint.host.clone() };
    match &endpoint.credentials {
        None => ProxyId::from(format!("{host}:{}", endpoint.port)),
        Some(c) => {
            let hash = crate::hash::fnv1a64(c.username.as_bytes());
            ProxyId::from(format!("{host}:{}#{hash:016x}", endpoint.port))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_scheme_and_host_form() {
        let cases = [
            ("http://1.2.3.4:8080", Scheme::Http, "1.2.3.4", 8080),
            ("https://proxy.example.com", Scheme::Https, "proxy.example.com", 443),
            ("socks5://[::1]:1080", Scheme::Socks5, "::1", 1080),
            ("SOCKS5H://Gate.Example.COM:7000/", Scheme::Socks5h, "gate.example.com", 7000),
        ];
        for (url, scheme, host, port) in cases {
            let p = Proxy::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!((p.scheme(), p.host(), p.port()), (scheme, host, port), "{url}");
        }
    }

    #[test]
    fn credentials_are_decoded_and_reencoded() {
        let p = Proxy::parse("http://us%40r:p%3Ass@h:1").expect("valid");
        let c = p.credentials().expect("has credentials");
        assert_eq!((c.username(), c.password()), ("us@r", "p:ss"));
        assert_eq!(p.url_with_credentials(), "http://us%40r:p%3Ass@h:1");
        assert_eq!(p.url_without_credentials(), "http://h:1");
    }

    #[test]
    fn bad_urls_name_what_is_wrong() {
        assert!(matches!(Proxy::parse("ftp://h:1"), Err(ProxyError::UnsupportedScheme(s)) if s == "ftp"));
        assert!(matches!(Proxy::parse("h:1"), Err(ProxyError::MissingScheme)));
        assert!(matches!(Proxy::parse("http://h:99999"), Err(ProxyError::PortOutOfRange(Some(99999)))));
        assert!(matches!(Proxy::parse("http://h:0"), Err(ProxyError::PortOutOfRange(Some(0)))));
        assert!(matches!(Proxy::parse("http://h:123456"), Err(ProxyError::PortOutOfRange(None))));
        assert!(matches!(Proxy::parse("http://h:abc"), Err(ProxyError::InvalidPort)));
        assert!(matches!(Proxy::parse("http://:1"), Err(ProxyError::MissingHost)));
        assert!(matches!(Proxy::parse("http://::1:80"), Err(ProxyError::InvalidHost(_))));
        assert!(matches!(Proxy::parse("http://h:1/path"), Err(ProxyError::UnexpectedPath)));
        assert!(matches!(Proxy::parse("http://:pw@h:1"), Err(ProxyError::EmptyUsername)));
    }

    #[test]
    fn passwords_may_hold_url_delimiters_unencoded() {
        let p = Proxy::parse("http://u:pa#ss/w?rd@h:1").expect("the last '@' ends the userinfo");
        assert_eq!((p.credentials().map(|c| c.password()), p.host()), (Some("pa#ss/w?rd"), "h"));
    }

    #[test]
    fn errors_never_echo_what_may_be_a_password() {
        for (url, secret) in [
            ("user:Pa55word@http://h:1", "Pa55word"),
            ("http://user:Pa55word", "Pa55word"),
            ("http://user:98765432", "98765432"),
            ("http://us3r!name:1", "us3r"),
            ("http://[us3r-name]:1", "us3r-name"),
        ] {
            let err = Proxy::parse(url).map(|_| ()).expect_err("invalid");
            assert!(!format!("{err} {err:?}").contains(secret), "{url} leaked into {err}");
        }
    }

    #[test]
    fn ids_are_derived_without_credentials() {
        let a = Proxy::parse("http://alice:pw@gate:7000").expect("valid");
        let b = Proxy::parse("http://bob:pw@gate:7000").expect("valid");
        assert_ne!(a.id(), b.id(), "same gateway, different users are different proxies");
        assert!(!a.id().as_str().contains("alice"));
        let other_password = Proxy::parse("http://alice:another@gate:7000").expect("valid");
        assert_eq!(a.id(), other_password.id(), "the password has no part in the id: nothing to search it from");
        assert_eq!(Proxy::parse("http://[::1]:80").expect("valid").id().as_str(), "[::1]:80");
    }

    #[test]
    fn over_long_urls_and_credentials_are_refused_before_any_client_sees_them() {
        let password = "p".repeat(70_000);
        let err = Proxy::parse(&format!("http://user:{password}@gate:7000")).expect_err("far too long");
        assert_eq!(err, ProxyError::UrlTooLong(Proxy::MAX_URL_LEN));
        assert!(!err.to_string().contains("pppp"));
        let long = "p".repeat(Proxy::MAX_CREDENTIAL_LEN + 1);
        let err = Proxy::parse(&format!("http://user:{long}@gate:7000")).expect_err("too long");
        assert_eq!(err, ProxyError::CredentialsTooLong(Proxy::MAX_CREDENTIAL_LEN));
        // Encoded it fits the URL limit, decoded it is too long: the decoded length counts.
        let encoded = "%41".repeat(Proxy::MAX_CREDENTIAL_LEN / 2 + 1);
        assert!(Proxy::parse(&format!("http://{encoded}:{encoded}@gate:7000")).is_ok(), "513 bytes each");
        let at_limit = "p".repeat(Proxy::MAX_CREDENTIAL_LEN);
        let proxy = Proxy::parse(&format!("socks5h://{at_limit}:{at_limit}@gate:7000")).expect("at the limit");
        assert!(proxy.url_with_credentials().len() <= Proxy::MAX_URL_LEN);
    }

    #[test]
    fn meta_is_validated() {
        let bad = |meta: ProxyMeta| Proxy::with_meta("http://h:1", meta).expect_err("must be refused");
        assert!(matches!(bad(ProxyMeta { cost_per_request: -1.0, ..Default::default() }), ProxyError::InvalidCost(_)));
        assert!(matches!(bad(ProxyMeta { weight: 0, ..Default::default() }), ProxyError::InvalidWeight));
        assert!(matches!(
            bad(ProxyMeta { max_sessions: Some(0), ..Default::default() }),
            ProxyError::InvalidMaxSessions
        ));
        assert!(matches!(
            bad(ProxyMeta { region: Some(" ".into()), ..Default::default() }),
            ProxyError::EmptyField("region")
        ));
    }
}
