//! The rate limiter as specified: GCRA exactness, keys, eviction, both modes, shared state.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Context;
use std::time::Duration;

use futures::FutureExt;
use harvester_resilience::rate_limit::{
    HostKey, KeyedRateLimiter, Mode, Quota, RateLimitConfig, RateLimitLayer, RateLimiter,
};
use harvester_resilience::{BoxError, RateLimited, Rejection};
use proptest::prelude::*;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt, service_fn};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The refusal inside `err`, which must be a rate-limit refusal.
fn rate_limited(err: &BoxError) -> &RateLimited {
    match Rejection::of(&**err) {
        Some(Rejection::RateLimited(r)) => r,
        other => panic!("expected RateLimited, got {other:?} ({err})"),
    }
}

/// A service answering the time at which it was called.
fn clock_service<Req>() -> impl Service<Req, Response = Instant, Error = BoxError, Future: Send> + Clone + Send {
    service_fn(|_req: Req| async { Ok::<_, BoxError>(Instant::now()) })
}

fn get(url: &str) -> http::Request<()> {
    http::Request::get(url).body(()).expect("valid test request")
}

#[tokio::test(start_paused = true)]
async fn burst_passes_then_the_next_call_is_refused_with_the_exact_retry_in() {
    let layer =
        RateLimitLayer::direct(Quota::per_second(10).expect("valid quota").allow_burst(5).expect("valid burst"));
    let mut svc = layer.layer(clock_service::<()>());

    for _ in 0..5 {
        svc.ready().await.expect("inner service ready").call(()).await.expect("within the burst");
    }
    let err = svc.ready().await.expect("inner service ready").call(()).await.expect_err("refused");

    // TAT = 5 × 100 ms, tolerance 4 × 100 ms: the next cell is due at 100 ms.
    assert_eq!(rate_limited(&err), &RateLimited { retry_in: ms(100), key: None });
    tokio::time::advance(ms(99)).await;
    assert!(svc.ready().await.expect("inner service ready").call(()).await.is_err(), "1 ms early");
    tokio::time::advance(ms(1)).await;
    assert!(svc.ready().await.expect("inner service ready").call(()).await.is_ok(), "due");
}

#[tokio::test(start_paused = true)]
async fn sustained_rate_over_time_is_the_quota() {
    let mut svc =
        RateLimitLayer::direct(Quota::per_second(10).expect("valid quota").allow_burst(1).expect("valid burst"))
            .layer(clock_service());

    // A call every 10 ms for 10 s: one in ten may go.
    let mut allowed = 0;
    for _ in 0..1000 {
        if svc.ready().await.expect("inner service ready").call(()).await.is_ok() {
            allowed += 1;
        }
        tokio::time::advance(ms(10)).await;
    }
    assert_eq!(allowed, 100);
}

