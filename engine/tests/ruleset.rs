//! Loader, compiler and evaluator behaviour through the public API.

use std::sync::Arc;

use serde_json::json;
use vigil_engine::{Evaluator, Event, EventType, RuleSet, TypeFilter};

fn ev(j: serde_json::Value) -> Event {
    Event::from_flat_json(j.as_object().unwrap()).unwrap()
}

fn load(src: &str) -> RuleSet {
    match RuleSet::from_sources(&[("rules.yaml".to_string(), src.to_string())]) {
        Ok(r) => r,
        Err(e) => panic!("load failed:\n{e}"),
    }
}

fn load_err(src: &str) -> String {
    RuleSet::from_sources(&[("rules.yaml".to_string(), src.to_string())])
        .unwrap_err()
        .to_string()
}

fn fired(rs: &Arc<RuleSet>, e: &Event) -> Vec<String> {
    let mut ev = Evaluator::new(rs.clone(), "h");
    let mut out = Vec::new();
    ev.evaluate(e, &mut out);
    out.iter().map(|a| a.rule.to_string()).collect()
}

const BASE: &str = r#"
- list: shell_binaries
  items: [sh, bash, dash]

- macro: spawned_by_web_server
  condition: proc.pname in ["nginx", "httpd"]

- rule: Shell spawned by web server
  desc: A web server started a shell.
  events: [exec]
  condition: proc.name in shell_binaries && spawned_by_web_server
  output: "Shell {proc.name} spawned by {proc.pname} (cmdline={proc.cmdline})"
  priority: critical
  tags: [process]
  exceptions:
    - name: healthcheck
      condition: proc.cmdline.starts_with("sh -c /usr/local/bin/healthcheck")

- rule: Read shadow
  events: [open]
  condition: file.path == "/etc/shadow" && !file.write && regex(proc.exe, "^/usr/s?bin/")
  output: "{proc.name} read {file.path}"
  priority: warning
"#;

#[test]
fn rules_fire_with_exceptions_and_templates() {
    let rs = Arc::new(load(BASE));
    let e = ev(
        json!({"evt.type": "exec", "proc.name": "sh", "proc.pname": "nginx", "proc.cmdline": "sh -c id", "evt.time": 5}),
    );
    let mut evr = Evaluator::new(rs.clone(), "host1");
    let mut out = Vec::new();
    evr.evaluate(&e, &mut out);
    assert_eq!(out.len(), 1);
    let a = &out[0];
    assert_eq!(&*a.rule, "Shell spawned by web server");
    assert_eq!(a.output, "Shell sh spawned by nginx (cmdline=sh -c id)");
    assert_eq!(a.output_fields["proc.pname"], json!("nginx"));
    assert_eq!(&*a.hostname, "host1");
    let j = a.to_json();
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
        assert!(j.get(k).is_some(), "{k}");
    }
    // exception
    let e2 = ev(
        json!({"evt.type": "exec", "proc.name": "sh", "proc.pname": "nginx", "proc.cmdline": "sh -c /usr/local/bin/healthcheck --x"}),
    );
    assert!(fired(&rs, &e2).is_empty());
    // unrelated comm
    let e3 = ev(json!({"evt.type": "exec", "proc.name": "ls", "proc.pname": "nginx"}));
    assert!(fired(&rs, &e3).is_empty());
    let open = ev(
        json!({"evt.type": "open", "proc.name": "cat", "proc.exe": "/usr/bin/cat", "file.path": "/etc/shadow"}),
    );
    assert_eq!(fired(&rs, &open), ["Read shadow"]);
    let open_w = ev(
        json!({"evt.type": "open", "proc.name": "cat", "proc.exe": "/usr/bin/cat", "file.path": "/etc/shadow", "file.flags": ["O_WRONLY"]}),
    );
    assert!(fired(&rs, &open_w).is_empty());
    let st = evr.stats();
    assert_eq!(st.events, 1);
    assert_eq!(st.matches["Shell spawned by web server"], 1);
}

#[test]
fn every_matching_rule_fires() {
    let src = format!(
        "{BASE}\n- rule: Any shell\n  events: [exec]\n  condition: proc.name == \"sh\"\n  output: x\n  priority: info\n"
    );
    let rs = Arc::new(load(&src));
    let e = ev(json!({"evt.type": "exec", "proc.name": "sh", "proc.pname": "nginx"}));
    let mut f = fired(&rs, &e);
    f.sort();
    assert_eq!(f, ["Any shell", "Shell spawned by web server"]);
}

