//! Rule test cases (`vigil test`): a YAML list of cases, each an event (or a
//! sequence of events) and the rules expected to fire or not.
//!
//! ```yaml
//! - name: nginx spawns sh                  # required, unique within the file
//!   event: {evt.type: exec, proc.name: sh, proc.pname: nginx}
//!   expect: [Shell spawned by web server]  # must fire (at least once)
//!   expect_not: [Some other rule]          # must not fire
//! - name: retransmit storm
//!   events: [{evt.type: retransmit, net.daddr: 10.0.0.9, evt.time: 1000000000}, ...]
//!   expect_count: {TCP retransmit storm: 1} # exact counts (optional)
//! ```
//! Each case runs on a fresh [`Evaluator`] (threshold state starts empty).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_yaml_ng::Value;

use crate::error::{Diag, LoadError, Location};
use crate::event::Event;
use crate::rules::SrcLines;
use crate::ruleset::{Evaluator, RuleSet};

/// One test case.
#[derive(Clone, Debug)]
pub struct TestCase {
    pub name: String,
    /// Where the case is (file, line, column).
    pub loc: Location,
    pub events: Vec<Event>,
    /// The events as written (flat JSON), for failure reports.
    pub raw_events: Vec<serde_json::Value>,
    pub expect: Vec<String>,
    pub expect_not: Vec<String>,
    pub expect_count: BTreeMap<String, u64>,
}

/// The outcome of one case.
#[derive(Clone, Debug)]
pub struct CaseResult {
    pub name: String,
    pub loc: Location,
    pub passed: bool,
    /// Why it failed (one line per problem; empty when passed).
    pub failures: Vec<String>,
    /// Rules that fired, with counts.
    pub fired: BTreeMap<String, u64>,
    /// Time to run the case (its evaluator and events).
    pub elapsed: std::time::Duration,
}

const CASE_KEYS: &[&str] = &[
    "name",
    "event",
    "events",
    "expect",
    "expect_not",
    "expect_count",
];

fn str_list(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Sequence(s) => s.iter().map(|x| x.as_str().map(str::to_string)).collect(),
        Value::String(s) => Some(vec![s.clone()]),
        Value::Null => Some(Vec::new()),
        _ => None,
    }
}

/// A case that could not be read, with every error found in it (the other
/// cases of its file still run).
#[derive(Clone, Debug)]
pub struct InvalidCase {
    /// The case's `name`, or `item N` when it has none.
    pub name: String,
    pub loc: Location,
    pub errors: Vec<LoadError>,
}

/// A test-case file read as far as it goes.
#[derive(Clone, Debug, Default)]
pub struct CaseFile {
    /// The file as given.
    pub name: String,
    /// The valid cases, in file order.
    pub cases: Vec<TestCase>,
    /// The cases with errors, in file order.
    pub invalid: Vec<InvalidCase>,
    /// Errors of the file as a whole (unreadable, YAML syntax, not a list):
    /// none of its cases could be read.
    pub errors: Vec<LoadError>,
}

impl CaseFile {
    /// Every error of the file, file-level first, then per case.
    pub fn all_errors(&self) -> impl Iterator<Item = &LoadError> {
        self.errors
            .iter()
            .chain(self.invalid.iter().flat_map(|c| c.errors.iter()))
    }
}

/// Read a test-case file (a YAML list of cases).
pub fn load_cases(path: &Path) -> CaseFile {
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse_cases(&name, &text),
        Err(e) => CaseFile {
            errors: vec![LoadError {
                loc: Location {
                    file: name.clone(),
                    line: 0,
                    col: 0,
                },
                item: None,
                msg: format!("cannot read: {e}"),
            }],
            name,
            ..CaseFile::default()
        },
    }
}

