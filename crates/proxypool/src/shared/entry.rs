//! A registry entry as stored in Redis: a proxy with its credentials, its metadata, who
//! registered it and its quality tier, as JSON.
//!
//! The JSON holds the proxy's URL **with its credentials** (other instances need them to
//! connect). It is a secret: nothing here derives `Debug`, and no error quotes it.

use serde::{Deserialize, Serialize};

use crate::proxy::{Proxy, ProxyMeta};

use super::tier::QualityTier;

/// The format version written; entries of other versions are skipped.
const VERSION: u32 = 1;

/// A proxy read from the registry, with what its registering instance said of it.
///
/// `Debug` shows the proxy redacted, as [`Proxy`]'s own `Debug` does.
#[derive(Clone, Debug, PartialEq)]
pub struct RegisteredProxy {
    /// The proxy, credentials included (for connecting; never log them).
    pub proxy: Proxy,
    /// The instance that wrote the entry last.
    pub owner: String,
    /// Its quality tier as that instance saw it.
    pub tier: QualityTier,
    /// Its quality score as that instance saw it, in [0, 1].
    pub quality: f64,
}

/// The stored form. Deliberately without `Debug`: `url` holds the credentials.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    v: u32,
    id: String,
    url: String,
    meta: ProxyMeta,
    owner: String,
    tier: QualityTier,
    quality: f64,
}

/// Why a stored entry was skipped. Never quotes the entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unreadable {
    /// Not the JSON this version writes.
    Format,
    /// Written by another version of this crate.
    Version(u32),
    /// The URL or metadata did not make a valid proxy, or its id did not match.
    Proxy,
}

/// The JSON of `proxy`'s entry.
pub(crate) fn encode(proxy: &Proxy, owner: &str, quality: f64) -> String {
    let quality = if quality.is_finite() { quality.clamp(0.0, 1.0) } else { 0.0 };
    let stored = Stored {
        v: VERSION,
        id: proxy.id().to_string(),
        url: proxy.url_with_credentials(),
        meta: ProxyMeta { id: Some(proxy.id().to_string()), ..proxy.meta().clone() },
        owner: owner.to_owned(),
        tier: QualityTier::of(quality),
        quality,
    };
    // Serializing plain strings, numbers and `ProxyMeta` cannot fail; an empty entry
    // would be skipped by every reader.
    serde_json::to_string(&stored).unwrap_or_default()
}

/// The proxy in an entry's JSON.
pub(crate) fn decode(json: &[u8]) -> Result<RegisteredProxy, Unreadable> {
    #[derive(Deserialize)]
    struct Version {
        v: u32,
    }
    let version: Version = serde_json::from_slice(json).map_err(|_| Unreadable::Format)?;
    if version.v != VERSION {
        return Err(Unreadable::Version(version.v));
    }
    let stored: Stored = serde_json::from_slice(json).map_err(|_| Unreadable::Format)?;
    let proxy = Proxy::with_meta(&stored.url, stored.meta).map_err(|_| Unreadable::Proxy)?;
    if proxy.id().as_str() != stored.id {
        return Err(Unreadable::Proxy);
    }
    Ok(RegisteredProxy { proxy, owner: stored.owner, tier: stored.tier, quality: stored.quality })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy() -> Proxy {
        let meta = ProxyMeta { region: Some("eu".into()), provider: Some("acme".into()), ..ProxyMeta::default() };
        Proxy::with_meta("socks5h://al%3Aice:s3cr%40t@10.0.0.7:1080", meta).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn an_entry_carries_the_credentials_to_the_other_instances() {
        let original = proxy();
        let read = decode(encode(&original, "a", 0.8).as_bytes()).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(read.proxy.id(), original.id(), "the derived id is kept");
        assert_eq!(read.proxy.url_with_credentials(), original.url_with_credentials());
        assert_eq!(read.proxy.credentials().map(|c| c.password()), Some("s3cr@t"));
        assert_eq!((read.owner.as_str(), read.tier), ("a", QualityTier::High));
        let shown = format!("{read:?}");
        assert!(!shown.contains("s3cr") && !shown.contains("al%3Aice") && !shown.contains("al:ice"), "{shown}");
    }

    #[test]
    fn entries_that_do_not_read_are_refused_without_quoting_them() {
        assert_eq!(decode(b"not json").err(), Some(Unreadable::Format));
        let later = encode(&proxy(), "a", 1.0).replace("\"v\":1", "\"v\":2");
        assert_eq!(decode(later.as_bytes()).err(), Some(Unreadable::Version(2)));
        let forged = encode(&proxy(), "a", 1.0).replacen("\"id\":\"", "\"id\":\"x", 1);
        assert_eq!(decode(forged.as_bytes()).err(), Some(Unreadable::Proxy));
    }

    #[test]
    fn a_quality_out_of_range_is_clamped() {
        let read = decode(encode(&proxy(), "a", f64::NAN).as_bytes()).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((read.quality, read.tier), (0.0, QualityTier::Low));
    }
}
