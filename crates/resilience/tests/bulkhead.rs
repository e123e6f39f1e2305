//! The bulkhead as specified: the limit holds, the queue is bounded, waits end, partitions
//! isolate, and no place or queue slot leaks.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::FutureExt;
use harvester_resilience::bulkhead::{BulkheadConfig, BulkheadLayer, PartitionConfig, PartitionStats};
use harvester_resilience::{BoxError, BulkheadFull, Rejection};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt, service_fn};

/// The refusal inside `err`, which must be a bulkhead refusal.
fn bulkhead_full(err: &BoxError) -> &BulkheadFull {
    match Rejection::of(&**err) {
        Some(Rejection::BulkheadFull(full)) => full,
        other => panic!("expected BulkheadFull, got {other:?} ({err})"),
    }
}

/// A service that sleeps `work` per call and records how many calls ran at once.
#[derive(Clone, Default)]
struct Gauge {
    running: Arc<AtomicUsize>,
    max: Arc<AtomicUsize>,
    done: Arc<AtomicUsize>,
}

impl Gauge {
    fn service<Req: Send + 'static>(
        &self,
        work: Duration,
    ) -> impl Service<Req, Response = (), Error = BoxError, Future: Send + 'static> + Clone + Send + 'static {
        let gauge = self.clone();
        service_fn(move |_req: Req| {
            let gauge = gauge.clone();
            async move {
                let now = gauge.running.fetch_add(1, Ordering::SeqCst) + 1;
                gauge.max.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(work).await;
                gauge.running.fetch_sub(1, Ordering::SeqCst);
                gauge.done.fetch_add(1, Ordering::SeqCst);
                Ok::<_, BoxError>(())
            }
        })
    }
}

fn single(max_concurrent: usize, max_queue: usize, max_wait: Duration) -> BulkheadConfig {
    BulkheadConfig::single(PartitionConfig::new(max_concurrent).with_queue(max_queue, max_wait))
}

fn idle(max_concurrent: usize, max_queue: usize) -> PartitionStats {
    PartitionStats { max_concurrent, in_flight: 0, available: max_concurrent, queued: 0, max_queue }
}

#[tokio::test(start_paused = true)]
async fn never_exceeds_its_limit_under_a_storm_of_1000_calls() {
    let layer = BulkheadLayer::new(single(10, 1000, Duration::from_secs(3600))).expect("valid config");
    let gauge = Gauge::default();
    let svc = layer.layer(gauge.service::<()>(Duration::from_millis(10)));

    let calls: Vec<_> = (0..1000).map(|_| tokio::spawn(svc.clone().oneshot(()))).collect();
    for call in calls {
        call.await.expect("task completed").expect("every call gets a place within the wait");
    }

    assert_eq!(gauge.max.load(Ordering::SeqCst), 10);
    assert_eq!(gauge.done.load(Ordering::SeqCst), 1000);
    assert_eq!(layer.bulkhead().stats("default"), Some(idle(10, 1000)));
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_refuses_the_overflow_at_once() {
    let layer = BulkheadLayer::new(single(2, 3, Duration::from_secs(60))).expect("valid config");
    let mut svc = layer.layer(Gauge::default().service::<()>(Duration::from_secs(10)));

    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(svc.ready().await.expect("inner service ready").call(()));
    }
    let stats = layer.bulkhead().stats("default").expect("partition exists");
    assert_eq!((stats.in_flight, stats.queued), (2, 3));

    let start = Instant::now();
    let err = svc
        .ready()
        .await
        .expect("inner service ready")
        .call(())
        .now_or_never()
        .expect("refused without waiting")
        .expect_err("refused");
    assert_eq!(
        bulkhead_full(&err),
        &BulkheadFull { partition: "default".into(), max_concurrent: 2, waited: Duration::ZERO }
    );
    assert_eq!(Instant::now(), start);
}

#[tokio::test(start_paused = true)]
async fn a_queued_call_is_refused_after_max_wait() {
    let layer = BulkheadLayer::new(single(1, 5, Duration::from_millis(200))).expect("valid config");
    let mut svc = layer.layer(Gauge::default().service::<()>(Duration::from_secs(10)));
    let running = tokio::spawn(svc.ready().await.expect("inner service ready").call(()));

    let start = Instant::now();
    let err = svc.ready().await.expect("inner service ready").call(()).await.expect_err("refused");
    assert_eq!(Instant::now() - start, Duration::from_millis(200));
    assert_eq!(bulkhead_full(&err).waited, Duration::from_millis(200));

    running.abort();
    let _ = running.await;
    assert_eq!(layer.bulkhead().stats("default"), Some(idle(1, 5)));
}

