//! The peak resident set size (VmHWM) of the `collect` binary resuming a big run: whether its
//! input path stays flat as the URL list grows.
//!
//! ```text
//! scripts/bench.sh collect/peak_rss     # 100 000 and 1 000 000 URLs, the ratio of the two
//! cargo build --release -p harvester-collect --bin collect --example collect_rss
//! target/release/examples/collect_rss 1000000 [FETCHED]
//! ```
//!
//! For N URLs (first argument), it writes a URL list of N product pages of a local site (the
//! testbed's, in this process, behind a local forwarding proxy), and an `--out` that an
//! earlier run could have left: a final line for every URL but FETCHED of them (second
//! argument, default 2 000, spread evenly over the list), short lines of about 150 bytes,
//! with every hundredth URL's interrupted line before its final one (so the file is
//! rewritten) and a last line cut mid-write. Then it runs the release `collect --resume`
//! over them, 64 in flight, and samples the child's VmHWM from /proc every few milliseconds
//! until it exits. So the figure covers the whole input path at N: the check of the list,
//! the resume scan and rewrite of `--out`, the second pass over the list, and the fetch and
//! extraction of FETCHED pages (the same for every N). It checks the run: FETCHED URLs
//! collected, N − FETCHED skipped, N lines in `--out`.
//!
//! The last line is the peak as a `FIGURE` line for `scripts/bench.sh`, which puts the
//! largest N's against the smallest's. `HARVESTER_COLLECT_BIN` points at the binary (default:
//! `collect` next to this example's directory).

#[path = "../../../benches/support/figures.rs"]
mod figures;

use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harvester_testbed::{FaultProxy, TargetServer};

type Error = Box<dyn std::error::Error>;

fn collect_binary() -> Result<PathBuf, Error> {
    if let Some(path) = std::env::var_os("HARVESTER_COLLECT_BIN") {
        return Ok(PathBuf::from(path));
    }
    // <target>/release/examples/collect_rss → <target>/release/collect
    let exe = std::env::current_exe()?;
    let release = exe.parent().and_then(|examples| examples.parent()).ok_or("no target directory")?;
    let path = release.join(format!("collect{}", std::env::consts::EXE_SUFFIX));
    if path.exists() { Ok(path) } else { Err(format!("{} is not built", path.display()).into()) }
}

/// The child's VmHWM in kB, if it is still there to read.
fn peak_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|line| line.strip_prefix("VmHWM:"))?;
    line.trim().strip_suffix("kB")?.trim().parse().ok()
}

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let urls: usize = args.next().map_or(Ok(1_000_000), |arg| arg.replace('_', "").parse())?;
    let fetched: usize = args.next().map_or(Ok(2_000), |arg| arg.replace('_', "").parse())?;
    if !(1..=1_000_000).contains(&urls) || fetched == 0 || fetched > urls {
        return Err("N must be 1..=1000000 (the site's products), FETCHED 1..=N".into());
    }
    let binary = collect_binary()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let (site, proxy) = runtime
        .block_on(async { Ok::<_, Error>((TargetServer::start().await?, FaultProxy::slow(Duration::ZERO).await?)) })?;
    let dir = tempfile::tempdir()?;
    let (url_file, proxy_file, out, report) = (
        dir.path().join("urls.txt"),
        dir.path().join("proxies.txt"),
        dir.path().join("out.jsonl"),
        dir.path().join("report.json"),
    );
    std::fs::write(&proxy_file, format!("{} id=local\n", proxy.url()))?;
    let stride = urls / fetched;
    let to_fetch = |n: usize| n.is_multiple_of(stride) && n / stride < fetched;
    {
        let (mut list, mut lines) =
            (BufWriter::new(std::fs::File::create(&url_file)?), BufWriter::new(std::fs::File::create(&out)?));
        let mut line = String::new();
        for n in 0..urls {
            let url = format!("{}/product/{n}", site.url());
            writeln!(list, "{url}")?;
            if n % 100 == 1 {
                line.clear();
                writeln!(
                    line,
                    r#"{{"url":"{url}","status":"failed","http_status":null,"proxy":null,"attempts":0,"elapsed_ms":0,"error":"interrupted: not fetched before the stop"}}"#
                )?;
                lines.write_all(line.as_bytes())?;
            }
            if !to_fetch(n) {
                line.clear();
                writeln!(
                    line,
                    r#"{{"url":"{url}","status":"ok","http_status":200,"proxy":"local","attempts":1,"elapsed_ms":12}}"#
                )?;
                lines.write_all(line.as_bytes())?;
            }
        }
        lines.write_all(br#"{"url":"http://127.0.0.1:1/product/torn","sta"#)?;
        list.flush()?;
        lines.flush()?;
    }

    let started = Instant::now();
    let mut child = Command::new(&binary)
        .args(["--resume", "--quiet", "--concurrency", "64", "--rate", "1000000", "--hedge", "0"])
        .arg("--urls")
        .arg(&url_file)
        .arg("--proxies")
        .arg(&proxy_file)
        .arg("--out")
        .arg(&out)
        .arg("--report")
        .arg(&report)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    // VmHWM only grows: the last reading before the exit is the peak, short of what the
    // process's last milliseconds (writing the report, freeing) could add.
    let mut peak = 0;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        peak = peak_kb(child.id()).unwrap_or(peak).max(peak);
        std::thread::sleep(Duration::from_millis(2));
    };
    let elapsed = started.elapsed();
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        std::io::Read::read_to_string(&mut pipe, &mut stderr)?;
    }
    if !status.success() {
        return Err(format!("collect exited with {status}: {stderr}").into());
    }
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&report)?)?;
    let (ok, done) = (report["totals"]["ok"].as_u64(), report["already_done"].as_u64());
    let lines = std::fs::read(&out)?.iter().filter(|&&b| b == b'\n').count();
    println!(
        "urls {urls}, fetched {fetched}: collected {ok:?}, already done {done:?}, --out {lines} lines, {:.1} s, peak VmHWM {peak} kB",
        elapsed.as_secs_f64()
    );
    // What grows with the list by design: one 64-bit fingerprint per URL (url_set).
    println!("of which the URL set, 8 bytes per URL: {} kB", urls * 8 / 1024);
    if ok != Some(fetched as u64) || done != Some((urls - fetched) as u64) || lines != urls {
        return Err(format!("the run did not resume as it should:\n{stderr}").into());
    }
    drop((site, proxy));
    figures::print_figure(
        "collect/peak_rss",
        &format!("--resume, {urls} URLs ({fetched} fetched)"),
        Some(figures::Estimate::exact(peak as f64)),
        None,
        "kB",
        "-",
    );
    Ok(())
}
