//! Falco rule files: dialect detection, Falco's items and keys, Falco's
//! condition grammar, and its lowering onto vigil's condition IR.
//!
//! A file is read as Falco when its items say so without any edit: an item
//! `required_engine_version` / `required_plugin_versions`, a Falco-only key
//! (`override`, `source`, `warn_evttypes`, `skip-if-unknown-filter`), or rules
//! with no `events:` whose conditions use Falco's words (`and`, `or`, `not`,
//! `=`, `startswith`, ...). A directory may mix both dialects.
//!
//! Falco items are collected per rule set ([`FalcoDefs`]: lists, macros and
//! rules share one namespace across Falco files, apart from vigil's own) and
//! turned into ordinary rule definitions once every file is read
//! ([`FalcoDefs::finish`]): each condition is parsed, its macros expanded as
//! trees and its lists inlined, then lowered to the text form of vigil's
//! condition IR (`proc.name in ["sh", "bash"] && ...`), which the compiler
//! turns into the native evaluation tree and the kernel filter like any other
//! rule. Event kinds are inferred from `evt.type` as Falco does; Falco field
//! names are mapped onto vigil's catalogue with Falco's meaning.
//!
//! A rule that needs a syscall vigil does not observe or a field vigil cannot
//! produce loads **inactive** (disabled, never evaluated) with the exact
//! reason; a real mistake (syntax, unknown macro, a field Falco does not
//! know either) is a load error at the item.

use std::collections::{BTreeSet, HashMap};

use serde_yaml_ng::{Mapping, Value};

use crate::alert::Priority;
use crate::error::{Diag, Location};
use crate::event::EventType;
use crate::rules::{ExcDef, Frag, RuleDef, SrcLines};

/// Keys only Falco files use.
const FALCO_ONLY_KEYS: &[&str] = &[
    "required_engine_version",
    "required_plugin_versions",
    "override",
    "source",
    "warn_evttypes",
    "skip-if-unknown-filter",
];
const RULE_KEYS: &[&str] = &[
    "rule",
    "desc",
    "condition",
    "output",
    "priority",
    "enabled",
    "tags",
    "exceptions",
    "append",
    "override",
    "source",
    "warn_evttypes",
    "skip-if-unknown-filter",
    "required_engine_version",
];
const MACRO_KEYS: &[&str] = &[
    "macro",
    "condition",
    "append",
    "override",
    "required_engine_version",
];
const LIST_KEYS: &[&str] = &["list", "items", "append", "override"];

/// True when the file's items are Falco's dialect (see the module doc).
pub(crate) fn is_falco_file(items: &[Value]) -> bool {
    let maps = || items.iter().filter_map(Value::as_mapping);
    if maps().any(|m| FALCO_ONLY_KEYS.iter().any(|k| m.contains_key(*k))) {
        return true;
    }
    let rules: Vec<&Mapping> = maps().filter(|m| m.contains_key("rule")).collect();
    if rules.iter().any(|m| m.contains_key("events")) {
        return false;
    }
    maps()
        .filter_map(|m| m.get("condition").and_then(Value::as_str))
        .any(|c| {
            lex(c).is_ok_and(|toks| {
                toks.iter().any(|t| {
                    matches!(&t.tok, T::Word(w) if matches!(w.as_str(),
                        "and" | "or" | "not" | "startswith" | "endswith" | "icontains" | "pmatch" | "exists"))
                        || matches!(&t.tok, T::Op(o) if *o == "=")
                })
            })
        })
}

// ------------------------------------------------------------ lexer

#[derive(Clone, Debug, PartialEq)]
enum T {
    Word(String),
    Quoted(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

#[derive(Clone, Debug)]
struct Tok {
    tok: T,
    pos: usize,
}

fn lex(s: &str) -> Result<Vec<Tok>, (usize, String)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let tok = match c {
            c if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'(' => {
                i += 1;
                T::LParen
            }
            b')' => {
                i += 1;
                T::RParen
            }
            b',' => {
                i += 1;
                T::Comma
            }
            b'"' | b'\'' => {
                let mut v = String::new();
                i += 1;
                loop {
                    match b.get(i) {
                        None => return Err((start, "unterminated string".into())),
                        Some(&q) if q == c => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') if i + 1 < b.len() => {
                            let n = b[i + 1];
                            v.push(match n {
                                b'n' => '\n',
                                b't' => '\t',
                                _ => n as char,
                            });
                            i += 2;
                        }
                        Some(_) => {
                            let ch = s[i..].chars().next().unwrap_or(' ');
                            v.push(ch);
                            i += ch.len_utf8();
                        }
                    }
                }
                T::Quoted(v)
            }
            b'=' | b'!' | b'<' | b'>' => {
                let two = s.get(i..i + 2).unwrap_or("");
                let op = match two {
                    "==" => "==",
                    "!=" => "!=",
                    "<=" => "<=",
                    ">=" => ">=",
                    _ => match c {
                        b'=' => "=",
                        b'<' => "<",
                        b'>' => ">",
                        _ => return Err((start, "unexpected `!` (use `!=` or `not`)".into())),
                    },
                };
                i += op.len();
                T::Op(op)
            }
            _ => {
                while i < b.len() && !b[i].is_ascii_whitespace() && !b"(),=<>!\"'".contains(&b[i]) {
                    // A field argument (`proc.aname[2]`, `x.y[/a b]`) runs to its `]`.
                    if b[i] == b'[' {
                        match s[i..].find(']') {
                            Some(e) => i += e + 1,
                            None => return Err((i, "unclosed `[`".into())),
                        }
                        continue;
                    }
                    i += 1;
                }
                T::Word(s[start..i].to_string())
            }
        };
        out.push(Tok { tok, pos: start });
    }
    Ok(out)
}

// ------------------------------------------------------------ parser

/// A value in a comparison: a bare word (which may name a list) or a quoted string.
#[derive(Clone, Debug, PartialEq)]
enum Val {
    Bare(String),
    Quoted(String),
}

