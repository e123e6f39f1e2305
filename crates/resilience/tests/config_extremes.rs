//! Every numeric setting of every layer's configuration at its extremes (0, 1, the type's
//! maximum; NaN, ±∞ and huge for floats; `Duration::MAX`): refused with a typed error
//! naming the field, or accepted and then working under a paused clock, calls that fail and
//! calls far apart included, without a panic (proptest reports a panic as a failure).

use std::time::Duration;

use harvester_resilience::breaker::{BreakerConfig, CircuitBreakerLayer, OpenWaitGrowth, SlidingWindow};
use harvester_resilience::bulkhead::{BulkheadConfig, BulkheadLayer, PartitionConfig};
use harvester_resilience::rate_limit::{Quota, RateLimitLayer};
use harvester_resilience::retry::{BudgetConfig, RetryConfig, RetryLayer};
use harvester_resilience::timeout::TimeoutLayer;
use harvester_resilience::{BoxError, ConfigError};
use harvester_testbed::support::extremes::{count, duration, float, paused_runtime, size};
use proptest::prelude::*;
use tower::{Service, ServiceBuilder, ServiceExt};

/// Calls `service` with failing and succeeding calls, some far apart, each within a minute
/// of virtual time.
async fn exercise<S>(mut service: S)
where
    S: Service<u32, Response = u32, Error = BoxError>,
{
    for n in 0..6u32 {
        if n == 4 {
            tokio::time::sleep(Duration::from_secs(3 * 86_400)).await;
        }
        let call = async {
            match service.ready().await {
                Ok(ready) => ready.call(n).await.map(|_| ()),
                Err(e) => Err(e),
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(60), call).await;
    }
}

/// Fails the even calls.
async fn flaky(n: u32) -> Result<u32, std::io::Error> {
    if n.is_multiple_of(2) { Err(std::io::Error::other("down")) } else { Ok(n) }
}

fn refused(e: &ConfigError, prefixes: &[&str]) -> bool {
    prefixes.iter().any(|prefix| e.field.starts_with(prefix))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn quota(rate in count(), period in duration(), burst in count()) {
        match Quota::new(rate, period).and_then(|q| q.allow_burst(burst)) {
            Ok(quota) => {
                prop_assert!(quota.replenish_interval() >= Duration::from_nanos(1));
                paused_runtime().block_on(exercise(
                    ServiceBuilder::new()
                        .layer(RateLimitLayer::direct(quota).wait_up_to(Duration::from_secs(1)))
                        .map_err(BoxError::from)
                        .service_fn(flaky),
                ));
            }
            Err(e) => prop_assert!(refused(&e, &["rate_limit."]), "{e}"),
        }
    }

    #[test]
    fn breaker(
        (failure, slow) in (float(), float()),
        (slow_call, open_wait, max_open_wait, idle) in (duration(), duration(), duration(), duration()),
        (minimum, probes, calls, buckets) in (count(), count(), count(), count()),
        (span, multiplier) in (duration(), float()),
        (time_window, max_keys) in (any::<bool>(), size()),
    ) {
        let window = if time_window { SlidingWindow::Time { span, buckets } } else { SlidingWindow::Count { calls } };
        let config = BreakerConfig {
            failure_rate_threshold: failure,
            slow_call_rate_threshold: slow,
            slow_call_duration: slow_call,
            minimum_calls: minimum,
            open_wait,
            max_open_wait,
            half_open_permitted_calls: probes,
            max_keys,
            key_idle_timeout: idle,
            window,
            open_wait_growth: OpenWaitGrowth::Exponential { multiplier, jitter: harvester_resilience::breaker::Jitter::Full },
            ..BreakerConfig::default()
        };
        match CircuitBreakerLayer::new(config) {
            Ok(layer) => paused_runtime().block_on(exercise(
                ServiceBuilder::new().layer(layer).map_err(BoxError::from).service_fn(flaky),
            )),
            Err(e) => prop_assert!(refused(&e, &["breaker."]), "{e}"),
        }
    }

    #[test]
    fn retry(
        attempts in count(),
        (base, max, attempt_timeout, retry_after, ttl) in (duration(), duration(), proptest::option::of(duration()), duration(), duration()),
        (percent, floor) in (float(), count()),
    ) {
        let config = RetryConfig {
            max_attempts: attempts,
            base_delay: base,
            max_delay: max,
            attempt_timeout,
            max_retry_after: retry_after,
            budget: BudgetConfig { retry_percent: percent, min_per_sec: floor, ttl, ..BudgetConfig::default() },
            ..RetryConfig::default()
        };
        match RetryLayer::new(config) {
            Ok(layer) => paused_runtime().block_on(exercise(
                ServiceBuilder::new().layer(layer).map_err(BoxError::from).service_fn(flaky),
            )),
            Err(e) => prop_assert!(refused(&e, &["retry."]), "{e}"),
        }
    }

    #[test]
    fn bulkhead_and_timeout(concurrent in size(), queue in proptest::option::of(size()), wait in duration(), timeout in duration()) {
        let partition = PartitionConfig { max_concurrent: concurrent, max_queue: queue, max_wait: wait };
        match BulkheadLayer::new(BulkheadConfig::single(partition)) {
            Ok(layer) => paused_runtime().block_on(exercise(
                ServiceBuilder::new()
                    .layer(layer)
                    .layer(TimeoutLayer::new(timeout))
                    .map_err(BoxError::from)
                    .service_fn(flaky),
            )),
            Err(e) => prop_assert!(refused(&e, &["bulkhead."]), "{e}"),
        }
    }
}

/// A name given in a config may be anything a user pasted, a URL with its password
/// included: a refusal names the field and the rule, never the value.
#[test]
fn bulkhead_config_errors_never_repeat_user_text() {
    const SECRET: &str = "redis+unix://x?pass=marker-secret-7f3a";
    let unknown_default = BulkheadConfig { default_partition: SECRET.to_owned(), ..BulkheadConfig::default() };
    let mut zero_wide = BulkheadConfig::single(PartitionConfig::new(0));
    zero_wide.partitions = [(SECRET.to_owned(), PartitionConfig::new(0))].into();
    zero_wide.default_partition = SECRET.to_owned();
    let mut too_patient =
        BulkheadConfig::single(PartitionConfig::new(1).with_queue(1, Duration::from_secs(86_401 * 2)));
    too_patient.partitions = [(SECRET.to_owned(), too_patient.partitions["default"].clone())].into();
    too_patient.default_partition = SECRET.to_owned();

    for config in [unknown_default, zero_wide, too_patient] {
        let error = BulkheadLayer::new(config).expect_err("an invalid config is refused");
        let shown = format!("{error} {error:?}");
        assert!(error.field.starts_with("bulkhead."), "{shown}");
        assert!(!shown.contains("marker-secret"), "{shown}");
    }
}
