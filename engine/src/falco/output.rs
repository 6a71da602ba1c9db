//! Falco output templates (`%proc.name`, `%proc.aname[2]`): the vigil
//! template a Falco rule's output is checked as at load ([`output_template`]),
//! and the Falco-shaped rendering its alerts carry ([`FalcoOutput`]): the
//! `output` text and `output_fields` keyed by Falco's names with Falco's value
//! types (numbers as numbers, `evt.res` as `SUCCESS` or an errno name, fields
//! vigil cannot produce as `null`, shown `<NA>` in the text).

use serde_json::{Map, Value as Json};

use super::fields::{errno_name, subject, Subject};
use super::parser::is_field_name;
use crate::event::{open_flag_names, Event, EventType};
use crate::fields::{self, Field, FieldValue};

/// One piece of a Falco output string.
enum Part<'a> {
    Lit(&'a str),
    /// `%name` / `%name[arg]`: the whole key, the field, its argument.
    Field(&'a str, &'a str, Option<&'a str>),
}

/// Split a Falco output into literal text and `%field` references.
fn parts(s: &str) -> Vec<Part<'_>> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let (mut i, mut lit) = (0, 0);
    while i < b.len() {
        if b[i] != b'%' {
            i += 1;
            continue;
        }
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
        if !is_field_name(name) {
            i += 1;
            continue;
        }
        if lit < i {
            out.push(Part::Lit(&s[lit..i]));
        }
        let (f, arg) = match name.split_once('[') {
            Some((f, a)) => (f, Some(a.trim_end_matches(']'))),
            None => (name, None),
        };
        out.push(Part::Field(name, f, arg));
        i = start + name.len();
        lit = i;
    }
    if lit < b.len() {
        out.push(Part::Lit(&s[lit..]));
    }
    out
}

/// A Falco output (`%proc.name`, `%proc.aname[2]`) as a vigil template
/// (`{proc.name}`); fields vigil does not have render as `<NA>`.
pub(crate) fn output_template(s: &str, events: crate::event::EventMask) -> String {
    let carried = |f: &str| {
        crate::fields::lookup(f).is_some_and(|f| !f.def().events.intersect(events).is_empty())
    };
    let mut out = String::new();
    for p in parts(s) {
        match p {
            Part::Lit(l) => out.push_str(&l.replace('{', "{{").replace('}', "}}")),
            Part::Field(_, f, arg) => {
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
            }
        }
    }
    out.trim_end().to_string()
}

