//! How the workspace's crates are layered, checked from their sources.
//!
//! No crate has an import circle: at every level of a crate's module tree, the sibling
//! modules import one another one way only (`client::service` may use `client::exchange`,
//! or the reverse, never both, through any chain). A crate whose `lib.rs` has a "Layers"
//! section obeys it: each top-level module imports only from the modules named before it,
//! so the documented layering and the checked one are the same text.
//!
//! An import is any path through `crate::`, `super::` or `self::` outside comments and unit
//! tests, including every leaf of a `use` tree (`use crate::{a, b::{c, d}}`). A path names the
//! deepest module it reaches; an import between a module and its own ancestor or descendant is
//! how a tree is built and is not a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

type ModulePath = Vec<String>;

/// One library source file and the module it defines.
struct SourceFile {
    module: ModulePath,
    shown: String,
    code: String,
}

/// A sibling-level edge: in the scope `parent`, module `from` imports module `to`, as `file` shows.
type Edges = BTreeMap<ModulePath, BTreeMap<String, BTreeMap<String, String>>>;

#[test]
fn no_crate_of_the_workspace_has_an_import_circle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources = crate_sources(root);
    assert!(sources.len() >= 8, "the workspace's crates are found: {sources:?}");
    let mut circles = Vec::new();
    for src in &sources {
        let files = library_files(src);
        let name = src.parent().and_then(Path::file_name).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        circles.extend(import_circles(&files).into_iter().map(|circle| format!("{name}: {circle}")));
    }
    assert!(circles.is_empty(), "import circles:\n{}", circles.join("\n"));
}

#[test]
fn crates_with_a_layers_section_import_only_from_the_layers_before() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = Vec::new();
    let mut wrong = Vec::new();
    for src in crate_sources(root) {
        let lib = fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
        let Some(order) = documented_order(&lib) else { continue };
        checked.push(src.display().to_string());
        wrong.extend(against_layers(&library_files(&src), &order));
    }
    assert!(checked.len() >= 2, "proxypool and collect state their layers: {checked:?}");
    assert!(wrong.is_empty(), "imports against the documented layers:\n{}", wrong.join("\n"));
}

#[test]
fn the_layers_check_refuses_an_import_of_a_later_layer_and_an_unnamed_module() {
    let lib = "//! ## Layers\n//!\n//! 1. `clock`, [`proxy`];\n//! 2. [`pool`].\n\n//! ## Feature flags\n//! `redis`";
    let order = documented_order(lib).expect("a Layers section");
    assert_eq!(order, ["clock", "proxy", "pool"]);
    let file = |module: &str, code: &str| SourceFile {
        module: vec![module.to_owned()],
        shown: format!("{module}.rs"),
        code: code_only(code),
    };
    let files = [file("proxy", "use crate::clock::now;"), file("pool", "use crate::proxy::Proxy;")];
    assert!(against_layers(&files, &order).is_empty());
    let files =
        [file("proxy", "use crate::pool::ProxyPool;"), file("pool", ""), file("stats", "use crate::clock::now;")];
    assert_eq!(
        against_layers(&files, &order),
        ["proxy.rs imports pool, a later layer", "stats is not in the Layers section of lib.rs"]
    );
}

#[test]
fn the_check_finds_a_circle_through_nested_modules_and_use_trees() {
    let files = [
        ("", "mod pool;\nmod client;\n"),
        ("pool", "use crate::{health, snapshot::{Slot, self}};\n"),
        ("health", "// crate::client in a comment is no import\n"),
        ("snapshot", "fn f() { crate::client::service::call(); }\n"),
        ("client", "mod service;\nmod exchange;\n"),
        ("client::service", "use super::exchange::Exchange;\n"),
        ("client::exchange", "use crate::pool::ProxyPool;\n#[cfg(test)]\nmod tests { use super::super::service; }\n"),
    ];
    let files: Vec<SourceFile> = files
        .iter()
        .map(|(module, code)| SourceFile {
            module: module.split("::").filter(|s| !s.is_empty()).map(str::to_owned).collect(),
            shown: format!("{module}.rs"),
            code: code_only(code),
        })
        .collect();
    let circles = import_circles(&files);
    // snapshot -> client -> pool -> snapshot at the top; within client, exchange does not
    // import service (that import is in its unit tests), so client has no circle.
    assert_eq!(circles.len(), 1, "{circles:?}");
    assert!(circles[0].starts_with("client -> pool -> snapshot -> client"), "{circles:?}");

    assert!(import_circles(&files[..6]).is_empty(), "without exchange's import of pool there is no circle");
}

#[test]
fn use_trees_expand_to_every_leaf() {
    let paths = imported_paths("use crate::{a, b::{c, self}, d as e};\nlet x = super::f::g(1);\nuse std::io;");
    let shown: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(shown, ["crate::a", "crate::b::c", "crate::b", "crate::d", "super::f::g"]);
}