#[test]
fn errors_name_file_line_column_and_item() {
    let e = load_err(
        "- rule: A\n  events: [exec]\n  condition: proc.nmae == \"x\"\n  output: o\n  priority: info\n",
    );
    assert!(
        e.contains(
            "rules.yaml:3:14: rule `A`: unknown field `proc.nmae` (did you mean `proc.name`?)"
        ),
        "{e}"
    );
    let e = load_err("- rule: A\n  events: [exec]\n  condition: proc.name in shel_binaries\n  output: o\n  priority: info\n- list: shell_binaries\n  items: [sh]\n");
    assert!(e.contains("rules.yaml:3:27: rule `A`: unknown list or macro `shel_binaries` (did you mean `shell_binaries`?)"), "{e}");
    let e = load_err("- rule: A\n  events: [exec]\n  condition: file.path == \"/x\"\n  output: o\n  priority: info\n");
    assert!(
        e.contains("field `file.path` is not carried by any of this rule's events (exec)"),
        "{e}"
    );
    let e = load_err("- rule: A\n  events: [exec]\n  condition: proc.pid == \"x\"\n  output: o\n  priority: info\n  colour: red\n");
    assert!(e.contains("type error"), "{e}");
    assert!(
        e.contains("rules.yaml:6:3: rule `A`: unknown key `colour`"),
        "{e}"
    );
    let e = load_err(
        "- rule: A\n  events: [exec]\n  condition: proc.name > 3\n  output: o\n  priority: loud\n",
    );
    assert!(e.contains("type error"), "{e}");
    assert!(e.contains("unknown priority `loud`"), "{e}");
    let e = load_err("- rule: A\n  events: [exec]\n  condition: regex(proc.name, \"(\")\n  output: \"{proc.nam}\"\n  priority: info\n");
    assert!(e.contains("bad regex"), "{e}");
    assert!(e.contains("did you mean `proc.name`"), "{e}");
    let e = load_err("- rule: A\n  events: [exec]\n  condition: proc.name == \"a\"\n  output: o\n  priority: info\n- rule: A\n  events: [exec]\n  condition: proc.name == \"b\"\n  output: o\n  priority: info\n");
    assert!(
        e.contains("rules.yaml:6:1: rule `A`: duplicate rule (first defined at rules.yaml:1:1)"),
        "{e}"
    );
    let e = load_err("- rule: A\n  events: [exce]\n  condition: proc.name == \"a\"\n  output: o\n  priority: info\n");
    assert!(e.contains("unknown event type `exce`"), "{e}");
    let e = load_err("- rule: A\n  events: [exec]\n  condition: proc.name == \"a\" &&\n  output: o\n  priority: info\n");
    assert!(e.contains("syntax error"), "{e}");
    let e = load_err("- rule: A\n  events: [exec]\n  condition: proc.name == \"a\" && frobnicate(proc.name)\n  output: o\n  priority: info\n");
    assert!(
        e.contains(
            "rules.yaml:3:34: rule `A`: unknown function or wrong argument types: `frobnicate ("
        ),
        "{e}"
    );
    let e = load_err("- rule: A\n  events: [exec]\n  condition: proc.args.len() + 1\n  output: o\n  priority: info\n");
    assert!(
        e.contains("is i64, not a condition") || e.contains("is int, not a condition"),
        "{e}"
    );
    let e = load_err("- rule: A\n  events: [exec]\n  condition: proc.name = \"x\" and proc.pid > 1\n  output: o\n  priority: info\n");
    assert!(e.contains("rules.yaml:3:30: rule `A`: `and` is Falco filter syntax; vigil conditions are Rhai expressions: write `&&`"), "{e}");
    let e = load_err("- rule: A\n  events: [exec]\n  condition: >-\n    proc.name == \"x\" &&\n    proc.pid > 1 )\n  output: o\n  priority: info\n");
    assert!(
        e.contains("rules.yaml:5:18: rule `A`: unbalanced brackets: this `)` closes nothing"),
        "{e}"
    );
    let e = load_err("- rule: A\n  events: [exec\n");
    assert!(e.contains("YAML syntax error"), "{e}");
}

