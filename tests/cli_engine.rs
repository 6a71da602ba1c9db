//! The offline commands (`validate`, `test`, `replay`, `explain`, `fields`)
//! run as the built binary on fixture rule files and events.

mod common;
use common::cli::{fixture, text, vigil};

#[test]
fn validate_good_and_bad() {
    let good = fixture("good");
    let o = vigil(&["validate", good.to_str().unwrap()]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{}{}", out, text(&o.stderr));
    assert!(
        out.contains("2 rules (2 enabled), 1 macros, 1 lists from 2 files; hash "),
        "{out}"
    );

    let bad = fixture("bad/rules.yaml");
    let o = vigil(&["validate", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    let f = bad.display().to_string();
    for want in [
        format!("{f}:3:14: rule `Bad field`: unknown field `proc.nmae` (did you mean `proc.name`?)"),
        format!("{f}:9:27: rule `Bad list`: unknown list or macro `shel_binaries` (did you mean `shell_binaries`?)"),
        format!("{f}:21:3: rule `Wrong event`: unknown key `severity`"),
        "rule `Wrong event`: field `file.path` is not carried by any of this rule's events (exec)".to_string(),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    assert!(err.contains("4 error(s)"), "{err}");
}

#[test]
fn test_command_passes_and_fails() {
    let good = fixture("good");
    let o = vigil(&["test", good.to_str().unwrap()]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert_eq!(out.lines().last(), Some("3 passed, 0 failed"), "{out}");

    let cases = fixture("failing-cases.yaml");
    let o = vigil(&[
        "test",
        good.to_str().unwrap(),
        "--cases",
        cases.to_str().unwrap(),
    ]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert_eq!(out.lines().last(), Some("3 passed, 2 failed"), "{out}");
    assert!(out.contains("case `wrong expectation`"), "{out}");
    assert!(
        out.contains("rule `Shell spawned by web server` did not fire: clause `proc.name in shell_binaries` was false"),
        "{out}"
    );
    assert!(
        out.contains("names rule `No such rule`, which does not exist"),
        "{out}"
    );
}

#[test]
fn replay_text_and_json() {
    let good = fixture("good");
    let events = fixture("events.jsonl");
    let o = vigil(&[
        "replay",
        events.to_str().unwrap(),
        "--rules",
        good.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(
        lines[0],
        "2026-11-18T11:06:40.000000000Z Critical: Shell sh spawned by nginx (cmdline=sh -c id) [rule: Shell spawned by web server]"
    );
    assert!(
        lines[1].contains("Warning: retransmit storm to 10.0.0.9 (2 in window)"),
        "{out}"
    );
    let err = text(&o.stderr);
    assert!(err.contains(":2: skipped:"), "{err}");
    assert!(
        err.contains(":4: skipped: unknown field `proc.nmae`"),
        "{err}"
    );
    assert!(
        err.contains("4 events, 2 alerts, 2 malformed lines skipped"),
        "{err}"
    );

    let o = vigil(&[
        "replay",
        events.to_str().unwrap(),
        "--rules",
        good.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success());
    let out = text(&o.stdout);
    let first: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    for k in [
        "time",
        "rule",
        "priority",
        "output",
        "output_fields",
        "tags",
        "source",
        "hostname",
    ] {
        assert!(first.get(k).is_some(), "missing {k} in {first}");
    }
    assert_eq!(first["rule"], "Shell spawned by web server");
    assert_eq!(first["priority"], "Critical");
    assert_eq!(first["output_fields"]["proc.pname"], "nginx");
    let second: serde_json::Value = serde_json::from_str(out.lines().nth(1).unwrap()).unwrap();
    assert_eq!(second["output_fields"]["vigil.count"], 2);

    // rules that fail to load: exit 1; a missing events file: error exit.
    let bad = fixture("bad");
    let o = vigil(&[
        "replay",
        events.to_str().unwrap(),
        "--rules",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let o = vigil(&[
        "replay",
        "/nonexistent/x.jsonl",
        "--rules",
        good.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("cannot read /nonexistent/x.jsonl"));
}

#[test]
fn explain_and_fields() {
    let good = fixture("good");
    let o = vigil(&["explain", "--rules", good.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["types"]["exec"]["mode"], "match");
    assert_eq!(
        j["types"]["exec"]["sets"]["pcomms"],
        serde_json::json!(["httpd", "nginx"])
    );
    assert_eq!(j["types"]["retransmit"]["mode"], "pass_all");
    assert_eq!(j["types"]["open"]["mode"], "drop");
    let o = vigil(&["explain", "--rules", good.to_str().unwrap()]);
    let out = text(&o.stdout);
    assert!(
        out.contains("TCP retransmit storm [retransmit]: no top-level"),
        "{out}"
    );

    let o = vigil(&["fields", "--json"]);
    assert!(o.status.success());
    let out = text(&o.stdout);
    let names: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(names.len(), vigil_engine::FIELDS.len());
    assert!(names.iter().any(|n| n == "file.path_raw"));
}
