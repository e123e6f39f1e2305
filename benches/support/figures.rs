//! The figures every bench of the workspace prints after criterion's report, in the form
//! `scripts/bench.sh` collects into `target/bench/figures.md`, and where criterion's own
//! estimates are read back from. Each bench includes this file with `#[path]`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

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

/// Mean ns of `group/function` from its `new/estimates.json`.
pub fn mean_ns(dir: &Path, group: &str, function: &str) -> Option<f64> {
    let path = dir.join(group.replace('/', "_")).join(function).join("new/estimates.json");
    let json = std::fs::read_to_string(path).ok()?;
    let mean = &json[json.find("\"mean\"")?..];
    let value = &mean[mean.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = value.find(|ch: char| !(ch.is_ascii_digit() || matches!(ch, '.' | 'e' | 'E' | '-' | '+')))?;
    value[..end].parse().ok()
}

/// Prints one figure as the line `scripts/bench.sh` collects into `target/bench/figures.md`:
/// `FIGURE<TAB>group<TAB>case<TAB>ours<TAB>anchor name<TAB>anchor<TAB>unit<TAB>target`.
///
/// `ours` and the anchor are in `unit` (figures in a unit ending in `/s` are better higher,
/// all others lower); `anchor` is the same-run figure ours is compared with. `target` is
/// DESIGN.md's: `<=N` or `>=N` for `ours` itself, `ratio<=N` or `ratio>=N` for ours / anchor,
/// `-` for none. Prints nothing for a figure that was not measured (NaN).
pub fn print_figure(group: &str, case: &str, ours: f64, anchor: Option<(&str, f64)>, unit: &str, target: &str) {
    if !ours.is_finite() {
        return;
    }
    let (anchor_name, anchor) = match anchor {
        Some((name, value)) if value.is_finite() => (name, value.to_string()),
        _ => ("-", "-".to_owned()),
    };
    println!("FIGURE\t{group}\t{case}\t{ours}\t{anchor_name}\t{anchor}\t{unit}\t{target}");
}

/// Tells `scripts/bench.sh` that the figures of `group` were not measured, and why.
pub fn print_skipped(group: &str, reason: &str) {
    println!("SKIPPED\t{group}\t{reason}");
}
