//! Strict percent-decoding, for credentials in URLs (proxy and Redis URLs).

/// `text` with every `%XX` escape decoded, or `None` when an escape is malformed (`%` not
/// followed by two hex digits) or the result is not UTF-8. Strict on purpose: a credential
/// that does not decode cleanly is refused, never passed on half-decoded.
///
/// ```
/// use harvester_core::percent::decode;
///
/// assert_eq!(decode("p%40ss%3Aw0rd").as_deref(), Some("p@ss:w0rd"));
/// assert_eq!(decode("100%"), None);
/// assert_eq!(decode("%zz"), None);
/// ```
pub fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
