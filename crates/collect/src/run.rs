//! The job: fetch every URL through the stack, pass each result through the pipeline into the
//! output file, and stop cleanly when asked.
//!
//! Every URL ends as exactly one line: fetched and extracted (`ok`), or `failed` with why, and
//! that includes URLs never started because the run was interrupted. Lines only enter the
//! output through the pipeline, so there is one writer and one tally.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use harvester_pipeline::{Report as PipelineReport, StreamProcessor};
use harvester_proxypool::client::{AdaptiveTimeout, ClientError, DefaultClassifier, Hedging};
use harvester_proxypool::{ProxyClient, ProxyPool};
use harvester_resilience::{BoxError, Rejection};
use harvester_scaler::{Decision, Driver, DriverConfig, Hpa, HpaConfig, MetricSpec, StageMetrics, StageWorkers};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;

use crate::extraction::{Extractor, PageClassifier};
use crate::input::Target;
use crate::output::{FailedLines, OutMode, OutputSink, Tally};
use crate::records::{self, Fetched, INTERRUPTED};
use crate::stack::{self, Fetch, FetchService, Stack, StackSettings};
use crate::telemetry::AnomalyWatch;
pub use crate::telemetry::Watch;
use crate::work::{Assignment, Work, WorkError};
use harvester_scaler::anomaly::AnomalyEvent;

/// Everything the job needs.
pub struct Job {
    /// Where the URLs come from.
    pub work: Box<dyn Work>,
    /// The proxies.
    pub pool: ProxyPool,
    /// The stack's settings.
    pub stack: StackSettings,
    /// Workers the `extract` and `transform` stages start with.
    pub stage_workers: usize,
    /// How the scaler sets those stages' workers.
    pub scaling: Scaling,
    /// The output file.
    pub out: PathBuf,
    /// Whether the output file is truncated or appended to (`--resume`).
    pub out_mode: OutMode,
    /// Trust this PEM root as well (the demo's self-signed target).
    pub extra_root_pem: Option<Vec<u8>>,
}

/// The scaler's part: an HPA per CPU stage (`extract`, `transform`) on its queue depth per
/// worker and its busy share, deciding every `interval`.
#[derive(Debug, Clone)]
pub struct Scaling {
    /// Time between decisions.
    pub interval: Duration,
    /// Most workers per stage.
    pub max_workers: u32,
    /// How long load must stay low before workers are shed (the HPA's downscale
    /// stabilisation; Kubernetes' 5 min is far longer than a collection run).
    pub scale_down_after: Duration,
}

impl Default for Scaling {
    fn default() -> Self {
        Scaling { interval: Duration::from_secs(1), max_workers: 8, scale_down_after: Duration::from_secs(10) }
    }
}

/// The controls of every stage of the job's pipeline, for their queue depths.
fn stage_controls(processor: &StreamProcessor<Fetched>) -> Vec<harvester_pipeline::processor::StageControl> {
    ["validate", "extract", "transform"].into_iter().filter_map(|stage| processor.stage_control(stage).ok()).collect()
}

/// The stages the scaler drives.
const SCALED_STAGES: [&str; 2] = ["extract", "transform"];

/// Starts a driver per scaled stage.
fn start_scalers(processor: &StreamProcessor<Fetched>, scaling: &Scaling) -> Result<Vec<Driver>, JobError> {
    let config = |e: &dyn std::fmt::Display| JobError::Config(format!("scaler: {e}"));
    let mut drivers = Vec::new();
    for stage in SCALED_STAGES {
        let control = processor.stage_control(stage).map_err(|e| config(&e))?;
        let hpa = Hpa::new(HpaConfig {
            min_replicas: 1,
            max_replicas: scaling.max_workers,
            downscale_stabilization: scaling.scale_down_after,
            // A worker should have at most a run of records waiting, and be busy 70 % of the time.
            metrics: vec![
                MetricSpec::average_value(StageMetrics::QUEUE_DEPTH, 64.0),
                MetricSpec::value(StageMetrics::BUSY, 0.7),
            ],
            ..HpaConfig::default()
        })
        .map_err(|e| config(&e))?;
        let driver = Driver::spawn(
            DriverConfig { interval: scaling.interval, ..DriverConfig::default() },
            hpa,
            StageMetrics::new(control.clone()),
            StageWorkers::new(control),
        )
        .map_err(|e| config(&e))?;
        drivers.push(driver);
    }
    Ok(drivers)
}