/// Parse test cases from text (`name` is used in locations). A case with an
/// error is reported with all of its errors and the other cases are kept.
pub fn parse_cases(name: &str, text: &str) -> CaseFile {
    let lines = SrcLines::new(name, text);
    let mut file = CaseFile {
        name: name.to_string(),
        ..CaseFile::default()
    };
    let file_error = |loc: Location, msg: String| LoadError {
        loc,
        item: None,
        msg,
    };
    let value: Value = match serde_yaml_ng::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let (l, c) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            file.errors.push(file_error(
                lines.loc(l, c),
                format!("YAML syntax error: {e}"),
            ));
            return file;
        }
    };
    let items = match value {
        Value::Sequence(s) => s,
        Value::Null => Vec::new(),
        _ => {
            file.errors.push(file_error(
                lines.loc(1, 1),
                "a test file must be a YAML list of cases".into(),
            ));
            return file;
        }
    };
    let starts = lines.item_lines();
    let aligned = starts.len() == items.len();
    for (i, item) in items.iter().enumerate() {
        let cname = match item {
            Value::Mapping(m) => m.get("name").and_then(Value::as_str).map(str::to_string),
            _ => None,
        };
        let loc = if aligned {
            lines.loc(starts[i], 1)
        } else {
            // A flow-style list: the case's name is the best anchor there is.
            let from = lines.loc(1, 1);
            match &cname {
                Some(n) => lines.find_from(&from, n),
                None => lines.loc(0, 0),
            }
        };
        let mut diag = Diag::default();
        let seen = file
            .cases
            .iter()
            .map(|c| c.name.as_str())
            .chain(file.invalid.iter().map(|c| c.name.as_str()));
        let duplicate = cname
            .as_deref()
            .is_some_and(|n| seen.clone().any(|s| s == n));
        let end = starts
            .get(i + 1)
            .copied()
            .filter(|_| aligned)
            .unwrap_or(usize::MAX);
        match parse_case(
            item,
            cname.clone(),
            duplicate,
            (&loc, end),
            &lines,
            &mut diag,
        ) {
            Some(case) if diag.errors.is_empty() => file.cases.push(case),
            _ => file.invalid.push(InvalidCase {
                name: cname.unwrap_or_else(|| format!("item {}", i + 1)),
                loc,
                errors: diag.errors,
            }),
        }
    }
    file
}

/// One case: every error of it into `diag`; the case when it has none.
fn parse_case(
    item: &Value,
    cname: Option<String>,
    duplicate: bool,
    (loc, end): (&Location, usize),
    lines: &SrcLines,
    diag: &mut Diag,
) -> Option<TestCase> {
    let Value::Mapping(m) = item else {
        diag.err(
            loc,
            None,
            "each case must be a mapping with `name` and `event`/`events`",
        );
        return None;
    };
    let label = cname.as_ref().map(|n| format!("case `{n}`"));
    let l = label.as_deref();
    if cname.is_none() {
        diag.err(loc, None, "case needs a `name`");
    }
    for k in m.keys() {
        let ks = k.as_str().unwrap_or("");
        if !CASE_KEYS.contains(&ks) {
            let at = Some(loc.line)
                .filter(|&line| line > 0 && !ks.is_empty())
                .and_then(|line| lines.key_loc(line, end, ks))
                .unwrap_or_else(|| loc.clone());
            diag.err(
                &at,
                l,
                format!(
                    "unknown key `{ks}` (expected one of: {})",
                    CASE_KEYS.join(", ")
                ),
            );
        }
    }
    if duplicate {
        diag.err(loc, l, "duplicate case name in this file");
    }
    let raw: Vec<Value> = match (m.get("event"), m.get("events")) {
        (Some(e), None) => vec![e.clone()],
        (None, Some(Value::Sequence(s))) if !s.is_empty() => s.clone(),
        (None, Some(_)) => {
            diag.err(loc, l, "`events` must be a non-empty list of events");
            Vec::new()
        }
        (Some(_), Some(_)) => {
            diag.err(loc, l, "give `event` or `events`, not both");
            Vec::new()
        }
        (None, None) => {
            diag.err(loc, l, "case needs `event` or `events`");
            Vec::new()
        }
    };
    let mut events = Vec::new();
    let mut raw_events = Vec::new();
    for (k, r) in raw.iter().enumerate() {
        let json: serde_json::Value = match serde_json::to_value(r) {
            Ok(j) => j,
            Err(e) => {
                diag.err(loc, l, format!("event {}: {e}", k + 1));
                continue;
            }
        };
        let Some(obj) = json.as_object() else {
            diag.err(
                loc,
                l,
                format!("event {} must be a mapping of fields", k + 1),
            );
            continue;
        };
        match Event::from_flat_json(obj) {
            Ok(ev) => events.push(ev),
            Err(e) => {
                let at = match &e {
                    crate::fields::EventError::UnknownField { field, .. }
                    | crate::fields::EventError::NotOnType { field, .. }
                    | crate::fields::EventError::BadValue { field, .. } => {
                        lines.find_from(loc, field)
                    }
                    _ => loc.clone(),
                };
                diag.err(&at, l, format!("event {}: {e}", k + 1));
            }
        }
        raw_events.push(json);
    }
    let mut lists = Vec::new();
    for key in ["expect", "expect_not"] {
        match m.get(key).map(str_list) {
            None => lists.push(Vec::new()),
            Some(Some(v)) => lists.push(v),
            Some(None) => {
                diag.err(loc, l, format!("`{key}` must be a list of rule names"));
                lists.push(Vec::new());
            }
        }
    }
    let mut expect_count = BTreeMap::new();
    let mut count_ok = true;
    match m.get("expect_count") {
        None => {}
        Some(Value::Mapping(cm)) => {
            for (k, v) in cm {
                match (k.as_str(), v.as_u64()) {
                    (Some(k), Some(n)) => {
                        expect_count.insert(k.to_string(), n);
                    }
                    _ => count_ok = false,
                }
            }
        }
        Some(_) => count_ok = false,
    }
    if !count_ok {
        diag.err(loc, l, "`expect_count` maps rule names to counts");
    }
    let expect_not = lists.pop().unwrap_or_default();
    let expect = lists.pop().unwrap_or_default();
    if expect.is_empty() && expect_not.is_empty() && expect_count.is_empty() && count_ok {
        diag.err(
            loc,
            l,
            "case expects nothing: give `expect`, `expect_not` or `expect_count`",
        );
    }
    Some(TestCase {
        name: cname?,
        loc: loc.clone(),
        events,
        raw_events,
        expect,
        expect_not,
        expect_count,
    })
}

