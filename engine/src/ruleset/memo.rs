//! Shared work evaluated once per event: sub-conditions that several rules
//! (or several places of one rule) contain — a disjunctive macro such as
//! Falco's `sensitive_files` or `shell_procs`-style tests, a regex, glob or
//! Rhai leaf that many rules repeat — become one [`Node::Memo`] each, whose
//! result the evaluator keeps for the rest of the event (`condition::Memo`,
//! one slot per shared sub-condition).
//!
//! Macros are expanded as text before compiling, so sharing is found on the
//! compiled trees. A conjunctive macro used in a conjunction (Falco's
//! `open_read`, `spawned_process`) is flattened into the rule's `&&` chain:
//! its cheap comparisons stay per rule, its costly leaves are shared. Every
//! sub-tree gets a structural identity (bottom-up interning: its shape, its
//! literals, its children's identities; regexes by their shared compiled
//! pattern, lists by content), and a sub-tree met
//! at least twice is shared when it is worth a memo lookup (three nodes or
//! more, or one costly leaf: regex, glob, CIDR, substring, array or Rhai).
//! Inside a shared sub-tree, a smaller one is shared only when it also
//! occurs elsewhere. A rule's root is never wrapped (its top-level clauses
//! stay visible to `why_not`, the kernel filter and the index, which see
//! through memo nodes anyway). Evaluation order, short-circuits and errors
//! are unchanged: a memo node runs its sub-tree the first time it is
//! reached in an event, exactly as before, and answers from the slot after.

use std::collections::HashMap;
use std::sync::Arc;

use super::Rule;
use crate::condition::{ListSet, Node, StrOp};

/// Identities of the sub-trees of every rule.
#[derive(Default)]
struct Interner {
    ids: HashMap<String, u32>,
    /// Per identity: occurrences, and whether a memo lookup pays off.
    count: Vec<u32>,
    worth: Vec<bool>,
    /// The identity of each original node (by address; the trees are not
    /// touched until the rebuild).
    of: HashMap<usize, u32>,
    /// List content keys, by `Arc` address.
    lists: HashMap<usize, String>,
}

fn addr(n: &Node) -> usize {
    n as *const Node as usize
}

impl Interner {
    fn list_key(&mut self, set: &Arc<ListSet>) -> String {
        self.lists
            .entry(Arc::as_ptr(set) as usize)
            .or_insert_with(|| {
                let mut s: Vec<&String> = set.strs.iter().collect();
                s.sort();
                let mut i: Vec<&i64> = set.ints.iter().collect();
                i.sort();
                format!("{s:?}{i:?}")
            })
            .clone()
    }

    /// The identity of `n` and its size in nodes.
    fn intern(&mut self, n: &Node) -> (u32, usize) {
        let mut size = 1usize;
        let mut kids = |this: &mut Interner, v: &[Node]| {
            let mut k = String::new();
            for c in v {
                let (id, s) = this.intern(c);
                size = size.saturating_add(s);
                k.push_str(&id.to_string());
                k.push(',');
            }
            k
        };
        let (key, costly) = match n {
            Node::Const(b) => (format!("C{b}"), false),
            Node::BoolField(f) => (format!("B{f:?}"), false),
            Node::Cmp(op, a, b) => (format!("Q{op:?}{a:?}{b:?}"), false),
            Node::InSet(x, set) => (format!("I{x:?}{}", self.list_key(set)), false),
            Node::InArray(x, f) => (format!("A{x:?}{f:?}"), true),
            Node::FlagIn(name) => (format!("F{name:?}"), false),
            Node::Str(op, a, b) => (format!("S{op:?}{a:?}{b:?}"), *op == StrOp::Contains),
            Node::Regex(x, r) => (format!("R{x:?}{:p}", Arc::as_ptr(r)), true),
            Node::Glob(x, g) => (format!("G{x:?}{:?}", g.glob().glob()), true),
            Node::Cidr(x, c) => (format!("D{x:?}{c:?}"), true),
            Node::Rhai(_, text) => (format!("H{text:?}"), true),
            Node::Not(c) => {
                let k = kids(self, std::slice::from_ref(&**c));
                (format!("N{k}"), false)
            }
            Node::And(v) => (format!("&{}", kids(self, v)), false),
            Node::Or(v) => (format!("|{}", kids(self, v)), false),
            Node::Memo(_, c) => return self.intern(c),
        };
        let next = self.count.len() as u32;
        let id = *self.ids.entry(key).or_insert(next);
        if id == next {
            self.count.push(0);
            self.worth.push(costly || size >= 3);
        }
        self.count[id as usize] += 1;
        self.of.insert(addr(n), id);
        (id, size)
    }
}

/// The rebuild: shared sub-trees become memo nodes, one `Arc` and one slot
/// per identity.
struct Sharer<'a> {
    it: &'a Interner,
    done: HashMap<u32, (u32, Arc<Node>)>,
    slots: u32,
}

