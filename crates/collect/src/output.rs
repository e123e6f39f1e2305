//! The `--out` file: one JSON line per URL, written by the pipeline's sink and by its
//! dead-letter sink (a record a stage gave up on is still a URL: it is written as failed),
//! with a running tally for the progress display and the report.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use harvester_pipeline::sinks::{FsyncPolicy, JsonlSink};
use harvester_pipeline::{DeadLetter, Sink, SinkError};
use serde::Serialize;

use crate::records::{Fetched, Line, Status};

/// What has been written so far.
#[derive(Debug, Default)]
pub struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    attempts: AtomicU64,
    max_attempts: AtomicU64,
    elapsed_ms: AtomicU64,
    /// Failures by their reason (the error text up to its first `:` detail).
    reasons: Mutex<BTreeMap<String, u64>>,
    /// URLs collected, by host.
    ok_by_host: Mutex<BTreeMap<String, u64>>,
}

/// A point-in-time copy of the [`Tally`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    /// URLs collected.
    pub ok: u64,
    /// URLs that failed.
    pub failed: u64,
    /// Attempts over every URL.
    pub attempts: u64,
    /// The most attempts one URL took.
    pub max_attempts_per_url: u64,
    /// Milliseconds from first attempt to last answer, summed over every URL.
    pub elapsed_ms: u64,
    /// Failed URLs by reason.
    pub failure_reasons: BTreeMap<String, u64>,
    /// URLs collected, by host.
    pub ok_by_host: BTreeMap<String, u64>,
}

impl Counts {
    /// URLs written.
    pub fn done(&self) -> u64 {
        self.ok + self.failed
    }
}

impl Tally {
    fn count(&self, host: &str, line: &Line) {
        if line.status == Status::Ok {
            let mut hosts = self.ok_by_host.lock().unwrap_or_else(PoisonError::into_inner);
            match hosts.get_mut(host) {
                Some(count) => *count += 1,
                None => {
                    hosts.insert(host.to_owned(), 1);
                }
            }
        }
        match line.status {
            Status::Ok => self.ok.fetch_add(1, Relaxed),
            Status::Failed => self.failed.fetch_add(1, Relaxed),
        };
        self.attempts.fetch_add(u64::from(line.attempts), Relaxed);
        self.max_attempts.fetch_max(u64::from(line.attempts), Relaxed);
        self.elapsed_ms.fetch_add(line.elapsed_ms, Relaxed);
        if let Some(error) = &line.error {
            let reason = error.split(':').next().unwrap_or(error).trim().to_owned();
            *self.reasons.lock().unwrap_or_else(PoisonError::into_inner).entry(reason).or_default() += 1;
        }
    }

    /// The counts now.
    pub fn counts(&self) -> Counts {
        Counts {
            ok: self.ok.load(Relaxed),
            failed: self.failed.load(Relaxed),
            attempts: self.attempts.load(Relaxed),
            max_attempts_per_url: self.max_attempts.load(Relaxed),
            elapsed_ms: self.elapsed_ms.load(Relaxed),
            failure_reasons: self.reasons.lock().unwrap_or_else(PoisonError::into_inner).clone(),
            ok_by_host: self.ok_by_host.lock().unwrap_or_else(PoisonError::into_inner).clone(),
        }
    }
}

/// How a run opens its output file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OutMode {
    /// Truncated: the run writes the file whole.
    #[default]
    Create,
    /// Kept, the run's lines appended: a resumed run, once [`crate::resume::repair`] has left
    /// one final line per URL done.
    Append,
}

/// The output file and its tally: the pipeline's sink.
pub struct OutputSink {
    file: JsonlSink<Fetched>,
    tally: Arc<Tally>,
    on_written: fn(&str, &Line),
}

impl OutputSink {
    /// Opens `path`, truncating it: a run writes the file whole.
    /// `on_written` sees each line once it is in the file (the job records its metrics there).
    pub async fn create(path: &Path, tally: Arc<Tally>, on_written: fn(&str, &Line)) -> Result<Arc<Self>, SinkError> {
        Self::open(path, OutMode::Create, tally, on_written).await
    }

    /// Opens `path` as `mode` says: truncated, or kept and appended to (creating it if missing).
    pub async fn open(
        path: &Path,
        mode: OutMode,
        tally: Arc<Tally>,
        on_written: fn(&str, &Line),
    ) -> Result<Arc<Self>, SinkError> {
        if mode == OutMode::Create {
            std::fs::File::create(path)
                .map_err(|e| SinkError::new("out", format!("cannot create {}: {e}", path.display())))?;
        }
        let file = JsonlSink::open(path, FsyncPolicy::OnFlush).await?.with_name("out");
        Ok(Arc::new(OutputSink { file, tally, on_written }))
    }
}

#[async_trait]
impl Sink<Fetched> for OutputSink {
    fn name(&self) -> &str {
        "out"
    }

    async fn write(&self, batch: &[Fetched]) -> Result<(), SinkError> {
        self.file.write(batch).await?;
        // A receipt is settled only once its line is on disk: synced first.
        let settling = batch.iter().any(|fetched| fetched.receipt.is_some() && fetched.line.is_final());
        if settling {
            self.file.flush().await?;
        }
        // Counted once written, so the tally never runs ahead of the file.
        for fetched in batch {
            self.tally.count(&fetched.host, &fetched.line);
            (self.on_written)(&fetched.host, &fetched.line);
            if let Some(receipt) = &fetched.receipt
                && fetched.line.is_final()
            {
                match serde_json::to_vec(&fetched.line) {
                    Ok(json) => receipt.settle(&json),
                    // Not settled: the URL is fetched again, never lost.
                    Err(error) => tracing::error!(url = %fetched.line.url, %error, "cannot encode a line to settle it"),
                }
            }
        }
        Ok(())
    }

    async fn flush(&self) -> Result<(), SinkError> {
        self.file.flush().await
    }
}

/// The pipeline's dead-letter sink: a record a stage gave up on becomes a failed line.
pub struct FailedLines(pub Arc<OutputSink>);

#[async_trait]
impl Sink<DeadLetter<Fetched>> for FailedLines {
    fn name(&self) -> &str {
        "out-failed"
    }

    async fn write(&self, batch: &[DeadLetter<Fetched>]) -> Result<(), SinkError> {
        let lines: Vec<Fetched> = batch
            .iter()
            .map(|letter| {
                let settled = letter.record.line.is_final() && letter.stage != self.0.name();
                let mut line =
                    letter.record.clone().fail(format!("pipeline: stage {} gave up: {}", letter.stage, letter.error));
                // A URL whose line the output itself could not take, or one a stop cut
                // short, is not done for good: its receipt is not settled, so a queue hands
                // the URL out again instead of keeping this collector's failure as its result.
                if !settled {
                    line.receipt = None;
                }
                line
            })
            .collect();
        self.0.write(&lines).await
    }

    async fn flush(&self) -> Result<(), SinkError> {
        self.0.flush().await
    }
}
