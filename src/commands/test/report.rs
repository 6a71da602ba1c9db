//! The results of a `vigil test` run ([`Outcome`]) and its three renderings:
//! [`text`] for people, [`json`] for scripts (its shape is documented in
//! engine/README.md, "Test and validate reports") and [`junit`] for CI
//! systems: one `<testsuite>` per case file (plus the benign corpus, the
//! coverage requirement and a rule set that failed to load), one
//! `<testcase>` per case, the failing clause in the failure's message.

use std::fmt::Write as _;

use serde_json::{json, Value};
use vigil_engine::{LoadError, LoadWarning, Location, RuleCoverage};

use crate::commands::formats::{error_json, warning_json, xml_escape};

/// How one case ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Passed,
    /// It ran and an expectation did not hold.
    Failed,
    /// It could not be read, so it did not run.
    Error,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Error => "error",
        }
    }
}

/// One case (or one benign corpus file).
#[derive(Clone, Debug)]
pub struct CaseOutcome {
    pub name: String,
    pub loc: Location,
    pub status: Status,
    /// Why it failed, or its errors as text; empty when passed.
    pub messages: Vec<String>,
    /// Its read errors (status `Error`).
    pub errors: Vec<LoadError>,
    pub seconds: f64,
}

/// One case file, or the benign corpus.
#[derive(Clone, Debug)]
pub struct Suite {
    pub name: String,
    /// Errors of the file as a whole: none of its cases could be read.
    pub errors: Vec<LoadError>,
    pub cases: Vec<CaseOutcome>,
}

/// Everything a run found.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// The rule set did not load: no case ran.
    pub rule_errors: Vec<LoadError>,
    pub warnings: Vec<LoadWarning>,
    pub suites: Vec<Suite>,
    /// The benign corpus' summary line.
    pub corpus_summary: Option<String>,
    pub coverage: Option<Vec<RuleCoverage>>,
    /// A rule without a positive case fails the run.
    pub require_coverage: bool,
    /// No case found (and `--allow-empty` not given).
    pub empty_error: Option<String>,
}

impl Outcome {
    fn count(&self, status: Status) -> usize {
        self.suites
            .iter()
            .flat_map(|s| &s.cases)
            .filter(|c| c.status == status)
            .count()
    }

    /// Files that could not be read or parsed, invalid cases, rule errors.
    fn errors(&self) -> usize {
        self.count(Status::Error)
            + self.suites.iter().filter(|s| !s.errors.is_empty()).count()
            + usize::from(!self.rule_errors.is_empty())
    }

