//! Rule conditions: lexing, macro inlining, load-time checks (unknown fields,
//! lists and macros, visible type errors), and compilation to a native
//! evaluation tree ([`Node`]) with Rhai for whatever the native tree does not
//! cover.
//!
//! The language is Rhai expressions over the fields (`proc.name`,
//! `file.path`, ...). Lists are usable by name (`proc.name in shell_binaries`,
//! a hash set); macros are inlined by name, parenthesised. Helpers:
//! `regex(s, pattern)` (regex-automata; **search anywhere** in `s` unless the
//! pattern is anchored with `^`/`$`; linear time; literal patterns compiled
//! once at load), `glob(path, pattern)` (globset; `*` does not cross `/`, `**`
//! does), `cidr(addr, "10.0.0.0/8")` (IPv4 and IPv6; IPv4-mapped IPv6 addresses
//! count as IPv4), and Rhai's `starts_with`/`ends_with`/`contains` (as methods
//! or functions).
//!
//! Common shapes (`==`, `!=`, ordering on ints/strings, `in` a list or array
//! literal or string/array field, `starts_with`, `ends_with`, `contains`,
//! `regex`/`glob`/`cidr` with literal patterns, `&&`, `||`, `!`, bool
//! fields) evaluate natively; any other sub-expression becomes a Rhai leaf
//! compiled once. Rhai runs with strict variables, no loops, no `eval`, and
//! limits on operations, expression depth, string and array sizes: a runaway
//! leaf stops with an error that counts as an evaluation error.
//!
//! A field a given event type does not carry reads as its type's empty value
//! (`""`, `0`, `false`, `[]`) in both paths.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, OnceLock};

use regex_automata::meta::Regex;
use rhai::{Dynamic, Engine, EvalAltResult, ImmutableString, Scope, AST};

use crate::event::Event;
use crate::fields::{self, Field, FieldType, FieldValue, FIELDS};

/// Field namespaces: the Rhai variables conditions read fields through.
pub const NAMESPACES: &[&str] = &[
    "evt",
    "proc",
    "user",
    "container",
    "file",
    "net",
    "tcp",
    "exit",
    // the on-demand syscall kinds
    "fs",
    "ptrace",
    "socket",
    "setid",
    "ns",
    "memfd",
];

/// Helper functions beyond Rhai's own.
pub const HELPERS: &[&str] = &["regex", "glob", "cidr"];

/// Rhai limits for condition evaluation.
pub const MAX_OPERATIONS: u64 = 50_000;
pub const MAX_EXPR_DEPTH: usize = 128;
pub const MAX_STRING_SIZE: usize = 64 * 1024;
pub const MAX_ARRAY_SIZE: usize = 4096;
/// Regex size limits (compiled NFA bytes, nesting depth).
pub const REGEX_NFA_LIMIT: usize = 1 << 20;
pub const REGEX_NEST_LIMIT: u32 = 64;

// ---------------------------------------------------------------- lexer

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Dot,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Op(&'static str),
    /// Something the native parser does not understand (floats, chars,
    /// backtick strings, other punctuation). Rhai gets the text.
    Other,
}

#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

const OPS: &[&str] = &[
    "==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "+", "-", "*", "/", "%",
];

/// Split a condition into tokens. Never fails: what it cannot read becomes
/// [`Tok::Other`] (Rhai will report real syntax errors).
pub(crate) fn lex(s: &str) -> Vec<Token> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let tok = if c.is_ascii_alphabetic() || c == b'_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            Tok::Ident(s[start..i].to_string())
        } else if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let is_float = i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit();
            if is_float {
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                Tok::Other
            } else {
                let text: String = s[start..i].chars().filter(|c| *c != '_').collect();
                let v = if let Some(h) = text.strip_prefix("0x") {
                    i64::from_str_radix(h, 16).ok()
                } else if let Some(o) = text.strip_prefix("0o") {
                    i64::from_str_radix(o, 8).ok()
                } else if let Some(bn) = text.strip_prefix("0b") {
                    i64::from_str_radix(bn, 2).ok()
                } else {
                    text.parse().ok()
                };
                v.map(Tok::Int).unwrap_or(Tok::Other)
            }
        } else if c == b'"' {
            i += 1;
            let mut val = String::new();
            let mut ok = false;
            let mut bad = false;
            while i < b.len() {
                let ch = s[i..].chars().next().unwrap_or('\0');
                if ch == '"' {
                    i += 1;
                    ok = true;
                    break;
                }
                if ch == '\\' {
                    let nx = s[i + 1..].chars().next();
                    match nx {
                        Some('n') => val.push('\n'),
                        Some('t') => val.push('\t'),
                        Some('r') => val.push('\r'),
                        Some('\\') => val.push('\\'),
                        Some('"') => val.push('"'),
                        Some('\'') => val.push('\''),
                        Some(other) => {
                            bad = true;
                            val.push(other)
                        }
                        None => break,
                    }
                    i += 1 + nx.map(char::len_utf8).unwrap_or(0);
                    continue;
                }
                if ch == '\n' {
                    bad = true;
                }
                val.push(ch);
                i += ch.len_utf8();
            }
            if ok && !bad {
                Tok::Str(val)
            } else {
                Tok::Other
            }
        } else if c == b'`' || c == b'\'' {
            i += 1;
            while i < b.len() && b[i] != c {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i = (i + 1).min(b.len());
            Tok::Other
        } else {
            let rest = &s[i..];
            if let Some(op) = OPS.iter().find(|op| rest.starts_with(**op)) {
                i += op.len();
                Tok::Op(op)
            } else {
                let ch = rest.chars().next().unwrap_or(' ');
                i += ch.len_utf8();
                match ch {
                    '.' => Tok::Dot,
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    '[' => Tok::LBracket,
                    ']' => Tok::RBracket,
                    ',' => Tok::Comma,
                    _ => Tok::Other,
                }
            }
        };
        // Rhai: `!in` is one operator.
        out.push(Token { tok, start, end: i });
    }
    out
}

// ------------------------------------------------- identifier checks

/// A name problem found in a condition's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NameProblem {
    /// The offending text (for locating it in the file).
    pub text: String,
    pub msg: String,
}

/// What a bare identifier may be.
pub(crate) trait Names {
    fn is_list(&self, name: &str) -> bool;
    fn is_macro(&self, name: &str) -> bool;
    fn all_names(&self) -> Vec<String>;
}

