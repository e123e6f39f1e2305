//! The files a run names (`--urls`, `--proxies`, `--out`, `--report`), checked together
//! before any of them is touched: no two may be the same file (after resolving `..`,
//! symbolic links and, on Unix, hard links), and every output must be writable where it
//! is, without being opened for writing yet.

use std::path::{Path, PathBuf};

/// One file named on the command line.
#[derive(Debug, Clone, Copy)]
pub struct Named<'a> {
    /// The flag that named it, e.g. `--out`.
    pub flag: &'static str,
    /// The path as given.
    pub path: &'a Path,
    /// Written by the run (else only read).
    pub output: bool,
}

impl<'a> Named<'a> {
    /// A file the run reads.
    pub fn input(flag: &'static str, path: &'a Path) -> Self {
        Named { flag, path, output: false }
    }

    /// A file the run writes.
    pub fn output(flag: &'static str, path: &'a Path) -> Self {
        Named { flag, path, output: true }
    }
}

/// What a path resolves to, to compare two of them.
#[derive(Debug, PartialEq, Eq)]
enum Identity {
    /// An existing file: its device and inode, which hard links share.
    #[cfg(unix)]
    Inode(u64, u64),
    /// A file's absolute, resolved path (for a new one: its resolved directory and name).
    Path(PathBuf),
}

/// Refuses the run when two of `files` are one file or an output cannot be written; says
/// which flags and why. Reads metadata only: nothing is created, opened for writing or
/// truncated.
pub fn check(files: &[Named<'_>]) -> Result<(), String> {
    let mut seen: Vec<(Named<'_>, Vec<Identity>)> = Vec::new();
    for file in files {
        if file.output {
            writable(file)?;
        }
        let identities = identify(file.path).map_err(|e| {
            let doing = if file.output { "cannot write" } else { "cannot read" };
            format!("{} {}: {doing} it: {e}", file.flag, file.path.display())
        })?;
        if let Some((earlier, _)) = seen.iter().find(|(_, other)| other.iter().any(|id| identities.contains(id))) {
            return Err(format!(
                "{} and {} name the same file ({}): {}",
                earlier.flag,
                file.flag,
                file.path.display(),
                if file.output || earlier.output {
                    "the run would overwrite what it reads or writes there"
                } else {
                    "give each list its own file"
                }
            ));
        }
        seen.push((*file, identities));
    }
    Ok(())
}

/// Every identity of `path`: its resolved path, and for an existing file its inode.
fn identify(path: &Path) -> std::io::Result<Vec<Identity>> {
    match std::fs::canonicalize(path) {
        Ok(resolved) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                let meta = std::fs::metadata(&resolved)?;
                Ok(vec![Identity::Inode(meta.dev(), meta.ino()), Identity::Path(resolved)])
            }
            #[cfg(not(unix))]
            Ok(vec![Identity::Path(resolved)])
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A file yet to be made: its directory must exist; compare the resolved
            // directory joined with the name.
            let name = path.file_name().ok_or_else(|| std::io::Error::other("names no file"))?;
            let parent = match path.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent,
                _ => Path::new("."),
            };
            let directory = std::fs::canonicalize(parent)
                .map_err(|e| std::io::Error::new(e.kind(), format!("directory {}: {e}", parent.display())))?;
            Ok(vec![Identity::Path(directory.join(name))])
        }
        Err(e) => Err(e),
    }
}

/// Refuses an output that is a directory, or an existing file that cannot be written,
/// without opening it for writing.
fn writable(file: &Named<'_>) -> Result<(), String> {
    let refuse = |why: String| Err(format!("{} {}: {why}", file.flag, file.path.display()));
    match std::fs::metadata(file.path) {
        Ok(meta) if meta.is_dir() => refuse("is a directory".to_owned()),
        Ok(meta) if meta.permissions().readonly() => refuse("is read-only".to_owned()),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => refuse(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_file_under_two_flags_is_refused_however_it_is_spelled() {
        let dir = tempfile::tempdir().expect("temp dir");
        let urls = dir.path().join("urls.txt");
        std::fs::write(&urls, "http://127.0.0.1:9/\n").expect("write");
        let out = dir.path().join("out.jsonl");
        let dotted = dir.path().join(".").join("sub").join("..").join("out.jsonl");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");

        let err = check(&[Named::output("--out", &out), Named::output("--report", &dotted)]).expect_err("same file");
        assert!(err.contains("--out and --report name the same file"), "{err}");
        let err = check(&[Named::input("--urls", &urls), Named::output("--out", &urls)]).expect_err("same file");
        assert!(err.contains("--urls and --out"), "{err}");
        let report = dir.path().join("report.json");
        check(&[Named::input("--urls", &urls), Named::output("--out", &out), Named::output("--report", &report)])
            .expect("distinct files");
    }

    #[cfg(unix)]
    #[test]
    fn a_link_to_an_input_is_the_input() {
        let dir = tempfile::tempdir().expect("temp dir");
        let urls = dir.path().join("urls.txt");
        std::fs::write(&urls, "http://127.0.0.1:9/\n").expect("write");
        let soft = dir.path().join("soft.jsonl");
        std::os::unix::fs::symlink(&urls, &soft).expect("symlink");
        let hard = dir.path().join("hard.jsonl");
        std::fs::hard_link(&urls, &hard).expect("hard link");
        for link in [&soft, &hard] {
            let err = check(&[Named::input("--urls", &urls), Named::output("--out", link)]).expect_err("a link");
            assert!(err.contains("--urls and --out"), "{err}");
        }
    }

    #[test]
    fn an_output_in_a_missing_directory_or_on_a_directory_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("nowhere").join("out.jsonl");
        let err = check(&[Named::output("--out", &missing)]).expect_err("no such directory");
        assert!(err.starts_with("--out "), "{err}");
        let err = check(&[Named::output("--report", dir.path())]).expect_err("a directory");
        assert!(err.contains("is a directory"), "{err}");
    }
}
