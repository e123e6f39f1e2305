//! The `--urls` file as a run's [`Work`], streamed: never held whole in memory.
//!
//! [`UrlFile::open`] reads the file once to check every line (a bad one refuses the run with
//! its number, before any work) and to build the [`UrlSet`] of its URLs, 8 bytes each. The
//! run then reads it a second time, handing out each URL at its first occurrence; a repeat
//! is skipped (and counted in [`Work::duplicates`]), and so is a URL marked done beforehand
//! with [`UrlFile::mark_done`] (`--resume`: its final line is in `--out` already).
//!
//! The second pass reads ahead in chunks of [`CHUNK`] URLs on a blocking thread, so reading
//! the file never stalls the runtime, and memory holds one chunk whatever the file's size.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::task::JoinHandle;

use crate::input::{InputError, Target, UrlLines};
use crate::url_set::{Marked, UrlSet, UrlSetBuilder};
use crate::work::{Assignment, Work, WorkError};

/// URLs read ahead at a time by the second pass.
pub const CHUNK: usize = 1024;

/// The URLs of a list file, each once, read as the run takes them.
#[derive(Debug)]
pub struct UrlFile {
    path: PathBuf,
    urls: u64,
    duplicates: u64,
    already_done: u64,
    /// The reader and the set, while no chunk is being read (`None` before the first read).
    pass: Option<Pass>,
    /// The set before the second pass starts (then it moves into `pass`).
    set: Option<UrlSet>,
    /// A chunk being read; kept across a cancelled `next` so no URL is lost.
    reading: Option<JoinHandle<Chunk>>,
    ready: VecDeque<Target>,
    ended: bool,
}

/// The second pass: where it stands in the file, and the marks so far.
#[derive(Debug)]
struct Pass {
    lines: UrlLines,
    set: UrlSet,
}

/// What one read-ahead brought back.
#[derive(Debug)]
struct Chunk {
    pass: Pass,
    targets: VecDeque<Target>,
    ended: bool,
    error: Option<WorkError>,
}

impl UrlFile {
    /// Reads the list at `path` once: checks every line and collects each URL's
    /// fingerprint. Refused like [`crate::input::read_urls`]: unreadable, a bad line (with its
    /// number), or no URL at all.
    pub fn open(path: &Path) -> Result<UrlFile, InputError> {
        let mut lines = UrlLines::open(path)?;
        let mut builder = UrlSetBuilder::new();
        while let Some((_, target)) = lines.next_url()? {
            builder.add(&target.url);
        }
        let (set, duplicates) = builder.build();
        if set.is_empty() {
            return Err(InputError::NoUrls { path: path.to_owned() });
        }
        Ok(UrlFile {
            path: path.to_owned(),
            urls: set.len(),
            duplicates,
            already_done: 0,
            pass: None,
            set: Some(set),
            reading: None,
            ready: VecDeque::new(),
            ended: false,
        })
    }

    /// Before the run: marks `url` done, so the run skips it. Says whether it is a URL of
    /// the list (`Unlisted` if not, or once the run has started taking URLs), and whether it
    /// was marked before.
    pub fn mark_done(&mut self, url: &str) -> Marked {
        let Some(set) = self.set.as_mut() else { return Marked::Unlisted };
        let marked = set.mark(url);
        if marked == Marked::First {
            self.already_done += 1;
        }
        marked
    }

    /// URLs of the list (each once), done or not.
    pub fn urls(&self) -> u64 {
        self.urls
    }

    /// URLs marked done before the run, which it skips.
    pub fn already_done(&self) -> u64 {
        self.already_done
    }

    /// Starts reading the next chunk, from the start of the file the first time.
    fn read_ahead(&mut self) -> Result<JoinHandle<Chunk>, WorkError> {
        let pass = match (self.pass.take(), self.set.take()) {
            (Some(pass), _) => pass,
            (None, Some(set)) => {
                let lines = UrlLines::open(&self.path).map_err(|e| WorkError(e.to_string()))?;
                Pass { lines, set }
            }
            (None, None) => return Err(WorkError(format!("{}: the list was lost mid-run", self.path.display()))),
        };
        Ok(tokio::task::spawn_blocking(move || read_chunk(pass)))
    }
}

