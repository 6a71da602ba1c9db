//! Property tests: the native evaluation tree and Rhai agree on generated
//! conditions and events; the rule index never skips a matching rule; the
//! derived kernel filter passes every event a rule matches.

use std::sync::Arc;

use proptest::prelude::*;
use serde_json::json;
use vigil_engine::{Evaluator, Event, RuleSet};

const NAMES: &[&str] = &["sh", "bash", "nginx", "a", "averyveryverylongname"];
const PIDS: &[i64] = &[1, 2, 3, 7];
const TEXTS: &[&str] = &["sh -c id", "abc", "", "bash -i", "/usr/bin/x"];

fn q(s: &str) -> String {
    format!("\"{s}\"")
}

fn leaf() -> impl Strategy<Value = String> {
    let name = prop::sample::select(NAMES).prop_map(q);
    let pid = prop::sample::select(PIDS);
    let text = prop::sample::select(TEXTS).prop_map(q);
    let part = prop::sample::select(&["sh", "a", "/usr", "id", "x", ""][..]).prop_map(q);
    prop_oneof![
        name.clone().prop_map(|n| format!("proc.name == {n}")),
        name.clone().prop_map(|n| format!("proc.pname != {n}")),
        (name.clone(), name.clone()).prop_map(|(a, b)| format!("proc.pname in [{a}, {b}]")),
        Just("proc.name in shells".to_string()),
        Just("proc.pname in shells".to_string()),
        pid.clone().prop_map(|p| format!("proc.pid == {p}")),
        pid.clone().prop_map(|p| format!("proc.pid > {p}")),
        pid.clone().prop_map(|p| format!("proc.pid <= {p}")),
        (pid.clone(), pid).prop_map(|(a, b)| format!("proc.pid in [{a}, {b}]")),
        part.clone()
            .prop_map(|p| format!("proc.cmdline.starts_with({p})")),
        part.clone()
            .prop_map(|p| format!("proc.cmdline.ends_with({p})")),
        part.clone()
            .prop_map(|p| format!("contains(proc.cmdline, {p})")),
        part.clone().prop_map(|p| format!("{p} in proc.cmdline")),
        part.clone().prop_map(|p| format!("{p} in proc.args")),
        part.clone().prop_map(|p| format!("proc.exe < {p}")),
        text.prop_map(|t| format!("proc.cmdline == {t}")),
        Just("proc.tty".to_string()),
        Just("regex(proc.cmdline, \"^[a-z]+ -[ci]\")".to_string()),
        Just("glob(proc.exe, \"/usr/*/x\")".to_string()),
        Just("proc.unit == \"x.service\"".to_string()),
        Just("container.id in [\"c1\", \"c2\"]".to_string()),
        Just("proc.cgroup == \"/a\"".to_string()),
        Just("proc.uid != 0".to_string()),
        prop::sample::select(&["O_TRUNC", "O_RDONLY", "O_WRONLY", "O_CREAT"][..])
            .prop_map(|f| format!("\"{f}\" in file.flags")),
        Just("file.flags.contains(\"O_APPEND\")".to_string()),
        Just("file.write".to_string()),
        Just("file.path.starts_with(\"/etc/\")".to_string()),
        Just("file.path in [\"/etc/shadow\", \"/tmp/x\"]".to_string()),
        Just("file.path == \"/var/log/syslog\"".to_string()),
        Just("starts_with(file.path, \"/tmp\")".to_string()),
        Just("glob(file.path, \"/var/*/syslog\")".to_string()),
        Just("glob(file.path, \"**/shadow\")".to_string()),
        Just("!file.path_raw.starts_with(\"/\")".to_string()),
        Just("file.path_raw.contains(\"/../\")".to_string()),
        Just("file.path_raw.contains(\"../\")".to_string()),
        Just("file.write && file.path.starts_with(\"/etc/\")".to_string()),
        Just("file.path.ends_with(\"/shadow\")".to_string()),
        Just(
            "file.write && (file.path == \"/tmp/x\" || file.path_raw.contains(\"/../\"))"
                .to_string()
        ),
        Just("file.path.ends_with(\"x\")".to_string()),
        Just("file.write && (file.path.ends_with(\"log\") || file.path == \"/tmp/x\")".to_string()),
    ]
}

fn cond() -> impl Strategy<Value = String> {
    leaf().prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) && ({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} && {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) || ({b})")),
            inner.prop_map(|a| format!("!({a})")),
        ]
    })
}

/// A clean absolute path longer than the kernel's path key.
const LONG: &str = "/etc/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

