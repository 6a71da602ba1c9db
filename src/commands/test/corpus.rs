//! The benign corpus of `vigil test`: recordings of ordinary work
//! (`<dir>/tests/benign/*.jsonl`, or `*.jsonl.gz`, as `vigil record` writes
//! them) replayed through the rule set, one evaluator per file so threshold
//! rules see the whole stream. Every alert of priority warning or above is a
//! false positive and fails the file; lower priorities are only counted.
//! The report gives the corpus size: events and hours of activity (the span
//! of `evt.time` in each file, summed).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use vigil_engine::{Evaluator, Priority, RuleSet};

use crate::commands::replay::{next_line, parse_line, MAX_LINE};

/// False positives printed in full per file; the rest are counted per rule.
const SHOWN_PER_FILE: usize = 20;

/// What the corpus replay found.
#[derive(Debug, Default)]
pub struct Report {
    pub files_passed: usize,
    pub files_failed: usize,
    pub events: u64,
    /// Summed per-file span of event times, nanoseconds.
    pub span_ns: i128,
    /// Alerts below warning, per rule (allowed; shown for tuning).
    pub quiet: BTreeMap<String, u64>,
    /// One line per failure, ready to print.
    pub failures: Vec<String>,
    /// Per file, in order.
    pub files: Vec<FileOutcome>,
}

/// One corpus file's result (a case of its own in the reports).
#[derive(Debug)]
pub struct FileOutcome {
    pub name: String,
    /// Its failure lines (empty: passed).
    pub failures: Vec<String>,
    pub elapsed: std::time::Duration,
}

impl Report {
    /// `benign corpus: F files, N events, H hours of activity, ...`
    pub fn summary(&self) -> String {
        let quiet: u64 = self.quiet.values().sum();
        format!(
            "benign corpus: {} file(s), {} events, {:.2} hours of activity; {} file(s) with alerts of priority warning or above, {} lower-priority alert(s)",
            self.files_passed + self.files_failed,
            self.events,
            self.span_ns as f64 / 3.6e12,
            self.files_failed,
            quiet
        )
    }
}

/// The corpus files of a rule directory, in name order (none if it has no
/// `tests/benign/`).
pub fn files(rule_dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let dir = rule_dir.join("tests").join("benign");
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            (n.ends_with(".jsonl") || n.ends_with(".jsonl.gz")) && p.is_file()
        })
        .collect();
    v.sort();
    Ok(v)
}

/// Replays `files` through `rules`.
pub fn replay(rules: &Arc<RuleSet>, files: &[PathBuf]) -> anyhow::Result<Report> {
    let mut report = Report::default();
    for f in files {
        replay_file(rules, f, &mut report)?;
    }
    Ok(report)
}

/// A recording, gunzipped when its name ends in `.gz`.
pub(crate) fn open(path: &Path) -> anyhow::Result<Box<dyn BufRead>> {
    let f = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let r: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(f))
    } else {
        Box::new(f)
    };
    Ok(Box::new(BufReader::new(r)))
}