fn closest<'a>(name: &str, cands: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    cands
        .map(|c| (fields::edit_distance(name, c), c))
        .filter(|(d, c)| *d <= 3.max(c.len() / 3) && *d < c.len().max(name.len()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Check the fields, lists and macros a condition names; also collect the
/// fields it reads (`fields_out`).
pub(crate) fn check_names(
    text: &str,
    names: &dyn Names,
    extra_vars: &[&str],
    fields_out: &mut Vec<Field>,
) -> Vec<NameProblem> {
    let toks = lex(text);
    let mut problems = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let after_dot = i > 0 && toks[i - 1].tok == Tok::Dot;
        let Tok::Ident(id) = &toks[i].tok else {
            i += 1;
            continue;
        };
        if after_dot {
            i += 1;
            continue;
        }
        let next = toks.get(i + 1).map(|t| &t.tok);
        if next == Some(&Tok::LParen) {
            // A function call: Rhai resolves functions when it runs them.
            i += 1;
            continue;
        }
        if NAMESPACES.contains(&id.as_str()) {
            if next == Some(&Tok::Dot) {
                if let Some(Tok::Ident(prop)) = toks.get(i + 2).map(|t| &t.tok) {
                    let full = format!("{id}.{prop}");
                    match fields::lookup(&full) {
                        Some(f) => fields_out.push(f),
                        None => {
                            let hint = fields::suggest(&full)
                                .map(|s| format!(" (did you mean `{s}`?)"))
                                .unwrap_or_default();
                            problems.push(NameProblem {
                                text: full.clone(),
                                msg: format!("unknown field `{full}`{hint}"),
                            });
                        }
                    }
                    i += 3;
                    continue;
                }
            }
            problems.push(NameProblem {
                text: id.clone(),
                msg: format!(
                    "`{id}` is a field namespace, not a value (write e.g. `{id}.<field>`)"
                ),
            });
            i += 1;
            continue;
        }
        let known = matches!(
            id.as_str(),
            "true" | "false" | "in" | "if" | "else" | "switch"
        ) || names.is_list(id)
            || names.is_macro(id)
            || extra_vars.contains(&id.as_str());
        if !known {
            if let Some(h) = falco_hint(id) {
                problems.push(NameProblem {
                    text: id.clone(),
                    msg: format!(
                        "`{id}` is Falco filter syntax; vigil conditions are Rhai expressions: {h}"
                    ),
                });
                i += 1;
                continue;
            }
            let all = names.all_names();
            let hint = closest(id, all.iter().map(String::as_str))
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            let field_hint = if hint.is_empty() {
                fields::suggest(id)
                    .map(|s| format!(" (did you mean the field `{s}`?)"))
                    .unwrap_or_default()
            } else {
                String::new()
            };
            let prev = i.checked_sub(1).map(|k| &toks[k].tok);
            let value_position = matches!(
                prev,
                Some(Tok::Op("==" | "!=") | Tok::LParen | Tok::LBracket | Tok::Comma)
            ) || matches!(prev, Some(Tok::Ident(w)) if w == "in");
            let quote_hint = if hint.is_empty() && field_hint.is_empty() && value_position {
                format!(" (a string value must be quoted: \"{id}\")")
            } else {
                String::new()
            };
            problems.push(NameProblem {
                text: id.clone(),
                msg: format!("unknown list or macro `{id}`{hint}{field_hint}{quote_hint}"),
            });
        }
        i += 1;
    }
    problems
}

/// A hint for Falco filter words used as if they were operators.
fn falco_hint(id: &str) -> Option<&'static str> {
    Some(match id {
        "and" => "write `&&`",
        "or" => "write `||`",
        "not" => "write `!`",
        "startswith" => "write `x.starts_with(\"...\")`",
        "endswith" => "write `x.ends_with(\"...\")`",
        "contains" | "icontains" | "bcontains" => "write `x.contains(\"...\")` or `\"...\" in x`",
        "pmatch" => "write `x.starts_with(\"...\")` for each prefix, or a list of prefixes",
        "exists" => "fields always exist; compare with \"\" or 0",
        "intersects" => "test each value with `in`",
        _ => return None,
    })
}

/// The identifiers of `toks` that may name a macro (not a property after a
/// dot, not a function name before `(`), as token indices.
fn macro_candidates(toks: &[Token]) -> impl Iterator<Item = (usize, &str)> + '_ {
    toks.iter().enumerate().filter_map(|(i, t)| {
        let Tok::Ident(id) = &t.tok else { return None };
        if i > 0 && toks[i - 1].tok == Tok::Dot {
            return None;
        }
        if toks.get(i + 1).map(|t| &t.tok) == Some(&Tok::LParen) {
            return None;
        }
        Some((i, id.as_str()))
    })
}

/// The names in `text` that could be macro references, in order (with repeats).
pub(crate) fn macro_refs(text: &str) -> Vec<String> {
    let toks = lex(text);
    macro_candidates(&toks)
        .map(|(_, id)| id.to_string())
        .collect()
}

/// Length in bytes of `text` once every macro name in it is replaced by
/// `(its expansion)`, computed without building it: `size` gives a macro's
/// expanded length (None when `name` is not a macro). Saturates at `usize::MAX`.
pub(crate) fn expanded_len(text: &str, size: &mut dyn FnMut(&str) -> Option<usize>) -> usize {
    let mut n = text.len();
    for name in macro_refs(text) {
        if let Some(s) = size(&name) {
            n = n
                .saturating_sub(name.len())
                .saturating_add(s.saturating_add(2));
        }
    }
    n
}

/// Replace every macro name in `text` by `(its expansion)`. `lookup` gives
/// a macro's fully expanded text (or None when `name` is not a macro).
/// Callers bound the result with [`expanded_len`] first.
pub(crate) fn expand_macros(text: &str, lookup: &mut dyn FnMut(&str) -> Option<String>) -> String {
    let toks = lex(text);
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (i, id) in macro_candidates(&toks) {
        if let Some(exp) = lookup(id) {
            let t = &toks[i];
            out.push_str(&text[last..t.start]);
            out.push('(');
            out.push_str(&exp);
            out.push(')');
            last = t.end;
        }
    }
    out.push_str(&text[last..]);
    out
}

/// The value of an integer expression made of literals only: `None` when it
/// is not constant, `Some(None)` when evaluating it fails (division by zero,
/// overflow), `Some(Some(v))` otherwise.
fn const_int(p: &P) -> Option<Option<i64>> {
    match &p.e {
        PExpr::Int(i) => Some(Some(*i)),
        PExpr::Neg(x) => Some(const_int(x)?.and_then(i64::checked_neg)),
        PExpr::Bin(op @ ("+" | "-" | "*" | "/" | "%"), a, b) => {
            let (a, b) = (const_int(a)?, const_int(b)?);
            Some(a.zip(b).and_then(|(a, b)| match *op {
                "+" => a.checked_add(b),
                "-" => a.checked_sub(b),
                "*" => a.checked_mul(b),
                "/" => a.checked_div(b),
                _ => a.checked_rem(b),
            }))
        }
        _ => None,
    }
}

