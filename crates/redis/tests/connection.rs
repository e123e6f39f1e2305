//! The connection against a real redis-server and a real Redis Cluster on loopback:
//! commands bounded by the response timeout, blocking reads on a dedicated connection
//! without it, pub/sub, a reconnection after a restart, a mode mismatch refused, and
//! errors that never show credentials. The tests written for both kinds run on both
//! (`<test>::standalone`, `<test>::cluster`).

use std::time::Duration;

use futures::StreamExt;
use harvester_redis::redis::{self, AsyncCommands};
use harvester_redis::{RedisConfig, RedisConnection, RedisError, same_slot};
use harvester_testbed::on_standalone_and_cluster;
use harvester_testbed::support::{Redis, RedisCluster, RedisDeployment, RedisKind, RedisServer};
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

fn config_of(redis: &RedisDeployment) -> RedisConfig {
    RedisConfig {
        url: redis.url(),
        cluster: redis.is_cluster(),
        key_prefix: "test:".into(),
        connect_timeout: Duration::from_secs(2),
        response_timeout: RESPONSE_TIMEOUT,
        ..Default::default()
    }
}

async fn connect(redis: &Redis) -> RedisConnection {
    RedisConnection::connect(&config(redis)).await.unwrap_or_else(|e| panic!("{e}\n{}", redis.logs()))
}

async fn connect_to(redis: &RedisDeployment) -> RedisConnection {
    RedisConnection::connect(&config_of(redis)).await.unwrap_or_else(|e| panic!("{e}\n{}", redis.logs()))
}

on_standalone_and_cluster!(
    commands_run_on_the_shared_connection,
    a_blocking_read_times_out_on_the_shared_connection_but_not_on_a_dedicated_one,
    a_subscription_receives_what_is_published_through_any_node,
    a_script_must_keep_its_keys_in_one_slot_on_a_cluster,
);

async fn commands_run_on_the_shared_connection(kind: RedisKind) {
    let redis = RedisDeployment::start(kind).await;
    let connection = connect_to(&redis).await;
    assert_eq!(connection.is_cluster(), redis.is_cluster());
    // Keys spread over the slots (and, on a cluster, over the three nodes).
    let keys: Vec<String> = (0..30).map(|i| format!("{}greeting:{i}", connection.key_prefix())).collect();
    for key in &keys {
        let () = connection
            .run(|mut c| {
                let key = key.clone();
                async move { c.set(&key, format!("hello {key}")).await }
            })
            .await
            .expect("SET");
    }
    for key in &keys {
        let read: String = connection.run(|mut c| async move { c.get(key).await }).await.expect("GET");
        assert_eq!(read, format!("hello {key}"));
    }
}

async fn a_blocking_read_times_out_on_the_shared_connection_but_not_on_a_dedicated_one(kind: RedisKind) {
    let redis = RedisDeployment::start(kind).await;
    let connection = connect_to(&redis).await;
    let blpop = || redis::cmd("BLPOP").arg("test:empty").arg(0.6).clone();

    let shared = connection.run(|mut c| async move { blpop().query_async::<Option<(String, String)>>(&mut c).await });
    assert!(matches!(shared.await, Err(RedisError::TimedOut { .. })), "the response timeout bounds it");

    let mut dedicated = connection.dedicated().await.expect("a dedicated connection");
    let started = Instant::now();
    let nothing: Option<(String, String)> = blpop().query_async(&mut dedicated).await.expect("BLOCK runs out quietly");
    assert_eq!(nothing, None);
    assert!(started.elapsed() > RESPONSE_TIMEOUT, "it blocked past the response timeout");
}

async fn a_subscription_receives_what_is_published_through_any_node(kind: RedisKind) {
    let redis = RedisDeployment::start(kind).await;
    let connection = connect_to(&redis).await;
    let mut pubsub = connection.pubsub().await.expect("a pub/sub connection");
    pubsub.subscribe("test:news").await.expect("SUBSCRIBE");
    let mut messages = pubsub.into_on_message();

    // Through the shared connection, then straight through each node (on a cluster, two
    // of them are not the node subscribed to).
    let _: i64 = connection.run(|mut c| async move { c.publish("test:news", "shared").await }).await.expect("PUBLISH");
    let mut sent = vec!["shared".to_owned()];
    for url in redis.node_urls() {
        let client = redis::Client::open(url.as_str()).expect("a node URL");
        let mut node = client.get_multiplexed_async_connection().await.expect("a node connection");
        let () = node.publish("test:news", &url).await.expect("PUBLISH");
        sent.push(url);
    }
    for expected in sent {
        let message =
            tokio::time::timeout(Duration::from_secs(5), messages.next()).await.expect("in time").expect("one");
        assert_eq!(message.get_payload_bytes(), expected.as_bytes());
    }
}

