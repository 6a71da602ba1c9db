//! The layering of `sinks/src` (issue 16): no import cycle between its
//! top-level modules, and no sink module importing another sink. Reads the
//! sources as text: a module is a top-level file or folder below `src/`, an
//! import is any `crate::<module>` path in code (comments skipped; `lib.rs`,
//! which only declares and re-exports, is not a module here).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const SINKS: [&str; 6] = ["stdout", "file", "syslog", "webhook", "email", "nats"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// module -> modules it imports.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).expect("below src");
        let first = rel.components().next().expect("component");
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("read");
        let deps = g.entry(module.clone()).or_default();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or("");
            let mut rest = code;
            while let Some(i) = rest.find("crate::") {
                rest = &rest[i + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                // `use crate::{a, b}` lists several.
                if name.is_empty() && rest.starts_with('{') {
                    let list = rest[1..].split('}').next().unwrap_or("");
                    for item in list.split(',') {
                        let m = item.trim().split("::").next().unwrap_or("").to_string();
                        if !m.is_empty() && m != module {
                            deps.insert(m);
                        }
                    }
                } else if !name.is_empty() && name != module {
                    deps.insert(name);
                }
            }
        }
    }
    g
}

/// A cycle through `start`, if any (depth-first).
fn cycle(
    g: &BTreeMap<String, BTreeSet<String>>,
    node: &str,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(i) = path.iter().position(|p| p == node) {
        let mut c = path[i..].to_vec();
        c.push(node.to_string());
        return Some(c);
    }
    if done.contains(node) {
        return None;
    }
    path.push(node.to_string());
    for d in g.get(node).into_iter().flatten() {
        if let Some(c) = cycle(g, d, path, done) {
            return Some(c);
        }
    }
    path.pop();
    done.insert(node.to_string());
    None
}

#[test]
fn no_import_cycle_between_modules() {
    let g = graph();
    assert!(
        g.contains_key("delivery") && g.contains_key("router"),
        "{g:?}"
    );
    let mut done = BTreeSet::new();
    for m in g.keys() {
        if let Some(c) = cycle(&g, m, &mut Vec::new(), &mut done) {
            panic!("import cycle in sinks/src: {}", c.join(" -> "));
        }
    }
}

#[test]
fn no_sink_imports_another_and_delivery_knows_no_sink() {
    let g = graph();
    for s in SINKS {
        let deps = &g[s];
        for other in SINKS {
            assert!(!deps.contains(other), "{s} imports {other}: {deps:?}");
        }
        assert!(
            !deps.contains("router") && !deps.contains("config"),
            "{s}: {deps:?}"
        );
    }
    for shared in ["delivery", "encode", "tls", "de", "error"] {
        let deps = &g[shared];
        for s in SINKS {
            assert!(!deps.contains(s), "{shared} imports the {s} sink: {deps:?}");
        }
    }
}