/// Run cases, each with a fresh evaluator.
pub fn run_cases(rules: &Arc<RuleSet>, cases: &[TestCase]) -> Vec<CaseResult> {
    cases.iter().map(|c| run_case(rules, c)).collect()
}

fn run_case(rules: &Arc<RuleSet>, c: &TestCase) -> CaseResult {
    let start = std::time::Instant::now();
    let mut ev = Evaluator::new(rules.clone(), "vigil-test");
    let mut alerts = Vec::new();
    let mut fired: BTreeMap<String, u64> = BTreeMap::new();
    for e in &c.events {
        alerts.clear();
        ev.evaluate(e, &mut alerts);
        for a in &alerts {
            *fired.entry(a.rule.to_string()).or_default() += 1;
        }
    }
    let mut failures = Vec::new();
    let names = c
        .expect
        .iter()
        .chain(&c.expect_not)
        .chain(c.expect_count.keys());
    for n in names {
        if !rules.has_rule(n) {
            failures.push(format!("names rule `{n}`, which does not exist"));
        }
    }
    let show = |k: usize| {
        c.raw_events
            .get(k)
            .map(|j| j.to_string())
            .unwrap_or_default()
    };
    for n in &c.expect {
        if rules.has_rule(n) && !fired.contains_key(n) {
            let why: Vec<String> = c
                .events
                .iter()
                .enumerate()
                .filter_map(|(k, e)| ev.why_not(n, e).map(|w| (k, w)))
                .map(|(k, w)| {
                    if c.events.len() > 1 {
                        format!("event {}: {w}", k + 1)
                    } else {
                        w
                    }
                })
                .take(3)
                .collect();
            failures.push(format!(
                "rule `{n}` did not fire{} (event: {})",
                if why.is_empty() {
                    String::new()
                } else {
                    format!(": {}", why.join("; "))
                },
                show(0)
            ));
        }
    }
    for n in &c.expect_not {
        if let Some(k) = fired.get(n) {
            failures.push(format!(
                "rule `{n}` fired {k} time(s) but must not (event: {})",
                show(0)
            ));
        }
    }
    for (n, want) in &c.expect_count {
        let got = fired.get(n).copied().unwrap_or(0);
        if rules.has_rule(n) && got != *want {
            failures.push(format!("rule `{n}` fired {got} time(s), expected {want}"));
        }
    }
    CaseResult {
        name: c.name.clone(),
        loc: c.loc.clone(),
        passed: failures.is_empty(),
        failures,
        fired,
        elapsed: start.elapsed(),
    }
}

