//! The resizable concurrency limit: grows at once, shrinks without taking permits back, never
//! loses work, and keeps its accounting under any sequence of operations.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harvester_scaler::{Actuator, ConcurrencyLimit, ConcurrencyPermit};
use proptest::prelude::*;

#[tokio::test(start_paused = true)]
async fn growing_admits_waiters_at_once() {
    let limit = ConcurrencyLimit::new(1).expect("valid limit");
    let _held = limit.acquire().await;
    let waiter = tokio::spawn({
        let limit = limit.clone();
        async move {
            let _permit = limit.acquire().await;
        }
    });
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished());
    limit.set_limit(2).expect("valid limit");
    tokio::time::timeout(Duration::from_secs(1), waiter).await.expect("admitted at once").expect("no panic");
}

/// Runs `count` tasks of 10 s each under `limit`; returns (finished, most running at once).
fn spawn_work(
    limit: &ConcurrencyLimit,
    count: usize,
    running: &Arc<AtomicUsize>,
    peak: &Arc<AtomicUsize>,
    finished: &Arc<AtomicUsize>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..count)
        .map(|_| {
            let (limit, running, peak, finished) = (limit.clone(), running.clone(), peak.clone(), finished.clone());
            tokio::spawn(async move {
                let _permit = limit.acquire().await;
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(10)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                finished.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn shrinking_never_drops_work_and_caps_new_work() {
    // Given 8 tasks holding all 8 permits
    let limit = ConcurrencyLimit::new(8).expect("valid limit");
    let (running, first_peak, finished) = (Arc::default(), Arc::default(), Arc::default());
    let first = spawn_work(&limit, 8, &running, &first_peak, &finished);
    while limit.in_flight() < 8 {
        tokio::task::yield_now().await;
    }
    // When the limit shrinks to 2 and 6 more tasks queue
    limit.set_limit(2).expect("valid limit");
    assert_eq!((limit.in_flight(), limit.pending_shrink(), limit.available()), (8, 6, 0));
    let second_peak = Arc::new(AtomicUsize::new(0));
    let second_running = Arc::new(AtomicUsize::new(0));
    let second = spawn_work(&limit, 6, &second_running, &second_peak, &finished);
    // Then every task finishes: the 8 kept their permits to the end
    for task in first.into_iter().chain(second) {
        task.await.expect("no panic");
    }
    assert_eq!(finished.load(Ordering::SeqCst), 14);
    assert_eq!(first_peak.load(Ordering::SeqCst), 8);
    // And the queued work never ran more than 2 at a time
    assert_eq!(second_peak.load(Ordering::SeqCst), 2);
    assert_eq!((limit.limit(), limit.available(), limit.pending_shrink(), limit.in_flight()), (2, 2, 0, 0));
}

#[tokio::test]
async fn limit_is_an_actuator() {
    let limit = ConcurrencyLimit::new(4).expect("valid limit");
    limit.apply(7).await.expect("applied");
    assert_eq!(limit.current().await.expect("current"), 7);
    assert_eq!(limit.available(), 7);
}

#[derive(Debug, Clone)]
enum Op {
    Acquire,
    Release(usize),
    SetLimit(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![Just(Op::Acquire), (0usize..16).prop_map(Op::Release), (0usize..12).prop_map(Op::SetLimit)]
}

proptest! {
    /// Permits free + permits held - permits still to retire = the limit, after every step; no
    /// permit is free while some are still to retire; and once everything is returned, exactly
    /// the limit is free.
    #[test]
    fn accounting_holds_under_any_sequence(initial in 0usize..10, ops in proptest::collection::vec(op(), 0..200)) {
        let limit = ConcurrencyLimit::new(initial).expect("valid limit");
        let mut held = Vec::new();
        for op in ops {
            match op {
                Op::Acquire => {
                    // Admitted exactly when fewer than the limit are held: never beyond it.
                    let room = held.len() < limit.limit();
                    let admitted = limit.try_acquire();
                    prop_assert_eq!(admitted.is_some(), room);
                    held.extend(admitted);
                }
                Op::Release(index) if !held.is_empty() => {
                    let index = index % held.len();
                    drop(held.swap_remove(index));
                }
                Op::Release(_) => {}
                Op::SetLimit(n) => limit.set_limit(n).expect("valid limit"),
            }
            prop_assert_eq!(limit.in_flight(), held.len());
            prop_assert_eq!(limit.available() + held.len() - limit.pending_shrink(), limit.limit());
            prop_assert!(limit.pending_shrink() == 0 || limit.available() == 0);
            prop_assert!(limit.pending_shrink() <= held.len());
        }
        drop(held);
        prop_assert_eq!((limit.available(), limit.pending_shrink(), limit.in_flight()), (limit.limit(), 0, 0));
    }
}

/// Waits until `flag` reads `value`: spinning a little, then yielding (on a busy machine the
/// other thread may need this core).
fn spin_until(flag: &AtomicUsize, value: usize) {
    let mut spins = 0;
    while flag.load(Ordering::Acquire) != value {
        if spins < 100 {
            spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

#[test]
fn shrink_racing_a_return_never_admits_new_work_beyond_the_limit() {
    // Given a permit returned on another thread just as the limit shrinks from 1 to 0 (the
    // two threads released together, the shrink delayed by 0 to 63 spins to sweep the
    // window where the permit has read no debt but is not yet back)
    const ROUNDS: usize = 20_000;
    let slot: Arc<Mutex<Option<ConcurrencyPermit>>> = Arc::default();
    let [handed, taken, go, returned] = [(); 4].map(|()| Arc::new(AtomicUsize::new(0)));
    let returner = std::thread::spawn({
        let (slot, handed, taken, go, returned) =
            (slot.clone(), handed.clone(), taken.clone(), go.clone(), returned.clone());
        move || {
            for round in 1..=ROUNDS {
                spin_until(&handed, round);
                let permit = slot.lock().expect("slot lock").take();
                taken.store(round, Ordering::Release);
                spin_until(&go, round);
                drop(permit);
                returned.store(round, Ordering::Release);
            }
        }
    });
    let mut admitted = 0;
    for round in 1..=ROUNDS {
        let limit = ConcurrencyLimit::new(1).expect("valid limit");
        *slot.lock().expect("slot lock") = limit.try_acquire();
        handed.store(round, Ordering::Release);
        spin_until(&taken, round);
        // When the limit shrinks to 0 while the permit comes back
        go.store(round, Ordering::Release);
        for _ in 0..round % 64 {
            std::hint::spin_loop();
        }
        limit.set_limit(0).expect("valid limit");
        spin_until(&returned, round);
        // Then nobody new gets a permit: the returned one retired
        if limit.try_acquire().is_some() {
            admitted += 1;
        }
    }
    returner.join().expect("no panic");
    assert_eq!(admitted, 0, "limit 0, nothing in flight, yet a new permit was granted {admitted} times");
}

#[test]
fn accounting_holds_while_threads_race_resizes() {
    // Given 4 threads taking and returning permits as fast as they can
    let limit = ConcurrencyLimit::new(8).expect("valid limit");
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (limit, stop) = (limit.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(permit) = limit.try_acquire() {
                        std::hint::spin_loop();
                        drop(permit);
                    }
                }
            })
        })
        .collect();
    // When the limit changes 100 000 times meanwhile
    for i in 0..100_000 {
        limit.set_limit([0, 3, 8, 1, 5][i % 5]).expect("valid limit");
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().expect("no panic");
    }
    // Then, everything returned, exactly the limit is free and nothing is left to retire
    assert_eq!((limit.limit(), limit.in_flight(), limit.available(), limit.pending_shrink()), (5, 0, 5, 0));
}