/// Reads up to [`CHUNK`] URLs not handed out before (nor done), marking each.
fn read_chunk(mut pass: Pass) -> Chunk {
    let mut targets = VecDeque::with_capacity(CHUNK);
    while targets.len() < CHUNK {
        match pass.lines.next_url() {
            Ok(Some((line, target))) => match pass.set.mark(&target.url) {
                Marked::First => targets.push_back(target),
                Marked::Again => {}
                Marked::Unlisted => {
                    let error = format!(
                        "{} line {line}: {} was not in the list when it was checked: the file changed during the run",
                        pass.lines.path().display(),
                        target.url
                    );
                    return Chunk { pass, targets, ended: true, error: Some(WorkError(error)) };
                }
            },
            Ok(None) => return Chunk { pass, targets, ended: true, error: None },
            Err(e) => {
                let error = WorkError(format!("{e} (the file changed during the run)"));
                return Chunk { pass, targets, ended: true, error: Some(error) };
            }
        }
    }
    Chunk { pass, targets, ended: false, error: None }
}

#[async_trait]
impl Work for UrlFile {
    async fn next(&mut self) -> Result<Option<Assignment>, WorkError> {
        loop {
            if let Some(target) = self.ready.pop_front() {
                return Ok(Some(Assignment::new(target)));
            }
            if self.ended {
                return Ok(None);
            }
            if self.reading.is_none() {
                self.reading = Some(self.read_ahead()?);
            }
            // Cancel-safe: the handle stays in `self` until the chunk is in.
            let Some(reading) = self.reading.as_mut() else { continue };
            let chunk = reading.await;
            self.reading = None;
            let chunk = chunk.map_err(|e| WorkError(format!("{}: reading failed: {e}", self.path.display())))?;
            self.pass = Some(chunk.pass);
            self.ready = chunk.targets;
            self.ended = chunk.ended;
            if let Some(error) = chunk.error {
                // A file that changed mid-run is no longer the list that was checked: stop.
                self.ready.clear();
                return Err(error);
            }
        }
    }

    fn total(&self) -> Option<u64> {
        Some(self.urls - self.already_done)
    }

    fn duplicates(&self) -> u64 {
        self.duplicates
    }

    fn lists_the_rest_on_stop(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    fn list(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("urls.txt");
        std::fs::write(&path, text).expect("write");
        (dir, path)
    }

    async fn drain(file: &mut UrlFile) -> Vec<String> {
        let mut urls = Vec::new();
        while let Some(assignment) = file.next().await.expect("reads") {
            urls.push(assignment.target.url.to_string());
        }
        urls
    }

    #[tokio::test]
    async fn each_url_is_handed_out_once_in_order_and_those_marked_done_are_skipped() {
        // Given a list of 2 500 URLs (three chunks), each listed twice, the 7th marked done
        let url = |n: usize| format!("http://a.test/{n}");
        let text: String = (0..2_500).chain(0..2_500).map(|n| url(n) + "\n").collect();
        let (_dir, path) = list(&text);
        let mut file = UrlFile::open(&path).expect("opens");
        assert_eq!(file.mark_done(&url(7)), Marked::First);
        assert_eq!(file.mark_done("http://a.test/elsewhere"), Marked::Unlisted);
        // When the run takes them, a first call cancelled mid-read
        let first = file.next().now_or_never();
        let mut urls: Vec<String> =
            first.and_then(|next| next.expect("reads")).map(|a| a.target.url.to_string()).into_iter().collect();
        urls.extend(drain(&mut file).await);
        // Then every URL but the done one comes once, in the list's order
        let expected: Vec<String> = (0..2_500).filter(|&n| n != 7).map(url).collect();
        assert_eq!(urls, expected);
        assert_eq!((file.total(), file.duplicates(), file.already_done()), (Some(2_499), 2_500, 1));
    }

    #[tokio::test]
    async fn a_list_changed_during_the_run_stops_it() {
        let (_dir, path) = list("http://a.test/1\nhttp://a.test/2\n");
        let mut file = UrlFile::open(&path).expect("opens");
        std::fs::write(&path, "http://a.test/1\nhttp://a.test/3\n").expect("rewrite");
        let error = loop {
            match file.next().await {
                Ok(Some(_)) => {}
                Ok(None) => panic!("the change went unnoticed"),
                Err(error) => break error,
            }
        };
        assert!(error.to_string().contains("line 2: http://a.test/3 was not in the list"), "{error}");
    }
}