#[tokio::test(start_paused = true)]
async fn a_queued_call_runs_as_soon_as_a_place_frees() {
    let layer = BulkheadLayer::new(single(1, 5, Duration::from_secs(60))).expect("valid config");
    let mut svc = layer.layer(service_fn(|_: ()| async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok::<_, BoxError>(Instant::now())
    }));
    let start = Instant::now();

    let first = tokio::spawn(svc.ready().await.expect("inner service ready").call(()));
    let second = tokio::spawn(svc.ready().await.expect("inner service ready").call(()));
    let third = tokio::spawn(svc.ready().await.expect("inner service ready").call(()));
    assert_eq!(first.await.expect("task completed").expect("call allowed") - start, Duration::from_millis(300));
    assert_eq!(second.await.expect("task completed").expect("call allowed") - start, Duration::from_millis(600));
    assert_eq!(third.await.expect("task completed").expect("call allowed") - start, Duration::from_millis(900));
}

#[tokio::test(start_paused = true)]
async fn queued_futures_not_yet_polled_keep_no_free_place_idle() {
    let layer = BulkheadLayer::new(single(1, 1, Duration::from_secs(60))).expect("valid config");
    let mut svc = layer.layer(service_fn(|_: ()| async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok::<_, BoxError>(Instant::now())
    }));
    let stats = || layer.bulkhead().stats("default").expect("partition exists");
    let start = Instant::now();

    // One call holds the place, one is queued but its future is not polled yet.
    let first = svc.ready().await.expect("inner service ready").call(());
    let queued = svc.ready().await.expect("inner service ready").call(());
    assert_eq!((stats().in_flight, stats().queued), (1, 1));

    // The place comes free while the queued future still sits unpolled: the next call takes
    // it at once instead of being refused with the queue full.
    drop(first);
    assert_eq!((stats().available, stats().queued), (1, 1));
    let second = svc.ready().await.expect("inner service ready").call(());
    assert_eq!((stats().in_flight, stats().queued), (1, 1));
    assert_eq!(second.await.expect("call allowed") - start, Duration::from_millis(100));

    // The queue bound counts the queued call: with the place taken, one more is refused at once.
    let third = svc.ready().await.expect("inner service ready").call(());
    let full = svc.ready().await.expect("inner service ready").call(()).now_or_never();
    let err = full.expect("refused without waiting").expect_err("refused");
    assert_eq!(bulkhead_full(&err).waited, Duration::ZERO);

    // Once polled, the queued call waits in the semaphore: the place given back is its own,
    // and a new call cannot take it.
    let waiter = tokio::spawn(queued);
    tokio::task::yield_now().await;
    drop(third);
    assert_eq!(stats().available, 0);
    let err = svc.ready().await.expect("inner service ready").call(()).await.expect_err("refused");
    assert_eq!(bulkhead_full(&err).waited, Duration::ZERO);
    assert_eq!(waiter.await.expect("task completed").expect("call allowed") - start, Duration::from_millis(200));
    assert_eq!(stats(), idle(1, 1));
}

#[tokio::test(start_paused = true)]
async fn max_wait_counts_from_the_call_not_the_first_poll() {
    let layer = BulkheadLayer::new(single(1, 2, Duration::from_secs(1))).expect("valid config");
    let mut svc = layer.layer(Gauge::default().service::<()>(Duration::from_secs(10)));
    let start = Instant::now();
    let _held = svc.ready().await.expect("inner service ready").call(());
    let late = svc.ready().await.expect("inner service ready").call(());
    let very_late = svc.ready().await.expect("inner service ready").call(());

    // First polled 600 ms after the call: refused 400 ms later, having waited the max wait.
    tokio::time::advance(Duration::from_millis(600)).await;
    let err = late.await.expect_err("refused");
    assert_eq!(Instant::now() - start, Duration::from_secs(1));
    assert_eq!(bulkhead_full(&err).waited, Duration::from_secs(1));

    // First polled after its deadline, with no place free: refused at once.
    tokio::time::advance(Duration::from_secs(1)).await;
    let err = very_late.now_or_never().expect("refused without waiting").expect_err("refused");
    assert_eq!(bulkhead_full(&err).waited, Duration::from_secs(1));
    assert_eq!(layer.bulkhead().stats("default").expect("partition exists").queued, 0);
}

