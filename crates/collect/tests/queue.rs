//! Many collectors on one shared queue, as real processes: the built `collect` binary, a real
//! redis-server, the testbed's site and proxies, all on 127.0.0.1. A collector killed with
//! SIGKILL mid-run, a URL that kills every collector that takes it, and a Redis restarted
//! mid-run each leave an export with every URL exactly once.
#![cfg(feature = "redis")]

mod common;
use common::{collect_binary, http_body, lines_of, run, write};

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use harvester_testbed::support::{Redis, eventually};
use harvester_testbed::{FaultProxy, TargetServer};
use serde_json::Value;
use tokio::process::Child;

/// Longest wait for a collector to finish or for an event of a run.
const WITHIN: Duration = Duration::from_secs(120);

fn text(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// `collect enqueue` of `urls`; panics unless it succeeds.
fn enqueue(redis: &Redis, queue: &str, urls: &Path) -> String {
    let output = run(&["enqueue", "--redis", &redis.url(), "--queue", queue, "--urls", text(urls)]);
    assert!(output.status.success(), "enqueue: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `collect export` into `out`; panics unless it succeeds.
fn export(redis: &Redis, queue: &str, out: &Path) -> Vec<Value> {
    let output = run(&["export", "--redis", &redis.url(), "--queue", queue, "--out", text(out)]);
    assert!(output.status.success(), "export: {}", String::from_utf8_lossy(&output.stderr));
    lines_of(out)
}

/// A collector on `queue` named `consumer`, writing `out`, with `extra` flags.
fn collector(redis: &Redis, queue: &str, proxies: &Path, out: &Path, consumer: &str, extra: &[&str]) -> Child {
    tokio::process::Command::new(collect_binary())
        .args(["--redis", &redis.url(), "--queue", queue, "--consumer", consumer, "--quiet"])
        .arg("--proxies")
        .arg(proxies)
        .arg("--out")
        .arg(out)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("collector starts")
}

/// Waits for `child` to end and checks it ended well.
async fn succeeds(child: Child, who: &str) {
    let output = tokio::time::timeout(WITHIN, child.wait_with_output()).await.expect("ends").expect("exit status");
    assert!(output.status.success(), "{who} failed: {}", String::from_utf8_lossy(&output.stderr));
}

/// A Redis command's reply, by redis-cli.
fn redis_cli(redis: &Redis, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &redis.addr().port().to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// URLs held by `consumer` and not acknowledged.
fn held_by(redis: &Redis, queue: &str, consumer: &str) -> usize {
    let stream = format!("harvester:collect:{{{queue}}}:urls");
    let reply = redis_cli(redis, &["XPENDING", &stream, "collectors", "-", "+", "100000", consumer]);
    reply.lines().filter(|line| line.contains('-') && !line.contains(consumer)).count()
}

/// Every line's URL, counted.
fn by_url(lines: &[Value]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for line in lines {
        *counts.entry(line["url"].as_str().expect("url").to_owned()).or_default() += 1;
    }
    counts
}

fn url_list(site: &TargetServer, pages: usize) -> (String, HashSet<String>) {
    let urls: Vec<String> = (0..pages).map(|n| format!("{}/product/{n}", site.url())).collect();
    (urls.iter().map(|url| format!("{url}\n")).collect(), urls.into_iter().collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_collectors_share_a_queue_and_a_killed_ones_urls_are_taken_over() {
    let redis = Redis::start_durable();
    let site = TargetServer::start().await.expect("site starts");
    let proxy = FaultProxy::slow(Duration::from_millis(20)).await.expect("proxy starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let pages = 400;
    let (list, expected) = url_list(&site, pages);
    // The list twice over: the queue takes each URL once.
    let urls = write(dir.path(), "urls.txt", &format!("{list}{list}"));
    let proxies = write(dir.path(), "proxies.txt", &format!("{} id=only\n", proxy.url()));
    let said = enqueue(&redis, "shop", &urls);
    assert!(said.contains(&format!("enqueued {pages} URLs")), "{said}");
    // Enqueueing again adds nothing.
    assert!(enqueue(&redis, "shop", &urls).contains("enqueued 0 URLs"));

    let flags = ["--concurrency", "4", "--rate", "100000", "--claim-idle", "1", "--hedge", "0"];
    let outs: Vec<PathBuf> = (1..=4).map(|n| dir.path().join(format!("c{n}.jsonl"))).collect();
    let mut first = collector(&redis, "shop", &proxies, &outs[0], "c1", &flags);
    let second = collector(&redis, "shop", &proxies, &outs[1], "c2", &flags);
    let third = collector(&redis, "shop", &proxies, &outs[2], "c3", &flags);

    // Kill the first once it has written some lines and holds URLs, as a crash would.
    let (redis_ref, out) = (&redis, &outs[0]);
    eventually(WITHIN, "c1 wrote lines and holds URLs", || async move {
        lines_of(out).len() >= 10 && held_by(redis_ref, "shop", "c1") > 0
    })
    .await;
    first.start_kill().expect("SIGKILL");
    first.wait().await.expect("killed");
    let held = held_by(&redis, "shop", "c1");
    assert!(held > 0, "c1 held URLs when it died");
    let fourth = collector(&redis, "shop", &proxies, &outs[3], "c4", &flags);
    for (child, who) in [(second, "c2"), (third, "c3"), (fourth, "c4")] {
        succeeds(child, who).await;
    }

    assert_eq!(held_by(&redis, "shop", "c1"), 0, "the dead collector's URLs were taken over");
    let exported = export(&redis, "shop", &dir.path().join("export.jsonl"));
    let counts = by_url(&exported);
    assert_eq!(counts.keys().cloned().collect::<HashSet<_>>(), expected, "every URL is exported");
    assert!(
        counts.values().all(|&n| n == 1),
        "no URL twice: {:?}",
        counts.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    assert!(exported.iter().all(|line| line["status"] == "ok"), "every URL collected");
    // Every collector did part of the work, and the pages fetched twice are at most those
    // the killed one held or had written without acknowledging.
    for out in &outs[1..] {
        assert!(!lines_of(out).is_empty(), "{} did some of the work", out.display());
    }
    let fetched: usize = (0..pages).map(|n| site.requests_to(&format!("/product/{n}"))).sum();
    assert!(
        fetched >= pages && fetched <= pages + held,
        "{fetched} fetches for {pages} pages, {held} held at the kill"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_that_keeps_killing_collectors_ends_in_the_dead_stream_with_its_reason() {
    let redis = Redis::start_durable();
    let site = TargetServer::start().await.expect("site starts");
    let hanging = FaultProxy::hanging().await.expect("proxy starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let poison = format!("{}/product/7", site.url());
    let urls = write(dir.path(), "urls.txt", &format!("{poison}\n"));
    let proxies = write(dir.path(), "proxies.txt", &format!("{} id=hangs\n", hanging.url()));
    enqueue(&redis, "poison", &urls);

    // Each collector takes the URL and hangs on it; each is killed holding it.
    let flags = ["--claim-idle", "0.5", "--max-deliveries", "2", "--timeout", "600"];
    for n in 1..=2 {
        let consumer = format!("p{n}");
        let mut child =
            collector(&redis, "poison", &proxies, &dir.path().join(format!("{consumer}.jsonl")), &consumer, &flags);
        let (redis, who) = (&redis, consumer.as_str());
        eventually(WITHIN, "the collector holds the URL", || async move { held_by(redis, "poison", who) == 1 }).await;
        child.start_kill().expect("SIGKILL");
        child.wait().await.expect("killed");
    }
    // The third takes it over for a third delivery: one too many.
    let third = collector(&redis, "poison", &proxies, &dir.path().join("p3.jsonl"), "p3", &flags);
    succeeds(third, "p3").await;

    let dead = redis_cli(&redis, &["XRANGE", "harvester:collect:{poison}:urls:dead", "-", "+"]);
    assert!(dead.contains(&poison) && dead.contains("delivered 3 times"), "dead stream: {dead}");
    let exported = export(&redis, "poison", &dir.path().join("export.jsonl"));
    assert_eq!(exported.len(), 1, "{exported:?}");
    assert_eq!(exported[0]["url"], poison.as_str());
    assert_eq!(exported[0]["status"], "failed");
    let error = exported[0]["error"].as_str().expect("error");
    assert!(error.starts_with("dead: delivered 3 times"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_mid_run_loses_nothing() {
    let mut redis = Redis::start_durable();
    let site = TargetServer::start().await.expect("site starts");
    let proxy = FaultProxy::slow(Duration::from_millis(20)).await.expect("proxy starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let pages = 300;
    let (list, expected) = url_list(&site, pages);
    let urls = write(dir.path(), "urls.txt", &list);
    let proxies = write(dir.path(), "proxies.txt", &format!("{} id=only\n", proxy.url()));
    enqueue(&redis, "restart", &urls);

    let flags = ["--concurrency", "4", "--rate", "100000", "--claim-idle", "2"];
    let (a_out, b_out) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    let a = collector(&redis, "restart", &proxies, &a_out, "a", &flags);
    let b = collector(&redis, "restart", &proxies, &b_out, "b", &flags);
    let out = &a_out;
    eventually(WITHIN, "some lines written", || async move { lines_of(out).len() >= 20 }).await;
    redis.restart();
    succeeds(a, "a").await;
    succeeds(b, "b").await;

    let exported = export(&redis, "restart", &dir.path().join("export.jsonl"));
    let counts = by_url(&exported);
    assert_eq!(counts.keys().cloned().collect::<HashSet<_>>(), expected, "every URL is exported");
    assert!(counts.values().all(|&n| n == 1), "no URL twice");
    assert!(exported.iter().all(|line| line["status"] == "ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_stopped_gracefully_hands_back_what_it_did_not_start() {
    let redis = Redis::start_durable();
    let site = TargetServer::start().await.expect("site starts");
    let slow = FaultProxy::slow(Duration::from_millis(300)).await.expect("proxy starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let pages = 60;
    let (list, expected) = url_list(&site, pages);
    let urls = write(dir.path(), "urls.txt", &list);
    let proxies = write(dir.path(), "proxies.txt", &format!("{} id=slow\n", slow.url()));
    enqueue(&redis, "handback", &urls);
    let flags = ["--concurrency", "8", "--rate", "100000", "--hedge", "0", "--claim-idle", "60"];
    let out = dir.path().join("first.jsonl");
    let first = collector(&redis, "handback", &proxies, &out, "first", &flags);
    let (written, redis_ref) = (&out, &redis);
    eventually(WITHIN, "the first collector wrote lines and holds URLs", || async move {
        !lines_of(written).is_empty() && held_by(redis_ref, "handback", "first") > 0
    })
    .await;
    let pid = first.id().expect("running").to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs").success());
    let output = tokio::time::timeout(WITHIN, first.wait_with_output()).await.expect("stops").expect("exit status");
    assert_eq!(output.status.code(), Some(130), "SIGTERM stops as Ctrl-C: {}", String::from_utf8_lossy(&output.stderr));
    // What it had read and not started went back (at most the one read on its way in is
    // left to be taken over); what it fetched went to the results.
    let left = held_by(&redis, "handback", "first");
    assert!(left <= 1, "{left} URLs left held by the stopped collector");
    // Taken over at once by a collector that allows one delivery only: a URL handed back is
    // a new entry, not a second delivery.
    let second = collector(
        &redis,
        "handback",
        &proxies,
        &dir.path().join("second.jsonl"),
        "second",
        &["--claim-idle", "0.5", "--max-deliveries", "2", "--rate", "100000"],
    );
    succeeds(second, "second").await;
    let exported = export(&redis, "handback", &dir.path().join("export.jsonl"));
    let counts = by_url(&exported);
    assert_eq!(counts.keys().cloned().collect::<HashSet<_>>(), expected);
    assert!(counts.values().all(|&n| n == 1));
    assert!(
        exported.iter().all(|line| line["status"] == "ok"),
        "none dead: {:?}",
        exported.iter().find(|l| l["status"] != "ok")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_writes_each_url_once_whatever_the_dead_stream_holds() {
    let redis = Redis::start_durable();
    let dir = tempfile::tempdir().expect("temp dir");
    let urls = write(dir.path(), "urls.txt", "http://127.0.0.1:9/a\nhttp://127.0.0.1:9/b\nhttp://127.0.0.1:9/c\n");
    enqueue(&redis, "ledger", &urls);
    let key = |suffix: &str| format!("harvester:collect:{{ledger}}:{suffix}");
    let data = |url: &str| format!("{{\"url\":\"{url}\"}}");
    // a: a result. b: dead twice (a crash between the dead letter and its acknowledgement).
    // c: dead, then finished after all by its slow first collector.
    for (url, line) in [("http://127.0.0.1:9/a", "{\"url\":\"a-ok\"}"), ("http://127.0.0.1:9/c", "{\"url\":\"c-ok\"}")]
    {
        redis_cli(&redis, &["HSETNX", &key("done"), url, "1"]);
        redis_cli(&redis, &["XADD", &key("results"), "*", "url", url, "line", line]);
    }
    for url in ["http://127.0.0.1:9/b", "http://127.0.0.1:9/b", "http://127.0.0.1:9/c"] {
        redis_cli(
            &redis,
            &[
                "XADD",
                &key("urls:dead"),
                "*",
                "data",
                &data(url),
                "dead_reason",
                "delivered 4 times without being stored",
            ],
        );
    }
    let exported = export(&redis, "ledger", &dir.path().join("export.jsonl"));
    let urls: Vec<&str> = exported.iter().map(|line| line["url"].as_str().expect("url")).collect();
    assert_eq!(urls, ["a-ok", "c-ok", "http://127.0.0.1:9/b"], "{exported:?}");
    assert!(exported[2]["error"].as_str().is_some_and(|e| e.starts_with("dead: delivered 4 times")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_whose_lag_redis_cannot_tell_is_drained_only_when_nothing_follows() {
    let redis = Redis::start_durable();
    let dir = tempfile::tempdir().expect("temp dir");
    let urls = write(dir.path(), "urls.txt", "http://127.0.0.1:9/a\nhttp://127.0.0.1:9/b\nhttp://127.0.0.1:9/c\n");
    enqueue(&redis, "lag", &urls);
    let stream = "harvester:collect:{lag}:urls";
    redis_cli(&redis, &["XGROUP", "CREATE", stream, "collectors", "0"]);
    // One read and held; the next one deleted: Redis no longer knows the lag.
    let read =
        redis_cli(&redis, &["XREADGROUP", "GROUP", "collectors", "someone", "COUNT", "1", "STREAMS", stream, ">"]);
    assert!(read.contains("/a"), "{read}");
    let ids = redis_cli(&redis, &["XRANGE", stream, "-", "+"]);
    let second = ids
        .lines()
        .filter(|line| line.contains('-') && !line.contains("http"))
        .nth(1)
        .expect("a second entry")
        .to_owned();
    redis_cli(&redis, &["XDEL", stream, &second]);
    let info = redis_cli(&redis, &["XINFO", "GROUPS", stream]);
    assert!(info.contains("lag\n\n") || !info.contains("lag\n0"), "the lag is unknown: {info}");
    // A following collector of this queue would see one held and one waiting: the depth is
    // 2, and the queue is not drained; its /metrics says so.
    let site = TargetServer::start().await.expect("site starts");
    let proxy = FaultProxy::slow(Duration::ZERO).await.expect("proxy starts");
    let proxies = write(dir.path(), "proxies.txt", &format!("{} id=only\n", proxy.url()));
    let _ = site;
    let metrics_addr = format!("127.0.0.1:{}", harvester_testbed::free_port().expect("a free port"));
    let out = dir.path().join("out.jsonl");
    let child = collector(
        &redis,
        "lag",
        &proxies,
        &out,
        "f",
        &["--follow", "--metrics-addr", &metrics_addr, "--claim-idle", "3600"],
    );
    let addr = metrics_addr.as_str();
    // The collector takes c (the one left), fetches it (127.0.0.1:9 refuses: a failed
    // line), and then only a's entry is held, by someone else: depth 1, never 0.
    eventually(WITHIN, "the depth counts the held entry once c is done", || async move {
        http_body(addr, "/metrics").await.contains("processing_queue_depth{queue_name=\"work-lag\"} 1")
    })
    .await;
    drop(child);
}

/// The shared queue on a Redis Cluster of three masters: enqueue, two collectors (which also
/// share the rate limit and the proxies' health there) and export, every key of the queue in
/// one slot; and `--redis-cluster` left out is refused, naming the setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_runs_on_a_redis_cluster() {
    let cluster = harvester_testbed::support::RedisCluster::start().await;
    let url = cluster.url();
    let site = TargetServer::start().await.expect("site starts");
    let proxy = FaultProxy::slow(Duration::from_millis(5)).await.expect("proxy starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let pages = 200;
    let (list, expected) = url_list(&site, pages);
    let urls = write(dir.path(), "urls.txt", &list);
    let proxies = write(dir.path(), "proxies.txt", &format!("{} id=only\n", proxy.url()));

    let standalone = run(&["enqueue", "--redis", &url, "--queue", "shop", "--urls", text(&urls)]);
    assert_eq!(standalone.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&standalone.stderr).contains("cluster"), "{standalone:?}");

    let enqueued = run(&["enqueue", "--redis", &url, "--redis-cluster", "--queue", "shop", "--urls", text(&urls)]);
    assert!(enqueued.status.success(), "{}", String::from_utf8_lossy(&enqueued.stderr));
    let collectors: Vec<Child> = ["k1", "k2"]
        .into_iter()
        .map(|consumer| {
            tokio::process::Command::new(collect_binary())
                .args(["--redis", &url, "--redis-cluster", "--queue", "shop", "--consumer", consumer, "--quiet"])
                .args(["--rate", "100000", "--concurrency", "4"])
                .arg("--proxies")
                .arg(&proxies)
                .arg("--out")
                .arg(dir.path().join(format!("{consumer}.jsonl")))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("collector starts")
        })
        .collect();
    for (child, who) in collectors.into_iter().zip(["k1", "k2"]) {
        succeeds(child, who).await;
    }
    let out = dir.path().join("export.jsonl");
    let exported = run(&["export", "--redis", &url, "--redis-cluster", "--queue", "shop", "--out", text(&out)]);
    assert!(exported.status.success(), "{}", String::from_utf8_lossy(&exported.stderr));
    let lines = lines_of(&out);
    let counts = by_url(&lines);
    assert_eq!(counts.keys().cloned().collect::<HashSet<_>>(), expected);
    assert!(counts.values().all(|&n| n == 1));
    assert!(lines.iter().all(|line| line["status"] == "ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_following_collector_takes_urls_enqueued_later_and_serves_the_queue_depth() {
    let redis = Redis::start_durable();
    let site = TargetServer::start().await.expect("site starts");
    let proxy = FaultProxy::slow(Duration::ZERO).await.expect("proxy starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let proxies = write(dir.path(), "proxies.txt", &format!("{} id=only\n", proxy.url()));
    let first =
        write(dir.path(), "first.txt", &(0..5).map(|n| format!("{}/product/{n}\n", site.url())).collect::<String>());
    let later =
        write(dir.path(), "later.txt", &(5..10).map(|n| format!("{}/product/{n}\n", site.url())).collect::<String>());
    enqueue(&redis, "follow", &first);
    let metrics_addr = format!("127.0.0.1:{}", harvester_testbed::free_port().expect("a free port"));
    let out = dir.path().join("out.jsonl");
    let child = collector(&redis, "follow", &proxies, &out, "f1", &["--follow", "--metrics-addr", &metrics_addr]);

    let (written, addr) = (&out, metrics_addr.as_str());
    eventually(WITHIN, "the first 5 URLs written and a depth of 0 served", || async move {
        lines_of(written).len() == 5
            && http_body(addr, "/metrics").await.contains("processing_queue_depth{queue_name=\"work-follow\"} 0")
    })
    .await;
    // Drained, it waits; URLs enqueued now are taken too.
    enqueue(&redis, "follow", &later);
    eventually(WITHIN, "the later 5 URLs written", || async move { lines_of(written).len() == 10 }).await;
    let pid = child.id().expect("running").to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().expect("kill runs").success());
    let output = tokio::time::timeout(WITHIN, child.wait_with_output()).await.expect("stops").expect("exit status");
    assert_eq!(output.status.code(), Some(130), "{}", String::from_utf8_lossy(&output.stderr));
    let exported = export(&redis, "follow", &dir.path().join("export.jsonl"));
    assert_eq!(exported.len(), 10);
    assert!(exported.iter().all(|line| line["status"] == "ok"));
}

#[test]
fn bad_queue_input_exits_with_code_2_before_any_work() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out.jsonl");
    let urls = write(dir.path(), "urls.txt", "http://127.0.0.1:9/a\n");
    let bad_urls = write(dir.path(), "bad-urls.txt", "http://127.0.0.1:9/a\nftp://127.0.0.1/b\n");
    let proxies = write(dir.path(), "proxies.txt", "http://127.0.0.1:8080\n");
    // A port nothing listens on: bound, then let go.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let unreachable = format!("redis://{closed}");
    let redis = Redis::start();
    let live = redis.url();
    let (urls, bad_urls, proxies, out_arg) = (text(&urls), text(&bad_urls), text(&proxies), text(&out));

    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--queue", "shop", "--proxies", proxies, "--out", out_arg], "--queue needs --redis"),
        (vec!["--redis", &unreachable, "--queue", "shop", "--proxies", proxies, "--out", out_arg], "--redis"),
        (vec!["--redis", &unreachable, "--queue", "shop", "--out", out_arg], "--queue needs --proxies"),
        (vec!["--redis", &live, "--queue", "shop:1", "--proxies", proxies, "--out", out_arg], "\"shop:1\""),
        (vec!["--redis", &live, "--queue", "{shop}", "--proxies", proxies, "--out", out_arg], "queue name"),
        (vec!["enqueue", "--redis", &unreachable, "--queue", "shop", "--urls", urls], "--redis"),
        (vec!["enqueue", "--redis", &live, "--queue", "", "--urls", urls], "1 to 64"),
        (vec!["enqueue", "--redis", &live, "--queue", "shop", "--urls", bad_urls], "line 2"),
        (vec!["export", "--redis", &unreachable, "--queue", "shop", "--out", out_arg], "--redis"),
        (vec!["export", "--redis", &live, "--queue", "never-enqueued", "--out", out_arg], "has no URLs"),
    ];
    for (args, expected) in cases {
        let output = run(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: expected {expected:?} in {stderr}");
        assert!(!out.exists(), "{args:?} touched --out before refusing");
    }
    // The refused enqueue of a bad list sent nothing.
    let port = redis.addr().port().to_string();
    let keys = Command::new("redis-cli").args(["-p", &port, "KEYS", "*"]).output().expect("redis-cli runs");
    assert!(String::from_utf8_lossy(&keys.stdout).trim().is_empty(), "nothing was written to Redis");
}
