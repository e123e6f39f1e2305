//! The distributed GCRA limiter against a real redis-server on loopback and a real Redis
//! Cluster of three masters (the tests written for both run as `<test>::standalone` and
//! `<test>::cluster`): several clients, tasks and processes share one rate, also with
//! keys on different nodes; keys expire; the script survives `SCRIPT FLUSH`; each failure
//! policy holds while Redis is down, and limiting resumes when it returns; the deny-cache
//! saves round trips; credentials never show.
//!
//! Run with `cargo test --features redis --test distributed_rate_limit` (or
//! `scripts/test.sh`, which runs every feature).

#![cfg(feature = "redis")]

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use harvester::resilience::distributed::{
    DistributedKeyedRateLimiter, DistributedOptions, DistributedRateLimitLayer, DistributedRateLimiter, FailurePolicy,
    GCRA_SCRIPT, RedisConfig, RedisConnection, Refusal,
};
use harvester::resilience::rate_limit::{HostKey, Quota};
use harvester::resilience::{BoxError, Rejection};
use harvester_redis::Connection;
use harvester_testbed::on_standalone_and_cluster;
use harvester_testbed::support::{Redis, RedisDeployment, RedisKind, RedisServer, eventually};
use tower::{Service, ServiceBuilder, ServiceExt};

