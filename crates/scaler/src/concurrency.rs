//! [`ConcurrencyLimit`]: a semaphore whose size can change while permits are out — the
//! [`Actuator`] for "how many requests (or tasks) at once".
//!
//! Growing adds permits at once. Shrinking never takes a permit back from its holder: free
//! permits are retired at once, and the rest of the reduction is a *debt* paid by permits as
//! they are returned (a returned permit retires instead of going back). Until the debt is
//! paid, more work than the new limit may still be running — the work that was already
//! running, never new work beyond it. Growing again first cancels the debt.
//!
//! The limit is fair (tokio's semaphore): waiters get permits in the order they asked.
//!
//! ```
//! use harvester_scaler::ConcurrencyLimit;
//!
//! let limit = ConcurrencyLimit::new(3)?;
//! let held: Vec<_> = (0..3).filter_map(|_| limit.try_acquire()).collect();
//! limit.set_limit(1)?;
//! // The three holders keep their permits; nobody new gets one.
//! assert_eq!((limit.in_flight(), limit.available()), (3, 0));
//! assert!(limit.try_acquire().is_none());
//! drop(held); // two permits retire, one goes back
//! assert_eq!((limit.in_flight(), limit.available(), limit.limit()), (0, 1, 1));
//! # Ok::<(), harvester_scaler::ConfigError>(())
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::actuator::Actuator;
use crate::error::{ActuatorError, ConfigError};

/// A resizable concurrency limit; clones share it. See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct ConcurrencyLimit {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    semaphore: Arc<Semaphore>,
    limit: AtomicUsize,
    /// Permits still to retire as they come back.
    debt: AtomicUsize,
    in_flight: AtomicUsize,
    /// Serialises resizes (the acquire and release paths stay lock-free).
    resize: Mutex<()>,
}

impl Inner {
    /// Takes one permit off the debt, if there is any.
    fn pay_one(&self) -> bool {
        self.debt.fetch_update(Ordering::AcqRel, Ordering::Acquire, |debt| debt.checked_sub(1)).is_ok()
    }
}

/// Held while working; returned (or retired, while the limit is shrinking) on drop.
#[derive(Debug)]
#[must_use = "the permit is returned as soon as it is dropped"]
pub struct ConcurrencyPermit {
    permit: Option<OwnedSemaphorePermit>,
    inner: Arc<Inner>,
}

impl Drop for ConcurrencyPermit {
    fn drop(&mut self) {
        self.inner.in_flight.fetch_sub(1, Ordering::AcqRel);
        if let Some(permit) = self.permit.take()
            && self.inner.pay_one()
        {
            permit.forget();
        }
    }
}

impl ConcurrencyLimit {
    /// A limit of `limit` permits (0 admits nobody until raised).
    pub fn new(limit: usize) -> Result<Self, ConfigError> {
        Self::check(limit)?;
        Ok(ConcurrencyLimit {
            inner: Arc::new(Inner {
                semaphore: Arc::new(Semaphore::new(limit)),
                limit: AtomicUsize::new(limit),
                debt: AtomicUsize::new(0),
                in_flight: AtomicUsize::new(0),
                resize: Mutex::new(()),
            }),
        })
    }

    fn check(limit: usize) -> Result<(), ConfigError> {
        if limit > Semaphore::MAX_PERMITS {
            return Err(ConfigError::new("concurrency.limit", format!("must be at most {}", Semaphore::MAX_PERMITS)));
        }
        Ok(())
    }

    fn permit(&self, permit: OwnedSemaphorePermit) -> ConcurrencyPermit {
        self.inner.in_flight.fetch_add(1, Ordering::AcqRel);
        ConcurrencyPermit { permit: Some(permit), inner: self.inner.clone() }
    }

    /// Waits for a permit.
    pub async fn acquire(&self) -> ConcurrencyPermit {
        match self.inner.semaphore.clone().acquire_owned().await {
            Ok(permit) => self.permit(permit),
            // The semaphore is never closed, so this cannot happen; waiting forever is the
            // honest answer if it ever did (no permit can be granted).
            Err(_) => std::future::pending().await,
        }
    }

    /// A permit if one is free now.
    pub fn try_acquire(&self) -> Option<ConcurrencyPermit> {
        self.inner.semaphore.clone().try_acquire_owned().ok().map(|permit| self.permit(permit))
    }

    /// Sets the limit. Growing takes effect at once; shrinking retires free permits at once
    /// and the rest as they are returned.
    pub fn set_limit(&self, limit: usize) -> Result<(), ConfigError> {
        Self::check(limit)?;
        let _resizing = self.inner.resize.lock().unwrap_or_else(PoisonError::into_inner);
        let old = self.inner.limit.swap(limit, Ordering::AcqRel);
        if limit > old {
            let mut grow = limit - old;
            while grow > 0 && self.inner.pay_one() {
                grow -= 1;
            }
            self.inner.semaphore.add_permits(grow);
        } else if limit < old {
            self.inner.debt.fetch_add(old - limit, Ordering::AcqRel);
            // Retire free permits now rather than waiting for returns.
            while self.inner.debt.load(Ordering::Acquire) > 0 {
                let Ok(free) = self.inner.semaphore.try_acquire() else { break };
                if self.inner.pay_one() {
                    free.forget();
                } else {
                    // A returning permit paid the last of the debt meanwhile.
                    break;
                }
            }
        }
        Ok(())
    }

    /// The limit set.
    pub fn limit(&self) -> usize {
        self.inner.limit.load(Ordering::Acquire)
    }

    /// Permits held now.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::Acquire)
    }

    /// Permits free now.
    pub fn available(&self) -> usize {
        self.inner.semaphore.available_permits()
    }

    /// Permits still to retire as they are returned (the part of a shrink not yet in effect).
    pub fn pending_shrink(&self) -> usize {
        self.inner.debt.load(Ordering::Acquire)
    }
}

#[async_trait]
impl Actuator for ConcurrencyLimit {
    async fn current(&self) -> Result<u32, ActuatorError> {
        Ok(u32::try_from(self.limit()).unwrap_or(u32::MAX))
    }

    async fn apply(&self, replicas: u32) -> Result<(), ActuatorError> {
        let limit = usize::try_from(replicas).map_err(|_| ActuatorError::new("concurrency", "limit too large"))?;
        self.set_limit(limit).map_err(|e| ActuatorError::new("concurrency", e.to_string()))
    }
}
