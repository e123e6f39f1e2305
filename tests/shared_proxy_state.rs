//! Proxy state shared through a real redis-server on loopback, and through a real Redis
//! Cluster of three masters (each test written for both runs as `<test>::standalone` and
//! `<test>::cluster`): two pools in one process, each with its own `SharedState` task, as
//! two instances of a collector would be.
//! An ejection or a ban made by one is honoured by the other (a ban only for its host);
//! proxies registered by one reach the other's pool and leave it when their instance
//! stops; losing Redis leaves both picking on local health, and sharing resumes when it
//! returns.
//!
//! Redis keeps real time, so these tests wait for real: each wait polls a condition
//! against a bounded deadline, never a fixed sleep.
//!
//! Run with `cargo test --features redis --test shared_proxy_state` (or `scripts/test.sh`).

#![cfg(feature = "redis")]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use harvester::proxypool::shared::{QualityTier, RegistryIndex, SharedState, SharedStateConfig};
use harvester::proxypool::{
    EjectionConfig, Outcome, PoolConfig, PoolError, Proxy, ProxyMeta, ProxyPool, RequestContext, Requirements,
};
use harvester_redis::{RedisConfig, RedisConnection};
use harvester_testbed::on_standalone_and_cluster;
use harvester_testbed::support::{Redis, RedisDeployment, RedisKind, RedisServer, eventually_some};

/// Longest wait for anything shared to arrive. Announcements take milliseconds; the
/// deadline only bounds a failing test.
const DEADLINE: Duration = Duration::from_secs(10);
const MS: Duration = Duration::from_millis(1);

/// Polls `check` until it gives a value, failing the test after [`DEADLINE`].
async fn eventually<T, F: Future<Output = Option<T>>>(what: &str, check: impl FnMut() -> F) -> T {
    eventually_some(DEADLINE, what, check).await
}

fn redis_config(redis: &RedisDeployment) -> RedisConfig {
    RedisConfig { url: redis.url(), cluster: redis.is_cluster(), ..standalone_config(String::new()) }
}

fn standalone_config(url: String) -> RedisConfig {
    RedisConfig {
        url,
        key_prefix: "test:".into(),
        connect_timeout: Duration::from_secs(1),
        response_timeout: Duration::from_millis(300),
        ..Default::default()
    }
}

/// Short intervals, so that expiry and retries happen within a test.
fn shared_config(instance: &str) -> SharedStateConfig {
    SharedStateConfig {
        instance: Some(instance.into()),
        registry_ttl: Duration::from_secs(1),
        heartbeat_interval: Duration::from_millis(200),
        sync_interval: Duration::from_millis(100),
        removal_grace: Duration::from_millis(200),
        poll_interval: Duration::from_millis(300),
        retry_base_delay: Duration::from_millis(50),
        retry_max_delay: Duration::from_millis(300),
        ..Default::default()
    }
}

/// A proxy whose region is its id, so that a test can lease exactly it. Nothing is ever
/// sent through it.
fn proxy(id: &str, port: u16) -> Proxy {
    let meta = ProxyMeta { id: Some(id.into()), region: Some(id.into()), ..ProxyMeta::default() };
    Proxy::with_meta(&format!("http://127.0.0.1:{port}"), meta).expect("valid proxy")
}

/// Ejection after 3 failures in a row, no cap that the tests would reach, no panic mode.
fn pool(ids: &[&str]) -> ProxyPool {
    let config = PoolConfig {
        ejection: EjectionConfig {
            consecutive_failures: 3,
            max_ejected_fraction: 1.0,
            panic_threshold: 0.0,
            ..EjectionConfig::default()
        },
        ..PoolConfig::default()
    };
    let pool = ProxyPool::builder().config(config).build().expect("valid config");
    pool.extend(ids.iter().zip(1u16..).map(|(id, n)| proxy(id, 9000 + n))).expect("unique ids");
    pool
}

fn start(pool: &ProxyPool, redis: &RedisConfig, instance: &str) -> SharedState {
    start_with(pool, redis, shared_config(instance))
}