/// Each key of a test is its own: no test sees another's state.
fn unique(name: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{name}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

fn config(redis: &impl RedisServer) -> RedisConfig {
    RedisConfig {
        url: redis.url(),
        cluster: redis.is_cluster(),
        key_prefix: "test:".into(),
        connect_timeout: Duration::from_secs(2),
        response_timeout: Duration::from_millis(300),
        ..Default::default()
    }
}

async fn connect(redis: &impl RedisServer) -> RedisConnection {
    RedisConnection::connect(&config(redis)).await.unwrap_or_else(|e| panic!("{e}\n{}", redis.logs()))
}

fn options(policy: FailurePolicy) -> DistributedOptions {
    DistributedOptions { failure_policy: policy, probe_interval: Duration::from_millis(100), ..Default::default() }
}

fn quota(rate: u32, per: Duration, burst: u32) -> Quota {
    Quota::new(rate, per).and_then(|q| q.allow_burst(burst)).expect("valid quota")
}

/// A connection of its own for looking at what the limiters left in Redis.
async fn admin(redis: &impl RedisServer) -> Connection {
    connect(redis).await.dedicated().await.unwrap_or_else(|e| panic!("{e}\n{}", redis.logs()))
}

async fn redis_time(admin: &mut Connection) -> Duration {
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(admin).await.expect("TIME");
    Duration::from_secs(secs) + Duration::from_micros(micros)
}

/// A plain connection to each server (each node of a cluster).
async fn nodes(redis: &impl RedisServer) -> Vec<redis::aio::MultiplexedConnection> {
    let mut nodes = Vec::new();
    for url in redis.node_urls() {
        let client = redis::Client::open(url).expect("valid URL");
        nodes.push(client.get_multiplexed_async_connection().await.unwrap_or_else(|e| panic!("{e}\n{}", redis.logs())));
    }
    nodes
}

/// `calls` of `cmdstat_<command>` in `INFO commandstats`, summed over every node.
async fn command_calls(redis: &impl RedisServer, command: &str) -> u64 {
    let mut calls = 0;
    for mut node in nodes(redis).await {
        let info: String = redis::cmd("INFO").arg("commandstats").query_async(&mut node).await.expect("INFO");
        calls += harvester_testbed::support::command_calls(&info, command);
    }
    calls
}

/// GCRA's bound: over a span `elapsed`, at most `burst + elapsed / T` cells conform.
fn gcra_bound(quota: Quota, elapsed: Duration) -> f64 {
    f64::from(quota.burst()) + elapsed.as_secs_f64() / quota.replenish_interval().as_secs_f64()
}

/// Checks on `limiter` until `run_for` has passed, waiting out each refusal; the number
/// allowed and refused.
async fn hammer(limiter: DistributedRateLimiter, run_for: Duration) -> (u64, u64) {
    let (mut allowed, mut refused) = (0, 0);
    let until = Instant::now() + run_for;
    while Instant::now() < until {
        match limiter.check().await {
            Ok(()) => allowed += 1,
            Err(Refusal::RateLimited(not_until)) => {
                refused += 1;
                // Pacing by the rate the Redis clock sets, as a real client would.
                tokio::time::sleep(not_until.retry_in().min(Duration::from_millis(20))).await;
            }
            Err(other) => panic!("Redis is up, yet: {other}"),
        }
    }
    (allowed, refused)
}

async fn three_clients_sharing_a_key_stay_within_the_gcra_bound(kind: RedisKind) {
    let redis = RedisDeployment::start(kind).await;
    let mut admin = admin(&redis).await;
    let quota = quota(50, Duration::from_secs(1), 10);
    let key = unique("shared");

    let start = redis_time(&mut admin).await;
    let mut tasks = Vec::new();
    for _ in 0..3 {
        // Three clients, each with its own connection, as three instances would have.
        let limiter = DistributedRateLimiter::new(connect(&redis).await, &key, quota);
        tasks.push(tokio::spawn(hammer(limiter, Duration::from_millis(800))));
    }
    let (mut allowed, mut refused) = (0, 0);
    for task in tasks {
        let (a, r) = task.await.expect("task ends");
        allowed += a;
        refused += r;
    }
    let elapsed = redis_time(&mut admin).await.saturating_sub(start);

    assert!(allowed as f64 <= gcra_bound(quota, elapsed), "{allowed} allowed over {elapsed:?}");
    assert!(allowed >= u64::from(quota.burst()), "the first burst goes through: {allowed}");
    assert!(refused > 0, "three clients hammering must be refused sometimes");
}

/// The child side of `separate_processes_sharing_a_key_stay_within_the_gcra_bound`: not a
/// test of its own, run by that test in child processes of this binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by separate_processes_sharing_a_key_stay_within_the_gcra_bound"]
async fn child_process_checks_a_shared_key() {
    let (Ok(url), Ok(key)) = (std::env::var("HARVESTER_TEST_REDIS_URL"), std::env::var("HARVESTER_TEST_KEY")) else {
        return;
    };
    let config = RedisConfig { url, key_prefix: "test:".into(), ..Default::default() };
    let connection = RedisConnection::connect(&config).await.unwrap_or_else(|e| panic!("{e}"));
    let limiter = DistributedRateLimiter::new(connection, &key, quota(50, Duration::from_secs(1), 10));
    let (allowed, refused) = hammer(limiter, Duration::from_millis(800)).await;
    println!("allowed={allowed} refused={refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_processes_sharing_a_key_stay_within_the_gcra_bound() {
    let redis = Redis::start();
    let mut admin = admin(&redis).await;
    let quota = quota(50, Duration::from_secs(1), 10);
    let key = unique("processes");
    let exe = std::env::current_exe().expect("test binary path");

    let start = redis_time(&mut admin).await;
    let children: Vec<_> = (0..3)
        .map(|_| {
            tokio::process::Command::new(&exe)
                .args(["--exact", "child_process_checks_a_shared_key", "--ignored", "--nocapture", "--test-threads=1"])
                .env("HARVESTER_TEST_REDIS_URL", redis.url())
                .env("HARVESTER_TEST_KEY", &key)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("spawn the test binary")
        })
        .collect();
    let mut allowed = 0u64;
    for child in children {
        let output = child.wait_with_output().await.expect("child ends");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        allowed += stdout
            .split_whitespace()
            .find_map(|word| word.strip_prefix("allowed="))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no count in the child's output: {stdout}"));
    }
    let elapsed = redis_time(&mut admin).await.saturating_sub(start);

    assert!(allowed as f64 <= gcra_bound(quota, elapsed), "{allowed} allowed over {elapsed:?}");
    assert!(allowed >= u64::from(quota.burst()), "the first burst goes through: {allowed}");
}

async fn keys_expire_once_their_state_no_longer_matters(kind: RedisKind) {
    let redis = RedisDeployment::start(kind).await;
    let mut admin = admin(&redis).await;
    // T = 100 ms, burst 2: a key's state matters for at most 200 ms after its last call.
    let quota = quota(10, Duration::from_secs(1), 2);
    let direct = DistributedRateLimiter::new(connect(&redis).await, &unique("expiring"), quota);
    let keyed = DistributedKeyedRateLimiter::<HostKey>::new(connect(&redis).await, &unique("hosts"), quota);
    let host = HostKey::new("a.example");

    direct.check().await.expect("allowed");
    keyed.check_key(&host).await.expect("allowed");
    keyed.check_key(&host).await.expect("burst of 2");

    let now = redis_time(&mut admin).await;
    for (key, horizon_ms) in [(direct.redis_key().to_owned(), 100), (keyed.redis_key(&host), 200)] {
        let pttl: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut admin).await.expect("PTTL");
        assert!(pttl > 0 && pttl <= horizon_ms, "{key}: PTTL {pttl} ms, horizon {horizon_ms} ms");
        // The TAT is stored as exact microseconds of Redis time, not a rounded float.
        let tat: String = redis::cmd("GET").arg(&key).query_async(&mut admin).await.expect("GET");
        let tat = Duration::from_micros(tat.parse().unwrap_or_else(|_| panic!("{key}: TAT {tat:?} is no integer")));
        assert!(tat > now && tat <= now + Duration::from_millis(horizon_ms as u64), "{key}: TAT {tat:?}, now {now:?}");
    }
    // Redis's own clock expires them.
    let keys = [direct.redis_key().to_owned(), keyed.redis_key(&host)];
    eventually(Duration::from_secs(5), "Redis expires both keys", || {
        let (mut admin, keys) = (admin.clone(), keys.clone());
        async move {
            // One key per command: on a cluster the two may be in different slots.
            let mut left = 0;
            for key in &keys {
                left += redis::cmd("EXISTS").arg(key).query_async::<u64>(&mut admin).await.expect("EXISTS");
            }
            left == 0
        }
    })
    .await;
}

async fn script_is_loaded_again_after_script_flush(kind: RedisKind) {
    let redis = RedisDeployment::start(kind).await;
    let mut admin = admin(&redis).await;
    let sha = redis::Script::new(GCRA_SCRIPT).get_hash().to_owned();
    let limiter =
        DistributedRateLimiter::new(connect(&redis).await, &unique("flush"), quota(100, Duration::from_secs(1), 100));
    let loaded = |admin: &mut Connection| {
        let mut admin = admin.clone();
        let sha = sha.clone();
        async move {
            let exists: Vec<u8> =
                redis::cmd("SCRIPT").arg("EXISTS").arg(&sha).query_async(&mut admin).await.expect("SCRIPT EXISTS");
            exists == [1]
        }
    };

    limiter.check().await.expect("allowed");
    assert!(loaded(&mut admin).await);
    let () = redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut admin).await.expect("SCRIPT FLUSH");
    assert!(!loaded(&mut admin).await);

    limiter.check().await.expect("allowed after NOSCRIPT and a reload");
    assert!(loaded(&mut admin).await);
    assert_eq!(limiter.stats().redis_errors, 0);
    assert!(command_calls(&redis, "script|load").await >= 1, "reloaded with SCRIPT LOAD");
}

