//! The main job on a dirty fleet against the same job on a clean one, in one run: how much
//! of a collection bad proxies cost.
//!
//! ```text
//! scripts/bench.sh fleet                    # builds the collect binary first
//! cargo build --release --bin collect && cargo bench -p harvester --bench fleet
//! ```
//!
//! One local product site and the testbed's proxies, all in this process on 127.0.0.1: 3 good
//! ones, and 24 bad ones (4 dead, 4 hanging, 4 slow by 1 s, 3 banned with 403, 3 throttled
//! with 429, 3 serving a captcha page, 3 flapping every 2 s). The `collect` binary (release
//! build, exactly as a user runs it, with its defaults) fetches the same 3 000 product
//! pages through the 3 good proxies only, then through all 27, each with 64 in flight, a 5 s
//! timeout and up to 5 attempts per URL; three rounds of the pair, reported as the mean of
//! the rounds with their range. The figures: wall time of the dirty run against the clean
//! one (DESIGN.md: ≤ 1.5×) and requests sent per URL (every attempt and hedge, as the pool
//! counted them; ≤ 1.1× the clean run's). Every run must collect every URL. Then, for
//! comparison, as many dirty runs (one per round, reported the same way) with each of the
//! other balancers (`--balancer p2c`, `round-robin`), tail control on, and with the default
//! balancer and tail control off (`--hedge 0 --fixed-timeout`): one run each hid that a
//! balancer's runs can differ tenfold by which bad proxies the ejection cap leaves in
//! rotation.
//!
//! `FLEET_URLS` changes the number of URLs, `FLEET_ROUNDS` the rounds;
//! `HARVESTER_COLLECT_BIN` points at the collect binary (default:
//! `<target>/release/collect`, the binary of `harvester-collect`).

#[path = "support/figures.rs"]
mod figures;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use figures::{Estimate, print_figure, print_skipped};
use harvester_testbed::{FaultProxy, TargetServer};

/// One collect run's figures.
#[derive(Debug)]
struct Run {
    wall: Duration,
    urls: u64,
    ok: u64,
    requests: u64,
}

fn collect_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("HARVESTER_COLLECT_BIN") {
        return Some(PathBuf::from(path));
    }
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        // <target>/release/deps/fleet-… → <target>
        None => std::env::current_exe().ok()?.parent()?.parent()?.parent()?.to_path_buf(),
    };
    let path = target.join("release").join(format!("collect{}", std::env::consts::EXE_SUFFIX));
    path.exists().then_some(path)
}

/// Runs the collect binary over `proxies` and `urls` in `dir` with `extra` arguments,
/// returning what its report says.
fn collect(binary: &Path, dir: &Path, name: &str, proxies: &str, urls: &str, extra: &[&str]) -> Result<Run, String> {
    let (proxy_file, url_file) = (dir.join(format!("{name}-proxies.txt")), dir.join("urls.txt"));
    let (out, report) = (dir.join(format!("{name}.jsonl")), dir.join(format!("{name}-report.json")));
    std::fs::write(&proxy_file, proxies).map_err(|e| e.to_string())?;
    std::fs::write(&url_file, urls).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let status = Command::new(binary)
        .args(["--proxies", &proxy_file.to_string_lossy(), "--urls", &url_file.to_string_lossy()])
        .args(["--out", &out.to_string_lossy(), "--report", &report.to_string_lossy()])
        .args(["--concurrency", "64", "--timeout", "5", "--max-attempts", "5", "--rate", "1000000", "--quiet"])
        .args(extra)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let wall = started.elapsed();
    if !status.success() {
        return Err(format!("collect ({name}) exited with {status}"));
    }
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let number = |pointer: &str| report.pointer(pointer).and_then(serde_json::Value::as_u64);
    Ok(Run {
        wall,
        urls: number("/urls").ok_or("report without urls")?,
        ok: number("/totals/ok").ok_or("report without totals.ok")?,
        requests: number("/proxies/requests").ok_or("report without proxies.requests")?,
    })
}