impl Sharer<'_> {
    /// `outer`: occurrences of the nearest enclosing shared sub-tree (a
    /// sub-tree met no more often than that is evaluated once with it).
    fn rebuild(&mut self, n: &Node, outer: u32, root: bool) -> Node {
        let id = self.it.of.get(&addr(n)).copied();
        if let Some(id) = id.filter(|_| !root) {
            let count = self.it.count[id as usize];
            if count >= 2 && count > outer && self.it.worth[id as usize] {
                if let Some((slot, shared)) = self.done.get(&id) {
                    return Node::Memo(*slot, shared.clone());
                }
                let inner = Arc::new(self.children(n, count));
                let slot = self.slots;
                self.slots += 1;
                self.done.insert(id, (slot, inner.clone()));
                return Node::Memo(slot, inner);
            }
        }
        self.children(n, outer)
    }

    fn children(&mut self, n: &Node, outer: u32) -> Node {
        match n {
            Node::Not(c) => Node::Not(Box::new(self.rebuild(c, outer, false))),
            Node::And(v) => Node::And(v.iter().map(|c| self.rebuild(c, outer, false)).collect()),
            Node::Or(v) => Node::Or(v.iter().map(|c| self.rebuild(c, outer, false)).collect()),
            other => other.clone(),
        }
    }
}

/// The tree without memo nodes (each replaced by its sub-tree).
fn plain(n: &Node) -> Node {
    match n {
        Node::Memo(_, c) => plain(c),
        Node::Not(c) => Node::Not(Box::new(plain(c))),
        Node::And(v) => Node::And(v.iter().map(plain).collect()),
        Node::Or(v) => Node::Or(v.iter().map(plain).collect()),
        other => other.clone(),
    }
}

/// Undo [`share`]: every rule evaluates its own tree again.
pub(crate) fn unshare(rules: &mut [Rule]) {
    for r in rules.iter_mut() {
        r.cond = plain(&r.cond);
        for (_, e) in r.exceptions.iter_mut() {
            *e = plain(e);
        }
    }
}

/// Replace the sub-conditions the rules share by memo nodes (after undoing
/// an earlier sharing, so slots are numbered afresh).
pub(crate) fn share(rules: &mut [Rule]) {
    unshare(rules);
    let mut it = Interner::default();
    for r in rules.iter() {
        it.intern(&r.cond);
        for (_, e) in &r.exceptions {
            it.intern(e);
        }
    }
    let mut sh = Sharer {
        it: &it,
        done: HashMap::new(),
        slots: 0,
    };
    let rebuilt: Vec<(Node, Vec<Node>)> = rules
        .iter()
        .map(|r| {
            (
                sh.rebuild(&r.cond, 1, true),
                r.exceptions
                    .iter()
                    .map(|(_, e)| sh.rebuild(e, 1, true))
                    .collect(),
            )
        })
        .collect();
    for (r, (cond, excs)) in rules.iter_mut().zip(rebuilt) {
        r.cond = cond;
        for ((_, e), n) in r.exceptions.iter_mut().zip(excs) {
            *e = n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RuleSet;

    fn memos(n: &Node, out: &mut Vec<u32>) {
        match n {
            Node::Memo(slot, c) => {
                out.push(*slot);
                memos(c, out);
            }
            Node::Not(c) => memos(c, out),
            Node::And(v) | Node::Or(v) => v.iter().for_each(|c| memos(c, out)),
            _ => {}
        }
    }

    #[test]
    fn a_macro_two_rules_use_is_one_slot_and_undoing_restores_the_trees() {
        let src = r#"
- macro: shell_read
  condition: proc.name in ["sh", "bash"] || regex(proc.cmdline, "-c ") || file.path.starts_with("/root/")
- rule: a
  events: [open]
  condition: shell_read && file.path.starts_with("/etc/")
  output: a
  priority: info
- rule: b
  events: [open]
  condition: file.path == "/tmp/x" && shell_read
  output: b
  priority: info
- rule: c
  events: [open]
  condition: proc.name == "sh" && file.path == "/x"
  output: c
  priority: info
"#;
        let mut rs = RuleSet::from_sources(&[("t.yaml".into(), src.into())]).unwrap();
        let slots = |rs: &RuleSet| {
            rs.rules
                .iter()
                .map(|r| {
                    let mut v = Vec::new();
                    memos(&r.cond, &mut v);
                    v
                })
                .collect::<Vec<_>>()
        };
        // the macro's tree is one slot in both rules (its regex, met only
        // inside it, none of its own); a single comparison is not worth a
        // slot, and a rule's root is never wrapped
        assert_eq!(slots(&rs), vec![vec![0], vec![0], vec![]]);
        let Node::And(a) = &rs.rules[0].cond else {
            panic!("rule a is not a conjunction");
        };
        let Node::And(b) = &rs.rules[1].cond else {
            panic!("rule b is not a conjunction");
        };
        match (&a[0], &b[1]) {
            (Node::Memo(_, x), Node::Memo(_, y)) => assert!(Arc::ptr_eq(x, y)),
            other => panic!("not shared: {other:?}"),
        }
        rs.set_indexed(false);
        assert_eq!(slots(&rs), vec![Vec::<u32>::new(); 3]);
        rs.set_indexed(true);
        assert_eq!(slots(&rs), vec![vec![0], vec![0], vec![]]);
    }
}
