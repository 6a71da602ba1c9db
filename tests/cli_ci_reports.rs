//! Rule files in CI (issue 14). `vigil test`: exit statuses, case-file
//! errors at file:line:col with the file's other cases still run, a missing
//! path named as such, "no cases" as an error, JUnit XML read back by a real
//! JUnit parser (python3-junitparser) carrying every case, the JSON report,
//! `--coverage` / `--require-coverage`. `vigil validate`: SARIF validated
//! against the SARIF 2.1.0 JSON schema (python3-jsonschema), the JSON
//! report, an empty rule set as an error.

mod common;
use common::cli::{fixture, text, vigil};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A python3 that imports `module` (Debian's first: scripts/install-deps.sh
/// installs the module there); None (skip) when there is none, a failure
/// under CI.
pub fn python_with(module: &str) -> Option<&'static str> {
    for py in ["/usr/bin/python3", "python3"] {
        let ok = Command::new(py)
            .args(["-c", &format!("import {module}")])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(py);
        }
    }
    // CI=true without VIGIL_REQUIRE_LIVE (a plain `make test` in CI) requires it too.
    let why = format!("python3 module {module} missing (scripts/install-deps.sh installs it)");
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
    vigil_testkit::cannot_run(why);
    None
}

/// A case file with one valid case between two invalid ones (the first has
/// two errors), as in the issue.
const MIXED_CASES: &str = "\
- name: typo in a field
  event: {evt.type: exec, proc.nmae: sh, proc.pname: nginx}
  expected: [Shell spawned by web server]
- name: valid case
  event: {evt.type: exec, proc.name: sh, proc.pname: nginx}
  expect: [Shell spawned by web server]
- name: no events
  expect: [Shell spawned by web server]
";

#[test]
fn an_invalid_case_is_an_error_at_its_position_and_the_others_run() {
    let d = tempfile::tempdir().unwrap();
    let cases = d.path().join("mixed.yaml");
    std::fs::write(&cases, MIXED_CASES).unwrap();
    let o = vigil(&[
        "test",
        s(&fixture("good/10-rules.yaml")),
        "--cases",
        s(&cases),
    ]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(2), "{out}");
    let f = cases.display().to_string();
    for want in [
        format!("ERROR {f}:1:1: case `typo in a field` (not run):"),
        format!("    {f}:3:3: unknown key `expected`"),
        format!("    {f}:2:27: event 1: unknown field `proc.nmae` (did you mean `proc.name`?)"),
        format!("ERROR {f}:7:1: case `no events` (not run):"),
        format!("    {f}:7:1: case needs `event` or `events`"),
    ] {
        assert!(out.contains(&want), "missing {want:?} in:\n{out}");
    }
    // One block per invalid case; the valid one ran and passed.
    assert_eq!(out.matches("case `typo in a field`").count(), 1, "{out}");
    assert_eq!(
        out.lines().last(),
        Some("1 passed, 0 failed, 2 error(s)"),
        "{out}"
    );
}

#[test]
fn exit_statuses_missing_paths_and_no_cases() {
    let good = fixture("good");
    assert_eq!(vigil(&["test", s(&good)]).status.code(), Some(0));
    let failing = fixture("failing-cases.yaml");
    let o = vigil(&["test", s(&good), "--cases", s(&failing)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));

    // A missing rule path or case file is named, without a bogus :0:0.
    let o = vigil(&["test", "/nonexistent"]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("ERROR /nonexistent: cannot read: No such file or directory"),
        "{out}"
    );
    assert!(!out.contains(":0:0"), "{out}");
    let o = vigil(&["test", s(&good), "--cases", "/nonexistent/cases.yaml"]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("ERROR /nonexistent/cases.yaml: cannot read: No such file or directory"),
        "{out}"
    );

    // A rule file without cases: an error unless allowed.
    let rules = fixture("good/10-rules.yaml");
    let o = vigil(&["test", s(&rules)]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.contains("no test cases found"), "{out}");
    let o = vigil(&["test", s(&rules), "--allow-empty"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));

    // A YAML syntax error: the file is named at the line, nothing of it runs.
    let d = tempfile::tempdir().unwrap();
    let broken = d.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "- name: a\n  event: {evt.type: exec\n  expect: [X]\n",
    )
    .unwrap();
    let o = vigil(&["test", s(&rules), "--cases", s(&broken)]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains(&format!("ERROR {}:3:", broken.display()))
            && out.contains("YAML syntax error"),
        "{out}"
    );
}

