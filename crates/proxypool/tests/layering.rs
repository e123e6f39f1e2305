//! The crate's modules import one way: each only from the modules its `lib.rs` lists
//! before it. The order is read from the "Layers" section of `src/lib.rs`, so the
//! documented layering and the checked one are the same text.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The modules in the order the "Layers" section of `src/lib.rs` names them.
fn documented_order(lib: &str) -> Vec<String> {
    let section = lib.split("//! ## Layers").nth(1).expect("lib.rs has a Layers section");
    let section = section.split("//! ## ").next().unwrap_or(section);
    let mut order = Vec::new();
    for piece in section.split('`').skip(1).step_by(2) {
        let name = piece.trim_start_matches('[').trim_end_matches(']');
        if name.chars().all(|c| c.is_ascii_lowercase() || c == '_') && !order.iter().any(|m| m == name) {
            order.push(name.to_owned());
        }
    }
    order
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules that `source` names through `crate::`, outside comments and
/// unit tests.
fn imports(source: &str) -> Vec<String> {
    let code = source.split("#[cfg(test)]\nmod tests").next().unwrap_or(source);
    let mut found = Vec::new();
    for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
        for piece in line.split("crate::").skip(1) {
            let name: String = piece.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                found.push(name);
            }
        }
        // `use crate::{a, b::c}`: every name in the braces is a module or a re-export.
        if let Some(braces) = line.split("crate::{").nth(1) {
            for item in braces.split([',', '}']) {
                let name: String = item.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    found.push(name);
                }
            }
        }
    }
    found
}

#[test]
fn every_module_imports_only_from_the_layers_before_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    let order = documented_order(&lib);
    let rank: BTreeMap<&str, usize> = order.iter().enumerate().map(|(i, m)| (m.as_str(), i)).collect();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src");
        let module = relative.components().next().expect("a path").as_os_str().to_string_lossy();
        let module = module.trim_end_matches(".rs");
        if module == "lib" {
            continue;
        }
        let Some(&own) = rank.get(module) else {
            wrong.push(format!("{module} is not in the Layers section of lib.rs"));
            continue;
        };
        let source = fs::read_to_string(file).expect("a source file");
        for imported in imports(&source) {
            // Re-exports at the crate root (crate::ProxyPool) are checked where they live.
            if imported == module || imported.starts_with(char::is_uppercase) {
                continue;
            }
            match rank.get(imported.as_str()) {
                Some(&theirs) if theirs < own => {}
                Some(_) => wrong.push(format!("{} imports {imported}, a later layer", relative.display())),
                None => wrong.push(format!("{} imports {imported}, which the layers do not name", relative.display())),
            }
        }
    }
    assert!(order.len() >= 15, "the Layers section names the modules: {order:?}");
    assert!(wrong.is_empty(), "imports against the layering:\n{}", wrong.join("\n"));
}

#[test]
fn the_checker_sees_an_import_in_every_form() {
    let source = "use crate::pool::ProxyPool;\nuse crate::{health, lease::Lease};\n// crate::client in a comment\nfn f() { crate::stats::x(); }\n#[cfg(test)]\nmod tests { use crate::shared; }";
    assert_eq!(imports(source), ["pool", "health", "lease", "stats"]);
}
