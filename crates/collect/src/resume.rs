//! `--resume`: what an earlier run left in `--out`, read before the run, repaired, and
//! marked done so that the run fetches only the rest.
//!
//! [`repair`] reads `--out` line by line (one line in memory at a time) and keeps, for each
//! URL, its first **final** line ([`records::is_final`]: collected, or failed for a reason
//! of its own). It drops:
//!
//! - a last line cut short by a crash (a SIGKILL, a power cut): one with no newline at its
//!   end, or one that is not JSON, provided it starts like a line of ours (`{"url":`, or a
//!   piece of it, or zero bytes a power cut left): its URL is fetched again;
//! - lines that are not final (`interrupted: …`, written for URLs a stop cut short);
//! - further lines of a URL that has a final line already.
//!
//! Any other line that is not one of ours refuses the resume (its number is in the error),
//! and so does a URL that is not in `--urls`: the file is not what this list's run wrote.
//! Nothing is touched then.
//!
//! When only a torn last line must go, `--out` is cut after its last whole line; when more
//! must, it is rewritten: the lines kept go to a temporary file in the same directory, which
//! is synced and renamed over `--out`, and the directory is synced, so a crash at any point
//! leaves either the old file or the new one. Either way, `--out` is synced before the run
//! appends to it: a line counts as done only once it is durable, and a URL counts as done
//! only when its line is there, so a URL can be fetched twice (its line was not durable yet
//! at a crash) but never be left out.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::input::{LineError, LineReader};
use crate::records::{self, Status};
use crate::url_set::Marked;

/// The longest line of `--out` a resume reads: far beyond any page's record.
pub const MAX_OUT_LINE: usize = 64 * 1024 * 1024;

/// How a line of ours starts: `Line` serializes its `url` first.
const LINE_START: &[u8] = br#"{"url":"#;

/// What [`repair`] found in `--out`, and what it did to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    /// URLs with a final line, kept (one line each): the run skips them.
    pub done: u64,
    /// The number of a last line cut short by a crash, dropped.
    pub torn: Option<usize>,
    /// Lines that were not final (`interrupted: …`), dropped.
    pub not_final: u64,
    /// Lines of a URL that had a final line already, dropped.
    pub repeated: u64,
    /// How the file was left.
    pub file: Repaired,
}

/// How [`repair`] left `--out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repaired {
    /// There was no `--out`: the run is a fresh one.
    Missing,
    /// Every line was kept; the file was synced.
    Kept,
    /// Cut after its last whole line (a torn last line was all there was to drop), synced.
    Cut,
    /// Rewritten with the lines kept, atomically.
    Rewritten,
}

impl Repair {
    /// What a user should be told about the repair, one sentence each (nothing when the file
    /// was kept whole).
    pub fn notes(&self, out: &Path) -> Vec<String> {
        let mut notes = Vec::new();
        if let Some(line) = self.torn {
            notes.push(format!(
                "{} line {line} was cut short by a crash (an unfinished write): dropped, its URL is fetched again",
                out.display()
            ));
        }
        if self.not_final > 0 || self.repeated > 0 {
            notes.push(format!(
                "{} lines of {} were not final (interrupted) and {} repeated a URL done before them: dropped",
                self.not_final,
                out.display(),
                self.repeated
            ));
        }
        match self.file {
            Repaired::Rewritten => notes.push(format!("{} rewritten with one final line per URL", out.display())),
            Repaired::Cut => notes.push(format!("{} cut after its last whole line", out.display())),
            Repaired::Missing | Repaired::Kept => {}
        }
        notes
    }
}