// ------------------------------------------------------------ parser

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum PExpr {
    Str(String),
    Int(i64),
    Bool(bool),
    Field(Field),
    Ident(String),
    Array(Vec<P>),
    Call(String, Vec<P>),
    Method(Box<P>, String, Vec<P>),
    Prop(Box<P>, String),
    Index(Box<P>, Box<P>),
    Not(Box<P>),
    Neg(Box<P>),
    Bin(&'static str, Box<P>, Box<P>),
    /// `a && b && ...` or `a || b || ...`, flattened.
    Chain(&'static str, Vec<P>),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct P {
    pub e: PExpr,
    pub start: usize,
    pub end: usize,
}

struct Parser<'a> {
    toks: &'a [Token],
    pos: usize,
    /// Current nesting (parentheses, unary operators, call arguments).
    depth: usize,
}

/// Deepest nesting the native parser follows (deeper: Rhai decides, and
/// rejects what exceeds its own limits).
const MAX_PARSE_DEPTH: usize = 96;

fn bin_prec(t: &Tok) -> Option<(u8, &'static str)> {
    Some(match t {
        Tok::Op("||") => (30, "||"),
        Tok::Op("&&") => (60, "&&"),
        Tok::Op("==") => (90, "=="),
        Tok::Op("!=") => (90, "!="),
        Tok::Ident(i) if i == "in" => (110, "in"),
        Tok::Op("<") => (130, "<"),
        Tok::Op("<=") => (130, "<="),
        Tok::Op(">") => (130, ">"),
        Tok::Op(">=") => (130, ">="),
        Tok::Op("+") => (150, "+"),
        Tok::Op("-") => (150, "-"),
        Tok::Op("*") => (180, "*"),
        Tok::Op("/") => (180, "/"),
        Tok::Op("%") => (180, "%"),
        _ => return None,
    })
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }
    fn peek_at(&self, k: usize) -> Option<&Tok> {
        self.toks.get(self.pos + k).map(|t| &t.tok)
    }
    fn end_of_prev(&self) -> usize {
        self.toks[self.pos - 1].end
    }
    fn expect(&mut self, t: Tok) -> Option<()> {
        if self.peek() == Some(&t) {
            self.pos += 1;
            Some(())
        } else {
            None
        }
    }

    fn binary(&mut self, min: u8) -> Option<P> {
        let mut lhs = self.unary()?;
        // Left-nested non-chain operators (`a + b + c ...`) nest the tree.
        let mut left_nest = 0;
        loop {
            // `!in`
            let (prec, op, width) = match (self.peek(), self.peek_at(1)) {
                (Some(Tok::Op("!")), Some(Tok::Ident(i))) if i == "in" => (110, "!in", 2),
                (Some(t), _) => match bin_prec(t) {
                    Some((p, o)) => (p, o, 1),
                    None => break,
                },
                _ => break,
            };
            if prec < min {
                break;
            }
            self.pos += width;
            let rhs = self.binary(prec + 1)?;
            let (start, end) = (lhs.start, rhs.end);
            if op == "&&" || op == "||" {
                // Flat n-ary chains: long `||` lists nest nothing.
                lhs = match lhs.e {
                    PExpr::Chain(o, mut v) if o == op => {
                        v.push(rhs);
                        P {
                            e: PExpr::Chain(op, v),
                            start,
                            end,
                        }
                    }
                    e => P {
                        e: PExpr::Chain(
                            op,
                            vec![
                                P {
                                    e,
                                    start: lhs.start,
                                    end: lhs.end,
                                },
                                rhs,
                            ],
                        ),
                        start,
                        end,
                    },
                };
                continue;
            }
            left_nest += 1;
            if left_nest > MAX_PARSE_DEPTH {
                return None;
            }
            lhs = P {
                e: PExpr::Bin(op, Box::new(lhs), Box::new(rhs)),
                start,
                end,
            };
        }
        Some(lhs)
    }

    fn unary(&mut self) -> Option<P> {
        if self.depth >= MAX_PARSE_DEPTH {
            return None;
        }
        self.depth += 1;
        let r = self.unary_inner();
        self.depth -= 1;
        r
    }

    fn unary_inner(&mut self) -> Option<P> {
        let start = self.toks.get(self.pos)?.start;
        match self.peek()? {
            Tok::Op("!") => {
                self.pos += 1;
                let e = self.unary()?;
                let end = e.end;
                Some(P {
                    e: PExpr::Not(Box::new(e)),
                    start,
                    end,
                })
            }
            Tok::Op("-") => {
                self.pos += 1;
                let e = self.unary()?;
                let end = e.end;
                let e = match e.e {
                    PExpr::Int(i) => PExpr::Int(i.checked_neg()?),
                    other => PExpr::Neg(Box::new(P {
                        e: other,
                        start: e.start,
                        end,
                    })),
                };
                Some(P { e, start, end })
            }
            _ => self.postfix(),
        }
    }

    fn args(&mut self, close: Tok) -> Option<Vec<P>> {
        let mut v = Vec::new();
        if self.peek() == Some(&close) {
            self.pos += 1;
            return Some(v);
        }
        loop {
            v.push(self.binary(0)?);
            match self.peek()? {
                Tok::Comma => {
                    self.pos += 1;
                    if self.peek() == Some(&close) {
                        self.pos += 1;
                        return Some(v);
                    }
                }
                t if *t == close => {
                    self.pos += 1;
                    return Some(v);
                }
                _ => return None,
            }
        }
    }

    fn postfix(&mut self) -> Option<P> {
        let mut e = self.primary()?;
        loop {
            match self.peek() {
                Some(Tok::Dot) => {
                    let Some(Tok::Ident(name)) = self.peek_at(1).cloned() else {
                        return None;
                    };
                    self.pos += 2;
                    let start = e.start;
                    if self.peek() == Some(&Tok::LParen) {
                        self.pos += 1;
                        let args = self.args(Tok::RParen)?;
                        e = P {
                            e: PExpr::Method(Box::new(e), name, args),
                            start,
                            end: self.end_of_prev(),
                        };
                    } else {
                        e = P {
                            e: PExpr::Prop(Box::new(e), name),
                            start,
                            end: self.end_of_prev(),
                        };
                    }
                }
                Some(Tok::LBracket) => {
                    self.pos += 1;
                    let idx = self.binary(0)?;
                    self.expect(Tok::RBracket)?;
                    let start = e.start;
                    e = P {
                        e: PExpr::Index(Box::new(e), Box::new(idx)),
                        start,
                        end: self.end_of_prev(),
                    };
                }
                _ => return Some(e),
            }
        }
    }

    fn primary(&mut self) -> Option<P> {
        let t = self.toks.get(self.pos)?.clone();
        self.pos += 1;
        let e = match t.tok {
            Tok::Str(s) => PExpr::Str(s),
            Tok::Int(i) => PExpr::Int(i),
            Tok::LParen => {
                let inner = self.binary(0)?;
                self.expect(Tok::RParen)?;
                return Some(P {
                    e: inner.e,
                    start: t.start,
                    end: self.end_of_prev(),
                });
            }
            Tok::LBracket => PExpr::Array(self.args(Tok::RBracket)?),
            Tok::Ident(id) => match id.as_str() {
                "true" => PExpr::Bool(true),
                "false" => PExpr::Bool(false),
                _ if NAMESPACES.contains(&id.as_str()) => {
                    self.expect(Tok::Dot)?;
                    let Some(Tok::Ident(prop)) = self.peek().cloned() else {
                        return None;
                    };
                    self.pos += 1;
                    PExpr::Field(fields::lookup(&format!("{id}.{prop}"))?)
                }
                _ if self.peek() == Some(&Tok::LParen) => {
                    self.pos += 1;
                    PExpr::Call(id, self.args(Tok::RParen)?)
                }
                _ => PExpr::Ident(id),
            },
            _ => return None,
        };
        Some(P {
            e,
            start: t.start,
            end: self.end_of_prev(),
        })
    }
}

/// Parse a whole condition with the native grammar (None: Rhai only).
pub(crate) fn parse(text: &str) -> Option<P> {
    let toks = lex(text);
    let mut p = Parser {
        toks: &toks,
        pos: 0,
        depth: 0,
    };
    let e = p.binary(0)?;
    if p.pos != toks.len() {
        return None;
    }
    Some(e)
}

// ------------------------------------------------------ native tree

/// A fast, non-cryptographic hasher (the Fx algorithm) for the engine's
/// lookup tables. The tables are built from rule files and never grow from
/// event data, so hash flooding cannot degrade them.
#[derive(Clone, Copy, Debug, Default)]
pub struct FxHasher(u64);

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(FX_SEED);
    }
}

impl std::hash::Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            self.add(u64::from_le_bytes(b));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b) ^ ((rest.len() as u64) << 59));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_i64(&mut self, i: i64) {
        self.add(i as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// `BuildHasher` for [`FxHasher`].
pub type FxBuild = std::hash::BuildHasherDefault<FxHasher>;
/// A `HashSet` with [`FxHasher`].
pub type FxHashSet<T> = HashSet<T, FxBuild>;
/// A `HashMap` with [`FxHasher`].
pub type FxHashMap<K, V> = HashMap<K, V, FxBuild>;

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

/// A parsed CIDR network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("bad CIDR `{s}`: `{a}` is not an IP address"))?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("bad CIDR `{s}`: prefix must be 0..={max}"))?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }

    pub fn contains(&self, addr: &str) -> bool {
        let Ok(a) = addr.trim().parse::<IpAddr>() else {
            return false;
        };
        match (a.to_canonical(), self.addr) {
            (IpAddr::V4(x), IpAddr::V4(n)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix)
                };
                u32::from(x) & mask == u32::from(n) & mask
            }
            (IpAddr::V6(x), IpAddr::V6(n)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix)
                };
                u128::from(x) & mask == u128::from(n) & mask
            }
            _ => false,
        }
    }
}

/// Build a regex with vigil's size limits.
pub fn build_regex(pattern: &str) -> Result<Regex, String> {
    Regex::builder()
        .syntax(regex_automata::util::syntax::Config::new().nest_limit(REGEX_NEST_LIMIT))
        .configure(
            Regex::config()
                .nfa_size_limit(Some(REGEX_NFA_LIMIT))
                .onepass_size_limit(Some(REGEX_NFA_LIMIT))
                .hybrid_cache_capacity(2 * REGEX_NFA_LIMIT)
                .dfa_size_limit(Some(REGEX_NFA_LIMIT)),
        )
        .build(pattern)
        .map_err(|e| format!("bad regex `{pattern}`: {e}"))
}

