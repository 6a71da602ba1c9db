//! The userspace candidate index: which enabled rules an event can match,
//! looked up from the literal terms each rule's condition requires, so the
//! cost of an event does not grow with the number of rules it cannot match.
//!
//! Each rule gets a **key** ([`required`]): a set of literal atoms such that
//! whenever the condition holds, at least one atom holds for the event —
//! `proc.name == "x"` / `in [..]` (any string field, exact), `net.dport ==
//! 443` / `in [..]` (any int field), `file.path.starts_with(p)`, `==`, `in`,
//! `glob(file.path, "/etc/*")` and an anchored `regex(file.path, "^/srv/..")`
//! (prefixes of any string field), `ends_with` (suffixes), `contains` and an
//! unanchored regex's literals (substrings), `cidr(net.daddr, ..)`, a bool
//! field (`file.write`). A
//! conjunction takes its most selective conjunct's key, a disjunction the
//! union of its branches' keys (or none when a branch has none). A rule
//! without a key (`!`, `!=`, ranges, Rhai leaves, ...) is in the
//! always-evaluated set of each of its event kinds.
//!
//! Per event kind the index ([`KindIndex`]) holds, for every field some key
//! names, a hash map of exact values, a byte trie of prefixes and one of
//! suffixes (walked once along the field's value) and one Aho-Corasick
//! automaton of substrings; an int map per int field; a list of CIDR
//! networks. An event reads each indexed field once, collects the rules of
//! the atoms that hold plus the always set, and the evaluator runs only
//! those, in rule order. Exceptions never narrow a key (they only remove
//! matches). The index is sound by construction: it may return rules that
//! do not match, never omit one that would (the equivalence tests run rule
//! sets with the index on and off).

use std::sync::Arc;

use regex_automata::meta::Regex;

use crate::condition::{Cidr, CmpOp, FxHashMap, Node, Operand, StrOp};
use crate::event::{Event, EventMask, EventType};
use crate::fields::{Field, FieldType, FieldValue};

/// A literal term: the event's `field` value equals, starts with, ends with,
/// or lies in the given literal.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Atom {
    Exact(Field, Box<str>),
    Prefix(Field, Box<[u8]>),
    Suffix(Field, Box<[u8]>),
    Contains(Field, Box<[u8]>),
    /// A bool field is true (`file.write`).
    True(Field),
    Int(Field, i64),
    Cidr(Field, Arc<Cidr>),
}

impl Atom {
    /// Rough share of events this atom lets through (lower is narrower):
    /// a process value passes every event of that process, a file path few,
    /// a short prefix many (`/` all of them).
    fn cost(&self) -> usize {
        match self {
            // a handful of values: nearly every event has one of them
            Atom::Exact(Field::NetFamily | Field::NetProto, _) => 1000,
            Atom::Exact(f, _) if f.name().starts_with("proc.") => 8,
            Atom::Exact(..) => 2,
            Atom::Prefix(_, p) | Atom::Suffix(_, p) if p.len() <= 1 => 1000,
            Atom::Prefix(_, p) if p.ends_with(b"/") => 16,
            Atom::Prefix(..) | Atom::Suffix(..) => 4,
            Atom::Contains(_, p) if p.len() <= 1 => 1000,
            Atom::Contains(_, p) if p.len() == 2 => 64,
            Atom::Contains(..) => 8,
            Atom::Int(..) => 4,
            // writes are a minority of opens, but not a small one
            Atom::True(_) => 500,
            Atom::Cidr(..) => 16,
        }
    }
}

fn key_cost(k: &[Atom]) -> usize {
    k.iter().map(Atom::cost).fold(0, usize::saturating_add)
}

/// Finds the pattern a compiled regex was built from (the compiler shares
/// one `Arc<Regex>` per pattern).
pub(crate) struct RegexSources<'a>(FxHashMap<usize, &'a str>);

impl<'a> RegexSources<'a> {
    pub(crate) fn new(patterns: impl Iterator<Item = (&'a String, &'a Arc<Regex>)>) -> Self {
        RegexSources(
            patterns
                .map(|(p, r)| (Arc::as_ptr(r) as usize, p.as_str()))
                .collect(),
        )
    }
    fn get(&self, r: &Arc<Regex>) -> Option<&'a str> {
        self.0.get(&(Arc::as_ptr(r) as usize)).copied()
    }
}

