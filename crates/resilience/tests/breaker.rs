//! The circuit breaker's contract: when it opens, how it probes and closes again, slow calls,
//! windows, forced modes, keyed breakers, classifiers, events, cancelled probes and shared
//! state. Time is tokio's paused clock: every wait is an exact `advance`.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harvester_resilience::breaker::{
    Breaker, BreakerConfig, BreakerState, CallOutcome, CircuitBreakerLayer, Jitter, KeyedBreaker,
    KeyedCircuitBreakerLayer, OpenWaitGrowth, Reason, ServerErrorIsFailure, SlidingWindow, StateChange,
};
use harvester_resilience::{BoxError, CircuitOpen, Rejection};
use proptest::prelude::*;
use tokio::time::{advance, sleep};
use tower::{Layer, Service, ServiceExt, service_fn};

const SEC: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);

/// 50 % of the last 10 calls, at least 5 calls, open 10 s, 2 probes, fixed wait.
fn config() -> BreakerConfig {
    BreakerConfig {
        window: SlidingWindow::Count { calls: 10 },
        minimum_calls: 5,
        failure_rate_threshold: 50.0,
        open_wait: 10 * SEC,
        max_open_wait: 60 * SEC,
        open_wait_growth: OpenWaitGrowth::Fixed,
        half_open_permitted_calls: 2,
        ..BreakerConfig::default()
    }
}

fn breaker(config: BreakerConfig) -> Breaker {
    Breaker::new(config).expect("valid config")
}

fn record(breaker: &Breaker, outcome: CallOutcome, times: usize) {
    for _ in 0..times {
        breaker.try_acquire().expect("call permitted").record(outcome);
    }
}

fn success() -> CallOutcome {
    CallOutcome::success(MS)
}

fn failure() -> CallOutcome {
    CallOutcome::failure(MS)
}

/// Trips a breaker built from [`config`] and returns it.
fn opened(config: BreakerConfig) -> Breaker {
    let minimum = config.minimum_calls as usize;
    let breaker = breaker(config);
    record(&breaker, failure(), minimum);
    assert_eq!(breaker.state(), BreakerState::Open);
    breaker
}

fn refusal(error: &BoxError) -> &CircuitOpen {
    match Rejection::of(&**error) {
        Some(Rejection::CircuitOpen(open)) => open,
        other => panic!("expected a CircuitOpen, got {other:?} ({error})"),
    }
}

/// What the test target does with a call.
#[derive(Debug, Clone, Copy)]
enum Call {
    Succeed,
    Fail,
    SucceedAfter(Duration),
}

async fn target(call: Call) -> Result<&'static str, BoxError> {
    match call {
        Call::Succeed => Ok("ok"),
        Call::Fail => Err("upstream failed".into()),
        Call::SucceedAfter(delay) => {
            sleep(delay).await;
            Ok("ok, slowly")
        }
    }
}

fn guarded(breaker: &Breaker) -> impl Service<Call, Response = &'static str, Error = BoxError> + Clone {
    breaker.layer().layer(service_fn(target))
}

async fn send<S>(service: &mut S, call: Call) -> Result<&'static str, BoxError>
where
    S: Service<Call, Response = &'static str, Error = BoxError>,
{
    service.ready().await?.call(call).await
}

// --- closed → open ---

#[tokio::test(start_paused = true)]
async fn breaker_opens_when_failure_rate_reaches_threshold_after_minimum_calls() {
    let breaker = breaker(config());
    let mut service = guarded(&breaker);

    // Given 4 calls at 50 % failures: below the minimum of 5, no verdict.
    for call in [Call::Succeed, Call::Fail, Call::Succeed, Call::Fail] {
        let _ = send(&mut service, call).await;
    }
    assert_eq!(breaker.state(), BreakerState::Closed);

    // When the 5th call fails (3 of 5 = 60 %), then it opens and refuses the next call.
    let error = send(&mut service, Call::Fail).await.expect_err("the inner error");
    assert_eq!(error.to_string(), "upstream failed");
    assert_eq!(breaker.state(), BreakerState::Open);
    let error = send(&mut service, Call::Succeed).await.expect_err("refused");
    assert_eq!(refusal(&error), &CircuitOpen { state: "open", retry_in: Some(10 * SEC), key: None });
    assert_eq!(breaker.snapshot().rejected, 1);
}

