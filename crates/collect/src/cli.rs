//! The command line of `collect`: flags, the checks made before any work starts, the run,
//! the summary and the exit code.
//!
//! ```sh
//! collect                                                  # the embedded demo
//! collect --proxies proxies.txt --urls urls.txt --out out.jsonl
//! collect --proxies proxies.txt --urls urls.txt --extract-rules rules.toml
//! collect --proxies proxies.txt --urls urls.txt --out out.jsonl --resume  # after a crash or Ctrl-C
//! ```
//!
//! With no `--urls`, it runs the embedded demo ([`crate::demo`]). See `--help` for every
//! flag. Bad input exits with code 2 before any work starts; Ctrl-C or SIGTERM stops
//! gracefully (the output still has every URL, exit code 130). The URL list is streamed
//! ([`crate::url_file`]): read once to check it, once to fetch, never held whole.
//!
//! `--resume` keeps what an earlier run with the same `--urls` left in `--out` and fetches
//! only the URLs without a final line there ([`crate::resume`]): after a Ctrl-C, a SIGKILL
//! or a power cut, as many times as it takes, `--out` ends with exactly one line per URL.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::extraction::{Extractor, Rules};
use crate::files;
use crate::input;
use crate::output::OutMode;
use crate::report::Report;
use crate::resume::{self, ResumeError};
use crate::run::{self, Job};
use crate::stack::StackSettings;
use crate::telemetry::{self, ProgressMode};
use crate::url_file::UrlFile;
use crate::work::{List, Work};
use clap::{Args, Parser, Subcommand};
use harvester_proxypool::balance;
use harvester_proxypool::{ConfigError, Proxy, ProxyPool};

