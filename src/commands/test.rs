//! `vigil test PATH... [--cases FILE]...`: load PATHs as the rule set (like
//! `validate`), run the test cases of `<dir>/tests/*.yaml` for each directory
//! PATH plus every `--cases FILE`, report each failing case (file, case,
//! event, rule and why), and end with `N passed, N failed`. Exit 0 iff all pass.
//! A directory's benign corpus (`tests/benign/*.jsonl[.gz]`, see [`corpus`])
//! is replayed too: each file is one case, failed by any alert of priority
//! warning or above.

mod corpus;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use vigil_engine::{load_cases, run_cases, RuleSet};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Rule files or directories (a directory's tests/*.yaml hold its cases).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// A test-case file to run as well; repeatable.
    #[arg(long = "cases", value_name = "FILE")]
    pub cases: Vec<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rs = match RuleSet::load(&args.paths) {
        Ok(rs) => Arc::new(rs),
        Err(errs) => {
            for e in errs.iter() {
                eprintln!("{e}");
            }
            println!("rules failed to load ({} error(s))", errs.len());
            println!("0 passed, 0 failed");
            return Ok(ExitCode::from(1));
        }
    };
    for w in rs.warnings() {
        eprintln!("{w}");
    }
    let mut files = Vec::new();
    for p in &args.paths {
        let p = crate::reload::fs_path(p);
        let dir = p.join("tests");
        if p.is_dir() && dir.is_dir() {
            files.extend(vigil_engine::rules::list_dir(&dir)?);
        }
    }
    files.extend(args.cases.iter().cloned());
    if files.is_empty() {
        eprintln!("no test cases found (looked in <dir>/tests/*.yaml; add --cases FILE)");
    }
    let (mut passed, mut failed) = (0usize, 0usize);
    for f in &files {
        let cases = match load_cases(f) {
            Ok(c) => c,
            Err(errs) => {
                for e in errs.iter() {
                    println!("FAIL {e}");
                }
                failed += errs.len();
                continue;
            }
        };
        for r in run_cases(&rs, &cases) {
            if r.passed {
                passed += 1;
            } else {
                failed += 1;
                println!("FAIL {}: case `{}`", r.loc, r.name);
                for why in &r.failures {
                    println!("    {why}");
                }
            }
        }
    }
    let mut benign = Vec::new();
    for p in args.paths.iter().map(|p| crate::reload::fs_path(p)) {
        if p.is_dir() {
            benign.extend(corpus::files(p)?);
        }
    }
    if !benign.is_empty() {
        let report = corpus::replay(&rs, &benign)?;
        for f in &report.failures {
            println!("{f}");
        }
        println!("{}", report.summary());
        passed += report.files_passed;
        failed += report.files_failed;
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
