//! A health verdict as announced on the channel and kept under its key: who decided
//! what about which proxy, as JSON.
//!
//! ```json
//! {"v":1,"origin":"crawler-1","proxy":"p7","kind":"ejected","ms":30000}
//! {"v":1,"origin":"crawler-1","proxy":"p7","kind":"banned","host":"shop.example","ms":60000}
//! {"v":1,"origin":"crawler-1","proxy":"p7","kind":"restored"}
//! ```
//!
//! Durations are relative (milliseconds left), so that the instances' clocks never
//! matter; the polling fallback replaces them by the key's remaining TTL.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::health::{HealthEvent, HealthEventKind};
use crate::proxy::ProxyId;

/// The format version written; verdicts of other versions are ignored.
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Stored {
    v: u32,
    origin: String,
    proxy: String,
    #[serde(flatten)]
    kind: Kind,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Kind {
    Ejected { ms: u64 },
    Banned { host: Option<String>, ms: u64 },
    Restored,
}

/// A verdict read back: who decided it, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub(crate) origin: String,
    pub(crate) event: HealthEvent,
}

/// The JSON announcing `event`, decided by `origin`.
pub(crate) fn encode(origin: &str, event: &HealthEvent) -> String {
    let ms = |d: &Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let kind = match &event.kind {
        HealthEventKind::Ejected { duration } => Kind::Ejected { ms: ms(duration) },
        HealthEventKind::Banned { host, duration } => {
            Kind::Banned { host: host.as_deref().map(str::to_owned), ms: ms(duration) }
        }
        HealthEventKind::Restored => Kind::Restored,
    };
    let stored = Stored { v: VERSION, origin: origin.to_owned(), proxy: event.proxy.to_string(), kind };
    // Plain strings and numbers: serializing cannot fail; an empty verdict is ignored.
    serde_json::to_string(&stored).unwrap_or_default()
}

/// The verdict in `json`; `remaining`, when given, replaces its duration (the key's TTL
/// left). `None` for anything else: another version, a stranger's message, garbage.
pub(crate) fn decode(json: &[u8], remaining: Option<Duration>) -> Option<Verdict> {
    let stored: Stored = serde_json::from_slice(json).ok()?;
    if stored.v != VERSION || stored.proxy.is_empty() {
        return None;
    }
    let duration = |ms: u64| remaining.unwrap_or(Duration::from_millis(ms));
    let kind = match stored.kind {
        Kind::Ejected { ms } => HealthEventKind::Ejected { duration: duration(ms) },
        Kind::Banned { host, ms } => {
            HealthEventKind::Banned { host: host.filter(|h| !h.is_empty()).map(Arc::from), duration: duration(ms) }
        }
        Kind::Restored => HealthEventKind::Restored,
    };
    Some(Verdict { origin: stored.origin, event: HealthEvent { proxy: ProxyId::from(stored.proxy), kind } })
}

/// How long `event` lasts, for its key's TTL; `None` for a restoration.
pub(crate) fn lasts(event: &HealthEvent) -> Option<Duration> {
    match &event.kind {
        HealthEventKind::Ejected { duration } | HealthEventKind::Banned { duration, .. } => Some(*duration),
        HealthEventKind::Restored => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: HealthEventKind) -> HealthEvent {
        HealthEvent { proxy: ProxyId::from("p:7"), kind }
    }

    #[test]
    fn every_kind_survives_the_wire() {
        for kind in [
            HealthEventKind::Ejected { duration: Duration::from_secs(30) },
            HealthEventKind::Banned { host: Some(Arc::from("shop.example")), duration: Duration::from_millis(1500) },
            HealthEventKind::Banned { host: None, duration: Duration::from_secs(60) },
            HealthEventKind::Restored,
        ] {
            let sent = event(kind);
            let read = decode(encode("a", &sent).as_bytes(), None);
            assert_eq!(read, Some(Verdict { origin: "a".into(), event: sent }));
        }
    }

    #[test]
    fn a_polled_verdict_lasts_what_its_key_has_left() {
        let sent = event(HealthEventKind::Ejected { duration: Duration::from_secs(30) });
        let read = decode(encode("a", &sent).as_bytes(), Some(Duration::from_secs(12)));
        assert_eq!(read.map(|v| v.event.kind), Some(HealthEventKind::Ejected { duration: Duration::from_secs(12) }));
    }

    #[test]
    fn strangers_and_other_versions_are_ignored() {
        assert_eq!(decode(b"hello", None), None);
        assert_eq!(decode(br#"{"v":2,"origin":"a","proxy":"p","kind":"restored"}"#, None), None);
        assert_eq!(decode(br#"{"v":1,"origin":"a","proxy":"p","kind":"exploded"}"#, None), None);
        assert_eq!(decode(br#"{"v":1,"origin":"a","proxy":"","kind":"restored"}"#, None), None);
    }
}
