//! `vigil test PATH... [--cases FILE]...`: load PATHs as the rule set (like
//! `validate`), run the test cases of `<dir>/tests/*.yaml` for each directory
//! PATH plus every `--cases FILE`, and report each case (file, case, event,
//! rule and why it failed) as text, JSON or JUnit XML ([`report`]).
//! A directory's benign corpus (`tests/benign/*.jsonl[.gz]`, see [`corpus`])
//! is replayed too: each file is one case, failed by any alert of priority
//! warning or above. `--coverage` adds which rules lack a positive or a
//! negative case and how many of each rule's clauses the cases made both
//! true and false; `--require-coverage` fails a rule without a positive case.
//!
//! Exit status: 0 every case passed; 1 a case failed (or the coverage
//! requirement); 2 a rule or case file could not be read or parsed, or no
//! case was found (without `--allow-empty`). An invalid case is an error of
//! its file; the file's other cases still run.

pub(crate) mod corpus;
mod report;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use vigil_engine::{coverage, load_cases, run_cases, Location, RuleSet};

use report::{CaseOutcome, Outcome, Status, Suite};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Rule files or directories (a directory's tests/*.yaml hold its cases).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// A test-case file to run as well; repeatable.
    #[arg(long = "cases", value_name = "FILE")]
    pub cases: Vec<PathBuf>,
    /// Report format: text, json (documented in engine/README.md) or junit
    /// (JUnit XML: one testsuite per case file, one testcase per case).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write the report to FILE (the text report still goes to stdout).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Finding no case at all is not an error.
    #[arg(long)]
    pub allow_empty: bool,
    /// Report coverage: rules without a positive or a negative case, and the
    /// share of each rule's clauses the cases made both true and false.
    #[arg(long)]
    pub coverage: bool,
    /// Fail when an enabled rule has no positive case (implies --coverage).
    #[arg(long)]
    pub require_coverage: bool,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Junit,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let outcome = match RuleSet::load(&args.paths) {
        Ok(rs) => run_all(&args, Arc::new(rs))?,
        Err(errs) => Outcome {
            rule_errors: errs.0,
            ..Outcome::default()
        },
    };
    let text = report::text(&outcome);
    match (args.format, &args.output) {
        (Format::Text, out) => {
            crate::commands::formats::write_report(out.as_deref(), &text)?;
            if out.is_some() {
                print!("{text}");
            }
        }
        (f, out) => {
            let body = if f == Format::Json {
                report::json(&outcome)
            } else {
                report::junit(&outcome)
            };
            crate::commands::formats::write_report(out.as_deref(), &body)?;
            if out.is_some() {
                print!("{text}");
            }
        }
    }
    Ok(ExitCode::from(outcome.exit_status()))
}

/// Every case of every case file, the benign corpus and, when asked, the
/// coverage.
fn run_all(args: &Args, rs: Arc<RuleSet>) -> anyhow::Result<Outcome> {
    let mut out = Outcome {
        warnings: rs.warnings().to_vec(),
        ..Outcome::default()
    };
    let mut files = Vec::new();
    for p in &args.paths {
        let dir = p.join("tests");
        if p.is_dir() && dir.is_dir() {
            files.extend(vigil_engine::rules::list_dir(&dir)?);
        }
    }
    files.extend(args.cases.iter().cloned());
    let mut all_cases = Vec::new();
    for f in &files {
        let file = load_cases(f);
        let mut suite = Suite {
            name: file.name.clone(),
            errors: file.errors.clone(),
            cases: Vec::new(),
        };
        // Valid and invalid cases in file order.
        let mut results: Vec<(usize, CaseOutcome)> = run_cases(&rs, &file.cases)
            .into_iter()
            .map(|r| {
                let status = if r.passed {
                    Status::Passed
                } else {
                    Status::Failed
                };
                let outcome = CaseOutcome {
                    name: r.name,
                    loc: r.loc,
                    status,
                    messages: r.failures,
                    errors: Vec::new(),
                    seconds: r.elapsed.as_secs_f64(),
                };
                (outcome.loc.line, outcome)
            })
            .collect();
        results.extend(file.invalid.iter().map(|c| {
            let outcome = CaseOutcome {
                name: c.name.clone(),
                loc: c.loc.clone(),
                status: Status::Error,
                messages: c.errors.iter().map(|e| e.to_string()).collect(),
                errors: c.errors.clone(),
                seconds: 0.0,
            };
            (outcome.loc.line, outcome)
        }));
        results.sort_by_key(|(line, _)| *line);
        suite.cases = results.into_iter().map(|(_, c)| c).collect();
        out.suites.push(suite);
        all_cases.extend(file.cases);
    }
    let mut benign = Vec::new();
    for p in args.paths.iter().filter(|p| p.is_dir()) {
        benign.extend(corpus::files(p)?);
    }
    if !benign.is_empty() {
        let corpus = corpus::replay(&rs, &benign)?;
        out.suites.push(Suite {
            name: "benign corpus".into(),
            errors: Vec::new(),
            cases: corpus
                .files
                .iter()
                .map(|f| CaseOutcome {
                    name: f.name.clone(),
                    loc: Location {
                        file: f.name.clone(),
                        line: 0,
                        col: 0,
                    },
                    status: if f.failures.is_empty() {
                        Status::Passed
                    } else {
                        Status::Failed
                    },
                    messages: f.failures.clone(),
                    errors: Vec::new(),
                    seconds: f.elapsed.as_secs_f64(),
                })
                .collect(),
        });
        out.corpus_summary = Some(corpus.summary());
    }
    if args.coverage || args.require_coverage {
        out.coverage = Some(coverage(&rs, &all_cases));
        out.require_coverage = args.require_coverage;
    }
    if out
        .suites
        .iter()
        .all(|s| s.cases.is_empty() && s.errors.is_empty())
        && !args.allow_empty
    {
        out.empty_error = Some(
            "no test cases found (looked in <dir>/tests/*.yaml and <dir>/tests/benign/; add --cases FILE, or --allow-empty)".into(),
        );
    }
    Ok(out)
}
