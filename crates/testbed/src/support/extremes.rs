//! The extreme values every crate's `tests/config_extremes.rs` throws at its settings: 0,
//! 1, the type's maximum; NaN, ±∞, subnormal and huge floats; `Duration::MAX`. A setting
//! must refuse each with a typed error naming its field, or take it and keep working.
//!
//! The values are drawn from flat tables (`prop::sample::select`), not wide trees of
//! `prop_oneof!`: a strategy tree that wide needs more stack in a debug build than a test
//! thread has.

use std::time::Duration;

use proptest::prelude::*;

/// Floats at and around every edge a ratio, a rate or a multiplier can have.
pub const FLOATS: [f64; 12] =
    [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0, 0.0, f64::MIN_POSITIVE, 0.3, 0.5, 1.0, 50.0, 100.0, 1e308];

/// Durations from nothing to more than any clock can add.
pub const DURATIONS: [Duration; 9] = [
    Duration::ZERO,
    Duration::from_nanos(1),
    Duration::from_millis(10),
    Duration::from_secs(15),
    Duration::from_secs(86_400),
    Duration::from_secs(7 * 86_400),
    Duration::from_secs(u64::MAX),
    Duration::MAX,
    Duration::from_secs(30),
];

/// Counts (attempts, workers, replicas, thresholds).
pub const COUNTS: [u32; 7] = [0, 1, 3, 20, 56, 1 << 20, u32::MAX];

/// Sizes (queues, batches, tables, bytes).
pub const SIZES: [usize; 6] = [0, 1, 4, 6, 1 << 40, usize::MAX];

/// One of [`FLOATS`].
pub fn float() -> impl Strategy<Value = f64> {
    prop::sample::select(FLOATS.as_slice())
}

/// One of [`DURATIONS`].
pub fn duration() -> impl Strategy<Value = Duration> {
    prop::sample::select(DURATIONS.as_slice())
}

/// One of [`COUNTS`].
pub fn count() -> impl Strategy<Value = u32> {
    prop::sample::select(COUNTS.as_slice())
}

/// One of [`SIZES`].
pub fn size() -> impl Strategy<Value = usize> {
    prop::sample::select(SIZES.as_slice())
}

/// A current-thread runtime on a paused clock, for one case: waits jump ahead in virtual
/// time, so settings of a day cost nothing to exercise.
pub fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime builds")
}

/// Extremes drawn from a list of random bytes, one byte per setting: for configs with more
/// settings than a strategy tuple holds. One pick in six is an extreme, the others keep the
/// setting's default, so that most cases are valid configs whose extremes reach deep.
pub struct Picks(std::vec::IntoIter<u8>);

impl Picks {
    fn next_byte(&mut self) -> usize {
        usize::from(self.0.next().unwrap_or(0))
    }

    fn pick<T: Copy>(&mut self, table: &[T], default: T) -> T {
        let n = self.next_byte();
        if n.is_multiple_of(6) { table[n / 6 % table.len()] } else { default }
    }

    /// One of [`FLOATS`], or `default`.
    pub fn float(&mut self, default: f64) -> f64 {
        self.pick(&FLOATS, default)
    }

    /// One of [`DURATIONS`], or `default`.
    pub fn duration(&mut self, default: Duration) -> Duration {
        self.pick(&DURATIONS, default)
    }

    /// One of [`COUNTS`], or `default`.
    pub fn count(&mut self, default: u32) -> u32 {
        self.pick(&COUNTS, default)
    }

    /// One of [`SIZES`], or `default`.
    pub fn size(&mut self, default: usize) -> usize {
        self.pick(&SIZES, default)
    }

    /// Heads or tails.
    pub fn coin(&mut self) -> bool {
        self.next_byte().is_multiple_of(2)
    }
}

impl std::fmt::Debug for Picks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.as_slice()).finish()
    }
}

/// `Picks` for up to `settings` settings.
pub fn picks(settings: usize) -> impl Strategy<Value = Picks> {
    prop::collection::vec(any::<u8>(), settings).prop_map(|bytes| Picks(bytes.into_iter()))
}
