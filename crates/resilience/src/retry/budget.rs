//! The retry budget: retries may add only a share of the calls, whatever the failure rate.

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::config::BudgetConfig;
use crate::error::ConfigError;

/// Fixed-point units in one retry token, so that a call's share of a token (0.2 by
/// default, 0.001 at the finest) is deposited exactly. tower's `TpsBudget` rounds the
/// token's price instead, and `retry_percent = 0.6` then buys a full retry per call
/// (tower-rs/tower#857).
const UNITS_PER_TOKEN: i64 = 1000;
/// Time buckets over the TTL: a deposit expires between `ttl - ttl/10` and `ttl` after it
/// was made.
const SLOTS: usize = 10;
/// A thread reads the clock for one deposit in this many; the others use the budget's last
/// reading. A clock read costs more than the rest of a deposit together.
const CLOCK_EVERY: u32 = 16;

thread_local! {
    static DEPOSITS_SINCE_CLOCK: Cell<u32> = const { Cell::new(0) };
}

/// A retry budget shared by every clone of a retry service (Finagle's `RetryBudget`).
///
/// Each call [`deposit`](RetryBudget::deposit)s `retry_percent` of a token; each retry
/// [`try_withdraw`](RetryBudget::try_withdraw)s a whole one. Deposits and withdrawals count
/// for `ttl`, on top of a constant reserve of `min_per_sec × ttl` tokens, so over any `ttl`
/// retries number at most `retry_percent × calls + min_per_sec × ttl`: when an upstream
/// fails, retries add 20 % to its load instead of multiplying it by `max_attempts`.
///
/// The state is ten time buckets, each one atomic word holding the bucket's time index and
/// its balance, updated by compare-and-swap: no lock. Time is tokio's clock. A withdrawal
/// reads it; a deposit takes the budget's last reading and reads the clock itself once in
/// 16 deposits of its thread, which makes it a single CAS most of the time. A deposit may
/// thus be dated up to that many calls early and expire as much sooner: never later, so
/// the budget never grants more than its share (at low traffic, where this matters, the
/// floor of `min_per_sec` dwarfs the share anyway).
///
/// ```
/// use harvester_resilience::retry::{BudgetConfig, RetryBudget};
///
/// let budget = RetryBudget::new(&BudgetConfig { min_per_sec: 0, retry_percent: 0.5, ..BudgetConfig::default() })?;
/// assert!(!budget.try_withdraw());
/// budget.deposit();
/// budget.deposit();
/// assert!(budget.try_withdraw()); // two calls at 50 % buy one retry
/// assert!(!budget.try_withdraw());
/// # Ok::<(), harvester_resilience::ConfigError>(())
/// ```
pub struct RetryBudget {
    /// Per bucket: time index (high 32 bits) and balance in units (low 32 bits, signed).
    slots: [AtomicU64; SLOTS],
    /// The latest bucket time index read from the clock (by any thread).
    last_epoch: AtomicU32,
    origin: Instant,
    slot_nanos: u64,
    deposit_units: i32,
    reserve_units: i64,
}