#[tokio::test(start_paused = true)]
async fn partitions_isolate_and_unknown_names_go_to_the_default() {
    let layer =
        BulkheadLayer::partitioned(BulkheadConfig::default(), |name: &&'static str| Some(*name)).expect("valid config");
    let gauge = Gauge::default();
    let mut svc = layer.layer(gauge.service::<&'static str>(Duration::from_secs(10)));

    // Monitoring (5 places, queue 5) is saturated...
    let mut held = Vec::new();
    for _ in 0..10 {
        held.push(svc.ready().await.expect("inner service ready").call("monitoring"));
    }
    let err = svc.ready().await.expect("inner service ready").call("monitoring").await.expect_err("refused");
    assert_eq!(bulkhead_full(&err).partition, "monitoring");
    assert_eq!(bulkhead_full(&err).max_concurrent, 5);

    // ...while critical and regular keep every place, and a typo lands in regular.
    held.push(svc.ready().await.expect("inner service ready").call("critical"));
    held.push(svc.ready().await.expect("inner service ready").call("no-such-partition"));
    let bulkhead = layer.bulkhead();
    assert_eq!(bulkhead.stats("critical").expect("partition exists").in_flight, 1);
    assert_eq!(bulkhead.stats("regular").expect("partition exists").in_flight, 1);
    assert_eq!(bulkhead.stats("monitoring").expect("partition exists").in_flight, 5);
    assert_eq!(bulkhead.default_partition(), "regular");
}

#[tokio::test(start_paused = true)]
async fn dropped_failed_and_panicking_calls_give_back_places_and_queue_slots() {
    let layer = BulkheadLayer::new(single(3, 3, Duration::from_secs(60))).expect("valid config");
    let slow = Gauge::default().service::<()>(Duration::from_secs(10));
    let mut svc = layer.layer(slow);

    // Futures dropped before ever being polled, running and queued alike.
    let mut unpolled = Vec::new();
    for _ in 0..6 {
        unpolled.push(svc.ready().await.expect("inner service ready").call(()));
    }
    assert_eq!(layer.bulkhead().stats("default").expect("partition exists").queued, 3);
    drop(unpolled);
    assert_eq!(layer.bulkhead().stats("default"), Some(idle(3, 3)));

    // Futures cancelled while running or waiting in the queue.
    let tasks: Vec<_> = (0..6).map(|_| tokio::spawn(svc.clone().oneshot(()))).collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(layer.bulkhead().stats("default").expect("partition exists").in_flight, 3);
    for task in &tasks {
        task.abort();
    }
    for task in tasks {
        assert!(task.await.expect_err("refused").is_cancelled());
    }
    assert_eq!(layer.bulkhead().stats("default"), Some(idle(3, 3)));

    // Calls that fail and calls that panic.
    let failing = layer.layer(service_fn(|fail: bool| async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        if fail { Err::<(), BoxError>("upstream failed".into()) } else { panic!("handler bug") }
    }));
    let failed = failing.clone().oneshot(true).await.expect_err("refused");
    assert!(Rejection::of(&*failed).is_none(), "inner errors pass through unchanged");
    let panicked = tokio::spawn(failing.oneshot(false)).await.expect_err("refused");
    assert!(panicked.is_panic());

    assert_eq!(layer.bulkhead().stats("default"), Some(idle(3, 3)));
}

#[tokio::test(start_paused = true)]
async fn clones_share_the_partitions() {
    let layer = BulkheadLayer::new(single(2, 0, Duration::ZERO)).expect("valid config");
    let svc = layer.layer(Gauge::default().service::<()>(Duration::from_secs(10)));
    let (mut a, mut b, mut c) = (svc.clone(), svc.clone(), svc);

    let _first = a.ready().await.expect("inner service ready").call(());
    let _second = b.ready().await.expect("inner service ready").call(());
    let err = c.ready().await.expect("inner service ready").call(()).await.expect_err("refused");
    assert_eq!(bulkhead_full(&err).waited, Duration::ZERO);
}

#[test]
fn config_refuses_out_of_range_values_naming_the_field() {
    let mut zero = BulkheadConfig::default();
    zero.partitions.get_mut("critical").expect("a seed partition").max_concurrent = 0;
    assert_eq!(zero.validate().expect_err("refused").field, "bulkhead.partitions.max_concurrent");

    let unknown_default = BulkheadConfig { default_partition: "bulk".into(), ..BulkheadConfig::default() };
    assert_eq!(unknown_default.validate().expect_err("refused").field, "bulkhead.default_partition");

    let empty = BulkheadConfig { partitions: Default::default(), ..BulkheadConfig::default() };
    assert_eq!(BulkheadLayer::new(empty).expect_err("refused").field, "bulkhead.partitions");

    let seed = BulkheadConfig::default();
    let widths: Vec<_> = seed.partitions.iter().map(|(name, p)| (name.as_str(), p.max_concurrent)).collect();
    assert_eq!(widths, [("critical", 10), ("monitoring", 5), ("regular", 50)]);
}
