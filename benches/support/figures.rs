//! The figures every bench of the workspace prints after criterion's report, in the form
//! `scripts/bench.sh` collects into `target/bench/figures.md`, and where criterion's own
//! estimates are read back from. Each bench includes this file with `#[path]`.
//!
//! One method everywhere: a timed figure is criterion's **mean** with its 95 % confidence
//! interval, read from the `estimates.json` criterion wrote **in this run** (a file older than
//! [`begin_run`] is refused, so a function that did not run prints no figure instead of last
//! week's). A figure that is not a criterion timing (a whole run of the main job, a peak RSS)
//! says how it was made: the mean of its runs with their range, or one exact value.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

static RUN_STARTED: OnceLock<SystemTime> = OnceLock::new();

/// Marks the start of this run: estimates written before it are not this run's. Call it
/// first thing in `main`; without it every estimate counts as stale and no figure prints
/// (loud, since `scripts/bench.sh` fails a bench that prints no figure).
///
/// It also sets the clock the layers read as a program would: the time-stamp counter
/// ([`harvester_core::time::use_tsc`]), or tokio's clock with `BENCH_CLOCK=tokio`, to
/// measure what the seam saves.
pub fn begin_run() {
    RUN_STARTED.get_or_init(SystemTime::now);
    if std::env::var_os("BENCH_CLOCK").is_some_and(|clock| clock == "tokio") {
        harvester_core::time::use_tokio();
    } else {
        harvester_core::time::use_tsc();
    }
}

/// A figure and the interval it is known to: criterion's mean with its 95 % confidence
/// interval, the mean of a few runs with their range, or one exact value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// The figure itself.
    pub value: f64,
    /// The low end of its interval.
    pub low: f64,
    /// The high end of its interval.
    pub high: f64,
}

impl Estimate {
    /// One value known exactly (a count, a peak RSS of one run).
    pub fn exact(value: f64) -> Estimate {
        Estimate { value, low: value, high: value }
    }

    /// The mean of `runs` with their smallest and largest; NaN when there is none.
    pub fn of_runs(runs: &[f64]) -> Estimate {
        if runs.is_empty() {
            return Estimate::exact(f64::NAN);
        }
        let mean = runs.iter().sum::<f64>() / runs.len() as f64;
        let low = runs.iter().copied().fold(f64::INFINITY, f64::min);
        let high = runs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Estimate { value: mean, low, high }
    }

    /// `f` applied to the value and the ends; a decreasing `f` (a rate from a time) swaps
    /// the ends so that `low <= high` stays true.
    pub fn map(self, f: impl Fn(f64) -> f64) -> Estimate {
        let (a, b) = (f(self.low), f(self.high));
        Estimate { value: f(self.value), low: a.min(b), high: a.max(b) }
    }

    /// The difference of two estimates (an overhead over a baseline), its interval from the
    /// ends (a conservative bound).
    pub fn minus(self, other: Estimate) -> Estimate {
        Estimate { value: self.value - other.value, low: self.low - other.high, high: self.high - other.low }
    }

    /// The ratio of two estimates, its interval from the ends (a conservative bound).
    pub fn ratio(self, other: Estimate) -> Estimate {
        let ends = [self.low / other.high, self.high / other.low];
        Estimate { value: self.value / other.value, low: ends[0].min(ends[1]), high: ends[0].max(ends[1]) }
    }

    fn field(self) -> String {
        format!("{}[{},{}]", self.value, self.low, self.high)
    }
}

/// Where criterion wrote its estimates: `$CRITERION_HOME`, `$CARGO_TARGET_DIR/criterion`,
/// else `<target>/criterion` next to this executable (`<target>/<profile>/deps/<bench>`).
pub fn criterion_dir() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return Some(home.into());
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(target).join("criterion"));
    }
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.parent()?.join("criterion"))
}

/// Criterion's mean ns per iteration of `group/function` with its confidence interval, if
/// this run wrote it (see [`begin_run`]).
pub fn mean_ns(dir: &Path, group: &str, function: &str) -> Option<Estimate> {
    let path = dir.join(group.replace('/', "_")).join(function).join("new/estimates.json");
    let written = std::fs::metadata(&path).ok()?.modified().ok()?;
    if RUN_STARTED.get().is_none_or(|started| written < *started) {
        return None;
    }
    let json = std::fs::read_to_string(path).ok()?;
    let mean = &json[json.find("\"mean\"")?..];
    let number = |key: &str| -> Option<f64> {
        let value = &mean[mean.find(key)? + key.len()..];
        let end = value.find(|ch: char| !(ch.is_ascii_digit() || matches!(ch, '.' | 'e' | 'E' | '-' | '+')))?;
        value[..end].parse().ok()
    };
    Some(Estimate {
        value: number("\"point_estimate\":")?,
        low: number("\"lower_bound\":")?,
        high: number("\"upper_bound\":")?,
    })
}

/// Prints one figure as the line `scripts/bench.sh` collects into `target/bench/figures.md`:
/// `FIGURE<TAB>group<TAB>case<TAB>ours<TAB>anchor name<TAB>anchor<TAB>unit<TAB>target`, each
/// value written `value[low,high]`.
///
/// `ours` and the anchor are in `unit` (figures in a unit ending in `/s` are better higher,
/// all others lower); `anchor` is the same-run figure ours is compared with, doing the same
/// work. `target` is DESIGN.md's: `<=N` or `>=N` for `ours` itself, `ratio<=N` or `ratio>=N`
/// for ours / anchor, `-` for none. Prints nothing for a figure that was not measured.
pub fn print_figure(
    group: &str,
    case: &str,
    ours: Option<Estimate>,
    anchor: Option<(&str, Estimate)>,
    unit: &str,
    target: &str,
) {
    let Some(ours) = ours.filter(|e| e.value.is_finite()) else { return };
    let (anchor_name, anchor) = match anchor {
        Some((name, value)) if value.value.is_finite() => (name, value.field()),
        _ => ("-", "-".to_owned()),
    };
    println!("FIGURE\t{group}\t{case}\t{}\t{anchor_name}\t{anchor}\t{unit}\t{target}", ours.field());
}

/// Tells `scripts/bench.sh` that the figures of `group` were not measured, and why.
pub fn print_skipped(group: &str, reason: &str) {
    println!("SKIPPED\t{group}\t{reason}");
}
