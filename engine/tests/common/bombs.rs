//! Rule files that expand exponentially when macros or lists are copied
//! (issue 17, item 1), shared by the engine's tests and the command-line and
//! reload tests (`#[path]`-included; not every includer uses every generator).
#![allow(dead_code)]

/// A minimal rule on exec events.
pub fn rule(name: &str, cond: &str) -> String {
    format!(
        "- rule: {name}\n  desc: d\n  events: [exec]\n  condition: {cond}\n  output: \"{name}\"\n  priority: warning\n"
    )
}

/// `m_0: proc.pid == 0`, `m_i: m_{i-1} || m_{i-1}`, and a rule using the top:
/// the 2 KB file (m_i expands to 2^i copies of m_0).
pub fn macro_bomb(depth: usize) -> String {
    let mut s = String::from("- macro: m_0\n  condition: proc.pid == 0\n");
    for i in 1..=depth {
        s.push_str(&format!(
            "- macro: m_{i}\n  condition: m_{} || m_{}\n",
            i - 1,
            i - 1
        ));
    }
    s.push_str(&rule("Bomb", &format!("m_{depth}")));
    s
}

/// `l_0: [a, b]`, `l_i: [l_{i-1}, l_{i-1}]`: the same with lists.
pub fn list_bomb(depth: usize) -> String {
    let mut s = String::from("- list: l_0\n  items: [a, b]\n");
    for i in 1..=depth {
        s.push_str(&format!(
            "- list: l_{i}\n  items: [l_{}, l_{}]\n",
            i - 1,
            i - 1
        ));
    }
    s.push_str(&rule("List bomb", &format!("proc.name in l_{depth}")));
    s
}
