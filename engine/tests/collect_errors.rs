//! `vigil validate` reports every error of every rule at once (issue 14):
//! a missing key does not hide a type error, unknown names do not hide the
//! other clauses' errors, a broken macro is reported at the macro and its
//! rules still have their own errors checked, regex errors carry the
//! parser's message and the column in the pattern, unbalanced brackets are
//! named at the missing bracket; and warnings name a rule that can never
//! fire and a directory without rule files.

use vigil_engine::RuleSet;

fn errors(yaml: &str) -> Vec<String> {
    match RuleSet::from_sources(&[("r.yaml".into(), yaml.into())]) {
        Ok(_) => panic!("loaded:\n{yaml}"),
        Err(e) => e.iter().map(|e| e.to_string()).collect(),
    }
}

fn warnings(yaml: &str) -> Vec<String> {
    let rs = RuleSet::from_sources(&[("r.yaml".into(), yaml.into())]).expect("loads");
    rs.warnings().iter().map(|w| w.to_string()).collect()
}

fn has(all: &[String], want: &str) {
    assert!(
        all.iter().any(|e| e == want),
        "missing {want:?} in:\n{}",
        all.join("\n")
    );
}

#[test]
fn a_missing_output_does_not_hide_a_type_error() {
    let e =
        errors("- rule: R\n  events: [exec]\n  condition: proc.pid == \"x\"\n  priority: info\n");
    has(&e, "r.yaml:1:1: rule `R`: rule needs `output`");
    has(
        &e,
        "r.yaml:3:14: rule `R`: type error: `proc.pid == \"x\"` compares an int with a string",
    );
}

#[test]
fn unknown_names_do_not_hide_the_other_clauses_errors() {
    let e = errors(
        "- rule: R\n  events: [exec]\n  condition: proc.nmae == \"x\" && proc.pid == \"y\"\n  output: \"{proc.nope}\"\n  priority: info\n",
    );
    has(
        &e,
        "r.yaml:3:14: rule `R`: unknown field `proc.nmae` (did you mean `proc.name`?)",
    );
    has(
        &e,
        "r.yaml:3:34: rule `R`: type error: `proc.pid == \"y\"` compares an int with a string",
    );
    has(
        &e,
        "r.yaml:4:3: rule `R`: unknown field `proc.nope` in output placeholder (did you mean `proc.name`?)",
    );
}

#[test]
fn a_broken_macro_is_reported_at_the_macro_and_its_rules_keep_their_errors() {
    let e = errors(
        "- macro: broken\n  condition: proc.name ==\n- rule: R\n  events: [exec]\n  condition: broken && proc.pid > \"a\"\n  output: o\n  priority: info\n",
    );
    assert!(
        e.iter()
            .any(|e| e.starts_with("r.yaml:2:3: macro `broken`: syntax error in condition")),
        "{e:?}"
    );
    has(
        &e,
        "r.yaml:5:24: rule `R`: type error: `proc.pid > \"a\"` compares an int with a string",
    );
    assert_eq!(e.len(), 2, "{e:?}");
}

#[test]
fn regex_errors_carry_the_parser_message_and_column() {
    let e = errors(
        "- rule: R\n  events: [exec]\n  condition: regex(proc.cmdline, \"curl (-o|--output\")\n  output: o\n  priority: info\n",
    );
    // The pattern starts at column 35; its `(` (column 6 of the pattern) at 40.
    has(
        &e,
        "r.yaml:3:40: rule `R`: bad regex `curl (-o|--output`: unclosed group at column 6 of the pattern",
    );
}

#[test]
fn unbalanced_brackets_are_named_at_the_missing_bracket() {
    let e = errors(
        "- rule: R\n  events: [open]\n  condition: file.path.starts_with(\"/etc/\" && proc.name == \"sh\"\n  output: o\n  priority: info\n",
    );
    assert_eq!(
        e,
        ["r.yaml:3:44: rule `R`: unbalanced brackets: missing `)` before `&&`: `starts_with(` is not closed"]
    );
    let e = errors(
        "- rule: R\n  events: [exec]\n  condition: proc.name in [\"sh\", \"bash\") && proc.tty\n  output: o\n  priority: info\n",
    );
    assert_eq!(
        e,
        ["r.yaml:3:40: rule `R`: unbalanced brackets: `)` cannot close `[`: missing `]`"]
    );
}