/// A string field worth indexing: `evt.type` is not (the index is per kind
/// already, so it holds for every event that reaches the rule).
fn is_str(f: Field) -> bool {
    f.def().ty == FieldType::Str && f != Field::EvtType
}

fn is_int(f: Field) -> bool {
    f.def().ty == FieldType::Int
}

/// The literals every match of a regex starts with, when they are finitely
/// many and none is empty, and whether the regex is anchored (`^`: they are
/// prefixes of the value; otherwise substrings of it).
fn regex_literals(pattern: &str) -> Option<(bool, Vec<Vec<u8>>)> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    use regex_syntax::hir::Look;
    let hir = regex_syntax::ParserBuilder::new()
        .nest_limit(crate::condition::REGEX_NEST_LIMIT)
        .build()
        .parse(pattern)
        .ok()?;
    // Every match begins at the start of the haystack.
    let anchored = hir.properties().look_set_prefix().contains(Look::Start);
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
    let lits = seq.literals()?;
    if lits.is_empty() || lits.iter().any(|l| l.as_bytes().is_empty()) {
        return None;
    }
    Some((
        anchored,
        lits.iter().map(|l| l.as_bytes().to_vec()).collect(),
    ))
}

/// The literal part of a glob that every match starts with: up to the first
/// special character, and before a `/**` (which may match nothing).
fn glob_prefix(pat: &str) -> &str {
    let end = pat
        .find(['*', '?', '[', '{', '\\', ']', '}', '!'])
        .unwrap_or(pat.len());
    let p = &pat[..end];
    if pat[end..].starts_with("**") {
        p.strip_suffix('/').unwrap_or(p)
    } else {
        p
    }
}

/// The rule's key: atoms of which one holds whenever `n` holds; `None`
/// when the condition requires no literal the index can use.
pub(crate) fn required(n: &Node, regexes: &RegexSources<'_>) -> Option<Vec<Atom>> {
    match n {
        Node::Const(false) => Some(Vec::new()),
        Node::BoolField(f) if f.def().ty == FieldType::Bool => Some(vec![Atom::True(*f)]),
        Node::Cmp(CmpOp::Eq, Operand::Field(f), lit)
        | Node::Cmp(CmpOp::Eq, lit, Operand::Field(f)) => match lit {
            Operand::Str(s) if is_str(*f) => Some(vec![Atom::Exact(*f, s.as_ref().into())]),
            Operand::Int(i) if is_int(*f) => Some(vec![Atom::Int(*f, *i)]),
            _ => None,
        },
        Node::InSet(Operand::Field(f), set) if is_str(*f) => Some(
            set.strs
                .iter()
                .map(|s| Atom::Exact(*f, s.as_str().into()))
                .collect(),
        ),
        Node::InSet(Operand::Field(f), set) if is_int(*f) => {
            Some(set.ints.iter().map(|i| Atom::Int(*f, *i)).collect())
        }
        Node::Str(op, Operand::Field(f), Operand::Str(p)) if is_str(*f) && !p.is_empty() => {
            let lit: Box<[u8]> = p.as_bytes().into();
            Some(vec![match op {
                StrOp::StartsWith => Atom::Prefix(*f, lit),
                StrOp::EndsWith => Atom::Suffix(*f, lit),
                StrOp::Contains => Atom::Contains(*f, lit),
            }])
        }
        Node::Glob(Operand::Field(f), g) if is_str(*f) => {
            let p = glob_prefix(g.glob().glob());
            (!p.is_empty()).then(|| vec![Atom::Prefix(*f, p.as_bytes().into())])
        }
        Node::Regex(Operand::Field(f), re) if is_str(*f) => {
            let (anchored, lits) = regex_literals(regexes.get(re)?)?;
            Some(
                lits.into_iter()
                    .map(|p| match anchored {
                        true => Atom::Prefix(*f, p.into()),
                        false => Atom::Contains(*f, p.into()),
                    })
                    .collect(),
            )
        }
        Node::Cidr(Operand::Field(f), c) if is_str(*f) => Some(vec![Atom::Cidr(*f, c.clone())]),
        Node::And(v) => v
            .iter()
            .filter_map(|c| required(c, regexes))
            .min_by_key(|k| key_cost(k)),
        Node::Memo(_, inner) => required(inner, regexes),
        Node::Or(v) => {
            let mut all = Vec::new();
            for c in v {
                all.extend(required(c, regexes)?);
            }
            Some(all)
        }
        _ => None,
    }
}

