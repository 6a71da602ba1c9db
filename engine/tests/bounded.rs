//! Bounded compilation: rule files whose macros or lists expand
//! exponentially (or just too far) are rejected at load with an error that
//! names where and which chain, without building the expansion; deep but
//! legitimate macro use still loads; every rule's worst-case cost is known.
//!
//! None of these tests times anything: a bomb that were expanded would not
//! finish (depth 40 is 2^40 copies), so a passing test is the proof.

#[path = "common/bombs.rs"]
mod bombs;

use std::sync::Arc;

use serde_json::json;
use vigil_engine::ruleset::{MAX_CONDITION_BYTES, MAX_MACRO_DEPTH};
use vigil_engine::{Evaluator, Event, Limits, LoadErrors, RuleSet};

fn load(src: &str) -> Result<RuleSet, LoadErrors> {
    load_with(src, Limits::default())
}

fn load_with(src: &str, limits: Limits) -> Result<RuleSet, LoadErrors> {
    RuleSet::from_sources_with_limits(&[("bomb.yaml".to_string(), src.to_string())], limits)
}

use bombs::{list_bomb, macro_bomb, rule};

fn ev(j: serde_json::Value) -> Event {
    Event::from_flat_json(j.as_object().unwrap()).unwrap()
}

fn fired(rs: RuleSet, e: &Event) -> Vec<String> {
    let mut ev = Evaluator::new(Arc::new(rs), "h");
    let mut out = Vec::new();
    ev.evaluate(e, &mut out);
    out.iter().map(|a| a.rule.to_string()).collect()
}

#[test]
fn exponential_macros_are_rejected_with_the_chain() {
    for depth in [22, 40] {
        let text = macro_bomb(depth);
        assert!(text.len() < 2500, "{}", text.len());
        let errs = load(&text).expect_err("bomb must not load");
        let msg = errs.to_string();
        // One error, at the outermost macro's item, naming the chain.
        assert_eq!(errs.len(), 1, "{msg}");
        let line = 2 * depth + 2; // its `condition:`
        let want = format!(
            "bomb.yaml:{line}:3: macro `m_{depth}`: macro m_{depth} -> m_{} -> m_{} -> m_{} -> ... -> m_2 -> m_1 -> m_0 expands beyond {MAX_CONDITION_BYTES} bytes",
            depth - 1,
            depth - 2,
            depth - 3
        );
        assert!(msg.starts_with(&want), "want {want:?}, got:\n{msg}");
    }
}

#[test]
fn nested_lists_are_merged_not_copied() {
    // 2^40 copies if copied; two distinct items when merged.
    let rs = load(&list_bomb(40)).expect("a list nested in itself twice is just its items");
    assert_eq!(
        fired(rs, &ev(json!({"evt.type": "exec", "proc.name": "b"}))),
        vec!["List bomb"]
    );
    let rs = load(&list_bomb(22)).unwrap();
    assert!(fired(rs, &ev(json!({"evt.type": "exec", "proc.name": "c"}))).is_empty());
}

#[test]
fn lists_that_grow_quadratically_hit_the_set_budget() {
    // l_i = l_{i-1} + one item: each list copies the previous one, so n
    // lists hold ~n²/2 items in all. (Small budgets keep the test quick; the
    // defaults are the same code with larger numbers.)
    let limits = Limits {
        list_work: 20_000,
        ..Limits::default()
    };
    let mut s = String::from("- list: l_0\n  items: [x0]\n");
    for i in 1..300 {
        s.push_str(&format!("- list: l_{i}\n  items: [l_{}, x{i}]\n", i - 1));
    }
    let msg = load_with(&s, limits)
        .expect_err("over the list budget")
        .to_string();
    // 1 + 2 + ... + 200 = 20,100 items at l_199.
    assert!(
        msg.starts_with(
            "bomb.yaml:400:3: list `l_199`: lists expand to more than 20000 items in all at list l_199 -> l_198 -> l_197 -> l_196 -> ... -> l_2 -> l_1 -> l_0"
        ),
        "{msg}"
    );
    assert_eq!(msg.lines().count(), 1, "reported once: {msg}");

    let limits = Limits {
        list_items: 10,
        ..Limits::default()
    };
    let s =
        "- list: a\n  items: [1, 2, 3, 4, 5, 6]\n- list: b\n  items: [a, 5, 6, 7, 8, 9, 10, 11]\n";
    let msg = load_with(s, limits)
        .expect_err("too many items")
        .to_string();
    assert!(
        msg.contains("bomb.yaml:4:3: list `b`: list b -> a holds more than 10 distinct items"),
        "{msg}"
    );
    assert!(
        load_with(&s.replace(", 11", ""), limits).is_ok(),
        "repeats are not counted"
    );
}