/// Collect a list of URLs through a pool of proxies: retries on fresh proxies, per-host rate
/// limits and circuit breakers, a cleaning pipeline, one JSON line per URL.
///
/// Without --urls, runs the embedded demo (a local product site and a faulty local fleet).
#[derive(Debug, Parser)]
#[command(version, about, long_about = None, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Proxy list: one proxy URL per line (http, https, socks5, socks5h; `key=value` metadata
    /// after it), or a .json / .toml list. Required with --urls.
    #[arg(long, value_name = "FILE")]
    proxies: Option<PathBuf>,

    /// URL list: one http(s) URL per line; `#` at a line's start or after a space starts a
    /// comment (a `#` inside a URL is its fragment). Without it: the demo.
    #[arg(long, value_name = "FILE")]
    urls: Option<PathBuf>,

    /// Write one JSON line per URL here: url, status (ok / failed), http_status, proxy (its id,
    /// never credentials), attempts, elapsed_ms, and record (when ok) or error (when failed).
    #[arg(long, value_name = "FILE", default_value = "collect.jsonl")]
    out: PathBuf,

    /// Go on from what an earlier run with the same --urls left in --out: keep one final line
    /// per URL (collected, or failed for a reason of its own), drop interrupted and repeated
    /// lines and a last line cut short by a crash, and fetch only the other URLs, appending
    /// them. --out ends with exactly one line per URL however often a run is stopped or
    /// killed. Without an --out yet, a fresh run. Needs --urls.
    #[arg(long)]
    resume: bool,

    /// Per-host extraction rules (TOML): for a host, CSS selectors for name, price, currency
    /// and description (`field = "css"` or `field = { selector = "css", attribute = "content" }`),
    /// and `ban` / `not_found` selectors and `ban_titles` / `not_found_titles` that mark its
    /// ban and "not found" pages. Example: `[hosts."shop.example.com"]` then
    /// `price = "span.amount"`. A named field is read by its selector, anything else by the
    /// default: JSON-LD, microdata, OpenGraph/meta tags, then <h1>, <title> and a visible
    /// price. A bad selector or unknown key is refused before any work.
    #[arg(long, value_name = "FILE")]
    extract_rules: Option<PathBuf>,

    /// Write the run's summary here as JSON: totals, success rate, attempts, per-proxy stats,
    /// breaker states per host, per-stage pipeline metrics, scaler decisions.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,

    /// URLs fetched at once.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    concurrency: u32,

    /// Requests per second per target host (every attempt counts; hedged requests, capped
    /// by --hedge, go out inside an attempt and do not).
    #[arg(long, value_name = "R", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    rate: u32,

    /// How the pool picks a proxy: expected-success (learns which proxies succeed at each
    /// site, and prefers the cheaper of equally good ones), round-robin, weighted,
    /// least-connections, least-latency, p2c, quality (the seed's composite score).
    #[arg(long, value_name = "NAME", default_value = "expected-success", value_parser = ["expected-success", "round-robin", "weighted", "least-connections", "least-latency", "p2c", "quality"])]
    balancer: String,

    /// Hedged attempts: when an attempt is slower than 95 % of its host's answers, another
    /// proxy is asked too and the first good answer wins; at most this share of extra
    /// requests (0 turns hedging off).
    #[arg(long, value_name = "SHARE", default_value_t = 0.1, value_parser = parse_share)]
    hedge: f64,

    /// Give every attempt the whole --timeout, instead of 4 × its host's 99th-percentile
    /// latency (at least 1 s) once that is known.
    #[arg(long)]
    fixed_timeout: bool,

    /// Attempts per URL, each through a proxy the URL has not tried yet.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    max_attempts: u32,

    /// Seconds one attempt may take [default: 10; the demo: 2].
    #[arg(long, value_name = "SECS", value_parser = parse_timeout)]
    timeout: Option<f64>,

    /// Share rate limits and proxy health through this Redis (redis://host:port).
    #[arg(long, value_name = "URL")]
    redis: Option<String>,

    /// --redis is one node of a Redis Cluster: the others and their slots are found from it.
    #[arg(long, requires = "redis")]
    redis_cluster: bool,

    /// Take the URLs from this shared queue on --redis (loaded by `collect enqueue`) instead
    /// of --urls: any number of collectors on any number of machines share it, and each
    /// ends when the queue is drained. Needs --redis and --proxies.
    #[arg(long, value_name = "NAME", conflicts_with = "urls")]
    queue: Option<String>,

    /// This collector's name in the queue's consumer group [default: host name and process
    /// id]. Unique among running collectors.
    #[arg(long, value_name = "NAME", requires = "queue")]
    consumer: Option<String>,

    /// Seconds after which the URLs held by a collector that stopped (crashed, killed,
    /// cut off) are taken over by the others.
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = parse_claim_idle)]
    claim_idle: f64,

    /// Times a URL may be handed out; a URL that kept killing collectors goes to the
    /// queue's dead stream (exported as failed, with the reason) after this many.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    max_deliveries: u32,

    /// Keep waiting for new URLs when the queue is drained, instead of ending.
    #[arg(long, requires = "queue")]
    follow: bool,

    /// Serve Prometheus /metrics, /health and /ready here while running (e.g. 127.0.0.1:9000).
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<SocketAddr>,

    /// Label metrics by target host for the first N hosts only; later ones count as `other`.
    #[arg(long, value_name = "N", default_value_t = telemetry::DEFAULT_HOST_LABELS as u32, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    metrics_hosts: u32,

    /// No progress output (the summary is still printed).
    #[arg(long)]
    quiet: bool,

    /// Log level on standard error, for this job and every crate under it: error, warn,
    /// info, debug or trace. Credentials are never logged, at any level.
    #[arg(long, value_name = "LEVEL", default_value = "warn", value_parser = ["error", "warn", "info", "debug", "trace"])]
    log_level: String,
}

/// `collect enqueue` and `collect export`: the shared queue's two ends.
#[derive(Debug, Subcommand)]
enum Command {
    /// Load a URL list into a shared queue on Redis, each URL once per queue (the list is
    /// checked whole first, then streamed).
    Enqueue(EnqueueArgs),
    /// Write one JSON line per URL of a shared queue: every collector's result, and each
    /// dead URL as failed with its reason.
    Export(ExportArgs),
}

/// Where the queue is.
#[derive(Debug, Args)]
struct QueueArgs {
    /// The Redis holding the queue (redis://host:port).
    #[arg(long, value_name = "URL")]
    redis: String,

