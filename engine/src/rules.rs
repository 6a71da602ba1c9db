//! Rule files: reading files and directories (`source`), YAML items
//! (`list`, `macro`, `rule`: `items`, `exceptions`) with their file
//! positions (`lines`), and the definition semantics. This file holds the
//! definition types the compiler and the Falco dialect share, and the hook
//! ([`OtherDialect`]) through which the rule set's build plugs the Falco
//! dialect into the loader (`rules` does not import `falco`).
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

use serde_yaml_ng::Value;

use crate::alert::Priority;
use crate::error::Location;
use crate::event::EventType;
use crate::fields::{self, Field};
use crate::limits::Limits;
pub use crate::limits::{MAX_LIST_ITEMS, MAX_LIST_WORK};

mod exceptions;
mod items;
mod lines;
mod source;

pub(crate) use lines::SrcLines;
pub use source::{is_rule_file_name, list_dir, list_dir_report, read_paths, Source};

/// Most keys a threshold rule tracks at once.
pub const MAX_THRESHOLD_KEYS: usize = 10_000;
/// Largest `threshold.count`.
pub const MAX_THRESHOLD_COUNT: u64 = 100_000;

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
    /// Its Falco output text (`None` for inactive rules); the rule set
    /// renders alerts from it as Falco does.
    pub output: Option<String>,
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
    /// Items of Falco-dialect files, turned into rules by [`Defs::finish_falco`]
    /// (the rule set's build plugs in `crate::falco::FalcoDefs`; `None`:
    /// every file is read as vigil's).
    pub falco: Option<Box<dyn OtherDialect>>,
}

/// Another rule dialect's reader (Falco's), which turns its files' items
/// into [`RuleDef`]s once every file is read. Defined here so `rules` need
/// not import the dialect: the dialect imports `rules`' definition types.
pub(crate) trait OtherDialect: std::fmt::Debug {
    /// True when a file whose rules path declares no dialect is this
    /// dialect's, from its items.
    fn claims(&self, items: &[Value]) -> bool;
    /// Whether one of its files defined this rule.
    fn has_rule(&self, name: &str) -> bool;
    /// (macros, lists) its files defined.
    fn counts(&self) -> (usize, usize);
    /// One item of one of its files.
    fn add_item(
        &mut self,
        m: &serde_yaml_ng::Mapping,
        item_loc: &crate::error::Location,
        kloc: &dyn Fn(&str) -> crate::error::Location,
        lines: &SrcLines,
        diag: &mut crate::error::Diag,
    );
    /// Its rules as vigil rule definitions. Errors go to `diag`.
    fn finish(&self, files: &[SrcLines], diag: &mut crate::error::Diag) -> Vec<RuleDef>;
}

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
}