/// What the job did; the report is made of it.
pub struct RunOutcome {
    /// The tally of the output file.
    pub tally: Arc<Tally>,
    /// True when the run was asked to stop before the end.
    pub interrupted: bool,
    /// From start to the last line written.
    pub elapsed: Duration,
    /// The pipeline's account of every record.
    pub pipeline: PipelineReport,
    /// The stack, for its breakers and budget.
    pub stack: Stack,
    /// The pool, for its per-proxy statistics.
    pub pool: ProxyPool,
    /// Every decision of the scaler, per stage, in order.
    pub scaler_decisions: Vec<(String, Decision)>,
    /// URLs the work held in all, when known.
    pub urls: Option<u64>,
    /// Lines of the input repeating an earlier URL.
    pub duplicates: u64,
    /// Why the URLs stopped coming before their end, if they did.
    pub work_error: Option<WorkError>,
    /// Every change of state the anomaly detector saw (error rate, latency, queue depth,
    /// memory), in order.
    pub anomalies: Vec<AnomalyEvent>,
}

/// Why the job could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// A setting is out of range.
    #[error("{0}")]
    Config(String),
    /// The output file could not be created.
    #[error("{0}")]
    Output(String),
}

/// Prepares the job (stack, pipeline, output file) with the default extraction and returns
/// what a watcher needs, then [`Running::run`] does the work.
pub async fn start(job: Job) -> Result<Running, JobError> {
    start_with(job, Extractor::default()).await
}

/// [`start`], reading pages with `extractor` (and its rules: their ban markers go to the
/// client's classifier, which decides bans for the whole job).
pub async fn start_with(job: Job, extractor: Extractor) -> Result<Running, JobError> {
    // A proxy's own refusals are the proxy's failures, retried on another proxy: 407 and 401
    // (tinyproxy answers wrong credentials with 401), and 502 / 504, which a proxy sends when
    // it cannot get an answer upstream. Were they the site's, a bad proxy would open the
    // site's circuit breaker and stop the whole job. The cost: a site that itself answers
    // 401 / 502 / 504 to everyone counts against the proxies.
    let statuses = DefaultClassifier::new().proxy_failure_statuses([401, 407, 502, 504]);
    // Ban and captcha pages served with 200 are told by their structure, with the host's
    // markers of the rule file: the one place a ban is decided (see `extraction::interstitial`).
    let classifier = PageClassifier::new(statuses, extractor.rules().clone());
    let mut client = ProxyClient::builder(job.pool.clone())
        .request_timeout(job.stack.attempt_timeout)
        .connect_timeout(job.stack.attempt_timeout)
        .classifier(classifier);
    // The tail of a dirty fleet: a hanging proxy holds its URL for the whole timeout unless
    // another proxy is asked meanwhile, and waiting the user's timeout on a host that
    // answers in milliseconds wastes it.
    if job.stack.hedge_share > 0.0 {
        // As many hedges as requests in flight may go out before requests have earned
        // them: at the start, when the pool knows nothing yet, every request may need one.
        let burst = u32::try_from(job.stack.concurrency).unwrap_or(u32::MAX);
        client = client.hedging(Hedging { max_extra: job.stack.hedge_share, burst, ..Hedging::default() });
    }
    if job.stack.adaptive_timeout {
        client = client.adaptive_timeout(AdaptiveTimeout::default());
    }
    if let Some(pem) = &job.extra_root_pem {
        client = client.trust_root_pem(pem).map_err(|e| JobError::Config(e.to_string()))?;
    }
    let client = client.build().map_err(|e| JobError::Config(e.to_string()))?;
    let stack = stack::build(client, &job.stack).map_err(|e| JobError::Config(e.to_string()))?;

    let tally = Arc::new(Tally::default());
    let output = OutputSink::open(&job.out, job.out_mode, tally.clone(), crate::telemetry::record_url)
        .await
        .map_err(|e| JobError::Output(e.to_string()))?;
    let mut builder = StreamProcessor::builder();
    for stage in records::stages(job.stage_workers, extractor) {
        builder = builder.stage(stage);
    }
    let processor = builder
        .queue_size(1_000)
        .batch_size(256)
        .sink(output.clone())
        .dead_letter(FailedLines(output))
        .build()
        .map_err(|e| JobError::Config(e.to_string()))?;
    let scalers = start_scalers(&processor, &job.scaling)?;
    let (ready_tx, ready) = watch::channel(false);
    let total = job.work.total().unwrap_or(0);
    Ok(Running {
        job,
        stack,
        processor,
        scalers,
        tally: tally.clone(),
        watch: Watch { tally, total, ready },
        _ready: ready_tx,
    })
}

