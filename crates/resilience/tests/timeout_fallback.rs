//! Timeout and fallback, as a specification. Time is tokio's paused clock.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use harvester_resilience::fallback::{FallbackLayer, is_rejection, is_timeout};
use harvester_resilience::{BoxError, CircuitOpen, Rejection, TimedOut, TimeoutLayer};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};

/// Answers `"page {n}"` `n` seconds after the call.
fn takes_n_seconds() -> impl Service<u64, Response = String, Error = Infallible, Future: Send> + Clone + Send {
    service_fn(|n: u64| {
        let done = Instant::now() + Duration::from_secs(n);
        async move {
            tokio::time::sleep_until(done).await;
            Ok(format!("page {n}"))
        }
    })
}

/// Fails every call with `error()`.
fn failing(error: fn() -> BoxError) -> impl Service<u64, Response = String, Error = BoxError> + Clone {
    service_fn(move |_: u64| async move { Err::<String, _>(error()) })
}

fn breaker_open() -> BoxError {
    Box::new(CircuitOpen { state: "open", retry_in: Some(Duration::from_secs(5)), key: None })
}

fn not_found() -> BoxError {
    "404 not found".into()
}

// ----- timeout -----

#[tokio::test(start_paused = true)]
async fn the_timeout_fires_exactly_at_the_limit_with_timed_out() {
    let service = TimeoutLayer::new(Duration::from_secs(10)).layer(takes_n_seconds());
    let start = Instant::now();

    let error = service.oneshot(60).await.expect_err("the call fails");

    assert_eq!(start.elapsed(), Duration::from_secs(10));
    assert_eq!(error.downcast_ref::<TimedOut>(), Some(&TimedOut { after: Duration::from_secs(10) }));
    assert!(matches!(Rejection::of(&*error), Some(Rejection::TimedOut(_))));
}

#[tokio::test(start_paused = true)]
async fn a_call_finishing_at_the_limit_still_answers() {
    let service = TimeoutLayer::new(Duration::from_secs(10)).layer(takes_n_seconds());

    assert_eq!(service.oneshot(10).await.expect("the call succeeds"), "page 10");
}

#[tokio::test(start_paused = true)]
async fn a_call_within_the_limit_answers_when_it_finishes() {
    let service = TimeoutLayer::new(Duration::from_secs(10)).layer(takes_n_seconds());
    let start = Instant::now();

    assert_eq!(service.oneshot(3).await.expect("the call succeeds"), "page 3");
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn the_timeout_passes_inner_errors_through() {
    let service = TimeoutLayer::new(Duration::from_secs(10)).layer(failing(not_found));

    let error = service.oneshot(1).await.expect_err("the call fails");

    assert_eq!(error.to_string(), "404 not found");
    assert!(Rejection::of(&*error).is_none());
}

#[tokio::test(start_paused = true)]
async fn each_call_has_its_own_limit_from_when_it_was_made() {
    let mut service = TimeoutLayer::new(Duration::from_secs(10)).layer(takes_n_seconds());
    let first = service.ready().await.expect("always ready").call(8);
    tokio::time::advance(Duration::from_secs(5)).await;
    let second = service.ready().await.expect("always ready").call(8);

    // The second ends at 13 s, after the first call's limit but within its own (15 s).
    assert_eq!(first.await.expect("the call succeeds"), "page 8");
    assert_eq!(second.await.expect("the call succeeds"), "page 8");
}

#[tokio::test(start_paused = true)]
async fn the_limit_counts_from_the_call_even_when_the_first_poll_comes_later() {
    let mut service = TimeoutLayer::new(Duration::from_secs(10)).layer(takes_n_seconds());
    let start = Instant::now();
    let call = service.ready().await.expect("always ready").call(60);
    tokio::time::advance(Duration::from_secs(7)).await;

    let error = call.await.expect_err("the call fails");

    // 3 s after the first poll, 10 s after the call.
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    assert!(error.is::<TimedOut>());
}

// ----- fallback -----

#[tokio::test(start_paused = true)]
async fn a_matching_error_is_answered_with_the_value() {
    let service =
        FallbackLayer::value(is_rejection, |error: BoxError| format!("degraded: {error}")).layer(failing(breaker_open));

    let answer = service.oneshot(1).await.expect("the call succeeds");

    assert!(answer.starts_with("degraded: circuit open"), "{answer}");
}

#[tokio::test(start_paused = true)]
async fn other_errors_pass_through_the_fallback() {
    let service = FallbackLayer::value(is_rejection, |_: BoxError| "degraded".to_owned()).layer(failing(not_found));

    assert_eq!(service.oneshot(1).await.expect_err("the call fails").to_string(), "404 not found");
}

#[tokio::test(start_paused = true)]
async fn successes_never_reach_the_fallback() {
    let used = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&used);
    let service = FallbackLayer::value(
        |_: &BoxError| true,
        move |_: BoxError| {
            counter.fetch_add(1, Ordering::Relaxed);
            "degraded".to_owned()
        },
    )
    .layer(takes_n_seconds());

    assert_eq!(service.oneshot(1).await.expect("the call succeeds"), "page 1");
    assert_eq!(used.load(Ordering::Relaxed), 0);
}