#[tokio::test(start_paused = true)]
async fn keys_are_isolated_and_hosts_compare_without_case_or_port() {
    let mut svc = RateLimitLayer::per_host(Quota::per_minute(1).expect("valid quota")).layer(clock_service());

    svc.ready().await.expect("inner service ready").call(get("http://a.example/1")).await.expect("allowed");
    let err = svc
        .ready()
        .await
        .expect("inner service ready")
        .call(get("http://A.Example:8080/2"))
        .await
        .expect_err("refused");
    assert_eq!(rate_limited(&err), &RateLimited { retry_in: Duration::from_secs(60), key: Some("a.example".into()) });

    // Another host has its own quota, and so does a request known by its Host header only.
    svc.ready().await.expect("inner service ready").call(get("http://b.example/1")).await.expect("allowed");
    let origin_form = http::Request::get("/1").header("host", "c.example:443").body(()).expect("valid test request");
    svc.ready().await.expect("inner service ready").call(origin_form).await.expect("allowed");
    let again = http::Request::get("/2").header("host", "C.example").body(()).expect("valid test request");
    assert!(svc.ready().await.expect("inner service ready").call(again).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn keyed_layer_takes_any_key_closure() {
    let layer = RateLimitLayer::keyed(Quota::per_second(1).expect("valid quota"), |client: &u32| Some(*client));
    let mut svc = layer.layer(clock_service());

    svc.ready().await.expect("inner service ready").call(7).await.expect("allowed");
    let err = svc.ready().await.expect("inner service ready").call(7).await.expect_err("refused");
    assert_eq!(rate_limited(&err).key.as_deref(), Some("7"));
    svc.ready().await.expect("inner service ready").call(8).await.expect("allowed");
}

#[tokio::test(start_paused = true)]
async fn keyed_layer_lets_requests_without_a_key_through_unlimited() {
    let layer = RateLimitLayer::keyed(Quota::per_second(1).expect("valid quota"), |client: &u32| {
        (*client != 0).then_some(*client)
    });
    let mut svc = layer.layer(clock_service());

    for _ in 0..5 {
        svc.ready().await.expect("inner service ready").call(0).await.expect("keyless: never limited");
    }
    svc.ready().await.expect("inner service ready").call(7).await.expect("allowed");
    svc.ready().await.expect("inner service ready").call(7).await.expect_err("refused");
}

#[tokio::test(start_paused = true)]
async fn stale_keys_are_evicted_and_the_table_never_exceeds_its_bound() {
    // One cell per 100 ms, burst 2: a key is stale 200 ms after its last call at most.
    let quota = Quota::per_second(10).expect("valid quota").allow_burst(2).expect("valid burst");
    let limiter = KeyedRateLimiter::<String>::new(quota).with_max_keys(100).expect("valid max_keys");

    for i in 0..100 {
        limiter.check_key(format!("old-{i}").as_str()).expect("allowed");
    }
    assert_eq!(limiter.len(), 100);

    // Full of live keys: a new key waits for the first one to go stale (TAT = 100 ms).
    let refused = limiter.check_key("new-0").expect_err("refused");
    assert_eq!(refused.retry_in(), ms(100));
    assert_eq!(limiter.len(), 100);

    tokio::time::advance(ms(100)).await;
    for i in 0..100 {
        limiter.check_key(format!("new-{i}").as_str()).expect("stale keys make room");
        assert!(limiter.len() <= 100);
    }
    assert_eq!(limiter.len(), 100);

    // An evicted key starts over exactly like a key that was never seen: full burst.
    tokio::time::advance(ms(200)).await;
    assert_eq!(limiter.evict_stale(), 100);
    assert!(limiter.is_empty());
    limiter.check_key("old-0").expect("allowed");
    limiter.check_key("old-0").expect("allowed");
    assert!(limiter.check_key("old-0").is_err());
}

/// A caller that read the clock before another thread's sweep, and decides after it, must
/// not find the key it checks forgotten and start it over: eviction never moves a key back.
#[test]
fn a_key_evicted_at_a_later_reading_is_not_recreated_fresh_at_an_earlier_one() {
    // One cell per 100 ms, burst 2; at most two keys.
    let quota = Quota::per_second(10).expect("valid quota").allow_burst(2).expect("valid burst");
    let limiter = KeyedRateLimiter::<String>::new(quota).with_max_keys(2).expect("valid max_keys");
    let mut allowed = Vec::new();
    let mut check = |key: &str, now_ms: u64| {
        let ok = limiter.check_key_at_nanos(key, now_ms * 1_000_000).is_ok();
        if ok && key == "a" {
            allowed.push(now_ms * 1_000_000);
        }
        ok
    };

    // "a" takes its burst at 0 ms (TAT 200 ms); "b" fills the table.
    assert!(check("a", 0) && check("a", 0) && !check("a", 0));
    assert!(check("b", 0));
    // A new key at 200 ms sweeps the full table: "a" (TAT 200 ms) is stale then, and dropped.
    assert!(check("c", 200));
    // A caller still holding a reading of 150 ms re-creates "a": as of 150 ms its old state
    // allows one cell (at 100 ms), not a fresh burst of two.
    for _ in 0..3 {
        check("a", 150);
    }
    assert_eq!(allowed, [0, 0, 150_000_000]);
    assert_within_quota(&allowed, 10, 1_000_000_000, 2);
}

#[tokio::test(start_paused = true)]
async fn wait_mode_waits_the_exact_time_and_refuses_beyond_max_wait() {
    let layer = RateLimitLayer::direct(Quota::per_second(1).expect("valid quota")).wait_up_to(Duration::from_secs(3));
    let mut svc = layer.layer(clock_service::<()>());
    let start = Instant::now();

    // Four calls at once: the first goes now, the next three reserve cells 1 s apart.
    let mut calls = Vec::new();
    for _ in 0..4 {
        calls.push(tokio::spawn(svc.ready().await.expect("inner service ready").call(())));
    }
    // The fifth would wait 4 s > 3 s: refused at once.
    let err = svc
        .ready()
        .await
        .expect("inner service ready")
        .call(())
        .now_or_never()
        .expect("refused without waiting")
        .expect_err("refused");
    assert_eq!(rate_limited(&err).retry_in, Duration::from_secs(4));

    for (i, call) in calls.into_iter().enumerate() {
        let called_at = call.await.expect("task completed").expect("call allowed");
        assert_eq!(called_at - start, Duration::from_secs(i as u64), "call {i}");
    }
}

#[tokio::test(start_paused = true)]
async fn concurrent_waiters_are_spaced_at_the_rate() {
    let layer =
        RateLimitLayer::direct(Quota::per_second(50).expect("valid quota").allow_burst(5).expect("valid burst"))
            .wait_up_to(ms(10_000));
    let start = Instant::now();
    let svc = layer.layer(clock_service::<()>());

    let calls: Vec<_> = (0..100).map(|_| tokio::spawn(svc.clone().oneshot(()))).collect();
    let mut times = Vec::new();
    for call in calls {
        times.push(call.await.expect("task completed").expect("call allowed") - start);
    }
    times.sort();
    // The burst of 5 at once, then one every 20 ms.
    for (i, t) in times.iter().enumerate() {
        let expected = if i < 5 { Duration::ZERO } else { ms(20 * (i as u64 - 4)) };
        assert_eq!(*t, expected, "call {i}");
    }
}

#[tokio::test(start_paused = true)]
async fn eight_clones_and_many_tasks_share_one_rate() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = {
        let calls = Arc::clone(&calls);
        service_fn(move |_: ()| {
            calls.fetch_add(1, Ordering::Relaxed);
            async { Ok::<_, BoxError>(()) }
        })
    };
    let svc =
        RateLimitLayer::direct(Quota::per_second(100).expect("valid quota").allow_burst(10).expect("valid burst"))
            .layer(counted);
    let deadline = Instant::now() + Duration::from_secs(2);

    let mut tasks = Vec::new();
    for _clone in 0..8 {
        let svc = svc.clone();
        for _task in 0..16 {
            let mut svc = svc.clone();
            tasks.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    if let Err(err) = svc.ready().await.expect("inner service ready").call(()).await {
                        tokio::time::sleep(rate_limited(&err).retry_in).await;
                    }
                }
            }));
        }
    }
    for task in tasks {
        task.await.expect("task completed");
    }
    // Over [0, 2 s): the burst of 10, then one every 10 ms. Per-clone state would give 8×.
    assert_eq!(calls.load(Ordering::Relaxed), 10 + 199);
}