fn per_url(run: &Run) -> f64 {
    run.requests as f64 / run.urls as f64
}

fn describe(name: &str, run: &Run) {
    println!(
        "{name:<40} {} of {} URLs ok in {:>6.2} s, {} requests ({:.3} per URL)",
        run.ok,
        run.urls,
        run.wall.as_secs_f64(),
        run.requests,
        per_url(run)
    );
}

/// What the bench measured.
struct Measured {
    clean: Vec<Run>,
    dirty: Vec<Run>,
    others: Vec<(&'static str, Vec<Run>)>,
}

fn main() {
    // `cargo bench` passes criterion-style arguments; this bench takes none.
    let Some(binary) = collect_binary() else {
        print_skipped("fleet", "the collect binary is not built (cargo build --release --bin collect)");
        return;
    };
    let urls: usize = std::env::var("FLEET_URLS").ok().and_then(|n| n.parse().ok()).unwrap_or(3_000);
    let rounds: usize = std::env::var("FLEET_ROUNDS").ok().and_then(|n| n.parse().ok()).unwrap_or(3).max(1);
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            print_skipped("fleet", &format!("no runtime: {e}"));
            return;
        }
    };
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => {
            print_skipped("fleet", &format!("no temporary directory: {e}"));
            return;
        }
    };
    let result = runtime.block_on(async {
        let fleet = Fleet::start().await.map_err(|e| format!("cannot start the fleet: {e}"))?;
        let url_list: String = (0..urls).map(|n| format!("{}/product/{n}\n", fleet.site.url())).collect();
        let (binary, dir_path) = (binary.clone(), dir.path().to_path_buf());
        let (clean_list, dirty_list) = (fleet.list(true), fleet.list(false));
        let measured = tokio::task::spawn_blocking(move || -> Result<Measured, String> {
            let run =
                |name: &str, list: &str, extra: &[&str]| collect(&binary, &dir_path, name, list, &url_list, extra);
            let others: [(&'static str, &[&str]); 3] = [
                ("dirty, --balancer p2c", &["--balancer", "p2c"]),
                ("dirty, --balancer round-robin", &["--balancer", "round-robin"]),
                ("dirty, --hedge 0 --fixed-timeout", &["--hedge", "0", "--fixed-timeout"]),
            ];
            let mut measured = Measured {
                clean: Vec::new(),
                dirty: Vec::new(),
                others: others.iter().map(|(name, _)| (*name, Vec::new())).collect(),
            };
            for _ in 0..rounds {
                measured.clean.push(run("clean", &clean_list, &[])?);
                measured.dirty.push(run("dirty", &dirty_list, &[])?);
                for ((_, extra), (_, runs)) in others.iter().zip(&mut measured.others) {
                    runs.push(run("other", &dirty_list, extra)?);
                }
            }
            Ok(measured)
        })
        .await
        .map_err(|e| e.to_string())?;
        drop(fleet);
        measured
    });
    let measured = match result {
        Ok(measured) => measured,
        Err(e) => {
            eprintln!("fleet: {e}");
            std::process::exit(1);
        }
    };
    for (n, (clean, dirty)) in measured.clean.iter().zip(&measured.dirty).enumerate() {
        describe(&format!("round {}: 3 good only", n + 1), clean);
        describe(&format!("round {}: 3 good : 24 bad", n + 1), dirty);
    }
    for (name, runs) in &measured.others {
        for (n, run) in runs.iter().enumerate() {
            describe(&format!("round {}: {name}", n + 1), run);
        }
    }
    // Whole runs of the job, not criterion timings: the mean of the rounds with their range.
    let wall = |runs: &[Run]| Estimate::of_runs(&runs.iter().map(|r| r.wall.as_secs_f64()).collect::<Vec<_>>());
    let requests = |runs: &[Run]| Estimate::of_runs(&runs.iter().map(per_url).collect::<Vec<_>>());
    let (clean_wall, clean_requests) = (wall(&measured.clean), requests(&measured.clean));
    print_figure(
        "fleet",
        "wall time, 3 good : 24 bad proxies (mean of the rounds)",
        Some(wall(&measured.dirty)),
        Some(("3 good only", clean_wall)),
        "s",
        "ratio<=1.5",
    );
    print_figure(
        "fleet",
        "requests per URL, 3 good : 24 bad proxies (mean of the rounds)",
        Some(requests(&measured.dirty)),
        Some(("3 good only", clean_requests)),
        "requests/URL",
        "ratio<=1.1",
    );
    let all: Vec<&Run> =
        measured.clean.iter().chain(&measured.dirty).chain(measured.others.iter().flat_map(|(_, r)| r)).collect();
    let (ok, expected) = (all.iter().map(|r| r.ok).sum::<u64>(), all.iter().map(|r| r.urls).sum::<u64>());
    print_figure(
        "fleet",
        "URLs collected over every run",
        Some(Estimate::exact(ok as f64)),
        Some(("URLs", Estimate::exact(expected as f64))),
        "URLs",
        "ratio>=1",
    );
    for (name, runs) in &measured.others {
        print_figure(
            "fleet",
            &format!("wall time, {name} (mean of the rounds)"),
            Some(wall(runs)),
            Some(("3 good only", clean_wall)),
            "s",
            "-",
        );
        print_figure(
            "fleet",
            &format!("requests per URL, {name} (mean of the rounds)"),
            Some(requests(runs)),
            Some(("3 good only", clean_requests)),
            "requests/URL",
            "-",
        );
    }
}

