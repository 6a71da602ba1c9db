//! Load-time checks of issue 17, item 9: conditions that fail for every
//! event are refused, a duplicate YAML key is reported at the key, and
//! `events` must be a list.

use vigil_engine::RuleSet;

fn load_err(src: &str) -> String {
    match RuleSet::from_sources(&[("r.yaml".to_string(), src.to_string())]) {
        Ok(_) => panic!("loaded:\n{src}"),
        Err(e) => e.to_string(),
    }
}

fn rule(cond: &str) -> String {
    format!("- rule: R\n  desc: d\n  events: [exec]\n  condition: {cond}\n  output: \"r\"\n  priority: warning\n")
}

#[test]
fn constant_arithmetic_errors_are_refused() {
    for (cond, what) in [
        ("proc.pid / 0 == 1", "`proc.pid / 0` divides by zero"),
        (
            "proc.pid % (1 - 1) == 0",
            "`proc.pid % (1 - 1)` takes a remainder by zero",
        ),
        (
            "proc.name == \"x\" || proc.uid / -0 > 2",
            "`proc.uid / -0` divides by zero",
        ),
        (
            "proc.pid > 9223372036854775807 + 1",
            "`9223372036854775807 + 1` overflows a 64-bit integer",
        ),
        (
            "proc.pid < 3 * -9223372036854775807",
            "`3 * -9223372036854775807` overflows",
        ),
    ] {
        let e = load_err(&rule(cond));
        assert!(
            e.contains(what) && e.contains("fails for every event"),
            "{cond}: {e}"
        );
        assert!(
            e.starts_with("r.yaml:4:"),
            "located on the condition's line: {e}"
        );
    }
    // What depends on the event is left to evaluation.
    for cond in [
        "10 / proc.pid == 1",
        "proc.pid % 7 == 0",
        "proc.pid * 2 > 3 + 4",
    ] {
        RuleSet::from_sources(&[("r.yaml".to_string(), rule(cond))])
            .unwrap_or_else(|e| panic!("{cond}: {e}"));
    }
}

#[test]
fn duplicate_keys_are_reported_at_the_key() {
    let src = "- rule: R\n  desc: d\n  events: [exec]\n  condition: proc.pid == 1\n  output: \"r\"\n  condition: proc.pid == 2\n  priority: warning\n";
    let e = load_err(src);
    assert_eq!(
        e, "r.yaml:6:3: duplicate key `condition` (first given at line 4)",
        "{e}"
    );
    // In a later item, and in a flow mapping.
    let src = format!(
        "{}- list: l\n  items: [a]\n  items: [b]\n",
        rule("proc.pid == 1")
    );
    assert_eq!(
        load_err(&src),
        "r.yaml:9:3: duplicate key `items` (first given at line 8)"
    );
    let src = "- {rule: R, enabled: false, enabled: true}\n";
    assert_eq!(
        load_err(src),
        "r.yaml:1:29: duplicate key `enabled` (first given at line 1)"
    );
}

#[test]
fn events_must_be_a_list() {
    let src = rule("proc.pid == 1").replace("events: [exec]", "events: exec");
    let e = load_err(&src);
    assert_eq!(
        e,
        "r.yaml:3:3: rule `R`: `events` must be a list of event types (write `events: [exec]`)"
    );
}
