//! Condition compiler: any text as one rule's condition, next to a few fixed
//! lists and macros, compiled (native lowering and Rhai) and, when it loads,
//! evaluated on an event of each type.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vigil_engine::{Evaluator, Event, EventType, RuleSet};

const PRELUDE: &str = r#"
- list: shells
  items: [sh, bash, dash]
- list: ports
  items: [22, 2222]
- macro: spawned
  condition: evt.type == "exec"
- macro: web
  condition: proc.pname in ["nginx", "httpd"] && !proc.tty
"#;

const TYPES: [EventType; 6] = [
    EventType::Exec,
    EventType::Open,
    EventType::Connect,
    EventType::Accept,
    EventType::Retransmit,
    EventType::Exit,
];

fuzz_target!(|data: &[u8]| {
    let Ok(cond) = std::str::from_utf8(data) else {
        return;
    };
    // A YAML block scalar keeps the condition text as given.
    let mut rule = String::from(
        "- rule: F\n  desc: d\n  events: [exec, open, connect, accept, retransmit, exit]\n  output: \"f\"\n  priority: info\n  condition: |-\n",
    );
    for line in cond.lines() {
        rule.push_str("    ");
        rule.push_str(line);
        rule.push('\n');
    }
    let src = format!("{PRELUDE}{rule}");
    let Ok(rs) = RuleSet::from_sources(&[("fuzz.yaml".to_string(), src)]) else {
        return;
    };
    let mut ev = Evaluator::new(Arc::new(rs), "fuzz");
    let mut out = Vec::new();
    for t in TYPES {
        ev.evaluate(&Event::new(t), &mut out);
    }
});
