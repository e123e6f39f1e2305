//! Throughput of [`StreamProcessor`] with three trivial stages against a hand-rolled tokio mpsc
//! pipeline and a `futures` `buffered` chain: `cargo bench -p harvester-pipeline --bench throughput`.
//! After criterion's report it prints records/s from this run's means (with their confidence
//! intervals), each case against the hand-rolled pipeline of its kind, as `FIGURE` lines for
//! `scripts/bench.sh`.

#[path = "../../../benches/support/figures.rs"]
mod figures;

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use futures::{StreamExt, stream};
use harvester_pipeline::processor::{Stage, StageOutcome, StreamProcessor};
use harvester_pipeline::sinks::CountingSink;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

/// Records pushed through per iteration.
const N: u64 = 100_000;
/// Capacity of every queue, ours and the baseline's.
const QUEUE: usize = 1_024;
/// Sink batch size (ours) and `recv_many` limit (baseline).
const BATCH: usize = 1_000;

/// One benchmark case: starts a run and resolves to its measured time.
type Case = fn() -> std::pin::Pin<Box<dyn Future<Output = Duration>>>;

/// Records per message in the batched cases (ours: per `send_all` call; the baseline: per chunk).
const CHUNK: u64 = 64;

/// Sends N records through our processor one `send` at a time (or in `send_all` groups of
/// [`CHUNK`] when `batched`); times the first send to `shutdown` returning.
async fn run_ours(workers: usize, batched: bool) -> Duration {
    let count = Arc::new(AtomicUsize::new(0));
    let stage = |name: &'static str| Stage::new(name, |r: u64| async move { StageOutcome::Keep(r) }).workers(workers);
    let processor = StreamProcessor::builder()
        .stage(stage("a"))
        .stage(stage("b"))
        .stage(stage("c"))
        .queue_size(QUEUE)
        .batch_size(BATCH)
        .sink(CountingSink::new(count.clone()))
        .build()
        .expect("valid configuration");
    let sender = processor.sender();
    let started = Instant::now();
    if batched {
        for first in (0..N).step_by(CHUNK as usize) {
            sender.send_all((first..(first + CHUNK).min(N)).collect()).await.expect("processor open");
        }
    } else {
        for r in 0..N {
            sender.send(r).await.expect("processor open");
        }
    }
    drop(sender);
    let report = processor.shutdown(Duration::from_secs(60)).await;
    let elapsed = started.elapsed();
    assert_eq!(count.load(Relaxed), N as usize);
    assert_eq!(report.output, N);
    elapsed
}

/// One task per stage joined by bounded mpsc channels of the same size, counting at the end.
async fn run_mpsc() -> Duration {
    let count = Arc::new(AtomicUsize::new(0));
    let (input, mut rx) = mpsc::channel::<u64>(QUEUE);
    let mut stages = Vec::new();
    for _ in 0..3 {
        let (tx, next_rx) = mpsc::channel::<u64>(QUEUE);
        let mut stage_rx = std::mem::replace(&mut rx, next_rx);
        stages.push(tokio::spawn(async move {
            while let Some(r) = stage_rx.recv().await {
                let kept = async move { r }.await;
                if tx.send(kept).await.is_err() {
                    break;
                }
            }
        }));
    }
    let counter = count.clone();
    let sink = tokio::spawn(async move {
        let mut batch = Vec::with_capacity(BATCH);
        while rx.recv_many(&mut batch, BATCH).await > 0 {
            counter.fetch_add(batch.len(), Relaxed);
            batch.clear();
        }
    });
    let started = Instant::now();
    for r in 0..N {
        input.send(r).await.expect("pipeline open");
    }
    drop(input);
    sink.await.expect("sink task");
    let elapsed = started.elapsed();
    for stage in stages {
        stage.await.expect("stage task");
    }
    assert_eq!(count.load(Relaxed), N as usize);
    elapsed
}