/// The site and the proxies, stopped when dropped.
struct Fleet {
    site: TargetServer,
    good: Vec<FaultProxy>,
    bad: Vec<(&'static str, Arc<FaultProxy>)>,
    flapper: tokio::task::JoinHandle<()>,
}

impl Fleet {
    async fn start() -> std::io::Result<Fleet> {
        let site = TargetServer::start().await?;
        let mut good = Vec::new();
        for _ in 0..3 {
            good.push(FaultProxy::slow(Duration::ZERO).await?);
        }
        let mut bad: Vec<(&'static str, Arc<FaultProxy>)> = Vec::new();
        for _ in 0..4 {
            bad.push(("dead", Arc::new(FaultProxy::closed().await?)));
            bad.push(("hanging", Arc::new(FaultProxy::hanging().await?)));
            bad.push(("slow", Arc::new(FaultProxy::slow(Duration::from_secs(1)).await?)));
        }
        let mut flapping = Vec::new();
        for _ in 0..3 {
            bad.push(("banned", Arc::new(FaultProxy::banning_403().await?)));
            bad.push(("throttled", Arc::new(FaultProxy::rate_limiting_429(30).await?)));
            bad.push(("captcha", Arc::new(FaultProxy::captcha().await?)));
            let flapper = Arc::new(FaultProxy::flapping().await?);
            flapping.push(flapper.clone());
            bad.push(("flapping", flapper));
        }
        // Up 2 s, down 2 s, and so on.
        let flapper = tokio::spawn(async move {
            for up in [false, true].into_iter().cycle() {
                tokio::time::sleep(Duration::from_secs(2)).await;
                for proxy in &flapping {
                    proxy.set_up(up);
                }
            }
        });
        Ok(Fleet { site, good, bad, flapper })
    }

    /// The proxy list: the good ones only, or every one.
    fn list(&self, good_only: bool) -> String {
        let mut list: String =
            self.good.iter().enumerate().map(|(n, p)| format!("{} id=good-{n}\n", p.url())).collect();
        if !good_only {
            for (n, (kind, proxy)) in self.bad.iter().enumerate() {
                list.push_str(&format!("{} id={kind}-{n}\n", proxy.url()));
            }
        }
        list
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.flapper.abort();
    }
}
