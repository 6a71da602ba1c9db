//! Lowering a Falco condition tree to the text form of vigil's condition
//! IR: macros expanded as trees, lists inlined, fields mapped, operators
//! turned into vigil's; what vigil cannot run is collected in [`Needs`].
//!
//! Why one file past ~800 lines: the lowering is one recursive walk whose
//! arms (operators, field arguments, list and macro expansion) share the
//! `Lowerer` state; split, each part would reach back into the others.

use std::collections::{BTreeSet, HashMap};

use super::evtypes::{syscall_kinds, TSet};
use super::fields::{is_metadata, list_item, subject, Kind, Subject, LIST_FIELDS};
use super::items::MacroEntry;
use super::parser::{Cmp, Expr, Val};
use crate::event::EventType;

/// A lowered (sub)condition: a constant or vigil condition text.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Out {
    Const(bool),
    Text(String),
}

pub(super) fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

pub(super) fn join(parts: Vec<Out>, and: bool) -> Out {
    let mut texts = Vec::new();
    for p in parts {
        match p {
            Out::Const(b) if b == and => {}
            Out::Const(b) => return Out::Const(b),
            Out::Text(t) => texts.push(t),
        }
    }
    match texts.len() {
        0 => Out::Const(and),
        1 => Out::Text(texts.remove(0)),
        _ => Out::Text(format!(
            "({})",
            texts.join(if and { " && " } else { " || " })
        )),
    }
}

pub(super) fn negate(o: Out) -> Out {
    match o {
        Out::Const(b) => Out::Const(!b),
        Out::Text(t) => Out::Text(format!("!({t})")),
    }
}

/// Why a rule cannot run on vigil (yet), collected while lowering.
#[derive(Default, Debug)]
pub(super) struct Needs {
    pub(super) fields: BTreeSet<String>,
    pub(super) other: BTreeSet<String>,
    /// Fields read as empty because vigil has no container metadata.
    pub(super) empty: BTreeSet<String>,
}