/// Build a path glob (`*` does not cross `/`).
pub fn build_glob(pattern: &str) -> Result<globset::GlobMatcher, String> {
    globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("bad glob `{pattern}`: {e}"))
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

/// An error while evaluating a condition (the rule does not fire; counted).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

/// A value read from an event or a literal.
enum V<'a> {
    S(std::borrow::Cow<'a, str>),
    I(i64),
    B(bool),
    L(std::borrow::Cow<'a, [String]>),
}

fn read_field(ev: &Event, f: Field) -> FieldValue<'_> {
    match ev.get(f) {
        Some(v) => v,
        None => default_value(f.def().ty),
    }
}

fn default_value(t: FieldType) -> FieldValue<'static> {
    match t {
        FieldType::Str => FieldValue::Str("".into()),
        FieldType::Int => FieldValue::Int(0),
        FieldType::Bool => FieldValue::Bool(false),
        FieldType::StrList => FieldValue::StrList(std::borrow::Cow::Owned(Vec::new())),
    }
}

fn val<'a>(ev: &'a Event, o: &'a Operand) -> V<'a> {
    match o {
        Operand::Str(s) => V::S(std::borrow::Cow::Borrowed(s)),
        Operand::Int(i) => V::I(*i),
        Operand::Bool(b) => V::B(*b),
        Operand::Elem(f, i) => V::S(match read_field(ev, *f) {
            FieldValue::StrList(std::borrow::Cow::Borrowed(l)) => {
                std::borrow::Cow::Borrowed(l.get(*i).map_or("", String::as_str))
            }
            FieldValue::StrList(l) => {
                std::borrow::Cow::Owned(l.get(*i).cloned().unwrap_or_default())
            }
            _ => std::borrow::Cow::Borrowed(""),
        }),
        Operand::Field(f) => match read_field(ev, *f) {
            FieldValue::Str(s) => V::S(s),
            FieldValue::Int(i) => V::I(i),
            FieldValue::Bool(b) => V::B(b),
            FieldValue::StrList(l) => V::L(l),
        },
    }
}

fn ord<T: PartialOrd>(op: CmpOp, a: T, b: T) -> bool {
    match op {
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
        CmpOp::Lt => a < b,
        CmpOp::Le => a <= b,
        CmpOp::Gt => a > b,
        CmpOp::Ge => a >= b,
    }
}

/// True when `open_flag_names(flags)` contains `name`, without building the list.
pub fn flag_present(flags: u32, name: &str) -> bool {
    if name == "O_RDONLY" {
        return flags & 0o3 == 0;
    }
    let Some(&(bit, _)) = crate::event::OPEN_FLAGS.iter().find(|(_, n)| *n == name) else {
        return false;
    };
    if flags & bit != bit {
        return false;
    }
    // As open_flag_names: O_SYNC includes O_DSYNC's bit, O_TMPFILE O_DIRECTORY's.
    !((name == "O_DSYNC" && flags & 0o4010000 == 0o4010000)
        || (name == "O_DIRECTORY" && flags & 0o20200000 == 0o20200000))
}

/// What evaluating Rhai leaves needs: the engine and a scope whose namespace
/// variables read the current event.
pub(crate) struct RhaiCtx<'a> {
    pub engine: &'a Engine,
    pub scope: &'a mut Scope<'static>,
}

impl Node {
    pub(crate) fn eval(&self, ev: &Event, ctx: &mut RhaiCtx<'_>) -> Result<bool, EvalError> {
        Ok(match self {
            Node::Const(b) => *b,
            Node::BoolField(f) => matches!(read_field(ev, *f), FieldValue::Bool(true)),
            Node::Cmp(op, a, b) => match (val(ev, a), val(ev, b)) {
                (V::S(x), V::S(y)) => ord(*op, &*x, &*y),
                (V::I(x), V::I(y)) => ord(*op, x, y),
                (V::B(x), V::B(y)) => ord(*op, x, y),
                // Rhai: comparing different types is false (`!=` true).
                _ => *op == CmpOp::Ne,
            },
            Node::InSet(x, set) => match val(ev, x) {
                V::S(s) => set.strs.contains(&*s),
                V::I(i) => set.ints.contains(&i),
                _ => false,
            },
            Node::FlagIn(name) => ev.file().is_some_and(|f| flag_present(f.flags, name)),
            Node::InArray(x, f) => match (val(ev, x), read_field(ev, *f)) {
                (V::S(s), FieldValue::StrList(l)) => l.iter().any(|e| *e == *s),
                _ => false,
            },
            Node::Str(op, a, b) => match (val(ev, a), val(ev, b)) {
                (V::S(x), V::S(y)) => match op {
                    StrOp::StartsWith => x.starts_with(&*y),
                    StrOp::EndsWith => x.ends_with(&*y),
                    StrOp::Contains => x.contains(&*y),
                },
                (V::L(l), V::S(y)) if *op == StrOp::Contains => l.iter().any(|e| *e == *y),
                _ => return Err(EvalError("string operation on a non-string".into())),
            },
            Node::Regex(x, re) => match val(ev, x) {
                V::S(s) => re.is_match(&*s),
                _ => return Err(EvalError("regex() on a non-string".into())),
            },
            Node::Glob(x, g) => match val(ev, x) {
                V::S(s) => g.is_match(&*s),
                _ => return Err(EvalError("glob() on a non-string".into())),
            },
            Node::Cidr(x, c) => match val(ev, x) {
                V::S(s) => c.contains(&s),
                _ => return Err(EvalError("cidr() on a non-string".into())),
            },
            Node::Not(n) => !n.eval(ev, ctx)?,
            Node::And(v) => {
                for n in v {
                    if !n.eval(ev, ctx)? {
                        return Ok(false);
                    }
                }
                true
            }
            Node::Or(v) => {
                for n in v {
                    if n.eval(ev, ctx)? {
                        return Ok(true);
                    }
                }
                false
            }
            Node::Rhai(ast, _) => eval_rhai(ast, ctx)?,
        })
    }

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

/// Load-time probe: run every Rhai leaf of `node` on the event in the scope's
/// slot (an empty event of one of the rule's types) and report what no event could avoid: unknown
/// functions or properties, a result that is not a bool, exceeded limits.
pub(crate) fn probe_leaves(node: &Node, ctx: &mut RhaiCtx<'_>, out: &mut Vec<(String, String)>) {
    match node {
        Node::Not(n) => probe_leaves(n, ctx, out),
        Node::And(v) | Node::Or(v) => v.iter().for_each(|n| probe_leaves(n, ctx, out)),
        Node::Rhai(ast, text) => {
            use rhai::EvalAltResult as E;
            let msg = match ctx.engine.eval_ast_with_scope::<Dynamic>(ctx.scope, ast) {
                Ok(v) if v.is_bool() => return,
                Ok(v) => format!("type error: `{text}` is {}, not a condition", v.type_name()),
                Err(e) => match *e {
                    E::ErrorFunctionNotFound(sig, _) => {
                        format!("unknown function or wrong argument types: `{sig}`")
                    }
                    E::ErrorPropertyNotFound(p, _) => format!("unknown property `{p}`"),
                    E::ErrorDotExpr(m, _) => format!("bad property or method: {m}"),
                    E::ErrorTooManyOperations(_) => {
                        format!("`{text}` exceeds the limit of {MAX_OPERATIONS} operations")
                    }
                    E::ErrorDataTooLarge(what, _) => {
                        format!("`{text}`: {what} exceeds the size limit")
                    }
                    E::ErrorStackOverflow(_) => format!("`{text}` nests too deeply"),
                    _ => return,
                },
            };
            out.push((text.to_string(), msg));
        }
        _ => {}
    }
}

pub(crate) fn eval_rhai(ast: &AST, ctx: &mut RhaiCtx<'_>) -> Result<bool, EvalError> {
    let r = ctx
        .engine
        .eval_ast_with_scope::<Dynamic>(ctx.scope, ast)
        .map_err(|e| EvalError(e.to_string()))?;
    r.as_bool()
        .map_err(|t| EvalError(format!("condition evaluated to {t}, not a bool")))
}

// ---------------------------------------------------------- lowering

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ty {
    Str,
    Int,
    Bool,
    Arr,
    List,
    Unknown,
}

fn ty_name(t: Ty) -> &'static str {
    match t {
        Ty::Str => "a string",
        Ty::Int => "an int",
        Ty::Bool => "a bool",
        Ty::Arr => "an array",
        Ty::List => "a list",
        Ty::Unknown => "a value",
    }
}