async fn reserve_admits_within_the_wait_and_refuses_beyond_it(kind: RedisKind) {
    let redis = RedisDeployment::start(kind).await;
    // One call a minute: the waits below stay far from zero however slow the machine.
    let limiter =
        DistributedRateLimiter::new(connect(&redis).await, &unique("wait"), quota(1, Duration::from_secs(60), 1));

    assert_eq!(limiter.reserve(Duration::ZERO).await, Ok(Duration::ZERO));
    let wait = limiter.reserve(Duration::from_secs(120)).await.expect("the next cell is within 2 minutes");
    assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60), "{wait:?}");
    match limiter.reserve(Duration::from_secs(30)).await {
        Err(Refusal::RateLimited(not_until)) => {
            let retry_in = not_until.retry_in();
            assert!(retry_in > Duration::from_secs(110) && retry_in <= Duration::from_secs(120), "{retry_in:?}");
        }
        other => panic!("{other:?}"),
    }
}

async fn a_cost_takes_several_cells_and_never_more_than_the_burst(kind: RedisKind) {
    let redis = RedisDeployment::start(kind).await;
    let limiter =
        DistributedRateLimiter::new(connect(&redis).await, &unique("cost"), quota(1, Duration::from_secs(60), 3));

    assert_eq!(limiter.check_n(4).await, Err(Refusal::InsufficientCapacity { cost: 4, burst: 3 }));
    assert_eq!(limiter.stats().round_trips, 0, "refused without asking Redis");
    limiter.check_n(2).await.expect("2 of the 3 cells");
    assert!(matches!(limiter.check_n(2).await, Err(Refusal::RateLimited(_))), "only 1 cell left");
    limiter.check().await.expect("the last cell");
}

