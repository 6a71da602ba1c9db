//! Rule files: reading files and directories, YAML items (`list`, `macro`,
//! `rule`) with their file positions, and the definition semantics.
//!
//! # Loading
//! A directory loads its `*.yaml` and `*.yml` files in name order,
//! non-recursively, skipping names that start with `.`; several paths load in
//! the order given. Later items override earlier ones.
//!
//! # Items and keys
//! - `list: NAME`, `items: [...]` (strings or ints; an item naming an earlier
//!   list is replaced by that list's items, merged without repeats; sizes
//!   are capped by [`crate::ruleset::Limits`]), `append`.
//! - `macro: NAME`, `condition: EXPR`, `append`.
//! - `rule: NAME`, `condition`, `events: [exec, ...]` (required), `output`,
//!   `priority`, `desc`, `enabled` (default true), `tags`, `exceptions`,
//!   `threshold`, `append`.
//!
//! Unknown keys are errors; so is a key given twice (reported at the second).
//! `events` must be a list.
//!
//! # Redefinition and `append: true`
//! - list: `append` adds the items; a plain redefinition replaces the list.
//! - macro: `append` makes the condition `(old) || (new)`; a plain
//!   redefinition replaces it.
//! - rule: `append` makes the condition `(old) && (new)`, appends
//!   `exceptions` and `tags`, and replaces any other key it gives (priority,
//!   output, desc, enabled, events, threshold).
//! - rule without `condition` and without `append`: an **override** of an
//!   existing rule; it may set only `enabled`, `priority`, `output`, `desc`
//!   and `tags` (replacing them), e.g. `- {rule: X, enabled: false}` in
//!   `rules.d`.
//! - A second full definition (with `condition`) of a rule without `append`
//!   is an error, as is appending to or overriding something not defined
//!   earlier.
//!
//! # Exceptions
//! `exceptions: [{name, condition}]`: the rule fires iff
//! `condition && !(exc1 || exc2 || ...)`. Falco's tuple form
//! `{name, fields: [f1, f2], comps: [==, in], values: [[v1, v2], ...]}` is
//! accepted: each values row becomes `(f1 == v1 && f2 == v2)` (default comp
//! `==`, or `in` for a list value; comps also `!=`, `<`, `<=`, `>`, `>=`,
//! `startswith`, `endswith`, `contains`, `glob`, `regex`).
//!
//! # Threshold
//! `threshold: {count: N, window: 10s, by: [net.daddr]}`: the rule raises an
//! alert when `N` matching events with the same `by` key happen within
//! `window` (a duration such as `500ms`, `10s`, `5m`, `1h`, or seconds as an
//! int), then at most once per window while matches continue. Alerts carry
//! `vigil.count`: `N` for the first alert, then the matches since the previous
//! alert. State is bounded: at most [`MAX_THRESHOLD_KEYS`] keys per rule (the
//! least recently seen key is evicted) and `N` timestamps per key.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use crate::alert::Priority;
use crate::error::{Diag, LoadErrors, Location};
use crate::event::EventType;
use crate::fields::{self, Field};
use crate::limits::Limits;
pub use crate::limits::{MAX_LIST_ITEMS, MAX_LIST_WORK};

/// Most keys a threshold rule tracks at once.
pub const MAX_THRESHOLD_KEYS: usize = 10_000;
/// Largest `threshold.count`.
pub const MAX_THRESHOLD_COUNT: u64 = 100_000;

/// One rule file's text.
#[derive(Clone, Debug)]
pub struct Source {
    /// Display name (the path as given, or the in-memory name).
    pub name: String,
    pub path: Option<PathBuf>,
    pub text: String,
    /// The dialect its rules path declared (`falco:PATH`); None: detected.
    pub dialect: Option<crate::falco::Dialect>,
}

/// Read rule files/directories in order.
pub fn read_paths<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<Source>, LoadErrors> {
    let mut out = Vec::new();
    let mut errs = Vec::new();
    let loc = |p: &Path| Location {
        file: p.display().to_string(),
        line: 0,
        col: 0,
    };
    for p in paths {
        let (dialect, p) = crate::falco::split_dialect(p.as_ref());
        let meta = match std::fs::metadata(p) {
            Ok(m) => m,
            Err(e) => {
                errs.push(crate::error::LoadError {
                    loc: loc(p),
                    item: None,
                    msg: format!("cannot read: {e}"),
                });
                continue;
            }
        };
        let files = if meta.is_dir() {
            match list_dir(p) {
                Ok(f) => f,
                Err(e) => {
                    errs.push(crate::error::LoadError {
                        loc: loc(p),
                        item: None,
                        msg: format!("cannot list directory: {e}"),
                    });
                    continue;
                }
            }
        } else {
            vec![p.to_path_buf()]
        };
        for f in files {
            match std::fs::read_to_string(&f) {
                Ok(text) => out.push(Source {
                    name: f.display().to_string(),
                    path: Some(f),
                    text,
                    dialect,
                }),
                Err(e) => errs.push(crate::error::LoadError {
                    loc: loc(&f),
                    item: None,
                    msg: format!("cannot read: {e}"),
                }),
            }
        }
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(LoadErrors(errs))
    }
}

/// The `*.yaml`/`*.yml` files of a directory, name order, no dot files.
/// An entry that cannot be followed (a symlink loop, no permission) is skipped
/// with a logged warning; a dangling symlink (e.g. mid ConfigMap swap) silently.
pub fn list_dir(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    list_dir_report(dir, &mut |path, e| {
        tracing::warn!(path = %path.display(), "rule file skipped: {e}");
    })
}