fn field_ty(f: Field) -> Ty {
    match f.def().ty {
        FieldType::Str => Ty::Str,
        FieldType::Int => Ty::Int,
        FieldType::Bool => Ty::Bool,
        FieldType::StrList => Ty::Arr,
    }
}

/// A load-time problem found while compiling a condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CompileProblem {
    /// Text to locate in the file (a sub-expression), if any.
    pub text: Option<String>,
    pub msg: String,
    pub warning: bool,
}

/// Compiles conditions against one rule set's lists, engine and scope.
pub(crate) struct Compiler<'a> {
    pub engine: &'a Engine,
    pub scope: &'a Scope<'static>,
    pub lists: &'a HashMap<String, Arc<ListSet>>,
    pub patterns: &'a mut Patterns,
    pub problems: Vec<CompileProblem>,
}

/// Literal patterns compiled at load, shared with the Rhai helper functions.
#[derive(Default, Debug)]
pub struct Patterns {
    pub regex: HashMap<String, Arc<Regex>>,
    pub glob: HashMap<String, Arc<globset::GlobMatcher>>,
    pub cidr: HashMap<String, Arc<Cidr>>,
}

impl Compiler<'_> {
    fn err(&mut self, text: &str, msg: String) {
        self.problems.push(CompileProblem {
            text: Some(text.to_string()),
            msg,
            warning: false,
        });
    }

    /// Compile a condition (macros already expanded).
    /// Compile a condition (macros already expanded): the native parser
    /// first (flat `&&`/`||` chains of any length), Rhai for the parts it does
    /// not cover; when the native parser cannot read the text at all, the
    /// whole condition goes to Rhai (whose syntax errors are reported).
    pub fn compile(&mut self, text: &str) -> Node {
        match parse(text) {
            Some(p) => {
                if self.constant_errors(text, &p) {
                    return Node::Const(false);
                }
                self.lower_bool(text, &p)
            }
            None => self.rhai_leaf(text, text),
        }
    }

    /// Report arithmetic that fails whatever the event: division or
    /// modulo by a constant zero, constant integer overflow. True if any.
    fn constant_errors(&mut self, text: &str, p: &P) -> bool {
        let src = &text[p.start..p.end];
        if let PExpr::Bin(op @ ("/" | "%"), _, b) = &p.e {
            if const_int(b) == Some(Some(0)) {
                let what = if *op == "/" {
                    "divides"
                } else {
                    "takes a remainder"
                };
                self.err(
                    src,
                    format!("`{src}` {what} by zero: the condition fails for every event"),
                );
                return true;
            }
        }
        if const_int(p) == Some(None) {
            self.err(
                src,
                format!("`{src}` overflows a 64-bit integer: the condition fails for every event"),
            );
            return true;
        }
        let mut found = false;
        let mut visit = |c: &P| found |= self.constant_errors(text, c);
        match &p.e {
            PExpr::Array(v) | PExpr::Call(_, v) | PExpr::Chain(_, v) => {
                v.iter().for_each(&mut visit)
            }
            PExpr::Method(r, _, v) => {
                visit(r);
                v.iter().for_each(visit);
            }
            PExpr::Prop(x, _) | PExpr::Not(x) | PExpr::Neg(x) => visit(x),
            PExpr::Index(a, b) | PExpr::Bin(_, a, b) => {
                visit(a);
                visit(b);
            }
            _ => {}
        }
        found
    }

    /// The whole condition compiled by Rhai alone, for tests comparing both
    /// paths; `None` (and no error) when Rhai refuses it, e.g. too complex.
    pub fn compile_rhai_quiet(&mut self, text: &str) -> Option<Arc<AST>> {
        self.engine
            .compile_expression_with_scope(self.scope, text)
            .ok()
            .map(Arc::new)
    }

    /// Compile the whole text with Rhai (used for syntax checks and tests).
    pub fn compile_rhai(&mut self, text: &str) -> Option<Arc<AST>> {
        match self.engine.compile_expression_with_scope(self.scope, text) {
            Ok(ast) => {
                self.collect_patterns(&ast);
                Some(Arc::new(ast))
            }
            Err(e) => {
                let pos = e.position();
                let near = pos
                    .line()
                    .and_then(|l| text.lines().nth(l.saturating_sub(1)))
                    .map(|line| {
                        let col = pos.position().unwrap_or(1).saturating_sub(1);
                        line.chars().skip(col).take(20).collect::<String>()
                    })
                    .filter(|s| !s.trim().is_empty());
                let mut msg = match &near {
                    Some(n) => format!(
                        "syntax error in condition: {} (near `{}`)",
                        e.err_type(),
                        n.trim()
                    ),
                    None => format!("syntax error in condition: {}", e.err_type()),
                };
                let et = e.err_type().to_string();
                if et.contains("Unexpected '='") {
                    msg.push_str("; compare with `==`");
                } else if et.contains("Invalid character")
                    && near.as_deref().is_some_and(|n| n.starts_with('\''))
                {
                    msg.push_str("; strings use double quotes: \"...\"");
                } else if text.contains("in (") {
                    msg.push_str("; a set of values is an array: `x in [\"a\", \"b\"]`");
                }
                // Locate the error by the text where Rhai stopped.
                let at = pos
                    .line()
                    .and_then(|l| text.lines().nth(l.saturating_sub(1)))
                    .map(|line| {
                        let col = pos.position().unwrap_or(1).saturating_sub(1);
                        line.chars()
                            .skip(col)
                            .take_while(|c| !c.is_whitespace())
                            .take(12)
                            .collect::<String>()
                    })
                    .filter(|s| !s.is_empty());
                self.problems.push(CompileProblem {
                    text: at,
                    msg,
                    warning: false,
                });
                None
            }
        }
    }

    fn rhai_leaf(&mut self, full: &str, sub: &str) -> Node {
        let _ = full;
        match self.compile_rhai(sub) {
            Some(ast) => Node::Rhai(ast, Arc::from(sub)),
            None => Node::Const(false),
        }
    }

    fn collect_patterns(&mut self, ast: &AST) {
        let mut found: Vec<(String, String)> = Vec::new();
        ast.walk(&mut |path: &[rhai::ASTNode]| {
            if let Some(rhai::ASTNode::Expr(rhai::Expr::FnCall(f, _))) = path.last() {
                if HELPERS.contains(&f.name.as_str()) && f.args.len() == 2 {
                    if let rhai::Expr::StringConstant(s, _) = &f.args[1] {
                        found.push((f.name.to_string(), s.to_string()));
                    }
                }
            }
            true
        });
        for (func, pat) in found {
            self.pattern(&func, &pat);
        }
    }

    /// Compile a literal pattern once; reports bad patterns.
    fn pattern(&mut self, func: &str, pat: &str) -> Option<Node> {
        let op = Operand::Bool(false);
        match func {
            "regex" => {
                if let Some(r) = self.patterns.regex.get(pat) {
                    return Some(Node::Regex(op, r.clone()));
                }
                match build_regex(pat) {
                    Ok(r) => {
                        let r = Arc::new(r);
                        self.patterns.regex.insert(pat.to_string(), r.clone());
                        Some(Node::Regex(op, r))
                    }
                    Err(m) => {
                        self.err(pat, m);
                        None
                    }
                }
            }
            "glob" => {
                if let Some(g) = self.patterns.glob.get(pat) {
                    return Some(Node::Glob(op, g.clone()));
                }
                match build_glob(pat) {
                    Ok(g) => {
                        let g = Arc::new(g);
                        self.patterns.glob.insert(pat.to_string(), g.clone());
                        Some(Node::Glob(op, g))
                    }
                    Err(m) => {
                        self.err(pat, m);
                        None
                    }
                }
            }
            "cidr" => {
                if let Some(c) = self.patterns.cidr.get(pat) {
                    return Some(Node::Cidr(op, c.clone()));
                }
                match Cidr::parse(pat) {
                    Ok(c) => {
                        let c = Arc::new(c);
                        self.patterns.cidr.insert(pat.to_string(), c.clone());
                        Some(Node::Cidr(op, c))
                    }
                    Err(m) => {
                        self.err(pat, m);
                        None
                    }
                }
            }
            _ => None,
        }
    }

    fn ty(&self, p: &P) -> Ty {
        match &p.e {
            PExpr::Str(_) => Ty::Str,
            PExpr::Int(_) => Ty::Int,
            PExpr::Bool(_) => Ty::Bool,
            PExpr::Field(f) => field_ty(*f),
            PExpr::Index(a, i) if matches!((&a.e, &i.e), (PExpr::Field(f), PExpr::Int(_)) if field_ty(*f) == Ty::Arr) => {
                Ty::Str
            }
            PExpr::Array(_) => Ty::Arr,
            PExpr::Ident(i) if self.lists.contains_key(i) => Ty::List,
            PExpr::Not(_) => Ty::Bool,
            PExpr::Chain(..) => Ty::Bool,
            PExpr::Bin("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "!in", _, _) => Ty::Bool,
            PExpr::Call(n, _) | PExpr::Method(_, n, _)
                if matches!(
                    n.as_str(),
                    "regex" | "glob" | "cidr" | "starts_with" | "ends_with" | "contains"
                ) =>
            {
                Ty::Bool
            }
            _ => Ty::Unknown,
        }
    }

    fn operand(&self, p: &P) -> Option<Operand> {
        Some(match &p.e {
            PExpr::Str(s) => Operand::Str(Arc::from(s.as_str())),
            PExpr::Int(i) => Operand::Int(*i),
            PExpr::Bool(b) => Operand::Bool(*b),
            PExpr::Field(f) if field_ty(*f) != Ty::Arr => Operand::Field(*f),
            PExpr::Index(a, i) => match (&a.e, &i.e) {
                (PExpr::Field(f), PExpr::Int(n)) if field_ty(*f) == Ty::Arr && *n >= 0 => {
                    Operand::Elem(*f, usize::try_from(*n).ok()?)
                }
                _ => return None,
            },
            _ => return None,
        })
    }

    fn lower_bool(&mut self, text: &str, p: &P) -> Node {
        let src = &text[p.start..p.end];
        match &p.e {
            PExpr::Bool(b) => Node::Const(*b),
            PExpr::Field(f) => {
                if field_ty(*f) == Ty::Bool {
                    Node::BoolField(*f)
                } else {
                    self.err(
                        src,
                        format!(
                            "type error: `{}` is {}, not a condition (compare it, e.g. `{} == ...`)",
                            f.name(),
                            ty_name(field_ty(*f)),
                            f.name()
                        ),
                    );
                    Node::Const(false)
                }
            }
            PExpr::Str(_) | PExpr::Int(_) | PExpr::Array(_) => {
                self.err(
                    src,
                    format!(
                        "type error: `{src}` is {}, not a condition",
                        ty_name(self.ty(p))
                    ),
                );
                Node::Const(false)
            }
            PExpr::Not(x) => {
                let t = self.ty(x);
                if t != Ty::Bool && t != Ty::Unknown {
                    self.err(src, format!("type error: `!` applied to {}", ty_name(t)));
                }
                Node::Not(Box::new(self.lower_bool(text, x)))
            }
            PExpr::Chain(op, parts) => {
                let mut v = Vec::with_capacity(parts.len());
                for side in parts {
                    let t = self.ty(side);
                    if t != Ty::Bool && t != Ty::Unknown {
                        let s = &text[side.start..side.end];
                        self.err(
                            s,
                            format!(
                                "type error: `{op}` needs conditions on both sides, `{s}` is {}",
                                ty_name(t)
                            ),
                        );
                    }
                    match (self.lower_bool(text, side), *op) {
                        (Node::And(inner), "&&") | (Node::Or(inner), "||") => v.extend(inner),
                        (n, _) => v.push(n),
                    }
                }
                if *op == "&&" {
                    Node::And(v)
                } else {
                    Node::Or(v)
                }
            }
            PExpr::Bin(op @ ("==" | "!=" | "<" | "<=" | ">" | ">="), a, b) => {
                let (ta, tb) = (self.ty(a), self.ty(b));
                if ta != Ty::Unknown && tb != Ty::Unknown && ta != tb {
                    self.err(
                        src,
                        format!(
                            "type error: `{src}` compares {} with {}",
                            ty_name(ta),
                            ty_name(tb)
                        ),
                    );
                    return Node::Const(false);
                }
                let ordering = !matches!(*op, "==" | "!=");
                if ordering && matches!(ta, Ty::Bool | Ty::Arr | Ty::List) {
                    self.err(src, format!("type error: `{op}` on {}", ty_name(ta)));
                    return Node::Const(false);
                }
                self.check_comm_literal(a, b);
                self.check_comm_literal(b, a);
                let cop = match *op {
                    "==" => CmpOp::Eq,
                    "!=" => CmpOp::Ne,
                    "<" => CmpOp::Lt,
                    "<=" => CmpOp::Le,
                    ">" => CmpOp::Gt,
                    _ => CmpOp::Ge,
                };
                match (self.operand(a), self.operand(b)) {
                    (Some(x), Some(y)) => Node::Cmp(cop, x, y),
                    _ => self.rhai_leaf(text, src),
                }
            }
            PExpr::Bin(op @ ("in" | "!in"), x, y) => {
                let n = self.lower_in(text, src, x, y);
                if *op == "!in" {
                    Node::Not(Box::new(n))
                } else {
                    n
                }
            }
            PExpr::Method(recv, name, args) if args.len() == 1 => {
                self.lower_call(text, src, name, recv, &args[0])
            }
            PExpr::Call(name, args) if args.len() == 2 => {
                self.lower_call(text, src, name, &args[0], &args[1])
            }
            _ => {
                let t = self.ty(p);
                if t != Ty::Bool && t != Ty::Unknown {
                    self.err(
                        src,
                        format!("type error: `{src}` is {}, not a condition", ty_name(t)),
                    );
                }
                self.rhai_leaf(text, src)
            }
        }
    }

    /// Warn about `proc.name == "<more than 15 chars>"` (comm is truncated).
    fn check_comm_literal(&mut self, f: &P, lit: &P) {
        if let (PExpr::Field(fl), PExpr::Str(s)) = (&f.e, &lit.e) {
            self.check_comm_value(*fl, s);
        }
    }

    fn check_comm_value(&mut self, f: Field, s: &str) {
        if matches!(f, Field::ProcName | Field::ProcPname) && s.len() > crate::filter::COMM_LEN {
            self.problems.push(CompileProblem {
                text: Some(s.to_string()),
                msg: format!(
                    "`{}` is compared with \"{s}\" ({} bytes), but the kernel keeps only 15: use \"{}\"",
                    f.name(),
                    s.len(),
                    crate::filter::truncate_comm(s)
                ),
                warning: true,
            });
        }
    }

    fn lower_in(&mut self, text: &str, src: &str, x: &P, y: &P) -> Node {
        let tx = self.ty(x);
        match &y.e {
            PExpr::Ident(name) => {
                let Some(set) = self.lists.get(name).cloned() else {
                    return self.rhai_leaf(text, src);
                };
                if matches!(tx, Ty::Bool | Ty::Arr | Ty::List) {
                    self.err(src, format!("type error: `in` list `{name}` needs a string or int on the left, got {}", ty_name(tx)));
                    return Node::Const(false);
                }
                if let PExpr::Field(f) = &x.e {
                    for s in &set.strs {
                        self.check_comm_value(*f, s);
                    }
                    if tx == Ty::Int && set.ints.is_empty() && !set.strs.is_empty() {
                        self.problems.push(CompileProblem {
                            text: Some(src.to_string()),
                            msg: format!("`{}` is an int but list `{name}` holds only strings: it can never match", f.name()),
                            warning: true,
                        });
                    }
                }
                match self.operand(x) {
                    Some(o) => Node::InSet(o, set),
                    None => self.rhai_leaf(text, src),
                }
            }
            PExpr::Array(items) => {
                let mut set = ListSet::default();
                for it in items {
                    match &it.e {
                        PExpr::Str(s) => {
                            if let PExpr::Field(f) = &x.e {
                                self.check_comm_value(*f, s);
                            }
                            set.strs.insert(s.clone());
                        }
                        PExpr::Int(i) => {
                            set.ints.insert(*i);
                        }
                        _ => return self.rhai_leaf(text, src),
                    }
                }
                if tx != Ty::Unknown && !items.is_empty() {
                    let all_str = set.ints.is_empty();
                    let all_int = set.strs.is_empty();
                    if (tx == Ty::Int && all_str) || (tx == Ty::Str && all_int) {
                        self.err(
                            src,
                            format!(
                                "type error: `{src}` looks for {} in an array of {}",
                                ty_name(tx),
                                if all_str { "strings" } else { "ints" }
                            ),
                        );
                        return Node::Const(false);
                    }
                }
                match self.operand(x) {
                    Some(o) => Node::InSet(o, Arc::new(set)),
                    None => self.rhai_leaf(text, src),
                }
            }
            PExpr::Field(f) if field_ty(*f) == Ty::Arr => match self.operand(x) {
                Some(Operand::Str(s)) if *f == Field::FileFlags => Node::FlagIn(s),
                Some(o) if tx == Ty::Str => Node::InArray(o, *f),
                _ if tx != Ty::Unknown => {
                    self.err(
                        src,
                        format!(
                            "type error: `{src}` looks for {} in an array of strings",
                            ty_name(tx)
                        ),
                    );
                    Node::Const(false)
                }
                _ => self.rhai_leaf(text, src),
            },
            PExpr::Field(_) | PExpr::Str(_) => {
                let ty = self.ty(y);
                if ty == Ty::Str && tx != Ty::Str && tx != Ty::Unknown {
                    self.err(
                        src,
                        format!("type error: `{src}` looks for {} in a string", ty_name(tx)),
                    );
                    return Node::Const(false);
                }
                if ty != Ty::Str {
                    self.err(src, format!("type error: `in` needs a list, an array or a string on the right, `{}` is {}", &text[y.start..y.end], ty_name(ty)));
                    return Node::Const(false);
                }
                match (self.operand(y), self.operand(x)) {
                    (Some(h), Some(n)) => Node::Str(StrOp::Contains, h, n),
                    _ => self.rhai_leaf(text, src),
                }
            }
            _ => self.rhai_leaf(text, src),
        }
    }

    fn lower_call(&mut self, text: &str, src: &str, name: &str, a: &P, b: &P) -> Node {
        let (ta, tb) = (self.ty(a), self.ty(b));
        match name {
            "starts_with" | "ends_with" | "contains" => {
                if name == "contains" && ta == Ty::Arr {
                    if let (PExpr::Field(f), Some(o)) = (&a.e, self.operand(b)) {
                        if let (Field::FileFlags, Operand::Str(s)) = (f, &o) {
                            return Node::FlagIn(s.clone());
                        }
                        if tb == Ty::Str {
                            return Node::InArray(o, *f);
                        }
                    }
                    return self.rhai_leaf(text, src);
                }
                for (t, side) in [(ta, a), (tb, b)] {
                    if t != Ty::Str && t != Ty::Unknown {
                        let s = &text[side.start..side.end];
                        self.err(
                            src,
                            format!(
                                "type error: `{name}` needs strings, `{s}` is {}",
                                ty_name(t)
                            ),
                        );
                        return Node::Const(false);
                    }
                }
                let op = match name {
                    "starts_with" => StrOp::StartsWith,
                    "ends_with" => StrOp::EndsWith,
                    _ => StrOp::Contains,
                };
                match (self.operand(a), self.operand(b)) {
                    (Some(x), Some(y)) => Node::Str(op, x, y),
                    _ => self.rhai_leaf(text, src),
                }
            }
            "regex" | "glob" | "cidr" => {
                if ta != Ty::Str && ta != Ty::Unknown {
                    let s = &text[a.start..a.end];
                    self.err(
                        src,
                        format!(
                            "type error: `{name}` needs a string first, `{s}` is {}",
                            ty_name(ta)
                        ),
                    );
                    return Node::Const(false);
                }
                let (PExpr::Str(pat), Some(x)) = (&b.e, self.operand(a)) else {
                    return self.rhai_leaf(text, src);
                };
                match self.pattern(name, pat) {
                    Some(Node::Regex(_, r)) => Node::Regex(x, r),
                    Some(Node::Glob(_, g)) => Node::Glob(x, g),
                    Some(Node::Cidr(_, c)) => Node::Cidr(x, c),
                    _ => Node::Const(false),
                }
            }
            _ => self.rhai_leaf(text, src),
        }
    }
}