impl RetryBudget {
    /// A budget as configured, or the field that is out of range.
    pub fn new(config: &BudgetConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self::from_valid(config))
    }

    /// A budget from a configuration already validated.
    pub(crate) fn from_valid(config: &BudgetConfig) -> Self {
        let slot_nanos = u64::try_from((config.ttl / SLOTS as u32).as_nanos()).unwrap_or(u64::MAX).max(1);
        let deposit_units = (config.retry_percent * UNITS_PER_TOKEN as f64).round() as i32;
        let reserve_units = (f64::from(config.min_per_sec) * config.ttl.as_secs_f64() * UNITS_PER_TOKEN as f64) as i64;
        RetryBudget {
            slots: std::array::from_fn(|_| AtomicU64::new(pack(u32::MAX, 0))),
            last_epoch: AtomicU32::new(0),
            origin: Instant::now(),
            slot_nanos,
            deposit_units,
            reserve_units,
        }
    }

    /// Credits one call: `retry_percent` of a token, for `ttl`.
    pub fn deposit(&self) {
        if self.deposit_units == 0 {
            return;
        }
        let clock_due = DEPOSITS_SINCE_CLOCK.with(|count| {
            let next = count.get().wrapping_add(1) % CLOCK_EVERY;
            count.set(next);
            next == 0
        });
        let mut epoch = if clock_due { self.epoch() } else { self.last_epoch.load(Ordering::Relaxed) };
        let slot = &self.slots[epoch as usize % SLOTS];
        let mut word = slot.load(Ordering::Relaxed);
        loop {
            let (slot_epoch, balance) = unpack(word);
            if is_newer(slot_epoch, epoch) {
                // Another thread read the clock later and rotated this bucket already.
                epoch = slot_epoch;
            }
            let balance =
                if slot_epoch == epoch { balance.saturating_add(self.deposit_units) } else { self.deposit_units };
            match slot.compare_exchange_weak(word, pack(epoch, balance), Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return,
                Err(actual) => word = actual,
            }
        }
    }

    /// Takes one token for a retry, or returns `false` when the budget has none.
    pub fn try_withdraw(&self) -> bool {
        let mut epoch = self.epoch();
        let index = epoch as usize % SLOTS;
        let slot = &self.slots[index];
        let mut word = slot.load(Ordering::Acquire);
        loop {
            let (slot_epoch, balance) = unpack(word);
            if is_newer(slot_epoch, epoch) {
                // Another thread read the clock later and rotated this bucket already.
                epoch = slot_epoch;
            }
            let current = if slot_epoch == epoch { balance } else { 0 };
            // Every withdrawal goes through the current bucket's CAS, so two retries
            // cannot both spend the last token.
            let available = self.others(epoch, index) + i64::from(current);
            if available < UNITS_PER_TOKEN {
                return false;
            }
            let balance = current.saturating_sub(UNITS_PER_TOKEN as i32);
            match slot.compare_exchange_weak(word, pack(epoch, balance), Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return true,
                Err(actual) => word = actual,
            }
        }
    }

    /// Tokens available now (fractional: deposits are shares of a token).
    pub fn balance(&self) -> f64 {
        let epoch = self.epoch();
        let index = epoch as usize % SLOTS;
        let (slot_epoch, balance) = unpack(self.slots[index].load(Ordering::Acquire));
        let current = if slot_epoch == epoch { i64::from(balance) } else { 0 };
        (self.others(epoch, index) + current) as f64 / UNITS_PER_TOKEN as f64
    }

    /// The reserve plus the balances of the live buckets other than `index`.
    fn others(&self, epoch: u32, index: usize) -> i64 {
        let mut sum = self.reserve_units;
        for (i, slot) in self.slots.iter().enumerate() {
            if i == index {
                continue;
            }
            let (slot_epoch, balance) = unpack(slot.load(Ordering::Acquire));
            if epoch.wrapping_sub(slot_epoch) < SLOTS as u32 {
                sum += i64::from(balance);
            }
        }
        sum
    }

    /// The current bucket's time index (wraps after 2^32 buckets: 13 years at the
    /// shortest TTL; only equality and short differences are ever compared).
    fn epoch(&self) -> u32 {
        let elapsed = Instant::now().saturating_duration_since(self.origin);
        let epoch = (saturating_nanos(elapsed) / self.slot_nanos) as u32;
        // A racing thread may store an older reading; deposits are then dated earlier,
        // which is the safe direction.
        if self.last_epoch.load(Ordering::Relaxed) != epoch {
            self.last_epoch.store(epoch, Ordering::Relaxed);
        }
        epoch
    }
}

impl Default for RetryBudget {
    /// 20 % of calls plus 10 retries a second, over 10 s.
    fn default() -> Self {
        Self::from_valid(&BudgetConfig::default())
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("deposit_per_call", &(f64::from(self.deposit_units) / UNITS_PER_TOKEN as f64))
            .field("reserve", &(self.reserve_units as f64 / UNITS_PER_TOKEN as f64))
            .field("balance", &self.balance())
            .finish()
    }
}

fn pack(epoch: u32, balance: i32) -> u64 {
    (u64::from(epoch) << 32) | u64::from(balance as u32)
}

fn unpack(word: u64) -> (u32, i32) {
    ((word >> 32) as u32, word as u32 as i32)
}

/// Whether bucket time `a` is after `b` (by less than half the index range).
fn is_newer(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < u32::MAX / 2
}

fn saturating_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips_negative_balances() {
        for (epoch, balance) in [(0, 0), (7, -1000), (u32::MAX, i32::MIN), (12, i32::MAX)] {
            assert_eq!(unpack(pack(epoch, balance)), (epoch, balance));
        }
    }

    #[test]
    fn newer_handles_wrapping() {
        assert!(is_newer(1, 0));
        assert!(is_newer(0, u32::MAX));
        assert!(!is_newer(0, 1));
        assert!(!is_newer(5, 5));
    }
}
