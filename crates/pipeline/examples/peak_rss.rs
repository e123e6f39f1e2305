//! Streams N `u64` records (first argument, default 1 000 000) through three trivial stages into
//! a counting sink, then prints records/s and the peak resident set size (VmHWM):
//! `cargo run --release -p harvester-pipeline --example peak_rss -- 10000000`. A second
//! argument `batched` sends records in groups of 64 with `send_all` instead of one by one.
//! The last line is the peak as a `FIGURE` line for `scripts/bench.sh`.

#[path = "../../../benches/support/figures.rs"]
mod figures;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use harvester_pipeline::processor::{Stage, StageOutcome, StreamProcessor};
use harvester_pipeline::sinks::CountingSink;

/// A field of /proc/self/status such as `VmHWM`, as written there (e.g. "5120 kB").
fn proc_status(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| line.strip_prefix(field)?.strip_prefix(':').map(|v| v.trim().to_owned()))
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = match std::env::args().nth(1) {
        Some(arg) => arg.replace('_', "").parse()?,
        None => 1_000_000,
    };
    let batched = std::env::args().nth(2).is_some_and(|arg| arg == "batched");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let count = Arc::new(AtomicUsize::new(0));
    println!("before: VmRSS {}, VmHWM {}", proc_status("VmRSS"), proc_status("VmHWM"));
    let (elapsed, report) = runtime.block_on(async {
        let stage = |name: &'static str| Stage::new(name, |r: u64| async move { StageOutcome::Keep(r) });
        let processor = StreamProcessor::builder()
            .stage(stage("a"))
            .stage(stage("b"))
            .stage(stage("c"))
            .sink(CountingSink::new(count.clone()))
            .build()?;
        let sender = processor.sender();
        let started = Instant::now();
        if batched {
            for first in (0..n).step_by(64) {
                if sender.send_all((first..(first + 64).min(n)).collect()).await.is_err() {
                    return Err("the processor stopped taking input".into());
                }
            }
        } else {
            for r in 0..n {
                sender.send(r).await?;
            }
        }
        drop(sender);
        let report = processor.shutdown(Duration::from_secs(600)).await;
        Ok::<_, Box<dyn std::error::Error>>((started.elapsed(), report))
    })?;
    let counted = count.load(Relaxed);
    let mode = if batched { "send_all of 64" } else { "one send per record" };
    println!(
        "records {n} ({mode}), counted {counted}, output {}, elapsed {:.3} s, {:.0} records/s",
        report.output,
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
    let peak = proc_status("VmHWM");
    println!("after: VmRSS {}, peak VmHWM {peak}", proc_status("VmRSS"));
    if counted as u64 != n {
        return Err(format!("counted {counted} of {n}").into());
    }
    // For scripts/bench.sh, which sets the anchor: the same mode's run with fewer records.
    if let Some(kb) = peak.strip_suffix(" kB").and_then(|kb| kb.parse::<u64>().ok()) {
        figures::print_figure(
            "pipeline/peak_rss",
            &format!("{mode}, {n} records"),
            Some(figures::Estimate::exact(kb as f64)),
            None,
            "kB",
            "-",
        );
    }
    Ok(())
}