fn start_with(pool: &ProxyPool, redis: &RedisConfig, config: SharedStateConfig) -> SharedState {
    let connection = RedisConnection::lazy(redis).expect("valid Redis config");
    SharedState::start(pool.clone(), connection, config).expect("starts")
}

async fn subscribed(states: &[&SharedState]) {
    eventually("subscribed to the announcements", || async {
        states.iter().all(|s| s.status().subscribed).then_some(())
    })
    .await;
}

/// Fails the proxy whose region is `id` until `pool` ejects it.
fn eject(pool: &ProxyPool, id: &str) {
    for _ in 0..3 {
        pool.acquire(&Requirements::new().region(id), &RequestContext::new())
            .expect("a proxy")
            .report(Outcome::network_failure(MS));
    }
    assert!(is_ejected(pool, id), "{id} ejected locally");
}

fn is_ejected(pool: &ProxyPool, id: &str) -> bool {
    pool.proxy_stats(id).is_some_and(|s| s.ejected_for.is_some())
}

/// Leases and reports a success `times` times, as a collector goes on doing.
fn keep_picking(pool: &ProxyPool, times: usize) {
    for _ in 0..times {
        let lease = pool.acquire(&Requirements::ANY, &RequestContext::new()).expect("picks go on without Redis");
        lease.report(Outcome::success(MS));
    }
}

async fn an_ejection_by_one_instance_is_honoured_by_another(kind: RedisKind) {
    let server = RedisDeployment::start(kind).await;
    let redis = redis_config(&server);
    // On a cluster, subscriptions go through the seed node and the announcing script runs
    // on the node of the namespace's slot: a namespace served by another node makes the
    // announcement cross nodes.
    let fleet = |instance| SharedStateConfig { namespace: "fleet:".into(), ..shared_config(instance) };
    if server.is_cluster() {
        let seed = redis::Client::open(server.url()).expect("URL");
        let mut seed = seed.get_multiplexed_async_connection().await.expect("the seed node");
        let elsewhere = redis::cmd("GET").arg("test:{fleet}:verdicts").query_async::<Option<String>>(&mut seed).await;
        assert!(
            elsewhere.as_ref().is_err_and(|e| e.to_string().to_ascii_uppercase().contains("MOVED")),
            "the namespace's slot is another node's: {elsewhere:?}"
        );
    }
    let (pool_a, pool_b) = (pool(&["p1", "p2", "p3"]), pool(&["p1", "p2", "p3"]));
    // b polls once at start only: what it learns next comes through the announcement.
    let announced_only = SharedStateConfig { poll_interval: Duration::from_secs(3600), ..fleet("b") };
    let (a, b) = (start_with(&pool_a, &redis, fleet("a")), start_with(&pool_b, &redis, announced_only));
    subscribed(&[&a, &b]).await;

    eject(&pool_a, "p1");

    eventually("b honours a's ejection", || async { is_ejected(&pool_b, "p1").then_some(()) }).await;
    for _ in 0..12 {
        let lease = pool_b.acquire(&Requirements::ANY, &RequestContext::new()).expect("a proxy");
        assert_ne!(lease.id().as_str(), "p1", "b no longer picks the proxy a ejected");
    }
    assert_eq!(b.status().announced, 0, "b does not announce a verdict it only applied");
    assert_eq!(a.status().received, 0, "a ignores its own announcement");
}

async fn an_instance_that_starts_later_learns_the_running_verdicts_by_polling(kind: RedisKind) {
    let server = RedisDeployment::start(kind).await;
    let redis = redis_config(&server);
    let (pool_a, pool_late) = (pool(&["p1", "p2"]), pool(&["p1", "p2"]));
    let a = start(&pool_a, &redis, "a");
    subscribed(&[&a]).await;
    eject(&pool_a, "p1");
    let lease = pool_a
        .acquire(&Requirements::new().region("p2"), &RequestContext::new().target_host("shop.example"))
        .expect("p2");
    lease.report(Outcome::ban(MS, None));
    eventually("a announced both", || async { (a.status().announced == 2).then_some(()) }).await;

    let _late = start(&pool_late, &redis, "late");

    eventually("the late instance honours the running ejection", || async {
        is_ejected(&pool_late, "p1").then_some(())
    })
    .await;
    let ban = eventually("and the running ban", || async {
        pool_late.proxy_stats("p2").and_then(|s| s.bans_active.into_iter().next())
    })
    .await;
    assert_eq!(ban.host, "shop.example");
    assert!(ban.remaining <= Duration::from_secs(60), "it lasts what it has left: {ban:?}");
}