async fn deny_cache_answers_refused_keys_without_a_round_trip(kind: RedisKind) {
    let redis = RedisDeployment::start(kind).await;
    let limiter = DistributedKeyedRateLimiter::<HostKey>::new(
        connect(&redis).await,
        &unique("deny"),
        quota(1, Duration::from_secs(60), 1),
    );
    let limited = HostKey::new("limited.example");

    limiter.check_key(&limited).await.expect("first cell");
    assert!(matches!(limiter.check_key(&limited).await, Err(Refusal::RateLimited(_))));
    let evalsha_before = command_calls(&redis, "evalsha").await;
    let stats_before = limiter.stats();

    for _ in 0..100 {
        match limiter.check_key(&limited).await {
            Err(Refusal::RateLimited(not_until)) => assert!(not_until.retry_in() > Duration::from_secs(50)),
            other => panic!("{other:?}"),
        }
    }

    assert_eq!(command_calls(&redis, "evalsha").await, evalsha_before, "no script run for a cached refusal");
    assert_eq!(limiter.stats().round_trips, stats_before.round_trips);
    assert_eq!(limiter.stats().denied_locally, stats_before.denied_locally + 100);
    // Other keys still ask Redis.
    limiter.check_key(&HostKey::new("other.example")).await.expect("own quota");
    assert_eq!(limiter.stats().round_trips, stats_before.round_trips + 1);
}

/// Starts Redis and a limiter under `policy` (response timeout 300 ms, one probe per
/// 100 ms), takes a cell while Redis is up, then stops Redis.
async fn limiter_after_redis_stops(policy: FailurePolicy, quota: Quota) -> (Redis, DistributedRateLimiter) {
    let mut redis = Redis::start();
    let limiter =
        DistributedRateLimiter::with_options(connect(&redis).await, &unique("outage"), quota, options(policy))
            .expect("valid options");
    limiter.check().await.expect("Redis is up");
    redis.stop();
    (redis, limiter)
}

