//! Lowering vigil conditions (parsed by [`super::parser`]) to the IR, with
//! the load-time type checks; the parts the native tree does not cover
//! become Rhai leaves.

use std::collections::HashMap;
use std::sync::Arc;

use rhai::{Engine, Scope, AST};

use super::ir::{CmpOp, ListSet, Node, Operand, StrOp};
use super::matchers::{build_glob, build_regex_at, Cidr, Patterns};
use super::parser::{parse, PExpr, P};
use super::HELPERS;
use crate::fields::{Field, FieldType};

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
    /// Bytes from the start of `text` to where the problem is (a regex's
    /// syntax error inside its pattern, a missing bracket).
    pub offset: usize,
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

impl Compiler<'_> {
    fn err(&mut self, text: &str, msg: String) {
        self.problems.push(CompileProblem {
            offset: 0,
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
        if let Some(b) = super::lexer::check_brackets(text) {
            // Named as such rather than as whatever Rhai's parser trips on.
            self.problems.push(CompileProblem {
                text: Some(text[b.start..b.at].to_string()).filter(|t| !t.is_empty()),
                offset: b.at - b.start,
                msg: b.msg,
                warning: false,
            });
            return Node::Const(false);
        }
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
                    offset: 0,
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
                match build_regex_at(pat) {
                    Ok(r) => {
                        let r = Arc::new(r);
                        self.patterns.regex.insert(pat.to_string(), r.clone());
                        Some(Node::Regex(op, r))
                    }
                    Err((msg, offset)) => {
                        self.problems.push(CompileProblem {
                            text: Some(pat.to_string()),
                            offset: offset.unwrap_or(0),
                            msg,
                            warning: false,
                        });
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
        if matches!(f, Field::ProcName | Field::ProcPname) && s.len() > crate::event::COMM_LEN {
            self.problems.push(CompileProblem {
                offset: 0,
                text: Some(s.to_string()),
                msg: format!(
                    "`{}` is compared with \"{s}\" ({} bytes), but the kernel keeps only 15: use \"{}\"",
                    f.name(),
                    s.len(),
                    crate::event::truncate_comm(s)
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
                            offset: 0,
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