async fn a_ban_by_one_instance_bars_the_proxy_everywhere_from_that_host_only(kind: RedisKind) {
    let server = RedisDeployment::start(kind).await;
    let redis = redis_config(&server);
    let (pool_a, pool_b) = (pool(&["p1", "p2"]), pool(&["p1", "p2"]));
    let (a, b) = (start(&pool_a, &redis, "a"), start(&pool_b, &redis, "b"));
    subscribed(&[&a, &b]).await;

    let lease = pool_a
        .acquire(&Requirements::new().region("p1"), &RequestContext::new().target_host("shop.example"))
        .expect("p1");
    lease.report(Outcome::ban(MS, Some(Duration::from_secs(60))));

    let at_shop = Requirements::new().region("p1");
    let at_shop_request = RequestContext::new().target_host("shop.example");
    let refused = eventually("b honours a's ban", || async {
        pool_b.acquire(&at_shop, &at_shop_request).err().filter(|e| matches!(e, PoolError::AllBanned { .. }))
    })
    .await;
    assert!(refused.to_string().contains("shop.example"), "{refused}");
    let elsewhere =
        pool_b.acquire(&Requirements::new().region("p1"), &RequestContext::new().target_host("other.example"));
    assert!(elsewhere.is_ok(), "p1 stays good for every other host: {elsewhere:?}");
    assert!(!is_ejected(&pool_b, "p1"), "a ban is not an ejection");
}

async fn proxies_registered_by_one_instance_reach_the_others_pool_with_their_credentials(kind: RedisKind) {
    let server = RedisDeployment::start(kind).await;
    let redis = redis_config(&server);
    let (pool_a, pool_b) = (pool(&[]), pool(&["local"]));
    let meta = ProxyMeta {
        id: Some("alpha".into()),
        region: Some("eu".into()),
        provider: Some("acme".into()),
        ..ProxyMeta::default()
    };
    let alpha = Arc::new(Proxy::with_meta("http://us3r:pa55word@127.0.0.1:9100", meta).expect("valid proxy"));
    pool_a.add((*alpha).clone()).expect("added");
    let (a, b) = (start(&pool_a, &redis, "a"), start(&pool_b, &redis, "b"));

    assert_eq!(a.register([alpha.clone()]).await.expect("registered"), 1);

    let arrived = eventually("alpha reaches b's pool", || async { pool_b.get("alpha") }).await;
    assert_eq!(arrived.url_with_credentials(), alpha.url_with_credentials(), "b can connect through it");
    assert!(pool_b.get("local").is_some(), "b's own proxy stays");

    let registry = b.registry();
    let in_eu = registry.load(RegistryIndex::Region("eu")).await.expect("read");
    assert_eq!(in_eu.iter().map(|r| r.proxy.id().as_str()).collect::<Vec<_>>(), ["alpha"]);
    assert_eq!(in_eu[0].owner, "a");
    assert!(registry.load(RegistryIndex::Region("us")).await.expect("read").is_empty());
    assert_eq!(registry.load(RegistryIndex::Provider("acme")).await.expect("read").len(), 1);
    let premium = registry.load(RegistryIndex::Tier(QualityTier::Premium)).await.expect("read");
    assert_eq!(premium.len(), 1, "an unused proxy scores 1");

    let shown = format!("{a:?} {b:?} {:?} {in_eu:?} {:?}", a.status(), pool_b.stats());
    assert!(!shown.contains("pa55word") && !shown.contains("us3r"), "credentials shown: {shown}");
}

