//! `vigil test DIR` replays DIR/tests/benign/*.jsonl[.gz] as the built
//! binary: a warning-or-above alert on a corpus event fails the run (exit 1,
//! the file and line named), a notice does not, and the summary gives the
//! corpus size.

use std::path::Path;
use std::process::{Command, Output, Stdio};

const RULES: &str = r#"
- rule: Loud
  events: [exec]
  condition: proc.name == "evil"
  output: loud {proc.name}
  priority: error
- rule: Quiet
  events: [exec]
  condition: proc.name == "meh"
  output: quiet
  priority: notice
"#;

fn vigil_test(dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["test", dir.to_str().unwrap()])
        .env("VIGIL_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run vigil")
}

fn corpus_dir(events: &[&str]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("r.yaml"), RULES).unwrap();
    let b = d.path().join("tests/benign");
    std::fs::create_dir_all(&b).unwrap();
    let lines: Vec<String> = events
        .iter()
        .enumerate()
        .map(|(i, n)| {
            format!(
                r#"{{"evt.type":"exec","evt.time":{},"proc.name":"{n}"}}"#,
                i as i64 * 1_800_000_000_000
            )
        })
        .collect();
    std::fs::write(b.join("work.jsonl"), lines.join("\n")).unwrap();
    d
}

#[test]
fn benign_corpus_passes_with_notices_only() {
    let d = corpus_dir(&["ls", "meh", "cc"]);
    let o = vigil_test(d.path());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("benign corpus: 1 file(s), 3 events, 1.00 hours of activity; 0 file(s) with alerts of priority warning or above, 1 lower-priority alert(s)"),
        "{out}"
    );
    assert_eq!(out.lines().last(), Some("1 passed, 0 failed"), "{out}");
}

#[test]
fn benign_corpus_fails_on_a_warning_or_above() {
    let d = corpus_dir(&["ls", "evil"]);
    let o = vigil_test(d.path());
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("work.jsonl:2: benign event raised `Loud` (Error): loud evil"),
        "{out}"
    );
    assert_eq!(out.lines().last(), Some("0 passed, 1 failed"), "{out}");
}