/// The batched anchor: one task per stage passing `Vec` chunks of [`CHUNK`] records through
/// bounded mpsc channels holding the same number of records as ours.
async fn run_mpsc_batched() -> Duration {
    let count = Arc::new(AtomicUsize::new(0));
    let chunks = QUEUE / CHUNK as usize;
    let (input, mut rx) = mpsc::channel::<Vec<u64>>(chunks);
    let mut stages = Vec::new();
    for _ in 0..3 {
        let (tx, next_rx) = mpsc::channel::<Vec<u64>>(chunks);
        let mut stage_rx = std::mem::replace(&mut rx, next_rx);
        stages.push(tokio::spawn(async move {
            while let Some(chunk) = stage_rx.recv().await {
                let mut kept = Vec::with_capacity(chunk.len());
                for r in chunk {
                    kept.push(async move { r }.await);
                }
                if tx.send(kept).await.is_err() {
                    break;
                }
            }
        }));
    }
    let counter = count.clone();
    let sink = tokio::spawn(async move {
        while let Some(chunk) = rx.recv().await {
            counter.fetch_add(chunk.len(), Relaxed);
        }
    });
    let started = Instant::now();
    for first in (0..N).step_by(CHUNK as usize) {
        input.send((first..(first + CHUNK).min(N)).collect()).await.expect("pipeline open");
    }
    drop(input);
    sink.await.expect("sink task");
    let elapsed = started.elapsed();
    for stage in stages {
        stage.await.expect("stage task");
    }
    assert_eq!(count.load(Relaxed), N as usize);
    elapsed
}

/// Three `buffered(64)` steps in one task, then a count.
async fn run_futures() -> Duration {
    let started = Instant::now();
    let count = stream::iter(0..N)
        .map(|r| async move { r })
        .buffered(64)
        .map(|r| async move { r })
        .buffered(64)
        .map(|r| async move { r })
        .buffered(64)
        .fold(0usize, |n, r| async move {
            black_box(r);
            n + 1
        })
        .await;
    let elapsed = started.elapsed();
    assert_eq!(count, N as usize);
    elapsed
}

fn bench(c: &mut Criterion, runtime: &Runtime) {
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(N));
    let cases: [(&'static str, Case); 7] = [
        ("ours_w1", || Box::pin(run_ours(1, false))),
        ("ours_w2", || Box::pin(run_ours(2, false))),
        ("mpsc_baseline", || Box::pin(run_mpsc())),
        ("futures_buffered", || Box::pin(run_futures())),
        ("ours_batched_w1", || Box::pin(run_ours(1, true))),
        ("ours_batched_w2", || Box::pin(run_ours(2, true))),
        ("mpsc_batched_baseline", || Box::pin(run_mpsc_batched())),
    ];
    for (id, run) in cases {
        group.bench_function(id, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| runtime.block_on(run())).sum::<Duration>());
        });
    }
    group.finish();
}

fn main() {
    figures::begin_run();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10)
        .configure_from_args();
    bench(&mut c, &runtime);
    c.final_summary();

    let Some(dir) = figures::criterion_dir() else { return };
    // Criterion's mean time per iteration (N records) as records/s.
    let rate = |id: &str| figures::mean_ns(&dir, "pipeline", id).map(|e| e.map(|ns| N as f64 * 1e9 / ns));
    // DESIGN.md's targets: ≥ 1 M records/s one record a message, ≥ 5 M with micro-batching.
    for (id, target) in [
        ("ours_w1", ">=1000000"),
        ("ours_w2", ">=1000000"),
        ("futures_buffered", "-"),
        ("ours_batched_w1", ">=5000000"),
        ("ours_batched_w2", ">=5000000"),
    ] {
        let anchor_id = anchor_of(id);
        let anchor = rate(anchor_id).map(|anchor| (anchor_id, anchor));
        figures::print_figure("pipeline", id, rate(id), anchor, "records/s", target);
    }
}

/// The hand-rolled pipeline each case is compared with: per-record cases with the per-record
/// one, batched cases with the batched one.
fn anchor_of(id: &str) -> &'static str {
    if id.contains("batched") { "mpsc_batched_baseline" } else { "mpsc_baseline" }
}