async fn proxies_of_an_instance_that_stops_leave_the_registry_and_the_other_pools(kind: RedisKind) {
    let server = RedisDeployment::start(kind).await;
    let redis = redis_config(&server);
    let (pool_a, pool_b, pool_c) = (pool(&["alpha"]), pool(&[]), pool(&["gamma"]));
    let (a, b, c) = (start(&pool_a, &redis, "a"), start(&pool_b, &redis, "b"), start(&pool_c, &redis, "c"));
    a.register(pool_a.proxies()).await.expect("registered");
    c.register(pool_c.proxies()).await.expect("registered");
    eventually("both reach b", || async { (pool_b.len() == 2).then_some(()) }).await;

    // a dies: its heartbeats stop, and its entry outlives it by the TTL only.
    drop(a);
    let registry = b.registry().clone();
    eventually("alpha expires from the registry", || async {
        let ids: Vec<String> =
            registry.load(RegistryIndex::All).await.ok()?.iter().map(|r| r.proxy.id().to_string()).collect();
        (ids == ["gamma"]).then_some(())
    })
    .await;
    eventually("alpha leaves b's pool", || async { pool_b.get("alpha").is_none().then_some(()) }).await;
    assert!(pool_b.get("gamma").is_some(), "c still heartbeats");

    // c leaves in order: its entries go at once.
    assert_eq!(c.shutdown().await.expect("withdrawn"), 1);
    assert!(registry.load(RegistryIndex::All).await.expect("read").is_empty());
    eventually("gamma leaves b's pool", || async { pool_b.is_empty().then_some(()) }).await;
}

