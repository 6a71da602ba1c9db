//! Rule test cases (`vigil test`): a YAML list of cases, each an event (or a
//! sequence of events) and the rules expected to fire or not.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::error::{LoadErrors, Location};
use crate::event::Event;
use crate::ruleset::RuleSet;

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

/// Read a test-case file.
pub fn load_cases(path: &Path) -> Result<Vec<TestCase>, LoadErrors> {
    let _ = path;
    Err(LoadErrors::single(
        Location::default(),
        None,
        "not implemented yet",
    ))
}

/// Run cases, each with a fresh evaluator.
pub fn run_cases(rules: &Arc<RuleSet>, cases: &[TestCase]) -> Vec<CaseResult> {
    let _ = (rules, cases);
    Vec::new()
}