/// [`list_dir`] that hands each skipped entry (other than a dangling symlink)
/// and its error to `skipped` instead of logging it.
pub fn list_dir_report(
    dir: &Path,
    skipped: &mut dyn FnMut(&Path, &std::io::Error),
) -> std::io::Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !is_rule_file_name(name) {
            continue;
        }
        let path = e.path();
        // follow symlinks; skip directories named *.yaml
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => v.push(path),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => skipped(&path, &e),
        }
    }
    v.sort();
    Ok(v)
}

/// `a -> b -> c`, or `a -> b -> c -> d -> ... -> x -> y -> z` when long.
pub(crate) fn abbreviate_chain(names: &[String]) -> String {
    if names.len() <= 8 {
        names.join(" -> ")
    } else {
        format!(
            "{} -> ... -> {}",
            names[..4].join(" -> "),
            names[names.len() - 3..].join(" -> ")
        )
    }
}

/// Whether a directory entry named `name` is loaded as a rule file:
/// `*.yaml` or `*.yml`, not starting with `.`.
pub fn is_rule_file_name(name: &str) -> bool {
    !name.starts_with('.') && (name.ends_with(".yaml") || name.ends_with(".yml"))
}

// ------------------------------------------------------------ positions

/// Line bookkeeping of one source, for error positions.
#[derive(Clone, Debug)]
pub(crate) struct SrcLines {
    pub name: String,
    pub lines: Vec<String>,
}

impl SrcLines {
    pub fn new(name: &str, text: &str) -> SrcLines {
        SrcLines {
            name: name.to_string(),
            lines: text.lines().map(str::to_string).collect(),
        }
    }

    pub fn loc(&self, line: usize, col: usize) -> Location {
        Location {
            file: self.name.clone(),
            line,
            col,
        }
    }

    /// 1-based start lines of the top-level sequence items.
    pub fn item_lines(&self) -> Vec<usize> {
        let mut indent = None;
        let mut out = Vec::new();
        for (i, l) in self.lines.iter().enumerate() {
            let t = l.trim_start();
            if t.is_empty() || t.starts_with('#') || t.starts_with("---") {
                continue;
            }
            let ind = l.len() - t.len();
            if t == "-" || t.starts_with("- ") {
                match indent {
                    None => {
                        indent = Some(ind);
                        out.push(i + 1);
                    }
                    Some(x) if x == ind => out.push(i + 1),
                    _ => {}
                }
            }
        }
        out
    }

    /// Location of `key:` within lines `[from, to)` (1-based), at the first match.
    pub fn key_loc(&self, from: usize, to: usize, key: &str) -> Option<Location> {
        for ln in from..to.min(self.lines.len() + 1) {
            let l = &self.lines[ln - 1];
            let t = l.trim_start();
            let t2 = t.strip_prefix("- ").map(str::trim_start).unwrap_or(t);
            let t2 = t2.strip_prefix('{').map(str::trim_start).unwrap_or(t2);
            if let Some(rest) = t2.strip_prefix(key) {
                if rest.trim_start().starts_with(':') {
                    let col = l.len() - t2.len() + 1;
                    return Some(self.loc(ln, col));
                }
            }
            // flow mappings: `{rule: x, condition: ...}` on one line
            if let Some(pos) = l.find(&format!(", {key}:")) {
                return Some(self.loc(ln, pos + 3));
            }
        }
        None
    }

    /// Where `key` is given the second time in the block mapping whose
    /// first key is at `line`:`col` (1-based), and the line of the first
    /// time. Also finds repeats inside a one-line flow mapping.
    pub fn duplicate_key(&self, line: usize, col: usize, key: &str) -> Option<(Location, usize)> {
        let indent = col.checked_sub(1)?;
        let is_key_at = |l: &str, at: usize| {
            let rest = l.get(at..).unwrap_or("");
            let rest = rest
                .strip_prefix(key)
                .or_else(|| rest.strip_prefix(&format!("\"{key}\"")))
                .or_else(|| rest.strip_prefix(&format!("'{key}'")));
            rest.is_some_and(|r| r.trim_start().starts_with(':'))
        };
        let mut first = None;
        for ln in line..=self.lines.len() {
            let l = self.lines.get(ln.checked_sub(1)?)?;
            let t = l.trim_start();
            let ind = l.len() - t.len();
            let ended = ind < indent || (ind == indent && t.starts_with("- "));
            if ln > line && !(t.is_empty() || t.starts_with('#')) && ended {
                break; // the mapping ended
            }
            let mut hits: Vec<usize> = Vec::new();
            if (ln == line || ind == indent) && is_key_at(l, indent) {
                hits.push(indent);
            }
            // flow mappings: `{a: 1, a: 2}` / `- {rule: x, a: 1}`
            for (p, _) in l.match_indices(", ") {
                let at = p + 2 + (l[p + 2..].len() - l[p + 2..].trim_start().len());
                if at > indent && is_key_at(l, at) {
                    hits.push(at);
                }
            }
            if ln == line {
                if let Some(p) = l.find('{') {
                    let at = p + 1 + (l[p + 1..].len() - l[p + 1..].trim_start().len());
                    if is_key_at(l, at) && !hits.contains(&at) {
                        hits.insert(0, at);
                    }
                }
            }
            for at in hits {
                match first {
                    None => first = Some(ln),
                    Some(f) => return Some((self.loc(ln, at + 1), f)),
                }
            }
        }
        None
    }

    /// Find `needle` at or after `base` (at most 60 lines on); `base` if absent.
    pub fn find_from(&self, base: &Location, needle: &str) -> Location {
        if needle.is_empty() || base.line == 0 {
            return base.clone();
        }
        let start = base.line;
        for ln in start..(start + 60).min(self.lines.len() + 1) {
            let l = &self.lines[ln - 1];
            let from = if ln == start {
                base.col.saturating_sub(1).min(l.len())
            } else {
                0
            };
            if let Some(p) = l.get(from..).and_then(|s| s.find(needle)) {
                return self.loc(ln, from + p + 1);
            }
        }
        base.clone()
    }
}