async fn registering_a_pool_that_holds_another_instances_proxies_registers_only_its_own(kind: RedisKind) {
    let server = RedisDeployment::start(kind).await;
    let redis = redis_config(&server);
    let (pool_a, pool_b) = (pool(&["alpha"]), pool(&["beta"]));
    let (a, b) = (start(&pool_a, &redis, "a"), start(&pool_b, &redis, "b"));
    a.register(pool_a.proxies()).await.expect("registered");
    eventually("alpha reaches b's pool", || async { pool_b.get("alpha") }).await;

    // b registers everything its pool holds, alpha included, as an application would.
    assert_eq!(b.register(pool_b.proxies()).await.expect("registered"), 1, "beta only");
    assert_eq!(b.status().registered, 1);

    // a stops: nobody keeps alpha alive, so it leaves the registry and b's pool.
    drop(a);
    let registry = b.registry().clone();
    eventually("alpha expires from the registry", || async {
        let entries = registry.load(RegistryIndex::All).await.ok()?;
        let ids: Vec<(String, String)> = entries.iter().map(|r| (r.proxy.id().to_string(), r.owner.clone())).collect();
        (ids == [("beta".to_owned(), "b".to_owned())]).then_some(())
    })
    .await;
    eventually("alpha leaves b's pool", || async { pool_b.get("alpha").is_none().then_some(()) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_redis_leaves_local_health_and_sharing_resumes_when_it_returns() {
    let mut server = Redis::start();
    let redis = standalone_config(server.url());
    let ids = ["p1", "p2", "p3", "p4"];
    let (pool_a, pool_b) = (pool(&ids), pool(&ids));
    let alpha = Arc::new(proxy("alpha", 9200));
    // A Redis restart empties the registry until a's next heartbeat: b waits longer than
    // that before dropping what it mirrored.
    let config_b = SharedStateConfig { removal_grace: Duration::from_secs(2), ..shared_config("b") };
    let (a, b) = (start(&pool_a, &redis, "a"), start_with(&pool_b, &redis, config_b));
    a.register([alpha]).await.expect("registered");
    subscribed(&[&a, &b]).await;
    eventually("alpha reaches b", || async { pool_b.get("alpha") }).await;

    server.stop();
    keep_picking(&pool_a, 50);
    keep_picking(&pool_b, 50);
    eject(&pool_a, "p1");
    eventually("a notices the outage", || async { (!a.status().redis_available).then_some(()) }).await;
    keep_picking(&pool_b, 50);
    eventually("a's ejection waits for Redis", || async { (a.status().pending == 1).then_some(()) }).await;
    assert!(!is_ejected(&pool_b, "p1"), "b cannot know yet");
    assert!(pool_b.get("alpha").is_some(), "b keeps what it mirrored while Redis is away");

    server.restart();
    eventually("a's ejection from the outage reaches b", || async { is_ejected(&pool_b, "p1").then_some(()) }).await;
    assert_eq!(a.status().pending, 0);
    subscribed(&[&a, &b]).await;
    eject(&pool_a, "p2");
    eventually("a new ejection reaches b", || async { is_ejected(&pool_b, "p2").then_some(()) }).await;
    let registry = b.registry().clone();
    eventually("a registers alpha again", || async {
        (registry.load(RegistryIndex::All).await.ok()?.len() == 1).then_some(())
    })
    .await;
    assert!(pool_b.get("alpha").is_some(), "b never dropped alpha");
    keep_picking(&pool_b, 20);
}

async fn a_remote_ejection_lasts_no_longer_than_this_pools_own_maximum_however_often_it_is_polled(kind: RedisKind) {
    let server = RedisDeployment::start(kind).await;
    let redis = redis_config(&server);
    let config = PoolConfig {
        ejection: EjectionConfig {
            consecutive_failures: 3,
            max_ejected_fraction: 1.0,
            panic_threshold: 0.0,
            base_ejection: Duration::from_millis(500),
            max_ejection: Duration::from_secs(1),
            ..EjectionConfig::default()
        },
        ..PoolConfig::default()
    };
    let pool = ProxyPool::builder().config(config).build().expect("valid config");
    pool.extend([proxy("p1", 9001), proxy("p2", 9002)]).expect("unique ids");
    let shared = start(&pool, &redis, "b");
    subscribed(&[&shared]).await;
    // Another instance (or anyone who can write the namespace) keeps a 20 s ejection in Redis.
    let mut admin = RedisConnection::connect(&redis).await.expect("admin").manager();
    let verdict = r#"{"v":1,"origin":"other","proxy":"p1","kind":"ejected","ms":20000}"#;
    let (seconds, micros): (u64, u64) = redis::cmd("TIME").query_async(&mut admin).await.expect("TIME");
    let ends = seconds * 1000 + micros / 1000 + 20_000;
    let _: () = redis::pipe()
        .atomic()
        .cmd("HSET")
        .arg("test:{proxies}:verdicts:json")
        .arg("eject:p1")
        .arg(verdict)
        .ignore()
        .cmd("ZADD")
        .arg("test:{proxies}:verdicts")
        .arg(ends)
        .arg("eject:p1")
        .ignore()
        .query_async(&mut admin)
        .await
        .expect("HSET and ZADD");
    eventually("the polled verdict is applied", || async { is_ejected(&pool, "p1").then_some(()) }).await;
    // The ejection ends at this pool's 1 s maximum (the deadline, 10 s, is half the 20 s the
    // verdict asks for)
    eventually("p1 back after this pool's max_ejection, not the verdict's 20 s", || async {
        (!is_ejected(&pool, "p1")).then_some(())
    })
    .await;
    // and two more polls (every 300 ms), each reading the verdict still in Redis, do not
    // eject it again.
    let polls = shared.status().polls;
    eventually("two more polls of the running verdicts", || async {
        (shared.status().polls >= polls + 2).then_some(())
    })
    .await;
    let still = is_ejected(&pool, "p1");
    drop(shared);
    assert!(!still, "p1 ejected again by polls of a remote verdict that this pool already cut at 1 s");
}

on_standalone_and_cluster!(
    an_ejection_by_one_instance_is_honoured_by_another,
    an_instance_that_starts_later_learns_the_running_verdicts_by_polling,
    a_ban_by_one_instance_bars_the_proxy_everywhere_from_that_host_only,
    proxies_registered_by_one_instance_reach_the_others_pool_with_their_credentials,
    proxies_of_an_instance_that_stops_leave_the_registry_and_the_other_pools,
    registering_a_pool_that_holds_another_instances_proxies_registers_only_its_own,
    a_remote_ejection_lasts_no_longer_than_this_pools_own_maximum_however_often_it_is_polled,
);