/// The `src` folder of the root package and of every crate under `crates/`.
fn crate_sources(root: &Path) -> Vec<PathBuf> {
    let mut sources = vec![root.join("src")];
    for entry in fs::read_dir(root.join("crates")).expect("crates/ is readable") {
        let src = entry.expect("a directory entry").path().join("src");
        if src.is_dir() {
            sources.push(src);
        }
    }
    sources.sort();
    sources
}

/// The modules in the order the "Layers" section of a `lib.rs` names them (every
/// backticked lower-case name, once), or `None` without such a section.
fn documented_order(lib: &str) -> Option<Vec<String>> {
    let section = lib.split("//! ## Layers").nth(1)?;
    let section = section.split("//! ## ").next().unwrap_or(section);
    let mut order: Vec<String> = Vec::new();
    for piece in section.split('`').skip(1).step_by(2) {
        let name = piece.trim_start_matches('[').trim_end_matches(']');
        if !name.is_empty()
            && name.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            && !order.iter().any(|m| m == name)
        {
            order.push(name.to_owned());
        }
    }
    Some(order)
}

/// Every top-level import of a module named later than the importer, and every module the
/// order does not name.
fn against_layers(files: &[SourceFile], order: &[String]) -> Vec<String> {
    let rank: BTreeMap<&str, usize> = order.iter().enumerate().map(|(i, m)| (m.as_str(), i)).collect();
    let modules: BTreeSet<&ModulePath> = files.iter().map(|f| &f.module).collect();
    let mut wrong = Vec::new();
    for file in files {
        let Some(own) = file.module.first() else { continue };
        let Some(&own_rank) = rank.get(own.as_str()) else {
            let complaint = format!("{own} is not in the Layers section of lib.rs");
            if !wrong.contains(&complaint) {
                wrong.push(complaint);
            }
            continue;
        };
        for path in imported_paths(&file.code) {
            let Some(target) = resolve(&file.module, &path, &modules) else { continue };
            let Some(theirs) = target.first().filter(|t| *t != own) else { continue };
            if rank.get(theirs.as_str()).is_none_or(|&r| r > own_rank) {
                wrong.push(format!("{} imports {theirs}, a later layer", file.shown));
            }
        }
    }
    wrong.dedup();
    wrong
}