#[tokio::test(start_paused = true)]
async fn readiness_takes_no_cell() {
    let svc = RateLimitLayer::direct(Quota::per_minute(2).expect("valid quota")).layer(clock_service::<()>());

    // Frameworks clone a service, poll it ready and sometimes drop it without calling.
    for _ in 0..10 {
        let mut clone = svc.clone();
        let waker = futures::task::noop_waker();
        assert!(clone.poll_ready(&mut Context::from_waker(&waker)).is_ready());
    }
    let mut svc = svc;
    svc.ready().await.expect("inner service ready").call(()).await.expect("allowed");
    svc.ready().await.expect("inner service ready").call(()).await.expect("allowed");
    assert!(svc.ready().await.expect("inner service ready").call(()).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn inner_errors_pass_through_unchanged() {
    let failing = service_fn(|_: ()| async { Err::<(), BoxError>("upstream said no".into()) });
    let mut svc = RateLimitLayer::direct(Quota::per_second(1).expect("valid quota")).layer(failing);
    let err = svc.ready().await.expect("inner service ready").call(()).await.expect_err("refused");
    assert!(Rejection::of(&*err).is_none());
    assert_eq!(err.to_string(), "upstream said no");
}

#[tokio::test(start_paused = true)]
async fn config_builds_the_layer_it_describes() {
    let config =
        RateLimitConfig { rate: 2, burst: Some(1), mode: Mode::Wait, max_wait: ms(600), ..RateLimitConfig::default() };
    let svc = RateLimitLayer::from_config(config).expect("valid config").layer(clock_service());
    let start = Instant::now();

    assert_eq!(svc.clone().oneshot(get("http://a.example/")).await.expect("allowed"), start);
    assert_eq!(svc.clone().oneshot(get("http://a.example/")).await.expect("allowed"), start + ms(500));
    assert_eq!(svc.clone().oneshot(get("http://b.example/")).await.expect("allowed"), start + ms(500));

    for (bad, field) in [
        (RateLimitConfig { rate: 0, ..Default::default() }, "rate_limit.rate"),
        (RateLimitConfig { burst: Some(0), ..Default::default() }, "rate_limit.burst"),
        (RateLimitConfig { per: Duration::ZERO, ..Default::default() }, "rate_limit.per"),
        (RateLimitConfig { mode: Mode::Wait, max_wait: Duration::ZERO, ..Default::default() }, "rate_limit.max_wait"),
        (RateLimitConfig { max_keys: 0, ..Default::default() }, "rate_limit.max_keys"),
    ] {
        assert_eq!(RateLimitLayer::from_config(bad).expect_err("refused").field, field);
    }
}

#[test]
fn quota_refuses_zero_rate_and_zero_burst_naming_the_field() {
    assert_eq!(Quota::per_second(0).expect_err("refused").field, "rate_limit.rate");
    assert_eq!(
        Quota::per_minute(3).expect("valid quota").allow_burst(0).expect_err("refused").field,
        "rate_limit.burst"
    );
    assert_eq!(Quota::with_period(Duration::ZERO).expect_err("refused").field, "rate_limit.per");
    // Intervals round up: never faster than asked.
    assert_eq!(Quota::per_second(3).expect("valid quota").replenish_interval(), Duration::from_nanos(333_333_334));
}

#[test]
fn host_keys_ignore_case_and_survive_long_names() {
    assert_eq!(HostKey::new("Example.COM"), HostKey::new("example.com"));
    let long = format!("{}.example", "a".repeat(100));
    assert_eq!(HostKey::new(&long.to_uppercase()).as_str(), long);
    // One name per host across the workspace: IPv6 without brackets, no port.
    assert_eq!(HostKey::of(&get("http://[::1]:8080/")).as_str(), "::1");
}

/// `allowed` (sorted instants, in ns) never has more than `rate × t + burst` in any span `t`.
fn assert_within_quota(allowed: &[u64], rate: u64, period: u64, burst: u64) {
    for i in 0..allowed.len() {
        for j in i..allowed.len() {
            let n = (j - i + 1) as u128;
            let span = u128::from(allowed[j] - allowed[i]);
            // n ≤ span × rate / period + burst, in integers.
            assert!(
                n.saturating_sub(u128::from(burst)) * u128::from(period) <= span * u128::from(rate),
                "{n} calls in {span} ns exceed {rate} per {period} ns + burst {burst}"
            );
        }
    }
}

/// Gaps between calls that hit the edges: bursts of simultaneous calls, calls a nanosecond
/// either side of the interval, and long pauses.
fn gaps(count: usize) -> impl Strategy<Value = Vec<(u8, u64)>> {
    prop::collection::vec((0u8..4, 0u64..50_000_000), 1..count)
}

/// The gap `(kind, value)` stands for, for a limiter with this interval (ns).
fn gap(kind: u8, value: u64, interval: u64) -> u64 {
    match kind {
        0 => 0,
        1 => (interval + value % 3).saturating_sub(1),
        2 => value % 1_000,
        _ => value,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn allowed_calls_never_exceed_rate_times_span_plus_burst(
        rate in 1u32..1000,
        period_ms in 1u64..10_000,
        burst in 1u32..50,
        gaps in gaps(200),
    ) {
        let quota = Quota::new(rate, ms(period_ms)).expect("valid quota").allow_burst(burst).expect("valid burst");
        let interval = quota.replenish_interval().as_nanos() as u64;
        let limiter = RateLimiter::new(quota);
        let mut now = 0u64;
        let mut allowed = Vec::new();
        for (kind, value) in gaps {
            now += gap(kind, value, interval);
            if limiter.check_at_nanos(now).is_ok() {
                allowed.push(now);
            }
        }
        assert_within_quota(&allowed, rate.into(), period_ms * 1_000_000, burst.into());
    }

    #[test]
    fn waiting_calls_go_within_the_same_bound(
        rate in 1u32..1000,
        period_ms in 1u64..1_000,
        burst in 1u32..20,
        max_wait_ms in 0u64..2_000,
        gaps in gaps(200),
    ) {
        let quota = Quota::new(rate, ms(period_ms)).expect("valid quota").allow_burst(burst).expect("valid burst");
        let interval = quota.replenish_interval().as_nanos() as u64;
        let limiter = RateLimiter::new(quota);
        let mut now = 0u64;
        let mut sent = Vec::new();
        for (kind, value) in gaps {
            now += gap(kind, value, interval);
            match limiter.reserve_at_nanos(now, ms(max_wait_ms)) {
                Ok(wait) => {
                    prop_assert!(wait <= ms(max_wait_ms));
                    sent.push(now + wait.as_nanos() as u64);
                }
                Err(refused) => prop_assert!(refused.retry_in() > ms(max_wait_ms)),
            }
        }
        sent.sort_unstable();
        assert_within_quota(&sent, rate.into(), period_ms * 1_000_000, burst.into());
    }

    /// Eviction is exact: the keyed limiter decides as independent per-key GCRAs would,
    /// except that a new key is refused while `max_keys` other keys are live.
    #[test]
    fn keyed_limiter_with_eviction_decides_as_unbounded_per_key_limiters(
        max_keys in 1usize..5,
        burst in 1u32..4,
        keys in prop::collection::vec(0u8..8, 300),
        gaps in gaps(300),
    ) {
        let quota = Quota::new(10, Duration::from_millis(100)).expect("valid quota").allow_burst(burst).expect("valid burst");
        let interval = 10_000_000u64;
        let tolerance = interval * u64::from(burst - 1);
        let keyed = KeyedRateLimiter::<u8>::new(quota).with_max_keys(max_keys).expect("valid max_keys");
        let mut model: HashMap<u8, u64> = HashMap::new();
        let mut now = 0u64;
        for (key, (kind, value)) in keys.into_iter().zip(gaps) {
            now += gap(kind, value, interval);
            let live = model.values().filter(|&&tat| tat > now).count();
            let tat = model.get(&key).copied().filter(|&tat| tat > now);
            let expected = if tat.is_none() && live >= max_keys {
                false
            } else {
                let tat = tat.unwrap_or(0);
                let ok = tat.saturating_sub(tolerance) <= now;
                if ok {
                    model.insert(key, tat.max(now) + interval);
                }
                ok
            };
            prop_assert_eq!(keyed.check_key_at_nanos(&key, now).is_ok(), expected, "key {} at {} ns", key, now);
            prop_assert!(keyed.len() <= max_keys);
        }
    }
}

/// Real threads, real time: whatever the interleaving, no more than `rate × t + burst`
/// calls pass, `t` spanning the instants the callers read. No lower bound beyond the
/// burst: a loaded machine may starve the threads, and the test must not flake.
#[test]
fn threads_together_never_exceed_the_quota() {
    fn hammer(threads: usize, check: impl Fn(Instant) -> bool + Sync) -> (usize, Duration) {
        let first = std::sync::Mutex::new(None::<Instant>);
        let last = std::sync::Mutex::new(None::<Instant>);
        let allowed = AtomicUsize::new(0);
        let stop = std::time::Instant::now() + ms(150);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    // Until the deadline, and at least until the burst passed, however late a thread starts.
                    while std::time::Instant::now() < stop || allowed.load(Ordering::Relaxed) < 50 {
                        let now = Instant::now();
                        if check(now) {
                            allowed.fetch_add(1, Ordering::Relaxed);
                            let mut first = first.lock().expect("no thread panicked");
                            *first = Some(first.map_or(now, |f| f.min(now)));
                            let mut last = last.lock().expect("no thread panicked");
                            *last = Some(last.map_or(now, |l| l.max(now)));
                        }
                    }
                });
            }
        });
        let last = last.into_inner().expect("no thread panicked").expect("the burst passed");
        let first = first.into_inner().expect("no thread panicked").expect("the burst passed");
        let span = last - first;
        (allowed.into_inner(), span)
    }

    let quota = Quota::per_second(20_000).expect("valid quota").allow_burst(50).expect("valid burst");
    let bound = |span: Duration| (span.as_nanos() * 20_000 / 1_000_000_000) as usize + 50;

    let direct = RateLimiter::new(quota);
    let (allowed, span) = hammer(4, |now| direct.check_at(now).is_ok());
    assert!(allowed >= 50, "the burst passes: {allowed}");
    assert!(allowed <= bound(span), "direct: {allowed} in {span:?}");

    let keyed = KeyedRateLimiter::<String>::new(quota);
    let (allowed, span) = hammer(4, |now| keyed.check_key_at("one-host", now).is_ok());
    assert!(allowed >= 50, "the burst passes: {allowed}");
    assert!(allowed <= bound(span), "keyed: {allowed} in {span:?}");
}
