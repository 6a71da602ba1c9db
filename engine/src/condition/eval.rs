//! Evaluating the IR on one event: native nodes read fields directly,
//! Rhai leaves run in the rule set's engine; plus the load-time probe of
//! Rhai leaves.

use rhai::{Dynamic, Engine, Scope, AST};

use super::ir::{CmpOp, Node, Operand, StrOp};
use super::matchers::flag_present;
use super::MAX_OPERATIONS;
use crate::event::Event;
use crate::fields::{Field, FieldType, FieldValue};

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

pub(super) fn read_field(ev: &Event, f: Field) -> FieldValue<'_> {
    match ev.get(f) {
        Some(v) => v,
        None => default_value(f.def().ty),
    }
}

pub(super) fn default_value(t: FieldType) -> FieldValue<'static> {
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
