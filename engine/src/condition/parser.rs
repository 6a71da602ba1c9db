//! The native parser of vigil's condition syntax (a Rhai expression subset):
//! tokens to a positioned expression tree ([`P`]), which [`super::lower`]
//! turns into the IR. What it cannot read goes to Rhai whole.

use super::lexer::{lex, Tok, Token};
use super::NAMESPACES;
use crate::fields::{self, Field};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::condition::lexer::{lex, Tok};

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
}