    /// Enabled rules without a positive case, when coverage is required.
    fn uncovered(&self) -> Vec<&str> {
        match (&self.coverage, self.require_coverage) {
            (Some(cov), true) => cov
                .iter()
                .filter(|r| r.enabled && r.positive == 0)
                .map(|r| r.name.as_str())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// 2: something could not be read or parsed, or nothing was found;
    /// 1: a case failed, or a rule lacks its required positive case; 0.
    pub fn exit_status(&self) -> u8 {
        if self.errors() > 0 || self.empty_error.is_some() {
            2
        } else if self.count(Status::Failed) > 0 || !self.uncovered().is_empty() {
            1
        } else {
            0
        }
    }

    /// `N passed, N failed` (`, N error(s)` when there are any).
    fn summary(&self) -> String {
        let mut s = format!(
            "{} passed, {} failed",
            self.count(Status::Passed),
            self.count(Status::Failed) + self.uncovered().len()
        );
        match self.errors() {
            0 => {}
            n => write!(s, ", {n} error(s)").unwrap_or_default(),
        }
        s
    }
}

/// `file:line:col: message` of an error whose item is named elsewhere.
fn at(e: &LoadError) -> String {
    format!("{}: {}", e.loc, e.msg)
}

/// The text report: each failing or invalid case with why, the corpus
/// summary, the coverage, then `N passed, N failed[, N error(s)]`.
pub fn text(o: &Outcome) -> String {
    let mut s = String::new();
    for w in &o.warnings {
        let _ = writeln!(s, "{w}");
    }
    if !o.rule_errors.is_empty() {
        for e in &o.rule_errors {
            let _ = writeln!(s, "ERROR {e}");
        }
        let _ = writeln!(s, "rules failed to load ({} error(s))", o.rule_errors.len());
    }
    for suite in &o.suites {
        for e in &suite.errors {
            let _ = writeln!(s, "ERROR {e} (no case of this file ran)");
        }
        for c in &suite.cases {
            match c.status {
                Status::Passed => {}
                Status::Failed if c.loc.line == 0 => {
                    // A corpus file: its lines name themselves.
                    for m in &c.messages {
                        let _ = writeln!(s, "{m}");
                    }
                }
                Status::Failed => {
                    let _ = writeln!(s, "FAIL {}: case `{}`", c.loc, c.name);
                    for m in &c.messages {
                        let _ = writeln!(s, "    {m}");
                    }
                }
                Status::Error => {
                    let _ = writeln!(s, "ERROR {}: case `{}` (not run):", c.loc, c.name);
                    for e in &c.errors {
                        let _ = writeln!(s, "    {}", at(e));
                    }
                }
            }
        }
    }
    if let Some(c) = &o.corpus_summary {
        let _ = writeln!(s, "{c}");
    }
    if let Some(cov) = &o.coverage {
        s.push_str(&coverage_text(cov));
    }
    for r in o.uncovered() {
        let _ = writeln!(s, "FAIL coverage: rule `{r}` has no positive case");
    }
    if let Some(e) = &o.empty_error {
        let _ = writeln!(s, "ERROR {e}");
    }
    let _ = writeln!(s, "{}", o.summary());
    s
}

fn coverage_text(cov: &[RuleCoverage]) -> String {
    let mut s = String::new();
    let enabled: Vec<&RuleCoverage> = cov.iter().filter(|r| r.enabled).collect();
    let no_pos: Vec<&str> = enabled
        .iter()
        .filter(|r| r.positive == 0)
        .map(|r| r.name.as_str())
        .collect();
    let no_neg: Vec<&str> = enabled
        .iter()
        .filter(|r| r.negative == 0)
        .map(|r| r.name.as_str())
        .collect();
    let clauses: usize = enabled.iter().map(|r| r.clauses.len()).sum();
    let both: usize = enabled.iter().map(|r| r.both_ways()).sum();
    let _ = writeln!(
        s,
        "coverage per rule (clauses some case made both true and false; positive and negative cases):"
    );
    let _ = writeln!(
        s,
        "  {:>7} {:>5} {:>5} {:>5}  rule",
        "clauses", "share", "pos", "neg"
    );
    for r in &enabled {
        let _ = writeln!(
            s,
            "  {:>7} {:>4}% {:>5} {:>5}  {}",
            format!("{}/{}", r.both_ways(), r.clauses.len()),
            (r.share() * 100.0).round(),
            r.positive,
            r.negative,
            r.name
        );
    }
    let list = |v: &[&str]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let _ = writeln!(s, "rules without a positive case: {}", list(&no_pos));
    let _ = writeln!(s, "rules without a negative case: {}", list(&no_neg));
    let _ = writeln!(
        s,
        "coverage: {} enabled rule(s); {} without a positive case, {} without a negative case; {both} of {clauses} clauses made both true and false ({:.0}%)",
        enabled.len(),
        no_pos.len(),
        no_neg.len(),
        if clauses == 0 { 0.0 } else { both as f64 * 100.0 / clauses as f64 }
    );
    s
}

fn coverage_json(cov: &[RuleCoverage]) -> Value {
    let names = |f: &dyn Fn(&RuleCoverage) -> bool| -> Vec<&str> {
        cov.iter()
            .filter(|r| r.enabled && f(r))
            .map(|r| r.name.as_str())
            .collect()
    };
    json!({
        "rules": cov.iter().map(|r| json!({
            "name": r.name,
            "enabled": r.enabled,
            "positive": r.positive,
            "negative": r.negative,
            "clauses": r.clauses.iter().map(|c| json!({
                "text": c.text,
                "made_true": c.made_true,
                "made_false": c.made_false,
            })).collect::<Vec<_>>(),
            "both_ways": r.both_ways(),
            "share": r.share(),
        })).collect::<Vec<_>>(),
        "without_positive": names(&|r| r.positive == 0),
        "without_negative": names(&|r| r.negative == 0),
    })
}

/// The JSON report (`"format": "vigil-test/1"`).
pub fn json(o: &Outcome) -> String {
    let suites: Vec<Value> = o
        .suites
        .iter()
        .map(|s| {
            json!({
                "name": s.name,
                "errors": s.errors.iter().map(error_json).collect::<Vec<_>>(),
                "cases": s.cases.iter().map(|c| json!({
                    "name": c.name,
                    "file": c.loc.file,
                    "line": c.loc.line,
                    "col": c.loc.col,
                    "status": c.status.as_str(),
                    "messages": c.messages,
                    "errors": c.errors.iter().map(error_json).collect::<Vec<_>>(),
                    "seconds": c.seconds,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let v = json!({
        "format": "vigil-test/1",
        "passed": o.count(Status::Passed),
        "failed": o.count(Status::Failed),
        "errors": o.errors(),
        "exit_status": o.exit_status(),
        "rule_errors": o.rule_errors.iter().map(error_json).collect::<Vec<_>>(),
        "warnings": o.warnings.iter().map(warning_json).collect::<Vec<_>>(),
        "suites": suites,
        "benign_corpus": o.corpus_summary,
        "coverage": o.coverage.as_deref().map(coverage_json),
        "uncovered": o.uncovered(),
        "empty_error": o.empty_error,
    });
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}

/// One JUnit `<testcase>`.
struct JCase<'a> {
    name: &'a str,
    classname: &'a str,
    loc: Option<&'a Location>,
    seconds: f64,
    /// `("failure" | "error", message, body)`.
    problem: Option<(&'static str, String, String)>,
}

fn junit_suite(out: &mut String, name: &str, cases: &[JCase<'_>]) {
    let failures = cases
        .iter()
        .filter(|c| matches!(c.problem, Some(("failure", ..))))
        .count();
    let errors = cases
        .iter()
        .filter(|c| matches!(c.problem, Some(("error", ..))))
        .count();
    let time: f64 = cases.iter().map(|c| c.seconds).sum();
    let _ = writeln!(
        out,
        r#"  <testsuite name="{}" tests="{}" failures="{failures}" errors="{errors}" skipped="0" time="{time:.6}">"#,
        xml_escape(name),
        cases.len()
    );
    for c in cases {
        let mut attrs = format!(
            r#"name="{}" classname="{}" time="{:.6}""#,
            xml_escape(c.name),
            xml_escape(c.classname),
            c.seconds
        );
        if let Some(l) = c.loc.filter(|l| l.line > 0) {
            let _ = write!(
                attrs,
                r#" file="{}" line="{}""#,
                xml_escape(&l.file),
                l.line
            );
        }
        match &c.problem {
            None => {
                let _ = writeln!(out, "    <testcase {attrs}/>");
            }
            Some((kind, message, body)) => {
                let _ = writeln!(out, "    <testcase {attrs}>");
                let _ = writeln!(
                    out,
                    r#"      <{kind} message="{}" type="{kind}">{}</{kind}>"#,
                    xml_escape(message),
                    xml_escape(body)
                );
                let _ = writeln!(out, "    </testcase>");
            }
        }
    }
    let _ = writeln!(out, "  </testsuite>");
}

/// The JUnit XML report.
pub fn junit(o: &Outcome) -> String {
    let mut body = String::new();
    let (mut tests, mut failures, mut errors, mut time) = (0usize, 0usize, 0usize, 0f64);
    let mut suite = |body: &mut String, name: &str, cases: &[JCase<'_>]| {
        tests += cases.len();
        for c in cases {
            match &c.problem {
                Some(("failure", ..)) => failures += 1,
                Some(_) => errors += 1,
                None => {}
            }
            time += c.seconds;
        }
        junit_suite(body, name, cases);
    };
    let joined = |v: &[LoadError]| {
        v.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    if !o.rule_errors.is_empty() {
        let msg = format!(
            "rules failed to load ({} error(s)): {}",
            o.rule_errors.len(),
            o.rule_errors[0]
        );
        let case = JCase {
            name: "load rules",
            classname: "rules",
            loc: None,
            seconds: 0.0,
            problem: Some(("error", msg, joined(&o.rule_errors))),
        };
        suite(&mut body, "rules", &[case]);
    }
    for s in &o.suites {
        let mut cases: Vec<JCase<'_>> = Vec::new();
        if !s.errors.is_empty() {
            cases.push(JCase {
                name: "(read the file)",
                classname: &s.name,
                loc: s.errors.first().map(|e| &e.loc),
                seconds: 0.0,
                problem: Some((
                    "error",
                    format!("{} (no case of this file ran)", s.errors[0]),
                    joined(&s.errors),
                )),
            });
        }
        for c in &s.cases {
            let problem = match c.status {
                Status::Passed => None,
                Status::Failed => Some((
                    "failure",
                    c.messages.first().cloned().unwrap_or_default(),
                    c.messages.join("\n"),
                )),
                Status::Error => Some((
                    "error",
                    c.messages.first().cloned().unwrap_or_default(),
                    c.messages.join("\n"),
                )),
            };
            cases.push(JCase {
                name: &c.name,
                classname: &s.name,
                loc: Some(&c.loc),
                seconds: c.seconds,
                problem,
            });
        }
        suite(&mut body, &s.name, &cases);
    }
    if let (Some(cov), true) = (&o.coverage, o.require_coverage) {
        let names: Vec<String> = cov
            .iter()
            .filter(|r| r.enabled)
            .map(|r| format!("positive case for `{}`", r.name))
            .collect();
        let cases: Vec<JCase<'_>> = cov
            .iter()
            .filter(|r| r.enabled)
            .zip(&names)
            .map(|(r, name)| JCase {
                name,
                classname: "coverage",
                loc: None,
                seconds: 0.0,
                problem: (r.positive == 0).then(|| {
                    let m = format!("rule `{}` has no positive case", r.name);
                    ("failure", m.clone(), m)
                }),
            })
            .collect();
        suite(&mut body, "coverage", &cases);
    }
    if let Some(e) = &o.empty_error {
        let case = JCase {
            name: "find test cases",
            classname: "cases",
            loc: None,
            seconds: 0.0,
            problem: Some(("error", e.clone(), e.clone())),
        };
        suite(&mut body, "cases", &[case]);
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"vigil test\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time:.6}\">\n{body}</testsuites>\n"
    )
}
