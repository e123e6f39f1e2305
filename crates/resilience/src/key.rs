//! How a keyed layer finds the key of a request: one [`KeyExtractor`] trait for the keyed
//! [`breaker`](crate::breaker), the keyed [`rate_limit`](crate::rate_limit) and the
//! distributed limiter.
//!
//! A request without a key (`None`) passes: unguarded by a keyed breaker, unlimited by a
//! keyed rate limiter. To limit keyless requests together instead, give them one key: the
//! rate limiters' host extractor ([`TargetHost::or_empty`]) returns `Some("")` for them.
//!
//! ```
//! use harvester_resilience::KeyExtractor;
//! use harvester_resilience::key::TargetHost;
//!
//! let request = http::Request::get("http://Shop.Example:8080/a").body(()).unwrap();
//! assert_eq!(TargetHost::new().extract(&request).unwrap().as_str(), "shop.example");
//! let by_path = |request: &http::Request<()>| request.uri().path().split('/').nth(1).map(str::to_owned);
//! assert_eq!(by_path.extract(&request).as_deref(), Some("a"));
//! ```

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

/// Finds the key of a request. Closures `Fn(&Req) -> Option<K>` are extractors.
///
/// A request without a key (`None`) passes unguarded and unlimited.
pub trait KeyExtractor<Req> {
    /// The key.
    type Key;
    /// The key of `request`, if it has one.
    fn extract(&self, request: &Req) -> Option<Self::Key>;
}

impl<F, Req, K> KeyExtractor<Req> for F
where
    F: Fn(&Req) -> Option<K>,
{
    type Key = K;

    #[inline]
    fn extract(&self, request: &Req) -> Option<K> {
        self(request)
    }
}

/// Keys an `http::Request` by its target host as [`harvester_core::host::of_request`] names
/// it (the URI's host, else the `Host` header's; lower-case, no port, IPv6 without
/// brackets).
///
/// A request with neither has no key ([`new`](Self::new), what the keyed breaker uses), or
/// the empty key shared by every such request ([`or_empty`](Self::or_empty), what the
/// per-host rate limiters use, so that keyless requests are limited together).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetHost {
    keyless_share_empty: bool,
}

impl TargetHost {
    /// Requests without a host have no key.
    pub const fn new() -> Self {
        TargetHost { keyless_share_empty: false }
    }

    /// Requests without a host share the empty key.
    pub const fn or_empty() -> Self {
        TargetHost { keyless_share_empty: true }
    }
}

impl<B> KeyExtractor<http::Request<B>> for TargetHost {
    type Key = HostKey;

    #[inline]
    fn extract(&self, request: &http::Request<B>) -> Option<HostKey> {
        let host = harvester_core::host::of_request(request);
        if host.is_none() && !self.keyless_share_empty {
            return None;
        }
        Some(HostKey::new(host.as_deref().unwrap_or("")))
    }
}

/// Keys an `http::Request` by a value of type `T` in its extensions (e.g. the proxy chosen for
/// it). Requests without one have no key.
pub struct ExtensionKey<T>(PhantomData<fn() -> T>);

impl<T> ExtensionKey<T> {
    /// The extractor.
    pub const fn new() -> Self {
        ExtensionKey(PhantomData)
    }
}

impl<T> Default for ExtensionKey<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for ExtensionKey<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for ExtensionKey<T> {}

impl<T> fmt::Debug for ExtensionKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExtensionKey<{}>", std::any::type_name::<T>())
    }
}

impl<B, T: Clone + Send + Sync + 'static> KeyExtractor<http::Request<B>> for ExtensionKey<T> {
    type Key = T;

    fn extract(&self, request: &http::Request<B>) -> Option<T> {
        request.extensions().get::<T>().cloned()
    }
}

const INLINE_HOST: usize = 62;

/// A host name as a rate-limit key: ASCII-lowercased, stored inline (no allocation) up to
/// 62 bytes, which covers nearly every real host name.
#[derive(Clone)]
pub struct HostKey(HostRepr);

#[derive(Clone)]
enum HostRepr {
    Inline { len: u8, bytes: [u8; INLINE_HOST] },
    Heap(Box<str>),
}

impl HostKey {
    /// The key of `host`, compared without regard to ASCII case.
    pub fn new(host: &str) -> HostKey {
        if host.len() <= INLINE_HOST && host.is_ascii() {
            let mut bytes = [0u8; INLINE_HOST];
            for (to, from) in bytes.iter_mut().zip(host.bytes()) {
                *to = from.to_ascii_lowercase();
            }
            HostKey(HostRepr::Inline { len: host.len() as u8, bytes })
        } else {
            HostKey(HostRepr::Heap(host.to_ascii_lowercase().into_boxed_str()))
        }
    }

    /// The target host of `req` as [`harvester_core::host::of_request`] names it (the
    /// URI's host, else the `Host` header's; lower-case, no port, IPv6 without brackets).
    /// Requests with neither share the empty key.
    pub fn of<B>(req: &http::Request<B>) -> HostKey {
        HostKey::new(harvester_core::host::of_request(req).as_deref().unwrap_or(""))
    }

    /// The host name, lowercased.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            HostRepr::Inline { len, bytes } => std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default(),
            HostRepr::Heap(host) => host,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            HostRepr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            HostRepr::Heap(host) => host.as_bytes(),
        }
    }
}

impl PartialEq for HostKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for HostKey {}

impl Hash for HostKey {
    /// As `str` hashes: a table of `HostKey`s can be searched by `&str` (see `Borrow`).
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl Borrow<str> for HostKey {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for HostKey {
    fn from(host: &str) -> Self {
        HostKey::new(host)
    }
}

impl fmt::Display for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostKey({:?})", self.as_str())
    }
}
