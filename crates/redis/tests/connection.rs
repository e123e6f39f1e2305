//! The connection against a real redis-server on loopback: commands bounded by the
//! response timeout, blocking reads on a dedicated connection without it, pub/sub, a
//! reconnection after a restart, and errors that never show credentials.

use std::time::Duration;

use futures::StreamExt;
use harvester_redis::redis::{self, AsyncCommands};
use harvester_redis::{RedisConfig, RedisConnection, RedisError};
use harvester_testbed::support::Redis;
use tokio::time::Instant;

const RESPONSE_TIMEOUT: Duration = Duration::from_millis(200);

fn config(redis: &Redis) -> RedisConfig {
    RedisConfig {
        url: redis.url(),
        key_prefix: "test:".into(),
        connect_timeout: Duration::from_secs(1),
        response_timeout: RESPONSE_TIMEOUT,
        ..Default::default()
    }
}

async fn connect(redis: &Redis) -> RedisConnection {
    RedisConnection::connect(&config(redis)).await.unwrap_or_else(|e| panic!("{e}\n{}", redis.logs()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_run_on_the_shared_connection() {
    let redis = Redis::start();
    let connection = connect(&redis).await;
    let key = format!("{}greeting", connection.key_prefix());
    let () = connection
        .run(|mut c| {
            let key = key.clone();
            async move { c.set(key, "hello").await }
        })
        .await
        .expect("SET");
    let read: String = connection.run(|mut c| async move { c.get(key).await }).await.expect("GET");
    assert_eq!(read, "hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_read_times_out_on_the_shared_connection_but_not_on_a_dedicated_one() {
    let redis = Redis::start();
    let connection = connect(&redis).await;
    let blpop = || redis::cmd("BLPOP").arg("test:empty").arg(0.6).clone();

    let shared = connection.run(|mut c| async move { blpop().query_async::<Option<(String, String)>>(&mut c).await });
    assert!(matches!(shared.await, Err(RedisError::TimedOut { .. })), "the response timeout bounds it");

    let mut dedicated = connection.dedicated().await.expect("a dedicated connection");
    let started = Instant::now();
    let nothing: Option<(String, String)> = blpop().query_async(&mut dedicated).await.expect("BLOCK runs out quietly");
    assert_eq!(nothing, None);
    assert!(started.elapsed() > RESPONSE_TIMEOUT, "it blocked past the response timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_receives_what_is_published() {
    let redis = Redis::start();
    let connection = connect(&redis).await;
    let mut pubsub = connection.pubsub().await.expect("a pub/sub connection");
    pubsub.subscribe("test:news").await.expect("SUBSCRIBE");
    let mut messages = pubsub.into_on_message();

    let heard: i64 = connection.run(|mut c| async move { c.publish("test:news", "hi").await }).await.expect("PUBLISH");
    assert_eq!(heard, 1);
    let message = tokio::time::timeout(Duration::from_secs(5), messages.next()).await.expect("in time").expect("one");
    assert_eq!(message.get_payload_bytes(), b"hi");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_connection_comes_back_after_a_restart() {
    let mut redis = Redis::start();
    let connection = connect(&redis).await;
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pong = connection.run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await });
        match pong.await {
            Ok(pong) => break assert_eq!(pong, "PONG"),
            Err(error) => assert!(Instant::now() < deadline, "still failing: {error}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_name_the_endpoint_and_never_the_credentials() {
    let mut redis = Redis::start();
    let with_secrets =
        RedisConfig { url: format!("redis://us3r:pa55word@{}", redis.addr()), password: None, ..config(&redis) };
    let lazy = RedisConnection::lazy(&with_secrets).expect("valid config");
    redis.stop();

    let mut shown = vec![format!("{lazy:?}")];
    let refused = RedisConnection::connect(&with_secrets).await.expect_err("Redis is down");
    assert!(matches!(refused, RedisError::Connect { .. }), "{refused:?}");
    shown.push(format!("{refused} {refused:?}"));
    let command = lazy.run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await }).await;
    shown.push(format!("{:?}", command.expect_err("Redis is down")));
    shown.push(format!("{:?}", lazy.dedicated().await.expect_err("Redis is down")));
    shown.push(format!("{:?}", lazy.pubsub().await.err()));

    let shown = shown.join("\n");
    assert!(!shown.contains("pa55word") && !shown.contains("us3r"), "credentials shown:\n{shown}");
    assert!(shown.contains(&format!("redis://***:***@{}", redis.addr())), "{shown}");
}

#[test]
fn a_connection_needs_a_tokio_runtime() {
    let config = RedisConfig::default();
    assert_eq!(RedisConnection::lazy(&config).err(), Some(RedisError::NoRuntime));
}