fn replay_file(rules: &Arc<RuleSet>, path: &Path, report: &mut Report) -> anyhow::Result<()> {
    let name = path.display().to_string();
    let start = std::time::Instant::now();
    let first_failure = report.failures.len();
    let mut input = open(path)?;
    let mut ev = Evaluator::new(rules.clone(), &vigil_engine::ruleset::hostname());
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    let mut alerts = Vec::new();
    let mut buf = Vec::new();
    let mut failures = 0usize;
    let mut per_rule: BTreeMap<String, u64> = BTreeMap::new();
    for i in 1.. {
        let line = match next_line(&mut input, &mut buf, MAX_LINE)
            .with_context(|| format!("reading {name} at line {i}"))?
        {
            None => break,
            Some(Ok(l)) if l.trim().is_empty() => continue,
            Some(Ok(l)) => l,
            Some(Err(why)) => {
                failures += 1;
                report.failures.push(format!("FAIL {name}:{i}: {why}"));
                continue;
            }
        };
        let e = match parse_line(&line) {
            Ok(e) => e,
            Err(why) => {
                failures += 1;
                report.failures.push(format!("FAIL {name}:{i}: {why}"));
                continue;
            }
        };
        report.events += 1;
        first = first.min(e.time);
        last = last.max(e.time);
        alerts.clear();
        ev.evaluate(&e, &mut alerts);
        for a in &alerts {
            if a.priority <= Priority::Warning {
                failures += 1;
                *per_rule.entry(a.rule.to_string()).or_default() += 1;
                if failures <= SHOWN_PER_FILE {
                    report.failures.push(format!(
                        "FAIL {name}:{i}: benign event raised `{}` ({:?}): {}",
                        a.rule, a.priority, a.output
                    ));
                }
            } else {
                *report.quiet.entry(a.rule.to_string()).or_default() += 1;
            }
        }
    }
    if failures > SHOWN_PER_FILE {
        for (rule, n) in &per_rule {
            report
                .failures
                .push(format!("FAIL {name}: `{rule}` fired {n} time(s) in all"));
        }
    }
    if first <= last {
        report.span_ns += i128::from(last) - i128::from(first);
    }
    if failures == 0 {
        report.files_passed += 1;
    } else {
        report.files_failed += 1;
    }
    report.files.push(FileOutcome {
        name,
        failures: report.failures[first_failure..].to_vec(),
        elapsed: start.elapsed(),
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const RULES: &str = r#"
- rule: Loud
  events: [exec]
  condition: proc.name == "evil"
  output: loud {proc.name}
  priority: warning
- rule: Quiet
  events: [exec]
  condition: proc.name == "meh"
  output: quiet
  priority: notice
"#;

    fn rules(dir: &Path) -> Arc<RuleSet> {
        let p = dir.join("r.yaml");
        std::fs::write(&p, RULES).unwrap();
        Arc::new(RuleSet::load(&[p]).unwrap())
    }

    fn line(name: &str, t: i64) -> String {
        format!(r#"{{"evt.type":"exec","evt.time":{t},"proc.name":"{name}"}}"#)
    }

    #[test]
    fn a_warning_fails_the_file_and_notices_are_counted() {
        let d = tempfile::tempdir().unwrap();
        let rs = rules(d.path());
        let bdir = d.path().join("tests/benign");
        std::fs::create_dir_all(&bdir).unwrap();
        let ok = [line("meh", 0), line("ls", 3_600_000_000_000)].join("\n");
        std::fs::write(bdir.join("a.jsonl"), ok).unwrap();
        let mut gz = flate2::write::GzEncoder::new(
            File::create(bdir.join("b.jsonl.gz")).unwrap(),
            flate2::Compression::default(),
        );
        writeln!(gz, "{}\n{}", line("ls", 0), line("evil", 1_800_000_000_000)).unwrap();
        gz.finish().unwrap();
        std::fs::write(bdir.join("notes.md"), "not a corpus file").unwrap();

        let fs = files(d.path()).unwrap();
        assert_eq!(fs.len(), 2, "{fs:?}");
        let r = replay(&rs, &fs).unwrap();
        assert_eq!((r.files_passed, r.files_failed, r.events), (1, 1, 4));
        assert_eq!(r.span_ns, 5_400_000_000_000);
        assert_eq!(r.quiet.get("Quiet"), Some(&1));
        assert_eq!(r.failures.len(), 1, "{:?}", r.failures);
        assert!(
            r.failures[0].contains("b.jsonl.gz:2") && r.failures[0].contains("`Loud`"),
            "{:?}",
            r.failures
        );
        assert!(
            r.summary().contains("4 events, 1.50 hours"),
            "{}",
            r.summary()
        );
    }

    #[test]
    fn a_malformed_line_fails_the_file() {
        let d = tempfile::tempdir().unwrap();
        let rs = rules(d.path());
        let bdir = d.path().join("tests/benign");
        std::fs::create_dir_all(&bdir).unwrap();
        std::fs::write(
            bdir.join("a.jsonl"),
            format!("{}\nnot json\n", line("ls", 0)),
        )
        .unwrap();
        let r = replay(&rs, &files(d.path()).unwrap()).unwrap();
        assert_eq!(r.files_failed, 1);
        assert!(r.failures[0].contains("a.jsonl:2"), "{:?}", r.failures);
    }
}