/// `evt.type == "k"` / `evt.type in [...]` for these kinds (false: none).
pub(super) fn evt_type_test(kinds: impl Iterator<Item = EventType>) -> Out {
    let kinds: BTreeSet<&str> = kinds.map(EventType::as_str).collect();
    match kinds.len() {
        0 => Out::Const(false),
        1 => Out::Text(format!(
            "evt.type == {}",
            quote(kinds.first().copied().unwrap_or(""))
        )),
        _ => Out::Text(format!(
            "evt.type in [{}]",
            kinds
                .iter()
                .map(|k| quote(k))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Falco's byte-operator value: hex digits (any case), two per byte.
fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.is_empty() || !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

pub(super) fn re_esc(s: &str) -> String {
    regex_syntax::escape(s)
}

/// Falco's glob (`*` crosses `/`, `?` one char, `[...]` a class) as an anchored regex.
pub(super) fn glob_regex(g: &str, icase: bool) -> String {
    let mut r = String::from(if icase { "(?i)^" } else { "^" });
    let mut chars = g.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => r.push_str(".*"),
            '?' => r.push('.'),
            '[' => {
                let mut class = String::from("[");
                let mut closed = false;
                for d in chars.by_ref() {
                    if d == ']' {
                        closed = true;
                        break;
                    }
                    class.push(if d == '!' && class.len() == 1 { '^' } else { d });
                }
                if closed {
                    r.push_str(&class.replace('\\', "\\\\"));
                    r.push(']');
                } else {
                    r.push_str(&re_esc(&format!("[{}", &class[1..])));
                }
            }
            '\\' => {
                if let Some(n) = chars.next() {
                    r.push_str(&re_esc(&n.to_string()));
                }
            }
            c => r.push_str(&re_esc(&c.to_string())),
        }
    }
    r.push('$');
    r
}

pub(super) struct Lowerer<'a> {
    pub(super) lists: &'a HashMap<String, Vec<String>>,
    pub(super) macros: &'a HashMap<String, MacroEntry>,
    pub(super) needs: Needs,
    /// Macros being expanded (cycle detection).
    pub(super) stack: Vec<String>,
    /// The rule's event kinds once inferred: per-kind fields keep only the
    /// alternatives of these kinds (None: all, while inferring them).
    pub(super) kinds: Option<Vec<EventType>>,
}

/// How a Falco field reads (see [`Lowerer::read`]).
enum Read {
    Subject(Subject),
    /// Handled by [`Lowerer::special`].
    Special,
    /// vigil lacks it (noted in `needs`).
    Missing,
}

/// A lowering failure: a real error, with the text to point at.
pub(super) struct LowerError {
    /// The macro whose text holds the error (None: the rule's own text).
    pub(super) in_macro: Option<String>,
    pub(super) pos: usize,
    pub(super) msg: String,
}

impl<'a> Lowerer<'a> {
    /// A lowerer for one rule (`kinds`: its event kinds once inferred).
    pub(super) fn new(
        lists: &'a HashMap<String, Vec<String>>,
        macros: &'a HashMap<String, MacroEntry>,
        kinds: Option<Vec<EventType>>,
    ) -> Lowerer<'a> {
        Lowerer {
            lists,
            macros,
            needs: Needs::default(),
            stack: Vec::new(),
            kinds,
        }
    }

    fn err<T>(&self, pos: usize, msg: String) -> Result<T, LowerError> {
        Err(LowerError {
            in_macro: self.stack.last().cloned(),
            pos,
            msg,
        })
    }

    pub(super) fn lower(&mut self, e: &Expr) -> Result<(Out, TSet), LowerError> {
        Ok(match e {
            Expr::And(v) | Expr::Or(v) => {
                let and = matches!(e, Expr::And(_));
                let mut outs = Vec::new();
                let mut ts: Option<TSet> = None;
                for x in v {
                    let (o, t) = self.lower(x)?;
                    outs.push(o);
                    ts = Some(match ts {
                        None => t,
                        Some(s) if and => s.and(t),
                        Some(s) => s.or(t),
                    });
                }
                (join(outs, and), ts.unwrap_or_else(TSet::all))
            }
            Expr::Not(x) => {
                let (o, t) = self.lower(x)?;
                (negate(o), t.not())
            }
            Expr::Macro(name, pos) => {
                let Some(m) = self.macros.get(name) else {
                    let hint = if self.lists.contains_key(name) {
                        " (it is a list: use it inside parentheses, e.g. `proc.name in (NAME)`)"
                    } else {
                        ""
                    };
                    return self.err(*pos, format!("undefined macro `{name}`{hint}"));
                };
                if self.stack.contains(name) {
                    return self.err(
                        *pos,
                        format!(
                            "macro refers to itself ({} -> {name})",
                            self.stack.join(" -> ")
                        ),
                    );
                }
                if self.stack.len() >= 64 {
                    return self.err(*pos, "macros nest more than 64 deep".into());
                }
                let ast = match &m.ast {
                    Ok(a) => a,
                    // Its syntax error is reported at the macro itself.
                    Err(_) => {
                        return Err(LowerError {
                            in_macro: None,
                            pos: usize::MAX,
                            msg: String::new(),
                        })
                    }
                };
                self.stack.push(name.clone());
                let r = self.lower(ast);
                self.stack.pop();
                let (o, t) = r?;
                (o, t)
            }
            Expr::Cmp(c) => self.cmp(c)?,
        })
    }

    /// The values of a comparison, list names expanded.
    fn values(&self, vals: &[Val], list: bool) -> Vec<String> {
        let mut out = Vec::new();
        for v in vals {
            match v {
                Val::Bare(w) if list || !w.contains('/') => match self.lists.get(w) {
                    Some(items) => out.extend(items.iter().cloned()),
                    None => out.push(w.clone()),
                },
                Val::Bare(w) | Val::Quoted(w) => out.push(w.clone()),
                // Handled by `field_cmp` before values are read.
                Val::Field(f) => out.push(f.clone()),
            }
        }
        out
    }

    fn cmp(&mut self, c: &Cmp) -> Result<(Out, TSet), LowerError> {
        let full = c.full();
        let (op, pos) = (c.op.as_str(), c.pos);
        if let [Val::Field(other)] = c.vals.as_slice() {
            return Ok((self.field_cmp(c, other)?, TSet::all()));
        }
        if c.vals.iter().any(|v| matches!(v, Val::Field(_))) {
            return self.err(pos, "`val()` compares with one field, not in a list".into());
        }
        let mut vs = self.values(&c.vals, c.list);
        if c.field == "container.id" {
            // Falco's `host` is vigil's empty id (the host's events).
            for v in vs.iter_mut().filter(|v| *v == "host") {
                v.clear();
            }
        }
        let setop = matches!(op, "in" | "intersects" | "pmatch");
        if !setop && op != "exists" && vs.len() != 1 {
            return self.err(pos, format!("`{full} {op}` takes one value, not a list"));
        }
        if !c.xf.is_empty() {
            let o = match self.plain(c, &c.field, c.arg.as_deref())? {
                Some((x, k, full)) => self.compare(&x, k, op, &vs, &full, pos)?,
                None => Out::Const(false),
            };
            return Ok((o, TSet::all()));
        }
        if c.field == "evt.type" {
            return self.evt_type(op, &vs, pos);
        }
        let o = match self.read(&c.field, c.arg.as_deref(), &full, pos)? {
            Read::Missing => Out::Const(false),
            Read::Special => self.special(&c.field, c.arg.as_deref(), op, &vs)?,
            // A field none of the rule's kinds carry has no value: false, as
            // in Falco (vigil's compiler would refuse to read it).
            Read::Subject(Subject::Expr(x, k)) if !self.carried(&x) => {
                // (compared anyway for its errors: a bad value stays an error)
                self.compare(&x, k, op, &vs, &full, pos)?;
                Out::Const(false)
            }
            Read::Subject(Subject::Expr(x, k)) => self.compare(&x, k, op, &vs, &full, pos)?,
            Read::Subject(Subject::Gated(alts, k)) => {
                let mut outs = Vec::new();
                for (gate, x) in self.gates(alts) {
                    let c = self.compare(&x, k, op, &vs, &full, pos)?;
                    outs.push(join(vec![gate, c], true));
                }
                join(outs, false)
            }
        };
        Ok((o, TSet::all()))
    }

    /// Per-kind alternatives as (gate, field), kept to the rule's kinds; the
    /// gate is `true` when the alternative covers all of them.
    pub(super) fn gates(&self, alts: Vec<(&'static [EventType], String)>) -> Vec<(Out, String)> {
        alts.into_iter()
            .filter_map(|(ts, x)| {
                let gate = match &self.kinds {
                    Some(ks) if ks.iter().all(|k| ts.contains(k)) => Out::Const(true),
                    Some(ks) if !ks.iter().any(|k| ts.contains(k)) => return None,
                    _ => evt_type_test(ts.iter().copied()),
                };
                Some((gate, x))
            })
            .collect()
    }

    /// False when `x` is a vigil field none of the rule's kinds carry.
    fn carried(&self, x: &str) -> bool {
        match (&self.kinds, crate::fields::lookup(x)) {
            (Some(ks), Some(f)) => ks.iter().any(|k| f.def().events.contains(*k)),
            _ => true,
        }
    }

    /// How a Falco field reads in vigil; a field vigil lacks is noted in
    /// `needs` (`Missing`), one Falco does not know is an error.
    fn read(
        &mut self,
        field: &str,
        arg: Option<&str>,
        full: &str,
        pos: usize,
    ) -> Result<Read, LowerError> {
        Ok(match subject(field, arg) {
            Ok(Some(s)) => Read::Subject(s),
            Ok(None) => Read::Special,
            Err(true) if is_metadata(field) => {
                self.needs.empty.insert(full.to_string());
                Read::Subject(Subject::Expr("\"\"".into(), Kind::Str))
            }
            Err(true) => {
                self.needs.fields.insert(full.to_string());
                Read::Missing
            }
            Err(false) => {
                return self.err(
                    pos,
                    format!("unknown field `{full}` (not a Falco field vigil knows)"),
                )
            }
        })
    }

    /// `field` (of comparison `c`) as one vigil expression with `c`'s
    /// transformers applied: (expression, kind, Falco text). None (noted in
    /// `needs`) when vigil lacks it or it is not one plain vigil field.
    fn plain(
        &mut self,
        c: &Cmp,
        field: &str,
        arg: Option<&str>,
    ) -> Result<Option<(String, Kind, String)>, LowerError> {
        let mut full = match arg {
            Some(a) => format!("{field}[{a}]"),
            None => field.to_string(),
        };
        let (mut x, mut k) = match self.read(field, arg, &full, c.pos)? {
            Read::Subject(Subject::Expr(x, k)) => (x, k),
            Read::Missing => return Ok(None),
            _ => {
                let what = match c.xf.as_slice() {
                    [] => format!("`val({full})`"),
                    xf => format!("`{}()` on `{full}`", xf.join("()`/`")),
                };
                self.needs
                    .other
                    .insert(format!("{what} (not one plain vigil field)"));
                return Ok(None);
            }
        };
        for t in &c.xf {
            if k != Kind::Str {
                return self.err(c.pos, format!("`{t}()` needs a string; `{full}` is not"));
            }
            (x, k) = match t.as_str() {
                "tolower" => (format!("{x}.to_lower()"), Kind::Str),
                "toupper" => (format!("{x}.to_upper()"), Kind::Str),
                "b64" => (format!("b64({x})"), Kind::Str),
                "basename" => (format!("basename({x})"), Kind::Str),
                _ => (format!("{x}.len()"), Kind::Int),
            };
            full = format!("{t}({full})");
        }
        Ok(Some((x, k, full)))
    }

    /// `field op val(other)`: two fields compared.
    fn field_cmp(&mut self, c: &Cmp, other: &str) -> Result<Out, LowerError> {
        let (op, pos) = (c.op.as_str(), c.pos);
        let Some((x, k, full)) = self.plain(c, &c.field, c.arg.as_deref())? else {
            return Ok(Out::Const(false));
        };
        let (of, oa) = match other.split_once('[') {
            Some((f, a)) => (f, Some(a.trim_end_matches(']'))),
            None => (other, None),
        };
        let bare = Cmp {
            xf: Vec::new(),
            ..c.clone()
        };
        let Some((y, ky, _)) = self.plain(&bare, of, oa)? else {
            return Ok(Out::Const(false));
        };
        if k != ky {
            return self.err(
                pos,
                format!("`{full} {op} val({other})` compares different types"),
            );
        }
        Ok(Out::Text(match op {
            "=" | "==" => format!("{x} == {y}"),
            "!=" | "<" | "<=" | ">" | ">=" => format!("{x} {op} {y}"),
            "contains" if k == Kind::Str => format!("{x}.contains({y})"),
            "startswith" if k == Kind::Str => format!("{x}.starts_with({y})"),
            "endswith" if k == Kind::Str => format!("{x}.ends_with({y})"),
            _ => {
                self.needs
                    .other
                    .insert(format!("`{op} val()` (not supported with a field)"));
                return Ok(Out::Const(false));
            }
        }))
    }

    fn evt_type(&mut self, op: &str, vs: &[String], pos: usize) -> Result<(Out, TSet), LowerError> {
        let names: BTreeSet<String> = vs.iter().cloned().collect();
        // Lowered for failed execs (see `FalcoDefs::finish`): execve names them.
        let failed = self.kinds.as_deref() == Some(&[EventType::ExecFailed]);
        let test = evt_type_test(
            names
                .iter()
                .flat_map(|n| syscall_kinds(n).iter().copied())
                .map(|k| match k {
                    EventType::Exec if failed => EventType::ExecFailed,
                    k => k,
                }),
        );
        let ts = TSet {
            neg: false,
            set: names,
            exact: true,
        };
        Ok(match op {
            "=" | "==" | "in" => (test, ts),
            "!=" => (negate(test), ts.not()),
            _ => {
                return self.err(
                    pos,
                    format!("`evt.type {op}` is not supported (use =, != or in)"),
                )
            }
        })
    }

    /// `subject op values` on a plain vigil field or expression.
    fn compare(
        &mut self,
        x: &str,
        k: Kind,
        op: &str,
        vs: &[String],
        full: &str,
        pos: usize,
    ) -> Result<Out, LowerError> {
        let v0 = vs.first().map(String::as_str).unwrap_or("");
        let lit = |v: &str| -> Result<String, String> {
            match k {
                Kind::Str => Ok(quote(v)),
                Kind::Int => v
                    .parse::<i64>()
                    .map(|i| i.to_string())
                    .map_err(|_| format!("`{full}` is a number; `{v}` is not")),
                Kind::Bool => match v {
                    "true" | "false" => Ok(v.to_string()),
                    _ => Err(format!("`{full}` is true or false; `{v}` is neither")),
                },
            }
        };
        let lit1 = match lit(v0) {
            Ok(l) => l,
            Err(m) if op != "exists" && !matches!(op, "in" | "intersects" | "pmatch") => {
                return self.err(pos, m)
            }
            Err(_) => String::new(),
        };
        let re = |body: String| Out::Text(format!("regex({x}, {})", quote(&body)));
        let stronly = |s: &mut Self| -> Result<(), LowerError> {
            if k != Kind::Str {
                return s.err(pos, format!("`{op}` needs a string field; `{full}` is not"));
            }
            Ok(())
        };
        Ok(match op {
            "=" | "==" => Out::Text(if k == Kind::Bool {
                if lit1 == "true" {
                    x.to_string()
                } else {
                    format!("!{x}")
                }
            } else {
                format!("{x} == {lit1}")
            }),
            "!=" => Out::Text(if k == Kind::Bool {
                if lit1 == "true" {
                    format!("!{x}")
                } else {
                    x.to_string()
                }
            } else {
                format!("{x} != {lit1}")
            }),
            "<" | "<=" | ">" | ">=" => Out::Text(format!("{x} {op} {lit1}")),
            "in" | "intersects" => {
                if LIST_FIELDS.contains(&x) {
                    return Ok(join(
                        vs.iter()
                            .map(|v| Out::Text(format!("{} in {x}", quote(&list_item(x, v)))))
                            .collect(),
                        false,
                    ));
                }
                let mut items = Vec::new();
                for v in vs {
                    match lit(v) {
                        Ok(l) => items.push(l),
                        Err(m) => return self.err(pos, m),
                    }
                }
                if items.is_empty() {
                    Out::Const(false)
                } else {
                    Out::Text(format!("{x} in [{}]", items.join(", ")))
                }
            }
            "pmatch" => {
                stronly(self)?;
                join(
                    vs.iter()
                        .map(|v| {
                            let p = v.trim_end_matches('/');
                            Out::Text(format!(
                                "({x} == {} || {x}.starts_with({}))",
                                quote(p),
                                quote(&format!("{p}/"))
                            ))
                        })
                        .collect(),
                    false,
                )
            }
            "contains" if LIST_FIELDS.contains(&x) => {
                Out::Text(format!("{} in {x}", quote(&list_item(x, v0))))
            }
            // The names are upper case (`icontains sys_module`).
            "icontains" if LIST_FIELDS.contains(&x) => Out::Text(format!(
                "{} in {x}",
                quote(&list_item(x, &v0.to_uppercase()))
            )),
            // `fd.nameraw contains "../"`: a traversal, i.e. a relative raw
            // path or one with a `/../` segment, which the kernel filter
            // passes as unnormalised (a clean absolute path whose names
            // end in `..`, `/etc/a../b`, is no traversal and not matched).
            "contains" if x == "file.path_raw" && v0.contains("../") => Out::Text(format!(
                "({x}.contains({lit1}) && (!{x}.starts_with(\"/\") || {x}.contains(\"/../\")))"
            )),
            "contains" => {
                stronly(self)?;
                Out::Text(format!("{x}.contains({lit1})"))
            }
            "startswith" => {
                stronly(self)?;
                Out::Text(format!("{x}.starts_with({lit1})"))
            }
            "endswith" => {
                stronly(self)?;
                Out::Text(format!("{x}.ends_with({lit1})"))
            }
            "icontains" => {
                stronly(self)?;
                re(format!("(?i){}", re_esc(v0)))
            }
            "glob" | "iglob" => {
                stronly(self)?;
                // The literal start, implied by the pattern, for the kernel filter.
                let lit = &v0[..v0.find(['*', '?', '[', '\\']).unwrap_or(v0.len())];
                let m = re(glob_regex(v0, op == "iglob"));
                if lit.is_empty() || op == "iglob" {
                    m
                } else {
                    join(
                        vec![Out::Text(format!("{x}.starts_with({})", quote(lit))), m],
                        true,
                    )
                }
            }
            "regex" => {
                stronly(self)?;
                if let Err(e) = crate::condition::build_regex(v0) {
                    return self.err(pos, e);
                }
                re(v0.to_string())
            }
            "exists" => match k {
                Kind::Str => Out::Text(format!("{x} != \"\"")),
                _ => Out::Const(true),
            },
            "bcontains" | "bstartswith" => {
                stronly(self)?;
                let Some(bytes) = hex_bytes(v0) else {
                    return self.err(pos, format!("`{op}` takes hex bytes; `{v0}` is not"));
                };
                // vigil's strings are UTF-8: bytes that are not never match.
                match String::from_utf8(bytes) {
                    Ok(s) if op == "bcontains" => Out::Text(format!("{x}.contains({})", quote(&s))),
                    Ok(s) => Out::Text(format!("{x}.starts_with({})", quote(&s))),
                    Err(_) => Out::Const(false),
                }
            }
            other => return self.err(pos, format!("unknown operator `{other}`")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Location;
    use crate::falco::parser::parse;

    fn lower(cond: &str, macros: &[(&str, &str)], lists: &[(&str, &[&str])]) -> (Out, TSet, Needs) {
        let lists: HashMap<String, Vec<String>> = lists
            .iter()
            .map(|(n, v)| (n.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect();
        let macros: HashMap<String, MacroEntry> = macros
            .iter()
            .map(|(n, t)| {
                (
                    n.to_string(),
                    MacroEntry {
                        loc: Location::default(),
                        text: t.to_string(),
                        ast: parse(t),
                    },
                )
            })
            .collect();
        let mut lw = Lowerer::new(&lists, &macros, None);
        let ast = parse(cond).unwrap_or_else(|e| panic!("{e:?}"));
        let (o, t) = lw.lower(&ast).unwrap_or_else(|e| panic!("{}", e.msg));
        (o, t, lw.needs)
    }

    fn text(o: Out) -> String {
        match o {
            Out::Text(t) => t,
            Out::Const(b) => b.to_string(),
        }
    }

    #[test]
    fn grammar_and_lists() {
        let (o, t, _) = lower(
            "spawned_process and proc.name in (shells, zsh) and not proc.pname=\"x y\"",
            &[(
                "spawned_process",
                "(evt.type in (execve, execveat) and evt.dir=<)",
            )],
            &[("shells", &["sh", "bash"])],
        );
        assert_eq!(
            text(o),
            "(evt.type == \"exec\" && proc.name in [\"sh\", \"bash\", \"zsh\"] && !(proc.pname == \"x y\"))"
        );
        assert!(!t.neg);
        assert_eq!(t.set.len(), 2);
    }

    #[test]
    fn event_types_inferred_and_unsupported_named() {
        let (_, t, _) = lower(
            "evt.type in (open, unlink) or (evt.type=connect and fd.num>=0)",
            &[],
            &[],
        );
        assert_eq!(
            t.set.into_iter().collect::<Vec<_>>(),
            vec!["connect", "open", "unlink"]
        );
        let (_, t, _) = lower("not evt.type=open and proc.name=x", &[], &[]);
        assert!(t.neg);
        let (_, t, _) = lower("not (evt.type=open and proc.name=x)", &[], &[]);
        assert_eq!(t, TSet::all());
    }

    #[test]
    fn fields_map_and_missing_fields_are_reported() {
        let (o, _, n) = lower(
            "fd.directory in (/etc, /bin/) and proc.aname[2]=nginx",
            &[],
            &[],
        );
        let t = text(o);
        assert!(
            t.contains("regex(file.path, \"^(?:/etc|/bin)/[^/]+$\")"),
            "{t}"
        );
        assert!(t.contains("proc.ancestors[1] == \"nginx\""), "{t}");
        assert!(n.fields.is_empty());
        let (o, _, n) = lower(
            "proc.name=a and thread.cap_effective contains SYS_ADMIN",
            &[],
            &[],
        );
        assert_eq!(
            text(o),
            "(proc.name == \"a\" && \"CAP_SYS_ADMIN\" in proc.cap_effective)"
        );
        assert!(n.fields.is_empty());
        let (o, _, n) = lower(
            "thread.cap_permitted contains CAP_BPF and proc.is_exe_from_memfd=true and proc.env icontains http_proxy",
            &[],
            &[],
        );
        let t = text(o);
        assert!(t.contains("\"CAP_BPF\" in proc.cap_permitted"), "{t}");
        assert!(t.contains("proc.exe_from_memfd"), "{t}");
        assert!(t.contains("regex(proc.env, \"(?i)http_proxy\")"), "{t}");
        assert!(n.fields.is_empty());
        let (o, _, n) = lower("thread.cap_inheritable contains CAP_BPF", &[], &[]);
        assert_eq!(o, Out::Const(false));
        assert!(n.fields.contains("thread.cap_inheritable"));
        let (_, _, n) = lower("container.image.repository = x", &[], &[]);
        assert!(n.empty.contains("container.image.repository"));
    }

    #[test]
    fn errors_point_at_the_mistake() {
        assert!(parse("proc.name = ").is_err());
        assert!(parse("(proc.name = a").is_err());
        assert_eq!(parse("proc.name = a b").unwrap_err().0, 14);
        let lists = HashMap::new();
        let macros = HashMap::new();
        let mut lw = Lowerer::new(&lists, &macros, None);
        let e = lw
            .lower(&parse("nosuch_macro and proc.name=a").unwrap())
            .err()
            .unwrap();
        assert!(e.msg.contains("undefined macro `nosuch_macro`"));
        let e = lw.lower(&parse("proc.nmae = a").unwrap()).err().unwrap();
        assert!(e.msg.contains("unknown field `proc.nmae`"), "{}", e.msg);
        let e = lw.lower(&parse("proc.pid = abc").unwrap()).err().unwrap();
        assert!(e.msg.contains("number"), "{}", e.msg);
    }

    #[test]
    fn new_kinds_their_arguments_and_host() {
        // bpf's command by number or name; dup's syscalls are one kind.
        let (o, t, n) = lower(
            "evt.type=bpf and (evt.arg.cmd=5 or evt.arg.cmd=BPF_MAP_CREATE)",
            &[],
            &[],
        );
        let t2 = text(o);
        assert!(t2.contains("bpf.cmd == \"BPF_PROG_LOAD\""), "{t2}");
        assert!(t2.contains("bpf.cmd == \"BPF_MAP_CREATE\""), "{t2}");
        assert!(n.fields.is_empty() && n.other.is_empty());
        assert_eq!(t.set.len(), 1);
        let (o, _, _) = lower(
            "evt.type in (dup, dup2, dup3, fcntl) and container.id != host",
            &[],
            &[],
        );
        assert_eq!(text(o), "(evt.type == \"dup\" && container.id != \"\")");
        // Capability names in any case.
        let (o, _, _) = lower("thread.cap_effective icontains sys_module", &[], &[]);
        assert_eq!(text(o), "\"CAP_SYS_MODULE\" in proc.cap_effective");
    }

    #[test]
    fn glob_is_falcos() {
        assert_eq!(glob_regex("/home/*/.ssh/*", false), "^/home/.*/\\.ssh/.*$");
        assert_eq!(glob_regex("*../*../*", false), "^.*\\.\\./.*\\.\\./.*$");
    }
}