#[test]
fn every_rule_s_errors_are_collected() {
    // Errors of four kinds in three rules and a list: all reported.
    let e = errors(
        "- list: bad-name\n  items: [a]\n- rule: A\n  events: [exec]\n  condition: proc.pid == \"x\"\n  exceptions:\n    - name: e\n      condition: proc.uid == \"y\"\n  output: \"{file.path}\"\n  priority: urgent\n- rule: B\n  events: [exec]\n  condition: regex(proc.cmdline, \"a[\")\n  output: o\n  priority: info\n- rule: C\n  events: [exec]\n  condition: proc.name == \"x\"\n  output: o\n  priority: info\n  threshold: {count: 0, window: 1s}\n",
    );
    for want in [
        "r.yaml:1:1: list `bad-name`",
        "r.yaml:5:14: rule `A`: type error",
        "r.yaml:8:18: rule `A`: type error",
        "r.yaml:9:3: rule `A`: output placeholder `{file.path}`",
        "r.yaml:10:13: rule `A`: unknown priority `urgent`",
        "r.yaml:13:36: rule `B`: bad regex `a[`: unclosed character class at column 2",
        "r.yaml:21:3: rule `C`: threshold",
    ] {
        assert!(
            e.iter().any(|e| e.starts_with(want)),
            "missing {want:?} in {e:#?}"
        );
    }
    assert_eq!(e.len(), 7, "{e:#?}");
}

#[test]
fn rules_that_can_never_fire_are_warned_about() {
    let w = warnings(
        "- list: empty_hosts\n  items: []\n- rule: Empty list\n  events: [connect]\n  condition: net.daddr in empty_hosts && proc.name == \"curl\"\n  output: o\n  priority: info\n- rule: Open on exec\n  events: [exec, open]\n  condition: file.path == \"/etc/shadow\" && proc.name == \"cat\"\n  output: o\n  priority: info\n- rule: Self exception\n  events: [exec]\n  condition: proc.name == \"nc\" && proc.tty\n  exceptions:\n    - name: same\n      condition: proc.name == \"nc\"\n  output: o\n  priority: info\n- rule: Negated empty list\n  events: [connect]\n  condition: \"!(net.daddr in empty_hosts)\"\n  output: o\n  priority: info\n",
    );
    assert_eq!(
        w,
        [
            "r.yaml:5:14: warning: rule `Empty list`: rule can never fire: clause `net.daddr in empty_hosts` is false for every event (list `empty_hosts` has no items)",
            "r.yaml:10:14: warning: rule `Open on exec`: rule never fires on `exec` events: clause `file.path == \"/etc/shadow\"` reads only file.path, which `exec` events do not carry, and is then false",
            "r.yaml:18:18: warning: rule `Self exception`: rule can never fire: exception `same` is the same as clause `proc.name == \"nc\"` of the condition",
        ]
    );
}

#[test]
fn a_directory_without_rule_files_is_a_warning_of_check() {
    let d = tempfile::tempdir().unwrap();
    let empty = d.path().join("rules.d");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("notes.txt"), "not a rule file").unwrap();
    let r = RuleSet::check(&[&empty]);
    assert_eq!(r.result.unwrap().rules().count(), 0);
    let w: Vec<String> = r.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        w,
        [format!(
            "{}: warning: directory has no rule files (*.yaml, *.yml): nothing is loaded from it",
            empty.display()
        )]
    );
    // Warnings come back with a failed load too.
    std::fs::write(
        empty.join("bad.yaml"),
        "- rule: W\n  events: [exec]\n  condition: proc.name == \"a-name-longer-than-15-bytes\"\n  output: o\n  priority: info\n- rule: E\n  events: [exec]\n  condition: proc.pid == \"x\"\n  output: o\n  priority: info\n",
    )
    .unwrap();
    let r = RuleSet::check(&[&empty]);
    assert!(r.result.is_err());
    assert!(
        r.warnings
            .iter()
            .any(|w| w.item.as_deref() == Some("rule `W`")),
        "{:?}",
        r.warnings
    );
}
