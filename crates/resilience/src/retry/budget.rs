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
/// for `ttl`, on top of a constant reserve of `min_per_sec × ttl` tokens: when an upstream
/// fails, retries add 20 % to its load instead of multiplying it by `max_attempts`.
///
/// Precisely: time is cut into buckets of `ttl / 10`, and a retry is granted only if the
/// reserve plus the deposits less the withdrawals of the live buckets (the current one and
/// the nine before it, i.e. the last `0.9 × ttl` to `ttl`) leave a whole token. Hence:
///
/// - in any `ttl` window aligned on bucket edges, retries number at most
///   `min_per_sec × ttl + retry_percent × calls`, counting the calls of that window and of
///   the `0.9 × ttl` before it (deposits still live when it opened);
/// - sustained, retries add at most `retry_percent` of the calls plus `min_per_sec` a second;
/// - a `ttl` window that is not aligned may see up to twice that: the reserve spent at the
///   end of one bucket is whole again `ttl` later, when that bucket expires.
///
/// Withdrawals into one bucket meet at a single CAS and never overspend. Two racing across
/// a bucket edge (one thread read the clock just before it, another just after, and neither
/// saw the other's reading) may each spend the last token: one token too many for each
/// bucket in the race beyond the first, only while their withdrawals overlap in time.
/// Withdrawals made one after the other, in whatever bucket order, never overspend.
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
/// let budget = RetryBudget::new(BudgetConfig { min_per_sec: 0, retry_percent: 0.5, ..BudgetConfig::default() })?;
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
    pub fn new(config: BudgetConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self::from_valid(&config))
    }

    /// A budget from a configuration already validated.
    pub(crate) fn from_valid(config: &BudgetConfig) -> Self {
        let slot_nanos = u64::try_from((config.ttl / SLOTS as u32).as_nanos()).unwrap_or(u64::MAX).max(1);
        // Floored, so that a share is never rounded up (0.0015 deposits 0.001, not 0.002); the
        // tolerance absorbs the binary representation of decimals (1.001 × 1000 = 1000.99…).
        let deposit_units = (config.retry_percent * UNITS_PER_TOKEN as f64 + 1e-6).floor() as i32;
        let reserve_units = (f64::from(config.min_per_sec) * config.ttl.as_secs_f64() * UNITS_PER_TOKEN as f64) as i64;
        RetryBudget {
            slots: std::array::from_fn(|_| AtomicU64::new(pack(u32::MAX, 0))),
            last_epoch: AtomicU32::new(0),
            origin: harvester_core::time::now(),
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
        self.withdraw_at(self.epoch())
    }

    /// [`try_withdraw`](RetryBudget::try_withdraw) for a clock reading of bucket `epoch`.
    fn withdraw_at(&self, epoch: u32) -> bool {
        // Withdraw into the newest bucket any thread has seen, so that withdrawals racing at
        // a bucket boundary meet at one CAS whenever that reading has been published.
        let last = self.last_epoch.load(Ordering::Relaxed);
        let mut epoch = if is_newer(last, epoch) { last } else { epoch };
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
            // Withdrawals into the same bucket meet at its CAS and cannot both spend the last
            // token. Withdrawals into two buckets (a thread that read the clock just before a
            // boundary, another just after) each read the other's bucket before their own
            // CAS, and may both spend it: see the type's docs for the bound.
            let available = self.others(epoch, index) + i64::from(current);
            if available < UNITS_PER_TOKEN {
                return false;
            }
            // A spend the bucket cannot record is refused rather than forgotten (validation
            // keeps the reserve within a bucket's range; only huge shares can get here).
            let Some(balance) = current.checked_sub(UNITS_PER_TOKEN as i32) else {
                return false;
            };
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

    /// The reserve plus the balances of the live buckets other than `index`: the nine before
    /// `epoch`, and any newer one (another thread read the clock later and already spent or
    /// deposited there; leaving it out would let this caller spend the same token again).
    fn others(&self, epoch: u32, index: usize) -> i64 {
        let mut sum = self.reserve_units;
        for (i, slot) in self.slots.iter().enumerate() {
            if i == index {
                continue;
            }
            let (slot_epoch, balance) = unpack(slot.load(Ordering::Acquire));
            if epoch.wrapping_sub(slot_epoch) < SLOTS as u32 || is_newer(slot_epoch, epoch) {
                sum += i64::from(balance);
            }
        }
        sum
    }

    /// The current bucket's time index (wraps after 2^32 buckets: 13 years at the
    /// shortest TTL; only equality and short differences are ever compared).
    fn epoch(&self) -> u32 {
        let elapsed = harvester_core::time::now().saturating_duration_since(self.origin);
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

    fn one_token() -> RetryBudget {
        // A 1-token reserve (1/s over 1 s), buckets of 100 ms.
        RetryBudget::new(BudgetConfig {
            retry_percent: 0.0,
            min_per_sec: 1,
            ttl: Duration::from_secs(1),
            enabled: true,
        })
        .expect("valid budget")
    }

    #[tokio::test(start_paused = true)]
    async fn a_withdrawal_dated_before_an_edge_sees_one_made_after_it() {
        // Thread A reads the clock just before the edge; thread B reads it just after and
        // spends the token first; A then withdraws with its older reading.
        let budget = one_token();
        tokio::time::advance(Duration::from_micros(99_990)).await;
        let a = budget.epoch();
        tokio::time::advance(Duration::from_micros(20)).await;
        assert_eq!(budget.epoch(), a + 1, "the clock crossed an edge");
        assert!(budget.try_withdraw(), "B spends the reserve's token");
        assert!(!budget.withdraw_at(a), "A must not spend it again");
        assert!(budget.balance() < 1.0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_newer_bucket_counts_even_when_the_last_reading_went_back() {
        // As above, but a racing thread stored A's older reading as the last one, so A
        // withdraws into its own bucket: the newer bucket must still count.
        let budget = one_token();
        tokio::time::advance(Duration::from_micros(99_990)).await;
        let a = budget.epoch();
        tokio::time::advance(Duration::from_micros(20)).await;
        assert!(budget.try_withdraw(), "B spends the reserve's token");
        budget.last_epoch.store(a, Ordering::Relaxed);
        assert!(!budget.withdraw_at(a), "A must not spend it again");
    }

    #[test]
    fn a_spend_the_bucket_cannot_record_is_refused() {
        let budget = RetryBudget::new(BudgetConfig {
            retry_percent: 1000.0,
            min_per_sec: 0,
            ttl: Duration::from_secs(60),
            enabled: true,
        })
        .expect("valid budget");
        // Two full buckets make 4.3 million tokens available; the current one is near i32::MIN.
        budget.slots[0].store(pack(0, i32::MAX), Ordering::Relaxed);
        budget.slots[1].store(pack(1, i32::MAX), Ordering::Relaxed);
        budget.slots[2].store(pack(2, i32::MIN + 999), Ordering::Relaxed);
        assert!(!budget.withdraw_at(2), "recording it would stick at i32::MIN");
        assert_eq!(unpack(budget.slots[2].load(Ordering::Relaxed)), (2, i32::MIN + 999));
    }

    #[test]
    fn newer_handles_wrapping() {
        assert!(is_newer(1, 0));
        assert!(is_newer(0, u32::MAX));
        assert!(!is_newer(0, 1));
        assert!(!is_newer(5, 5));
    }
}
