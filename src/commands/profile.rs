//! `vigil profile --rules PATH... CAPTURE.jsonl[.gz]`: which rules are slow.
//! The recorded events (as `vigil record` writes them, `-` for stdin) are
//! evaluated against each enabled rule alone
//! ([`vigil_engine::ruleset::profile`]), and the rules are listed slowest
//! first: events of its types, matches, total and per-event evaluation time,
//! native or Rhai, and the share of its events its own kernel-filter term
//! would let through. A table, or `--format json`.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use serde_json::json;
use vigil_engine::ruleset::profile::{Profiler, RuleProfile};
use vigil_engine::RuleSet;

use crate::commands::replay::{next_line, parse_line, MAX_LINE};

/// Events held in memory at once (each batch is run rule by rule).
const BATCH: usize = 20_000;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Recorded events, one flat-JSON object per line (`.gz` is
    /// decompressed; `-` reads stdin).
    #[arg(value_name = "CAPTURE")]
    pub capture: PathBuf,
    #[command(flatten)]
    pub rules: crate::RulesArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// List only the N slowest rules.
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !args.rules.rules.is_empty(),
        "give at least one --rules PATH"
    );
    let rs = match RuleSet::load(&args.rules.rules) {
        Ok(rs) => Arc::new(rs),
        Err(errs) => {
            for e in errs.iter() {
                eprintln!("{e}");
            }
            eprintln!("{} error(s); rules not loaded", errs.len());
            return Ok(ExitCode::from(1));
        }
    };
    let name = args.capture.display().to_string();
    let mut input: Box<dyn BufRead> = if name == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin().lock()))
    } else {
        crate::commands::test::corpus::open(&args.capture)?
    };
    let mut profiler = Profiler::new(rs);
    let (mut events, mut skipped) = (0u64, 0u64);
    let mut batch = Vec::with_capacity(BATCH);
    let mut buf = Vec::new();
    for i in 1.. {
        let line = match next_line(&mut input, &mut buf, MAX_LINE)
            .with_context(|| format!("reading {name} at line {i}"))?
        {
            None => break,
            Some(Ok(l)) if l.trim().is_empty() => continue,
            Some(Ok(l)) => l,
            Some(Err(why)) => {
                eprintln!("{name}:{i}: skipped: {why}");
                skipped += 1;
                continue;
            }
        };
        match parse_line(&line) {
            Ok(e) => batch.push(e),
            Err(why) => {
                eprintln!("{name}:{i}: skipped: {why}");
                skipped += 1;
                continue;
            }
        }
        events += 1;
        if batch.len() == BATCH {
            profiler.observe(&batch);
            batch.clear();
        }
    }
    profiler.observe(&batch);
    let mut rules = profiler.finish();
    if let Some(n) = args.top {
        rules.truncate(n);
    }
    match args.format {
        Format::Text => print!("{}", table(&rules, events, skipped)),
        Format::Json => {
            let v = json!({
                "format": "vigil-profile/1",
                "capture": name,
                "events": events,
                "skipped_lines": skipped,
                "rules": rules.iter().map(|r| json!({
                    "name": r.name,
                    "path": if r.native { "native" } else { "rhai" },
                    "events": r.events,
                    "matches": r.matches,
                    "errors": r.errors,
                    "total_ns": r.total.as_nanos() as u64,
                    "ns_per_event": r.ns_per_event(),
                    "kernel_term": r.kernel_term,
                    "kernel_passed": r.kernel_passed,
                })).collect::<Vec<_>>(),
            });
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The table, slowest first, then a summary line.
fn table(rules: &[RuleProfile], events: u64, skipped: u64) -> String {
    let mut s = format!(
        "{:>10} {:>9} {:>9} {:>8} {:>6} {:>7}  rule\n",
        "total ms", "ns/event", "events", "matches", "path", "kernel"
    );
    for r in rules {
        let kernel = if !r.kernel_term {
            "all".to_string()
        } else if r.events == 0 {
            "-".to_string()
        } else {
            format!("{:.0}%", r.kernel_passed as f64 * 100.0 / r.events as f64)
        };
        s.push_str(&format!(
            "{:>10.3} {:>9.0} {:>9} {:>8} {:>6} {:>7}  {}{}\n",
            r.total.as_secs_f64() * 1e3,
            r.ns_per_event(),
            r.events,
            r.matches,
            if r.native { "native" } else { "rhai" },
            kernel,
            r.name,
            if r.errors > 0 {
                format!(" ({} evaluation errors)", r.errors)
            } else {
                String::new()
            }
        ));
    }
    let total: f64 = rules.iter().map(|r| r.total.as_secs_f64()).sum();
    s.push_str(&format!(
        "{} rule(s) on {events} events ({skipped} lines skipped); {:.3} ms evaluating them. kernel: the share of the rule's events its own kernel-filter term lets through (all: it forces pass-all)\n",
        rules.len(),
        total * 1e3
    ));
    s
}