#[tokio::test(start_paused = true)]
async fn a_matching_error_sends_the_same_request_to_the_alternative_service() {
    let cheaper_pool =
        service_fn(|n: u64| async move { Ok::<_, Infallible>(format!("page {n} via the cheaper pool")) });
    let service = FallbackLayer::service(is_rejection, cheaper_pool).layer(failing(breaker_open));

    assert_eq!(service.oneshot(42).await.expect("the call succeeds"), "page 42 via the cheaper pool");
}

#[tokio::test(start_paused = true)]
async fn an_error_of_the_alternative_service_is_returned() {
    let service = FallbackLayer::service(is_rejection, failing(not_found)).layer(failing(breaker_open));

    assert_eq!(service.oneshot(1).await.expect_err("the call fails").to_string(), "404 not found");
}

// ----- together -----

#[tokio::test(start_paused = true)]
async fn a_timed_out_call_falls_back_to_the_cache() {
    let cache = service_fn(|n: u64| async move { Ok::<_, Infallible>(format!("cached page {n}")) });
    let service = ServiceBuilder::new()
        .layer(FallbackLayer::service(is_timeout, cache))
        .layer(TimeoutLayer::new(Duration::from_secs(5)))
        .service(takes_n_seconds());
    let start = Instant::now();

    assert_eq!(service.clone().oneshot(30).await.expect("the call succeeds"), "cached page 30");
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!(service.oneshot(2).await.expect("the call succeeds"), "page 2");
}

#[tokio::test(start_paused = true)]
async fn a_slow_fallback_is_bounded_by_an_outer_timeout() {
    let slow_value = FallbackLayer::service(is_timeout, takes_n_seconds());
    let service = ServiceBuilder::new()
        .layer(TimeoutLayer::new(Duration::from_secs(20)))
        .layer(slow_value)
        .layer(TimeoutLayer::new(Duration::from_secs(5)))
        .service(service_fn(|_: u64| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<_, Infallible>(String::new())
        }));
    let start = Instant::now();

    // The inner limit (5 s) sends 60 to the fallback, which would take 60 s more: the
    // outer limit ends the call at 20 s.
    let error = service.oneshot(60).await.expect_err("the call fails");

    assert_eq!(error.downcast_ref::<TimedOut>(), Some(&TimedOut { after: Duration::from_secs(20) }));
    assert_eq!(start.elapsed(), Duration::from_secs(20));
}

#[tokio::test(start_paused = true)]
async fn layers_and_services_are_clone_and_clones_behave_alike() {
    fn assert_clone<T: Clone>(_: &T) {}
    let timeout = TimeoutLayer::new(Duration::from_secs(1));
    let fallback = FallbackLayer::value(is_timeout, |_: BoxError| "late".to_owned());
    assert_clone(&timeout);
    assert_clone(&fallback);
    let service = ServiceBuilder::new().layer(fallback).layer(timeout).service(takes_n_seconds());
    assert_clone(&service);

    let answers = futures::future::join_all((0..3).map(|n| service.clone().oneshot(n))).await;

    let answers: Vec<String> = answers.into_iter().map(Result::unwrap).collect();
    assert_eq!(answers, ["page 0", "page 1", "late"]);
}

#[tokio::test(start_paused = true)]
async fn stacked_services_and_their_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let cache = service_fn(|n: u64| async move { Ok::<_, Infallible>(format!("cached page {n}")) });
    let mut service = ServiceBuilder::new()
        .layer(FallbackLayer::service(is_rejection, cache))
        .layer(FallbackLayer::value(is_timeout, |_: BoxError| "late".to_owned()))
        .layer(TimeoutLayer::default())
        .service(takes_n_seconds());
    assert_send(&service);
    assert_send(&service.call(1));
}