/// Why `--out` could not be resumed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResumeError {
    /// The file could not be read.
    #[error("--out {path}: cannot read it: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A line is not one collect writes, and not a torn last line either.
    #[error(
        "--out {path} line {line}: not a line of collect ({reason}); --resume repairs only a last line cut short by a crash"
    )]
    Garbled {
        /// The file.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A line is for a URL that is not in the list.
    #[error(
        "--out {path} line {line}: {url} is not in --urls; resume with the list that run was given, or write to another --out"
    )]
    Unlisted {
        /// The file.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
        /// The URL.
        url: String,
    },
    /// The repaired file could not be written or synced.
    #[error("--out {path}: cannot repair it: {source}")]
    Unwritable {
        /// The file written.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

/// What a resume reads of a line: the rest of it is skipped unparsed.
#[derive(Deserialize)]
struct Written {
    url: String,
    status: Status,
    error: Option<String>,
}

/// Reads `out`, marks the URL of each final line with `mark_done` (which says whether the
/// URL is in the list, and whether it was marked before), and repairs the file as the
/// module's documentation says. A missing `out` is a fresh run.
pub fn repair(out: &Path, mut mark_done: impl FnMut(&str) -> Marked) -> Result<Repair, ResumeError> {
    let unreadable = |source| ResumeError::Unreadable { path: out.to_owned(), source };
    let file = match File::open(out) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Repair { done: 0, torn: None, not_final: 0, repeated: 0, file: Repaired::Missing });
        }
        Err(e) => return Err(unreadable(e)),
    };
    let mut lines = LineReader::new(BufReader::with_capacity(256 * 1024, file));
    let mut repair = Repair { done: 0, torn: None, not_final: 0, repeated: 0, file: Repaired::Kept };
    // Started at the first line dropped before the end; until then every line stays in place.
    let mut rewrite: Option<Rewrite> = None;
    let mut torn_at = None;
    loop {
        let line = match lines.next_line(MAX_OUT_LINE) {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(LineError::Read(e)) => return Err(unreadable(e)),
            Err(LineError::TooLong { line }) => {
                let reason = format!("longer than {} MiB", MAX_OUT_LINE >> 20);
                return Err(ResumeError::Garbled { path: out.to_owned(), line, reason });
            }
        };
        let (number, offset) = (line.number, line.offset);
        let written = if line.ended {
            serde_json::from_slice::<Written>(line.bytes).map_err(|e| e.to_string())
        } else {
            Err("no newline at its end".to_owned())
        };
        let written = match written {
            Ok(written) => written,
            Err(reason) => {
                let ours = starts_like_a_line(line.bytes);
                let last = !line.ended || lines.at_end().map_err(unreadable)?;
                if ours && last {
                    repair.torn = Some(number);
                    torn_at = Some(offset);
                    break;
                }
                return Err(ResumeError::Garbled { path: out.to_owned(), line: number, reason });
            }
        };
        let keep = if !records::is_final(written.status, written.error.as_deref()) {
            repair.not_final += 1;
            false
        } else {
            match mark_done(&written.url) {
                Marked::First => {
                    repair.done += 1;
                    true
                }
                Marked::Again => {
                    repair.repeated += 1;
                    false
                }
                Marked::Unlisted => {
                    return Err(ResumeError::Unlisted { path: out.to_owned(), line: number, url: written.url });
                }
            }
        };
        match (&mut rewrite, keep) {
            (Some(rewrite), true) => rewrite.append(line.bytes)?,
            (None, false) => rewrite = Some(Rewrite::start(out, offset)?),
            (Some(_), false) | (None, true) => {}
        }
    }
    repair.file = match (rewrite, torn_at) {
        (Some(rewrite), _) => {
            rewrite.commit()?;
            Repaired::Rewritten
        }
        (None, Some(offset)) => {
            cut(out, offset)?;
            Repaired::Cut
        }
        (None, None) => {
            let unwritable = |source| ResumeError::Unwritable { path: out.to_owned(), source };
            File::open(out).and_then(|file| file.sync_all()).map_err(unwritable)?;
            Repaired::Kept
        }
    };
    Ok(repair)
}

/// Whether `bytes` begin like a line of ours, as far as they go: what a crash mid-write
/// leaves (a power cut may also leave zero bytes where the write did not land).
fn starts_like_a_line(bytes: &[u8]) -> bool {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |at| at + 1);
    let text = &bytes[..end];
    if text.is_empty() {
        return !bytes.is_empty();
    }
    text.starts_with(LINE_START) || LINE_START.starts_with(text)
}

/// Cuts `out` to its first `len` bytes and syncs it and its directory.
fn cut(out: &Path, len: u64) -> Result<(), ResumeError> {
    let unwritable = |source| ResumeError::Unwritable { path: out.to_owned(), source };
    let file = OpenOptions::new().write(true).open(out).map_err(unwritable)?;
    file.set_len(len).and_then(|()| file.sync_all()).map_err(unwritable)?;
    sync_directory(out).map_err(unwritable)
}

/// Syncs the directory holding `path`, so that a rename or a new file in it is durable.
fn sync_directory(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        Some(dir) => File::open(dir)?.sync_all(),
        None => File::open(".")?.sync_all(),
    }
}

/// The lines kept, on their way to replacing `--out`. Removed if dropped uncommitted.
struct Rewrite {
    out: PathBuf,
    temp: PathBuf,
    file: Option<BufWriter<File>>,
}

