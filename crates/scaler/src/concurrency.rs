//! [`ConcurrencyLimit`]: a semaphore whose size can change while permits are out — the
//! [`Actuator`] for "how many requests (or tasks) at once".
//!
//! Growing adds permits at once. Shrinking never takes a permit back from its holder: free
//! permits are retired at once, and the rest of the reduction is a *debt* paid by permits as
//! they are returned (a returned permit retires instead of going back). Until the debt is
//! paid, more work than the new limit may still be running — the work that was already
//! running, never new work beyond it: once `set_limit` returns, a permit is granted only
//! within the new limit. Growing again first cancels the debt.
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

// How a shrink and a returning permit agree on who retires what. A returning permit either
// pays a unit of debt (and is forgotten) or goes back to the semaphore. The race to close: a
// permit reads no debt, a shrink then adds debt and finds no free permit to retire, and only
// then does the permit go back — free, beyond the new limit (or handed straight to a waiter).
// So a returning permit announces itself in `returning` before it reads the debt, and a shrink
// adds its debt before it reads `returning` (all SeqCst: each side's write comes before its
// read, so at least one side sees the other). A shrink that sees permits on their way back
// waits until they are back (or until the debt is paid) and then retires the free ones.

#[derive(Debug)]
struct Inner {
    semaphore: Arc<Semaphore>,
    limit: AtomicUsize,
    /// Permits still to retire as they come back.
    debt: AtomicUsize,
    in_flight: AtomicUsize,
    /// Permits between their holder's drop and their return to the semaphore (or retirement).
    returning: AtomicUsize,
    /// Serialises resizes (the acquire and release paths stay lock-free).
    resize: Mutex<()>,
}

impl Inner {
    /// Takes one permit off the debt, if there is any.
    fn pay_one(&self) -> bool {
        self.debt.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |debt| debt.checked_sub(1)).is_ok()
    }

    /// Marks a permit as on its way back until the guard is dropped.
    fn begin_return(&self) -> Returning<'_> {
        self.returning.fetch_add(1, Ordering::SeqCst);
        Returning(self)
    }

    /// Retires free permits while debt remains.
    fn retire_free(&self) {
        while self.debt.load(Ordering::SeqCst) > 0 {
            let Ok(free) = self.semaphore.try_acquire() else { return };
            if self.pay_one() {
                free.forget();
            } else {
                // A returning permit paid the last of the debt meanwhile; `free` goes back.
                return;
            }
        }
    }

    /// Puts `debt` on the limit: retires free permits now, leaves the rest to the permits out.
    fn shrink(&self, debt: usize) {
        self.debt.fetch_add(debt, Ordering::SeqCst);
        loop {
            // Read before retiring: a permit counted here is back by the time this reads 0.
            let none_returning = self.returning.load(Ordering::SeqCst) == 0;
            self.retire_free();
            if none_returning || self.debt.load(Ordering::SeqCst) == 0 {
                return;
            }
            // A permit that read no debt is between its drop and its return: a few instructions.
            std::hint::spin_loop();
            std::thread::yield_now();
        }
    }
}

/// A permit on its way back; see [`Inner::begin_return`].
struct Returning<'a>(&'a Inner);

impl Drop for Returning<'_> {
    fn drop(&mut self) {
        self.0.returning.fetch_sub(1, Ordering::SeqCst);
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
        if let Some(permit) = self.permit.take() {
            let _returning = self.inner.begin_return();
            if self.inner.pay_one() {
                permit.forget();
            } else {
                drop(permit);
            }
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
                returning: AtomicUsize::new(0),
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
    /// and the rest as they are returned. Once it returns, no permit is granted beyond
    /// `limit` (a shrink racing a permit's return waits the few instructions until that
    /// permit is back, to retire it).
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
            self.inner.shrink(old - limit);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrink_waits_for_a_permit_on_its_way_back_and_retires_it() {
        // Given a permit whose return is under way: it has read no debt, and is not back yet
        let limit = ConcurrencyLimit::new(1).expect("valid limit");
        let mut held = limit.try_acquire().expect("a free permit");
        let permit = held.permit.take().expect("the semaphore permit");
        drop(held);
        let returning = limit.inner.begin_return();
        assert!(!limit.inner.pay_one());
        // When the limit shrinks to 0 meanwhile, it adds its debt and finds nothing free
        let shrink = std::thread::spawn({
            let limit = limit.clone();
            move || limit.set_limit(0).expect("valid limit")
        });
        while limit.pending_shrink() == 0 {
            std::hint::spin_loop();
        }
        assert!(!shrink.is_finished(), "the shrink waits for the permit on its way back");
        drop(permit);
        drop(returning);
        shrink.join().expect("no panic");
        // Then the permit that came back was retired: nobody new gets one
        assert_eq!((limit.available(), limit.pending_shrink(), limit.in_flight()), (0, 0, 0));
        assert!(limit.try_acquire().is_none());
    }
}