/// The cases of a JUnit file as a real JUnit reader sees them:
/// `[{suite, name, classname, result: null|failure|error, message}]`.
fn junit_cases(py: &str, file: &Path) -> Vec<Value> {
    let script = r#"
import json, sys
from junitparser import JUnitXml, Failure, Error
xml = JUnitXml.fromfile(sys.argv[1])
out = []
for suite in xml:
    for case in suite:
        res = [r for r in case.result if isinstance(r, (Failure, Error))]
        out.append({
            "suite": suite.name, "name": case.name, "classname": case.classname,
            "result": None if not res else ("failure" if isinstance(res[0], Failure) else "error"),
            "message": res[0].message if res else None,
            "text": res[0].text if res else None,
        })
print(json.dumps({"tests": xml.tests, "failures": xml.failures, "errors": xml.errors, "cases": out}))
"#;
    let o = Command::new(py)
        .args(["-c", script, s(file)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    // The totals junitparser reads from <testsuites> match the cases.
    let cases = v["cases"].as_array().unwrap().clone();
    assert_eq!(v["tests"].as_u64(), Some(cases.len() as u64), "{v}");
    let count = |r: &str| cases.iter().filter(|c| c["result"] == r).count() as u64;
    assert_eq!(v["failures"].as_u64(), Some(count("failure")), "{v}");
    assert_eq!(v["errors"].as_u64(), Some(count("error")), "{v}");
    cases
}

#[test]
fn junit_is_read_by_a_junit_parser_and_carries_every_case() {
    let Some(py) = python_with("junitparser") else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let mixed = d.path().join("mixed.yaml");
    std::fs::write(&mixed, MIXED_CASES).unwrap();
    let report = d.path().join("report.xml");
    let good = fixture("good");
    let failing = fixture("failing-cases.yaml");
    let o = vigil(&[
        "test",
        s(&good),
        "--cases",
        s(&failing),
        "--cases",
        s(&mixed),
        "--format",
        "junit",
        "--output",
        s(&report),
    ]);
    // The text report still goes to stdout.
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.ends_with("4 passed, 2 failed, 2 error(s)\n"), "{out}");

    let cases = junit_cases(py, &report);
    let got: Vec<(String, String, Option<&str>)> = cases
        .iter()
        .map(|c| {
            (
                c["suite"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_string(),
                c["name"].as_str().unwrap().to_string(),
                c["result"].as_str(),
            )
        })
        .collect();
    let want: Vec<(&str, &str, Option<&str>)> = vec![
        ("cases.yaml", "nginx spawns sh", None),
        ("cases.yaml", "healthcheck is excepted", None),
        ("cases.yaml", "retransmit storm", None),
        ("failing-cases.yaml", "wrong expectation", Some("failure")),
        (
            "failing-cases.yaml",
            "names a missing rule",
            Some("failure"),
        ),
        ("mixed.yaml", "typo in a field", Some("error")),
        ("mixed.yaml", "valid case", None),
        ("mixed.yaml", "no events", Some("error")),
    ];
    let got_ref: Vec<(&str, &str, Option<&str>)> = got
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), *c))
        .collect();
    assert_eq!(got_ref, want);
    // The failing clause is in the failure message.
    let wrong = &cases[3];
    assert!(
        wrong["message"]
            .as_str()
            .unwrap()
            .contains("did not fire: clause `proc.name in shell_binaries` was false"),
        "{wrong}"
    );
    // Every error of an invalid case, each at its position.
    let typo = cases[5]["text"].as_str().unwrap();
    assert!(
        typo.contains(&format!("{}:3:3", mixed.display()))
            && typo.contains(&format!("{}:2:27", mixed.display())),
        "{typo}"
    );
}

