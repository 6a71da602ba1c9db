//! The parser of Falco's filter syntax: `and`/`or`/`not`, parentheses,
//! macro names, `field op value(s)`, into an [`Expr`] tree whose errors carry
//! byte offsets.

use super::lexer::{lex, Tok, T};

/// A value in a comparison: a bare word (which may name a list) or a quoted string.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Val {
    Bare(String),
    Quoted(String),
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Macro(String, usize),
    Cmp {
        field: String,
        arg: Option<String>,
        op: String,
        vals: Vec<Val>,
        /// The right side was a parenthesised list.
        list: bool,
        pos: usize,
    },
    /// A transformer (`tolower(x)`, ...) vigil does not run: inactive.
    Unsupported(String),
}

pub(super) const CMP_WORDS: &[&str] = &[
    "contains",
    "icontains",
    "bcontains",
    "startswith",
    "bstartswith",
    "endswith",
    "glob",
    "iglob",
    "regex",
    "in",
    "intersects",
    "pmatch",
];
pub(super) const TRANSFORMERS: &[&str] = &["tolower", "toupper", "b64", "basename", "len", "val"];

pub(super) struct Parser {
    toks: Vec<Tok>,
    i: usize,
    end: usize,
}

pub(super) type PResult<T> = Result<T, (usize, String)>;

pub(super) fn is_field_name(w: &str) -> bool {
    let name = w.split('[').next().unwrap_or("");
    name.contains('.')
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

pub(super) fn is_ident(w: &str) -> bool {
    w.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Parser {
    fn peek(&self) -> Option<&T> {
        self.toks.get(self.i).map(|t| &t.tok)
    }
    fn pos(&self) -> usize {
        self.toks.get(self.i).map_or(self.end, |t| t.pos)
    }
    fn word_is(&self, w: &str) -> bool {
        matches!(self.peek(), Some(T::Word(x)) if x == w)
    }
    fn or(&mut self) -> PResult<Expr> {
        let mut v = vec![self.and()?];
        while self.word_is("or") {
            self.i += 1;
            v.push(self.and()?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Expr::Or(v)
        })
    }
    fn and(&mut self) -> PResult<Expr> {
        let mut v = vec![self.not()?];
        while self.word_is("and") {
            self.i += 1;
            v.push(self.not()?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Expr::And(v)
        })
    }
    fn not(&mut self) -> PResult<Expr> {
        if self.word_is("not") {
            self.i += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.primary()
    }
    fn primary(&mut self) -> PResult<Expr> {
        let pos = self.pos();
        match self.peek().cloned() {
            Some(T::LParen) => {
                self.i += 1;
                let e = self.or()?;
                if self.peek() != Some(&T::RParen) {
                    return Err((self.pos(), "expected `)`".into()));
                }
                self.i += 1;
                Ok(e)
            }
            Some(T::Word(w)) if TRANSFORMERS.contains(&w.as_str()) => {
                self.i += 1;
                // Skip the transformer's argument and its comparison.
                let mut depth = 0;
                while let Some(t) = self.peek() {
                    match t {
                        T::LParen => depth += 1,
                        T::RParen if depth == 0 => break,
                        T::RParen => depth -= 1,
                        T::Word(x) if depth == 0 && (x == "and" || x == "or") => break,
                        _ => {}
                    }
                    self.i += 1;
                }
                Ok(Expr::Unsupported(format!("transformer `{w}()`")))
            }
            Some(T::Word(w)) if is_field_name(&w) => {
                self.i += 1;
                let (field, arg) = match w.split_once('[') {
                    Some((f, a)) => (f.to_string(), Some(a.trim_end_matches(']').to_string())),
                    None => (w.clone(), None),
                };
                let op = match self.peek() {
                    Some(T::Op(o)) => o.to_string(),
                    Some(T::Word(o)) if o == "exists" => {
                        self.i += 1;
                        return Ok(Expr::Cmp {
                            field,
                            arg,
                            op: "exists".into(),
                            vals: vec![],
                            list: false,
                            pos,
                        });
                    }
                    Some(T::Word(o)) if CMP_WORDS.contains(&o.as_str()) => o.clone(),
                    _ => {
                        return Err((
                            self.pos(),
                            format!("expected an operator after field `{w}`"),
                        ))
                    }
                };
                self.i += 1;
                let (vals, list) = if self.peek() == Some(&T::LParen) {
                    self.i += 1;
                    let mut vals = Vec::new();
                    loop {
                        match self.peek().cloned() {
                            Some(T::RParen) => {
                                self.i += 1;
                                break;
                            }
                            Some(T::Comma) => self.i += 1,
                            Some(t) => {
                                vals.push(self.value(t)?);
                                self.i += 1;
                            }
                            None => return Err((self.pos(), "unclosed list `(`".into())),
                        }
                    }
                    (vals, true)
                } else {
                    match self.peek().cloned() {
                        Some(t @ (T::Word(_) | T::Quoted(_) | T::Op(_))) => {
                            let v = self.value(t)?;
                            self.i += 1;
                            (vec![v], false)
                        }
                        _ => return Err((self.pos(), format!("expected a value after `{op}`"))),
                    }
                };
                Ok(Expr::Cmp {
                    field,
                    arg,
                    op,
                    vals,
                    list,
                    pos,
                })
            }
            Some(T::Word(w)) if is_ident(&w) && !matches!(w.as_str(), "and" | "or") => {
                self.i += 1;
                Ok(Expr::Macro(w, pos))
            }
            Some(t) => Err((pos, format!("unexpected `{}`", show(&t)))),
            None => Err((pos, "unexpected end of condition".into())),
        }
    }
    fn value(&self, t: T) -> PResult<Val> {
        match t {
            T::Word(w) => Ok(Val::Bare(w)),
            T::Quoted(q) => Ok(Val::Quoted(q)),
            T::Op(o) => Ok(Val::Bare(o.to_string())),
            other => Err((
                self.pos(),
                format!("expected a value, found `{}`", show(&other)),
            )),
        }
    }
}

pub(super) fn show(t: &T) -> String {
    match t {
        T::Word(w) => w.clone(),
        T::Quoted(q) => format!("\"{q}\""),
        T::Op(o) => o.to_string(),
        T::LParen => "(".into(),
        T::RParen => ")".into(),
        T::Comma => ",".into(),
    }
}

/// Parse a Falco condition; errors carry a byte offset into `text`.
pub(super) fn parse(text: &str) -> PResult<Expr> {
    let toks = lex(text)?;
    let mut p = Parser {
        toks,
        i: 0,
        end: text.len(),
    };
    let e = p.or()?;
    if p.i < p.toks.len() {
        let t = show(&p.toks[p.i].tok);
        return Err((
            p.pos(),
            format!("unexpected `{t}` after a complete condition"),
        ));
    }
    Ok(e)
}