    /// The queue's name: letters, digits, '.', '_' and '-'.
    #[arg(long, value_name = "NAME")]
    queue: String,

    /// --redis is one node of a Redis Cluster: the others and their slots are found from it.
    #[arg(long)]
    redis_cluster: bool,
}

#[derive(Debug, Args)]
struct EnqueueArgs {
    #[command(flatten)]
    queue: QueueArgs,

    /// URL list, as for `collect --urls`.
    #[arg(long, value_name = "FILE")]
    urls: PathBuf,
}

#[derive(Debug, Args)]
struct ExportArgs {
    #[command(flatten)]
    queue: QueueArgs,

    /// Write the lines here (replaced atomically once complete).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

fn parse_claim_idle(text: &str) -> Result<f64, String> {
    let secs: f64 = text.parse().map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if secs.is_finite() && (0.1..=86_400.0).contains(&secs) {
        Ok(secs)
    } else {
        Err(format!("{secs} must be between 0.1 and 86400 seconds"))
    }
}

fn parse_share(text: &str) -> Result<f64, String> {
    let share: f64 = text.parse().map_err(|_| format!("{text:?} is not a number"))?;
    if (0.0..=1.0).contains(&share) { Ok(share) } else { Err(format!("{share} must be between 0 and 1")) }
}

fn parse_timeout(text: &str) -> Result<f64, String> {
    let secs: f64 = text.parse().map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if secs.is_finite() && (0.001..=3600.0).contains(&secs) {
        Ok(secs)
    } else {
        Err(format!("{secs} must be between 0.001 and 3600 seconds"))
    }
}

/// An empty pool picking with the balancer `name` (one of `--balancer`'s values).
fn pool_with(name: &str) -> Result<ProxyPool, ConfigError> {
    let builder = ProxyPool::builder();
    match name {
        "round-robin" => builder.balancer(balance::RoundRobin::new()),
        "weighted" => builder.balancer(balance::SmoothWeightedRoundRobin::new()),
        "least-connections" => builder.balancer(balance::LeastConnections::new()),
        "least-latency" => builder.balancer(balance::LeastLatency::new()),
        "quality" => builder.balancer(balance::AdaptiveQuality::new()),
        "p2c" => builder.balancer(balance::PowerOfTwoChoices::new()),
        _ => builder.balancer(balance::ExpectedSuccess::new()),
    }
    .build()
}

/// Bad input: printed, exit code 2, before any work.
fn refuse(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("collect: {message}");
    ExitCode::from(2)
}

/// Runs `collect` with the process's arguments: what the `collect` binary and the
/// `collect` example call.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // A program, not a library: every layer may read the time-stamp counter, cheaper than
    // the system clock on a virtual machine (see `harvester_core::time`).
    harvester_core::time::use_tsc();
    // Warnings and errors of the crates (a failing sink, a Redis outage) go to standard error.
    let level = cli.log_level.parse().unwrap_or(tracing::Level::WARN);
    tracing_subscriber::fmt().with_max_level(level).with_writer(std::io::stderr).init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return refuse(format!("cannot start the runtime: {e}")),
    };
    match cli.command {
        #[cfg(feature = "redis")]
        Some(Command::Enqueue(args)) => runtime.block_on(enqueue(args)),
        #[cfg(feature = "redis")]
        Some(Command::Export(args)) => runtime.block_on(export(args)),
        #[cfg(not(feature = "redis"))]
        Some(_) => refuse("this build has no Redis support (build with `--features redis`)"),
        None => runtime.block_on(collect(cli)),
    }
}

/// Connects to the queue's Redis, which must answer: nothing is done without it.
#[cfg(feature = "redis")]
async fn open_queue(args: &QueueArgs) -> Result<crate::queue::Queue, String> {
    let name = crate::queue::QueueName::parse(&args.queue).map_err(|e| e.to_string())?;
    Ok(crate::queue::Queue::new(connect_queue_redis(&args.redis, args.redis_cluster).await?, name))
}