impl Rewrite {
    /// Starts the temporary file with the first `len` bytes of `out` (the lines kept so far).
    fn start(out: &Path, len: u64) -> Result<Rewrite, ResumeError> {
        let name = out.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        let temp = out.with_file_name(format!(".{name}.resume-tmp"));
        let unwritable = |source| ResumeError::Unwritable { path: temp.clone(), source };
        let file = File::create(&temp).map_err(unwritable)?;
        let mut rewrite = Rewrite { out: out.to_owned(), temp: temp.clone(), file: Some(BufWriter::new(file)) };
        let mut prefix =
            File::open(out).map_err(|source| ResumeError::Unreadable { path: out.to_owned(), source })?.take(len);
        if let Some(file) = rewrite.file.as_mut() {
            std::io::copy(&mut prefix, file).map_err(unwritable)?;
        }
        Ok(rewrite)
    }

    /// Appends one line kept.
    fn append(&mut self, line: &[u8]) -> Result<(), ResumeError> {
        let Some(file) = self.file.as_mut() else { return Ok(()) };
        file.write_all(line)
            .and_then(|()| file.write_all(b"\n"))
            .map_err(|source| ResumeError::Unwritable { path: self.temp.clone(), source })
    }

    /// Syncs the temporary file, renames it over `out`, and syncs the directory.
    fn commit(mut self) -> Result<(), ResumeError> {
        let unwritable = |path: &Path, source| ResumeError::Unwritable { path: path.to_owned(), source };
        let Some(file) = self.file.as_mut() else { return Ok(()) };
        file.flush().and_then(|()| file.get_ref().sync_all()).map_err(|e| unwritable(&self.temp, e))?;
        std::fs::rename(&self.temp, &self.out).map_err(|e| unwritable(&self.out, e))?;
        self.file = None;
        sync_directory(&self.out).map_err(|e| unwritable(&self.out, e))
    }
}