/// How one Falco output field reads from a vigil event.
#[derive(Clone, Debug, PartialEq, Eq)]
enum X {
    /// A vigil field with the same meaning (`Kind`: Falco's type).
    Plain(Field),
    /// `proc.aname[N]`, N >= 2: an ancestor's name.
    Ancestor(usize),
    /// Falco's syscall name for the event kind.
    EvtType,
    /// `evt.time`: ns (JSON), `HH:MM:SS.nnnnnnnnn` (text).
    EvtTime,
    /// `SUCCESS` or the errno name.
    EvtRes,
    EvtDir,
    /// `host` on the host.
    ContainerId,
    ContainerName,
    /// argv[0].
    Argv0,
    /// argv[1..] as one string.
    Args,
    /// The terminal: 0 without one (vigil knows only whether there is one: 1).
    Tty,
    /// Opens: the path; sockets: the tuple `cip:cport->sip:sport`.
    FdName,
    FdDirectory,
    FdFilename,
    FdTypechar,
    FdType,
    /// Opens: the new descriptor (the result).
    FdNum,
    /// A field per event kind (`fd.sip`: connect's daddr, accept's saddr;
    /// `evt.arg.target`: symlink's fs.source).
    PerKind(Vec<(&'static [EventType], Field)>),
    /// Open flags as Falco prints them (`O_RDONLY|O_CLOEXEC`).
    Flags,
    /// A field vigil cannot produce: `null` / `<NA>`.
    Null,
}

impl X {
    fn of(f: &str, arg: Option<&str>) -> X {
        let field = |n: &str| fields::lookup(n).map_or(X::Null, X::Plain);
        match (f, arg) {
            ("evt.type", _) => X::EvtType,
            ("evt.time", _) => X::EvtTime,
            ("evt.res", _) => X::EvtRes,
            ("evt.dir", _) => X::EvtDir,
            ("container.id", _) => X::ContainerId,
            ("container.name", _) => X::ContainerName,
            ("proc.exe", _) => X::Argv0,
            ("proc.args", _) => X::Args,
            ("proc.tty", _) => X::Tty,
            ("proc.aname", None) => field("proc.pname"),
            ("proc.aname", Some(a)) => match a.trim().parse::<usize>() {
                Ok(0) => field("proc.name"),
                Ok(1) => field("proc.pname"),
                Ok(n) => X::Ancestor(n - 1),
                Err(_) => X::Null,
            },
            ("fd.name" | "fs.path.name", _) => X::FdName,
            ("fd.directory", _) => X::FdDirectory,
            ("fd.filename", _) => X::FdFilename,
            ("fd.typechar", _) => X::FdTypechar,
            ("fd.type", _) => X::FdType,
            ("fd.num", _) => X::FdNum,
            ("evt.arg", Some("flags")) | ("evt.arg.flags", None) => X::Flags,
            _ => match subject(f, arg) {
                Ok(Some(Subject::Expr(x, _))) => field(&x),
                Ok(Some(Subject::Gated(alts, _))) => X::PerKind(
                    alts.into_iter()
                        .filter_map(|(ts, f)| Some((ts, fields::lookup(&f)?)))
                        .collect(),
                ),
                _ => X::Null,
            },
        }
    }

    /// The value as Falco's JSON has it (`Null` when the event lacks it).
    fn json(&self, ev: &Event) -> Json {
        let s = |v: &str| Json::String(v.to_string());
        let get = |f: Field| ev.get(f).map_or(Json::Null, |v| v.to_json());
        let path = || ev.file().map(|f| f.path.as_str());
        match self {
            X::Plain(f) => match ev.get(*f) {
                Some(FieldValue::StrList(l)) => s(&l.join(" ")),
                Some(v) => v.to_json(),
                None => Json::Null,
            },
            X::Ancestor(n) => ev.proc.ancestors.get(*n).map_or(Json::Null, |a| s(a)),
            X::EvtType => s(falco_syscall(ev.kind)),
            X::EvtTime => Json::from(ev.time),
            X::EvtRes if ev.ret >= 0 => s("SUCCESS"),
            X::EvtRes => match errno_name(-ev.ret) {
                Some(n) => s(n),
                None => s(&ev.ret.to_string()),
            },
            X::EvtDir => s("<"),
            X::ContainerId | X::ContainerName if ev.proc.container_id.is_empty() => s("host"),
            X::ContainerId => s(&ev.proc.container_id),
            X::ContainerName => Json::Null,
            X::Argv0 => s(ev.proc.cmdline.split(' ').next().unwrap_or("")),
            X::Args => s(&ev.proc.args.join(" ")),
            X::Tty => Json::from(i64::from(ev.proc.tty)),
            X::FdName => match (path(), ev.net()) {
                (Some(p), _) => s(p),
                (None, Some(n)) => {
                    let (l, r) = (
                        format!("{}:{}", n.saddr, n.sport),
                        format!("{}:{}", n.daddr, n.dport),
                    );
                    if ev.kind == EventType::Accept {
                        s(&format!("{r}->{l}"))
                    } else {
                        s(&format!("{l}->{r}"))
                    }
                }
                _ => Json::Null,
            },
            X::FdDirectory => path().map_or(Json::Null, |p| {
                s(match p.rfind('/') {
                    Some(0) => "/",
                    Some(i) => &p[..i],
                    None => p,
                })
            }),
            X::FdFilename => path().map_or(Json::Null, |p| s(p.rsplit('/').next().unwrap_or(p))),
            X::FdTypechar | X::FdType => {
                let char_and_name = match (ev.file(), ev.net()) {
                    (Some(f), _) if open_flag_names(f.flags).iter().any(|n| n == "O_DIRECTORY") => {
                        Some(("d", "directory"))
                    }
                    (Some(_), _) => Some(("f", "file")),
                    (None, Some(n)) => match n.family.as_str() {
                        "inet" => Some(("4", "ipv4")),
                        "inet6" => Some(("6", "ipv6")),
                        "unix" => Some(("u", "unix")),
                        _ => None,
                    },
                    _ => None,
                };
                match char_and_name {
                    Some((c, _)) if *self == X::FdTypechar => s(c),
                    Some((_, n)) => s(n),
                    None => Json::Null,
                }
            }
            X::FdNum if ev.kind == EventType::Open => Json::from(ev.ret),
            X::FdNum => Json::Null,
            X::PerKind(alts) => alts
                .iter()
                .find(|(ts, _)| ts.contains(&ev.kind))
                .map_or(Json::Null, |(_, f)| get(*f)),
            X::Flags => ev
                .file()
                .map_or(Json::Null, |f| s(&open_flag_names(f.flags).join("|"))),
            X::Null => Json::Null,
        }
    }

    /// The value as Falco's text output shows it.
    fn text(&self, ev: &Event) -> String {
        match (self, self.json(ev)) {
            (X::EvtTime, _) => {
                let t = crate::alert::rfc3339_nanos(ev.time);
                t.get(11..29).unwrap_or(&t).to_string()
            }
            (_, Json::Null) => "<NA>".into(),
            (_, Json::String(s)) => s,
            (_, v) => v.to_string(),
        }
    }
}

/// Falco's name for the syscall behind an event kind (the usual one where
/// several map to the kind: `openat` for opens).
fn falco_syscall(k: EventType) -> &'static str {
    match k {
        EventType::Exec => "execve",
        EventType::Open => "openat",
        EventType::Exit => "procexit",
        EventType::Symlink => "symlinkat",
        EventType::Link => "linkat",
        EventType::Rename => "renameat2",
        EventType::Unlink => "unlinkat",
        EventType::Mkdir => "mkdirat",
        EventType::Chmod => "fchmodat",
        EventType::Memfd => "memfd_create",
        EventType::Dup => "dup2",
        EventType::Chown => "fchownat",
        EventType::Module => "finit_module",
        EventType::ExecFailed => "execve",
        other => other.as_str(),
    }
}

/// A Falco rule's output, parsed once at load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FalcoOutput {
    segs: Vec<Seg>,
    /// The template's fields (each once, in order) with `evt.time` first.
    fields: Vec<(String, X)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Seg {
    Lit(String),
    /// An index into `fields`.
    Field(usize),
}

impl FalcoOutput {
    pub(crate) fn parse(s: &str) -> FalcoOutput {
        let mut fields = vec![("evt.time".to_string(), X::EvtTime)];
        let mut segs = Vec::new();
        for p in parts(s.trim_end()) {
            match p {
                Part::Lit(l) => segs.push(Seg::Lit(l.to_string())),
                Part::Field(key, f, arg) => {
                    let i = match fields.iter().position(|(k, _)| k == key) {
                        Some(i) => i,
                        None => {
                            fields.push((key.to_string(), X::of(f, arg)));
                            fields.len() - 1
                        }
                    };
                    segs.push(Seg::Field(i));
                }
            }
        }
        FalcoOutput { segs, fields }
    }

