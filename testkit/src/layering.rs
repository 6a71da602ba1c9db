//! The import graph of a crate's top-level modules, read from its sources as
//! text, and a cycle search over it: the layering tests of `engine/` and
//! `sinks/` (issue 16: no import circle inside either). A module is a
//! top-level file or folder below `src/`; an import is any `crate::<module>`
//! path in code, or `crate::<Name>` for a name `lib.rs` re-exports from a
//! module (comments and a file's trailing `#[cfg(test)] mod tests` skipped:
//! unit tests may build the whole crate; `lib.rs`, which only declares and
//! re-exports, is not a module here).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// module -> the other modules it imports.
pub type Graph = BTreeMap<String, BTreeSet<String>>;

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

/// Names `lib.rs` re-exports (`pub use module::{A, b::C as D};`) -> module.
fn reexports(lib: &str) -> BTreeMap<String, String> {
    let code: String = lib
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ");
    let mut out = BTreeMap::new();
    for stmt in code.split(';') {
        let Some(path) = stmt.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, rest)) = path.split_once("::") else {
            continue;
        };
        let items = rest.trim().trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',') {
            let name = item.rsplit("::").next().unwrap_or("");
            let name = name.rsplit(" as ").next().unwrap_or("").trim();
            if !name.is_empty() {
                out.insert(name.to_string(), module.trim().to_string());
            }
        }
    }
    out
}

/// The graph of the top-level modules below `src`.
pub fn module_graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap_or_default();
    let names = reexports(&lib);
    let module_of = |name: &str| names.get(name).cloned().unwrap_or_else(|| name.to_string());
    let mut g = Graph::new();
    for f in files {
        let rel = f.strip_prefix(src).expect("below src");
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
        let mut lines = text.lines().peekable();
        while let Some(line) = lines.next() {
            if line.trim() == "#[cfg(test)]"
                && lines.peek().is_some_and(|l| l.trim() == "mod tests {")
            {
                break;
            }
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
                        let m = module_of(item.trim().split("::").next().unwrap_or(""));
                        if !m.is_empty() && m != module {
                            deps.insert(m);
                        }
                    }
                } else if !name.is_empty() {
                    let m = module_of(&name);
                    if m != module {
                        deps.insert(m);
                    }
                }
            }
        }
    }
    g
}

/// A cycle through `node`, if any (depth-first).
fn cycle_from(
    g: &Graph,
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
        if let Some(c) = cycle_from(g, d, path, done) {
            return Some(c);
        }
    }
    path.pop();
    done.insert(node.to_string());
    None
}

/// The first import cycle in `g` (`a -> b -> a`), if any.
pub fn find_cycle(g: &Graph) -> Option<Vec<String>> {
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|m| cycle_from(g, m, &mut Vec::new(), &mut done))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &str)]) -> Graph {
        let mut g = Graph::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    }

    #[test]
    fn finds_a_cycle_and_not_a_diamond() {
        let diamond = graph(&[("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]);
        assert_eq!(find_cycle(&diamond), None);
        let circle = graph(&[("a", "b"), ("b", "c"), ("c", "a")]);
        let c = find_cycle(&circle).expect("cycle");
        assert_eq!(c.first(), c.last());
        assert_eq!(c.len(), 4, "{c:?}");
    }

    #[test]
    fn reads_use_lines_and_skips_comments() {
        let dir = std::env::temp_dir().join(format!("vigil-layering-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("b")).unwrap();
        std::fs::write(
            dir.join("lib.rs"),
            "pub mod a; use crate::a::X;\npub use f::{G, h::I as J};\npub use k::L;",
        )
        .unwrap();
        std::fs::write(
            dir.join("a.rs"),
            "use crate::{b::Y, c};\n// use crate::d;\nfn f() { crate::e::g() }\n\
             type T = crate::J; type U = crate::L;\n\
             #[cfg(test)]\nmod tests {\n    use crate::m::N;\n}",
        )
        .unwrap();
        std::fs::write(
            dir.join("b").join("mod.rs"),
            "use crate::b::x; use super::a;",
        )
        .unwrap();
        let g = module_graph(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(!g.contains_key("lib"));
        let a: Vec<_> = g["a"].iter().map(String::as_str).collect();
        assert_eq!(a, ["b", "c", "e", "f", "k"]);
        assert!(g["b"].is_empty(), "{g:?}");
    }
}
