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

use crate::error::{Diag, LoadErrors, Location};
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

/// Read a test-case file (a YAML list of cases).
pub fn load_cases(path: &Path) -> Result<Vec<TestCase>, LoadErrors> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        LoadErrors::single(
            Location {
                file: name.clone(),
                line: 0,
                col: 0,
            },
            None,
            format!("cannot read: {e}"),
        )
    })?;
    parse_cases(&name, &text)
}

/// Parse test cases from text (`name` is used in locations).
pub fn parse_cases(name: &str, text: &str) -> Result<Vec<TestCase>, LoadErrors> {
    let lines = SrcLines::new(name, text);
    let mut diag = Diag::default();
    let value: Value = serde_yaml_ng::from_str(text).map_err(|e| {
        let (l, c) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        LoadErrors::single(lines.loc(l, c), None, format!("YAML syntax error: {e}"))
    })?;
    let items = match value {
        Value::Sequence(s) => s,
        Value::Null => Vec::new(),
        _ => {
            return Err(LoadErrors::single(
                lines.loc(1, 1),
                None,
                "a test file must be a YAML list of cases",
            ))
        }
    };
    let starts = lines.item_lines();
    let aligned = starts.len() == items.len();
    let mut out: Vec<TestCase> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let loc = if aligned {
            lines.loc(starts[i], 1)
        } else {
            lines.loc(0, 0)
        };
        let Value::Mapping(m) = item else {
            diag.err(
                &loc,
                None,
                "each case must be a mapping with `name` and `event`/`events`",
            );
            continue;
        };
        let Some(cname) = m.get("name").and_then(Value::as_str).map(str::to_string) else {
            diag.err(&loc, None, "case needs a `name`");
            continue;
        };
        let label = format!("case `{cname}`");
        let l = Some(label.as_str());
        let mut ok = true;
        for k in m.keys() {
            let ks = k.as_str().unwrap_or("");
            if !CASE_KEYS.contains(&ks) {
                diag.err(
                    &loc,
                    l,
                    format!(
                        "unknown key `{ks}` (expected one of: {})",
                        CASE_KEYS.join(", ")
                    ),
                );
                ok = false;
            }
        }
        if out.iter().any(|c| c.name == cname) {
            diag.err(&loc, l, "duplicate case name in this file");
            ok = false;
        }
        let raw: Vec<Value> = match (m.get("event"), m.get("events")) {
            (Some(e), None) => vec![e.clone()],
            (None, Some(Value::Sequence(s))) if !s.is_empty() => s.clone(),
            (None, Some(_)) => {
                diag.err(&loc, l, "`events` must be a non-empty list of events");
                continue;
            }
            (Some(_), Some(_)) => {
                diag.err(&loc, l, "give `event` or `events`, not both");
                continue;
            }
            (None, None) => {
                diag.err(&loc, l, "case needs `event` or `events`");
                continue;
            }
        };
        let mut events = Vec::new();
        let mut raw_events = Vec::new();
        for (k, r) in raw.iter().enumerate() {
            let json: serde_json::Value = match serde_json::to_value(r) {
                Ok(j) => j,
                Err(e) => {
                    diag.err(&loc, l, format!("event {}: {e}", k + 1));
                    ok = false;
                    continue;
                }
            };
            let Some(obj) = json.as_object() else {
                diag.err(
                    &loc,
                    l,
                    format!("event {} must be a mapping of fields", k + 1),
                );
                ok = false;
                continue;
            };
            match Event::from_flat_json(obj) {
                Ok(ev) => events.push(ev),
                Err(e) => {
                    let at = match &e {
                        crate::fields::EventError::UnknownField { field, .. }
                        | crate::fields::EventError::NotOnType { field, .. }
                        | crate::fields::EventError::BadValue { field, .. } => {
                            lines.find_from(&loc, field)
                        }
                        _ => loc.clone(),
                    };
                    diag.err(&at, l, format!("event {}: {e}", k + 1));
                    ok = false;
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
                    diag.err(&loc, l, format!("`{key}` must be a list of rule names"));
                    ok = false;
                    lists.push(Vec::new());
                }
            }
        }
        let mut expect_count = BTreeMap::new();
        match m.get("expect_count") {
            None => {}
            Some(Value::Mapping(cm)) => {
                for (k, v) in cm {
                    match (k.as_str(), v.as_u64()) {
                        (Some(k), Some(n)) => {
                            expect_count.insert(k.to_string(), n);
                        }
                        _ => {
                            diag.err(&loc, l, "`expect_count` maps rule names to counts");
                            ok = false;
                        }
                    }
                }
            }
            Some(_) => {
                diag.err(&loc, l, "`expect_count` maps rule names to counts");
                ok = false;
            }
        }
        let expect_not = lists.pop().unwrap_or_default();
        let expect = lists.pop().unwrap_or_default();
        if expect.is_empty() && expect_not.is_empty() && expect_count.is_empty() {
            diag.err(
                &loc,
                l,
                "case expects nothing: give `expect`, `expect_not` or `expect_count`",
            );
            ok = false;
        }
        if ok {
            out.push(TestCase {
                name: cname,
                loc,
                events,
                raw_events,
                expect,
                expect_not,
                expect_count,
            });
        }
    }
    if diag.errors.is_empty() {
        Ok(out)
    } else {
        Err(LoadErrors(diag.errors))
    }
}

/// Run cases, each with a fresh evaluator.
pub fn run_cases(rules: &Arc<RuleSet>, cases: &[TestCase]) -> Vec<CaseResult> {
    cases.iter().map(|c| run_case(rules, c)).collect()
}

fn run_case(rules: &Arc<RuleSet>, c: &TestCase) -> CaseResult {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_errors_name_file_line_and_case() {
        let e = parse_cases(
            "t.yaml",
            "- name: a\n  event: {evt.type: exec, proc.nmae: sh}\n  expect: [R]\n- name: b\n  events: []\n  expect: [R]\n- name: c\n  event: {evt.type: exec}\n  expected: [R]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("t.yaml:2:27: case `a`: event 1: unknown field `proc.nmae` (did you mean `proc.name`?)"), "{e}");
        assert!(
            e.contains("t.yaml:4:1: case `b`: `events` must be a non-empty list"),
            "{e}"
        );
        assert!(
            e.contains("t.yaml:7:1: case `c`: unknown key `expected`"),
            "{e}"
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
        .unwrap();
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
}