/// A raw path (as a process could pass it) that normalises to `path`.
fn raw_path(path: &str, kind: usize) -> String {
    let rest = &path[1..];
    match kind {
        0 => path.to_string(),
        1 => format!("{path}/"),
        2 => format!("/{path}"),
        3 => format!("/tmp/../{rest}"),
        4 => format!("../../../../../../{rest}"),
        5 => format!("/./{rest}"),
        _ => format!("/{}{}{rest}", "a/".repeat(130), "../".repeat(130)),
    }
}

fn event() -> impl Strategy<Value = Event> {
    (
        prop::sample::select(NAMES),
        prop::sample::select(NAMES),
        prop::sample::select(PIDS),
        prop::sample::select(TEXTS),
        prop::sample::select(TEXTS),
        any::<bool>(),
        prop::sample::select(&["", "x.service"][..]),
        prop::sample::select(&["", "c1", "c3"][..]),
        prop::sample::select(&["/", "/a"][..]),
        0i64..2,
        (
            any::<bool>(),
            prop::sample::select(
                &[
                    "/etc/shadow",
                    "/etc/passwd",
                    "/tmp/x",
                    "/var/log/syslog",
                    LONG,
                ][..],
            ),
            0usize..7,
            prop::sample::subsequence(
                &[
                    "O_WRONLY",
                    "O_RDWR",
                    "O_CREAT",
                    "O_TRUNC",
                    "O_APPEND",
                    "O_CLOEXEC",
                ][..],
                0..4,
            ),
        ),
    )
        .prop_map(
            |(n, p, pid, cmd, exe, tty, unit, cid, cg, uid, (open, path, raw_kind, flags))| {
                let args: Vec<&str> = cmd.split_whitespace().skip(1).collect();
                let mut j = json!({
                    "evt.type": "exec", "proc.name": n, "proc.pname": p, "proc.pid": pid,
                    "proc.cmdline": cmd, "proc.args": args, "proc.exe": exe, "proc.tty": tty,
                    "proc.unit": unit, "container.id": cid, "proc.cgroup": cg, "proc.uid": uid,
                });
                if open {
                    j["evt.type"] = json!("open");
                    j["file.path"] = json!(path);
                    j["file.path_raw"] = json!(raw_path(path, raw_kind));
                    j["file.flags"] = json!(flags);
                }
                Event::from_flat_json(j.as_object().unwrap()).unwrap()
            },
        )
}

fn rules_for(conds: &[String]) -> RuleSet {
    let mut src = String::from("- list: shells\n  items: [sh, bash]\n");
    for (i, c) in conds.iter().enumerate() {
        src.push_str(&format!(
            "- rule: r{i}\n  events: [exec, open]\n  condition: '{}'\n  output: o\n  priority: info\n",
            c.replace('\'', "''")
        ));
    }
    match RuleSet::from_sources(&[("p.yaml".into(), src)]) {
        Ok(r) => r,
        Err(e) => panic!("generated rules failed to load: {e}\n{conds:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, .. ProptestConfig::default() })]

    #[test]
    fn native_and_rhai_agree(c in cond(), evs in prop::collection::vec(event(), 1..8)) {
        let rs = rules_for(std::slice::from_ref(&c));
        prop_assert_eq!(rs.is_native("r0"), Some(true), "not native: {}", c);
        for e in &evs {
            let (native, rhai) = rs.eval_both("r0", e).unwrap();
            prop_assert!(native.is_ok() && rhai.is_ok(), "{}: {:?} {:?}", c, native, rhai);
            prop_assert_eq!(native.clone().unwrap(), rhai.clone().unwrap(), "{} on {:?}", c, e);
        }
    }

    #[test]
    fn index_and_filter_are_sound(conds in prop::collection::vec(cond(), 1..6), evs in prop::collection::vec(event(), 1..12)) {
        let rs = Arc::new(rules_for(&conds));
        let filter = rs.kernel_filter();
        let mut evr = Evaluator::new(rs.clone(), "h");
        let mut out = Vec::new();
        for e in &evs {
            out.clear();
            evr.evaluate(e, &mut out);
            let fired: Vec<String> = out.iter().map(|a| a.rule.to_string()).collect();
            for (i, c) in conds.iter().enumerate() {
                let name = format!("r{i}");
                let want = rs.eval_native(&name, e).unwrap().unwrap();
                prop_assert_eq!(fired.contains(&name), want, "index disagrees for {}: {}", name, c);
            }
            if !out.is_empty() {
                prop_assert!(filter.passes(e), "filter drops a matching event: {:?} {:?}", fired, e);
            }
        }
    }
}
