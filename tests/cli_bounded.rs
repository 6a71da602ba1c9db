//! `vigil validate` on rule files that expand exponentially (issue 17,
//! item 1): it exits non-zero with the macro chain named, and its peak
//! memory (the child's own `ru_maxrss`, from `wait4`) stays small; before
//! bounded compilation the depth-40 file was OOM-killed at 24 GB. Also the
//! `--costs` report.

#[path = "../engine/tests/common/bombs.rs"]
mod bombs;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Generous: the binary with its rule engine needs a few tens of MB.
const MAX_RSS_KB: i64 = 300 * 1024;

/// Runs `vigil ARGS`, returning (exit code, stdout, stderr, peak RSS in KiB).
// The child is reaped by `wait4` (which also gives its rusage), not `wait`.
#[allow(clippy::zombie_processes)]
fn vigil_rss(args: &[&str]) -> (Option<i32>, String, String, i64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .env("VIGIL_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run vigil");
    let mut out = String::new();
    let mut err = String::new();
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t = std::thread::spawn(move || {
        let mut s = String::new();
        so.read_to_string(&mut s).unwrap();
        s
    });
    se.read_to_string(&mut err).unwrap();
    out.push_str(&t.join().unwrap());
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid out-parameter; the pid is our child, not yet waited for.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
    assert_eq!(pid, child.id() as i32, "wait4");
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    (code, out, err, ru.ru_maxrss)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn validate_rejects_expansion_bombs_within_a_memory_bound() {
    let d = tempfile::tempdir().unwrap();
    for depth in [22, 40] {
        let f = write(
            d.path(),
            &format!("macros-{depth}.yaml"),
            &bombs::macro_bomb(depth),
        );
        let (code, _, err, rss) = vigil_rss(&["validate", f.to_str().unwrap()]);
        assert_eq!(code, Some(1), "{err}");
        assert!(
            err.contains(&format!(
                "macro `m_{depth}`: macro m_{depth} -> m_{} ->",
                depth - 1
            )) && err.contains("expands beyond"),
            "{err}"
        );
        assert!(err.contains("1 error(s); rules not loaded"), "{err}");
        assert!(rss < MAX_RSS_KB, "peak RSS {rss} KiB for depth {depth}");
        eprintln!("measured: validate on the depth-{depth} macro bomb: peak RSS {rss} KiB");
    }
    // The list bomb is harmless once lists are merged: it loads.
    let f = write(d.path(), "lists-40.yaml", &bombs::list_bomb(40));
    let (code, out, err, rss) = vigil_rss(&["validate", f.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(rss < MAX_RSS_KB, "peak RSS {rss} KiB for the list bomb");
}

#[test]
fn validate_reports_costs() {
    let good = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/engine/good");
    let (code, out, err, _) = vigil_rss(&["validate", good.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out.lines().count(),
        1,
        "default output is one summary line: {out}"
    );
    assert!(
        out.contains("condition nodes per event (largest: "),
        "{out}"
    );
    let (code, out, err, _) = vigil_rss(&["validate", "--costs", good.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["nodes", "rhai", "bytes", "rule"]
    );
    // One line per rule (2 in the fixture), each with three numbers, then the summary.
    assert_eq!(lines.len(), 4, "{out}");
    let mut total = 0;
    for l in &lines[1..3] {
        let nums: Vec<usize> = l
            .split_whitespace()
            .take(3)
            .map(|n| n.parse().unwrap())
            .collect();
        assert!(nums[0] >= 1 && nums[2] > 0, "{l}");
        total += nums[0];
    }
    assert!(
        lines[3].contains(&format!("worst case {total} condition nodes")),
        "{out}"
    );
}