/// A byte trie of literals with the rules each one leads to; walked along a
/// value (forwards for prefixes, backwards for suffixes).
#[derive(Default)]
struct Trie {
    /// Node 0 is the root (the empty literal, never used).
    nodes: Vec<TrieNode>,
}

#[derive(Default)]
struct TrieNode {
    /// Children by next byte, sorted.
    edges: Vec<(u8, u32)>,
    rules: Vec<u32>,
}

impl Trie {
    fn insert(&mut self, lit: impl Iterator<Item = u8>, rule: u32) {
        if self.nodes.is_empty() {
            self.nodes.push(TrieNode::default());
        }
        let mut at = 0usize;
        for b in lit {
            let next = self.nodes.len() as u32;
            let edges = &mut self.nodes[at].edges;
            at = match edges.binary_search_by_key(&b, |e| e.0) {
                Ok(k) => edges[k].1 as usize,
                Err(k) => {
                    edges.insert(k, (b, next));
                    self.nodes.push(TrieNode::default());
                    next as usize
                }
            };
        }
        let rules = &mut self.nodes[at].rules;
        if rules.last() != Some(&rule) {
            rules.push(rule);
        }
    }

    /// Appends the rules of every literal the walk along `bytes` passes.
    fn walk(&self, bytes: impl Iterator<Item = u8>, out: &mut Vec<u32>, sources: &mut usize) {
        let Some(mut node) = self.nodes.first() else {
            return;
        };
        for b in bytes {
            let e = &node.edges;
            let next = if e.len() <= 8 {
                e.iter().find(|x| x.0 == b).map(|x| x.1)
            } else {
                e.binary_search_by_key(&b, |x| x.0).ok().map(|k| e[k].1)
            };
            let Some(next) = next else {
                return;
            };
            node = &self.nodes[next as usize];
            if !node.rules.is_empty() {
                out.extend_from_slice(&node.rules);
                *sources += 1;
            }
        }
    }
}

/// String atoms of one field.
struct StrProbe {
    field: Field,
    exact: FxHashMap<Box<str>, Vec<u32>>,
    prefix: Trie,
    suffix: Trie,
    /// Substrings and the rules of each (by pattern number); the automaton
    /// is built by [`KindIndex::finish`].
    needles: Vec<(Box<[u8]>, Vec<u32>)>,
    contains: Option<aho_corasick::AhoCorasick>,
}

/// A network and the rules whose key names it.
type CidrRules = (Arc<Cidr>, Vec<u32>);

/// The candidate index of one event kind.
#[derive(Default)]
pub(crate) struct KindIndex {
    /// Rules without a key: evaluated for every event of this kind.
    always: Vec<u32>,
    strs: Vec<StrProbe>,
    ints: Vec<(Field, FxHashMap<i64, Vec<u32>>)>,
    bools: Vec<(Field, Vec<u32>)>,
    cidrs: Vec<(Field, Vec<CidrRules>)>,
}

fn push_unique(v: &mut Vec<u32>, rule: u32) {
    if v.last() != Some(&rule) {
        v.push(rule);
    }
}

