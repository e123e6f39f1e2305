//! The retry layer, as a specification: attempts, backoff ranges, `Retry-After`, per-attempt
//! timeouts, policies and the retry budget. Time is tokio's paused clock, so every wait is
//! exact and no test sleeps for real.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::future::join_all;
use harvester_resilience::fallback::{FallbackLayer, is_rejection};
use harvester_resilience::retry::{
    Backoff, BackoffKind, BudgetConfig, Decision, RetryBudget, RetryConfig, RetryLayer, RetryOnStatus,
    decide_by_default, parse_retry_after,
};
use harvester_resilience::{
    BoxError, BulkheadFull, CircuitOpen, RateLimited, Rejection, Retry, RetryBudgetExhausted, TimedOut, TimeoutLayer,
};
use proptest::prelude::*;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};

type Response = http::Response<()>;

/// What the upstream does on one call.
enum Step {
    Status(u16, Option<String>),
    Fail(BoxError),
    Hang,
}

fn ok() -> Step {
    Step::Status(200, None)
}

fn fail(message: &str) -> Step {
    Step::Fail(message.into())
}

/// An upstream that plays `steps` in order (failing once they run out) and records when
/// each call arrived.
#[derive(Clone)]
struct Upstream {
    steps: Arc<Mutex<VecDeque<Step>>>,
    calls: Arc<Mutex<Vec<Instant>>>,
}

impl Upstream {
    fn new(steps: impl IntoIterator<Item = Step>) -> Self {
        Upstream { steps: Arc::new(Mutex::new(steps.into_iter().collect())), calls: Arc::default() }
    }

    fn calls(&self) -> usize {
        self.calls.lock().expect("no test panics holding the lock").len()
    }

    /// Time between consecutive calls.
    fn gaps(&self) -> Vec<Duration> {
        self.calls.lock().expect("no test panics holding the lock").windows(2).map(|w| w[1] - w[0]).collect()
    }
}

impl Service<u32> for Upstream {
    type Response = Response;
    type Error = BoxError;
    type Future = futures::future::BoxFuture<'static, Result<Response, BoxError>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), BoxError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: u32) -> Self::Future {
        self.calls.lock().expect("no test panics holding the lock").push(Instant::now());
        let step = self
            .steps
            .lock()
            .expect("no test panics holding the lock")
            .pop_front()
            .unwrap_or_else(|| fail("script exhausted"));
        Box::pin(async move {
            match step {
                Step::Status(status, retry_after) => {
                    let mut response = http::Response::builder().status(status);
                    if let Some(value) = retry_after {
                        response = response.header(http::header::RETRY_AFTER, value);
                    }
                    Ok(response.body(())?)
                }
                Step::Fail(error) => Err(error),
                Step::Hang => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Ok(http::Response::new(()))
                }
            }
        })
    }
}

/// Retries with no backoff and no budget unless a test says otherwise.
fn config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffKind::Constant,
        base_delay: Duration::ZERO,
        jitter: false,
        budget: BudgetConfig { enabled: false, ..BudgetConfig::default() },
        ..RetryConfig::default()
    }
}

fn retry(config: RetryConfig, upstream: &Upstream) -> Retry<Upstream> {
    RetryLayer::new(config).expect("valid config").layer(upstream.clone())
}

// ----- attempts -----

#[tokio::test(start_paused = true)]
async fn fails_n_minus_one_times_then_succeeds_after_n_attempts() {
    for attempts in 1..=5 {
        let upstream = Upstream::new((1..attempts).map(|_| fail("reset")).chain([ok()]));
        let service = retry(RetryConfig { max_attempts: 5, ..config() }, &upstream);

        let response = service.oneshot(1).await.expect("the call succeeds");

        assert_eq!(response.status(), 200);
        assert_eq!(upstream.calls(), attempts);
    }
}

/// The upstream, counting how often it is cloned.
struct CountedClones {
    upstream: Upstream,
    clones: Arc<std::sync::atomic::AtomicUsize>,
}

impl Clone for CountedClones {
    fn clone(&self) -> Self {
        self.clones.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        CountedClones { upstream: self.upstream.clone(), clones: self.clones.clone() }
    }
}

impl Service<u32> for CountedClones {
    type Response = Response;
    type Error = BoxError;
    type Future = futures::future::BoxFuture<'static, Result<Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), BoxError>> {
        self.upstream.poll_ready(cx)
    }

    fn call(&mut self, request: u32) -> Self::Future {
        self.upstream.call(request)
    }
}