/// A job ready to run.
pub struct Running {
    job: Job,
    stack: Stack,
    processor: StreamProcessor<Fetched>,
    scalers: Vec<Driver>,
    tally: Arc<Tally>,
    watch: Watch,
    _ready: watch::Sender<bool>,
}

impl Running {
    /// What a watcher reads while the job runs.
    pub fn watch(&self) -> Watch {
        self.watch.clone()
    }

    /// The per-host circuit breakers, for their states in `/metrics`.
    pub fn breakers(&self) -> &harvester_resilience::breaker::KeyedBreaker<String> {
        &self.stack.breakers
    }

    /// The pipeline, for its metrics and stage controls.
    pub fn processor(&self) -> &StreamProcessor<Fetched> {
        &self.processor
    }

    /// Starts sampling the proxies' success rates and the stages' queue depths into gauges,
    /// every second until the task is aborted.
    pub fn sample_gauges(&self) -> tokio::task::JoinHandle<()> {
        crate::telemetry::sample_gauges(self.job.pool.clone(), stage_controls(&self.processor), self.tally.clone())
    }

    /// Fetches every URL, `concurrency` at a time (the job's one concurrency limit: a URL
    /// holds its slot from its fetch until its line is written), until
    /// done or until `stop` turns true. After a stop, fetches in flight get a grace period
    /// as long as one attempt may take to finish; what is left is written as failed
    /// (interrupted), so the output still has every URL.
    pub async fn run(self, mut stop: watch::Receiver<bool>) -> RunOutcome {
        let started = Instant::now();
        let Running { job, stack, processor, scalers, tally, _ready: ready, .. } = self;
        let Job { mut work, pool, stack: settings, .. } = job;
        let _ = ready.send(true);
        let anomalies = AnomalyWatch::start(tally.clone(), stage_controls(&processor));
        let sender = processor.sender();
        let permits = Arc::new(Semaphore::new(settings.concurrency));
        // Not a timeout of the fetch: how long a stop waits for fetches in flight.
        let grace = settings.attempt_timeout;
        let mut fetches = JoinSet::new();
        let mut interrupted = *stop.borrow();
        let mut work_error = None;
        while !interrupted {
            // A slot first, then a URL: a shared queue hands out no more URLs than can start.
            let permit = tokio::select! {
                biased;
                _ = stopped(&mut stop) => { interrupted = true; break }
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let assignment = tokio::select! {
                biased;
                _ = stopped(&mut stop) => { interrupted = true; break }
                next = work.next() => match next {
                    Ok(Some(assignment)) => assignment,
                    Ok(None) => break,
                    Err(error) => { work_error = Some(error); break }
                },
            };
            let (service, sender, stop) = (stack.service.clone(), sender.clone(), stop.clone());
            fetches.spawn(async move {
                let Assignment { target, receipt } = assignment;
                // A panic in a fetch must still leave its URL's line.
                let fetch = fetch_within_grace(service, target.clone(), stop, grace);
                let fetched = std::panic::AssertUnwindSafe(fetch).catch_unwind().await;
                let fetched = fetched.unwrap_or_else(|_| {
                    Fetched::failed(&target, "internal error: the fetch panicked".to_owned(), 0, Duration::ZERO)
                });
                // The slot is given back once the line is written, not now: pages fetched
                // but not yet in the file stay within --concurrency (what a crash refetches).
                // Refused only if the pipeline is gone, which `run` prevents.
                let _ = sender.send(fetched.with_receipt(receipt).with_slot(permit)).await;
            });
        }
        work.stop_taking().await;
        if interrupted && work.lists_the_rest_on_stop() {
            work_error = write_the_rest(&mut *work, &sender).await.err();
        }
        while fetches.join_next().await.is_some() {}
        // A stop after the last URL was dispatched still interrupted the fetches in flight.
        interrupted |= *stop.borrow();
        let _ = ready.send(false);
        drop(sender);
        let pipeline = processor.shutdown(Duration::from_secs(60)).await;
        work.finish().await;
        let anomalies = anomalies.stop();
        let mut scaler_decisions = Vec::new();
        for (stage, driver) in SCALED_STAGES.into_iter().zip(scalers) {
            let history = driver.stop().await.unwrap_or_else(|failed| {
                tracing::error!(stage, reason = %failed.reason, "the stage's scaler died; its workers stayed as it last set them");
                failed.history
            });
            scaler_decisions.extend(history.into_iter().map(|decision| (stage.to_owned(), decision)));
        }
        RunOutcome {
            tally,
            interrupted,
            elapsed: started.elapsed(),
            pipeline,
            stack,
            pool,
            scaler_decisions,
            urls: work.total(),
            duplicates: work.duplicates(),
            work_error,
            anomalies,
        }
    }
}

/// After a stop, writes every URL the work still holds as interrupted (not final).
async fn write_the_rest(work: &mut dyn Work, sender: &harvester_pipeline::Sender<Fetched>) -> Result<(), WorkError> {
    while let Some(Assignment { target, .. }) = work.next().await? {
        let error = format!("{INTERRUPTED} not fetched before the stop");
        let _ = sender.send(Fetched::failed(&target, error, 0, Duration::ZERO)).await;
    }
    Ok(())
}

/// Resolves once `stop` is true (never, if its sender is gone while false).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Fetches `target`; after a stop, gives it `grace` more, then writes it as interrupted.
async fn fetch_within_grace(
    service: FetchService,
    target: Target,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) -> Fetched {
    let fetch = Fetch::new(target);
    let started = Instant::now();
    let attempt = fetch_one(service, fetch.clone(), started);
    tokio::pin!(attempt);
    tokio::select! {
        fetched = &mut attempt => fetched,
        () = async { stopped(&mut stop).await; tokio::time::sleep(grace).await } => {
            let error = format!("{INTERRUPTED} still in flight at the stop");
            failed_after(&fetch, error, started)
        }
    }
}

/// One URL through the stack, on its way into the pipeline.
async fn fetch_one(service: FetchService, fetch: Fetch, started: Instant) -> Fetched {
    match service.oneshot(fetch.clone()).await {
        Ok(page) => Fetched::page(&fetch.target, page, fetch.attempts(), started.elapsed()),
        Err(error) => failed_after(&fetch, describe(&error), started),
    }
}

/// `fetch` failed for `error`, with what its attempts went through.
fn failed_after(fetch: &Fetch, error: String, started: Instant) -> Fetched {
    let mut fetched = Fetched::failed(&fetch.target, error, fetch.attempts(), started.elapsed());
    fetched.line.proxy = fetch.last_proxy();
    fetched
}

/// An error as `reason: details`, the reason short and stable (the report counts by it).
pub fn describe(error: &BoxError) -> String {
    match Rejection::of(&**error) {
        Some(Rejection::RetryBudgetExhausted(e)) => {
            format!("retry budget exhausted: after {} attempts; last error: {}", e.attempts, e.last_error)
        }
        Some(Rejection::CircuitOpen(e)) => format!("circuit open: {e}"),
        Some(Rejection::RateLimited(e)) => format!("rate limited: {e}"),
        Some(_) => format!("refused: {error}"),
        None => match error.downcast_ref::<ClientError>() {
            Some(e @ ClientError::NoProxy { .. }) => format!("no proxy: {e}"),
            Some(e @ ClientError::TimedOut { .. }) => format!("timed out: {e}"),
            Some(e @ ClientError::TargetUnreachable { .. }) => format!("unreachable: {e}"),
            Some(e @ ClientError::BodyTooLarge { .. }) => format!("too large: {e}"),
            Some(e @ ClientError::InvalidRequest(_)) => format!("invalid request: {e}"),
            Some(e) => format!("proxy failed: {e}"),
            None => format!("error: {error}"),
        },
    }
}
