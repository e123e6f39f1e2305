//! Where a run's URLs come from, and how a URL's work is settled once its line is written.
//!
//! A run takes [`Assignment`]s from a [`Work`] until it ends: a URL list read line by line
//! ([`List`] holds one in memory; the `--urls` file is streamed), or a shared queue on Redis
//! that many collectors take from. An assignment may carry a [`Receipt`]: the output sink
//! settles it once the URL's **final** line is durably written (a queue acknowledges the
//! URL then), and drops it unsettled otherwise (the line of a URL cut short by a stop is
//! not final: the URL is fetched again by whoever resumes).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::input::Target;

/// Settles one URL's work once its final line is durably written.
pub trait Receipt: Send + Sync + fmt::Debug {
    /// The URL's final line, `line` (its JSON, no newline), is written and synced.
    fn settle(&self, line: &[u8]);
}

/// One URL to fetch, and what to settle when its line is written.
#[derive(Debug, Clone)]
pub struct Assignment {
    /// The URL.
    pub target: Target,
    /// Settled by the output sink after the URL's final line is durable.
    pub receipt: Option<Arc<dyn Receipt>>,
}

impl Assignment {
    /// A URL with nothing to settle.
    pub fn new(target: Target) -> Self {
        Assignment { target, receipt: None }
    }
}

/// Why the URLs stopped coming before their end.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct WorkError(pub String);

/// The URLs of a run, handed out one at a time.
#[async_trait]
pub trait Work: Send {
    /// The next URL, or `None` when there is no more work.
    async fn next(&mut self) -> Result<Option<Assignment>, WorkError>;

    /// How many URLs this work holds in all, when known before the run (for progress).
    fn total(&self) -> Option<u64>;

    /// Lines of the input repeating an earlier URL, left out (known once the input is read).
    fn duplicates(&self) -> u64 {
        0
    }

    /// After a stop, whether the URLs not yet handed out are each written as an
    /// interrupted line (a list: its output names every URL), or left where they are (a
    /// shared queue: another collector takes them).
    fn lists_the_rest_on_stop(&self) -> bool;

    /// Called once the run has written its last line: a queue hands back what it holds
    /// and waits for its last acknowledgements.
    async fn finish(&mut self) {}
}

/// URLs held in memory, each once: the demo's, and tests'.
#[derive(Debug, Clone, Default)]
pub struct List {
    targets: std::vec::IntoIter<Target>,
    total: u64,
    duplicates: u64,
}

impl List {
    /// Hands out `targets` in order.
    pub fn new(targets: Vec<Target>) -> Self {
        List { total: targets.len() as u64, targets: targets.into_iter(), duplicates: 0 }
    }

    /// Also reports `duplicates` lines left out of the list.
    pub fn with_duplicates(mut self, duplicates: u64) -> Self {
        self.duplicates = duplicates;
        self
    }
}

#[async_trait]
impl Work for List {
    async fn next(&mut self) -> Result<Option<Assignment>, WorkError> {
        Ok(self.targets.next().map(Assignment::new))
    }

    fn total(&self) -> Option<u64> {
        Some(self.total)
    }

    fn duplicates(&self) -> u64 {
        self.duplicates
    }

    fn lists_the_rest_on_stop(&self) -> bool {
        true
    }
}
