//! The `--report` file: the run in one JSON document.

use std::collections::BTreeMap;

use harvester_pipeline::Report as PipelineReport;
use harvester_proxypool::PoolStats;
use harvester_scaler::anomaly::AnomalyEvent;
use serde::Serialize;

use crate::costs::Costs;
use crate::output::Counts;
use crate::run::RunOutcome;

/// The summary of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// True when the run was stopped (Ctrl-C) before every URL was fetched.
    pub interrupted: bool,
    /// URLs in the job (each once); with a shared queue, the URLs this collector wrote.
    pub urls: u64,
    /// Lines of the URL list repeating an earlier URL (collected once).
    pub duplicate_urls: u64,
    /// `--resume`: URLs of the list whose final line an earlier run left in `--out`,
    /// skipped (not in `urls`).
    pub already_done: u64,
    /// Why the URLs stopped coming before their end (the URL list became unreadable, the
    /// queue was lost), if they did.
    pub work_error: Option<String>,
    /// What the output file holds.
    pub totals: Counts,
    /// `ok / urls`.
    pub success_rate: f64,
    /// Seconds from the first fetch to the last line written.
    pub elapsed_secs: f64,
    /// URLs collected (ok) per second over the run.
    pub ok_per_sec: f64,
    /// Retry tokens left in the budget at the end.
    pub retry_budget_left: Option<f64>,
    /// Every proxy: requests, success rate, latency, ejection, bans (never credentials).
    pub proxies: PoolStats,
    /// The circuit breaker of every host seen.
    pub breakers: BTreeMap<String, BreakerReport>,
    /// The pipeline's account: per-stage counters and the sink's writes.
    pub pipeline: PipelineReport,
    /// What the scaler decided for each stage it drives, in order: the changes of workers
    /// (rounds that left the count as it was are summed up in `scaler_rounds`).
    pub scaler_decisions: Vec<ScalerDecision>,
    /// Rounds the scaler ran, changes or not.
    pub scaler_rounds: usize,
    /// What the run cost, per provider, kind and site, and what to prefer where.
    pub costs: Costs,
    /// Anomalies of the run: each change of state of the error rate, latency, queue depth
    /// or memory against its rolling baseline (warning, critical, back to normal).
    pub anomalies: Vec<AnomalyEvent>,
}

/// One change of a stage's workers.
#[derive(Debug, Clone, Serialize)]
pub struct ScalerDecision {
    /// The stage.
    pub stage: String,
    /// When (RFC 3339).
    pub at: String,
    /// Workers before.
    pub from: u32,
    /// Workers after.
    pub to: u32,
    /// Why, in words.
    pub reason: String,
}

/// One host's breaker.
#[derive(Debug, Clone, Serialize)]
pub struct BreakerReport {
    /// `Closed`, `Open`, `HalfOpen`…
    pub state: String,
    /// Failed calls in the window, in percent.
    pub failure_rate: f64,
    /// Calls in the window.
    pub calls_in_window: u64,
    /// Calls refused since it was built.
    pub rejected: u64,
}

impl Report {
    /// The same, saying `already_done` URLs were done before this run and skipped.
    pub fn with_already_done(mut self, already_done: u64) -> Self {
        self.already_done = already_done;
        self
    }

    /// The report of `outcome`.
    pub fn new(outcome: &RunOutcome) -> Self {
        let totals = outcome.tally.counts();
        let proxies = outcome.pool.stats();
        let costs = Costs::of(&outcome.pool, &proxies, &totals);
        let urls = outcome.urls.unwrap_or_else(|| totals.done());
        let ok = totals.ok;
        let elapsed = outcome.elapsed.as_secs_f64();
        let breakers = outcome
            .stack
            .breakers
            .keys()
            .into_iter()
            .filter_map(|host| {
                let snapshot = outcome.stack.breakers.snapshot(&host)?;
                Some((
                    host,
                    BreakerReport {
                        state: format!("{:?}", snapshot.state),
                        failure_rate: snapshot.failure_rate,
                        calls_in_window: snapshot.calls_in_window,
                        rejected: snapshot.rejected,
                    },
                ))
            })
            .collect();
        Report {
            interrupted: outcome.interrupted,
            urls,
            duplicate_urls: outcome.duplicates,
            already_done: 0,
            work_error: outcome.work_error.as_ref().map(ToString::to_string),
            success_rate: if urls == 0 { 0.0 } else { totals.ok as f64 / urls as f64 },
            totals,
            elapsed_secs: elapsed,
            ok_per_sec: if elapsed > 0.0 { ok as f64 / elapsed } else { 0.0 },
            retry_budget_left: outcome.stack.budget.as_ref().map(|budget| budget.balance()),
            proxies,
            breakers,
            pipeline: outcome.pipeline.clone(),
            scaler_decisions: outcome
                .scaler_decisions
                .iter()
                .filter(|(_, decision)| decision.replicas_after() != decision.replicas_before)
                .map(|(stage, decision)| ScalerDecision {
                    stage: stage.clone(),
                    at: decision.at.to_string(),
                    from: decision.replicas_before,
                    to: decision.replicas_after(),
                    reason: decision.recommendation().map(|r| r.message.clone()).unwrap_or_default(),
                })
                .collect(),
            scaler_rounds: outcome.scaler_decisions.len(),
            anomalies: outcome.anomalies.clone(),
            costs,
        }
    }
}