#[tokio::test(start_paused = true)]
async fn only_a_retried_call_clones_the_wrapped_service() {
    let upstream = Upstream::new([ok(), ok(), ok(), fail("reset"), ok()]);
    let clones = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = CountedClones { upstream: upstream.clone(), clones: clones.clone() };
    let mut service =
        RetryLayer::new(RetryConfig { max_attempts: 2, ..config() }).expect("valid config").layer(counted);
    let made = clones.load(std::sync::atomic::Ordering::Relaxed);

    for _ in 0..3 {
        service.ready().await.expect("always ready").call(1).await.expect("answered at once");
    }
    assert_eq!(clones.load(std::sync::atomic::Ordering::Relaxed), made, "calls answered at once clone nothing");

    service.ready().await.expect("always ready").call(1).await.expect("the second attempt succeeds");
    assert_eq!(upstream.calls(), 5);
    assert_eq!(clones.load(std::sync::atomic::Ordering::Relaxed), made + 1, "one clone for the retried call");
}

#[tokio::test(start_paused = true)]
async fn gives_up_at_max_attempts_with_the_last_error() {
    let upstream = Upstream::new([fail("first"), fail("second"), fail("third"), ok()]);
    let service = retry(RetryConfig { max_attempts: 3, ..config() }, &upstream);

    let error = service.oneshot(1).await.expect_err("the call fails");

    assert_eq!(error.to_string(), "third");
    assert_eq!(upstream.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn one_attempt_never_retries() {
    let upstream = Upstream::new([fail("down"), ok()]);
    let service = retry(RetryConfig { max_attempts: 1, ..config() }, &upstream);

    assert_eq!(service.oneshot(1).await.expect_err("the call fails").to_string(), "down");
    assert_eq!(upstream.calls(), 1);
}

#[test]
fn zero_max_attempts_is_refused_naming_the_field() {
    let error = RetryLayer::new(RetryConfig { max_attempts: 0, ..RetryConfig::default() }).expect_err("the call fails");
    assert_eq!(error.field, "retry.max_attempts");
}

#[test]
fn out_of_range_budget_and_delays_are_refused_naming_the_field() {
    let refused = |config: RetryConfig| RetryLayer::new(config).expect_err("the call fails").field;
    let budget = |budget: BudgetConfig| RetryConfig { budget, ..RetryConfig::default() };
    assert_eq!(
        refused(budget(BudgetConfig { retry_percent: -0.1, ..BudgetConfig::default() })),
        "retry.budget.retry_percent"
    );
    assert_eq!(
        refused(budget(BudgetConfig { retry_percent: f64::NAN, ..BudgetConfig::default() })),
        "retry.budget.retry_percent"
    );
    assert_eq!(
        refused(budget(BudgetConfig { ttl: Duration::from_millis(500), ..BudgetConfig::default() })),
        "retry.budget.ttl"
    );
    assert_eq!(
        refused(RetryConfig { base_delay: Duration::from_secs(20), ..RetryConfig::default() }),
        "retry.max_delay"
    );
    assert_eq!(refused(RetryConfig { base_delay: Duration::ZERO, ..RetryConfig::default() }), "retry.base_delay");
    assert_eq!(
        refused(RetryConfig { attempt_timeout: Some(Duration::ZERO), ..RetryConfig::default() }),
        "retry.attempt_timeout"
    );
}

#[test]
fn durations_over_a_day_are_refused_naming_the_field_instead_of_panicking_later() {
    let refused = |config: RetryConfig| RetryLayer::new(config).expect_err("the call fails").field;
    let day = RetryConfig::MAX_DURATION;
    assert_eq!(day, Duration::from_secs(86_400));
    assert_eq!(
        refused(RetryConfig { attempt_timeout: Some(Duration::MAX), ..RetryConfig::default() }),
        "retry.attempt_timeout"
    );
    assert_eq!(
        refused(RetryConfig { max_retry_after: Duration::MAX, ..RetryConfig::default() }),
        "retry.max_retry_after"
    );
    assert_eq!(refused(RetryConfig { max_delay: Duration::MAX, ..RetryConfig::default() }), "retry.max_delay");
    assert_eq!(
        refused(RetryConfig { backoff: BackoffKind::Constant, base_delay: Duration::MAX, ..RetryConfig::default() }),
        "retry.base_delay"
    );
    let longest = RetryConfig {
        attempt_timeout: Some(day),
        max_retry_after: day,
        max_delay: day,
        base_delay: day,
        ..RetryConfig::default()
    };
    assert!(longest.validate().is_ok(), "one day is allowed");
}

#[test]
fn a_share_below_the_resolution_or_a_reserve_too_large_is_refused_naming_the_field() {
    let refused = |budget: BudgetConfig| budget.validate().expect_err("refused").field;
    // 0.0005 used to be rounded up to 0.001, twice the share asked for.
    assert_eq!(
        refused(BudgetConfig { retry_percent: 0.0005, ..BudgetConfig::default() }),
        "retry.budget.retry_percent"
    );
    assert_eq!(
        refused(BudgetConfig { retry_percent: 0.0009, ..BudgetConfig::default() }),
        "retry.budget.retry_percent"
    );
    assert!(BudgetConfig { retry_percent: 0.001, ..BudgetConfig::default() }.validate().is_ok());
    assert!(BudgetConfig { retry_percent: 0.0, ..BudgetConfig::default() }.validate().is_ok());

    // A reserve of min_per_sec × ttl must fit a bucket's balance (2 147 483 retries).
    let reserve = |min_per_sec: u32, ttl_secs: u64| BudgetConfig {
        min_per_sec,
        ttl: Duration::from_secs(ttl_secs),
        ..BudgetConfig::default()
    };
    assert_eq!(refused(reserve(BudgetConfig::MAX_MIN_PER_SEC, 60)), "retry.budget.min_per_sec");
    assert_eq!(refused(reserve(35_792, 60)), "retry.budget.min_per_sec");
    assert!(reserve(35_791, 60).validate().is_ok());
    assert!(reserve(BudgetConfig::MAX_MIN_PER_SEC, 1).validate().is_ok());
    assert_eq!(refused(reserve(BudgetConfig::MAX_MIN_PER_SEC, 3)), "retry.budget.min_per_sec");
}

#[test]
fn retry_services_and_their_futures_are_send_and_clone() {
    fn assert_send_clone<T: Send + Sync + Clone>(_: &T) {}
    fn assert_send<T: Send>(_: &T) {}
    let upstream = Upstream::new([]);
    let mut service = RetryLayer::new(config())
        .expect("valid config")
        .retry_on_response(RetryOnStatus::transient())
        .retry_on_error(|error: &BoxError| decide_by_default(error))
        .layer(upstream);
    assert_send_clone(&service);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
    let _context = runtime.enter();
    assert_send(&service.call(1));
}

// ----- backoff -----

#[tokio::test(start_paused = true)]
async fn waits_the_backoff_delay_between_attempts() {
    let upstream = Upstream::new([fail("a"), fail("b"), fail("c"), ok()]);
    let config = RetryConfig {
        max_attempts: 4,
        backoff: BackoffKind::Exponential,
        base_delay: Duration::from_millis(100),
        ..config()
    };
    let service = retry(config, &upstream);

    service.oneshot(1).await.expect("the call succeeds");

    let ms = Duration::from_millis;
    assert_eq!(upstream.gaps(), [ms(100), ms(200), ms(400)]);
}

#[tokio::test(start_paused = true)]
async fn a_custom_backoff_gets_the_failed_attempt_number() {
    let upstream = Upstream::new([fail("a"), fail("b"), ok()]);
    let layer = RetryLayer::new(config())
        .expect("valid config")
        .backoff(Backoff::custom(|attempt| Duration::from_secs(attempt.into())));

    layer.layer(upstream.clone()).oneshot(1).await.expect("the call succeeds");

    assert_eq!(upstream.gaps(), [Duration::from_secs(1), Duration::from_secs(2)]);
}

fn durations(max_nanos: u64) -> impl Strategy<Value = Duration> {
    (1..=max_nanos).prop_map(Duration::from_nanos)
}

proptest! {
    #[test]
    fn full_jitter_stays_within_zero_and_the_capped_exponential(
        base in durations(10_000_000_000), max in durations(100_000_000_000), attempt in 1u32..80, seed in any::<u64>(),
    ) {
        let backoff = Backoff::exponential(base, max);
        let ceiling = base.saturating_mul(2u32.saturating_pow(attempt - 1)).min(max);
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
        for _ in 0..16 {
            let delay = backoff.delay_with(attempt, Duration::ZERO, &mut rng);
            prop_assert!(delay <= ceiling, "{delay:?} above {ceiling:?}");
        }
        prop_assert_eq!(backoff.clone().without_jitter().delay(attempt, Duration::ZERO), ceiling);
    }

    #[test]
    fn decorrelated_jitter_stays_within_base_and_three_times_the_previous_capped(
        base in durations(1_000_000_000), spread in 1u64..100, previous in durations(100_000_000_000),
        attempt in 1u32..80, seed in any::<u64>(),
    ) {
        let max = base * spread as u32;
        let previous = previous.max(base);
        let backoff = Backoff::decorrelated(base, max);
        let ceiling = previous.saturating_mul(3).min(max);
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
        for _ in 0..16 {
            let delay = backoff.delay_with(attempt, previous, &mut rng);
            prop_assert!(delay >= base && delay <= ceiling, "{delay:?} outside [{base:?}, {ceiling:?}]");
        }
        // Before the first retry, "previous" is the base.
        let first = backoff.delay_with(1, Duration::ZERO, &mut rng);
        prop_assert!(first >= base && first <= (base * 3).min(max));
    }

    #[test]
    fn a_decorrelated_sequence_never_leaves_its_bounds(base in durations(1_000_000_000), spread in 1u32..1000) {
        let max = base * spread;
        let backoff = Backoff::decorrelated(base, max);
        let mut previous = Duration::ZERO;
        for attempt in 1..50 {
            let delay = backoff.delay(attempt, previous);
            prop_assert!(delay >= base && delay <= previous.max(base).saturating_mul(3).min(max));
            previous = delay;
        }
    }

    #[test]
    fn constant_jitter_stays_within_half_and_the_delay(delay in durations(60_000_000_000), attempt in 1u32..100) {
        let got = Backoff::constant(delay).delay(attempt, Duration::ZERO);
        prop_assert!(got >= delay / 2 && got <= delay);
    }
}

// ----- Retry-After and retry_in -----

#[tokio::test(start_paused = true)]
async fn retry_after_of_a_429_is_waited_exactly() {
    let upstream = Upstream::new([Step::Status(429, Some("7".into())), ok()]);
    let service = RetryLayer::new(config())
        .expect("valid config")
        .retry_on_response(RetryOnStatus::transient())
        .layer(upstream.clone());

    let response = service.oneshot(1).await.expect("the call succeeds");

    assert_eq!(response.status(), 200);
    assert_eq!(upstream.gaps(), [Duration::from_secs(7)]);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_capped_by_max_retry_after() {
    let upstream = Upstream::new([Step::Status(503, Some("3600".into())), ok()]);
    let config = RetryConfig { max_retry_after: Duration::from_secs(30), ..config() };
    let service = RetryLayer::new(config)
        .expect("valid config")
        .retry_on_response(RetryOnStatus::transient())
        .layer(upstream.clone());

    service.oneshot(1).await.expect("the call succeeds");

    assert_eq!(upstream.gaps(), [Duration::from_secs(30)]);
}

#[tokio::test(start_paused = true)]
async fn retry_after_as_an_http_date_is_honoured_and_capped() {
    let in_an_hour = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3600));
    let upstream = Upstream::new([Step::Status(503, Some(in_an_hour)), ok()]);
    let config = RetryConfig { max_retry_after: Duration::from_secs(45), ..config() };
    let service = RetryLayer::new(config)
        .expect("valid config")
        .retry_on_response(RetryOnStatus::transient())
        .layer(upstream.clone());

    service.oneshot(1).await.expect("the call succeeds");

    assert_eq!(upstream.gaps(), [Duration::from_secs(45)]);
}

#[test]
fn retry_after_values_parse_as_delta_seconds_or_http_dates() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let header = |text: &str| http::HeaderValue::from_str(text).expect("a valid header value");
    let date = |time: SystemTime| httpdate::fmt_http_date(time);
    let seconds = Duration::from_secs;

    assert_eq!(parse_retry_after(&header(" 30 "), now), Some(Duration::from_secs(30)));
    assert_eq!(parse_retry_after(&header(&date(now + seconds(90))), now), Some(Duration::from_secs(90)));
    assert_eq!(
        parse_retry_after(&header(&date(now - seconds(90))), now),
        Some(Duration::ZERO),
        "a past date means now"
    );
    assert_eq!(parse_retry_after(&header("-5"), now), None);
    assert_eq!(parse_retry_after(&header("tomorrow"), now), None);
}