// ------------------------------------------------------------ definitions

/// A condition fragment and where its `condition:` key is.
#[derive(Clone, Debug)]
pub(crate) struct Frag {
    pub text: String,
    pub loc: Location,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ListItem {
    Str(String),
    Int(i64),
}

#[derive(Clone, Debug)]
pub(crate) struct ListDef {
    pub loc: Location,
    /// Distinct items, in first-seen order.
    pub items: Vec<ListItem>,
    /// The biggest list it includes (for naming chains in errors).
    pub via: Option<String>,
}

#[derive(Clone, Debug)]
pub(crate) struct MacroDef {
    pub loc: Location,
    pub frags: Vec<Frag>,
}

#[derive(Clone, Debug)]
pub(crate) struct ExcDef {
    pub name: String,
    pub cond: Frag,
}

/// A rule's `threshold`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Threshold {
    pub count: u64,
    pub window_ns: i64,
    pub by: Vec<Field>,
}

#[derive(Clone, Debug)]
pub(crate) struct RuleDef {
    pub name: String,
    pub loc: Location,
    pub desc: String,
    pub frags: Vec<Frag>,
    pub output: Option<Frag>,
    pub priority: Option<Priority>,
    pub enabled: bool,
    pub tags: Vec<String>,
    pub exceptions: Vec<ExcDef>,
    pub events: Vec<EventType>,
    pub events_loc: Location,
    pub threshold: Option<Threshold>,
    /// Set for rules from Falco files.
    pub falco: Option<FalcoStatus>,
}

/// A Falco rule's status on vigil.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FalcoStatus {
    /// Why the rule cannot run on vigil (it is loaded disabled), if so.
    pub inactive: Option<String>,
    /// Parts of the rule vigil covers only partly (it still runs).
    pub notes: Vec<String>,
    /// The rule's own `enabled`.
    pub enabled: bool,
    /// Its output, rendered as Falco does (`None` for inactive rules).
    pub output: Option<std::sync::Arc<crate::falco::FalcoOutput>>,
}

impl RuleDef {
    /// The keys that `append: true` and a condition-less override both
    /// replace when given: priority, output, desc, enabled.
    fn replace_scalars(
        &mut self,
        priority: Option<Priority>,
        output: Option<Frag>,
        desc: Option<String>,
        enabled: Option<bool>,
    ) {
        if let Some(p) = priority {
            self.priority = Some(p);
        }
        if let Some(o) = output {
            self.output = Some(o);
        }
        if let Some(d) = desc {
            self.desc = d;
        }
        if let Some(e) = enabled {
            self.enabled = e;
        }
    }
}

/// Everything defined by the sources, after append/override semantics.
#[derive(Default, Debug)]
pub(crate) struct Defs {
    pub lists: HashMap<String, ListDef>,
    pub macros: HashMap<String, MacroDef>,
    pub rules: Vec<RuleDef>,
    pub rule_idx: HashMap<String, usize>,
    pub files: Vec<SrcLines>,
    /// List items built so far (every definition and append counts).
    pub list_work: usize,
    pub limits: Limits,
    /// Items of Falco-dialect files, turned into rules by [`Defs::finish_falco`].
    pub falco: crate::falco::FalcoDefs,
}

const LIST_KEYS: &[&str] = &["list", "items", "append"];
const MACRO_KEYS: &[&str] = &["macro", "condition", "append"];
const RULE_KEYS: &[&str] = &[
    "rule",
    "desc",
    "condition",
    "output",
    "priority",
    "enabled",
    "tags",
    "exceptions",
    "events",
    "threshold",
    "append",
];
const OVERRIDE_KEYS: &[&str] = &["rule", "enabled", "priority", "output", "desc", "tags"];
const EXC_KEYS: &[&str] = &["name", "condition", "fields", "values", "comps"];
const THRESHOLD_KEYS: &[&str] = &["count", "window", "by"];

fn suggest_key(k: &str, keys: &[&str]) -> String {
    keys.iter()
        .map(|c| (fields::edit_distance(k, c), *c))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| format!(" (did you mean `{c}`?)"))
        .unwrap_or_else(|| format!(" (expected one of: {})", keys.join(", ")))
}

pub(crate) fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn string_list(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Sequence(s) => s.iter().map(scalar_string).collect(),
        Value::String(s) => Some(vec![s.clone()]),
        Value::Null => Some(Vec::new()),
        _ => None,
    }
}

/// A rule file's duration ([`crate::duration`]'s grammar; an integer is
/// seconds) in nanoseconds; None when it does not parse or is zero.
pub fn parse_duration(v: &Value) -> Option<i64> {
    let d = match v {
        Value::Number(n) => std::time::Duration::from_secs(n.as_u64()?),
        Value::String(s) => crate::duration::parse_duration(s).ok()?,
        _ => return None,
    };
    i64::try_from(d.as_nanos()).ok().filter(|d| *d > 0)
}

/// Quote a YAML scalar as a Rhai literal.
fn rhai_literal(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) if n.is_i64() => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::String(s) => Some(format!(
            "\"{}\"",
            s.replace('\\', "\\\\").replace('"', "\\\"")
        )),
        _ => None,
    }
}