#[test]
fn deep_but_legitimate_macros_load() {
    // A Falco-style chain (each macro refines the previous) and a diamond
    // (two macros share a third) with a per-use cost well in bounds.
    let mut s = String::from("- macro: c_0\n  condition: proc.name != \"x\"\n");
    for i in 1..MAX_MACRO_DEPTH {
        s.push_str(&format!(
            "- macro: c_{i}\n  condition: c_{} && proc.pid != {i}\n",
            i - 1
        ));
    }
    s.push_str("- macro: base\n  condition: proc.pname == \"nginx\"\n");
    s.push_str("- macro: left\n  condition: base && proc.uid == 0\n");
    s.push_str("- macro: right\n  condition: base || proc.tty\n");
    s.push_str(&rule(
        "Deep",
        &format!("c_{} && (left || right)", MAX_MACRO_DEPTH - 1),
    ));
    let rs = load(&s).unwrap_or_else(|e| panic!("{e}"));
    let (_, cost) = rs.costs().next().unwrap();
    // The chain flattens into one `&&` of 64 terms.
    assert!(cost.nodes > MAX_MACRO_DEPTH && cost.nodes < 100, "{cost:?}");
    assert_eq!(cost.rhai_leaves, 0);
    assert_eq!(
        fired(
            rs,
            &ev(
                json!({"evt.type": "exec", "proc.name": "y", "proc.pid": 1000, "proc.pname": "nginx", "proc.uid": 0})
            )
        ),
        vec!["Deep"]
    );
}

#[test]
fn macro_chains_deeper_than_the_limit_are_rejected() {
    let depth = MAX_MACRO_DEPTH + 5;
    let mut s = String::from("- macro: c_0\n  condition: proc.pid != 0\n");
    for i in 1..=depth {
        s.push_str(&format!("- macro: c_{i}\n  condition: c_{}\n", i - 1));
    }
    s.push_str(&rule("Too deep", &format!("c_{depth}")));
    let msg = load(&s).expect_err("too deep").to_string();
    assert!(
        msg.contains(&format!(
            "macro `c_{depth}`: macro c_{depth} -> c_{} ->",
            depth - 1
        )) && msg.contains(&format!("nests macros more than {MAX_MACRO_DEPTH} deep")),
        "{msg}"
    );
    assert_eq!(msg.lines().count(), 1, "{msg}");
}

#[test]
fn a_rule_repeating_a_large_macro_is_rejected_at_its_condition() {
    // m_12 is within the limit (~57 KiB), three uses of it are not.
    let mut s = String::from("- macro: m_0\n  condition: proc.pid == 0\n");
    for i in 1..=12 {
        s.push_str(&format!(
            "- macro: m_{i}\n  condition: m_{} || m_{}\n",
            i - 1,
            i - 1
        ));
    }
    let cond_line = s.lines().count() + 4;
    s.push_str(&rule("Repeats", "m_12 && m_12 || m_12"));
    let msg = load(&s).expect_err("too big").to_string();
    assert!(
        msg.starts_with(&format!(
            "bomb.yaml:{cond_line}:3: rule `Repeats`: condition expands beyond {MAX_CONDITION_BYTES} bytes"
        )) && msg.contains("through macro m_12 -> m_11 -> m_10 -> m_9 -> ... -> m_2 -> m_1 -> m_0"),
        "{msg}"
    );
}

#[test]
fn per_rule_and_per_set_cost_limits() {
    let limits = Limits {
        rule_nodes: 1000,
        set_nodes: 5000,
        ..Limits::default()
    };
    // `!proc.tty` is two nodes: 600 of them under `||` are 1,201 nodes.
    // (Quoted: a YAML scalar cannot start with `!`.)
    let wide = format!("\"{}\"", vec!["!proc.tty"; 600].join(" || "));
    let msg = load_with(&rule("Wide", &wide), limits)
        .expect_err("too costly")
        .to_string();
    assert!(
        msg.contains(
            "bomb.yaml:4:3: rule `Wide`: condition costs 1201 nodes per event in the worst case (limit 1000)"
        ),
        "{msg}"
    );
    // Each rule within the limit, together over the set's.
    let n_terms = 450; // 901 nodes each
    let per_rule = 2 * n_terms + 1;
    let cond = format!("\"{}\"", vec!["!proc.tty"; n_terms].join(" || "));
    let n_rules = 5000 / per_rule + 1;
    let s: String = (0..n_rules)
        .map(|i| rule(&format!("R{i}"), &cond))
        .collect();
    let msg = load_with(&s, limits)
        .expect_err("set too costly")
        .to_string();
    assert!(
        msg.contains(&format!(
            "rule `R{}`: the enabled rules' conditions cost more than 5000 nodes per event in all at this rule",
            n_rules - 1
        )),
        "{msg}"
    );
    // One rule fewer loads, and reports its costs; so do the disabled ones.
    let s: String = (0..n_rules - 1)
        .map(|i| rule(&format!("R{i}"), &cond))
        .collect();
    let rs = load_with(&s, limits).unwrap_or_else(|e| panic!("{e}"));
    assert!(rs.costs().all(|(_, c)| c.nodes == per_rule));
    let disabled = format!("{s}- rule: R0\n  enabled: false\n");
    let more: String = (0..3).map(|i| rule(&format!("X{i}"), &cond)).collect();
    let with_more = format!(
        "{disabled}{}",
        more.replace("events: [exec]", "events: [exec]\n  enabled: false")
    );
    assert!(
        load_with(&with_more, limits).is_ok(),
        "disabled rules cost nothing per event"
    );
}
