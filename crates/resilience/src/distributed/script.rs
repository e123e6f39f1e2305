//! The GCRA check as one Lua script run by Redis, and what its reply means.

use std::sync::LazyLock;
use std::time::Duration;

use harvester_redis::RedisConnection;
use redis::Script;

use super::error::DistributedError;
use crate::rate_limit::Quota;

/// The Lua source of the check (see its header for the arguments and the reply). Public so
/// that operators can load or inspect it: `redis::Script::new(GCRA_SCRIPT).get_hash()` is
/// the SHA1 the limiters call with `EVALSHA`.
pub const GCRA_SCRIPT: &str = include_str!("gcra.lua");

/// `redis::Script` sends `EVALSHA` and, when Redis answers `NOSCRIPT` (after a restart or
/// `SCRIPT FLUSH`), loads the script with `SCRIPT LOAD` and sends `EVALSHA` again.
static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(GCRA_SCRIPT));

/// Longest wait passed to the script: far beyond any configured wait, well inside the
/// 2^53 microseconds a Lua number holds exactly.
const LONGEST_WAIT_MICROS: u64 = 1 << 40;

/// A quota in the script's units (microseconds of Redis time).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RedisGcra {
    /// `T`, rounded *up* to the microsecond: at rates above a million per second the shared
    /// limit is a little slower than asked, never faster.
    interval_micros: u64,
    /// `τ = (burst - 1) × T`.
    tolerance_micros: u64,
    burst: u32,
}

/// What Redis decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Admitted: go after `wait` (zero: now).
    Admitted { wait: Duration },
    /// Refused: the cells conform in `retry_in` at the earliest.
    Refused { retry_in: Duration },
}

impl RedisGcra {
    pub(crate) fn new(quota: Quota) -> RedisGcra {
        let interval_micros = quota.interval_nanos().div_ceil(1_000).max(1);
        RedisGcra {
            interval_micros,
            tolerance_micros: interval_micros * u64::from(quota.burst() - 1),
            burst: quota.burst(),
        }
    }

    /// `T` as the script applies it.
    pub(crate) fn interval(&self) -> Duration {
        Duration::from_micros(self.interval_micros)
    }

    pub(crate) fn burst(&self) -> u32 {
        self.burst
    }

    /// One round trip: the script decides for `key` and updates it.
    pub(crate) async fn decide(
        &self,
        connection: &RedisConnection,
        key: &str,
        cost: u32,
        max_wait: Duration,
    ) -> Result<Verdict, DistributedError> {
        let max_wait_micros = u64::try_from(max_wait.as_micros()).unwrap_or(u64::MAX).min(LONGEST_WAIT_MICROS);
        let (admitted, micros): (i64, i64) = connection
            .run(|mut manager| async move {
                let mut invocation = SCRIPT.key(key);
                invocation.arg(self.interval_micros).arg(self.tolerance_micros).arg(cost).arg(max_wait_micros);
                invocation.invoke_async(&mut manager).await
            })
            .await?;
        let micros = Duration::from_micros(u64::try_from(micros).unwrap_or(0));
        Ok(if admitted == 1 { Verdict::Admitted { wait: micros } } else { Verdict::Refused { retry_in: micros } })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_round_up_to_the_microsecond() {
        let gcra =
            RedisGcra::new(Quota::per_second(3).and_then(|q| q.allow_burst(2)).unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(gcra.interval(), Duration::from_micros(333_334));
        assert_eq!(gcra.tolerance_micros, 333_334);
        let fast = RedisGcra::new(Quota::per_second(1_000_000_000).unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(fast.interval(), Duration::from_micros(1));
    }

    #[test]
    fn script_hash_is_stable() {
        assert_eq!(SCRIPT.get_hash(), Script::new(GCRA_SCRIPT).get_hash());
        assert_eq!(SCRIPT.get_hash().len(), 40);
    }
}
