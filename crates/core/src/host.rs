//! Target hosts, named one way everywhere: ASCII lower-case, an IPv6 address without its
//! brackets, no port, no trailing dot (`shop.example.` is `shop.example`). Bans, per-site statistics, breakers and rate limits are all kept per
//! host, so two spellings of one host must never become two keys.
//!
//! ```
//! use harvester_core::host;
//!
//! let request = http::Request::get("http://[::1]:8080/a").body(()).unwrap();
//! assert_eq!(host::of_request(&request).as_deref(), Some("::1"));
//! assert_eq!(host::normalize("Shop.Example:443"), "shop.example");
//! ```

use std::borrow::Cow;

/// `authority` (`host`, `host:port`, `[v6]` or `[v6]:port`) as a host: without the port,
/// the brackets and a trailing dot, ASCII lower-case. Allocates only when it lower-cases.
pub fn normalize(authority: &str) -> Cow<'_, str> {
    let host = strip(authority);
    lowercase(host.strip_suffix('.').filter(|h| !h.is_empty()).unwrap_or(host))
}

/// The host of `uri` (absolute form, as a client sends requests), normalised; `None` when
/// it has none.
pub fn of_uri(uri: &http::Uri) -> Option<Cow<'_, str>> {
    uri.host().map(normalize)
}

/// The target host of `request`: its URI's host, else its `Host` header's (origin form, as
/// a server receives requests), normalised; `None` when it has neither.
pub fn of_request<B>(request: &http::Request<B>) -> Option<Cow<'_, str>> {
    if let Some(host) = of_uri(request.uri()) {
        return Some(host);
    }
    let header = request.headers().get(http::header::HOST)?.to_str().ok()?;
    let host = normalize(header);
    (!host.is_empty()).then_some(host)
}

/// Without the port and the brackets.
fn strip(authority: &str) -> &str {
    let authority = authority.trim();
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(v6, _port)| v6);
    }
    match authority.rsplit_once(':') {
        // Two colons or more without brackets: a bare IPv6 address, not host:port.
        Some((host, _port)) if !host.contains(':') => host,
        _ => authority,
    }
}

fn lowercase(host: &str) -> Cow<'_, str> {
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_host_is_one_name() {
        for spelling in ["shop.example", "SHOP.example", "shop.example:443", " Shop.Example:8080 ", "shop.example.:80"]
        {
            assert_eq!(normalize(spelling), "shop.example", "{spelling}");
        }
        for spelling in ["[::1]", "[::1]:8080", "::1"] {
            assert_eq!(normalize(spelling), "::1", "{spelling}");
        }
        assert_eq!(normalize("[2001:DB8::1]:443"), "2001:db8::1");
        assert!(matches!(normalize("already.lower"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_request_names_its_host_by_uri_then_host_header() {
        let absolute = http::Request::get("http://[2001:db8::7]:81/x").body(()).expect("valid");
        assert_eq!(of_request(&absolute).as_deref(), Some("2001:db8::7"));
        let origin = http::Request::get("/x").header("host", "Shop.Example:8443").body(()).expect("valid");
        assert_eq!(of_request(&origin).as_deref(), Some("shop.example"));
        let neither = http::Request::get("/x").body(()).expect("valid");
        assert_eq!(of_request(&neither), None);
    }
}