/// The library's files under `src` (binary roots, `main.rs` and `src/bin/`, are other crates).
fn library_files(src: &Path) -> Vec<SourceFile> {
    let mut paths = Vec::new();
    rust_files(src, &mut paths);
    paths
        .into_iter()
        .filter_map(|path| {
            let relative = path.strip_prefix(src).expect("under src").to_path_buf();
            let mut module: ModulePath = relative
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(module.first().map(String::as_str), Some("main" | "bin")) {
                return None;
            }
            if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                module.pop();
            }
            let source = fs::read_to_string(&path).expect("a readable source file");
            Some(SourceFile { module, shown: relative.display().to_string(), code: code_only(&source) })
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("a readable directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without its unit tests (a trailing `#[cfg(test)] mod tests`) and comment lines.
fn code_only(source: &str) -> String {
    let code = source.split("#[cfg(test)]\nmod tests").next().unwrap_or(source);
    code.lines().filter(|line| !line.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// Every circle among siblings, each shown as `a -> b -> ... -> a (file: ..., ...)`.
fn import_circles(files: &[SourceFile]) -> Vec<String> {
    let modules: BTreeSet<&ModulePath> = files.iter().map(|f| &f.module).collect();
    let mut edges = Edges::new();
    for file in files {
        for path in imported_paths(&file.code) {
            let Some(target) = resolve(&file.module, &path, &modules) else { continue };
            let common = file.module.iter().zip(&target).take_while(|(a, b)| a == b).count();
            // An ancestor or a descendant: part of the tree, not a sibling import.
            if common == file.module.len() || common == target.len() {
                continue;
            }
            let scope = file.module[..common].to_vec();
            let (from, to) = (file.module[common].clone(), target[common].clone());
            edges.entry(scope).or_default().entry(from).or_default().entry(to).or_insert_with(|| file.shown.clone());
        }
    }
    let mut circles = Vec::new();
    for (scope, graph) in &edges {
        for component in strongly_connected(graph) {
            let prefix = if scope.is_empty() { String::new() } else { format!("{}::", scope.join("::")) };
            let mut cycle = vec![component[0].clone()];
            // Walk inside the component back to its start, to show one concrete circle.
            let inside: BTreeSet<&String> = component.iter().collect();
            let mut seen = BTreeSet::new();
            while let Some(next) = graph
                .get(cycle.last().expect("non-empty"))
                .and_then(|out| out.keys().find(|m| inside.contains(m) && !seen.contains(*m)))
            {
                seen.insert(next.clone());
                cycle.push(next.clone());
                if *next == component[0] {
                    break;
                }
            }
            let via: Vec<&str> = cycle.windows(2).filter_map(|w| graph[&w[0]].get(&w[1]).map(String::as_str)).collect();
            let names: Vec<String> = cycle.iter().map(|m| format!("{prefix}{m}")).collect();
            circles.push(format!("{} (in {})", names.join(" -> "), via.join(", ")));
        }
    }
    circles
}

/// Tarjan's strongly connected components of more than one module.
fn strongly_connected(graph: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<Vec<String>> {
    struct Walk<'g> {
        graph: &'g BTreeMap<String, BTreeMap<String, String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'g>(walk: &mut Walk<'g>, node: &'g str) {
        let n = walk.index.len();
        walk.index.insert(node, n);
        walk.low.insert(node, n);
        walk.stack.push(node);
        for next in walk.graph.get(node).into_iter().flat_map(BTreeMap::keys) {
            if !walk.index.contains_key(next.as_str()) {
                visit(walk, next);
                let low = walk.low[node].min(walk.low[next.as_str()]);
                walk.low.insert(node, low);
            } else if walk.stack.contains(&next.as_str()) {
                let low = walk.low[node].min(walk.index[next.as_str()]);
                walk.low.insert(node, low);
            }
        }
        if walk.low[node] == walk.index[node] {
            let at = walk.stack.iter().rposition(|m| *m == node).expect("on the stack");
            let component: Vec<String> = walk.stack.drain(at..).map(str::to_owned).collect();
            if component.len() > 1 {
                walk.found.push(component);
            }
        }
    }
    let mut walk = Walk { graph, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), found: Vec::new() };
    for node in graph.keys() {
        if !walk.index.contains_key(node.as_str()) {
            visit(&mut walk, node);
        }
    }
    walk.found
}

/// The module an imported path reaches: the deepest known module along it.
fn resolve(module: &ModulePath, path: &[String], modules: &BTreeSet<&ModulePath>) -> Option<ModulePath> {
    let (mut base, mut rest) = match path.first().map(String::as_str) {
        Some("crate") => (Vec::new(), &path[1..]),
        Some("self") => (module.clone(), &path[1..]),
        _ => (module.clone(), path),
    };
    while rest.first().is_some_and(|s| s == "super") {
        base.pop()?;
        rest = &rest[1..];
    }
    let mut reached = None;
    for segment in rest {
        base.push(segment.clone());
        if modules.contains(&base) {
            reached = Some(base.clone());
        }
    }
    reached
}

/// Every path that starts with `crate::`, `super::` or `self::`, with `use` trees expanded to
/// their leaves (`self` in a tree names the tree's own prefix; `as` renames are dropped).
fn imported_paths(code: &str) -> Vec<Vec<String>> {
    let bytes = code.as_bytes();
    let mut paths = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let starts_word = at == 0 || !is_ident(bytes[at - 1]) && bytes[at - 1] != b':';
        let keyword = ["crate::", "super::", "self::"].into_iter().find(|k| bytes[at..].starts_with(k.as_bytes()));
        match keyword {
            Some(_) if starts_word => {
                let (tree, end) = use_tree(code, at);
                paths.extend(tree);
                at = end.max(at + 1);
            }
            _ => at += 1,
        }
    }
    paths
}

fn is_ident(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// The leaves of the use tree starting at `at`, and where it ends.
fn use_tree(code: &str, mut at: usize) -> (Vec<Vec<String>>, usize) {
    let bytes = code.as_bytes();
    let skip_space = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let mut prefix: Vec<String> = Vec::new();
    loop {
        at = skip_space(at);
        let start = at;
        while at < bytes.len() && is_ident(bytes[at]) {
            at += 1;
        }
        if at > start {
            prefix.push(code[start..at].to_owned());
        }
        at = skip_space(at);
        if bytes[at..].starts_with(b"::") {
            at += 2;
            continue;
        }
        break;
    }
    at = skip_space(at);
    if at < bytes.len() && bytes[at] == b'{' {
        at += 1;
        let mut leaves = Vec::new();
        loop {
            at = skip_space(at);
            match bytes.get(at) {
                None => break,
                Some(b'}') => {
                    at += 1;
                    break;
                }
                Some(b',') => at += 1,
                Some(_) => {
                    let (inner, end) = use_tree(code, at);
                    for leaf in inner {
                        let mut path = prefix.clone();
                        path.extend(leaf.into_iter().filter(|s| s != "self"));
                        leaves.push(path);
                    }
                    // Past a rename (`as name`) or a glob to the next item.
                    at = end;
                    while at < bytes.len() && !matches!(bytes[at], b',' | b'}') {
                        at += 1;
                    }
                }
            }
        }
        return (leaves, at);
    }
    let leaves = if prefix.is_empty() { Vec::new() } else { vec![prefix] };
    (leaves, at)
}