/// A connection for a queue: it must answer now, and its commands carry whole pages (a
/// line holds a page's text), so they get a long response timeout.
#[cfg(feature = "redis")]
async fn connect_queue_redis(
    url: &str,
    cluster: bool,
) -> Result<harvester_resilience::distributed::RedisConnection, String> {
    use harvester_resilience::distributed::RedisConnection;
    let config = harvester_resilience::distributed::RedisConfig {
        response_timeout: crate::queue::RESPONSE_TIMEOUT,
        ..redis_config(url, cluster)
    };
    config.validate().map_err(|e| format!("--redis: {e}"))?;
    RedisConnection::connect(&config).await.map_err(|e| format!("--redis: {e}"))
}

#[cfg(feature = "redis")]
async fn enqueue(args: EnqueueArgs) -> ExitCode {
    if let Err(e) = files::check(&[files::Named::input("--urls", &args.urls)]) {
        return refuse(e);
    }
    let queue = match open_queue(&args.queue).await {
        Ok(queue) => queue,
        Err(e) => return refuse(e),
    };
    match queue.enqueue(&args.urls).await {
        Ok(enqueued) => {
            println!(
                "enqueued {} URLs to queue {} ({} already queued or repeated, left out)",
                enqueued.added,
                queue.name().as_str(),
                enqueued.already_queued
            );
            ExitCode::SUCCESS
        }
        Err(e @ crate::queue::QueueError::Input(_)) => refuse(e),
        Err(e) => {
            eprintln!("collect: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "redis")]
async fn export(args: ExportArgs) -> ExitCode {
    if let Err(e) = files::check(&[files::Named::output("--out", &args.out)]) {
        return refuse(e);
    }
    let queue = match open_queue(&args.queue).await {
        Ok(queue) => queue,
        Err(e) => return refuse(e),
    };
    match queue.export(&args.out).await {
        Err(e @ crate::queue::QueueError::Empty { .. }) => refuse(e),
        Ok(exported) => {
            println!(
                "exported {} lines ({} dead URLs) from queue {} to {}",
                exported.lines,
                exported.dead,
                queue.name().as_str(),
                args.out.display()
            );
            if exported.unfinished > 0 {
                eprintln!(
                    "collect: {} URLs of the queue have no final line yet (still waiting or held by a collector)",
                    exported.unfinished
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("collect: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn collect(cli: Cli) -> ExitCode {
    // Input first: nothing starts until every file and flag is known good, and no two
    // flags name one file (an output written over an input or over the other output).
    if cli.resume && cli.urls.is_none() {
        return refuse("--resume needs --urls (the demo always starts afresh, and a --queue keeps its own progress)");
    }
    let mut files = vec![files::Named::output("--out", &cli.out)];
    files.extend(cli.report.as_deref().map(|path| files::Named::output("--report", path)));
    files.extend(cli.urls.as_deref().map(|path| files::Named::input("--urls", path)));
    files.extend(cli.proxies.as_deref().map(|path| files::Named::input("--proxies", path)));
    files.extend(cli.extract_rules.as_deref().map(|path| files::Named::input("--extract-rules", path)));
    if let Err(e) = files::check(&files) {
        return refuse(e);
    }
    let rules = match cli.extract_rules.as_deref().map(Rules::load).transpose() {
        Ok(rules) => Arc::new(rules.unwrap_or_default()),
        Err(e) => return refuse(e),
    };
    if cli.queue.is_some() {
        if cli.redis.is_none() {
            return refuse("--queue needs --redis (the queue lives there)");
        }
        if cli.proxies.is_none() {
            return refuse("--queue needs --proxies");
        }
    }
    #[cfg(feature = "redis")]
    let queue_name = match cli.queue.as_deref().map(crate::queue::QueueName::parse).transpose() {
        Ok(name) => name,
        Err(e) => return refuse(e),
    };
    #[cfg(not(feature = "redis"))]
    if cli.queue.is_some() {
        return refuse("--queue: this build has no Redis support (build with `--features redis`)");
    }
    let demo = if cli.urls.is_none() && cli.queue.is_none() {
        if cli.proxies.is_some() {
            return refuse("--proxies needs --urls or --queue (without them the demo brings its own fleet)");
        }
        match crate::demo::Demo::start().await {
            Ok(demo) => Some(demo),
            Err(e) => return refuse(format!("cannot start the demo: {e}")),
        }
    } else {
        None
    };
    let (url_file, proxies): (Option<UrlFile>, Vec<Proxy>) = match (&cli.urls, &cli.proxies, &demo) {
        (Some(urls), Some(proxies), _) => match (UrlFile::open(urls), input::read_proxies(proxies)) {
            (Ok(urls), Ok(proxies)) => (Some(urls), proxies),
            (Err(e), _) | (_, Err(e)) => return refuse(e),
        },
        (Some(_), None, _) => return refuse("--urls needs --proxies"),
        (None, Some(proxies), None) => match input::read_proxies(proxies) {
            Ok(proxies) => (None, proxies),
            Err(e) => return refuse(e),
        },
        (None, _, Some(demo)) => (None, demo.proxies()),
        (None, None, None) => return refuse("nothing to collect"),
    };
    #[cfg(feature = "redis")]
    let redis = match &cli.redis {
        Some(url) => match connect_redis(url, cli.redis_cluster, cli.queue.is_some()).await {
            Ok(connection) => Some(connection),
            Err(e) => return refuse(e),
        },
        None => None,
    };
    #[cfg(not(feature = "redis"))]
    if cli.redis.is_some() {
        return refuse("--redis: this build has no Redis support (build with `--features redis`)");
    }
    let pool = match pool_with(&cli.balancer) {
        Ok(pool) => pool,
        Err(e) => return refuse(e),
    };
    if let Err(e) = pool.extend(proxies) {
        return refuse(format!("proxy list: {e}"));
    }
    // Everything that can be refused is checked before the output file is touched.
    telemetry::limit_host_labels(cli.metrics_hosts as usize);
    let metrics = match cli.metrics_addr {
        Some(addr) => match (telemetry::install_recorder(), telemetry::bind(addr).await) {
            (Ok(handle), Ok(listener)) => Some((handle, listener)),
            (Err(e), _) | (_, Err(e)) => return refuse(e),
        },
        None => None,
    };
    // Last of the checks, and it destroys nothing: an existing report is opened without
    // truncating it (it is rewritten at the end), a missing one created empty.
    if let Some(path) = &cli.report
        && let Err(e) = std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(path)
    {
        return refuse(format!("--report {}: {e}", path.display()));
    }
    let (work, out_mode, already_done): (Box<dyn Work>, OutMode, u64) = match (url_file, &demo) {
        (Some(urls), _) => match resume_from_out(&cli, urls) {
            Ok((urls, mode)) => {
                let done = urls.already_done();
                (Box::new(urls), mode, done)
            }
            Err(e) => return refuse(e),
        },
        (None, Some(demo)) => {
            let urls = demo.urls();
            (Box::new(List::new(urls.targets).with_duplicates(urls.duplicates as u64)), OutMode::Create, 0)
        }
        #[cfg(feature = "redis")]
        (None, None) => {
            let (Some(url), Some(name)) = (cli.redis.as_deref(), queue_name) else {
                return refuse("--queue needs --redis");
            };
            let settings = crate::queue::WorkerSettings {
                consumer: cli.consumer.clone().unwrap_or_else(default_consumer),
                claim_idle: Duration::from_secs_f64(cli.claim_idle),
                max_deliveries: cli.max_deliveries,
                follow: cli.follow,
                concurrency: cli.concurrency as usize,
            };
            // The queue gets its own connection: its lines are large, and the rate limit's
            // short response timeout would cut their writes.
            let queue_redis = match connect_queue_redis(url, cli.redis_cluster).await {
                Ok(connection) => connection,
                Err(e) => return refuse(e),
            };
            let queue = crate::queue::Queue::new(queue_redis, name);
            match queue.status().await {
                Ok(status) if status.enqueued == 0 && !cli.follow => {
                    return refuse(crate::queue::QueueError::Empty { name: queue.name().as_str().to_owned() });
                }
                Ok(_) => {}
                Err(e) => return refuse(e),
            }
            match queue.work(&settings) {
                Ok(work) => (Box::new(work), OutMode::Create, 0),
                Err(e) => return refuse(e),
            }
        }
        #[cfg(not(feature = "redis"))]
        (None, None) => return refuse("nothing to collect"),
    };
    let job = Job {
        work,
        pool: pool.clone(),
        stack: StackSettings {
            concurrency: cli.concurrency as usize,
            rate_per_host: cli.rate,
            max_attempts: cli.max_attempts,
            // The demo's hanging proxy would hold each of its victims for the whole timeout.
            attempt_timeout: Duration::from_secs_f64(cli.timeout.unwrap_or(if demo.is_some() { 2.0 } else { 10.0 })),
            hedge_share: cli.hedge,
            adaptive_timeout: !cli.fixed_timeout,
            #[cfg(feature = "redis")]
            redis: redis.clone(),
        },
        stage_workers: 1,
        scaling: run::Scaling::default(),
        out: cli.out.clone(),
        out_mode,
        extra_root_pem: None,
    };
    let running = match run::start_with(job, Extractor::new(rules)).await {
        Ok(running) => running,
        Err(e) => return refuse(e),
    };
    // With Redis, ejections and bans this collector decides reach every other one, and
    // theirs reach it. The proxies are not registered: each collector brings its own list,
    // and the registry would put their credentials in Redis.
    #[cfg(feature = "redis")]
    let shared = match &redis {
        Some(redis) => {
            match harvester_proxypool::shared::SharedState::start(pool.clone(), redis.clone(), Default::default()) {
                Ok(shared) => Some(shared),
                Err(e) => return refuse(format!("--redis: {e}")),
            }
        }
        None => None,
    };
    let watch = running.watch();
    let mut background = Vec::new();
    if let Some((handle, listener)) = metrics {
        background.push(telemetry::serve(listener, handle, watch.clone(), running.breakers().clone()));
        background.push(running.sample_gauges());
    }
    background.push(telemetry::show_progress(ProgressMode::detect(cli.quiet), watch.clone()));

    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    background.push(tokio::spawn(async move {
        if let Some(signal) = stop_signal().await {
            eprintln!(
                "collect: stopping ({signal}): in-flight fetches get one timeout to finish; Ctrl-C again to quit now"
            );
            let _ = stop_tx.send(true);
        }
        if stop_signal().await.is_some() {
            eprintln!("collect: quitting now: URLs in flight are missing from --out");
            std::process::exit(130);
        }
    }));

    let outcome = running.run(stop).await;
    for task in background {
        task.abort();
    }
    #[cfg(feature = "redis")]
    if let Some(shared) = shared
        && let Err(e) = shared.shutdown().await
    {
        eprintln!("collect: warning: --redis: {e}");
    }
    let report = Report::new(&outcome).with_already_done(already_done);
    if let Some(path) = &cli.report {
        let written = serde_json::to_vec_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|json| std::fs::write(path, json).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("collect: cannot write the report to {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    print_summary(&report, &cli);
    drop(demo);
    if let Some(error) = &report.work_error {
        eprintln!("collect: the URLs stopped coming before their end: {error}");
        return ExitCode::FAILURE;
    }
    // Every URL must have its line; if the output could not take some, say so loudly.
    let missing = report.urls.saturating_sub(report.totals.done());
    if missing > 0 {
        eprintln!(
            "collect: {missing} of {} URLs could not be written to {} (see the errors above; the report has the pipeline's account)",
            report.urls,
            cli.out.display()
        );
        return ExitCode::FAILURE;
    }
    if report.interrupted { ExitCode::from(130) } else { ExitCode::SUCCESS }
}

/// Resolves when the process is asked to stop, saying how: Ctrl-C (SIGINT) or, on Unix,
/// SIGTERM (what a service manager or Kubernetes sends); `None` if no handler can be set.
async fn stop_signal() -> Option<&'static str> {
    #[cfg(unix)]
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        return tokio::select! {
            stop = tokio::signal::ctrl_c() => stop.ok().map(|()| "Ctrl-C"),
            _ = term.recv() => Some("SIGTERM"),
        };
    }
    tokio::signal::ctrl_c().await.ok().map(|()| "Ctrl-C")
}

/// With `--resume`, repairs `--out` ([`resume::repair`]) and marks the URLs of its final
/// lines done in `urls`, saying on standard error what was dropped; the run then appends.
/// Without, the run truncates `--out`.
fn resume_from_out(cli: &Cli, mut urls: UrlFile) -> Result<(UrlFile, OutMode), ResumeError> {
    if !cli.resume {
        return Ok((urls, OutMode::Create));
    }
    let repair = resume::repair(&cli.out, |url| urls.mark_done(url))?;
    for note in repair.notes(&cli.out) {
        eprintln!("collect: --resume: {note}");
    }
    Ok((urls, OutMode::Append))
}

/// Connects to the Redis of `--redis`. A bad URL is refused; a Redis that does not answer
/// yet is not (its limiter then decides locally on a share of the rate until it does).
#[cfg(feature = "redis")]
async fn connect_redis(
    url: &str,
    cluster: bool,
    queue: bool,
) -> Result<harvester_resilience::distributed::RedisConnection, String> {
    use harvester_resilience::distributed::RedisConnection;
    let config = redis_config(url, cluster);
    config.validate().map_err(|e| format!("--redis: {e}"))?;
    match RedisConnection::connect(&config).await {
        Ok(connection) => Ok(connection),
        // The queue is the work: without it there is nothing to do.
        Err(e) if queue => Err(format!("--redis: {e}")),
        Err(e) => {
            eprintln!("collect: warning: {e}; going on, each collector limiting itself to a share of --rate");
            RedisConnection::lazy(&config).map_err(|e| format!("--redis: {e}"))
        }
    }
}

/// The settings of `--redis URL`.
#[cfg(feature = "redis")]
fn redis_config(url: &str, cluster: bool) -> harvester_resilience::distributed::RedisConfig {
    harvester_resilience::distributed::RedisConfig {
        url: url.to_owned(),
        cluster,
        key_prefix: "harvester:".to_owned(),
        ..Default::default()
    }
}

/// The name a collector goes by in a queue's consumer group: host name and process id.
#[cfg(feature = "redis")]
fn default_consumer() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "collector".to_owned());
    format!("{host}-{}", std::process::id())
}

fn print_summary(report: &Report, cli: &Cli) {
    let totals = &report.totals;
    println!(
        "collected {} of {} URLs ({:.1} %), {} failed, in {:.1} s ({:.0} collected/s){}",
        totals.ok,
        report.urls,
        100.0 * report.success_rate,
        totals.failed,
        report.elapsed_secs,
        report.ok_per_sec,
        if report.interrupted { ", interrupted" } else { "" }
    );
    if cli.resume {
        println!("resumed: {} URLs already done in {}, skipped", report.already_done, cli.out.display());
    }
    println!("attempts: {} in all, at most {} for one URL", totals.attempts, totals.max_attempts_per_url);
    for (reason, count) in &totals.failure_reasons {
        println!("  failed, {reason}: {count}");
    }
    let proxies = &report.proxies;
    println!(
        "proxies: {} in the pool, {} ejected now, {} banned by a site",
        proxies.size, proxies.ejected, proxies.banned_somewhere
    );
    for proxy in &proxies.proxies {
        println!(
            "  {:<14} {:>5} requests, success {:>5}, ejected {} time(s){}",
            proxy.id.as_str(),
            proxy.requests,
            proxy.success_rate.map_or("-".to_owned(), |rate| format!("{:.0} %", 100.0 * rate)),
            proxy.times_ejected,
            if proxy.bans_active.is_empty() { "" } else { ", banned" }
        );
    }
    let costs = &report.costs;
    if costs.total.cost > 0.0 {
        println!(
            "cost: {:.4} for {} requests, {} per collected URL",
            costs.total.cost,
            costs.total.requests,
            costs.cost_per_ok_url.map_or("-".to_owned(), |cost| format!("{cost:.6}"))
        );
        for advice in &costs.recommendations {
            println!("  {advice}");
        }
    }
    for anomaly in &report.anomalies {
        println!("anomaly: {anomaly}");
    }
    println!("output: {}", cli.out.display());
    if let Some(path) = &cli.report {
        println!("report: {}", path.display());
    }
}