// ------------------------------------------------------ Rhai engine

/// Where the namespace views find the event being evaluated.
///
/// The evaluator stores a pointer to the current event here for the duration
/// of one `evaluate` call (and null otherwise); the views only read through it
/// while Rhai runs inside that call.
#[derive(Debug, Default)]
pub struct EventSlot(AtomicPtr<Event>);

impl EventSlot {
    pub(crate) fn set(&self, ev: Option<&Event>) {
        let p = ev.map_or(std::ptr::null_mut(), |e| e as *const Event as *mut Event);
        self.0.store(p, Ordering::Release);
    }

    fn with<R>(&self, f: impl FnOnce(Option<&Event>) -> R) -> R {
        let p = self.0.load(Ordering::Acquire);
        // SAFETY: the pointer is either null or was set by `Evaluator::evaluate`
        // from a `&Event` that outlives the whole Rhai evaluation running on
        // this thread; it is reset to null before `evaluate` returns.
        let ev = unsafe { p.as_ref() };
        f(ev)
    }
}

macro_rules! namespaces {
    ($($ty:ident => $ns:literal),*) => {
        $(
            /// A Rhai view of one field namespace of the current event.
            #[derive(Clone, Debug)]
            pub struct $ty(pub Arc<EventSlot>);
            impl NsView for $ty {
                fn slot(&self) -> &EventSlot { &self.0 }
            }
        )*
        fn register_namespaces(engine: &mut Engine) {
            $( register_ns::<$ty>(engine, $ns, stringify!($ty)); )*
        }
        fn push_namespaces(scope: &mut Scope<'static>, slot: &Arc<EventSlot>) {
            $( scope.push($ns, $ty(slot.clone())); )*
        }
    };
}