impl KindIndex {
    fn add(&mut self, rule: u32, key: Option<&[Atom]>) {
        let Some(key) = key else {
            push_unique(&mut self.always, rule);
            return;
        };
        for a in key {
            match a {
                Atom::Exact(f, s) => {
                    push_unique(self.str_probe(*f).exact.entry(s.clone()).or_default(), rule)
                }
                Atom::Prefix(f, p) => self.str_probe(*f).prefix.insert(p.iter().copied(), rule),
                Atom::Suffix(f, p) => self
                    .str_probe(*f)
                    .suffix
                    .insert(p.iter().rev().copied(), rule),
                Atom::Contains(f, p) => {
                    let needles = &mut self.str_probe(*f).needles;
                    match needles.iter_mut().find(|(n, _)| n == p) {
                        Some((_, rules)) => push_unique(rules, rule),
                        None => needles.push((p.clone(), vec![rule])),
                    }
                }
                Atom::True(f) => match self.bools.iter_mut().find(|x| x.0 == *f) {
                    Some((_, rules)) => push_unique(rules, rule),
                    None => self.bools.push((*f, vec![rule])),
                },
                Atom::Int(f, i) => {
                    let k = match self.ints.iter().position(|x| x.0 == *f) {
                        Some(k) => k,
                        None => {
                            self.ints.push((*f, FxHashMap::default()));
                            self.ints.len() - 1
                        }
                    };
                    push_unique(self.ints[k].1.entry(*i).or_default(), rule);
                }
                Atom::Cidr(f, c) => {
                    let k = match self.cidrs.iter().position(|x| x.0 == *f) {
                        Some(k) => k,
                        None => {
                            self.cidrs.push((*f, Vec::new()));
                            self.cidrs.len() - 1
                        }
                    };
                    let nets = &mut self.cidrs[k].1;
                    match nets.iter_mut().find(|(n, _)| **n == **c) {
                        Some((_, rules)) => push_unique(rules, rule),
                        None => nets.push((c.clone(), vec![rule])),
                    }
                }
            }
        }
    }

    fn str_probe(&mut self, f: Field) -> &mut StrProbe {
        let k = match self.strs.iter().position(|p| p.field == f) {
            Some(k) => k,
            None => {
                self.strs.push(StrProbe {
                    field: f,
                    exact: FxHashMap::default(),
                    prefix: Trie::default(),
                    suffix: Trie::default(),
                    needles: Vec::new(),
                    contains: None,
                });
                self.strs.len() - 1
            }
        };
        &mut self.strs[k]
    }

    /// Builds the substring automata once every rule is added. A field whose
    /// automaton cannot be built (not expected for literal needles) puts its
    /// substring rules in the always set: sound either way.
    fn finish(&mut self) {
        let mut always = Vec::new();
        for p in &mut self.strs {
            if p.needles.is_empty() {
                continue;
            }
            match aho_corasick::AhoCorasick::new(p.needles.iter().map(|(n, _)| n)) {
                Ok(ac) => p.contains = Some(ac),
                Err(e) => {
                    tracing::warn!(field = p.field.name(), error = %e, "substring index not built");
                    always.extend(p.needles.iter().flat_map(|(_, r)| r.iter().copied()));
                }
            }
        }
        if !always.is_empty() {
            self.always.extend(always);
            self.always.sort_unstable();
            self.always.dedup();
        }
    }

    /// Appends the candidate rules for `ev` to `out` (cleared first), sorted
    /// and without duplicates.
    pub(crate) fn candidates(&self, ev: &Event, out: &mut Vec<u32>) {
        out.clear();
        out.extend_from_slice(&self.always);
        let mut sources = usize::from(!self.always.is_empty());
        for p in &self.strs {
            let v = ev.get(p.field);
            let s: &str = match &v {
                Some(FieldValue::Str(s)) => s,
                _ => "",
            };
            if let Some(r) = p.exact.get(s) {
                out.extend_from_slice(r);
                sources += 1;
            }
            p.prefix.walk(s.bytes(), out, &mut sources);
            p.suffix.walk(s.bytes().rev(), out, &mut sources);
            if let Some(ac) = &p.contains {
                for m in ac.find_overlapping_iter(s) {
                    out.extend_from_slice(&p.needles[m.pattern().as_usize()].1);
                    sources += 1;
                }
            }
        }
        for (f, map) in &self.ints {
            let i = match ev.get(*f) {
                Some(FieldValue::Int(i)) => i,
                _ => 0,
            };
            if let Some(r) = map.get(&i) {
                out.extend_from_slice(r);
                sources += 1;
            }
        }
        for (f, rules) in &self.bools {
            if let Some(FieldValue::Bool(true)) = ev.get(*f) {
                out.extend_from_slice(rules);
                sources += 1;
            }
        }
        for (f, nets) in &self.cidrs {
            let v = ev.get(*f);
            let s: &str = match &v {
                Some(FieldValue::Str(s)) => s,
                _ => "",
            };
            for (n, r) in nets {
                if n.contains(s) {
                    out.extend_from_slice(r);
                    sources += 1;
                }
            }
        }
        if sources > 1 {
            out.sort_unstable();
            out.dedup();
        }
    }
}