#[test]
fn append_override_and_warnings() {
    let base = "- list: l\n  items: [a]\n- macro: m\n  condition: proc.pname == \"p\"\n- rule: R\n  events: [exec]\n  condition: proc.name in l\n  output: o\n  priority: info\n  tags: [t1]\n";
    let extra = "- list: l\n  append: true\n  items: [b]\n- macro: m\n  append: true\n  condition: proc.pname == \"q\"\n- rule: R\n  append: true\n  condition: m\n  tags: [t2]\n  exceptions:\n    - name: e\n      fields: [proc.cmdline]\n      values: [[skip]]\n";
    let rs = Arc::new(
        RuleSet::from_sources(&[
            ("a.yaml".into(), base.into()),
            ("b.yaml".into(), extra.into()),
        ])
        .unwrap(),
    );
    let info: Vec<_> = rs.rules().collect();
    assert_eq!(info[0].tags, ["t1", "t2"]);
    let hit = |n: &str, p: &str, c: &str| {
        !fired(
            &rs,
            &ev(json!({"evt.type": "exec", "proc.name": n, "proc.pname": p, "proc.cmdline": c})),
        )
        .is_empty()
    };
    assert!(hit("b", "q", "x"));
    assert!(hit("a", "p", "x"));
    assert!(!hit("a", "z", "x"));
    assert!(!hit("b", "q", "skip"));
    // override: disable
    let off = "- rule: R\n  enabled: false\n";
    let rs2 = Arc::new(
        RuleSet::from_sources(&[
            ("a.yaml".into(), base.into()),
            ("c.yaml".into(), off.into()),
        ])
        .unwrap(),
    );
    assert!(!rs2.rules().next().unwrap().enabled);
    assert!(fired(
        &rs2,
        &ev(json!({"evt.type": "exec", "proc.name": "a", "proc.pname": "p"}))
    )
    .is_empty());
    assert_eq!(
        rs2.kernel_filter().types[EventType::Exec.index()],
        TypeFilter::Drop
    );
    let d = rs2.diff(&rs);
    assert_eq!(d.changed, ["R"]);
    assert!(d.added.is_empty() && d.removed.is_empty());
    // override of an unknown rule, append to unknown list: errors
    let e = RuleSet::from_sources(&[("c.yaml".into(), off.into())])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("c.yaml:1:1: rule `R`: rule has no `condition`"),
        "{e}"
    );
    // warning for long comm literal
    let w = load("- rule: W\n  events: [exec]\n  condition: proc.name == \"averyveryverylongname\"\n  output: o\n  priority: info\n");
    assert_eq!(w.warnings().len(), 1);
    assert!(
        w.warnings()[0].msg.contains("\"averyveryverylo\""),
        "{}",
        w.warnings()[0]
    );
}

