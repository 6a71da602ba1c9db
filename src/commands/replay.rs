//! `vigil replay FILE.jsonl --rules PATH... [--json]`: evaluate recorded
//! flat-JSON events (one per line; `-` reads stdin) with the daemon's loader
//! and evaluator; alerts go to stdout (text `<time> <Priority>: <output>`, or
//! the JSON alert with `--json`). Malformed lines are reported on stderr with
//! their line number and skipped. A summary goes to stderr.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use vigil_engine::{Evaluator, Event, RuleSet};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// JSONL file of events (`-` for stdin).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub rules: crate::RulesArg,
    /// Write alerts as JSON lines (Falco's keys).
    #[arg(long)]
    pub json: bool,
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
    for w in rs.warnings() {
        eprintln!("{w}");
    }
    let name = args.file.display().to_string();
    let input: Box<dyn BufRead> = if name == "-" {
        Box::new(BufReader::new(std::io::stdin().lock()))
    } else {
        let f = std::fs::File::open(&args.file).with_context(|| format!("cannot read {name}"))?;
        Box::new(BufReader::new(f))
    };
    let hostname = vigil_engine::ruleset::hostname();
    let mut ev = Evaluator::new(rs.clone(), &hostname);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut alerts = Vec::new();
    let (mut events, mut bad, mut n_alerts) = (0u64, 0u64, 0u64);
    let mut per_rule: BTreeMap<String, u64> = BTreeMap::new();
    for (i, line) in input.lines().enumerate() {
        let line = line.with_context(|| format!("reading {name}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Result<Event, String> = serde_json::from_str::<serde_json::Value>(&line)
            .map_err(|e| e.to_string())
            .and_then(|v| {
                v.as_object()
                    .ok_or_else(|| "expected a JSON object".to_string())
                    .and_then(|o| Event::from_flat_json(o).map_err(|e| e.to_string()))
            });
        let e = match parsed {
            Ok(e) => e,
            Err(msg) => {
                eprintln!("{name}:{}: skipped: {msg}", i + 1);
                bad += 1;
                continue;
            }
        };
        events += 1;
        alerts.clear();
        ev.evaluate(&e, &mut alerts);
        for a in &alerts {
            n_alerts += 1;
            *per_rule.entry(a.rule.to_string()).or_default() += 1;
            if args.json {
                writeln!(out, "{}", a.to_json_line())?;
            } else {
                writeln!(out, "{}", a.to_text_line())?;
            }
        }
    }
    out.flush()?;
    let st = ev.stats();
    eprintln!(
        "{events} events, {n_alerts} alerts, {bad} malformed lines skipped, {} rule evaluations",
        st.rules_evaluated
    );
    for (r, n) in &per_rule {
        eprintln!("  {n:>8}  {r}");
    }
    for (r, n) in &st.errors {
        eprintln!("  {n:>8}  evaluation errors in {r}");
    }
    Ok(ExitCode::SUCCESS)
}