    /// The `output` text for an event.
    pub fn render(&self, ev: &Event) -> String {
        let mut out = String::new();
        for s in &self.segs {
            match s {
                Seg::Lit(l) => out.push_str(l),
                Seg::Field(i) => out.push_str(&self.fields[*i].1.text(ev)),
            }
        }
        out
    }

    /// `output_fields` as Falco writes them: the template's fields and
    /// `evt.time`, by Falco's names, with Falco's types.
    pub fn output_fields(&self, ev: &Event) -> Map<String, Json> {
        self.fields
            .iter()
            .map(|(k, x)| (k.clone(), x.json(ev)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventMask;
    use crate::falco::fields::Kind;

    /// Falco's type of a mapped field, for tests: what its JSON value must be.
    fn kind_of(v: &Json) -> Option<Kind> {
        match v {
            Json::String(_) => Some(Kind::Str),
            Json::Number(_) => Some(Kind::Int),
            Json::Bool(_) => Some(Kind::Bool),
            _ => None,
        }
    }

    #[test]
    fn outputs() {
        assert_eq!(
            output_template(
                "Shell %proc.name gp=%proc.aname[2] x=%evt.arg.flags {y} 50%",
                EventMask::of(&[EventType::Open])
            ),
            "Shell {proc.name} gp=<NA> x={file.flags} {{y}} 50%"
        );
        assert_eq!(
            output_template("f=%fd.name", EventMask::of(&[EventType::Exec])),
            "f=<NA>"
        );
    }

    fn event(j: serde_json::Value) -> Event {
        Event::from_flat_json(j.as_object().unwrap()).unwrap()
    }

    #[test]
    fn falco_shaped_fields_have_falcos_names_and_types() {
        let out = FalcoOutput::parse(
            "File opened (user=%user.name uid=%user.uid pid=%proc.pid command=%proc.cmdline \
             exe=%proc.exe args=%proc.args file=%fd.name dir=%fd.directory res=%evt.res \
             flags=%evt.arg.flags gp=%proc.aname[2] type=%evt.type tty=%proc.tty \
             cid=%container.id img=%container.image.repository sport=%fd.sport 100%)",
        );
        let ev = event(serde_json::json!({
            "evt.type": "open", "evt.time": 1_000_000_007, "evt.ret": -13,
            "proc.name": "cat", "proc.pid": 42, "proc.uid": 0, "user.name": "root",
            "proc.cmdline": "/bin/cat /etc/shadow", "proc.args": ["/etc/shadow"],
            "proc.ancestors": ["bash", "sshd"], "file.path": "/etc/shadow",
            "file.flags": ["O_RDONLY", "O_CLOEXEC"],
        }));
        let f = out.output_fields(&ev);
        assert_eq!(f["evt.time"], 1_000_000_007);
        assert_eq!(f["proc.pid"], 42);
        assert_eq!(f["user.uid"], 0);
        assert_eq!(f["proc.exe"], "/bin/cat");
        assert_eq!(f["proc.args"], "/etc/shadow");
        assert_eq!(f["fd.name"], "/etc/shadow");
        assert_eq!(f["fd.directory"], "/etc");
        assert_eq!(f["evt.res"], "EACCES");
        assert_eq!(f["evt.arg.flags"], "O_RDONLY|O_CLOEXEC");
        assert_eq!(f["proc.aname[2]"], "sshd");
        assert_eq!(f["evt.type"], "openat");
        assert_eq!(f["proc.tty"], 0);
        assert_eq!(f["container.id"], "host");
        assert_eq!(f["container.image.repository"], Json::Null);
        // fd.sport on an open: no socket.
        assert_eq!(f["fd.sport"], Json::Null);
        assert_eq!(f.len(), 17, "{f:?}");
        assert_eq!(
            out.render(&ev),
            "File opened (user=root uid=0 pid=42 command=/bin/cat /etc/shadow exe=/bin/cat \
             args=/etc/shadow file=/etc/shadow dir=/etc res=EACCES flags=O_RDONLY|O_CLOEXEC \
             gp=sshd type=openat tty=0 cid=host img=<NA> sport=<NA> 100%)"
        );
        // Every mapped field has the type Falco gives it.
        for (name, x) in &out.fields {
            if let (Ok(Some(Subject::Expr(_, k))), Some(got)) =
                (subject(name, None), kind_of(&x.json(&ev)))
            {
                assert_eq!(k, got, "{name}");
            }
        }
    }

    #[test]
    fn sockets_read_the_server_and_client_sides() {
        let out = FalcoOutput::parse("%fd.name %fd.sip:%fd.sport %fd.cip %fd.typechar %evt.res");
        let conn = event(serde_json::json!({
            "evt.type": "connect", "net.family": "inet", "net.saddr": "10.0.0.2",
            "net.sport": 40000, "net.daddr": "1.2.3.4", "net.dport": 443,
        }));
        let f = out.output_fields(&conn);
        assert_eq!(f["fd.sport"], 443);
        assert_eq!(f["fd.sip"], "1.2.3.4");
        assert_eq!(f["fd.cip"], "10.0.0.2");
        assert_eq!(
            out.render(&conn),
            "10.0.0.2:40000->1.2.3.4:443 1.2.3.4:443 10.0.0.2 4 SUCCESS"
        );
        let acc = event(serde_json::json!({
            "evt.type": "accept", "net.family": "inet6", "net.saddr": "::1",
            "net.sport": 22, "net.daddr": "::2", "net.dport": 50000,
        }));
        let f = out.output_fields(&acc);
        assert_eq!(
            (f["fd.sport"].clone(), f["fd.cip"].clone()),
            (22.into(), "::2".into())
        );
        assert_eq!(f["fd.name"], "::2:50000->::1:22");
    }
}