#[test]
fn kernel_filter_and_index() {
    let src = "- rule: A\n  events: [exec, open]\n  condition: proc.name in [\"sh\", \"bash\"] && proc.pid > 0\n  output: o\n  priority: info\n- rule: B\n  events: [exec]\n  condition: proc.pname == \"nginx\" || proc.pid == 7\n  output: o\n  priority: info\n- rule: C\n  events: [connect]\n  condition: net.dport == 22\n  output: o\n  priority: info\n";
    let rs = load(src);
    let f = rs.kernel_filter();
    match &f.types[EventType::Exec.index()] {
        TypeFilter::Match(s) => {
            assert_eq!(s.comms.iter().collect::<Vec<_>>(), ["bash", "sh"]);
            assert_eq!(s.pcomms.iter().collect::<Vec<_>>(), ["nginx"]);
            assert_eq!(s.pids.iter().collect::<Vec<_>>(), [&7]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(f.types[EventType::Connect.index()], TypeFilter::PassAll);
    assert_eq!(f.types[EventType::Exit.index()], TypeFilter::Drop);
    let c = rs.filter_contributions();
    assert!(c[2].term.is_err());
}

#[test]
fn threshold_rules() {
    let src = "- rule: Storm\n  events: [retransmit]\n  condition: net.daddr != \"\"\n  output: \"storm to {net.daddr} n={vigil.count}\"\n  priority: warning\n  threshold: {count: 3, window: 1s, by: [net.daddr]}\n";
    let rs = Arc::new(load(src));
    let mut evr = Evaluator::new(rs.clone(), "h");
    let mut out = Vec::new();
    let mk = |t: i64, d: &str| ev(json!({"evt.type": "retransmit", "net.daddr": d, "evt.time": t}));
    for (t, d) in [(0, "a"), (100, "b"), (200, "a"), (300, "a")] {
        evr.evaluate(&mk(t * 1_000_000, d), &mut out);
    }
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].output, "storm to a n=3");
    assert_eq!(out[0].output_fields["vigil.count"], json!(3));
    // continuing within the window: no new alert; after a window: one more.
    for t in [400, 500, 900, 1200, 1300] {
        evr.evaluate(&mk(t * 1_000_000, "a"), &mut out);
    }
    assert_eq!(
        out.len(),
        2,
        "{:?}",
        out.iter().map(|a| &a.output).collect::<Vec<_>>()
    );
    assert_eq!(out[1].output_fields["vigil.count"], json!(5));
    // spread out: never reaches 3 within 1s
    let mut evr = Evaluator::new(rs, "h");
    let mut out = Vec::new();
    for t in [0, 600, 1200, 1800] {
        evr.evaluate(&mk(t * 1_000_000, "z"), &mut out);
    }
    assert!(out.is_empty());
}

#[test]
fn reload_keeps_state_of_unchanged_rules_only() {
    let storm = |count: u32| {
        format!("- rule: Storm\n  events: [retransmit]\n  condition: net.daddr != \"\"\n  output: \"storm n={{vigil.count}}\"\n  priority: warning\n  threshold: {{count: {count}, window: 10s, by: [net.daddr]}}\n")
    };
    let other = "- rule: Other\n  events: [exec]\n  condition: proc.name == \"x\"\n  output: o\n  priority: info\n";
    let mk =
        |t: i64| ev(json!({"evt.type": "retransmit", "net.daddr": "a", "evt.time": t * 1_000_000}));
    let mut evr = Evaluator::new(Arc::new(load(&storm(3))), "h");
    let mut out = Vec::new();
    evr.evaluate(&mk(0), &mut out);
    evr.evaluate(&mk(100), &mut out);
    assert!(out.is_empty());
    // A reload that adds another rule (or a SIGHUP reload of the same text):
    // Storm is unchanged, its window and counters carry over.
    evr.swap_rules(Arc::new(load(&format!("{}{other}", storm(3)))));
    evr.evaluate(&mk(200), &mut out);
    assert_eq!(out.len(), 1, "the third match within the window fires");
    assert_eq!(out[0].output_fields["vigil.count"], json!(3));
    assert_eq!(evr.stats().matches["Storm"], 1);
    evr.swap_rules(Arc::new(load(&storm(3))));
    assert_eq!(
        evr.stats().matches["Storm"],
        1,
        "per-rule counters carry over too"
    );
    // Changing Storm itself starts it fresh.
    evr.swap_rules(Arc::new(load(&storm(2))));
    out.clear();
    evr.evaluate(&mk(300), &mut out);
    assert!(
        out.is_empty(),
        "a changed rule does not inherit the old window"
    );
    evr.evaluate(&mk(400), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(evr.stats().matches["Storm"], 1);
}

#[test]
fn rhai_fallback_and_runaway() {
    let src = "- rule: Args\n  events: [exec]\n  condition: proc.name == \"x\" && proc.args.len() > 1\n  output: o\n  priority: info\n- rule: Loop\n  events: [exec]\n  condition: proc.name == \"y\" && proc.cmdline.split(\" \").len() > 1\n  output: o\n  priority: info\n";
    let rs = Arc::new(load(src));
    assert_eq!(rs.is_native("Args"), Some(false));
    assert_eq!(
        fired(
            &rs,
            &ev(json!({"evt.type": "exec", "proc.name": "x", "proc.args": ["a", "b"]}))
        ),
        ["Args"]
    );
    assert!(fired(
        &rs,
        &ev(json!({"evt.type": "exec", "proc.name": "x", "proc.args": ["a"]}))
    )
    .is_empty());
    let mut evr = Evaluator::new(rs.clone(), "h");
    let mut out = Vec::new();
    let long = "a ".repeat(6000);
    evr.evaluate(
        &ev(json!({"evt.type": "exec", "proc.name": "y", "proc.cmdline": long})),
        &mut out,
    );
    evr.evaluate(
        &ev(json!({"evt.type": "exec", "proc.name": "y", "proc.cmdline": "a b"})),
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(evr.stats().errors["Loop"], 1);
}

#[test]
fn evaluator_is_send_and_ruleset_sync() {
    fn send<T: Send>() {}
    fn sync<T: Send + Sync>() {}
    send::<Evaluator>();
    sync::<RuleSet>();
}

#[test]
fn directories_load_in_name_order_and_hash_is_stable() {
    let dir = tempfile::tempdir().unwrap();
    let w = |n: &str, t: &str| std::fs::write(dir.path().join(n), t).unwrap();
    w(
        "20-b.yml",
        "- rule: R\n  append: true\n  condition: proc.pid == 3\n",
    );
    w(
        "10-a.yaml",
        "- rule: R\n  events: [exec]\n  condition: proc.name == \"x\"\n  output: o\n  priority: info\n",
    );
    w(".hidden.yaml", "this is: [not loaded");
    w("notes.txt", "ignored");
    std::fs::create_dir(dir.path().join("tests")).unwrap();
    let rs = Arc::new(RuleSet::load(&[dir.path()]).unwrap());
    let names: Vec<String> = rs
        .sources()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["10-a.yaml", "20-b.yml"]);
    assert_eq!(
        rs.condition_text("R"),
        Some("(proc.name == \"x\") && (proc.pid == 3)")
    );
    let again = RuleSet::load(&[dir.path()]).unwrap();
    assert_eq!(again.hash(), rs.hash());
    assert_eq!(rs.hash().len(), 64);
    assert!(again.diff(&rs).is_empty());
    w(
        "20-b.yml",
        "- rule: S\n  events: [open]\n  condition: file.write\n  output: o\n  priority: info\n",
    );
    let changed = RuleSet::load(&[dir.path()]).unwrap();
    assert_ne!(changed.hash(), rs.hash());
    let d = changed.diff(&rs);
    assert_eq!(
        (d.added, d.changed, d.removed),
        (vec!["S".to_string()], vec!["R".to_string()], vec![])
    );
    // swap_rules: new rules apply, no stale state
    let mut evr = Evaluator::new(rs.clone(), "h");
    let mut out = Vec::new();
    let e = ev(json!({"evt.type": "open", "proc.name": "x", "file.flags": ["O_WRONLY"]}));
    evr.evaluate(&e, &mut out);
    assert!(out.is_empty());
    evr.swap_rules(Arc::new(changed));
    evr.evaluate(&e, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(evr.stats().matches["S"], 1);
    // a missing path is an error naming it
    let err = RuleSet::load(&[dir.path().join("nope")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope") && err.contains("cannot read"), "{err}");
}

#[test]
fn all_errors_are_collected() {
    let e = RuleSet::from_sources(&[
        ("a.yaml".into(), "- rule: A\n  events: [exec]\n  condition: proc.nme == \"x\"\n  output: o\n  priority: info\n".into()),
        ("b.yaml".into(), "- rule: B\n  events: [exec]\n  condition: nosuchmacro\n  output: \"{bogus.field}\"\n  priority: info\n- macro: m\n  append: true\n  condition: proc.pid == 1\n".into()),
    ])
    .unwrap_err();
    let msgs: Vec<String> = e.iter().map(|x| x.to_string()).collect();
    assert_eq!(msgs.len(), 4, "{msgs:#?}");
    assert!(msgs[3].starts_with("b.yaml:6:1: macro `m`"), "{msgs:#?}");
    assert!(
        msgs.iter().any(|m| m.starts_with(
            "b.yaml:4:3: rule `B`: unknown field `bogus.field` in output placeholder"
        )),
        "{msgs:#?}"
    );
    assert!(
        msgs[0].starts_with("a.yaml:3:14: rule `A`: unknown field `proc.nme`"),
        "{msgs:#?}"
    );
    assert!(
        msgs.iter().any(|m| m
            .starts_with("b.yaml:6:1: macro `m`: `append: true` to a macro not defined earlier")),
        "{msgs:#?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("b.yaml:3:14: rule `B`: unknown list or macro `nosuchmacro`")),
        "{msgs:#?}"
    );
}

#[test]
fn long_chains_load_and_hostile_nesting_is_refused() {
    let terms: Vec<String> = (0..2000)
        .map(|i| format!("proc.name == \"n{i}\""))
        .collect();
    let src = format!(
        "- rule: R\n  events: [exec]\n  condition: '{}'\n  output: o\n  priority: info\n",
        terms.join(" || ")
    );
    let rs = Arc::new(load(&src));
    assert_eq!(
        fired(&rs, &ev(json!({"evt.type": "exec", "proc.name": "n1999"}))),
        ["R"]
    );
    assert!(fired(&rs, &ev(json!({"evt.type": "exec", "proc.name": "n2000"}))).is_empty());
    // the filter and index see the whole disjunction
    match &rs.kernel_filter().types[EventType::Exec.index()] {
        TypeFilter::Match(s) => assert_eq!(s.comms.len(), 2000),
        other => panic!("{other:?}"),
    }
    let deep = format!("{}proc.tty{}", "(".repeat(20_000), ")".repeat(20_000));
    let e = load_err(&format!(
        "- rule: D\n  events: [exec]\n  condition: '{deep}'\n  output: o\n  priority: info\n"
    ));
    assert!(
        e.contains("rule `D`: syntax error in condition: Expression exceeds maximum complexity"),
        "{e}"
    );
}

#[test]
fn macro_cycles_and_misc_operators() {
    let e = load_err("- macro: a\n  condition: b && proc.tty\n- macro: b\n  condition: a\n- rule: R\n  events: [exec]\n  condition: a\n  output: o\n  priority: info\n");
    assert!(e.contains("macro refers to itself"), "{e}");
    let e = load_err("- list: my-list\n  items: [a]\n");
    assert!(
        e.contains("rules.yaml:1:1: list `my-list`: name must be an identifier"),
        "{e}"
    );
    let rs = Arc::new(load(
        "- list: ports\n  items: [22, 2222]\n- rule: R\n  events: [connect]\n  condition: net.dport !in ports && cidr(net.daddr, \"10.0.0.0/8\") && !(net.proto in [\"udp\"])\n  output: \"{net.daddr}:{net.dport}\"\n  priority: notice\n  exceptions:\n    - name: lab\n      fields: [net.daddr, proc.name]\n      values: [[10.9.9.9, curl]]\n",
    ));
    assert_eq!(rs.is_native("R"), Some(true));
    let c = |d: &str, p: i64, n: &str| {
        fired(
            &rs,
            &ev(
                json!({"evt.type": "connect", "net.daddr": d, "net.dport": p, "net.proto": "tcp", "proc.name": n}),
            ),
        )
    };
    assert_eq!(c("10.1.2.3", 80, "curl"), ["R"]);
    assert!(c("10.1.2.3", 22, "curl").is_empty());
    assert!(c("192.168.1.1", 80, "curl").is_empty());
    assert!(c("10.9.9.9", 80, "curl").is_empty());
    assert_eq!(c("10.9.9.9", 80, "wget"), ["R"]);
}

#[test]
fn flow_style_files_still_get_positions() {
    let e = load_err("[ {list: l, items: [a]},\n  {rule: R, events: [exec], condition: \"proc.nmae == 1\", output: o, priority: info} ]\n");
    assert!(e.starts_with("rules.yaml:2:"), "{e}");
    assert!(e.contains("rule `R`: unknown field `proc.nmae`"), "{e}");
}

#[test]
fn hints_for_common_mistakes() {
    let cases = [
        ("proc.name = \"x\"", "compare with `==`"),
        ("proc.name == 'sh'", "strings use double quotes"),
        (
            "proc.name in (\"sh\", \"bash\")",
            "a set of values is an array",
        ),
        (
            "evt.type == exec",
            "a string value must be quoted: \"exec\"",
        ),
    ];
    for (c, want) in cases {
        let e = load_err(&format!(
            "- rule: R\n  events: [exec]\n  condition: \"{}\"\n  output: o\n  priority: info\n",
            c.replace('"', "\\\"")
        ));
        assert!(e.contains(want), "{c}: {e}");
    }
}

/// `proc.ancestors[N]` runs natively and reads "" past the known ancestry
/// (Rhai would stop with an index error, counted as an evaluation error).
#[test]
fn array_element_is_native_and_empty_past_the_end() {
    let rs = Arc::new(load(
        "- rule: Grandparent nginx\n  desc: d\n  events: [exec]\n  condition: proc.ancestors[1] == \"nginx\" || proc.ancestors[5] in [\"x\", \"y\"]\n  output: o\n  priority: warning\n",
    ));
    assert_eq!(rs.is_native("Grandparent nginx"), Some(true));
    let e =
        |anc: Vec<&str>| ev(json!({"evt.type": "exec", "proc.name": "sh", "proc.ancestors": anc}));
    assert_eq!(
        fired(&rs, &e(vec!["bash", "nginx"])),
        vec!["Grandparent nginx"]
    );
    assert!(fired(&rs, &e(vec!["nginx"])).is_empty());
    let mut evr = Evaluator::new(rs.clone(), "h");
    evr.evaluate(&e(vec![]), &mut Vec::new());
    assert!(evr.stats().errors.is_empty());
}

/// The daemon's rule selection: a disabled rule neither fires nor keeps a
/// kernel-filter term, and the candidate index is rebuilt without it.
#[test]
fn disable_where_removes_rules_from_evaluation_and_filter() {
    let mut rs = load(BASE);
    let exec = ev(
        json!({"evt.type": "exec", "proc.name": "sh", "proc.pname": "nginx", "proc.cmdline": "sh -c id"}),
    );
    assert_eq!(
        fired(&Arc::new(load(BASE)), &exec),
        vec!["Shell spawned by web server"]
    );
    assert!(!matches!(
        rs.kernel_filter().types[EventType::Exec.index()],
        TypeFilter::Drop
    ));
    let off = rs.disable_where(|r| r.tags.iter().any(|t| t == "process"));
    assert_eq!(off, vec!["Shell spawned by web server"]);
    assert!(rs
        .disable_where(|r| r.tags.iter().any(|t| t == "process"))
        .is_empty());
    let info: Vec<_> = rs.rules().map(|r| (r.name, r.enabled)).collect();
    assert_eq!(
        info,
        vec![
            ("Shell spawned by web server".to_string(), false),
            ("Read shadow".to_string(), true)
        ]
    );
    assert!(matches!(
        rs.kernel_filter().types[EventType::Exec.index()],
        TypeFilter::Drop
    ));
    assert!(fired(&Arc::new(rs), &exec).is_empty());
}

/// The selection's `-t TAG` turns on a rule its file disables: it fires, has
/// its kernel-filter term back, and shows as changed in a diff; the set's
/// node budget still holds (refused whole when it would not).
#[test]
fn enable_where_turns_on_a_rule_its_file_disables() {
    let src = BASE.replace(
        "  tags: [process]\n",
        "  tags: [process]\n  enabled: false\n",
    );
    let mut rs = load(&src);
    let exec = ev(
        json!({"evt.type": "exec", "proc.name": "sh", "proc.pname": "nginx", "proc.cmdline": "sh -c id"}),
    );
    assert!(fired(&Arc::new(load(&src)), &exec).is_empty());
    assert!(matches!(
        rs.kernel_filter().types[EventType::Exec.index()],
        TypeFilter::Drop
    ));
    let tagged = |r: &vigil_engine::RuleInfo| r.tags.iter().any(|t| t == "process");
    let e = rs.enable_where(tagged, 1).unwrap_err();
    assert!(e.contains("more than 1"), "{e}");
    assert!(rs.rules().all(|r| r.enabled == (r.name == "Read shadow")));
    let on = rs
        .enable_where(tagged, vigil_engine::ruleset::MAX_SET_NODES)
        .unwrap();
    assert_eq!(on, vec!["Shell spawned by web server"]);
    assert!(!matches!(
        rs.kernel_filter().types[EventType::Exec.index()],
        TypeFilter::Drop
    ));
    assert_eq!(rs.diff(&load(&src)).changed, on);
    assert_eq!(
        fired(&Arc::new(rs), &exec),
        vec!["Shell spawned by web server"]
    );
}