/// One check, which must end: a check during an outage is bounded by the response timeout
/// (300 ms here); 10 s only catches a hang, it measures nothing.
async fn check_ends(limiter: &DistributedRateLimiter) -> Result<(), Refusal> {
    tokio::time::timeout(Duration::from_secs(10), limiter.check()).await.expect("a check during an outage ends")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fail_open_allows_every_call() {
    let (_redis, limiter) =
        limiter_after_redis_stops(FailurePolicy::FailOpen, quota(1, Duration::from_secs(60), 1)).await;

    for _ in 0..20 {
        assert_eq!(check_ends(&limiter).await, Ok(()));
    }
    assert!(limiter.in_outage());
    assert_eq!(limiter.stats().fallback_decisions, 20);
    assert!(limiter.stats().redis_errors >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fail_closed_refuses_every_call_as_unavailable() {
    let (_redis, limiter) =
        limiter_after_redis_stops(FailurePolicy::FailClosed, quota(100, Duration::from_secs(1), 100)).await;

    for _ in 0..20 {
        assert!(matches!(check_ends(&limiter).await, Err(Refusal::Unavailable(_))));
    }

    // Through the layer: a typed rejection naming the limiter.
    let mut service = ServiceBuilder::new()
        .layer(DistributedRateLimitLayer::direct(limiter.clone()))
        .service_fn(|_: ()| async { Ok::<_, BoxError>("sent") });
    let refused = service.ready().await.expect("ready").call(()).await.expect_err("refused");
    match Rejection::of(&*refused) {
        Some(Rejection::LimiterUnavailable(unavailable)) => assert_eq!(unavailable.limiter, limiter.name()),
        other => panic!("{other:?}: {refused}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_local_policy_limits_on_its_share_of_the_quota() {
    // Half of 10 per second, burst 10: locally 5 per second, burst 5.
    let quota = quota(10, Duration::from_secs(1), 10);
    let (_redis, limiter) = limiter_after_redis_stops(FailurePolicy::Local { share: 0.5 }, quota).await;

    let start = Instant::now();
    let mut allowed = 0u32;
    for _ in 0..40 {
        match check_ends(&limiter).await {
            Ok(()) => allowed += 1,
            Err(Refusal::RateLimited(_)) => {}
            Err(other) => panic!("the local limiter decides, yet: {other}"),
        }
    }
    let local_bound = 5.0 + start.elapsed().as_secs_f64() / 0.2;
    assert!(allowed >= 5, "the local burst goes through: {allowed}");
    assert!(f64::from(allowed) <= local_bound, "{allowed} allowed, local bound {local_bound}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_limiting_resumes_when_redis_restarts_on_the_same_port() {
    let quota = quota(3, Duration::from_secs(60), 3);
    let (mut redis, limiter) = limiter_after_redis_stops(FailurePolicy::FailOpen, quota).await;
    assert_eq!(check_ends(&limiter).await, Ok(()));
    assert!(limiter.in_outage());

    redis.restart();
    let mut admin = admin(&redis).await;
    // The connection manager reconnects by itself; check until Redis decides again.
    eventually(Duration::from_secs(15), "the outage ends after the restart", || async {
        let _ = check_ends(&limiter).await;
        !limiter.in_outage()
    })
    .await;

    // The new instance starts empty; the check that ended the outage took its first cell.
    let exists: bool = redis::cmd("EXISTS").arg(limiter.redis_key()).query_async(&mut admin).await.expect("EXISTS");
    assert!(exists, "the state is in the restarted Redis");
    let mut allowed = 1;
    loop {
        match check_ends(&limiter).await {
            Ok(()) => allowed += 1,
            Err(Refusal::RateLimited(_)) => break,
            Err(other) => panic!("{other}"),
        }
        assert!(allowed <= quota.burst(), "more than the burst allowed after the restart");
    }
    assert_eq!(allowed, quota.burst());
}

async fn per_host_layer_shares_each_host_quota_across_instances(kind: RedisKind) {
    let redis = RedisDeployment::start(kind).await;
    let namespace = unique("layer");
    let quota = quota(2, Duration::from_secs(60), 2);
    let instance = |connection| {
        ServiceBuilder::new()
            .layer(DistributedRateLimitLayer::per_host(DistributedKeyedRateLimiter::new(connection, &namespace, quota)))
            .service_fn(|req: http::Request<()>| async move { Ok::<_, BoxError>(req.uri().to_string()) })
    };
    let mut first = instance(connect(&redis).await);
    let mut second = instance(connect(&redis).await);
    let get = |url: &str| http::Request::get(url).body(()).expect("valid request");

    first.ready().await.expect("ready").call(get("http://a.example/1")).await.expect("1st of 2");
    second.ready().await.expect("ready").call(get("http://A.example/2")).await.expect("2nd of 2");
    let refused = first.ready().await.expect("ready").call(get("http://a.example/3")).await.expect_err("3rd of 2");
    match Rejection::of(&*refused) {
        Some(Rejection::RateLimited(limited)) => assert_eq!(limited.key.as_deref(), Some("a.example")),
        other => panic!("{other:?}"),
    }
    second.ready().await.expect("ready").call(get("http://b.example/1")).await.expect("another host's quota");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_appear_in_debug_display_or_errors() {
    let redis = Redis::start();
    let mut admin = admin(&redis).await;
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("the-right-one")
        .query_async(&mut admin)
        .await
        .expect("CONFIG SET");
    let secrets = ["url-us3r", "url-pa55word", "field-us3r", "field-pa55word"];
    let in_url = RedisConfig { url: format!("redis://url-us3r:url-pa55word@{}", redis.addr()), ..config(&redis) };
    let in_fields =
        RedisConfig { username: Some("field-us3r".into()), password: Some("field-pa55word".into()), ..config(&redis) };

    let mut shown = Vec::new();
    for config in [in_url, in_fields] {
        shown.push(format!("{config} {config:?}"));
        let refused = RedisConnection::connect(&config).await.expect_err("wrong credentials");
        shown.push(format!("{refused} {refused:?}"));
        let lazy = RedisConnection::lazy(&config).expect("valid config");
        let limiter = DistributedRateLimiter::new(lazy.clone(), "secret-test", Quota::per_second(1).expect("valid"));
        shown.push(format!("{lazy:?} {limiter:?}"));
        let unavailable = limiter.check().await.expect_err("fails closed");
        assert!(matches!(unavailable, Refusal::Unavailable(_)), "{unavailable:?}");
        shown.push(format!("{unavailable} {unavailable:?}"));
        let layer_error = ServiceBuilder::new()
            .layer(DistributedRateLimitLayer::direct(limiter))
            .service_fn(|_: ()| async { Ok::<_, BoxError>(()) })
            .oneshot(())
            .await
            .expect_err("fails closed");
        shown.push(format!("{layer_error} {layer_error:?}"));
    }

    let shown = shown.join("\n");
    for secret in secrets {
        assert!(!shown.contains(secret), "{secret} shown in:\n{shown}");
    }
    assert!(shown.contains("***"), "{shown}");
}

/// Two instances (two connections) share each host's quota, the hosts' keys spread over
/// the slots: on a cluster, over several nodes, each check running on its key's node.
async fn each_hosts_quota_holds_across_instances_with_keys_on_different_nodes(kind: RedisKind) {
    let redis = RedisDeployment::start(kind).await;
    // Three cells per host, then one a minute: the count below is exact.
    let quota = quota(1, Duration::from_secs(60), 3);
    let namespace = unique("spread");
    let instances = [
        DistributedKeyedRateLimiter::<HostKey>::new(connect(&redis).await, &namespace, quota),
        DistributedKeyedRateLimiter::<HostKey>::new(connect(&redis).await, &namespace, quota),
    ];
    let hosts: Vec<HostKey> = (0..16).map(|i| HostKey::new(&format!("h{i}.example"))).collect();

    for host in &hosts {
        let mut allowed = 0;
        for round in 0..8 {
            match instances[round % 2].check_key(host).await {
                Ok(()) => allowed += 1,
                Err(Refusal::RateLimited(_)) => {}
                Err(other) => panic!("Redis is up, yet: {other}"),
            }
        }
        assert_eq!(allowed, 3, "{host}: the burst, shared by both instances");
    }

    let mut nodes_with_keys = 0;
    for mut node in nodes(&redis).await {
        let keys: u64 = redis::cmd("DBSIZE").query_async(&mut node).await.expect("DBSIZE");
        nodes_with_keys += usize::from(keys > 0);
    }
    let servers = redis.node_urls().len();
    assert!(nodes_with_keys >= servers.min(2), "the hosts' keys are on {nodes_with_keys} of {servers} servers");
}

on_standalone_and_cluster!(
    three_clients_sharing_a_key_stay_within_the_gcra_bound,
    keys_expire_once_their_state_no_longer_matters,
    script_is_loaded_again_after_script_flush,
    reserve_admits_within_the_wait_and_refuses_beyond_it,
    a_cost_takes_several_cells_and_never_more_than_the_burst,
    deny_cache_answers_refused_keys_without_a_round_trip,
    per_host_layer_shares_each_host_quota_across_instances,
    each_hosts_quota_holds_across_instances_with_keys_on_different_nodes,
);
