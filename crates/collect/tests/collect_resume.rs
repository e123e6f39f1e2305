//! `collect --resume` as a user runs it after a crash: the built binary killed with SIGKILL
//! mid-run (and mid-resume), then resumed until done; an `--out` with a torn last line
//! repaired; and the refusals. Everything it talks to is on 127.0.0.1.

mod common;
use common::{collect_binary, stderr, write};

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use harvester_testbed::support::eventually;
use harvester_testbed::{FaultProxy, TargetServer};
use serde_json::Value;

/// The whole lines of `path` (each ended by a newline), parsed; a torn last line is not one.
fn whole_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read(path).unwrap_or_default();
    let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |at| at + 1);
    text[..whole].split(|&b| b == b'\n').filter_map(|line| serde_json::from_slice(line).ok()).collect()
}

/// Whether `line` is its URL's last word (as `Line::is_final` says).
fn is_final(line: &Value) -> bool {
    line["status"] == "ok" || !line["error"].as_str().is_some_and(|e| e.starts_with("interrupted:"))
}

/// The URLs with a final, whole line in `path`: what a resume takes for done.
fn done_urls(path: &Path) -> HashSet<String> {
    whole_lines(path)
        .iter()
        .filter(|line| is_final(line))
        .filter_map(|line| line["url"].as_str().map(str::to_owned))
        .collect()
}

