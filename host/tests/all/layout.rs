//! The host's layout holds: rooms by concern with no import cycles between them, no source
//! file of host/ or compose/ over 800 lines, no function of the workspace's sources over 120
//! lines (tests and benches excepted).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOMS: [&str; 6] = ["cli", "engine", "authority", "results", "runtime", "format"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `.rs` files under `dir`, but those of tests and benches.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if p.is_dir() {
            if !matches!(name, "tests" | "benches" | "target" | ".git") {
                out.extend(sources(&p));
            }
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
    out
}

#[test]
fn rooms_import_each_other_without_cycles() {
    let src = root().join("host/src");
    let mut deps: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for room in ROOMS {
        let files = sources(&src.join(room));
        assert!(!files.is_empty(), "no room {room}");
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for other in ROOMS.iter().filter(|o| **o != room) {
                if text.contains(&format!("crate::{other}")) {
                    deps.entry(room).or_default().insert(other);
                }
            }
        }
    }
    // Depth-first: a room on the current path reached again is a cycle.
    fn visit<'a>(r: &'a str, deps: &BTreeMap<&'a str, BTreeSet<&'a str>>, path: &mut Vec<&'a str>) {
        assert!(!path.contains(&r), "an import cycle: {path:?} -> {r}");
        path.push(r);
        for d in deps.get(r).into_iter().flatten() {
            visit(d, deps, path);
        }
        path.pop();
    }
    for room in ROOMS {
        visit(room, &deps, &mut Vec::new());
    }
}

#[test]
fn files_fit_in_a_head() {
    for dir in ["host/src", "compose/src"] {
        for f in sources(&root().join(dir)) {
            let lines = std::fs::read_to_string(&f).unwrap().lines().count();
            assert!(lines <= 800, "{}: {lines} lines", f.display());
        }
    }
}

/// A function's length: from its `fn` line to the closing brace at its indentation.
fn long_functions(text: &str) -> Vec<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if l.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        let t = l.trim_start();
        let head = [
            "fn ",
            "pub fn ",
            "pub(crate) fn ",
            "pub(super) fn ",
            "async fn ",
        ]
        .iter()
        .chain(&[
            "pub async fn ",
            "pub(super) async fn ",
            "pub(crate) async fn ",
        ])
        .chain(&["const fn ", "pub const fn "])
        .any(|p| t.starts_with(p));
        if !head {
            continue;
        }
        let indent = l.len() - t.len();
        let close = " ".repeat(indent) + "}";
        if let Some(j) = lines[i + 1..]
            .iter()
            .position(|x| x.starts_with(&close) && x.len() - x.trim_start().len() == indent)
        {
            let n = j + 2;
            if n > 120 {
                out.push((i + 1, n));
            }
        }
    }
    out
}

#[test]
fn functions_fit_in_a_head() {
    let root = root();
    let mut long = Vec::new();
    for dir in ["host", "compose", "crates", "components", "bench"] {
        for f in sources(&root.join(dir)) {
            let text = std::fs::read_to_string(&f).unwrap();
            for (line, n) in long_functions(&text) {
                long.push(format!("{}:{line}: {n} lines", f.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over 120 lines:\n{}",
        long.join("\n")
    );
    // The measure itself: a 121-line function is found, a 120-line one is not.
    let body = |n: usize| format!("fn f() {{\n{}}}\n", "    x();\n".repeat(n - 2));
    assert_eq!(long_functions(&body(121)), [(1, 121)]);
    assert!(long_functions(&body(120)).is_empty());
}