#[tokio::test(start_paused = true)]
async fn breaker_stays_closed_below_the_failure_rate_threshold() {
    let breaker = breaker(config());
    record(&breaker, success(), 6);
    record(&breaker, failure(), 4);
    let snapshot = breaker.snapshot();
    assert_eq!(snapshot.state, BreakerState::Closed);
    assert_eq!((snapshot.calls_in_window, snapshot.failed_calls, snapshot.failure_rate), (10, 4, 40.0));

    // The 11th call pushes the oldest success out: 5 of 10 failed, which is the threshold.
    record(&breaker, failure(), 1);
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn a_success_reaching_the_minimum_calls_can_open_the_breaker() {
    let breaker = breaker(config());
    record(&breaker, failure(), 4);
    assert_eq!(breaker.state(), BreakerState::Closed);
    // 4 of 5 failed: the verdict is due at the 5th call, whatever its outcome.
    record(&breaker, success(), 1);
    assert_eq!(breaker.state(), BreakerState::Open);
}

// --- open → half-open → closed / open ---

#[tokio::test(start_paused = true)]
async fn open_breaker_turns_half_open_when_the_wait_is_over() {
    let breaker = opened(config());

    advance(10 * SEC - MS).await;
    let refused = breaker.try_acquire().expect_err("still open");
    assert_eq!(refused.retry_in, Some(MS));
    assert_eq!(breaker.snapshot().half_open_in, Some(MS));

    advance(MS).await;
    let probe = breaker.try_acquire().expect("a probe");
    assert!(probe.is_probe());
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
}

#[tokio::test(start_paused = true)]
async fn half_open_breaker_closes_after_the_permitted_probes_succeed() {
    let breaker = opened(config());
    advance(10 * SEC).await;

    record(&breaker, success(), 1);
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    record(&breaker, success(), 1);

    let snapshot = breaker.snapshot();
    assert_eq!(snapshot.state, BreakerState::Closed);
    assert_eq!(snapshot.calls_in_window, 0, "closing starts a fresh window");
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_reopens_the_breaker_with_a_growing_wait() {
    let config = BreakerConfig {
        open_wait_growth: OpenWaitGrowth::Exponential { multiplier: 2.0, jitter: Jitter::None },
        max_open_wait: 60 * SEC,
        ..config()
    };
    let breaker = opened(config);
    let mut waits = vec![breaker.snapshot().half_open_in.expect("open")];
    for _ in 0..4 {
        advance(*waits.last().expect("a wait")).await;
        record(&breaker, failure(), 1);
        assert_eq!(breaker.state(), BreakerState::Open);
        waits.push(breaker.snapshot().half_open_in.expect("open"));
    }
    assert_eq!(waits, [10 * SEC, 20 * SEC, 40 * SEC, 60 * SEC, 60 * SEC]);

    // Closing resets the growth: the next opening waits the base wait again.
    advance(60 * SEC).await;
    record(&breaker, success(), 2);
    assert_eq!(breaker.state(), BreakerState::Closed);
    record(&breaker, failure(), 5);
    assert_eq!(breaker.snapshot().half_open_in, Some(10 * SEC));
}

#[tokio::test(start_paused = true)]
async fn a_fixed_wait_does_not_grow() {
    let breaker = opened(config());
    advance(10 * SEC).await;
    record(&breaker, failure(), 1);
    assert_eq!(breaker.snapshot().half_open_in, Some(10 * SEC));
}

#[tokio::test(start_paused = true)]
async fn probes_beyond_the_permitted_number_are_refused_while_probes_run() {
    let breaker = opened(config());
    let mut service = guarded(&breaker);
    advance(10 * SEC).await;

    // The permit is taken in `call`, so two calls made and not yet awaited are the 2 probes.
    let first = service.ready().await.expect("ready").call(Call::SucceedAfter(SEC));
    let second = service.ready().await.expect("ready").call(Call::SucceedAfter(SEC));
    let third = send(&mut service, Call::Succeed).await.expect_err("refused");
    assert_eq!(refusal(&third), &CircuitOpen { state: "half-open", retry_in: None, key: None });
    assert_eq!(breaker.snapshot().probes_running, 2);

    first.await.expect("probe succeeds");
    second.await.expect("probe succeeds");
    assert_eq!(breaker.state(), BreakerState::Closed);
    send(&mut service, Call::Succeed).await.expect("closed again");
}

#[tokio::test(start_paused = true)]
async fn a_result_from_before_the_opening_is_not_a_probe() {
    let breaker = breaker(BreakerConfig { half_open_permitted_calls: 1, ..config() });
    let late = breaker.try_acquire().expect("closed");
    record(&breaker, failure(), 5);
    advance(10 * SEC).await;
    let probe = breaker.try_acquire().expect("a probe");

    late.record(success());
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    probe.record(success());
    assert_eq!(breaker.state(), BreakerState::Closed);
}

// --- slow calls ---

#[tokio::test(start_paused = true)]
async fn slow_calls_open_the_breaker() {
    let breaker = breaker(BreakerConfig { slow_call_duration: 2 * SEC, slow_call_rate_threshold: 60.0, ..config() });
    let mut events = breaker.subscribe();
    let mut service = guarded(&breaker);

    // Every call succeeds, but 3 of 5 take 2 s or more.
    for call in [Call::SucceedAfter(2 * SEC), Call::SucceedAfter(SEC), Call::SucceedAfter(3 * SEC), Call::Succeed] {
        send(&mut service, call).await.expect("success");
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
    send(&mut service, Call::SucceedAfter(2 * SEC)).await.expect("success");

    assert_eq!(breaker.state(), BreakerState::Open);
    let change = events.recv().await.expect("an event");
    assert_eq!(change.reason, Reason::SlowCallRate { rate: 60.0 });
    assert_eq!(breaker.snapshot().slow_calls, 3);
}

#[tokio::test(start_paused = true)]
async fn slow_probes_reaching_the_slow_threshold_reopen_the_breaker() {
    let config = BreakerConfig { slow_call_duration: SEC, slow_call_rate_threshold: 50.0, ..config() };
    let breaker = opened(config);
    advance(10 * SEC).await;

    // 1 slow probe of 2 permitted is 50 %: back to open, without waiting for the second.
    breaker.try_acquire().expect("a probe").record(CallOutcome::success(SEC));
    assert_eq!(breaker.state(), BreakerState::Open);
}

// --- windows ---

#[tokio::test(start_paused = true)]
async fn time_based_window_forgets_old_buckets() {
    let config =
        BreakerConfig { window: SlidingWindow::Time { span: 10 * SEC, buckets: 5 }, minimum_calls: 3, ..config() };
    let breaker = breaker(config);
    record(&breaker, failure(), 2);

    // Two buckets (4 s) later the failures still count: 2 of 3 would open it...
    advance(4 * SEC).await;
    assert_eq!(breaker.snapshot().calls_in_window, 2);

    // ...but 10 s after they were recorded their bucket is gone.
    advance(6 * SEC).await;
    assert_eq!(breaker.snapshot().calls_in_window, 0);
    record(&breaker, success(), 2);
    record(&breaker, failure(), 1);
    let snapshot = breaker.snapshot();
    assert_eq!((snapshot.state, snapshot.calls_in_window, snapshot.failed_calls), (BreakerState::Closed, 3, 1));
}

#[tokio::test(start_paused = true)]
async fn time_based_window_opens_on_failures_within_its_span() {
    let config =
        BreakerConfig { window: SlidingWindow::Time { span: 10 * SEC, buckets: 5 }, minimum_calls: 3, ..config() };
    let breaker = breaker(config);
    record(&breaker, failure(), 1);
    advance(4 * SEC).await;
    record(&breaker, success(), 1);
    advance(4 * SEC).await;
    record(&breaker, failure(), 1);
    assert_eq!(breaker.state(), BreakerState::Open);
}

// --- forced and shadow modes ---

#[tokio::test(start_paused = true)]
async fn forced_open_breaker_refuses_every_call_until_reset() {
    let breaker = breaker(config());
    breaker.force_open();
    let refused = breaker.try_acquire().expect_err("refused");
    assert_eq!(refused, CircuitOpen { state: "forced open", retry_in: None, key: None });

    advance(3600 * SEC).await;
    assert!(breaker.try_acquire().is_err(), "no wait ends a forced opening");

    breaker.reset();
    assert_eq!(breaker.state(), BreakerState::Closed);
    record(&breaker, success(), 1);
}

#[tokio::test(start_paused = true)]
async fn forced_closed_breaker_lets_every_call_through_without_judging() {
    let breaker = opened(config());
    breaker.force_closed();
    record(&breaker, failure(), 50);
    let snapshot = breaker.snapshot();
    assert_eq!((snapshot.state, snapshot.calls_in_window), (BreakerState::ForcedClosed, 0));
}

#[tokio::test(start_paused = true)]
async fn disabled_breaker_passes_everything_and_records_nothing() {
    let breaker = breaker(config());
    let mut service = guarded(&breaker);
    breaker.disable();
    for _ in 0..20 {
        let _ = send(&mut service, Call::Fail).await;
    }
    let snapshot = breaker.snapshot();
    assert_eq!(snapshot.state, BreakerState::Disabled);
    assert_eq!((snapshot.calls_in_window, snapshot.rejected), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn metrics_only_breaker_judges_every_call_but_never_refuses() {
    let breaker = breaker(config());
    let mut service = guarded(&breaker);
    breaker.metrics_only();
    for _ in 0..20 {
        let error = send(&mut service, Call::Fail).await.expect_err("the inner error");
        assert!(Rejection::of(&*error).is_none(), "never a refusal: {error}");
    }
    let snapshot = breaker.snapshot();
    assert_eq!(snapshot.state, BreakerState::MetricsOnly);
    assert_eq!((snapshot.calls_in_window, snapshot.failure_rate, snapshot.rejected), (10, 100.0, 0));
}

// --- classifier ---

#[tokio::test(start_paused = true)]
async fn server_error_classifier_counts_an_ok_5xx_as_a_failure() {
    let layer = CircuitBreakerLayer::new(config()).expect("valid config").classify(ServerErrorIsFailure);
    let breaker = layer.breaker().clone();
    let mut service = layer.layer(service_fn(|status: u16| async move {
        Ok::<_, BoxError>(http::Response::builder().status(status).body(()).expect("valid status"))
    }));

    for status in [200, 404, 500, 503, 502] {
        service.ready().await.expect("ready").call(status).await.expect("an Ok response");
    }
    // 3 of 5 responses were 5xx; the 404 is the client's problem, not the target's.
    let snapshot = breaker.snapshot();
    assert_eq!((snapshot.state, snapshot.failed_calls), (BreakerState::Open, 3));
}

#[tokio::test(start_paused = true)]
async fn a_closure_classifier_decides_what_fails() {
    let layer = CircuitBreakerLayer::new(config())
        .expect("valid config")
        .classify(|result: &Result<&'static str, BoxError>| matches!(result, Ok("banned")));
    let breaker = layer.breaker().clone();
    let mut service = layer.layer(service_fn(|answer: &'static str| async move { Ok::<_, BoxError>(answer) }));
    for answer in ["banned", "fine", "banned"] {
        service.ready().await.expect("ready").call(answer).await.expect("Ok");
    }
    assert_eq!(breaker.snapshot().failed_calls, 2);
}

// --- events ---

#[tokio::test(start_paused = true)]
async fn state_changes_reach_the_callback_and_the_broadcast() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let layer = CircuitBreakerLayer::new(config()).expect("valid config").on_state_change({
        let seen = seen.clone();
        move |change: StateChange| seen.lock().expect("not poisoned").push((change.from, change.to, change.reason))
    });
    let breaker = layer.breaker().clone();
    let mut events = breaker.subscribe();

    record(&breaker, failure(), 5);
    advance(10 * SEC).await;
    record(&breaker, success(), 2);

    let expected = [
        (BreakerState::Closed, BreakerState::Open, Reason::FailureRate { rate: 100.0 }),
        (BreakerState::Open, BreakerState::HalfOpen, Reason::WaitElapsed),
        (BreakerState::HalfOpen, BreakerState::Closed, Reason::ProbesSucceeded),
    ];
    assert_eq!(*seen.lock().expect("not poisoned"), expected);
    for (from, to, reason) in expected {
        let change = events.recv().await.expect("an event");
        assert_eq!((change.from, change.to, change.reason), (from, to, reason));
    }
}

#[tokio::test(start_paused = true)]
async fn the_opening_event_says_how_long_the_breaker_stays_open() {
    let breaker = breaker(config());
    let mut events = breaker.subscribe();
    record(&breaker, failure(), 5);
    let change = events.recv().await.expect("an event");
    assert_eq!((change.to, change.open_for), (BreakerState::Open, Some(10 * SEC)));
}

// --- cancelled probes ---

#[tokio::test(start_paused = true)]
async fn a_dropped_in_flight_probe_frees_its_permit_and_counts_as_nothing() {
    let breaker = opened(config());
    let mut service = guarded(&breaker);
    advance(10 * SEC).await;

    let first = service.ready().await.expect("ready").call(Call::SucceedAfter(SEC));
    let second = service.ready().await.expect("ready").call(Call::SucceedAfter(SEC));
    assert!(send(&mut service, Call::Succeed).await.is_err(), "both probes are taken");

    // Cancelling a probe (a timeout, an aborted task) gives its slot back...
    drop(first);
    assert_eq!(breaker.snapshot().probes_running, 1);
    assert_eq!(breaker.state(), BreakerState::HalfOpen, "...and is neither a success nor a failure");

    send(&mut service, Call::Succeed).await.expect("the freed slot");
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    second.await.expect("probe succeeds");
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_raw_permit_frees_its_probe_slot() {
    let breaker = opened(BreakerConfig { half_open_permitted_calls: 1, ..config() });
    advance(10 * SEC).await;
    drop(breaker.try_acquire().expect("a probe"));
    let probe = breaker.try_acquire().expect("the slot again");
    assert!(probe.is_probe());
}

// --- shared state ---

#[tokio::test(start_paused = true)]
async fn clones_of_layers_and_services_share_one_breaker() {
    let layer = CircuitBreakerLayer::new(config()).expect("valid config");
    let mut first = layer.clone().layer(service_fn(target));
    let mut second = layer.layer(service_fn(target)).clone();

    for _ in 0..5 {
        let _ = first.ready().await.expect("ready").call(Call::Fail).await;
    }
    let error = second.ready().await.expect("ready").call(Call::Succeed).await.expect_err("refused");
    assert_eq!(refusal(&error).state, "open");
    assert_eq!(first.breaker().snapshot().rejected, 1);
}

// --- keyed ---

fn request(uri: &str) -> http::Request<()> {
    http::Request::builder().uri(uri).body(()).expect("valid request")
}

#[tokio::test(start_paused = true)]
async fn keyed_breakers_isolate_hosts() {
    let layer = KeyedCircuitBreakerLayer::per_host(config()).expect("valid config").classify(ServerErrorIsFailure);
    let breakers = layer.breakers().clone();
    let mut service = layer.layer(service_fn(|request: http::Request<()>| async move {
        let down = request.uri().host().is_some_and(|host| host.eq_ignore_ascii_case("down.example"));
        let status = if down { 503 } else { 200 };
        Ok::<_, BoxError>(http::Response::builder().status(status).body(()).expect("valid status"))
    }));

    for _ in 0..5 {
        service.ready().await.expect("ready").call(request("https://DOWN.example/a")).await.expect("a 503");
    }
    let error =
        service.ready().await.expect("ready").call(request("https://down.example/b")).await.expect_err("refused");
    assert_eq!(refusal(&error).key.as_deref(), Some("down.example"));

    let response = service.ready().await.expect("ready").call(request("https://up.example/")).await.expect("passes");
    assert_eq!(response.status(), 200);
    assert_eq!(breakers.snapshot("up.example").map(|s| s.state), Some(BreakerState::Closed));
    assert_eq!(breakers.snapshot("down.example").map(|s| s.state), Some(BreakerState::Open));

    // A request without a host has no key and passes unguarded.
    service.ready().await.expect("ready").call(request("/relative")).await.expect("passes");
    assert_eq!(breakers.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn keyed_breaker_evicts_least_recently_used_keys_within_its_bound() {
    let breakers =
        KeyedBreaker::new(BreakerConfig { max_keys: 2, key_idle_timeout: 60 * SEC, ..config() }).expect("valid config");
    let key = |k: &str| k.to_owned();

    record(&breakers.breaker(&key("a")), failure(), 5);
    advance(SEC).await;
    breakers.breaker(&key("b"));
    advance(SEC).await;
    breakers.breaker(&key("c"));

    let mut keys = breakers.keys();
    keys.sort();
    assert_eq!(keys, ["b", "c"], "a was the least recently used");
    assert_eq!(breakers.breaker(&key("a")).state(), BreakerState::Closed, "an evicted key starts closed");
}

#[tokio::test(start_paused = true)]
async fn keyed_breaker_forgets_idle_keys_when_new_ones_arrive() {
    let breakers = KeyedBreaker::new(BreakerConfig { max_keys: 100, key_idle_timeout: 60 * SEC, ..config() })
        .expect("valid config");
    for k in ["a", "b", "c"] {
        breakers.breaker(&k.to_owned());
    }
    advance(30 * SEC).await;
    breakers.breaker(&"b".to_owned());
    advance(31 * SEC).await;
    breakers.breaker(&"d".to_owned());

    let mut keys = breakers.keys();
    keys.sort();
    assert_eq!(keys, ["b", "d"]);
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ProxyId(u32);

impl fmt::Display for ProxyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "proxy-{}", self.0)
    }
}

#[tokio::test(start_paused = true)]
async fn keyed_breakers_can_key_on_a_request_extension() {
    let layer = KeyedCircuitBreakerLayer::per_extension(config()).expect("valid config");
    let breakers: KeyedBreaker<ProxyId> = layer.breakers().clone();
    let mut service = layer.layer(service_fn(|request: http::Request<()>| async move {
        match request.extensions().get::<ProxyId>() {
            Some(ProxyId(7)) => Err::<(), BoxError>("proxy 7 is dead".into()),
            _ => Ok(()),
        }
    }));
    let via = |proxy: u32| {
        let mut request = request("https://example.com/");
        request.extensions_mut().insert(ProxyId(proxy));
        request
    };

    for _ in 0..5 {
        let _ = service.ready().await.expect("ready").call(via(7)).await;
    }
    let error = service.ready().await.expect("ready").call(via(7)).await.expect_err("refused");
    assert_eq!(refusal(&error).key.as_deref(), Some("proxy-7"));
    service.ready().await.expect("ready").call(via(8)).await.expect("another proxy passes");
    assert_eq!(breakers.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn keyed_breakers_take_a_closure_as_key_extractor() {
    let layer = KeyedCircuitBreakerLayer::new(config(), |path: &String| path.split('/').nth(1).map(str::to_owned))
        .expect("valid config");
    let breakers = layer.breakers().clone();
    let mut service = layer.layer(service_fn(|_: String| async { Err::<(), BoxError>("nope".into()) }));
    for _ in 0..5 {
        let _ = service.ready().await.expect("ready").call("/tenant-a/x".to_owned()).await;
    }
    assert_eq!(breakers.snapshot("tenant-a").map(|s| s.state), Some(BreakerState::Open));
    assert!(breakers.get("tenant-b").is_none());
}

#[tokio::test(start_paused = true)]
async fn an_evicted_key_still_in_use_publishes_nothing() {
    let breakers =
        KeyedBreaker::new(BreakerConfig { max_keys: 2, key_idle_timeout: 60 * SEC, ..config() }).expect("valid config");
    let mut events = breakers.subscribe();
    let in_flight = breakers.breaker(&"a".to_owned());
    advance(SEC).await;
    breakers.breaker(&"b".to_owned());
    advance(SEC).await;
    breakers.breaker(&"c".to_owned());
    assert!(breakers.get("a").is_none(), "a was evicted");

    record(&in_flight, failure(), 5);
    assert_eq!(in_flight.state(), BreakerState::Open, "the orphan still guards its calls");
    assert!(events.try_recv().is_err(), "but it publishes nothing");
}

#[tokio::test(start_paused = true)]
async fn keyed_events_carry_the_key() {
    let breakers = KeyedBreaker::new(config()).expect("valid config");
    let opened = Arc::new(AtomicUsize::new(0));
    breakers.on_state_change({
        let opened = opened.clone();
        move |change| {
            if change.to == BreakerState::Open {
                opened.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let mut events = breakers.subscribe();
    record(&breakers.breaker(&"h1".to_owned()), failure(), 5);
    let change = events.recv().await.expect("an event");
    assert_eq!(change.key.as_deref(), Some("h1"));
    assert_eq!(opened.load(Ordering::Relaxed), 1);
}

#[test]
fn breakers_services_and_futures_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<Breaker>();
    send_sync::<KeyedBreaker<String>>();
    send_sync::<CircuitBreakerLayer>();
    send_sync::<KeyedCircuitBreakerLayer<harvester_resilience::key::HostKey, harvester_resilience::key::TargetHost>>();
    let breaker = breaker(config());
    let mut service = breaker.layer().layer(service_fn(target));
    send(&service);
    send(&service.call(Call::Succeed));
}

// --- configuration ---

#[test]
fn config_refuses_out_of_range_values_naming_the_field() {
    let cases: Vec<(BreakerConfig, &str)> = vec![
        (BreakerConfig { failure_rate_threshold: 0.0, ..config() }, "breaker.failure_rate_threshold"),
        (BreakerConfig { failure_rate_threshold: 100.5, ..config() }, "breaker.failure_rate_threshold"),
        (BreakerConfig { failure_rate_threshold: f64::NAN, ..config() }, "breaker.failure_rate_threshold"),
        (BreakerConfig { slow_call_rate_threshold: -1.0, ..config() }, "breaker.slow_call_rate_threshold"),
        (BreakerConfig { slow_call_duration: Duration::ZERO, ..config() }, "breaker.slow_call_duration"),
        (BreakerConfig { window: SlidingWindow::Count { calls: 0 }, ..config() }, "breaker.window.calls"),
        (
            BreakerConfig { window: SlidingWindow::Time { span: 10 * SEC, buckets: 0 }, ..config() },
            "breaker.window.buckets",
        ),
        (
            BreakerConfig { window: SlidingWindow::Time { span: Duration::ZERO, buckets: 10 }, ..config() },
            "breaker.window.span",
        ),
        (BreakerConfig { minimum_calls: 0, ..config() }, "breaker.minimum_calls"),
        (BreakerConfig { open_wait: Duration::ZERO, ..config() }, "breaker.open_wait"),
        (BreakerConfig { max_open_wait: 9 * SEC, ..config() }, "breaker.max_open_wait"),
        (
            BreakerConfig {
                open_wait_growth: OpenWaitGrowth::Exponential { multiplier: 0.5, jitter: Jitter::Full },
                ..config()
            },
            "breaker.open_wait_growth.multiplier",
        ),
        (BreakerConfig { half_open_permitted_calls: 0, ..config() }, "breaker.half_open_permitted_calls"),
        (BreakerConfig { half_open_permitted_calls: 4096, ..config() }, "breaker.half_open_permitted_calls"),
        (BreakerConfig { max_keys: 0, ..config() }, "breaker.max_keys"),
        (BreakerConfig { key_idle_timeout: Duration::ZERO, ..config() }, "breaker.key_idle_timeout"),
    ];
    for (config, field) in cases {
        let error = Breaker::new(config).expect_err(field);
        assert_eq!(error.field, field, "{error}");
    }
    assert!(BreakerConfig::default().validate().is_ok());
    assert!(CircuitBreakerLayer::new(BreakerConfig { minimum_calls: 0, ..config() }).is_err());
}

#[test]
fn minimum_calls_above_a_count_window_is_capped_at_its_size() {
    let breaker = breaker(BreakerConfig { minimum_calls: 1000, ..config() });
    record(&breaker, failure(), 10);
    assert_eq!(breaker.state(), BreakerState::Open);
}

// --- concurrency ---

#[test]
fn concurrent_calls_leave_exact_window_totals() {
    let breaker = breaker(BreakerConfig { window: SlidingWindow::Count { calls: 8 }, ..config() });
    breaker.metrics_only();
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let breaker = &breaker;
            scope.spawn(move || {
                for i in 0..20_000u32 {
                    let outcome = if (i + thread) % 3 == 0 { CallOutcome::failure(SEC * 100) } else { success() };
                    breaker.try_acquire().expect("metrics-only never refuses").record(outcome);
                }
            });
        }
    });
    let snapshot = breaker.snapshot();
    assert_eq!(snapshot.calls_in_window, 8);
    record(&breaker, success(), 8);
    let snapshot = breaker.snapshot();
    assert_eq!((snapshot.calls_in_window, snapshot.failed_calls, snapshot.slow_calls), (8, 0, 0));
}

/// Resets and mode changes racing with calls must never leave the window's totals off: with
/// the defaults (100 calls at least in a window of 100) a single lost call would keep the
/// breaker from ever opening again. A large window makes a reset take long enough to race.
#[test]
fn resets_racing_with_calls_leave_the_window_consistent() {
    const SLOTS: usize = 4096;
    let config = BreakerConfig { window: SlidingWindow::Count { calls: SLOTS as u32 }, ..BreakerConfig::default() };
    let breaker = breaker(config);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        for thread in 0..4u32 {
            let (breaker, stop) = (&breaker, &stop);
            scope.spawn(move || {
                let mut i = thread;
                while !stop.load(Ordering::Relaxed) {
                    i = i.wrapping_add(1);
                    let outcome = if i % 5 == 0 { CallOutcome::failure(SEC * 100) } else { success() };
                    // Refused while open; the resetter closes it again.
                    if let Ok(permit) = breaker.try_acquire() {
                        permit.record(outcome);
                    }
                }
            });
        }
        let (breaker, stop) = (&breaker, &stop);
        scope.spawn(move || {
            for round in 0..3_000u32 {
                breaker.reset();
                if round % 3 == 0 {
                    breaker.metrics_only();
                }
            }
            breaker.reset();
            stop.store(true, Ordering::Relaxed);
        });
    });

    // Whatever the race left behind (no reset may repair it now), a full window's worth of
    // calls fills every slot.
    assert_eq!(breaker.state(), BreakerState::Closed, "a fifth of the calls fail");
    record(&breaker, success(), SLOTS);
    let snapshot = breaker.snapshot();
    assert_eq!((snapshot.calls_in_window, snapshot.failed_calls, snapshot.slow_calls), (SLOTS as u64, 0, 0));
    breaker.reset();
    record(&breaker, failure(), 99);
    assert_eq!(breaker.snapshot().calls_in_window, 99);
    assert_eq!(breaker.state(), BreakerState::Closed, "fewer calls than the minimum");
    // And the breaker still opens once the window holds the minimum number of calls.
    record(&breaker, failure(), 1);
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[test]
fn open_wait_growth_never_panics_on_a_multiplier_it_would_refuse() {
    let (base, max) = (10 * SEC, 60 * SEC);
    for multiplier in [-2.0, -0.5, 0.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::MAX, 1e308] {
        for reopened in [0, 1, 2, 3, 1000, u32::MAX] {
            for jitter in [Jitter::None, Jitter::Full, Jitter::Equal] {
                let wait = OpenWaitGrowth::Exponential { multiplier, jitter }.wait(base, max, reopened);
                assert!(base <= wait && wait <= max, "{multiplier} ^ {reopened}: {wait:?}");
            }
        }
    }
    let huge = OpenWaitGrowth::Exponential { multiplier: 2.0, jitter: Jitter::None };
    assert_eq!(huge.wait(base, Duration::MAX, 1000), Duration::MAX);
}

proptest! {
    /// The count window's failure and slow-call rates are those of the last N outcomes.
    #[test]
    fn count_window_rates_are_those_of_the_last_n_outcomes(
        size in 1u32..40,
        outcomes in proptest::collection::vec((any::<bool>(), any::<bool>()), 0..150),
    ) {
        let breaker = breaker(BreakerConfig {
            window: SlidingWindow::Count { calls: size },
            slow_call_duration: SEC,
            ..config()
        });
        breaker.metrics_only();
        for &(failed, slow) in &outcomes {
            let elapsed = if slow { SEC } else { MS };
            breaker.try_acquire().expect("metrics-only never refuses").record(CallOutcome { failed, elapsed });
        }
        let last = &outcomes[outcomes.len().saturating_sub(size as usize)..];
        let failures = last.iter().filter(|(failed, _)| *failed).count() as u64;
        let slow = last.iter().filter(|(_, slow)| *slow).count() as u64;
        let snapshot = breaker.snapshot();
        prop_assert_eq!(snapshot.calls_in_window, last.len() as u64);
        prop_assert_eq!((snapshot.failed_calls, snapshot.slow_calls), (failures, slow));
        let rate = |part: u64| if last.is_empty() { 0.0 } else { part as f64 * 100.0 / last.len() as f64 };
        prop_assert_eq!(snapshot.failure_rate, rate(failures));
        prop_assert_eq!(snapshot.slow_call_rate, rate(slow));
    }

    /// A jittered open wait stays between the base wait and the grown, capped one.
    #[test]
    fn open_wait_stays_between_the_base_and_the_grown_wait(
        base_ms in 1u64..10_000,
        cap_factor in 1u64..100,
        multiplier in 1.0f64..5.0,
        reopened in 0u32..40,
        full in any::<bool>(),
    ) {
        let (base, max) = (Duration::from_millis(base_ms), Duration::from_millis(base_ms * cap_factor));
        let jitter = if full { Jitter::Full } else { Jitter::Equal };
        let grown = OpenWaitGrowth::Exponential { multiplier, jitter: Jitter::None }.wait(base, max, reopened);
        let wait = OpenWaitGrowth::Exponential { multiplier, jitter }.wait(base, max, reopened);
        prop_assert!(base <= wait && wait <= grown && grown <= max, "{base:?} <= {wait:?} <= {grown:?} <= {max:?}");
        if !full {
            prop_assert!(wait >= grown / 2);
        }
    }
}
