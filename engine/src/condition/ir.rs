//! The condition IR: the native evaluation tree every front-end (vigil's
//! Rhai syntax, Falco's filter syntax through [`crate::falco`]) compiles to.
//! Evaluation lives in [`super::eval`]; the kernel filter derivation
//! ([`crate::filter`]) reads the same tree.

use std::sync::Arc;

use regex_automata::meta::Regex;
use rhai::AST;

use super::hash::FxHashSet;
use super::matchers::Cidr;
use crate::fields::Field;

/// A list usable by name in conditions (`x in shell_binaries`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListSet {
    pub strs: FxHashSet<String>,
    pub ints: FxHashSet<i64>,
}

impl ListSet {
    pub fn len(&self) -> usize {
        self.strs.len() + self.ints.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A value operand of a native node.
#[derive(Clone, Debug)]
pub(crate) enum Operand {
    Field(Field),
    /// An element of an array field (`proc.ancestors[1]`); `""` past its end.
    Elem(Field, usize),
    Str(Arc<str>),
    Int(i64),
    Bool(bool),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StrOp {
    StartsWith,
    EndsWith,
    Contains,
}

/// The native evaluation tree.
#[derive(Clone, Debug)]
pub(crate) enum Node {
    Const(bool),
    BoolField(Field),
    Cmp(CmpOp, Operand, Operand),
    InSet(Operand, Arc<ListSet>),
    /// needle in array field (`"x" in proc.args`).
    InArray(Operand, Field),
    /// `"O_TRUNC" in file.flags`, tested on the flag bits (no allocation).
    FlagIn(Arc<str>),
    Str(StrOp, Operand, Operand),
    Regex(Operand, Arc<Regex>),
    Glob(Operand, Arc<globset::GlobMatcher>),
    Cidr(Operand, Arc<Cidr>),
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    Rhai(Arc<AST>, Arc<str>),
}

impl Node {
    /// Top-level conjuncts (the node itself when it is not an `And`).
    pub(crate) fn conjuncts(&self) -> &[Node] {
        match self {
            Node::And(v) => v,
            other => std::slice::from_ref(other),
        }
    }

    /// Worst-case work of one evaluation: (nodes, of which Rhai leaves).
    /// Each node runs at most once per evaluation.
    pub(crate) fn cost(&self) -> (usize, usize) {
        match self {
            Node::Rhai(..) => (1, 1),
            Node::Not(n) => {
                let (a, r) = n.cost();
                (a.saturating_add(1), r)
            }
            Node::And(v) | Node::Or(v) => v.iter().fold((1, 0), |(a, r), n| {
                let (b, s) = n.cost();
                (a.saturating_add(b), r.saturating_add(s))
            }),
            _ => (1, 0),
        }
    }

    /// The fields the tree reads; `None` when it has a Rhai leaf (what
    /// that reads is not known here).
    pub(crate) fn fields(&self) -> Option<Vec<Field>> {
        fn op(o: &Operand, out: &mut Vec<Field>) {
            if let Operand::Field(f) | Operand::Elem(f, _) = o {
                out.push(*f);
            }
        }
        fn walk(n: &Node, out: &mut Vec<Field>) -> bool {
            match n {
                Node::Const(_) => {}
                Node::BoolField(f) => out.push(*f),
                Node::Cmp(_, a, b) | Node::Str(_, a, b) => {
                    op(a, out);
                    op(b, out);
                }
                Node::InSet(a, _) | Node::Regex(a, _) | Node::Glob(a, _) | Node::Cidr(a, _) => {
                    op(a, out)
                }
                Node::InArray(a, f) => {
                    op(a, out);
                    out.push(*f);
                }
                Node::FlagIn(_) => out.push(Field::FileFlags),
                Node::Not(n) => return walk(n, out),
                Node::And(v) | Node::Or(v) => return v.iter().all(|n| walk(n, out)),
                Node::Rhai(..) => return false,
            }
            true
        }
        let mut out = Vec::new();
        walk(self, &mut out).then(|| {
            out.sort();
            out.dedup();
            out
        })
    }

    /// True when the whole tree is native (no Rhai leaf).
    pub(crate) fn is_native(&self) -> bool {
        match self {
            Node::Rhai(..) => false,
            Node::Not(n) => n.is_native(),
            Node::And(v) | Node::Or(v) => v.iter().all(Node::is_native),
            _ => true,
        }
    }
}
