//! The `collect` binary as a user runs it: the built binary, its exit codes, its files, and
//! Ctrl-C (SIGINT) in the middle of a run. Everything it talks to is on 127.0.0.1.

mod common;
use common::{collect_binary, http_body, http_get, lines_of, run, stderr, write};

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use harvester_testbed::support::eventually;
use harvester_testbed::{FaultProxy, TargetServer};
use serde_json::Value;

/// `collect` on `urls` through `proxies` into `out`, its standard output dropped: a test adds
/// its other flags (and where standard error goes), then spawns it.
fn collect_command(urls: &Path, proxies: &Path, out: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(collect_binary());
    command.arg("--urls").arg(urls).arg("--proxies").arg(proxies).arg("--out").arg(out).stdout(Stdio::null());
    command
}

#[test]
fn help_explains_every_flag() {
    let output = run(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--proxies",
        "--urls",
        "--out",
        "--report",
        "--concurrency",
        "--rate",
        "--balancer",
        "--max-attempts",
        "--timeout",
        "--redis",
        "--metrics-addr",
        "--metrics-hosts",
        "--log-level",
        "--quiet",
        "--resume",
    ] {
        assert!(help.contains(flag), "--help does not mention {flag}:\n{help}");
    }
}

#[test]
fn bad_input_exits_with_code_2_and_names_what_is_wrong_before_any_work() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out.jsonl");
    let out_arg = out.to_str().expect("utf-8 path");
    let urls = write(dir.path(), "urls.txt", "# shop\nhttp://127.0.0.1:9/a\n\nftp://127.0.0.1/b\n");
    let good_urls = write(dir.path(), "good-urls.txt", "http://127.0.0.1:9/a\n");
    let proxies = write(dir.path(), "proxies.txt", "http://127.0.0.1:8080\nhttp://user:secret@127.0.0.1:99999\n");
    let good_proxies = write(dir.path(), "good-proxies.txt", "http://127.0.0.1:8080\n");
    let p = |path: &PathBuf| path.to_str().expect("utf-8 path").to_owned();

    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--urls".into(), p(&urls), "--proxies".into(), p(&good_proxies)], "line 4"),
        (vec!["--urls".into(), p(&good_urls), "--proxies".into(), p(&proxies)], "line 2"),
        (vec!["--urls".into(), "/nonexistent/urls.txt".into(), "--proxies".into(), p(&good_proxies)], "cannot read"),
        (vec!["--urls".into(), p(&good_urls)], "--urls needs --proxies"),
        (vec!["--concurrency".into(), "0".into()], "0"),
        (vec!["--timeout".into(), "-1".into()], "-1"),
        (vec!["--balancer".into(), "random".into()], "random"),
    ];
    for (args, expected) in cases {
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        args.extend(["--out", out_arg, "--quiet"]);
        let output = run(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).contains(expected), "{args:?}: expected {expected:?} in {}", stderr(&output));
        assert!(!stderr(&output).contains("secret"), "credentials leaked: {}", stderr(&output));
        assert!(!out.exists(), "{args:?}: nothing may be written before the input is known good");
    }
}