/// The per-kind indexes over `rules` (rule number, enabled, its kinds, its
/// key); with `on` false every enabled rule is in the always set.
pub(crate) fn build<'a>(
    rules: impl Iterator<Item = (u32, bool, EventMask, Option<&'a [Atom]>)>,
    on: bool,
) -> [KindIndex; EventType::COUNT] {
    let mut index: [KindIndex; EventType::COUNT] = Default::default();
    for (i, enabled, kinds, key) in rules {
        if !enabled {
            continue;
        }
        for t in kinds.iter() {
            index[t.index()].add(i, if on { key } else { None });
        }
    }
    index.iter_mut().for_each(KindIndex::finish);
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_prefixes_stop_before_what_may_match_nothing() {
        assert_eq!(glob_prefix("/etc/*.conf"), "/etc/");
        assert_eq!(glob_prefix("/etc/**"), "/etc");
        assert_eq!(glob_prefix("/a/b/**/c"), "/a/b");
        assert_eq!(glob_prefix("*/shadow"), "");
        assert_eq!(glob_prefix("/exact"), "/exact");
        // what the prefix is for: every match starts with it
        for pat in ["/etc/**", "/a/b/**/c", "/etc/*.conf", "/a/{b,c}/d"] {
            let g = crate::condition::build_glob(pat).unwrap();
            for s in [
                "/etc", "/etc/", "/etc/x", "/a/b/c", "/a/b/x/c", "/a/c/d", "/x",
            ] {
                assert!(
                    !g.is_match(s) || s.starts_with(glob_prefix(pat)),
                    "{pat} {s}"
                );
            }
        }
    }

    #[test]
    fn regex_literals_anchored_or_not_finite_and_non_empty() {
        let b = |v: &[&str]| v.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
        let pre = |v: &[&str]| Some((true, b(v)));
        let sub = |v: &[&str]| Some((false, b(v)));
        assert_eq!(regex_literals(r"^/srv/a/[a-z]+\.key$"), pre(&["/srv/a/"]));
        assert_eq!(regex_literals(r"^/(etc|usr)/x"), pre(&["/etc/x", "/usr/x"]));
        assert_eq!(regex_literals(r"^/a|^/b"), pre(&["/a", "/b"]));
        // searched anywhere: substrings
        assert_eq!(regex_literals(r"/srv/a"), sub(&["/srv/a"]));
        assert_eq!(regex_literals(r"(?m)^/a"), sub(&["/a"]));
        assert_eq!(regex_literals(r"^/a|/b"), sub(&["/a", "/b"]));
        assert_eq!(regex_literals(r"^.*x"), None);
        assert_eq!(regex_literals(r"^(/a)?"), None); // may be empty
        assert_eq!(regex_literals(r"[a-z]+\.key"), None);
    }

    #[test]
    fn tries_find_every_literal_along_the_value() {
        let mut t = Trie::default();
        t.insert("/etc/".bytes(), 1);
        t.insert("/etc/shadow".bytes(), 2);
        t.insert("/etc/ssh/".bytes(), 3);
        t.insert("/etc/".bytes(), 4);
        let mut out = Vec::new();
        let mut n = 0;
        t.walk("/etc/shadow-".bytes(), &mut out, &mut n);
        assert_eq!((out.as_slice(), n), (&[1, 4, 2][..], 2));
        out.clear();
        t.walk("/et".bytes(), &mut out, &mut n);
        assert!(out.is_empty());
        Trie::default().walk("/x".bytes(), &mut out, &mut n);
        assert!(out.is_empty());
    }
}
