//! Leases and outcomes.
//!
//! A [`Lease`] is one request's hold on one proxy. It counts as in flight from
//! `acquire` until the lease is dropped, whatever ends it: a report, an early return, a
//! panic or a cancelled future. [`Lease::report`] tells the pool how the request went,
//! and that [`Outcome`] feeds passive health, ejection and per-host bans.

use std::fmt;
use std::sync::Arc;

use crate::health::{Outcome, Picked};
use crate::proxy::{Proxy, ProxyId};
use crate::snapshot::Member;

/// One request's hold on a proxy; see the [module docs](self).
///
/// Removing the proxy from the pool while it is leased is safe: the lease keeps what it
/// needs alive, and its report no longer affects the pool's ejection count.
#[must_use = "a lease holds an in-flight place on its proxy until dropped; report how the request went"]
pub struct Lease {
    member: Arc<Member>,
    host: Option<Arc<str>>,
    /// Where the proxy sat in the snapshot it was picked from.
    slot: u32,
    generation: u64,
}

impl Lease {
    pub(crate) fn new(member: Arc<Member>, host: Option<Arc<str>>, slot: u32, generation: u64) -> Self {
        Lease { member, host, slot, generation }
    }

    /// The leased proxy.
    pub fn proxy(&self) -> &Proxy {
        &self.member.proxy
    }

    /// The leased proxy, shared.
    pub fn proxy_arc(&self) -> &Arc<Proxy> {
        &self.member.proxy
    }

    /// The leased proxy's id.
    pub fn id(&self) -> &ProxyId {
        self.member.proxy.id()
    }

    /// The target host the lease was taken for.
    pub fn target_host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// Reports how the request went and releases the lease.
    pub fn report(self, outcome: Outcome) {
        let member = &*self.member;
        let picked = Picked { slot: self.slot, generation: self.generation };
        member.context.record(&member.proxy, &member.health, self.host.as_ref(), picked, outcome);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.member.hot.get().end();
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease").field("proxy", self.id()).field("target_host", &self.host).finish()
    }
}