async fn a_script_must_keep_its_keys_in_one_slot_on_a_cluster(kind: RedisKind) {
    let redis = RedisDeployment::start(kind).await;
    let connection = connect_to(&redis).await;
    let script =
        redis::Script::new("redis.call('SET', KEYS[1], ARGV[1]); redis.call('SET', KEYS[2], ARGV[1]); return 1");
    let (tagged, apart) = (["test:{a}:one", "test:{a}:two"], ["test:a:one", "test:b:two"]);
    assert!(same_slot(tagged) && !same_slot(apart), "the keys are where the test needs them");

    let run = |keys: [&'static str; 2]| {
        let mut invocation = script.key(keys[0]);
        invocation.key(keys[1]).arg("x");
        connection.run(|mut c| async move { invocation.invoke_async::<i64>(&mut c).await })
    };
    assert_eq!(run(tagged).await.expect("one slot"), 1);
    let across = run(apart).await;
    if redis.is_cluster() {
        let error = across.expect_err("a cluster refuses keys of two slots in one script");
        assert!(error.to_string().to_ascii_uppercase().contains("CROSSSLOT"), "{error}");
    } else {
        assert_eq!(across.expect("standalone Redis has no slots"), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mode_mismatch_is_refused_naming_the_flag() {
    let (standalone, cluster) = (Redis::start(), RedisCluster::start().await);
    let as_standalone = RedisConfig { url: cluster.url(), ..config(&standalone) };
    let refused = RedisConnection::connect(&as_standalone).await.expect_err("a cluster node, not standalone");
    assert!(matches!(refused, RedisError::WrongMode { cluster_node: true, .. }), "{refused:?}");
    assert!(refused.to_string().contains("redis.cluster = true"), "{refused}");

    let as_cluster = RedisConfig { cluster: true, ..config(&standalone) };
    let refused = RedisConnection::connect(&as_cluster).await.expect_err("standalone, not a cluster node");
    assert!(matches!(refused, RedisError::WrongMode { cluster_node: false, .. }), "{refused:?}");
    assert!(refused.to_string().contains("redis.cluster = false"), "{refused}");
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
    let standalone =
        RedisConfig { url: format!("redis://us3r:pa55word@{}", redis.addr()), password: None, ..config(&redis) };
    let cluster = RedisConfig { cluster: true, ..standalone.clone() };
    let lazy = [RedisConnection::lazy(&standalone).expect("valid"), RedisConnection::lazy(&cluster).expect("valid")];
    redis.stop();

    let mut shown = Vec::new();
    for (config, lazy) in [standalone, cluster].iter().zip(lazy) {
        shown.push(format!("{lazy:?}"));
        let refused = RedisConnection::connect(config).await.expect_err("Redis is down");
        assert!(matches!(refused, RedisError::Connect { .. }), "{refused:?}");
        shown.push(format!("{refused} {refused:?}"));
        let command = lazy.run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await }).await;
        shown.push(format!("{:?}", command.expect_err("Redis is down")));
        shown.push(format!("{:?}", lazy.dedicated().await.expect_err("Redis is down")));
        shown.push(format!("{:?}", lazy.pubsub().await.err()));
    }

    let shown = shown.join("\n");
    assert!(!shown.contains("pa55word") && !shown.contains("us3r"), "credentials shown:\n{shown}");
    assert!(shown.contains(&format!("redis://***:***@{}", redis.addr())), "{shown}");
}

#[test]
fn a_connection_needs_a_tokio_runtime() {
    let config = RedisConfig::default();
    assert_eq!(RedisConnection::lazy(&config).err(), Some(RedisError::NoRuntime));
}