#[tokio::test(start_paused = true)]
async fn the_wait_is_the_longer_of_backoff_and_retry_after() {
    let upstream = Upstream::new([Step::Status(503, Some("2".into())), Step::Status(503, Some("9".into())), ok()]);
    let config = RetryConfig { base_delay: Duration::from_secs(5), ..config() };
    let service = RetryLayer::new(config)
        .expect("valid config")
        .retry_on_response(RetryOnStatus::transient())
        .layer(upstream.clone());

    service.oneshot(1).await.expect("the call succeeds");

    assert_eq!(upstream.gaps(), [Duration::from_secs(5), Duration::from_secs(9)]);
}

#[tokio::test(start_paused = true)]
async fn a_rate_limiters_retry_in_is_waited() {
    let limited = RateLimited { retry_in: Duration::from_millis(1500), key: Some("shop.example".into()) };
    let upstream = Upstream::new([Step::Fail(Box::new(limited)), ok()]);

    retry(config(), &upstream).oneshot(1).await.expect("the call succeeds");

    assert_eq!(upstream.gaps(), [Duration::from_millis(1500)]);
}

#[tokio::test(start_paused = true)]
async fn a_retryable_response_is_returned_as_is_after_the_last_attempt() {
    let upstream = Upstream::new([Step::Status(503, None), Step::Status(503, None)]);
    let config = RetryConfig { max_attempts: 2, ..config() };
    let service = RetryLayer::new(config)
        .expect("valid config")
        .retry_on_response(RetryOnStatus::transient())
        .layer(upstream.clone());

    assert_eq!(service.oneshot(1).await.expect("the call succeeds").status(), 503);
    assert_eq!(upstream.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_huge_retry_after_is_capped_and_does_not_panic() {
    let upstream = Upstream::new([Step::Status(503, Some(u64::MAX.to_string())), ok()]);
    let config = RetryConfig { max_retry_after: RetryConfig::MAX_DURATION, ..config() };
    let service = RetryLayer::new(config)
        .expect("valid config")
        .retry_on_response(RetryOnStatus::transient())
        .layer(upstream.clone());

    service.oneshot(1).await.expect("the call succeeds");

    assert_eq!(upstream.gaps(), [RetryConfig::MAX_DURATION]);
}

#[tokio::test(start_paused = true)]
async fn an_uncapped_custom_backoff_does_not_panic() {
    // Backoff::custom is used as is: Duration::MAX cannot be added to an Instant, so the
    // wait ends in the far future (about 30 years) instead of panicking.
    let upstream = Upstream::new([fail("reset"), ok()]);
    let config = RetryConfig { attempt_timeout: Some(RetryConfig::MAX_DURATION), ..config() };
    let service = RetryLayer::new(config)
        .expect("valid config")
        .backoff(Backoff::custom(|_| Duration::MAX))
        .layer(upstream.clone());

    service.oneshot(1).await.expect("the call succeeds");

    let gaps = upstream.gaps();
    assert_eq!(gaps.len(), 1);
    assert!(gaps[0] >= Duration::from_secs(86_400 * 365 * 29), "{:?}", gaps[0]);
}

// ----- per-attempt timeout -----

#[tokio::test(start_paused = true)]
async fn an_attempt_over_its_timeout_fails_with_timed_out_and_is_retried() {
    let upstream = Upstream::new([Step::Hang, ok()]);
    let config = RetryConfig { attempt_timeout: Some(Duration::from_secs(2)), ..config() };
    let start = Instant::now();

    retry(config, &upstream).oneshot(1).await.expect("the call succeeds");

    assert_eq!(upstream.gaps(), [Duration::from_secs(2)]);
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn when_every_attempt_times_out_the_error_is_timed_out() {
    let upstream = Upstream::new([Step::Hang, Step::Hang, Step::Hang]);
    let config = RetryConfig { attempt_timeout: Some(Duration::from_secs(2)), ..config() };
    let start = Instant::now();

    let error = retry(config, &upstream).oneshot(1).await.expect_err("the call fails");

    assert_eq!(error.downcast_ref::<TimedOut>(), Some(&TimedOut { after: Duration::from_secs(2) }));
    assert_eq!(start.elapsed(), Duration::from_secs(6));
    assert_eq!(upstream.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn retry_stacks_with_timeout_and_fallback() {
    // Given a fallback around a retry around a 2 s timeout, and an upstream that hangs
    let upstream = Upstream::new([Step::Hang, Step::Hang, Step::Hang]);
    let degraded = |_: BoxError| http::Response::builder().status(299).body(()).expect("a valid response");
    let service = ServiceBuilder::new()
        .layer(FallbackLayer::value(is_rejection, degraded))
        .layer(RetryLayer::new(config()).expect("valid config"))
        .layer(TimeoutLayer::new(Duration::from_secs(2)))
        .service(upstream.clone());
    let start = Instant::now();

    // When a call times out on every attempt, then the fallback answers after 3 × 2 s
    assert_eq!(service.oneshot(1).await.expect("the fallback answers").status(), 299);
    assert_eq!(upstream.calls(), 3);
    assert_eq!(start.elapsed(), Duration::from_secs(6));
}

// ----- policies -----

#[tokio::test(start_paused = true)]
async fn ok_responses_are_not_retried_by_default() {
    let upstream = Upstream::new([Step::Status(503, None), ok()]);

    assert_eq!(retry(config(), &upstream).oneshot(1).await.expect("the call succeeds").status(), 503);
    assert_eq!(upstream.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_response_policy_closure_chooses_what_to_retry() {
    let upstream = Upstream::new([Step::Status(403, None), Step::Status(404, None), ok()]);
    let service = RetryLayer::new(config())
        .expect("valid config")
        .retry_on_response(|response: &Response| Decision::retry_if(response.status() == 403))
        .layer(upstream.clone());

    assert_eq!(service.oneshot(1).await.expect("the call succeeds").status(), 404);
    assert_eq!(upstream.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_error_policy_chooses_which_errors_are_retried() {
    let upstream = Upstream::new([fail("connection reset"), fail("certificate invalid"), ok()]);
    let service = RetryLayer::new(config())
        .expect("valid config")
        .retry_on_error(|error: &BoxError| {
            if error.to_string().contains("certificate") { Decision::Return } else { decide_by_default(error) }
        })
        .layer(upstream.clone());

    assert_eq!(service.oneshot(1).await.expect_err("the call fails").to_string(), "certificate invalid");
    assert_eq!(upstream.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_or_a_full_bulkhead_is_not_retried_by_default() {
    let open = CircuitOpen { state: "open", retry_in: Some(Duration::from_secs(30)), key: None };
    let full = BulkheadFull { partition: "regular".into(), max_concurrent: 50, waited: Duration::from_secs(1) };
    for refusal in [Box::new(open) as BoxError, Box::new(full)] {
        let upstream = Upstream::new([Step::Fail(refusal), ok()]);

        let error = retry(config(), &upstream).oneshot(1).await.expect_err("the call fails");

        assert!(Rejection::of(&*error).is_some());
        assert_eq!(upstream.calls(), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn a_breaker_retried_by_choice_is_retried_after_its_retry_in() {
    let open = CircuitOpen { state: "open", retry_in: Some(Duration::from_secs(4)), key: Some("proxy-7".into()) };
    let upstream = Upstream::new([Step::Fail(Box::new(open)), ok()]);
    let service = RetryLayer::new(config())
        .expect("valid config")
        .retry_on_error(|_: &BoxError| Decision::Retry)
        .layer(upstream.clone());

    service.oneshot(1).await.expect("the call succeeds");

    assert_eq!(upstream.gaps(), [Duration::from_secs(4)]);
}

// ----- budget -----

#[tokio::test(start_paused = true)]
async fn the_budget_stops_a_retry_storm() {
    // Given 1000 concurrent calls to an upstream that always fails, with 3 attempts each
    let upstream = Upstream::new([]);
    let config = RetryConfig { max_attempts: 3, ..RetryConfig::default() };
    let budget = config.budget.clone();
    let service = RetryLayer::new(config).expect("valid config").layer(upstream.clone());

    // When they all run
    let results = join_all((0..1000).map(|i| service.clone().oneshot(i))).await;

    // Then retries add at most the budget's share plus its floor, not 2000 attempts
    let ceiling = 1000.0 * (1.0 + budget.retry_percent) + f64::from(budget.min_per_sec) * budget.ttl.as_secs_f64();
    assert!(upstream.calls() as f64 <= ceiling, "{} attempts, budget allows {ceiling}", upstream.calls());
    assert!(upstream.calls() > 1000, "the floor and the share still allow some retries");
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(e) if matches!(Rejection::of(&**e), Some(Rejection::RetryBudgetExhausted(_)))))
        .count();
    assert!(refused >= 700, "{refused} calls refused a retry");
    eprintln!("storm: {} attempts for 1000 calls, {refused} refused a retry", upstream.calls());
}

#[tokio::test(start_paused = true)]
async fn budget_refusal_says_how_many_attempts_were_made_and_the_last_error() {
    let upstream = Upstream::new([fail("connection reset by peer")]);
    let config = RetryConfig {
        budget: BudgetConfig { min_per_sec: 0, retry_percent: 0.0, ..BudgetConfig::default() },
        ..config()
    };

    let error = retry(config, &upstream).oneshot(1).await.expect_err("the call fails");

    let refused = error.downcast_ref::<RetryBudgetExhausted>().expect("a budget refusal");
    assert_eq!(
        refused,
        &RetryBudgetExhausted { attempts: 1, last_error: "connection reset by peer".into(), source: None }
    );
    assert_eq!(
        std::error::Error::source(refused).map(ToString::to_string).as_deref(),
        Some("connection reset by peer")
    );
}

#[tokio::test(start_paused = true)]
async fn a_budget_refusal_keeps_the_last_error_as_its_source() {
    // Given an attempt that times out, and a budget that refuses the retry
    let upstream = Upstream::new([Step::Hang, ok()]);
    let config = RetryConfig {
        attempt_timeout: Some(Duration::from_secs(2)),
        budget: BudgetConfig { min_per_sec: 0, retry_percent: 0.0, ..BudgetConfig::default() },
        ..config()
    };

    let error = retry(config, &upstream).oneshot(1).await.expect_err("the call fails");

    // Then an outer layer can still see the timeout inside the refusal
    assert!(matches!(Rejection::of(&*error), Some(Rejection::RetryBudgetExhausted(r)) if r.attempts == 1));
    let source = error.source().expect("the last error is the source");
    assert_eq!(source.downcast_ref::<TimedOut>(), Some(&TimedOut { after: Duration::from_secs(2) }));
    assert_eq!(upstream.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_budget_is_shared_across_clones() {
    // Given a budget of exactly one retry (1/s over 1 s, no share of calls)
    let upstream = Upstream::new([fail("a"), fail("b"), fail("c")]);
    let budget =
        BudgetConfig { retry_percent: 0.0, min_per_sec: 1, ttl: Duration::from_secs(1), ..BudgetConfig::default() };
    let config = RetryConfig { max_attempts: 2, budget, ..config() };
    let first = retry(config, &upstream);
    let second = first.clone();
    assert!(Arc::ptr_eq(first.retry_budget().expect("a budget"), second.retry_budget().expect("a budget")));

    // When one clone spends it
    assert_eq!(first.oneshot(1).await.expect_err("the call fails").to_string(), "b");

    // Then the other has none left
    let error = second.oneshot(2).await.expect_err("the call fails");
    assert!(matches!(Rejection::of(&*error), Some(Rejection::RetryBudgetExhausted(r)) if r.attempts == 1));
    assert_eq!(upstream.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_retryable_response_refused_by_the_budget_is_returned_as_is() {
    let upstream = Upstream::new([Step::Status(503, None), ok()]);
    let config = RetryConfig {
        budget: BudgetConfig { min_per_sec: 0, retry_percent: 0.0, ..BudgetConfig::default() },
        ..config()
    };
    let service = RetryLayer::new(config)
        .expect("valid config")
        .retry_on_response(RetryOnStatus::transient())
        .layer(upstream.clone());

    assert_eq!(service.oneshot(1).await.expect("the call succeeds").status(), 503);
    assert_eq!(upstream.calls(), 1);
}

fn budget(retry_percent: f64, min_per_sec: u32, ttl_secs: u64) -> RetryBudget {
    RetryBudget::new(BudgetConfig { retry_percent, min_per_sec, ttl: Duration::from_secs(ttl_secs), enabled: true })
        .expect("valid budget")
}

fn withdrawals(budget: &RetryBudget) -> usize {
    std::iter::from_fn(|| budget.try_withdraw().then_some(())).take(10_000).count()
}

#[tokio::test(start_paused = true)]
async fn a_small_share_of_few_calls_still_deposits() {
    // tower-rs/tower#857: a token price rounded to an integer mis-counts fractional shares.
    let budget = budget(0.1, 0, 10);
    for _ in 0..9 {
        budget.deposit();
    }
    assert_eq!(withdrawals(&budget), 0, "nine calls at 10 % are 0.9 of a retry");
    budget.deposit();
    assert_eq!(withdrawals(&budget), 1, "the tenth completes one");
}

#[tokio::test(start_paused = true)]
async fn a_fractional_share_is_not_rounded_up() {
    // tower-rs/tower#857: with `retry_percent = 0.6`, tower's TpsBudget grants a retry per call.
    let budget = budget(0.6, 0, 1);
    for _ in 0..10 {
        budget.deposit();
    }
    assert_eq!(withdrawals(&budget), 6);
}

#[tokio::test(start_paused = true)]
async fn deposits_expire_after_the_ttl() {
    let budget = budget(1.0, 0, 1);
    budget.deposit();
    budget.deposit();
    tokio::time::advance(Duration::from_millis(850)).await;
    assert!(budget.try_withdraw(), "still within the TTL");

    tokio::time::advance(Duration::from_millis(200)).await;
    assert!(!budget.try_withdraw(), "the second deposit expired with the first");
}

#[tokio::test(start_paused = true)]
async fn the_floor_allows_min_per_sec_times_ttl_retries_per_window() {
    let budget = budget(0.0, 10, 2);
    assert_eq!(withdrawals(&budget), 20);
    assert!((budget.balance() - 0.0).abs() < 1e-9);

    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(withdrawals(&budget), 20, "withdrawals expire like deposits");
}

#[tokio::test(start_paused = true)]
async fn a_share_finer_than_the_resolution_is_floored_not_rounded_up() {
    // 0.0015 deposits 0.001 a call: 1000 calls buy one retry, not two.
    let budget = budget(0.0015, 0, 10);
    for _ in 0..1000 {
        budget.deposit();
    }
    assert_eq!(withdrawals(&budget), 1);
}

#[tokio::test(start_paused = true)]
async fn a_one_token_reserve_grants_one_retry_across_a_bucket_edge() {
    // A 1-token reserve (1/s over 1 s): buckets of 100 ms.
    let budget = Arc::new(budget(0.0, 1, 1));
    let other = Arc::clone(&budget);
    tokio::time::advance(Duration::from_micros(99_990)).await;
    assert!(budget.try_withdraw(), "the reserve's token, just before the edge");

    tokio::time::advance(Duration::from_micros(20)).await;
    assert!(!other.try_withdraw(), "just after the edge, the token is still spent");
    assert_eq!(withdrawals(&budget), 0);

    // Once the first bucket expires, the reserve is whole again.
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(withdrawals(&budget), 1);
}

#[test]
fn a_budget_works_across_threads_without_overspending() {
    let budget = Arc::new(budget(0.5, 0, 60));
    let spent: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let budget = Arc::clone(&budget);
                scope.spawn(move || {
                    (0..10_000)
                        .map(|_| {
                            budget.deposit();
                            usize::from(budget.try_withdraw())
                        })
                        .sum::<usize>()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("the worker finishes")).sum()
    });
    assert!(spent <= 10_000, "{spent} retries from 20 000 calls at 50 %");
    assert!(spent >= 9_990, "{spent}: deposits were lost");
}

#[tokio::test(start_paused = true)]
async fn each_retry_sends_the_request_as_prepared_from_the_last_attempt() {
    // The request names the upstreams already tried; the service fails on the first two.
    let seen: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let service = tower::service_fn({
        let seen = seen.clone();
        move |tried: Vec<String>| {
            seen.lock().expect("not poisoned").push(tried.clone());
            let upstream = format!("upstream-{}", tried.len());
            async move { if tried.len() < 2 { Err::<String, BoxError>(upstream.into()) } else { Ok(upstream) } }
        }
    });
    let config = RetryConfig {
        max_attempts: 5,
        budget: BudgetConfig { enabled: false, ..BudgetConfig::default() },
        ..RetryConfig::default()
    };
    let retry = RetryLayer::new(config)
        .expect("valid config")
        .retry_on_error(|_: &BoxError| Decision::Retry)
        .prepare_retry(|tried: &mut Vec<String>, last: &Result<String, BoxError>| {
            if let Err(failed) = last {
                tried.push(failed.to_string());
            }
        });

    let answer = retry.layer(service).oneshot(Vec::new()).await.expect("the third attempt answers");

    assert_eq!(answer, "upstream-2");
    let seen = seen.lock().expect("not poisoned").clone();
    assert_eq!(seen, [vec![], vec!["upstream-0".to_owned()], vec!["upstream-0".to_owned(), "upstream-1".to_owned()]]);
}
