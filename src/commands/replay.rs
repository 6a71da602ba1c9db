//! `vigil replay FILE.jsonl --rules PATH... [--json]`: evaluate recorded
//! flat-JSON events (one per line; `-` reads stdin) with the daemon's loader
//! and evaluator; alerts go to stdout (text `<time> <Priority>: <output>`, or
//! the JSON alert with `--json`). Malformed lines (bad JSON, not UTF-8, longer
//! than [`MAX_LINE`] bytes) are reported on stderr with their line number and
//! skipped; a line is never held in memory beyond that cap, even on input
//! without newlines. A summary goes to stderr.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use vigil_engine::{Evaluator, Event, RuleSet};

/// Longest input line replayed (a recorded event is a few KB); longer ones are skipped.
pub const MAX_LINE: usize = 1 << 20;

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
    let mut input = input;
    let mut buf = Vec::new();
    for i in 0.. {
        let line = match next_line(&mut input, &mut buf, MAX_LINE)
            .with_context(|| format!("reading {name} at line {}", i + 1))?
        {
            None => break,
            Some(Ok(line)) => line,
            Some(Err(msg)) => {
                eprintln!("{name}:{}: skipped: {msg}", i + 1);
                bad += 1;
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let e = match parse_line(&line) {
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

/// One recorded event: a flat-JSON object line.
pub(crate) fn parse_line(line: &str) -> Result<Event, String> {
    serde_json::from_str::<serde_json::Value>(line)
        .map_err(|e| e.to_string())
        .and_then(|v| {
            v.as_object()
                .ok_or_else(|| "expected a JSON object".to_string())
                .and_then(|o| Event::from_flat_json(o).map_err(|e| e.to_string()))
        })
}

/// The next `\n`-terminated line of `r` (without `\n` or `\r\n`; the last line
/// may lack the `\n`), holding at most `max` bytes of it in `buf`. `None` at the
/// end of the input; `Some(Err(why))` for a line that is skipped: longer than
/// `max` bytes (read to its end, not kept) or not UTF-8.
pub(crate) fn next_line(
    r: &mut dyn BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<Result<String, String>>> {
    buf.clear();
    let mut len = 0usize;
    let mut any = false;
    loop {
        let chunk = match r.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            break;
        }
        any = true;
        let newline = chunk.iter().position(|&b| b == b'\n');
        let part = &chunk[..newline.unwrap_or(chunk.len())];
        len += part.len();
        if len <= max {
            buf.extend_from_slice(part);
        } else {
            buf.clear();
        }
        let used = newline.map_or(chunk.len(), |i| i + 1);
        r.consume(used);
        if newline.is_some() {
            break;
        }
    }
    if !any {
        return Ok(None);
    }
    if len > max {
        return Ok(Some(Err(format!(
            "line longer than {max} bytes ({len} bytes up to the next newline or the end)"
        ))));
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(String::from_utf8(std::mem::take(buf)).map_err(|e| {
        format!(
            "not valid UTF-8 (invalid byte at column {})",
            e.utf8_error().valid_up_to() + 1
        )
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<Result<String, String>> {
        let mut r: &[u8] = input;
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while let Some(l) = next_line(&mut r, &mut buf, max).unwrap() {
            out.push(l);
            assert!(buf.capacity() <= 2 * max + 64, "buffer stays bounded");
        }
        out
    }

    #[test]
    fn splits_lines_like_bufread_lines() {
        assert_eq!(
            lines(b"a\r\nb\n\nc", 100),
            vec![
                Ok("a".into()),
                Ok("b".into()),
                Ok("".into()),
                Ok("c".into())
            ]
        );
        assert!(lines(b"", 100).is_empty());
    }

    #[test]
    fn non_utf8_line_is_an_error_and_the_next_line_reads() {
        let got = lines(b"ok\nbad \xff\xfe here\nnext\n", 100);
        assert_eq!(got[0], Ok("ok".into()));
        let e = got[1].clone().unwrap_err();
        assert!(
            e.contains("not valid UTF-8") && e.contains("column 5"),
            "{e}"
        );
        assert_eq!(got[2], Ok("next".into()));
    }

    #[test]
    fn over_long_line_is_skipped_without_being_kept() {
        // Through a small BufReader, so the long line spans many reads.
        let mut input = b"short\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 10_000));
        input.extend(b"\nafter\n");
        input.extend(std::iter::repeat_n(b'y', 5_000)); // no newline at the end
        let mut r = BufReader::with_capacity(64, &input[..]);
        let mut buf = Vec::new();
        let mut got = Vec::new();
        while let Some(l) = next_line(&mut r, &mut buf, 100).unwrap() {
            assert!(buf.capacity() <= 1024, "never grows with the line");
            got.push(l);
        }
        assert_eq!(got.len(), 4);
        assert_eq!(got[0], Ok("short".into()));
        assert!(
            got[1].clone().unwrap_err().contains("10000 bytes"),
            "{:?}",
            got[1]
        );
        assert_eq!(got[2], Ok("after".into()));
        assert!(got[3]
            .clone()
            .unwrap_err()
            .contains("longer than 100 bytes"));
    }
}