#[test]
fn two_flags_naming_one_file_are_refused_and_no_file_is_touched() {
    let dir = tempfile::tempdir().expect("temp dir");
    let urls = write(dir.path(), "urls.txt", "http://127.0.0.1:9/a\n");
    let proxies = write(dir.path(), "proxies.txt", "http://127.0.0.1:9 id=x\n");
    let out = write(dir.path(), "out.jsonl", "{\"previous\":\"lines\"}\n");
    let report = write(dir.path(), "report.json", "{\"previous\":\"report\"}\n");
    let p = |path: &Path| path.to_str().expect("utf-8 path").to_owned();
    let dotted = |path: &Path| p(&dir.path().join(".").join(path.file_name().expect("a name")));
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--out".into(), p(&out), "--report".into(), dotted(&out)], "--out and --report name the same file"),
        (vec!["--out".into(), p(&urls), "--report".into(), p(&report)], "--out and --urls name the same file"),
        (
            vec!["--out".into(), p(&out), "--report".into(), dotted(&proxies)],
            "--report and --proxies name the same file",
        ),
        // A bad --out is refused before the report is opened, let alone truncated.
        (
            vec!["--out".into(), p(&dir.path().join("nowhere").join("out.jsonl")), "--report".into(), p(&report)],
            "--out",
        ),
        (vec!["--out".into(), p(dir.path()), "--report".into(), p(&report)], "is a directory"),
    ];
    for (args, expected) in cases {
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        args.extend(["--urls", urls.to_str().expect("path"), "--proxies", proxies.to_str().expect("path"), "--quiet"]);
        let output = run(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).contains(expected), "{args:?}: expected {expected:?} in {}", stderr(&output));
        for (file, text) in [
            (&urls, "http://127.0.0.1:9/a\n"),
            (&proxies, "http://127.0.0.1:9 id=x\n"),
            (&out, "{\"previous\":\"lines\"}\n"),
            (&report, "{\"previous\":\"report\"}\n"),
        ] {
            assert_eq!(std::fs::read_to_string(file).expect("still there"), text, "{args:?} touched {file:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_mid_run_stops_gracefully_and_loses_no_url() {
    let site = TargetServer::start().await.expect("site starts");
    let proxy = FaultProxy::slow(Duration::from_millis(50)).await.expect("proxy starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let pages = 3_000;
    let urls: String = (0..pages).map(|n| format!("{}/product/{n}\n", site.url())).collect();
    let urls = write(dir.path(), "urls.txt", &urls);
    let proxies = write(dir.path(), "proxies.txt", &format!("{} id=only\n", proxy.url()));
    let out = dir.path().join("out.jsonl");
    let report = dir.path().join("report.json");
    let mut child = collect_command(&urls, &proxies, &out)
        .arg("--report")
        .arg(&report)
        .args(["--concurrency", "4", "--quiet"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("collect starts");

    // Interrupt once some pages are out, long before the end (4 at a time, 50 ms each).
    let written = &out;
    eventually(Duration::from_secs(60), "progress: 20 lines written", || async move { lines_of(written).len() >= 20 })
        .await;
    let pid = child.id().expect("running").to_string();
    let killed = Command::new("kill").args(["-INT", &pid]).status().expect("kill runs");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait()).await.expect("stops").expect("exit");
    assert_eq!(status.code(), Some(130), "interrupted runs exit 130");

    let lines = lines_of(&out);
    let urls: HashSet<&str> = lines.iter().map(|line| line["url"].as_str().expect("url")).collect();
    assert_eq!(lines.len(), pages, "one line per URL, none twice");
    assert_eq!(urls.len(), pages);
    let ok = lines.iter().filter(|line| line["status"] == "ok").count();
    let interrupted =
        lines.iter().filter(|line| line["error"].as_str().is_some_and(|e| e.starts_with("interrupted"))).count();
    assert!(ok >= 20 && interrupted > 0 && ok + interrupted == pages, "ok {ok}, interrupted {interrupted}");
    let report: Value = serde_json::from_slice(&std::fs::read(&report).expect("report written")).expect("JSON");
    assert_eq!(report["interrupted"], true);
    assert_eq!(report["totals"]["ok"], ok);
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_collectors_on_one_redis_share_one_per_host_rate() {
    let redis = harvester_testbed::support::Redis::start();
    let site = TargetServer::start().await.expect("site starts");
    let proxy = FaultProxy::slow(Duration::ZERO).await.expect("proxy starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let proxies = write(dir.path(), "proxies.txt", &format!("{} id=only\n", proxy.url()));
    let (rate, per_collector) = (20u32, 80usize);
    let mut collectors = Vec::new();
    let started = Instant::now();
    for (name, first) in [("a", 0), ("b", per_collector)] {
        let urls: String = (first..first + per_collector).map(|n| format!("{}/product/{n}\n", site.url())).collect();
        let urls = write(dir.path(), &format!("urls-{name}.txt"), &urls);
        let out = dir.path().join(format!("out-{name}.jsonl"));
        let child = collect_command(&urls, &proxies, &out)
            .args(["--redis", &redis.url(), "--quiet"])
            .args(["--rate", &rate.to_string(), "--concurrency", "8"])
            .stderr(Stdio::piped())
            .spawn()
            .expect("collect starts");
        collectors.push((child, out));
    }
    for (child, out) in collectors {
        let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
            .await
            .expect("finishes")
            .expect("exit status");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let lines = lines_of(&out);
        assert_eq!(lines.len(), per_collector);
        assert!(lines.iter().all(|line| line["status"] == "ok"), "every page collected");
    }
    let elapsed = started.elapsed().as_secs_f64();

    // GCRA with a burst of `rate`: at most rate + rate × elapsed requests reach the site over
    // the run, for the two collectors together (each alone could have sent that much).
    let served = site.requests_served() as f64;
    let bound = f64::from(rate) * (1.0 + elapsed);
    assert!(served <= bound, "{served} requests in {elapsed:.1} s exceed the shared bound {bound:.0}");
    assert!(served >= (2 * per_collector) as f64);
}

fn urls_of(site: &TargetServer, n: usize) -> String {
    (0..n).map(|i| format!("{}/product/{i}\n", site.url())).collect()
}

async fn run_binary(args: &[&str]) -> Output {
    tokio::process::Command::new(collect_binary()).args(args).output().await.expect("collect runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_after_every_url_was_dispatched_still_reports_the_interruption() {
    let site = TargetServer::start().await.expect("site starts");
    let slow = FaultProxy::slow(Duration::from_secs(30)).await.expect("proxy starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let urls = write(dir.path(), "urls.txt", &urls_of(&site, 5));
    let proxies = write(dir.path(), "proxies.txt", &format!("{} id=slow\n", slow.url()));
    let (out, report) = (dir.path().join("out.jsonl"), dir.path().join("report.json"));
    let child = collect_command(&urls, &proxies, &out)
        .arg("--report")
        .arg(&report)
        .args(["--timeout", "20", "--quiet"])
        .stderr(Stdio::null())
        .spawn()
        .expect("collect starts");
    // Every URL is in flight (5 < --concurrency) when the stop comes.
    let proxy = &slow;
    eventually(Duration::from_secs(30), "a fetch started", || async move { proxy.connections() >= 1 }).await;
    let pid = child.id().expect("running").to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().expect("kill runs").success());
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await.expect("stops");
    assert_eq!(output.expect("exit").status.code(), Some(130));
    let lines = lines_of(&out);
    assert_eq!(lines.len(), 5);
    assert!(lines.iter().all(|line| line["error"].as_str().is_some_and(|e| e.starts_with("interrupted"))));
    let report: Value = serde_json::from_slice(&std::fs::read(&report).expect("report")).expect("JSON");
    assert_eq!(report["interrupted"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_that_cannot_be_written_fails_the_run_loudly() {
    let site = TargetServer::start().await.expect("site starts");
    let good = FaultProxy::slow(Duration::ZERO).await.expect("proxy starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let urls = write(dir.path(), "urls.txt", &urls_of(&site, 20));
    let proxies = write(dir.path(), "proxies.txt", &format!("{} id=good\n", good.url()));
    let output = run_binary(&[
        "--urls",
        urls.to_str().expect("path"),
        "--proxies",
        proxies.to_str().expect("path"),
        "--out",
        "/dev/full",
        "--quiet",
    ])
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("20 of 20 URLs could not be written"), "{}", stderr(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_rate_paces_the_job_instead_of_failing_urls() {
    let site = TargetServer::start().await.expect("site starts");
    let good = FaultProxy::slow(Duration::ZERO).await.expect("proxy starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let urls = write(dir.path(), "urls.txt", &urls_of(&site, 12));
    let proxies = write(dir.path(), "proxies.txt", &format!("{} id=good\n", good.url()));
    let out = dir.path().join("out.jsonl");
    // 12 URLs at 4 a second with a burst of 4: about 2 s, far beyond one attempt's 0.5 s.
    let output = run_binary(&[
        "--urls",
        urls.to_str().expect("path"),
        "--proxies",
        proxies.to_str().expect("path"),
        "--out",
        out.to_str().expect("path"),
        "--rate",
        "4",
        "--timeout",
        "0.5",
        "--quiet",
    ])
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let lines = lines_of(&out);
    assert_eq!(lines.len(), 12);
    assert!(lines.iter().all(|line| line["status"] == "ok"), "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_metrics_address_is_refused_before_the_output_is_touched() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = busy.local_addr().expect("address").to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let urls = write(dir.path(), "urls.txt", "http://127.0.0.1:9/a\n");
    let proxies = write(dir.path(), "proxies.txt", "http://127.0.0.1:9 id=x\n");
    let out = write(dir.path(), "out.jsonl", "{\"previous\":\"run\"}\n");
    let output = run_binary(&[
        "--urls",
        urls.to_str().expect("path"),
        "--proxies",
        proxies.to_str().expect("path"),
        "--out",
        out.to_str().expect("path"),
        "--metrics-addr",
        &addr,
        "--quiet",
    ])
    .await;
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--metrics-addr"));
    assert_eq!(std::fs::read_to_string(&out).expect("out"), "{\"previous\":\"run\"}\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_leak_and_the_seed_metrics_are_served() {
    let site = TargetServer::start().await.expect("site starts");
    // Markers no message would hold by chance: any 4 characters of one in any output is a leak.
    let tinyproxy = harvester_testbed::support::Tinyproxy::start_with_auth("qZ7xUvK", "Xw3QjZ9p");
    let dante = harvester_testbed::support::Dante::start();
    let dead = FaultProxy::closed().await.expect("proxy starts");
    let bad_gateway = FaultProxy::answering(502, &[], "bad gateway").await.expect("proxy starts");
    let port = |addr: std::net::SocketAddr| addr.port();
    let list = format!(
        "http://qZ7xUvK:Xw3QjZ9p@127.0.0.1:{t} id=good\n\
         http://qZ7xUvK:Vq8ZxW2k@127.0.0.1:{t} id=wrong\n\
         http://Jx4QzW7u:Zk2VqX9w@127.0.0.1:{d} id=dead\n\
         http://Wz5XqJ3v:Qj6ZwV4x@127.0.0.1:{g} id=gateway\n\
         socks5h://Kx9WzQ2j:Vz3QkX8w@127.0.0.1:{s} id=socks\n",
        t = port(tinyproxy.addr()),
        d = port(dead.addr()),
        g = port(bad_gateway.addr()),
        s = port(dante.addr()),
    );
    let credentials = [
        ("qZ7xUvK", "Xw3QjZ9p"),
        ("qZ7xUvK", "Vq8ZxW2k"),
        ("Jx4QzW7u", "Zk2VqX9w"),
        ("Wz5XqJ3v", "Qj6ZwV4x"),
        ("Kx9WzQ2j", "Vz3QkX8w"),
    ];
    // Every 4-character piece of every user name and password, and the Basic
    // authorization each pair makes (base64 of `user:password`).
    let mut secrets: Vec<String> = Vec::new();
    for (user, password) in credentials {
        for marker in [user, password] {
            let chars: Vec<char> = marker.chars().collect();
            secrets.extend(chars.windows(4).map(|piece| piece.iter().collect::<String>()));
        }
        secrets.push(harvester_testbed::support::raw_http::basic_auth(user, password));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let urls = write(dir.path(), "urls.txt", &urls_of(&site, 150));
    let proxies = write(dir.path(), "proxies.txt", &list);
    let (out, report) = (dir.path().join("out.jsonl"), dir.path().join("report.json"));
    let metrics_addr = format!("127.0.0.1:{}", harvester_testbed::free_port().expect("a free port"));
    // TRACE logs are megabytes: into a file, so a full pipe never stalls the run.
    let log = dir.path().join("stderr.log");
    let child = collect_command(&urls, &proxies, &out)
        .arg("--report")
        .arg(&report)
        .args(["--timeout", "2", "--metrics-addr", &metrics_addr, "--rate", "50", "--log-level", "trace"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("collect starts");
    // Mid-run (150 URLs at 50/s take about 3 s): poll until the sampled gauges are there.
    let names = [
        "data_collection_requests_total",
        "data_collection_request_duration_seconds_bucket",
        "proxy_success_rate",
        "processing_queue_depth",
        "circuit_breaker_state",
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    let (metrics, ready) = loop {
        let metrics = http_body(&metrics_addr, "/metrics").await;
        if names.iter().all(|name| metrics.contains(name)) {
            break (metrics, http_get(&metrics_addr, "/ready").await);
        }
        assert!(Instant::now() < deadline, "/metrics lacks some of {names:?}:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("finishes")
        .expect("exit status");
    let log = String::from_utf8_lossy(&std::fs::read(&log).expect("log")).into_owned();
    assert!(output.status.success(), "{}", log.lines().rev().take(40).collect::<Vec<_>>().join("\n"));
    assert_eq!(ready.map(|(status, _)| status), Some(200), "/ready while running");

    // Wrong credentials and a proxy answering 502 are the proxies' failures: retried on the
    // good proxies, never held against the site.
    let lines = lines_of(&out);
    assert_eq!(lines.len(), 150);
    let ok = lines.iter().filter(|line| line["status"] == "ok").count();
    assert!(ok >= 148, "only {ok} of 150 ok");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let texts = [
        ("out", std::fs::read_to_string(&out).expect("out")),
        ("report", std::fs::read_to_string(&report).expect("report")),
        ("stdout", stdout),
        ("stderr", log),
        ("metrics", metrics),
    ];
    assert!(texts[3].1.contains("TRACE"), "the run logged at TRACE");
    for (what, text) in &texts {
        for secret in &secrets {
            let at = text.find(secret.as_str());
            assert!(at.is_none(), "{secret} leaked into {what}: …{}…", &text[at.unwrap_or(0)..][..120.min(text.len())]);
        }
    }
}

/// What the README promises for `collect` with no arguments: the embedded demo (a local
/// product site and ten local proxies, six of them faulty) collects all 300 pages.
#[test]
fn with_no_arguments_the_demo_collects_all_300_pages_through_its_faulty_fleet() {
    const GOOD: [&str; 4] = ["good-1", "good-2", "good-3", "slow"];
    // The flapping proxy serves while up, the throttling one below its rate; these never do.
    const NEVER_SERVE: [&str; 4] = ["dead", "hanging", "banned-403", "captcha"];
    const FAULTY: [&str; 6] = ["dead", "hanging", "banned-403", "captcha", "throttled-429", "flapping"];
    // Given an empty directory, where the demo writes its default output, collect.jsonl
    let dir = tempfile::tempdir().expect("temp dir");
    // When `collect` runs there with no arguments
    let output =
        Command::new(collect_binary()).current_dir(dir.path()).stdin(Stdio::null()).output().expect("collect runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", stderr(&output));
    // Then every one of the 300 pages is in the output once, collected through a proxy that
    // can serve
    let lines = lines_of(&dir.path().join("collect.jsonl"));
    let urls: HashSet<&str> = lines.iter().map(|line| line["url"].as_str().expect("url")).collect();
    assert_eq!((lines.len(), urls.len()), (300, 300), "one line per page");
    for line in &lines {
        assert_eq!(line["status"], "ok", "{line}");
        assert!(!NEVER_SERVE.contains(&line["proxy"].as_str().unwrap_or_default()), "{line}");
    }
    // and the summary says so, with the whole fleet, whose faulty proxies were tried
    assert!(stdout.starts_with("collected 300 of 300 URLs (100.0 %), 0 failed"), "{stdout}");
    let requests: std::collections::HashMap<&str, u64> = stdout
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (id, count, unit) = (words.next()?, words.next()?, words.next()?);
            (unit == "requests,").then(|| (id, count.parse().expect("a request count")))
        })
        .collect();
    for id in GOOD.iter().chain(&FAULTY) {
        assert!(requests.contains_key(id), "{id} missing from the summary:\n{stdout}");
    }
    let to_faulty: u64 = FAULTY.iter().map(|id| requests[id]).sum();
    assert!(to_faulty > 0, "the faulty proxies were never tried:\n{stdout}");
}