#[derive(Clone, Debug, PartialEq)]
enum Expr {
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

const CMP_WORDS: &[&str] = &[
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
const TRANSFORMERS: &[&str] = &["tolower", "toupper", "b64", "basename", "len", "val"];

struct Parser {
    toks: Vec<Tok>,
    i: usize,
    end: usize,
}

type PResult<T> = Result<T, (usize, String)>;

fn is_field_name(w: &str) -> bool {
    let name = w.split('[').next().unwrap_or("");
    name.contains('.')
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

fn is_ident(w: &str) -> bool {
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

fn show(t: &T) -> String {
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
fn parse(text: &str) -> PResult<Expr> {
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

// ------------------------------------------------------------ event types

/// Falco syscall / event names vigil observes, and the kind they map to.
fn syscall_kind(name: &str) -> Option<EventType> {
    Some(match name {
        "execve" | "execveat" => EventType::Exec,
        "open" | "openat" | "openat2" | "creat" => EventType::Open,
        "connect" => EventType::Connect,
        "accept" | "accept4" => EventType::Accept,
        "procexit" => EventType::Exit,
        _ => return None,
    })
}

/// The event types a (sub)condition can match: `neg` = every type but `set`.
/// `exact` when the condition is true exactly for those types (a pure
/// `evt.type` test), which is what makes `not` invertible.
#[derive(Clone, Debug, PartialEq)]
struct TSet {
    neg: bool,
    set: BTreeSet<String>,
    exact: bool,
}

impl TSet {
    fn all() -> TSet {
        TSet {
            neg: true,
            set: BTreeSet::new(),
            exact: false,
        }
    }
    fn and(self, o: TSet) -> TSet {
        let exact = self.exact && o.exact;
        match (self.neg, o.neg) {
            (false, false) => TSet {
                neg: false,
                set: self.set.intersection(&o.set).cloned().collect(),
                exact,
            },
            (false, true) => TSet {
                neg: false,
                set: self.set.difference(&o.set).cloned().collect(),
                exact,
            },
            (true, false) => o.and(TSet { exact, ..self }),
            (true, true) => TSet {
                neg: true,
                set: self.set.union(&o.set).cloned().collect(),
                exact,
            },
        }
    }
    fn or(self, o: TSet) -> TSet {
        let exact = self.exact && o.exact;
        match (self.neg, o.neg) {
            (false, false) => TSet {
                neg: false,
                set: self.set.union(&o.set).cloned().collect(),
                exact,
            },
            (false, true) => TSet {
                neg: true,
                set: o.set.difference(&self.set).cloned().collect(),
                exact,
            },
            (true, false) => o.or(TSet { exact, ..self }),
            (true, true) => TSet {
                neg: true,
                set: self.set.intersection(&o.set).cloned().collect(),
                exact,
            },
        }
    }
    fn not(self) -> TSet {
        if self.exact {
            TSet {
                neg: !self.neg,
                ..self
            }
        } else {
            TSet::all()
        }
    }
}

// ------------------------------------------------------------ lowering

/// A lowered (sub)condition: a constant or vigil condition text.
#[derive(Clone, Debug, PartialEq)]
enum Out {
    Const(bool),
    Text(String),
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn join(parts: Vec<Out>, and: bool) -> Out {
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

fn negate(o: Out) -> Out {
    match o {
        Out::Const(b) => Out::Const(!b),
        Out::Text(t) => Out::Text(format!("!({t})")),
    }
}

/// Why a rule cannot run on vigil (yet), collected while lowering.
#[derive(Default, Debug)]
struct Needs {
    fields: BTreeSet<String>,
    other: BTreeSet<String>,
    /// Fields read as empty because vigil has no container metadata.
    empty: BTreeSet<String>,
}

/// How a Falco field reads in vigil.
enum Subject {
    /// A vigil field (or expression) of a type.
    Expr(String, Kind),
    /// Per event kind: (gate, expression) alternatives, exactly one gate holds.
    Gated(Vec<(String, String)>, Kind),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Str,
    Int,
    Bool,
}

/// Falco field names vigil does not produce (yet): rules reading them are
/// inactive. Names outside this table and the mapped ones are unknown to
/// Falco too, so an error.
const MISSING: &[&str] = &[
    "proc.apid",
    "proc.aexe",
    "proc.aexepath",
    "proc.vpid",
    "proc.sname",
    "proc.sid",
    "proc.vpgid",
    "proc.vpgid.name",
    "proc.vpgid.exe",
    "proc.is_vpgid_leader",
    "proc.pid.ts",
    "proc.ppid.duration",
    "proc.env",
    "proc.is_exe_writable",
    "proc.exe_ino",
    "proc.exe_ino.mtime",
    "proc.exe_ino.ctime",
    "proc.exe_ino.ctime_duration_proc_start",
    "proc.is_container_healthcheck",
    "proc.is_container_liveness_probe",
    "proc.is_container_readiness_probe",
    "proc.stdin.type",
    "proc.stdout.type",
    "proc.stdin.name",
    "proc.stdout.name",
    "proc.fdopencount",
    "proc.nthreads",
    "thread.cap_inheritable",
    "thread.tid",
    "thread.vtid",
    "user.loginname",
    "user.homedir",
    "user.shell",
    "group.name",
    "evt.hostname",
    "evt.args",
    "evt.arg",
    "evt.rawarg",
    "evt.buffer",
    "evt.buflen",
    "evt.is_open_exec",
    "evt.is_open_create",
    "evt.category",
    "evt.latency",
    "evt.count",
    "fd.name_changed",
    "fd.connected",
    "fd.sip.name",
    "fd.cip.name",
    "fd.rip.name",
    "fd.lip.name",
    "fd.types",
    "fd.ino",
    "fd.dev",
    "fd.uid",
    "fs.path.name",
    "fs.path.nameraw",
    "fs.path.source",
    "fs.path.target",
    "container.privileged",
    "container.mounts",
    "container.mount",
    "container.mount.dest",
    "container.mount.source",
    "container.start_ts",
    "container.duration",
    "container.healthcheck",
    "container.liveness_probe",
    "container.readiness_probe",
];

/// Container and orchestrator metadata vigil does not have: read as empty
/// (what they are on the host), and said so in the rule's status.
fn is_metadata(name: &str) -> bool {
    (name.starts_with("container.") && name != "container.id")
        || name.starts_with("k8s.")
        || name.starts_with("k8smeta.")
}

/// `evt.arg.NAME` vigil records (open's arguments).
fn evt_arg(name: &str) -> Option<Subject> {
    Some(match name {
        "flags" => Subject::Expr("file.flags".into(), Kind::Str),
        "name" | "path" | "filename" => Subject::Expr("file.path_raw".into(), Kind::Str),
        "fd" | "res" => Subject::Expr("evt.ret".into(), Kind::Int),
        _ => return None,
    })
}

fn net_side(connect: &str, accept: &str, kind: Kind) -> Subject {
    Subject::Gated(
        vec![
            ("evt.type == \"connect\"".into(), connect.into()),
            ("evt.type != \"connect\"".into(), accept.into()),
        ],
        kind,
    )
}

/// Map a Falco field (without its argument) to how vigil reads it. `None`:
/// handled by [`Lowerer::special`]; `Err(true)`: known to Falco, missing in
/// vigil; `Err(false)`: unknown.
fn subject(name: &str, arg: Option<&str>) -> Result<Option<Subject>, bool> {
    use Kind::*;
    let e = |f: &str, k: Kind| Ok(Some(Subject::Expr(f.into(), k)));
    match (name, arg) {
        ("proc.name", None) => e("proc.name", Str),
        ("proc.pname", None) => e("proc.pname", Str),
        ("proc.cmdline", None) => e("proc.cmdline", Str),
        ("proc.pcmdline", None) => e("proc.pcmdline", Str),
        ("proc.exepath", None) => e("proc.exe", Str),
        ("proc.pexepath" | "proc.pexe", None) => e("proc.pexe", Str),
        ("proc.cwd", None) => e("proc.cwd", Str),
        ("proc.pid", None) => e("proc.pid", Int),
        ("proc.ppid", None) => e("proc.ppid", Int),
        ("proc.duration", None) => e("proc.duration", Int),
        ("thread.tid", None) => e("proc.tid", Int),
        ("user.uid", None) => e("proc.uid", Int),
        ("user.name", None) => e("user.name", Str),
        ("user.loginuid", None) => e("proc.loginuid", Int),
        ("group.gid", None) => e("proc.gid", Int),
        ("container.id", None) => e("container.id", Str),
        ("fd.name" | "fs.path.name", None) => e("file.path", Str),
        ("fd.nameraw", None) => e("file.path_raw", Str),
        ("evt.rawres", None) => e("evt.ret", Int),
        // capability sets: `contains`/`in` test membership (see LIST_FIELDS)
        ("thread.cap_effective", None) => e("proc.cap_effective", Str),
        ("thread.cap_permitted", None) => e("proc.cap_permitted", Str),
        ("proc.is_exe_from_memfd", None) => e("proc.exe_from_memfd", Bool),
        ("proc.is_exe_upper_layer", None) => e("proc.exe_upper_layer", Bool),
        // the allow-listed variables only (`proc_env`), as NAME=value text
        ("proc.env", None) => e("proc.env", Str),
        ("evt.is_open_write", None) => e("file.write", Bool),
        ("fd.l4proto", None) => e("net.proto", Str),
        ("fd.lip", None) => e("net.saddr", Str),
        ("fd.lport", None) => e("net.sport", Int),
        ("fd.rip", None) => e("net.daddr", Str),
        ("fd.rport", None) => e("net.dport", Int),
        ("fd.sip", None) => Ok(Some(net_side("net.daddr", "net.saddr", Str))),
        ("fd.sport", None) => Ok(Some(net_side("net.dport", "net.sport", Int))),
        ("fd.cip", None) => Ok(Some(net_side("net.saddr", "net.daddr", Str))),
        ("fd.cport", None) => Ok(Some(net_side("net.sport", "net.dport", Int))),
        ("evt.arg", Some(a)) => evt_arg(a).map(Some).ok_or(true),
        (n, None) if n.starts_with("evt.arg.") => {
            evt_arg(&n["evt.arg.".len()..]).map(Some).ok_or(true)
        }
        ("proc.aname", Some(a)) => match a.trim().parse::<usize>() {
            Ok(0) => e("proc.name", Str),
            Ok(1) => e("proc.pname", Str),
            // Past the known ancestry it reads "" (natively).
            Ok(n) => e(&format!("proc.ancestors[{}]", n - 1), Str),
            Err(_) => Err(false),
        },
        (
            "evt.type" | "evt.dir" | "evt.num" | "evt.res" | "evt.is_open_read" | "fd.typechar"
            | "fd.type" | "fd.num" | "fd.directory" | "fd.filename" | "proc.exe" | "proc.args"
            | "proc.aname" | "proc.tty" | "fd.net" | "fd.snet" | "fd.cnet" | "fd.lnet" | "fd.rnet"
            | "fd.ip" | "fd.port" | "fd.sockfamily",
            _,
        ) => Ok(None),
        (n, _) if MISSING.contains(&n) || is_metadata(n) => Err(true),
        (n, Some(_)) if MISSING.contains(&format!("{n}[]").as_str()) => Err(true),
        _ => Err(false),
    }
}

/// vigil list fields that Falco reads as space-separated text: `contains`,
/// `in` and `intersects` test membership of the names.
const LIST_FIELDS: &[&str] = &["file.flags", "proc.cap_effective", "proc.cap_permitted"];

/// A Falco value as an item of list field `x`: capability names gain the
/// `CAP_` Falco's text match lets rules leave out (`contains SYS_ADMIN`).
fn list_item(x: &str, v: &str) -> String {
    if x.starts_with("proc.cap_") && !v.starts_with("CAP_") {
        format!("CAP_{v}")
    } else {
        v.to_string()
    }
}

/// Errno names for `evt.res`.
fn errno(name: &str) -> Option<i64> {
    Some(match name {
        "EPERM" => 1,
        "ENOENT" => 2,
        "ESRCH" => 3,
        "EINTR" => 4,
        "EIO" => 5,
        "ENXIO" => 6,
        "E2BIG" => 7,
        "ENOEXEC" => 8,
        "EBADF" => 9,
        "EAGAIN" => 11,
        "ENOMEM" => 12,
        "EACCES" | "EACCESS" => 13,
        "EFAULT" => 14,
        "EBUSY" => 16,
        "EEXIST" => 17,
        "ENOTDIR" => 20,
        "EISDIR" => 21,
        "EINVAL" => 22,
        "ENFILE" => 23,
        "EMFILE" => 24,
        "ETXTBSY" => 26,
        "ENOSPC" => 28,
        "EROFS" => 30,
        "ENAMETOOLONG" => 36,
        "ELOOP" => 40,
        "ECONNREFUSED" => 111,
        "ETIMEDOUT" => 110,
        "EINPROGRESS" => 115,
        _ => return None,
    })
}

fn re_esc(s: &str) -> String {
    regex_syntax::escape(s)
}

/// Falco's glob (`*` crosses `/`, `?` one char, `[...]` a class) as an anchored regex.
fn glob_regex(g: &str, icase: bool) -> String {
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

struct Lowerer<'a> {
    lists: &'a HashMap<String, Vec<String>>,
    macros: &'a HashMap<String, MacroEntry>,
    needs: Needs,
    /// Macros being expanded (cycle detection).
    stack: Vec<String>,
}

/// A lowering failure: a real error, with the text to point at.
struct LowerError {
    /// The macro whose text holds the error (None: the rule's own text).
    in_macro: Option<String>,
    pos: usize,
    msg: String,
}

impl Lowerer<'_> {
    fn err<T>(&self, pos: usize, msg: String) -> Result<T, LowerError> {
        Err(LowerError {
            in_macro: self.stack.last().cloned(),
            pos,
            msg,
        })
    }

    fn lower(&mut self, e: &Expr) -> Result<(Out, TSet), LowerError> {
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
            Expr::Unsupported(what) => {
                self.needs.other.insert(what.clone());
                (Out::Const(false), TSet::all())
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
            Expr::Cmp {
                field,
                arg,
                op,
                vals,
                list,
                pos,
            } => self.cmp(field, arg.as_deref(), op, vals, *list, *pos)?,
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
            }
        }
        out
    }

    fn cmp(
        &mut self,
        field: &str,
        arg: Option<&str>,
        op: &str,
        vals: &[Val],
        list: bool,
        pos: usize,
    ) -> Result<(Out, TSet), LowerError> {
        let full = match arg {
            Some(a) => format!("{field}[{a}]"),
            None => field.to_string(),
        };
        let vs = self.values(vals, list);
        let setop = matches!(op, "in" | "intersects" | "pmatch");
        if !setop && op != "exists" && vs.len() != 1 {
            return self.err(pos, format!("`{full} {op}` takes one value, not a list"));
        }
        if field == "evt.type" {
            return self.evt_type(op, &vs, pos);
        }
        let subj = match subject(field, arg) {
            Ok(Some(s)) => s,
            Ok(None) => return self.special(field, arg, op, &vs).map(|o| (o, TSet::all())),
            Err(true) if is_metadata(field) => {
                self.needs.empty.insert(full.clone());
                Subject::Expr("\"\"".into(), Kind::Str)
            }
            Err(true) => {
                self.needs.fields.insert(full);
                return Ok((Out::Const(false), TSet::all()));
            }
            Err(false) => {
                return self.err(
                    pos,
                    format!("unknown field `{full}` (not a Falco field vigil knows)"),
                )
            }
        };
        let o = match subj {
            Subject::Expr(x, k) => self.compare(&x, k, op, &vs, &full, pos)?,
            Subject::Gated(alts, k) => {
                let mut outs = Vec::new();
                for (gate, x) in alts {
                    let c = self.compare(&x, k, op, &vs, &full, pos)?;
                    outs.push(join(vec![Out::Text(gate), c], true));
                }
                join(outs, false)
            }
        };
        Ok((o, TSet::all()))
    }

    fn evt_type(&mut self, op: &str, vs: &[String], pos: usize) -> Result<(Out, TSet), LowerError> {
        let names: BTreeSet<String> = vs.iter().cloned().collect();
        let kinds: BTreeSet<&str> = names
            .iter()
            .filter_map(|n| syscall_kind(n))
            .map(EventType::as_str)
            .collect();
        let test = match kinds.len() {
            0 => Out::Const(false),
            1 => Out::Text(format!(
                "evt.type == {}",
                quote(kinds.iter().next().copied().unwrap_or(""))
            )),
            _ => Out::Text(format!(
                "evt.type in [{}]",
                kinds
                    .iter()
                    .map(|k| quote(k))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        };
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

    /// Falco fields that are not a plain vigil field.
    fn special(
        &mut self,
        field: &str,
        arg: Option<&str>,
        op: &str,
        vs: &[String],
    ) -> Result<Out, LowerError> {
        let v0 = vs.first().map(String::as_str).unwrap_or("");
        let eqop = matches!(op, "=" | "==" | "!=" | "in");
        let neg = op == "!=";
        let flip = |o: Out| if neg { negate(o) } else { o };
        let any = |f: &dyn Fn(&str) -> Out| join(vs.iter().map(|v| f(v)).collect(), false);
        Ok(match field {
            "evt.dir" if eqop => flip(Out::Const(v0 == "<")),
            "evt.num" => {
                // vigil numbers no events; Falco's start at 1, so `never_true`
                // (`evt.num=0`) stays false and `evt.num>=0` true.
                let n: i64 = v0.parse().unwrap_or(0);
                Out::Const(match op {
                    "=" | "==" => n == 1,
                    "!=" => n != 1,
                    "<" => 1 < n,
                    "<=" => 1 <= n,
                    ">" => 1 > n,
                    ">=" => 1 >= n,
                    "exists" => true,
                    _ => return self.unsupported_op(field, op),
                })
            }
            "evt.res" => {
                let one = |v: &str| -> Out {
                    match v {
                        "SUCCESS" => Out::Text("evt.ret >= 0".into()),
                        v => match errno(v) {
                            Some(n) => Out::Text(format!("evt.ret == {}", -n)),
                            None => Out::Const(false),
                        },
                    }
                };
                match op {
                    "=" | "==" | "in" | "!=" => flip(any(&one)),
                    "startswith" if v0 == "E" => Out::Text("evt.ret < 0".into()),
                    "startswith" if "SUCCESS".starts_with(v0) => Out::Text("evt.ret >= 0".into()),
                    "exists" => Out::Const(true),
                    _ => return self.unsupported_op(field, op),
                }
            }
            "evt.is_open_read" if eqop => flip(if v0 == "true" {
                Out::Text("(\"O_RDONLY\" in file.flags || \"O_RDWR\" in file.flags)".into())
            } else {
                Out::Text("\"O_WRONLY\" in file.flags".into())
            }),
            "fd.typechar" | "fd.type" | "fd.sockfamily" if eqop => {
                let one = |v: &str| -> Out {
                    match v {
                        "f" | "file" => Out::Text(
                            "(evt.type == \"open\" && !(\"O_DIRECTORY\" in file.flags))".into(),
                        ),
                        "d" | "directory" => Out::Text(
                            "(evt.type == \"open\" && \"O_DIRECTORY\" in file.flags)".into(),
                        ),
                        "4" | "ipv4" => Out::Text("net.family == \"inet\"".into()),
                        "6" | "ipv6" => Out::Text("net.family == \"inet6\"".into()),
                        "ip" => Out::Text("net.family in [\"inet\", \"inet6\"]".into()),
                        "u" | "unix" => Out::Text("net.family == \"unix\"".into()),
                        _ => Out::Const(false),
                    }
                };
                flip(any(&one))
            }
            "fd.num" => match (op, v0.parse::<i64>()) {
                ("=" | "==", Ok(-1)) => Out::Text("evt.ret < 0".into()),
                ("!=", Ok(-1)) | (">=", Ok(0)) | (">", Ok(-1)) => Out::Text("evt.ret >= 0".into()),
                ("<", Ok(0)) => Out::Text("evt.ret < 0".into()),
                ("exists", _) => Out::Const(true),
                _ => return self.unsupported_op(field, op),
            },
            "fd.directory" => {
                let re = |body: String| Out::Text(format!("regex(file.path, {})", quote(&body)));
                let alts = |vs: &[String]| {
                    vs.iter()
                        .map(|v| re_esc(v.trim_end_matches('/')))
                        .collect::<Vec<_>>()
                        .join("|")
                };
                match op {
                    // The prefixes are implied by the regex; they give the
                    // kernel filter path prefixes to work with.
                    "=" | "==" | "in" | "!=" => flip(join(
                        vec![
                            join(
                                vs.iter()
                                    .map(|v| {
                                        let d = format!("{}/", v.trim_end_matches('/'));
                                        Out::Text(format!("file.path.starts_with({})", quote(&d)))
                                    })
                                    .collect(),
                                false,
                            ),
                            re(format!("^(?:{})/[^/]+$", alts(vs))),
                        ],
                        true,
                    )),
                    "pmatch" => re(format!("^(?:{})/", alts(vs))),
                    "startswith" => re(format!("^{}.*/[^/]+$", re_esc(v0))),
                    "endswith" => re(format!("{}/[^/]+$", re_esc(v0))),
                    "contains" => re(format!("{}.*/[^/]+$", re_esc(v0))),
                    "exists" => Out::Text("file.path != \"\"".into()),
                    _ => return self.unsupported_op(field, op),
                }
            }
            "fd.filename" => {
                let re = |body: String| Out::Text(format!("regex(file.path, {})", quote(&body)));
                match op {
                    "=" | "==" | "in" | "!=" => flip(any(&|v: &str| {
                        Out::Text(format!("file.path.ends_with({})", quote(&format!("/{v}"))))
                    })),
                    "startswith" => re(format!("/{}[^/]*$", re_esc(v0))),
                    "endswith" => re(format!("{}$", re_esc(v0))),
                    "contains" => re(format!("/[^/]*{}[^/]*$", re_esc(v0))),
                    "exists" => Out::Text("file.path != \"\"".into()),
                    _ => return self.unsupported_op(field, op),
                }
            }
            // argv[0]: the command line's first word.
            "proc.exe" => {
                let re = |body: String| Out::Text(format!("regex(proc.cmdline, {})", quote(&body)));
                let alts = vs.iter().map(|v| re_esc(v)).collect::<Vec<_>>().join("|");
                match op {
                    "=" | "==" | "in" | "!=" => flip(re(format!("^(?:{alts})(?: |$)"))),
                    "startswith" => Out::Text(format!("proc.cmdline.starts_with({})", quote(v0))),
                    "endswith" => re(format!("^[^ ]*{}(?: |$)", re_esc(v0))),
                    "contains" => re(format!("^[^ ]*{}", re_esc(v0))),
                    "exists" => Out::Const(true),
                    _ => return self.unsupported_op(field, op),
                }
            }
            // argv[1..] as one string: the command line after its first word.
            "proc.args" => {
                let re = |body: String| Out::Text(format!("regex(proc.cmdline, {})", quote(&body)));
                match op {
                    "=" | "==" | "in" | "!=" => {
                        let o = any(&|v: &str| {
                            if v.is_empty() {
                                Out::Text("proc.args == []".into())
                            } else {
                                re(format!("^[^ ]* {}$", re_esc(v)))
                            }
                        });
                        flip(o)
                    }
                    "intersects" => any(&|v: &str| Out::Text(format!("{} in proc.args", quote(v)))),
                    "contains" => re(format!("^[^ ]* .*{}", re_esc(v0))),
                    "icontains" => re(format!("(?i)^[^ ]* .*{}", re_esc(v0))),
                    "startswith" => re(format!("^[^ ]* {}", re_esc(v0))),
                    "endswith" => re(format!("^[^ ]* .*{}$", re_esc(v0))),
                    "exists" => Out::Const(true),
                    _ => return self.unsupported_op(field, op),
                }
            }
            // Any ancestor.
            "proc.aname" if arg.is_none() => match op {
                "=" | "==" | "in" => {
                    any(&|v: &str| Out::Text(format!("{} in proc.ancestors", quote(v))))
                }
                "!=" => negate(any(&|v: &str| {
                    Out::Text(format!("{} in proc.ancestors", quote(v)))
                })),
                "exists" => Out::Text("proc.ancestors != []".into()),
                _ => return self.unsupported_op(field, op),
            },
            "proc.tty" => {
                let n: Option<i64> = v0.parse().ok();
                match (op, n) {
                    ("!=", Some(0)) | (">", Some(0)) => Out::Text("proc.tty".into()),
                    ("=" | "==", Some(0)) => Out::Text("!proc.tty".into()),
                    ("exists", _) => Out::Const(true),
                    _ => return self.unsupported_op(field, op),
                }
            }
            "fd.net" | "fd.snet" | "fd.cnet" | "fd.lnet" | "fd.rnet" | "fd.ip" | "fd.port"
                if matches!(op, "=" | "==" | "in" | "!=") =>
            {
                let (sides, port) = match field {
                    "fd.ip" => (vec!["net.saddr", "net.daddr"], false),
                    "fd.port" => (vec!["net.sport", "net.dport"], true),
                    "fd.lnet" => (vec!["net.saddr"], false),
                    "fd.rnet" => (vec!["net.daddr"], false),
                    _ => (vec!["net.saddr", "net.daddr"], false),
                };
                let gated = |connect: &str, accept: &str, v: &str| {
                    Out::Text(format!(
                        "((evt.type == \"connect\" && cidr({connect}, {q})) || (evt.type != \"connect\" && cidr({accept}, {q})))",
                        q = quote(v)
                    ))
                };
                let one = |v: &str| -> Out {
                    if port {
                        return match v.parse::<i64>() {
                            Ok(p) => join(
                                sides
                                    .iter()
                                    .map(|s| Out::Text(format!("{s} == {p}")))
                                    .collect(),
                                false,
                            ),
                            Err(_) => Out::Const(false),
                        };
                    }
                    match field {
                        "fd.snet" => gated("net.daddr", "net.saddr", v),
                        "fd.cnet" => gated("net.saddr", "net.daddr", v),
                        _ => join(
                            sides
                                .iter()
                                .map(|s| Out::Text(format!("cidr({s}, {})", quote(v))))
                                .collect(),
                            false,
                        ),
                    }
                };
                flip(any(&one))
            }
            _ => return self.unsupported_op(field, op),
        })
    }

    fn unsupported_op(&mut self, field: &str, op: &str) -> Result<Out, LowerError> {
        self.needs
            .other
            .insert(format!("`{field} {op}` (not supported on this field)"));
        Ok(Out::Const(false))
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
                self.needs
                    .other
                    .insert(format!("`{full} {op}` (byte comparisons)"));
                Out::Const(false)
            }
            other => return self.err(pos, format!("unknown operator `{other}`")),
        })
    }
}

// ------------------------------------------------------------ items

#[derive(Debug)]
pub(crate) struct MacroEntry {
    loc: Location,
    text: String,
    ast: Result<Expr, (usize, String)>,
}

#[derive(Clone, Debug)]
struct FExc {
    name: String,
    fields: Vec<String>,
    comps: Vec<String>,
    values: Vec<Value>,
    loc: Location,
}

#[derive(Clone, Debug)]
struct FRule {
    name: String,
    loc: Location,
    cond: String,
    cond_loc: Location,
    output: String,
    output_loc: Location,
    priority: Option<Priority>,
    enabled: bool,
    tags: Vec<String>,
    desc: String,
    exceptions: Vec<FExc>,
    /// A reason the rule cannot run whatever its condition (plugin source).
    skip: Option<String>,
}

/// The Falco items of a rule set, in one namespace (see the module doc).
#[derive(Default, Debug)]
pub(crate) struct FalcoDefs {
    lists: HashMap<String, Vec<String>>,
    macros: HashMap<String, MacroEntry>,
    rules: Vec<FRule>,
    rule_idx: HashMap<String, usize>,
}

/// A scalar as text (the vigil loader's reading: strings, numbers, bools).
use crate::rules::scalar_string as sval;

/// A sequence of scalars (null: empty). Unlike vigil's `string_list`, a lone
/// scalar is not a one-item list: Falco's loader refuses it.
fn slist(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Sequence(s) => s.iter().map(sval).collect(),
        Value::Null => Some(Vec::new()),
        _ => None,
    }
}

/// What `override:` says for each key (`append` / `replace`).
fn overrides(m: &Mapping) -> Result<HashMap<String, String>, String> {
    match m.get("override") {
        None => Ok(HashMap::new()),
        Some(Value::Mapping(o)) => o
            .iter()
            .map(|(k, v)| match (sval(k), sval(v)) {
                (Some(k), Some(v)) if v == "append" || v == "replace" => Ok((k, v)),
                (k, _) => Err(format!(
                    "`override: {{{}: ...}}` must be `append` or `replace`",
                    k.unwrap_or_default()
                )),
            })
            .collect(),
        Some(_) => Err("`override` must be a mapping of key: append|replace".into()),
    }
}

impl FalcoDefs {
    /// Whether a Falco file defined this rule.
    pub(crate) fn has_rule(&self, name: &str) -> bool {
        self.rule_idx.contains_key(name)
    }

    /// (macros, lists) defined by Falco files.
    pub(crate) fn counts(&self) -> (usize, usize) {
        (self.macros.len(), self.lists.len())
    }

    /// One item of a Falco file.
    pub(crate) fn add_item(
        &mut self,
        m: &Mapping,
        item_loc: &Location,
        kloc: &dyn Fn(&str) -> Location,
        lines: &SrcLines,
        diag: &mut Diag,
    ) {
        if m.contains_key("required_engine_version") && !m.contains_key("rule") {
            return; // accepted: vigil runs every engine version's syntax it knows
        }
        if let Some(p) = m.get("required_plugin_versions") {
            let names: Vec<String> = p
                .as_sequence()
                .map(|s| {
                    s.iter()
                        .filter_map(|x| x.get("name").and_then(sval))
                        .collect()
                })
                .unwrap_or_default();
            for n in names.iter().filter(|n| n.as_str() != "container") {
                diag.warn(
                    item_loc,
                    None,
                    format!("plugin `{n}`: vigil has no plugins; rules that need its fields or source are inactive"),
                );
            }
            return;
        }
        let kind = ["rule", "macro", "list"]
            .into_iter()
            .find(|k| m.contains_key(*k));
        let Some(kind) = kind else {
            let first = m.keys().next().and_then(sval).unwrap_or_default();
            diag.err(
                item_loc,
                None,
                format!("item has none of `rule`, `macro`, `list` (first key `{first}`)"),
            );
            return;
        };
        let Some(name) = m.get(kind).and_then(sval).filter(|n| !n.trim().is_empty()) else {
            diag.err(&kloc(kind), None, format!("`{kind}` needs a name"));
            return;
        };
        let label = format!("{kind} `{name}`");
        let l = Some(label.as_str());
        let allowed = match kind {
            "rule" => RULE_KEYS,
            "macro" => MACRO_KEYS,
            _ => LIST_KEYS,
        };
        for k in m.keys() {
            let ks = sval(k).unwrap_or_default();
            if !allowed.contains(&ks.as_str()) {
                diag.err(
                    &kloc(&ks),
                    l,
                    format!(
                        "unknown key `{ks}` for a Falco {kind} (expected one of: {})",
                        allowed.join(", ")
                    ),
                );
                return;
            }
        }
        let ov = match overrides(m) {
            Ok(o) => o,
            Err(e) => {
                diag.err(&kloc("override"), l, e);
                return;
            }
        };
        let append_all = matches!(m.get("append"), Some(Value::Bool(true)));
        let mode = |key: &str| -> Option<String> {
            if append_all {
                Some("append".into())
            } else {
                ov.get(key).cloned()
            }
        };
        match kind {
            "list" => {
                let Some(items) = m.get("items").and_then(slist) else {
                    diag.err(&kloc("items"), l, "`items` must be a list of strings");
                    return;
                };
                let mut out = Vec::new();
                for it in items {
                    // Falco splices items into conditions as text, so a
                    // quoted item (`'"(systemd)"'`) is the string inside.
                    let it = match it.as_bytes() {
                        [q @ (b'"' | b'\''), .., e] if q == e && it.len() >= 2 => {
                            it[1..it.len() - 1].to_string()
                        }
                        _ => it,
                    };
                    match self.lists.get(&it) {
                        Some(other) if it != name => out.extend(other.iter().cloned()),
                        _ => out.push(it),
                    }
                }
                match (mode("items").as_deref(), self.lists.get_mut(&name)) {
                    (Some("append"), Some(old)) => old.extend(out),
                    (Some("append"), None) => {
                        diag.err(item_loc, l, "`append` to a list not defined earlier")
                    }
                    _ => {
                        self.lists.insert(name, out);
                    }
                }
            }
            "macro" => {
                let Some(text) = m.get("condition").and_then(sval) else {
                    diag.err(item_loc, l, "macro needs a `condition`");
                    return;
                };
                let cloc = kloc("condition");
                match (mode("condition").as_deref(), self.macros.get_mut(&name)) {
                    (Some("append"), Some(old)) => {
                        old.text = format!("{} {text}", old.text);
                        old.ast = parse(&old.text);
                        if let Err((_, msg)) = &old.ast {
                            diag.err(&cloc, l, format!("after append: {msg}"));
                        }
                    }
                    (Some("append"), None) => {
                        diag.err(item_loc, l, "`append` to a macro not defined earlier")
                    }
                    _ => {
                        let ast = parse(&text);
                        if let Err((pos, msg)) = &ast {
                            diag.err(&locate(Some(lines), &cloc, &text, *pos), l, msg.clone());
                        }
                        self.macros.insert(
                            name,
                            MacroEntry {
                                loc: cloc,
                                text,
                                ast,
                            },
                        );
                    }
                }
            }
            _ => self.add_rule(m, name, &label, item_loc, kloc, &mode, diag),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn add_rule(
        &mut self,
        m: &Mapping,
        name: String,
        label: &str,
        item_loc: &Location,
        kloc: &dyn Fn(&str) -> Location,
        mode: &dyn Fn(&str) -> Option<String>,
        diag: &mut Diag,
    ) {
        let l = Some(label);
        let str_key = |k: &str, diag: &mut Diag| -> Option<String> {
            let v = m.get(k)?;
            let s = sval(v);
            if s.is_none() {
                diag.err(&kloc(k), l, format!("`{k}` must be a string"));
            }
            s
        };
        let cond = str_key("condition", diag);
        let output = str_key("output", diag);
        let desc = str_key("desc", diag);
        let priority = match str_key("priority", diag) {
            None => None,
            Some(p) => match p.parse::<Priority>() {
                Ok(p) => Some(p),
                Err(e) => {
                    diag.err(&kloc("priority"), l, e.to_string());
                    return;
                }
            },
        };
        let enabled = match m.get("enabled") {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                diag.err(&kloc("enabled"), l, "`enabled` must be true or false");
                return;
            }
        };
        let tags = match m.get("tags").map(slist) {
            None => None,
            Some(Some(t)) => Some(t),
            Some(None) => {
                diag.err(&kloc("tags"), l, "`tags` must be a list of strings");
                return;
            }
        };
        let exceptions = match m.get("exceptions") {
            None => None,
            Some(v) => match parse_exceptions(v, &kloc("exceptions"), label, diag) {
                Some(e) => Some(e),
                None => return,
            },
        };
        let source = m.get("source").and_then(sval);
        if let Some(s) = source.as_deref().filter(|s| *s != "syscall") {
            diag.warn(
                item_loc,
                l,
                format!("source `{s}`: vigil sees syscall events only; the rule is inactive"),
            );
        }
        let skip = source
            .filter(|s| s != "syscall")
            .map(|s| format!("source `{s}` (vigil sees syscall events only)"));
        if let Some(&i) = self.rule_idx.get(&name) {
            let r = &mut self.rules[i];
            if let Some(c) = cond {
                match mode("condition").as_deref() {
                    Some("append") => r.cond = format!("{} {c}", r.cond),
                    Some(_) => r.cond = c,
                    None => {
                        diag.err(
                            item_loc,
                            l,
                            format!("duplicate rule (first defined at {}); use `append: true` or `override:`", r.loc),
                        );
                        return;
                    }
                }
                r.cond_loc = kloc("condition");
            }
            if let Some(o) = output {
                if mode("output").as_deref() == Some("append") {
                    r.output = format!("{} {o}", r.output);
                } else {
                    r.output = o;
                }
                r.output_loc = kloc("output");
            }
            if let Some(d) = desc {
                r.desc = d;
            }
            if let Some(p) = priority {
                r.priority = Some(p);
            }
            if let Some(e) = enabled {
                r.enabled = e;
            }
            if let Some(t) = tags {
                if mode("tags").as_deref() == Some("append") {
                    r.tags.extend(t);
                } else {
                    r.tags = t;
                }
            }
            if let Some(es) = exceptions {
                if mode("exceptions").as_deref() == Some("replace") {
                    r.exceptions = es;
                } else {
                    for e in es {
                        match r.exceptions.iter_mut().find(|x| x.name == e.name) {
                            Some(x) => x.values.extend(e.values),
                            None => r.exceptions.push(e),
                        }
                    }
                }
            }
            if skip.is_some() {
                r.skip = skip;
            }
            return;
        }
        if mode("condition").as_deref() == Some("append") || (cond.is_none() && m.len() > 1) {
            diag.err(item_loc, l, "append/override of a rule not defined earlier");
            return;
        }
        let Some(cond) = cond else {
            diag.err(item_loc, l, "rule needs a `condition`");
            return;
        };
        self.rule_idx.insert(name.clone(), self.rules.len());
        self.rules.push(FRule {
            name,
            loc: item_loc.clone(),
            cond,
            cond_loc: kloc("condition"),
            output: output.unwrap_or_default(),
            output_loc: kloc("output"),
            priority,
            enabled: enabled.unwrap_or(true),
            tags: tags.unwrap_or_default(),
            desc: desc.unwrap_or_default(),
            exceptions: exceptions.unwrap_or_default(),
            skip,
        });
    }

    /// Turn every Falco rule into a vigil rule definition (inactive ones
    /// disabled with their reason). Errors go to `diag`.
    pub(crate) fn finish(&self, files: &[SrcLines], diag: &mut Diag) -> Vec<RuleDef> {
        let file_of = |loc: &Location| files.iter().find(|f| f.name == loc.file);
        let mut out = Vec::new();
        for r in &self.rules {
            let label = format!("rule `{}`", r.name);
            let l = Some(label.as_str());
            let mut lw = Lowerer {
                lists: &self.lists,
                macros: &self.macros,
                needs: Needs::default(),
                stack: Vec::new(),
            };
            let report = |e: LowerError, base: &Location, text: &str, diag: &mut Diag| {
                if e.pos == usize::MAX {
                    return; // reported at its macro
                }
                match e.in_macro.as_ref().and_then(|m| self.macros.get(m)) {
                    Some(m) => diag.err(
                        &locate(file_of(&m.loc), &m.loc, &m.text, e.pos),
                        l,
                        format!(
                            "in macro `{}`: {}",
                            e.in_macro.as_deref().unwrap_or(""),
                            e.msg
                        ),
                    ),
                    None => diag.err(&locate(file_of(base), base, text, e.pos), l, e.msg),
                }
            };
            let ast = match parse(&r.cond) {
                Ok(a) => a,
                Err((pos, msg)) => {
                    diag.err(
                        &locate(file_of(&r.cond_loc), &r.cond_loc, &r.cond, pos),
                        l,
                        msg,
                    );
                    continue;
                }
            };
            let (cond, types) = match lw.lower(&ast) {
                Ok(x) => x,
                Err(e) => {
                    report(e, &r.cond_loc, &r.cond, diag);
                    continue;
                }
            };
            let mut exceptions = Vec::new();
            let mut bad = false;
            for e in &r.exceptions {
                let ast = match exception_expr(e, &self.lists) {
                    Ok(a) => a,
                    Err(msg) => {
                        diag.err(&e.loc, l, format!("exception `{}`: {msg}", e.name));
                        bad = true;
                        continue;
                    }
                };
                match lw.lower(&ast) {
                    Ok((Out::Const(false), _)) => {}
                    Ok((o, _)) => exceptions.push(ExcDef {
                        name: e.name.clone(),
                        cond: Frag {
                            text: match o {
                                Out::Text(t) => t,
                                Out::Const(b) => b.to_string(),
                            },
                            loc: e.loc.clone(),
                        },
                    }),
                    Err(err) => {
                        diag.err(&e.loc, l, format!("exception `{}`: {}", e.name, err.msg));
                        bad = true;
                    }
                }
            }
            if bad {
                continue;
            }
            // Event kinds, as Falco infers them from `evt.type`.
            let (kinds, missing_sys): (Vec<EventType>, Vec<String>) = if types.neg {
                (EventType::ALL.to_vec(), Vec::new())
            } else {
                let mut k: Vec<EventType> =
                    types.set.iter().filter_map(|n| syscall_kind(n)).collect();
                k.sort();
                k.dedup();
                let miss = types
                    .set
                    .iter()
                    .filter(|n| syscall_kind(n).is_none())
                    .cloned()
                    .collect();
                (k, miss)
            };
            let needs = lw.needs;
            let mut reasons = Vec::new();
            if let Some(s) = &r.skip {
                reasons.push(s.clone());
            }
            if kinds.is_empty() {
                reasons.push(if missing_sys.is_empty() {
                    "its condition matches no event type".to_string()
                } else {
                    format!(
                        "needs syscall(s) {} that vigil does not observe",
                        missing_sys.join(", ")
                    )
                });
            }
            if !needs.fields.is_empty() {
                reasons.push(format!(
                    "needs field(s) {} that vigil does not have",
                    needs.fields.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
            if !needs.other.is_empty() {
                reasons.push(format!(
                    "uses {}",
                    needs.other.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
            if reasons.is_empty() && cond == Out::Const(false) {
                reasons.push("its condition is always false on vigil's events".into());
            }
            let mut notes = Vec::new();
            if !missing_sys.is_empty() && !kinds.is_empty() {
                notes.push(format!(
                    "syscall(s) {} not observed",
                    missing_sys.join(", ")
                ));
            }
            if !needs.empty.is_empty() {
                notes.push(format!(
                    "{} read as empty (no container metadata)",
                    needs.empty.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
            let inactive = (!reasons.is_empty()).then(|| reasons.join("; "));
            let text = match (&inactive, cond) {
                (Some(_), _) => "false".to_string(),
                (None, Out::Text(t)) => t,
                (None, Out::Const(b)) => b.to_string(),
            };
            out.push(RuleDef {
                name: r.name.clone(),
                loc: r.loc.clone(),
                desc: r.desc.clone(),
                frags: vec![Frag {
                    text,
                    loc: r.cond_loc.clone(),
                }],
                output: Some(Frag {
                    text: if inactive.is_some() {
                        String::new()
                    } else {
                        output_template(&r.output, crate::event::EventMask::of(&kinds))
                    },
                    loc: r.output_loc.clone(),
                }),
                priority: r.priority,
                enabled: r.enabled && inactive.is_none(),
                tags: r.tags.clone(),
                exceptions: if inactive.is_some() {
                    Vec::new()
                } else {
                    exceptions
                },
                events: if inactive.is_some() {
                    Vec::new()
                } else {
                    kinds
                },
                events_loc: r.cond_loc.clone(),
                threshold: None,
                falco: Some(crate::rules::FalcoStatus {
                    inactive,
                    notes,
                    enabled: r.enabled,
                }),
            });
        }
        out
    }
}

/// The file position of byte `pos` of a condition whose `condition:` key is at `base`.
fn locate(file: Option<&SrcLines>, base: &Location, text: &str, pos: usize) -> Location {
    let Some(f) = file else { return base.clone() };
    // The token at `pos`, found in the file from the key on.
    let tok: String = text
        .get(pos.min(text.len())..)
        .unwrap_or("")
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    f.find_from(base, &tok)
}

fn parse_exceptions(v: &Value, loc: &Location, label: &str, diag: &mut Diag) -> Option<Vec<FExc>> {
    let l = Some(label);
    let Some(seq) = v.as_sequence() else {
        diag.err(loc, l, "`exceptions` must be a list");
        return None;
    };
    let mut out = Vec::new();
    for e in seq {
        let Some(m) = e.as_mapping() else {
            diag.err(
                loc,
                l,
                "each exception must be a mapping {name, fields, comps, values}",
            );
            return None;
        };
        let name = m.get("name").and_then(sval).unwrap_or_default();
        if name.is_empty() {
            diag.err(loc, l, "exception needs a `name`");
            return None;
        }
        let fields = match m.get("fields") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(v) => match slist(v) {
                Some(f) => f,
                None => {
                    diag.err(
                        loc,
                        l,
                        format!("exception `{name}`: `fields` must be a list"),
                    );
                    return None;
                }
            },
            None => Vec::new(),
        };
        let comps = match m.get("comps") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(v) => slist(v).unwrap_or_default(),
            None => Vec::new(),
        };
        let values = match m.get("values") {
            Some(Value::Sequence(s)) => s.clone(),
            None | Some(Value::Null) => Vec::new(),
            Some(_) => {
                diag.err(
                    loc,
                    l,
                    format!("exception `{name}`: `values` must be a list"),
                );
                return None;
            }
        };
        out.push(FExc {
            name,
            fields,
            comps,
            values,
            loc: loc.clone(),
        });
    }
    Some(out)
}

/// A Falco exception as a condition tree: any values row whose cells all
/// compare true (`fields[i] comps[i] row[i]`).
fn exception_expr(e: &FExc, lists: &HashMap<String, Vec<String>>) -> Result<Expr, String> {
    if e.fields.is_empty() {
        return Err("needs `fields`".into());
    }
    if !e.comps.is_empty() && e.comps.len() != e.fields.len() {
        return Err(format!(
            "`comps` has {} entries but `fields` has {}",
            e.comps.len(),
            e.fields.len()
        ));
    }
    let setop = |c: Option<&String>| {
        c.is_some_and(|c| matches!(c.as_str(), "in" | "intersects" | "pmatch"))
    };
    let mut rows = Vec::new();
    for row in &e.values {
        // One field: a row is its value (a list for `in`), or a one-cell row.
        let cells: Vec<Value> = match row {
            Value::Sequence(s) if e.fields.len() > 1 => s.clone(),
            Value::Sequence(s)
                if s.len() == 1
                    && (!setop(e.comps.first()) || matches!(s[0], Value::Sequence(_))) =>
            {
                s.clone()
            }
            other => vec![other.clone()],
        };
        if cells.len() != e.fields.len() {
            return Err(format!(
                "a values row has {} entries but `fields` has {}",
                cells.len(),
                e.fields.len()
            ));
        }
        let mut terms = Vec::new();
        for (i, (f, cell)) in e.fields.iter().zip(&cells).enumerate() {
            let comp = e.comps.get(i).cloned().unwrap_or_else(|| "=".into());
            let (vals, list) = match cell {
                Value::Sequence(s) => (
                    s.iter()
                        .map(|x| {
                            sval(x)
                                .map(Val::Quoted)
                                .ok_or("values must be strings or numbers")
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                    true,
                ),
                other => {
                    let s = sval(other).ok_or("values must be strings, numbers or lists")?;
                    if matches!(comp.as_str(), "in" | "intersects" | "pmatch")
                        && lists.contains_key(&s)
                    {
                        (vec![Val::Bare(s)], true)
                    } else {
                        (
                            vec![Val::Quoted(s)],
                            matches!(comp.as_str(), "in" | "intersects" | "pmatch"),
                        )
                    }
                }
            };
            let (field, arg) = match f.split_once('[') {
                Some((a, b)) => (a.to_string(), Some(b.trim_end_matches(']').to_string())),
                None => (f.clone(), None),
            };
            terms.push(Expr::Cmp {
                field,
                arg,
                op: comp,
                vals,
                list,
                pos: 0,
            });
        }
        rows.push(Expr::And(terms));
    }
    Ok(Expr::Or(rows))
}

/// A Falco output (`%proc.name`, `%proc.aname[2]`) as a vigil template
/// (`{proc.name}`); fields vigil does not have render as `<NA>`.
pub(crate) fn output_template(s: &str, events: crate::event::EventMask) -> String {
    let carried = |f: &str| {
        crate::fields::lookup(f).is_some_and(|f| !f.def().events.intersect(events).is_empty())
    };
    let mut out = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            let start = i + 1;
            let mut j = start;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b"._".contains(&b[j])) {
                j += 1;
            }
            if j < b.len() && b[j] == b'[' {
                if let Some(e) = s[j..].find(']') {
                    j += e + 1;
                }
            }
            let name = s[start..j].trim_end_matches('.');
            j = start + name.len();
            if is_field_name(name) {
                let (f, arg) = match name.split_once('[') {
                    Some((f, a)) => (f, Some(a.trim_end_matches(']'))),
                    None => (name, None),
                };
                let vigil = match subject(f, arg) {
                    Ok(Some(Subject::Expr(x, _))) => Some(x),
                    _ => match f {
                        "evt.type" | "proc.tty" => Some(f.to_string()),
                        "proc.exe" | "proc.args" => Some(f.to_string()),
                        "evt.res" | "fd.num" => Some("evt.ret".into()),
                        _ => None,
                    },
                };
                match vigil.filter(|x| carried(x)) {
                    Some(x) => out.push_str(&format!("{{{x}}}")),
                    None => out.push_str("<NA>"),
                }
                i = j;
                continue;
            }
        }
        match c {
            b'{' => out.push_str("{{"),
            b'}' => out.push_str("}}"),
            _ => {
                let ch = s[i..].chars().next().unwrap_or(' ');
                out.push(ch);
                i += ch.len_utf8();
                continue;
            }
        }
        i += 1;
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut lw = Lowerer {
            lists: &lists,
            macros: &macros,
            needs: Needs::default(),
            stack: vec![],
        };
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
        let mut lw = Lowerer {
            lists: &lists,
            macros: &macros,
            needs: Needs::default(),
            stack: vec![],
        };
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
    fn glob_is_falcos() {
        assert_eq!(glob_regex("/home/*/.ssh/*", false), "^/home/.*/\\.ssh/.*$");
        assert_eq!(glob_regex("*../*../*", false), "^.*\\.\\./.*\\.\\./.*$");
    }

    #[test]
    fn outputs() {
        assert_eq!(
            output_template(
                "Shell %proc.name gp=%proc.aname[2] x=%evt.arg.flags {y} 50%",
                crate::event::EventMask::of(&[EventType::Open])
            ),
            "Shell {proc.name} gp=<NA> x={file.flags} {{y}} 50%"
        );
        assert_eq!(
            output_template(
                "f=%fd.name",
                crate::event::EventMask::of(&[EventType::Exec])
            ),
            "f=<NA>"
        );
    }
}