trait NsView: Clone + Send + Sync + 'static {
    fn slot(&self) -> &EventSlot;
}

namespaces!(EvtNs => "evt", ProcNs => "proc", UserNs => "user", ContainerNs => "container",
    FileNs => "file", NetNs => "net", TcpNs => "tcp", ExitNs => "exit",
    FsNs => "fs", PtraceNs => "ptrace", SocketNs => "socket", SetidNs => "setid", NsNs => "ns",
    MemfdNs => "memfd");

fn to_dynamic(v: FieldValue<'_>) -> Dynamic {
    match v {
        FieldValue::Str(s) => Dynamic::from(ImmutableString::from(&*s)),
        FieldValue::Int(i) => Dynamic::from(i),
        FieldValue::Bool(b) => Dynamic::from(b),
        FieldValue::StrList(l) => Dynamic::from_array(
            l.iter()
                .map(|s| Dynamic::from(ImmutableString::from(s.as_str())))
                .collect(),
        ),
    }
}

fn register_ns<T: NsView>(engine: &mut Engine, ns: &str, tyname: &str) {
    engine.register_type_with_name::<T>(tyname);
    let prefix = format!("{ns}.");
    for def in FIELDS {
        let Some(prop) = def.name.strip_prefix(&prefix) else {
            continue;
        };
        let f = def.id;
        engine.register_get(prop, move |v: &mut T| -> Dynamic {
            v.slot().with(|ev| match ev {
                Some(ev) => to_dynamic(read_field(ev, f)),
                None => to_dynamic(default_value(f.def().ty)),
            })
        });
    }
}