/// How the cases exercise one rule (`vigil test --coverage`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleCoverage {
    pub name: String,
    pub enabled: bool,
    /// Cases expecting the rule to fire (`expect`, or `expect_count` above 0).
    pub positive: usize,
    /// Cases expecting it not to fire (`expect_not`, or `expect_count: 0`).
    pub negative: usize,
    /// The condition's top-level `&&` clauses.
    pub clauses: Vec<ClauseCoverage>,
}

/// Whether some case event made a clause true, and some made it false.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClauseCoverage {
    pub text: String,
    pub made_true: bool,
    pub made_false: bool,
}

impl RuleCoverage {
    /// Clauses some case made both true and false.
    pub fn both_ways(&self) -> usize {
        self.clauses
            .iter()
            .filter(|c| c.made_true && c.made_false)
            .count()
    }

    /// [`RuleCoverage::both_ways`] as a share of the clauses (0 to 1).
    pub fn share(&self) -> f64 {
        if self.clauses.is_empty() {
            0.0
        } else {
            self.both_ways() as f64 / self.clauses.len() as f64
        }
    }
}

/// The coverage of every rule of `rules` by `cases`: the cases naming it
/// each way, and the value each of its clauses took on every case event of
/// its types (every clause evaluated, no short-circuit). In rule order.
pub fn coverage(rules: &Arc<RuleSet>, cases: &[TestCase]) -> Vec<RuleCoverage> {
    let mut out: Vec<RuleCoverage> = rules
        .rules()
        .map(|r| RuleCoverage {
            clauses: rules
                .clause_labels(&r.name)
                .unwrap_or_default()
                .into_iter()
                .map(|text| ClauseCoverage {
                    text,
                    made_true: false,
                    made_false: false,
                })
                .collect(),
            name: r.name,
            enabled: r.enabled,
            positive: 0,
            negative: 0,
        })
        .collect();
    let mut ev = Evaluator::new(rules.clone(), "vigil-test");
    for c in cases {
        for rc in &mut out {
            let count = c.expect_count.get(&rc.name);
            if c.expect.contains(&rc.name) || count.is_some_and(|n| *n > 0) {
                rc.positive += 1;
            }
            if c.expect_not.contains(&rc.name) || count == Some(&0) {
                rc.negative += 1;
            }
            for e in &c.events {
                let Some(values) = ev.clause_values(&rc.name, e) else {
                    continue;
                };
                for (cl, v) in rc.clauses.iter_mut().zip(values) {
                    cl.made_true |= v == Some(true);
                    cl.made_false |= v == Some(false);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(f: &CaseFile) -> String {
        f.all_errors()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn case_errors_name_file_line_and_case() {
        let f = parse_cases(
            "t.yaml",
            "- name: a\n  event: {evt.type: exec, proc.nmae: sh}\n  expect: [R]\n- name: b\n  events: []\n  expect: [R]\n- name: c\n  event: {evt.type: exec}\n  expected: [R]\n",
        );
        let e = errors_of(&f);
        assert!(e.contains("t.yaml:2:27: case `a`: event 1: unknown field `proc.nmae` (did you mean `proc.name`?)"), "{e}");
        assert!(
            e.contains("t.yaml:4:1: case `b`: `events` must be a non-empty list"),
            "{e}"
        );
        assert!(
            e.contains("t.yaml:9:3: case `c`: unknown key `expected`"),
            "{e}"
        );
        assert!(f.cases.is_empty() && f.errors.is_empty());
    }

    #[test]
    fn an_invalid_case_is_reported_once_and_the_others_are_kept() {
        // Case `a` has two errors (an unknown key and an unknown field):
        // one invalid case carrying both; `b` and `c` are still read.
        let f = parse_cases(
            "t.yaml",
            "- name: b\n  event: {evt.type: exec, proc.name: sh}\n  expect: [R]\n- name: a\n  event: {evt.type: exec, proc.nmae: sh}\n  expected: [R]\n- name: c\n  event: {evt.type: exec, proc.name: ls}\n  expect_not: [R]\n- name: c\n  event: {evt.type: exec}\n  expect: [R]\n",
        );
        let names: Vec<&str> = f.cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["b", "c"]);
        assert_eq!(f.invalid.len(), 2, "{:?}", f.invalid);
        let a = &f.invalid[0];
        assert_eq!((a.name.as_str(), a.loc.line, a.loc.col), ("a", 4, 1));
        let msgs: Vec<String> = a.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert!(
            msgs[0].starts_with("t.yaml:6:3: case `a`: unknown key `expected`"),
            "{msgs:?}"
        );
        assert!(
            msgs[1].starts_with("t.yaml:5:27: case `a`: event 1: unknown field `proc.nmae`"),
            "{msgs:?}"
        );
        assert!(msgs[2].contains("case expects nothing"), "{msgs:?}");
        assert_eq!(
            f.invalid[1].errors[0].to_string(),
            "t.yaml:10:1: case `c`: duplicate case name in this file"
        );
    }

    #[test]
    fn file_errors_have_a_position_or_name_the_file() {
        let f = parse_cases(
            "t.yaml",
            "- name: a\n  event: {evt.type: exec\n  expect: [R]\n",
        );
        assert_eq!(f.errors.len(), 1);
        let e = f.errors[0].to_string();
        assert!(e.starts_with("t.yaml:3:"), "{e}");
        assert!(e.contains("YAML syntax error"), "{e}");
        let f = load_cases(Path::new("/nonexistent/cases.yaml"));
        assert_eq!(
            f.errors[0].to_string(),
            "/nonexistent/cases.yaml: cannot read: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn cases_run_and_report() {
        let rules = Arc::new(
            RuleSet::from_sources(&[(
                "r.yaml".into(),
                "- rule: R\n  events: [exec]\n  condition: proc.name == \"sh\" && proc.tty\n  output: o\n  priority: info\n".into(),
            )])
            .unwrap(),
        );
        let cases = parse_cases(
            "t.yaml",
            "- name: ok\n  event: {evt.type: exec, proc.name: sh, proc.tty: true}\n  expect: [R]\n  expect_count: {R: 1}\n- name: no tty\n  event: {evt.type: exec, proc.name: sh}\n  expect: [R]\n- name: open\n  event: {evt.type: open, proc.name: sh}\n  expect: [R, Nope]\n",
        )
        .cases;
        let r = run_cases(&rules, &cases);
        assert!(r[0].passed, "{:?}", r[0].failures);
        assert_eq!(r[0].fired["R"], 1);
        assert!(!r[1].passed);
        assert!(
            r[1].failures[0].contains("clause `proc.tty` was false"),
            "{:?}",
            r[1].failures
        );
        assert!(!r[2].passed);
        let all = r[2].failures.join("\n");
        assert!(
            all.contains("names rule `Nope`, which does not exist"),
            "{all}"
        );
        assert!(
            all.contains("event type `open` is not one of the rule's events (exec)"),
            "{all}"
        );
    }

    #[test]
    fn coverage_counts_cases_and_clauses_both_ways() {
        let rules = Arc::new(
            RuleSet::from_sources(&[(
                "r.yaml".into(),
                "- rule: R\n  events: [exec]\n  condition: proc.name == \"sh\" && proc.tty && proc.uid == 0\n  output: o\n  priority: info\n- rule: S\n  events: [open]\n  condition: file.path == \"/x\"\n  output: o\n  priority: info\n".into(),
            )])
            .unwrap(),
        );
        let cases = parse_cases(
            "t.yaml",
            "- name: hit\n  event: {evt.type: exec, proc.name: sh, proc.tty: true, proc.uid: 0}\n  expect: [R]\n- name: miss\n  event: {evt.type: exec, proc.name: ls, proc.tty: true, proc.uid: 0}\n  expect_count: {R: 0}\n",
        )
        .cases;
        let cov = coverage(&rules, &cases);
        let r = &cov[0];
        assert_eq!((r.name.as_str(), r.positive, r.negative), ("R", 1, 1));
        let both: Vec<(&str, bool, bool)> = r
            .clauses
            .iter()
            .map(|c| (c.text.as_str(), c.made_true, c.made_false))
            .collect();
        assert_eq!(
            both,
            [
                ("proc.name == \"sh\"", true, true),
                ("proc.tty", true, false),
                ("proc.uid == 0", true, false)
            ]
        );
        assert_eq!(r.both_ways(), 1);
        // No case at all for S, and no event of its type.
        let s = &cov[1];
        assert_eq!((s.positive, s.negative, s.both_ways()), (0, 0, 0));
        assert!(!s.clauses[0].made_true && !s.clauses[0].made_false);
    }
}
