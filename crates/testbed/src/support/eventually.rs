//! Waiting for something another task makes true, without guessing a sleep.

use std::time::Duration;

use tokio::time::Instant;

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
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
