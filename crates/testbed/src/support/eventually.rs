//! Waiting for something another task makes true, without guessing a sleep.

use std::time::Duration;

use tokio::time::Instant;

/// How often a condition is checked again.
const POLL: Duration = Duration::from_millis(20);

/// Polls `check` every 20 ms until it holds; panics naming `what` after `within`.
///
/// ```
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let started = tokio::time::Instant::now();
/// harvester_testbed::support::eventually(Duration::from_secs(1), "50 ms passed", || async move {
///     started.elapsed() >= Duration::from_millis(50)
/// })
/// .await;
/// # }
/// ```
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_some(within, what, || {
        let holds = check();
        async move { holds.await.then_some(()) }
    })
    .await
}

/// Polls `check` every 20 ms until it gives a value, and returns it; panics naming `what`
/// after `within`.
pub async fn eventually_some<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(POLL).await;
    }
}