impl Defs {
    /// Parse one source's items into the definitions (errors into `diag`).
    pub fn add_source(&mut self, src: &Source, diag: &mut Diag) {
        let lines = SrcLines::new(&src.name, &src.text);
        let value: Value = match serde_yaml_ng::from_str(&src.text) {
            Ok(v) => v,
            Err(e) => {
                let (l, c) = e
                    .location()
                    .map(|l| (l.line(), l.column()))
                    .unwrap_or((0, 0));
                // serde_yaml_ng places a duplicate key at its mapping; point
                // at the repeated key itself.
                let dup = e
                    .to_string()
                    .split_once("duplicate entry with key \"")
                    .and_then(|(_, rest)| rest.split_once('"'))
                    .map(|(k, _)| k.to_string());
                match dup.and_then(|k| Some((lines.duplicate_key(l, c, &k)?, k))) {
                    Some(((second, first_line), k)) => diag.err(
                        &second,
                        None,
                        format!("duplicate key `{k}` (first given at line {first_line})"),
                    ),
                    None => diag.err(&lines.loc(l, c), None, format!("YAML syntax error: {e}")),
                }
                self.files.push(lines);
                return;
            }
        };
        let items = match value {
            Value::Sequence(s) => s,
            Value::Null => Vec::new(),
            _ => {
                diag.err(
                    &lines.loc(1, 1),
                    None,
                    "a rule file must be a YAML list of items (`- rule: ...`, `- macro: ...`, `- list: ...`)",
                );
                self.files.push(lines);
                return;
            }
        };
        let falco = match src.dialect {
            Some(d) => d == crate::falco::Dialect::Falco,
            None => crate::falco::is_falco_file(&items),
        };
        let mut starts = lines.item_lines();
        let mut aligned = starts.len() == items.len();
        if !aligned {
            // Unusual layout (flow style, odd indentation): find each item by
            // its `rule: NAME` / `macro: NAME` / `list: NAME` text instead.
            let mut found = Vec::new();
            let mut after = 1;
            for item in &items {
                let key = item.as_mapping().and_then(|m| {
                    ["rule", "macro", "list"]
                        .into_iter()
                        .find_map(|k| m.get(k).and_then(scalar_string).map(|n| (k, n)))
                });
                let line = key.and_then(|(k, n)| {
                    (after..=lines.lines.len()).find(|&ln| {
                        let l = &lines.lines[ln - 1];
                        l.find(&format!("{k}:"))
                            .is_some_and(|p| l[p..].contains(n.as_str()))
                    })
                });
                match line {
                    Some(ln) => {
                        found.push(ln);
                        after = ln + 1;
                    }
                    None => break,
                }
            }
            if found.len() == items.len() {
                starts = found;
                aligned = true;
            }
        }
        for (i, item) in items.iter().enumerate() {
            let (from, to) = if aligned {
                (starts[i], starts.get(i + 1).copied().unwrap_or(usize::MAX))
            } else {
                (0, 0)
            };
            let item_loc = if aligned {
                let l = &lines.lines[from - 1];
                let col = l.len() - l.trim_start().len() + 1;
                lines.loc(from, col)
            } else {
                lines.loc(0, 0)
            };
            let kloc = |key: &str| {
                if aligned {
                    lines
                        .key_loc(from, to, key)
                        .unwrap_or_else(|| item_loc.clone())
                } else {
                    item_loc.clone()
                }
            };
            let Value::Mapping(m) = item else {
                diag.err(
                    &item_loc,
                    None,
                    "each item must be a mapping with `rule`, `macro` or `list`",
                );
                continue;
            };
            if falco {
                self.falco.add_item(m, &item_loc, &kloc, &lines, diag);
            } else {
                self.add_item(m, &item_loc, &kloc, &lines, diag);
            }
        }
        self.files.push(lines);
    }