impl Drop for Rewrite {
    fn drop(&mut self) {
        // Not committed: the old file stands, the temporary one goes.
        if self.file.is_some() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{INTERRUPTED, Line};
    use crate::url_set::{UrlSet, UrlSetBuilder};

    /// A line as the output sink writes it, newline included.
    fn line(url: &str, status: Status, error: Option<&str>) -> String {
        let line = Line {
            url: url.to_owned(),
            status,
            http_status: Some(200),
            proxy: Some("p".to_owned()),
            attempts: 1,
            elapsed_ms: 5,
            record: None,
            error: error.map(str::to_owned),
        };
        format!("{}\n", serde_json::to_string(&line).expect("a line encodes"))
    }

    fn ok(url: &str) -> String {
        line(url, Status::Ok, None)
    }

    fn set_of(urls: &[&str]) -> UrlSet {
        let mut builder = UrlSetBuilder::new();
        urls.iter().for_each(|url| builder.add(url));
        builder.build().0
    }

    /// Writes `text` as `out.jsonl` in a new directory and repairs it against `urls`.
    fn repaired(text: &[u8], urls: &[&str]) -> (tempfile::TempDir, PathBuf, Result<Repair, ResumeError>, UrlSet) {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("out.jsonl");
        std::fs::write(&out, text).expect("write out");
        let mut set = set_of(urls);
        let repair = repair(&out, |url| set.mark(url));
        (dir, out, repair, set)
    }

    fn files_in(dir: &Path) -> usize {
        std::fs::read_dir(dir).expect("dir").count()
    }

    const URLS: [&str; 4] = ["http://t.test/a", "http://t.test/b", "http://t.test/c", "http://t.test/d"];

    #[test]
    fn a_torn_last_line_an_interrupted_line_and_a_repeat_are_dropped_and_the_rest_rewritten_in_order() {
        // Given a, an interrupted b, a failed c (final), a again, and d cut mid-write
        let interrupted = format!("{INTERRUPTED} not fetched before the stop");
        let failed = line(URLS[2], Status::Failed, Some("http 404: the target answered HTTP 404"));
        let torn = &ok(URLS[3])[..30];
        let text = [ok(URLS[0]), line(URLS[1], Status::Failed, Some(&interrupted)), failed.clone(), ok(URLS[0])]
            .concat()
            + torn;
        // When it is repaired
        let (dir, out, repair, set) = repaired(text.as_bytes(), &URLS);
        // Then a and c are done, each once, in their order, and nothing else is left
        let repair = repair.expect("repaired");
        assert_eq!(repair, Repair { done: 2, torn: Some(5), not_final: 1, repeated: 1, file: Repaired::Rewritten });
        assert_eq!(std::fs::read_to_string(&out).expect("out"), ok(URLS[0]) + &failed);
        assert_eq!(set.marked(), 2);
        assert_eq!(files_in(dir.path()), 1, "no temporary file is left behind");
    }

    #[test]
    fn a_torn_last_line_alone_is_cut_off_in_place() {
        for torn in [&ok(URLS[1])[..40], "{\"u", "\0\0\0\0", ok(URLS[1]).trim_end()] {
            let (_dir, out, repair, _) = repaired((ok(URLS[0]) + torn).as_bytes(), &URLS);
            let repair = repair.unwrap_or_else(|e| panic!("{torn:?}: {e}"));
            assert_eq!((repair.done, repair.torn, repair.file), (1, Some(2), Repaired::Cut), "{torn:?}");
            assert_eq!(std::fs::read_to_string(&out).expect("out"), ok(URLS[0]), "{torn:?}");
        }
    }

    #[test]
    fn a_last_line_that_is_json_up_to_a_cut_and_has_a_newline_is_torn_too() {
        let text = ok(URLS[0]) + &ok(URLS[1])[..25] + "\n";
        let (_dir, out, repair, _) = repaired(text.as_bytes(), &URLS);
        assert_eq!(repair.expect("repaired").torn, Some(2));
        assert_eq!(std::fs::read_to_string(&out).expect("out"), ok(URLS[0]));
    }

    #[test]
    fn a_file_of_final_lines_is_kept_as_it_is() {
        let text = ok(URLS[0]) + &ok(URLS[1]);
        let (_dir, out, repair, _) = repaired(text.as_bytes(), &URLS);
        assert_eq!(repair.expect("kept").file, Repaired::Kept);
        assert_eq!(std::fs::read_to_string(&out).expect("out"), text);
    }

    #[test]
    fn no_file_is_a_fresh_run() {
        let dir = tempfile::tempdir().expect("temp dir");
        let repair = repair(&dir.path().join("out.jsonl"), |_| Marked::First).expect("fresh");
        assert_eq!((repair.done, repair.file), (0, Repaired::Missing));
        assert_eq!(files_in(dir.path()), 0);
    }

    #[test]
    fn a_garbled_line_before_the_last_refuses_the_resume_naming_it_and_touches_nothing() {
        let cases = [
            (ok(URLS[0]) + "not json\n" + &ok(URLS[1]), 2),
            (ok(URLS[0]) + "{\"url\":\"http://t.test/b\"}\n" + &ok(URLS[1]), 2),
            (ok(URLS[0]) + "\n" + &ok(URLS[1]), 2),
            // A last line that does not start like one of ours is not a torn one.
            (ok(URLS[0]) + "hello", 2),
            (ok(URLS[0]) + "[1, 2]\n", 2),
        ];
        for (text, at) in cases {
            let (dir, out, repair, _) = repaired(text.as_bytes(), &URLS);
            match repair {
                Err(ResumeError::Garbled { line, .. }) => assert_eq!(line, at, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
            assert_eq!(std::fs::read_to_string(&out).expect("out"), text, "untouched");
            assert_eq!(files_in(dir.path()), 1);
        }
    }

    #[test]
    fn a_url_that_is_not_in_the_list_refuses_the_resume_and_touches_nothing() {
        // An interrupted line first, so a rewrite had started when the stranger comes.
        let interrupted = format!("{INTERRUPTED} still in flight at the stop");
        let text = line(URLS[1], Status::Failed, Some(&interrupted)) + &ok(URLS[0]) + &ok("http://other.test/x");
        let (dir, out, repair, _) = repaired(text.as_bytes(), &URLS);
        match repair {
            Err(e @ ResumeError::Unlisted { line: 3, .. }) => {
                assert!(e.to_string().contains("http://other.test/x is not in --urls"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read_to_string(&out).expect("out"), text, "untouched");
        assert_eq!(files_in(dir.path()), 1, "the temporary file is removed");
    }

    #[test]
    fn an_error_names_the_file_and_the_line() {
        let (_dir, out, repair, _) = repaired((ok(URLS[0]) + "oops\n" + &ok(URLS[1])).as_bytes(), &URLS);
        let message = repair.expect_err("refused").to_string();
        assert!(message.starts_with(&format!("--out {} line 2: not a line of collect", out.display())), "{message}");
    }
}