/// `collect --resume` over `urls` through `proxies` into `out`, one attempt's worth of
/// surprises turned off: no hedging, a fixed long timeout (so every URL is requested once
/// per run that reaches it).
fn resume_command(urls: &Path, proxies: &Path, out: &Path, concurrency: usize) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(collect_binary());
    command
        .arg("--urls")
        .arg(urls)
        .arg("--proxies")
        .arg(proxies)
        .arg("--out")
        .arg(out)
        .args(["--resume", "--quiet", "--hedge", "0", "--fixed-timeout", "--timeout", "30"])
        .args(["--concurrency", &concurrency.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// A site of `pages` product pages behind one proxy that takes 40 ms per request, with the
/// URL list, the proxy list and where the output goes in a temporary directory. Bind every
/// field (`dir: _dir`, not `dir: _`): an unbound one is dropped at once, and with it the
/// directory or the proxy.
struct SlowSite {
    site: TargetServer,
    _proxy: FaultProxy,
    dir: tempfile::TempDir,
    urls: PathBuf,
    proxies: PathBuf,
    out: PathBuf,
}

impl SlowSite {
    async fn start(pages: usize) -> SlowSite {
        let site = TargetServer::start().await.expect("site starts");
        let proxy = FaultProxy::slow(Duration::from_millis(40)).await.expect("proxy starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let list: String = (0..pages).map(|n| format!("{}/product/{n}\n", site.url())).collect();
        let urls = write(dir.path(), "urls.txt", &list);
        let proxies = write(dir.path(), "proxies.txt", &format!("{} id=only\n", proxy.url()));
        let out = dir.path().join("out.jsonl");
        SlowSite { site, _proxy: proxy, dir, urls, proxies, out }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_runs_resumed_until_done_leave_one_final_line_per_url_and_refetch_only_what_was_in_flight() {
    // Given a site of 400 pages behind a proxy that takes 40 ms per request, 4 at a time
    let pages = 400;
    let concurrency = 4;
    let SlowSite { site, _proxy, dir: _dir, urls, proxies, out } = SlowSite::start(pages).await;
    let paths: Vec<String> = (0..pages).map(|n| format!("/product/{n}")).collect();
    let requests = |site: &TargetServer| -> HashMap<String, usize> {
        paths.iter().map(|path| (format!("{}{path}", site.url()), site.requests_to(path))).collect()
    };

    // When a run is killed with SIGKILL once some lines are written, then resumed and killed
    // again mid-resume, twice, and resumed a last time until it ends
    let mut crashes = Vec::new();
    for _ in 0..3 {
        let before = done_urls(&out).len();
        let child = resume_command(&urls, &proxies, &out, concurrency).spawn().expect("collect starts");
        let written = &out;
        eventually(Duration::from_secs(60), "60 more lines written", || async move {
            whole_lines(written).len() >= before + 60
        })
        .await;
        let pid = child.id().expect("running").to_string();
        assert!(Command::new("kill").args(["-KILL", &pid]).status().expect("kill runs").success());
        let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .expect("dies")
            .expect("exit status");
        assert_eq!(output.status.code(), None, "killed by a signal: {}", stderr(&output));
        // What the next resume will take for done, and how often each page was asked for so far.
        crashes.push((done_urls(&out), requests(&site)));
    }
    let last = resume_command(&urls, &proxies, &out, concurrency).spawn().expect("collect starts");
    let output =
        tokio::time::timeout(Duration::from_secs(120), last.wait_with_output()).await.expect("ends").expect("exit");
    assert!(output.status.success(), "{}", stderr(&output));

    // Then --out has exactly one line per URL, every one collected
    let lines = whole_lines(&out);
    let seen: HashSet<&str> = lines.iter().filter_map(|line| line["url"].as_str()).collect();
    assert_eq!((lines.len(), seen.len()), (pages, pages), "one line per URL, none twice");
    assert!(lines.iter().all(|line| line["status"] == "ok"), "every URL collected");
    assert!(std::fs::read(&out).expect("out").ends_with(b"\n"), "no torn line is left");
    // and the summary says how many were done before the last run
    let stdout = String::from_utf8_lossy(&output.stdout);
    let done_before = crashes.last().map_or(0, |(done, _)| done.len());
    assert!(stdout.contains(&format!("resumed: {done_before} URLs already done")), "{stdout}");
    // and a URL with a final line at a crash was never asked for again
    let end = requests(&site);
    for (k, (done, at_crash)) in crashes.iter().enumerate() {
        for url in done {
            assert_eq!(end[url], at_crash[url], "{url} was done at crash {} and fetched again", k + 1);
        }
    }
    // and the pages asked for twice are at most those in flight at each crash
    let served: usize = end.values().sum();
    let again = served - pages;
    assert!(
        again <= crashes.len() * concurrency,
        "{again} pages fetched again over {} crashes with {concurrency} in flight",
        crashes.len()
    );

    // and resuming a finished run fetches nothing and leaves --out as it is
    let finished = std::fs::read(&out).expect("out");
    let output = resume_command(&urls, &proxies, &out, concurrency).output().await.expect("collect runs");
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("collected 0 of 0 URLs") && stdout.contains(&format!("resumed: {pages} URLs already done")),
        "{stdout}"
    );
    assert_eq!(std::fs::read(&out).expect("out"), finished);
    assert_eq!(requests(&site), end);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_with_sigterm_and_resumed_fetches_every_page_exactly_once() {
    // Given a site of 300 pages behind a proxy that takes 40 ms per request, 4 at a time
    let pages = 300;
    let SlowSite { site, _proxy, dir: _dir, urls, proxies, out } = SlowSite::start(pages).await;

    // When a run is stopped with SIGTERM once 40 lines are written
    let child = resume_command(&urls, &proxies, &out, 4).spawn().expect("collect starts");
    let written = &out;
    eventually(Duration::from_secs(60), "40 lines written", || async move { whole_lines(written).len() >= 40 }).await;
    let pid = child.id().expect("running").to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs").success());
    let output =
        tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await.expect("stops").expect("exit");
    assert_eq!(output.status.code(), Some(130), "a stopped run exits 130: {}", stderr(&output));
    assert!(stderr(&output).contains("stopping (SIGTERM)"), "{}", stderr(&output));
    // it leaves a line for every page, those not fetched interrupted
    let lines = whole_lines(&out);
    let interrupted = lines.iter().filter(|line| !is_final(line)).count();
    assert_eq!(lines.len(), pages);
    assert!(interrupted > 0, "stopped before the end");

    // and when it is resumed
    let output = resume_command(&urls, &proxies, &out, 4).output().await.expect("collect runs");
    assert!(output.status.success(), "{}", stderr(&output));

    // Then every page has one final line and was asked for exactly once over both runs:
    // fetches in flight at the stop had their grace period to finish
    let lines = whole_lines(&out);
    let seen: HashSet<&str> = lines.iter().filter_map(|line| line["url"].as_str()).collect();
    assert_eq!((lines.len(), seen.len()), (pages, pages));
    assert!(lines.iter().all(|line| line["status"] == "ok"));
    for n in 0..pages {
        assert_eq!(site.requests_to(&format!("/product/{n}")), 1, "page {n}");
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&format!("collected {interrupted} of {interrupted} URLs")), "{stdout}");
    assert!(stdout.contains(&format!("resumed: {} URLs already done", pages - interrupted)), "{stdout}");
}

/// A line as collect writes it (the fields a resume reads, and some it skips).
fn line(url: &str, status: &str, error: Option<&str>) -> String {
    let error = error.map_or(String::new(), |e| format!(",\"error\":\"{e}\""));
    format!(
        "{{\"url\":\"{url}\",\"status\":\"{status}\",\"http_status\":200,\"proxy\":\"only\",\"attempts\":1,\"elapsed_ms\":3{error}}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_last_line_an_interrupted_line_and_a_repeat_are_repaired_and_only_the_rest_is_fetched() {
    // Given an --out left by a crash: page 0 collected twice, page 1 interrupted, page 2
    // failed for good, and page 3 cut mid-write
    let site = TargetServer::start().await.expect("site starts");
    let proxy = FaultProxy::slow(Duration::ZERO).await.expect("proxy starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let url = |n: usize| format!("{}/product/{n}", site.url());
    let urls = write(dir.path(), "urls.txt", &(0..6).map(|n| url(n) + "\n").collect::<String>());
    let proxies = write(dir.path(), "proxies.txt", &format!("{} id=only\n", proxy.url()));
    let torn = &line(&url(3), "ok", None)[..40];
    let text = [
        line(&url(0), "ok", None),
        line(&url(1), "failed", Some("interrupted: not fetched before the stop")),
        line(&url(2), "failed", Some("http 404: the target answered HTTP 404")),
        line(&url(0), "ok", None),
        torn.to_owned(),
    ]
    .concat();
    let out = write(dir.path(), "out.jsonl", &text);

    // When it is resumed
    let output = resume_command(&urls, &proxies, &out, 4).output().await.expect("collect runs");

    // Then the torn line is reported, pages 0 and 2 are kept as they were and not fetched,
    // and the four others are fetched once each
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("line 5 was cut short by a crash"), "{}", stderr(&output));
    let lines = whole_lines(&out);
    let by_url: HashMap<&str, &Value> = lines.iter().map(|line| (line["url"].as_str().expect("url"), line)).collect();
    assert_eq!((lines.len(), by_url.len()), (6, 6), "one line per URL: {lines:?}");
    assert_eq!(by_url[url(2).as_str()]["error"], "http 404: the target answered HTTP 404", "kept as it was");
    assert!(std::fs::read_to_string(&out).expect("out").starts_with(
        &(line(&url(0), "ok", None) + &line(&url(2), "failed", Some("http 404: the target answered HTTP 404")))
    ));
    for n in 0..6 {
        let expected = usize::from(![0, 2].contains(&n));
        assert_eq!(site.requests_to(&format!("/product/{n}")), expected, "page {n}");
    }
    assert!(String::from_utf8_lossy(&output.stdout).contains("collected 4 of 4 URLs"));
    assert!(String::from_utf8_lossy(&output.stdout).contains("resumed: 2 URLs already done"));
}

#[test]
fn resume_is_refused_with_exit_2_before_any_work_where_it_cannot_apply() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = write(dir.path(), "out.jsonl", "{\"previous\":\"run\"}\n");
    let urls = write(dir.path(), "urls.txt", "http://127.0.0.1:9/a\n");
    let proxies = write(dir.path(), "proxies.txt", "http://127.0.0.1:9 id=x\n");
    let garbled = write(
        dir.path(),
        "garbled.jsonl",
        &(line("http://127.0.0.1:9/a", "ok", None) + "garbage\n" + &line("http://127.0.0.1:9/a", "ok", None)),
    );
    let stranger = write(dir.path(), "stranger.jsonl", &line("http://127.0.0.1:9/b", "ok", None));
    let p = |path: &Path| path.to_str().expect("utf-8 path").to_owned();
    let cases: Vec<(Vec<String>, &Path, &str)> = vec![
        // The demo has no list to resume.
        (vec!["--resume".into(), "--out".into(), p(&out)], &out, "--resume needs --urls"),
        (
            vec![
                "--resume".into(),
                "--urls".into(),
                p(&urls),
                "--proxies".into(),
                p(&proxies),
                "--out".into(),
                p(&garbled),
            ],
            &garbled,
            "line 2: not a line of collect",
        ),
        (
            vec![
                "--resume".into(),
                "--urls".into(),
                p(&urls),
                "--proxies".into(),
                p(&proxies),
                "--out".into(),
                p(&stranger),
            ],
            &stranger,
            "line 1: http://127.0.0.1:9/b is not in --urls",
        ),
    ];
    for (args, file, expected) in cases {
        let before = std::fs::read(file).expect("there");
        let output = Command::new(collect_binary()).args(&args).arg("--quiet").output().expect("collect runs");
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).contains(expected), "{args:?}: expected {expected:?} in {}", stderr(&output));
        assert_eq!(std::fs::read(file).expect("still there"), before, "{args:?} touched {file:?}");
    }
}