    fn add_item(
        &mut self,
        m: &Mapping,
        item_loc: &Location,
        kloc: &dyn Fn(&str) -> Location,
        lines: &SrcLines,
        diag: &mut Diag,
    ) {
        let kinds: Vec<&str> = ["rule", "macro", "list"]
            .into_iter()
            .filter(|k| m.contains_key(*k))
            .collect();
        let kind = match kinds.as_slice() {
            [k] => *k,
            [] => {
                let first = m.keys().next().and_then(Value::as_str).unwrap_or("?");
                diag.err(
                    item_loc,
                    None,
                    format!("item has none of `rule`, `macro`, `list` (first key `{first}`)"),
                );
                return;
            }
            _ => {
                diag.err(
                    item_loc,
                    None,
                    format!("item has several of {}", kinds.join(", ")),
                );
                return;
            }
        };
        let name = match m.get(kind).and_then(scalar_string) {
            Some(n) if !n.trim().is_empty() => n,
            _ => {
                diag.err(&kloc(kind), None, format!("`{kind}` needs a name"));
                return;
            }
        };
        let label = format!("{kind} `{name}`");
        let allowed = match kind {
            "rule" => RULE_KEYS,
            "macro" => MACRO_KEYS,
            _ => LIST_KEYS,
        };
        let bad = false;
        for k in m.keys() {
            let ks = k.as_str().unwrap_or("");
            if !allowed.contains(&ks) {
                diag.err(
                    &kloc(ks),
                    Some(&label),
                    format!(
                        "unknown key `{}`{}",
                        scalar_string(k).unwrap_or_default(),
                        suggest_key(ks, allowed)
                    ),
                );
                // Keep going: the item's other errors are reported too.
            }
        }
        let append = match m.get("append") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                diag.err(
                    &kloc("append"),
                    Some(&label),
                    "`append` must be true or false",
                );
                return;
            }
        };
        let cond_frag = |diag: &mut Diag| -> Option<Option<Frag>> {
            match m.get("condition") {
                None => Some(None),
                Some(v) => match scalar_string(v) {
                    Some(t) if !t.trim().is_empty() => Some(Some(Frag {
                        text: t,
                        loc: kloc("condition"),
                    })),
                    _ => {
                        diag.err(
                            &kloc("condition"),
                            Some(&label),
                            "`condition` must be a non-empty string",
                        );
                        None
                    }
                },
            }
        };
        match kind {
            "list" => {
                let items = match m.get("items") {
                    Some(Value::Sequence(s)) => s,
                    Some(Value::Null) | None if append => &Vec::new(),
                    _ => {
                        diag.err(&kloc("items"), Some(&label), "`items` must be a list");
                        return;
                    }
                };
                if self.list_work > self.limits.list_work {
                    return; // already reported; build nothing more
                }
                let base: &[ListItem] = if append {
                    match self.lists.get(&name) {
                        Some(l) => &l.items,
                        None => {
                            diag.err(
                                item_loc,
                                Some(&label),
                                "`append: true` to a list not defined earlier",
                            );
                            return;
                        }
                    }
                } else {
                    &[]
                };
                // Included lists are merged without repeats, so nesting a list
                // twice (`[l1, l1]`) costs nothing.
                let mut seen: std::collections::HashSet<&ListItem> = base.iter().collect();
                let mut added: Vec<ListItem> = Vec::new();
                let mut via: Option<(&str, usize)> = None;
                let mut new_items: Vec<&ListItem> = Vec::new();
                let mut literals = Vec::new();
                for it in items {
                    match it {
                        Value::String(s) => match self.lists.get(s) {
                            Some(other) if s != &name => {
                                if via.is_none_or(|(_, n)| other.items.len() > n) {
                                    via = Some((s.as_str(), other.items.len()));
                                }
                                new_items.extend(other.items.iter());
                            }
                            _ => literals.push(ListItem::Str(s.clone())),
                        },
                        Value::Number(n) if n.is_i64() => {
                            literals.push(ListItem::Int(n.as_i64().unwrap_or_default()))
                        }
                        Value::Bool(b) => literals.push(ListItem::Str(b.to_string())),
                        _ => {
                            diag.err(
                                &kloc("items"),
                                Some(&label),
                                "list items must be strings or integers",
                            );
                            return;
                        }
                    }
                }
                new_items.extend(literals.iter());
                for it in new_items {
                    if seen.insert(it) {
                        added.push(it.clone());
                        if base.len() + added.len() > self.limits.list_items {
                            break;
                        }
                    }
                }
                let total = base.len() + added.len();
                let via = via.map(|(n, _)| n.to_string());
                let chain = |via: &Option<String>| {
                    let mut c = vec![name.clone()];
                    let mut cur = via.clone();
                    while let Some(n) = cur {
                        if c.contains(&n) || c.len() > self.lists.len() {
                            break;
                        }
                        cur = self.lists.get(&n).and_then(|l| l.via.clone());
                        c.push(n);
                    }
                    abbreviate_chain(&c)
                };
                let Limits {
                    list_items: max_items,
                    list_work: max_work,
                    ..
                } = self.limits;
                if total > max_items {
                    diag.err(
                        &kloc("items"),
                        Some(&label),
                        format!(
                            "list {} holds more than {max_items} distinct items",
                            chain(&via)
                        ),
                    );
                    return;
                }
                self.list_work = self.list_work.saturating_add(total);
                if self.list_work > max_work {
                    diag.err(
                        &kloc("items"),
                        Some(&label),
                        format!(
                            "lists expand to more than {max_work} items in all at list {} (each list that includes others holds a copy of their items); lists after it are not built",
                            chain(&via)
                        ),
                    );
                    return;
                }
                if bad {
                    return;
                }
                match self.lists.get_mut(&name) {
                    Some(l) if append => {
                        l.items.extend(added);
                        if via.is_some() {
                            l.via = via;
                        }
                    }
                    _ => {
                        self.lists.insert(
                            name,
                            ListDef {
                                loc: item_loc.clone(),
                                items: added,
                                via,
                            },
                        );
                    }
                }
            }
            "macro" => {
                let Some(frag) = cond_frag(diag) else { return };
                let Some(frag) = frag else {
                    diag.err(item_loc, Some(&label), "macro needs a `condition`");
                    return;
                };
                if bad {
                    return;
                }
                if append {
                    match self.macros.get_mut(&name) {
                        Some(mdef) => mdef.frags.push(frag),
                        None => diag.err(
                            item_loc,
                            Some(&label),
                            "`append: true` to a macro not defined earlier",
                        ),
                    }
                } else {
                    self.macros.insert(
                        name,
                        MacroDef {
                            loc: item_loc.clone(),
                            frags: vec![frag],
                        },
                    );
                }
            }
            _ => self.add_rule(
                m,
                name,
                label.clone(),
                append,
                bad,
                item_loc,
                kloc,
                lines,
                diag,
                cond_frag,
            ),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn add_rule(
        &mut self,
        m: &Mapping,
        name: String,
        label: String,
        append: bool,
        mut bad: bool,
        item_loc: &Location,
        kloc: &dyn Fn(&str) -> Location,
        lines: &SrcLines,
        diag: &mut Diag,
        cond_frag: impl Fn(&mut Diag) -> Option<Option<Frag>>,
    ) {
        let l = Some(label.as_str());
        let frag = match cond_frag(diag) {
            Some(f) => f,
            None => {
                bad = true;
                None
            }
        };
        let desc = match m.get("desc") {
            None => None,
            Some(v) => match scalar_string(v) {
                Some(s) => Some(s),
                None => {
                    diag.err(&kloc("desc"), l, "`desc` must be a string");
                    bad = true;
                    None
                }
            },
        };
        let output = match m.get("output") {
            None => None,
            Some(v) => match scalar_string(v) {
                Some(s) => Some(Frag {
                    text: s.trim_end().to_string(),
                    loc: kloc("output"),
                }),
                None => {
                    diag.err(&kloc("output"), l, "`output` must be a string");
                    bad = true;
                    None
                }
            },
        };
        let priority = match m.get("priority") {
            None => None,
            Some(v) => match scalar_string(v).map(|s| s.parse::<Priority>()) {
                Some(Ok(p)) => Some(p),
                Some(Err(e)) => {
                    diag.err(
                        &lines.find_from(&kloc("priority"), &scalar_string(v).unwrap_or_default()),
                        l,
                        e.to_string(),
                    );
                    bad = true;
                    None
                }
                None => {
                    diag.err(&kloc("priority"), l, "`priority` must be a string");
                    bad = true;
                    None
                }
            },
        };
        let enabled = match m.get("enabled") {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                diag.err(&kloc("enabled"), l, "`enabled` must be true or false");
                bad = true;
                None
            }
        };
        let tags = match m.get("tags") {
            None => None,
            Some(v) => match string_list(v) {
                Some(t) => Some(t),
                None => {
                    diag.err(&kloc("tags"), l, "`tags` must be a list of strings");
                    bad = true;
                    None
                }
            },
        };
        let events_loc = kloc("events");
        let events = match m.get("events") {
            None => None,
            Some(Value::String(s)) => {
                diag.err(
                    &events_loc,
                    l,
                    format!("`events` must be a list of event types (write `events: [{s}]`)"),
                );
                bad = true;
                None
            }
            Some(v) => match string_list(v) {
                Some(names) => {
                    let mut out = Vec::new();
                    for n in names {
                        match n.parse::<EventType>() {
                            Ok(t) => {
                                if !out.contains(&t) {
                                    out.push(t)
                                }
                            }
                            Err(e) => {
                                diag.err(&lines.find_from(&events_loc, &n), l, e.to_string());
                                bad = true;
                            }
                        }
                    }
                    if out.is_empty() && !bad {
                        diag.err(&events_loc, l, "`events` must name at least one event type");
                        bad = true;
                    }
                    Some(out)
                }
                None => {
                    diag.err(&events_loc, l, "`events` must be a list of event types");
                    bad = true;
                    None
                }
            },
        };
        let exceptions = match m.get("exceptions") {
            None => None,
            Some(v) => match self.parse_exceptions(v, &kloc("exceptions"), &label, lines, diag) {
                Some(e) => Some(e),
                None => {
                    bad = true;
                    None
                }
            },
        };
        let threshold = match m.get("threshold") {
            None => None,
            Some(v) => match parse_threshold(v, &kloc("threshold"), &label, diag) {
                Some(t) => Some(t),
                None => {
                    bad = true;
                    None
                }
            },
        };
        let existing = self.rule_idx.get(&name).copied();
        // A new definition with bad values is still compiled (so its other
        // errors are reported too); appends and overrides are not applied.
        if bad && (append || frag.is_none() || existing.is_some()) {
            return;
        }
        if append {
            let Some(i) = existing else {
                diag.err(item_loc, l, "`append: true` to a rule not defined earlier");
                return;
            };
            let r = &mut self.rules[i];
            r.frags.extend(frag);
            r.exceptions.extend(exceptions.unwrap_or_default());
            r.tags.extend(tags.unwrap_or_default());
            r.replace_scalars(priority, output, desc, enabled);
            if let Some(ev) = events {
                r.events = ev;
                r.events_loc = events_loc;
            }
            if threshold.is_some() {
                r.threshold = threshold;
            }
            return;
        }
        let Some(frag) = frag else {
            // An override of an existing rule.
            let extra: Vec<&str> = m
                .keys()
                .filter_map(Value::as_str)
                .filter(|k| !OVERRIDE_KEYS.contains(k))
                .collect();
            if !extra.is_empty() {
                diag.err(
                    item_loc,
                    l,
                    format!(
                        "a rule without `condition` overrides an existing rule and may only set enabled, priority, output, desc, tags (found {}); use `append: true` to extend it",
                        extra.join(", ")
                    ),
                );
                return;
            }
            let Some(i) = existing else {
                if self.falco.has_rule(&name) {
                    // An override (`enabled: false`, ...) of a Falco rule.
                    self.falco.add_item(m, item_loc, kloc, lines, diag);
                    return;
                }
                diag.err(
                    item_loc,
                    l,
                    "rule has no `condition` and no earlier definition to override (define it with a condition, or load the file defining it first)",
                );
                return;
            };
            let r = &mut self.rules[i];
            r.replace_scalars(priority, output, desc, enabled);
            if let Some(t) = tags {
                r.tags = t;
            }
            return;
        };
        if let Some(i) = existing {
            let first = &self.rules[i].loc;
            diag.err(
                item_loc,
                l,
                format!("duplicate rule (first defined at {first}); use `append: true` to extend it or an override without `condition` to change it"),
            );
            return;
        }
        let missing: Vec<&str> = ["events", "output", "priority"]
            .into_iter()
            .filter(|k| !m.contains_key(*k))
            .collect();
        if !missing.is_empty() {
            // Reported, and the rule is still compiled so the errors of its
            // condition, exceptions and output are reported too.
            diag.err(
                item_loc,
                l,
                format!(
                    "rule needs {}",
                    missing
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        self.rule_idx.insert(name.clone(), self.rules.len());
        self.rules.push(RuleDef {
            name,
            loc: item_loc.clone(),
            desc: desc.unwrap_or_default(),
            frags: vec![frag],
            output,
            priority,
            enabled: enabled.unwrap_or(true),
            tags: tags.unwrap_or_default(),
            exceptions: exceptions.unwrap_or_default(),
            events: events.unwrap_or_default(),
            events_loc,
            threshold,
            falco: None,
        });
    }

    /// After every source: add the Falco files' rules (a name defined in both
    /// dialects is a duplicate).
    pub fn finish_falco(&mut self, diag: &mut Diag) {
        let file_idx = |loc: &Location| self.files.iter().position(|f| f.name == loc.file);
        for r in self.falco.finish(&self.files, diag) {
            if let Some(&i) = self.rule_idx.get(&r.name) {
                // As in Falco, the later definition (in load order) wins.
                let other = self.rules[i].loc.clone();
                let label = format!("rule `{}`", r.name);
                if file_idx(&r.loc) > file_idx(&other) {
                    diag.warn(
                        &r.loc,
                        Some(&label),
                        format!("replaces the rule of the same name at {other}"),
                    );
                    self.rules[i] = r;
                } else {
                    diag.warn(
                        &r.loc,
                        Some(&label),
                        format!("replaced by the rule of the same name at {other}, loaded later"),
                    );
                }
                continue;
            }
            self.rule_idx.insert(r.name.clone(), self.rules.len());
            self.rules.push(r);
        }
    }

    fn parse_exceptions(
        &self,
        v: &Value,
        loc: &Location,
        label: &str,
        lines: &SrcLines,
        diag: &mut Diag,
    ) -> Option<Vec<ExcDef>> {
        let l = Some(label);
        let Value::Sequence(seq) = v else {
            diag.err(loc, l, "`exceptions` must be a list of {name, condition}");
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for e in seq {
            let Value::Mapping(m) = e else {
                diag.err(loc, l, "each exception must be a mapping {name, condition}");
                ok = false;
                continue;
            };
            let name = m.get("name").and_then(scalar_string).unwrap_or_default();
            let eloc = if name.is_empty() {
                loc.clone()
            } else {
                lines.find_from(loc, &name)
            };
            if name.is_empty() {
                diag.err(loc, l, "exception needs a `name`");
                ok = false;
                continue;
            }
            for k in m.keys() {
                let ks = k.as_str().unwrap_or("");
                if !EXC_KEYS.contains(&ks) {
                    diag.err(
                        &eloc,
                        l,
                        format!(
                            "exception `{name}`: unknown key `{ks}`{}",
                            suggest_key(ks, EXC_KEYS)
                        ),
                    );
                    ok = false;
                }
            }
            let cond = if let Some(c) = m.get("condition") {
                match scalar_string(c) {
                    Some(t) if !t.trim().is_empty() => {
                        if m.contains_key("fields") || m.contains_key("values") {
                            diag.err(&eloc, l, format!("exception `{name}`: give either `condition` or `fields`/`values`, not both"));
                            ok = false;
                            continue;
                        }
                        t
                    }
                    _ => {
                        diag.err(
                            &eloc,
                            l,
                            format!("exception `{name}`: `condition` must be a non-empty string"),
                        );
                        ok = false;
                        continue;
                    }
                }
            } else {
                match tuple_condition(m) {
                    Ok(t) => t,
                    Err(msg) => {
                        diag.err(&eloc, l, format!("exception `{name}`: {msg}"));
                        ok = false;
                        continue;
                    }
                }
            };
            if out.iter().any(|x: &ExcDef| x.name == name) {
                diag.err(&eloc, l, format!("duplicate exception name `{name}`"));
                ok = false;
                continue;
            }
            out.push(ExcDef {
                name,
                cond: Frag {
                    text: cond,
                    loc: eloc,
                },
            });
        }
        ok.then_some(out)
    }
}

/// Falco's tuple-form exception to a condition text.
fn tuple_condition(m: &Mapping) -> Result<String, String> {
    let fields = match m.get("fields") {
        Some(v) => string_list(v).ok_or("`fields` must be a list of field names")?,
        None => return Err("needs `condition`, or `fields` and `values`".into()),
    };
    if fields.is_empty() {
        return Err("`fields` is empty".into());
    }
    let comps = match m.get("comps") {
        None => vec![None; fields.len()],
        Some(v) => {
            let c = string_list(v).ok_or("`comps` must be a list")?;
            if c.len() != fields.len() {
                return Err(format!(
                    "`comps` has {} entries but `fields` has {}",
                    c.len(),
                    fields.len()
                ));
            }
            c.into_iter().map(Some).collect()
        }
    };
    let rows = match m.get("values") {
        Some(Value::Sequence(s)) => s.clone(),
        None | Some(Value::Null) => Vec::new(),
        _ => return Err("`values` must be a list of rows".into()),
    };
    if rows.is_empty() {
        // Falco: an exception with no values never matches.
        return Ok("false".into());
    }
    let mut alts = Vec::new();
    for row in rows {
        let cells: Vec<Value> = match row {
            Value::Sequence(s)
                if fields.len() > 1 || matches!(s.first(), Some(Value::Sequence(_))) =>
            {
                s
            }
            Value::Sequence(s) => vec![Value::Sequence(s)],
            other => vec![other],
        };
        let cells = if fields.len() == 1 && cells.len() == 1 {
            match &cells[0] {
                Value::Sequence(inner) if comps[0].as_deref() != Some("in") && inner.len() == 1 => {
                    inner.clone()
                }
                _ => cells,
            }
        } else {
            cells
        };
        if cells.len() != fields.len() {
            return Err(format!(
                "a values row has {} entries but `fields` has {}",
                cells.len(),
                fields.len()
            ));
        }
        let mut terms = Vec::new();
        for ((f, comp), cell) in fields.iter().zip(&comps).zip(&cells) {
            let comp = comp.clone().unwrap_or_else(|| {
                if matches!(cell, Value::Sequence(_)) {
                    "in".into()
                } else {
                    "==".into()
                }
            });
            let lit = match cell {
                Value::Sequence(s) => {
                    let items: Option<Vec<String>> = s.iter().map(rhai_literal).collect();
                    format!(
                        "[{}]",
                        items
                            .ok_or("values must be strings, integers or lists of them")?
                            .join(", ")
                    )
                }
                // `in` a list name
                Value::String(s) if comp == "in" && !s.contains(' ') && !s.starts_with('"') => {
                    s.clone()
                }
                other => rhai_literal(other)
                    .ok_or("values must be strings, integers or lists of them")?,
            };
            let t = match comp.as_str() {
                "=" | "==" => format!("{f} == {lit}"),
                "!=" | "<" | "<=" | ">" | ">=" | "in" => format!("{f} {comp} {lit}"),
                "startswith" | "starts_with" => format!("{f}.starts_with({lit})"),
                "endswith" | "ends_with" => format!("{f}.ends_with({lit})"),
                "contains" => format!("{f}.contains({lit})"),
                "glob" => format!("glob({f}, {lit})"),
                "regex" => format!("regex({f}, {lit})"),
                other => return Err(format!("unsupported comp `{other}`")),
            };
            terms.push(t);
        }
        alts.push(format!("({})", terms.join(" && ")));
    }
    Ok(alts.join(" || "))
}

fn parse_threshold(v: &Value, loc: &Location, label: &str, diag: &mut Diag) -> Option<Threshold> {
    let l = Some(label);
    let Value::Mapping(m) = v else {
        diag.err(loc, l, "`threshold` must be a mapping {count, window, by}");
        return None;
    };
    let mut ok = true;
    for k in m.keys() {
        let ks = k.as_str().unwrap_or("");
        if !THRESHOLD_KEYS.contains(&ks) {
            diag.err(
                loc,
                l,
                format!(
                    "threshold: unknown key `{ks}`{}",
                    suggest_key(ks, THRESHOLD_KEYS)
                ),
            );
            ok = false;
        }
    }
    let count = match m.get("count").and_then(Value::as_u64) {
        Some(c) if (1..=MAX_THRESHOLD_COUNT).contains(&c) => c,
        _ => {
            diag.err(
                loc,
                l,
                format!("threshold: `count` must be an integer 1..={MAX_THRESHOLD_COUNT}"),
            );
            ok = false;
            1
        }
    };
    let window_ns = match m.get("window").and_then(parse_duration) {
        Some(w) => w,
        None => {
            diag.err(
                loc,
                l,
                "threshold: `window` must be a duration such as `10s`, `500ms`, `5m`",
            );
            ok = false;
            0
        }
    };
    let mut by = Vec::new();
    match m.get("by").map(string_list) {
        None => {}
        Some(Some(names)) => {
            for n in names {
                match fields::lookup(&n) {
                    Some(f) => by.push(f),
                    None => {
                        diag.err(
                            loc,
                            l,
                            format!(
                                "threshold: unknown field `{n}` in `by`{}",
                                fields::suggest(&n)
                                    .map(|s| format!(" (did you mean `{s}`?)"))
                                    .unwrap_or_default()
                            ),
                        );
                        ok = false;
                    }
                }
            }
        }
        Some(None) => {
            diag.err(loc, l, "threshold: `by` must be a list of fields");
            ok = false;
        }
    }
    ok.then_some(Threshold {
        count,
        window_ns,
        by,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration(&Value::from("10s")), Some(10_000_000_000));
        assert_eq!(parse_duration(&Value::from("500ms")), Some(500_000_000));
        assert_eq!(parse_duration(&Value::from(3)), Some(3_000_000_000));
        assert_eq!(parse_duration(&Value::from("10 parsecs")), None);
        assert_eq!(parse_duration(&Value::from("0s")), None);
    }

    #[test]
    fn list_dir_reports_symlink_loops_not_dangling_links() {
        use std::os::unix::fs::symlink;
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.yaml"), "[]").unwrap();
        symlink("loop.yaml", d.path().join("loop.yaml")).unwrap();
        symlink("missing.yaml", d.path().join("dangling.yaml")).unwrap();
        let mut skipped = Vec::new();
        let files = list_dir_report(d.path(), &mut |p, e| {
            skipped.push((p.to_path_buf(), e.raw_os_error()))
        })
        .unwrap();
        assert_eq!(files, vec![d.path().join("a.yaml")]);
        assert_eq!(skipped, vec![(d.path().join("loop.yaml"), Some(40))]); // ELOOP
    }

    #[test]
    fn item_lines_and_keys() {
        let s = SrcLines::new(
            "f.yaml",
            "# c\n- list: a\n  items: [x]\n\n- rule: r\n  desc: >\n    - not an item\n  condition: x\n",
        );
        assert_eq!(s.item_lines(), vec![2, 5]);
        let l = s.key_loc(5, usize::MAX, "condition").unwrap();
        assert_eq!((l.line, l.col), (8, 3));
        let l = s.key_loc(5, usize::MAX, "rule").unwrap();
        assert_eq!((l.line, l.col), (5, 3));
    }

    #[test]
    fn tuple_exceptions() {
        let m: Mapping = serde_yaml_ng::from_str(
            "{name: e, fields: [proc.name, file.path], comps: [==, startswith], values: [[sh, /tmp], [bash, \"/v\\\"\"]]}",
        )
        .unwrap();
        assert_eq!(
            tuple_condition(&m).unwrap(),
            r#"(proc.name == "sh" && file.path.starts_with("/tmp")) || (proc.name == "bash" && file.path.starts_with("/v\""))"#
        );
        let m: Mapping =
            serde_yaml_ng::from_str("{name: e, fields: [proc.name], values: [[[a, b]]]}").unwrap();
        assert_eq!(tuple_condition(&m).unwrap(), r#"(proc.name in ["a", "b"])"#);
    }
}