#[test]
fn junit_of_rules_that_fail_to_load_is_one_error() {
    let Some(py) = python_with("junitparser") else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let report = d.path().join("r.xml");
    let o = vigil(&[
        "test",
        "/nonexistent",
        "--format",
        "junit",
        "-o",
        s(&report),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let cases = junit_cases(py, &report);
    assert_eq!(cases.len(), 1, "{cases:?}");
    assert_eq!(cases[0]["result"], "error");
    assert!(
        cases[0]["message"]
            .as_str()
            .unwrap()
            .contains("/nonexistent: cannot read"),
        "{cases:?}"
    );
}

#[test]
fn json_report_and_coverage() {
    let d = tempfile::tempdir().unwrap();
    // The good rules and a third rule no case names.
    let rules = d.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    for f in ["10-rules.yaml", "20-local.yaml"] {
        std::fs::copy(fixture("good").join(f), rules.join(f)).unwrap();
    }
    std::fs::write(
        rules.join("30-nc.yaml"),
        "- rule: Netcat listener\n  events: [exec]\n  condition: proc.name == \"nc\" && \"-l\" in proc.args\n  output: nc\n  priority: notice\n",
    )
    .unwrap();
    let cases = fixture("good/tests/cases.yaml");
    let o = vigil(&[
        "test",
        s(&rules),
        "--cases",
        s(&cases),
        "--format",
        "json",
        "--coverage",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["format"], "vigil-test/1");
    assert_eq!(
        (v["passed"].as_u64(), v["failed"].as_u64()),
        (Some(3), Some(0))
    );
    let suite = &v["suites"][0];
    assert_eq!(suite["cases"].as_array().unwrap().len(), 3, "{suite}");
    assert_eq!(suite["cases"][0]["status"], "passed");
    assert_eq!(suite["cases"][0]["line"], 1);
    let cov = &v["coverage"];
    assert_eq!(
        cov["without_positive"],
        serde_json::json!(["Netcat listener"])
    );
    assert_eq!(
        cov["without_negative"],
        serde_json::json!(["Netcat listener"])
    );
    let shell = &cov["rules"][0];
    assert_eq!(shell["name"], "Shell spawned by web server");
    assert_eq!(
        (shell["positive"].as_u64(), shell["negative"].as_u64()),
        (Some(1), Some(1))
    );
    // Two clauses: every case event had a shell and a web server parent.
    assert_eq!(shell["clauses"].as_array().unwrap().len(), 2);
    assert_eq!(shell["both_ways"], 0);

    // Text, and the requirement: a rule without a positive case fails.
    let o = vigil(&[
        "test",
        s(&rules),
        "--cases",
        s(&cases),
        "--require-coverage",
    ]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("FAIL coverage: rule `Netcat listener` has no positive case"),
        "{out}"
    );
    assert!(
        out.contains("rules without a positive case: `Netcat listener`"),
        "{out}"
    );
    assert!(
        out.contains("      0/2    0%     1     1  Shell spawned by web server"),
        "{out}"
    );
    assert_eq!(out.lines().last(), Some("3 passed, 1 failed"), "{out}");

    // With a case that fires it and one that makes each clause false.
    let more = d.path().join("more.yaml");
    std::fs::write(
        &more,
        "- name: nc listens\n  event: {evt.type: exec, proc.name: nc, proc.args: [-l, \"4444\"]}\n  expect: [Netcat listener]\n- name: nc connects\n  event: {evt.type: exec, proc.name: nc, proc.args: [host, \"80\"]}\n  expect_not: [Netcat listener]\n- name: ls -l\n  event: {evt.type: exec, proc.name: ls, proc.args: [-l]}\n  expect_not: [Netcat listener]\n",
    )
    .unwrap();
    let o = vigil(&[
        "test",
        s(&rules),
        "--cases",
        s(&cases),
        "--cases",
        s(&more),
        "--require-coverage",
    ]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("      2/2  100%     1     2  Netcat listener"),
        "{out}"
    );
}

fn sarif_schema() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sarif/sarif-schema-2.1.0.json")
}

/// Validate a SARIF file against the 2.1.0 schema; Err with the validator's
/// message when it does not conform.
fn validate_sarif(py: &str, file: &Path) -> Result<(), String> {
    let script = r#"
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
try:
    jsonschema.validate(json.load(open(sys.argv[2])), schema, cls=jsonschema.Draft4Validator)
except jsonschema.ValidationError as e:
    print(e.message)
    sys.exit(1)
"#;
    let o = Command::new(py)
        .args(["-c", script, s(&sarif_schema()), s(file)])
        .output()
        .unwrap();
    if o.status.success() {
        Ok(())
    } else {
        Err(format!("{}{}", text(&o.stdout), text(&o.stderr)))
    }
}

const BAD_RULES: &str = "\
- rule: Unbalanced
  events: [open]
  condition: file.path.starts_with(\"/etc/\" && proc.name == \"sh\"
  output: o
  priority: info
- rule: Missing output
  events: [exec]
  condition: proc.pid == \"x\"
  priority: info
- rule: Bad regex
  events: [exec]
  condition: regex(proc.cmdline, \"curl (-o|--output\")
  output: o
  priority: info
";

#[test]
fn sarif_validates_against_the_sarif_2_1_0_schema() {
    let Some(py) = python_with("jsonschema") else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let rules = d.path().join("bad.yaml");
    std::fs::write(&rules, BAD_RULES).unwrap();
    let sarif = d.path().join("out.sarif");
    let o = vigil(&["validate", s(&rules), "--format", "sarif", "-o", s(&sarif)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    // The text report still goes to stderr.
    assert!(
        text(&o.stderr).contains("4 error(s); rules not loaded"),
        "{}",
        text(&o.stderr)
    );
    validate_sarif(py, &sarif).unwrap();
    let v: Value = serde_json::from_slice(&std::fs::read(&sarif).unwrap()).unwrap();
    assert_eq!(v["version"], "2.1.0");
    let results = v["runs"][0]["results"].as_array().unwrap();
    let got: Vec<(u64, u64, &str)> = results
        .iter()
        .map(|r| {
            let region = &r["locations"][0]["physicalLocation"]["region"];
            (
                region["startLine"].as_u64().unwrap(),
                region["startColumn"].as_u64().unwrap(),
                r["message"]["text"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (3, 44, "rule `Unbalanced`: unbalanced brackets: missing `)` before `&&`: `starts_with(` is not closed"),
            (6, 1, "rule `Missing output`: rule needs `output`"),
            (8, 14, "rule `Missing output`: type error: `proc.pid == \"x\"` compares an int with a string"),
            (12, 40, "rule `Bad regex`: bad regex `curl (-o|--output`: unclosed group at column 6 of the pattern"),
        ]
    );
    assert!(results
        .iter()
        .all(|r| r["level"] == "error" && r["ruleId"] == "vigil.load-error"));
    let uri = results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        .as_str()
        .unwrap();
    assert_eq!(uri, format!("file://{}", rules.display()));

    // The check can fail: a log without `version` does not conform.
    let mut broken = v.clone();
    broken.as_object_mut().unwrap().remove("version");
    let bad = d.path().join("broken.sarif");
    std::fs::write(&bad, broken.to_string()).unwrap();
    let e = validate_sarif(py, &bad).unwrap_err();
    assert!(e.contains("'version' is a required property"), "{e}");

    // The shipped rules: a valid log without results, on stdout.
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules");
    let o = vigil(&["validate", s(&shipped), "--format", "sarif"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = d.path().join("shipped.sarif");
    std::fs::write(&out, &o.stdout).unwrap();
    validate_sarif(py, &out).unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["runs"][0]["results"], serde_json::json!([]));
}

#[test]
fn validate_json_and_empty_rule_sets() {
    let d = tempfile::tempdir().unwrap();
    let rules = d.path().join("bad.yaml");
    std::fs::write(&rules, BAD_RULES).unwrap();
    let o = vigil(&["validate", s(&rules), "--format", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["format"], "vigil-validate/1");
    assert_eq!(v["ok"], false);
    assert_eq!(v["summary"], Value::Null);
    let e = &v["errors"][1];
    assert_eq!(e["file"], rules.display().to_string());
    assert_eq!((e["line"].as_u64(), e["col"].as_u64()), (Some(6), Some(1)));
    assert_eq!(e["item"], "rule `Missing output`");
    assert_eq!(e["message"], "rule needs `output`");

    let good = fixture("good");
    let o = vigil(&["validate", s(&good), "--format", "json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["summary"]["rules"], 2);
    assert_eq!(v["rules"][0]["name"], "Shell spawned by web server");
    assert_eq!(v["rules"][0]["events"], serde_json::json!(["exec"]));
    assert!(v["rules"][0]["cost"]["nodes"].as_u64().unwrap() > 0);

    // An empty directory: a warning for the directory, an error for the set.
    let empty = d.path().join("rules.d");
    std::fs::create_dir(&empty).unwrap();
    let o = vigil(&["validate", s(&empty)]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "{}: warning: directory has no rule files (*.yaml, *.yml)",
            empty.display()
        )),
        "{err}"
    );
    assert!(err.contains("no rules loaded"), "{err}");
    let o = vigil(&["validate", s(&empty), "--allow-empty"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    // Beside other rules, an empty directory is only a warning.
    let o = vigil(&["validate", s(&good), s(&empty)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    // `vigil run` refuses an empty rule set too, unless allowed.
    let o = vigil(&["run", "--dry-run", "--rules", s(&empty)]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        text(&o.stderr).contains("--allow-empty"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn profile_lists_every_enabled_rule_slowest_first() {
    let d = tempfile::tempdir().unwrap();
    let capture = d.path().join("capture.jsonl");
    let lines = [
        r#"{"evt.type":"exec","proc.name":"sh","proc.pname":"nginx","proc.cmdline":"sh -c id"}"#,
        r#"{"evt.type":"exec","proc.name":"ls","proc.pname":"bash"}"#,
        "not json",
        r#"{"evt.type":"retransmit","net.daddr":"10.0.0.9","evt.time":1000000000}"#,
    ];
    std::fs::write(&capture, lines.join("\n")).unwrap();
    let good = fixture("good");
    let o = vigil(&[
        "profile",
        "--rules",
        s(&good),
        s(&capture),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains(":3: skipped"),
        "{}",
        text(&o.stderr)
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["events"].as_u64(), v["skipped_lines"].as_u64()),
        (Some(3), Some(1))
    );
    let rules = v["rules"].as_array().unwrap();
    let by_name = |n: &str| rules.iter().find(|r| r["name"] == n).unwrap();
    let shell = by_name("Shell spawned by web server");
    assert_eq!(
        (shell["events"].as_u64(), shell["matches"].as_u64()),
        (Some(2), Some(1))
    );
    // Its exception (20-local.yaml) is native too; its kernel term is the shell names.
    assert_eq!(shell["path"], "native");
    assert_eq!(
        (
            shell["kernel_term"].as_bool(),
            shell["kernel_passed"].as_u64()
        ),
        (Some(true), Some(1))
    );
    let storm = by_name("TCP retransmit storm");
    assert_eq!(
        (storm["events"].as_u64(), storm["path"].as_str()),
        (Some(1), Some("native"))
    );
    let totals: Vec<u64> = rules
        .iter()
        .map(|r| r["total_ns"].as_u64().unwrap())
        .collect();
    assert!(
        totals.windows(2).all(|w| w[0] >= w[1]),
        "slowest first: {totals:?}"
    );

    // The shipped rules on a slice of the benign recording: every enabled
    // rule is listed, with the table's header and summary.
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules");
    let gz = shipped.join("tests/benign/workload-1.jsonl.gz");
    let mut all = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::MultiGzDecoder::new(std::fs::File::open(gz).unwrap()),
        &mut all,
    )
    .unwrap();
    let slice = d.path().join("slice.jsonl");
    std::fs::write(
        &slice,
        all.lines().take(2000).collect::<Vec<_>>().join("\n"),
    )
    .unwrap();
    let enabled = {
        let o = vigil(&["validate", s(&shipped), "--format", "json"]);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        v["summary"]["enabled"].as_u64().unwrap() as usize
    };
    let o = vigil(&["profile", "--rules", s(&shipped), s(&slice)]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(out.starts_with("  total ms  ns/event"), "{out}");
    // Some shipped rules run partly in Rhai.
    assert!(out.contains("   rhai "), "{out}");
    assert_eq!(out.lines().count(), enabled + 2, "{out}");
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with(&format!("{enabled} rule(s) on 2000 events")),
        "{out}"
    );
}