/// The Rhai engine for one rule set: limits, namespace views, list sets and
/// the helper functions (whose literal patterns come from `patterns`).
pub(crate) fn make_engine(patterns: Arc<OnceLock<Patterns>>) -> Engine {
    let mut e = Engine::new();
    e.set_strict_variables(true)
        .set_allow_looping(false)
        .set_max_operations(MAX_OPERATIONS)
        .set_max_expr_depths(MAX_EXPR_DEPTH, MAX_EXPR_DEPTH)
        .set_max_string_size(MAX_STRING_SIZE)
        .set_max_array_size(MAX_ARRAY_SIZE)
        .set_max_map_size(MAX_ARRAY_SIZE)
        .set_max_call_levels(16)
        .set_max_variables(256);
    e.disable_symbol("eval");
    // Conditions must not write to vigil's stdout (alerts go there).
    e.on_print(|_| {});
    e.on_debug(|_, _, _| {});
    register_namespaces(&mut e);
    e.register_type_with_name::<Arc<ListSet>>("List");
    e.register_fn("contains", |l: &mut Arc<ListSet>, s: ImmutableString| {
        l.strs.contains(s.as_str())
    });
    e.register_fn("contains", |l: &mut Arc<ListSet>, i: i64| {
        l.ints.contains(&i)
    });
    let p = patterns.clone();
    e.register_fn(
        "regex",
        move |s: &str, pat: &str| -> Result<bool, Box<EvalAltResult>> {
            if let Some(r) = p.get().and_then(|t| t.regex.get(pat)) {
                return Ok(r.is_match(s));
            }
            build_regex(pat).map(|r| r.is_match(s)).map_err(Into::into)
        },
    );
    let p = patterns.clone();
    e.register_fn(
        "glob",
        move |s: &str, pat: &str| -> Result<bool, Box<EvalAltResult>> {
            if let Some(g) = p.get().and_then(|t| t.glob.get(pat)) {
                return Ok(g.is_match(s));
            }
            build_glob(pat).map(|g| g.is_match(s)).map_err(Into::into)
        },
    );
    let p = patterns;
    e.register_fn(
        "cidr",
        move |s: &str, pat: &str| -> Result<bool, Box<EvalAltResult>> {
            if let Some(c) = p.get().and_then(|t| t.cidr.get(pat)) {
                return Ok(c.contains(s));
            }
            Cidr::parse(pat).map(|c| c.contains(s)).map_err(Into::into)
        },
    );
    e
}

/// A scope with the lists (by name) and the namespace views reading `slot`.
pub(crate) fn make_scope(
    lists: &HashMap<String, Arc<ListSet>>,
    slot: &Arc<EventSlot>,
) -> Scope<'static> {
    let mut s = Scope::new();
    let mut names: Vec<_> = lists.keys().collect();
    names.sort();
    for n in names {
        // `push`, not `push_constant`: constants would be folded by the optimizer.
        s.push(n.clone(), lists[n].clone());
    }
    push_namespaces(&mut s, slot);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoNames;
    impl Names for NoNames {
        fn is_list(&self, n: &str) -> bool {
            n == "shells"
        }
        fn is_macro(&self, n: &str) -> bool {
            n == "web"
        }
        fn all_names(&self) -> Vec<String> {
            vec!["shells".into(), "web".into()]
        }
    }

    #[test]
    fn lexer_and_parser() {
        let t = lex(r#"proc.name == "a\"b" && !(x in [1, -2]) || f(1)"#);
        assert!(t.iter().any(|t| t.tok == Tok::Str("a\"b".into())));
        let p = parse("proc.name == \"x\" && proc.pid > 3 || !proc.tty").unwrap();
        assert!(matches!(&p.e, PExpr::Chain("||", v) if v.len() == 2));
        let p = parse("a && b && (c && d) || e").unwrap();
        assert!(
            matches!(&p.e, PExpr::Chain("||", v) if matches!(&v[0].e, PExpr::Chain("&&", w) if w.len() == 3))
        );
        assert!(parse("proc.name == ").is_none());
        assert!(parse("proc.name !in shells").is_some());
    }

    #[test]
    fn names_are_checked() {
        let mut f = Vec::new();
        let p = check_names("proc.nmae == \"x\" && shels", &NoNames, &[], &mut f);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].msg.contains("did you mean `proc.name`"),
            "{}",
            p[0].msg
        );
        assert!(p[1].msg.contains("did you mean `shells`"), "{}", p[1].msg);
        let p = check_names(
            "proc.cmdline.starts_with(\"x\") && web && proc.name in shells",
            &NoNames,
            &[],
            &mut f,
        );
        assert!(p.is_empty(), "{p:?}");
        assert!(f.contains(&Field::ProcCmdline) && f.contains(&Field::ProcName));
    }

    #[test]
    fn macro_expansion() {
        let out = expand_macros("a && proc.a && a(1) && b", &mut |n| {
            (n == "a").then(|| "x == 1".to_string())
        });
        assert_eq!(out, "(x == 1) && proc.a && a(1) && b");
        // The measured length is the built one, without building it.
        let text = "a && proc.a && a(1) && b || a";
        let built = expand_macros(text, &mut |n| (n == "a").then(|| "x == 1".to_string()));
        let measured = expanded_len(text, &mut |n| (n == "a").then_some(6));
        assert_eq!(measured, built.len());
        assert_eq!(
            expanded_len("a || a", &mut |_| Some(usize::MAX)),
            usize::MAX
        );
    }

    #[test]
    fn cidr_matching() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains("10.1.2.3") && !c.contains("11.0.0.1") && !c.contains("bogus"));
        assert!(c.contains("::ffff:10.0.0.1"));
        let c6 = Cidr::parse("fd00::/8").unwrap();
        assert!(c6.contains("fd12::1") && !c6.contains("fe80::1") && !c6.contains("10.0.0.1"));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("1.2.3.4"));
    }

    #[test]
    fn flag_bits_agree_with_flag_names() {
        let bits: Vec<u32> = crate::event::OPEN_FLAGS.iter().map(|(b, _)| *b).collect();
        let mut names: Vec<&str> = crate::event::OPEN_FLAGS.iter().map(|(_, n)| *n).collect();
        names.push("O_RDONLY");
        names.push("O_BOGUS");
        // every single flag, every pair, plus the access modes
        let mut combos = vec![0u32, 1, 2, 3];
        for (i, a) in bits.iter().enumerate() {
            for b in &bits[i..] {
                for acc in 0..3 {
                    combos.push(a | b | acc);
                }
            }
        }
        for f in combos {
            let list = crate::event::open_flag_names(f);
            for n in &names {
                assert_eq!(
                    flag_present(f, n),
                    list.iter().any(|x| x == n),
                    "{n} in {f:o}"
                );
            }
        }
    }

    #[test]
    fn hostile_regex_is_refused() {
        assert!(build_regex(r"\w{1000}{1000}").is_err());
        assert!(build_regex("(").is_err());
        let r = build_regex("sh$").unwrap();
        assert!(r.is_match("/bin/bash") && !r.is_match("shell"));
    }
}
