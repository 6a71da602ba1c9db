//! Lowering the Falco fields that are not one plain vigil field: `evt.type`'s
//! companions (`evt.dir`, `evt.num`, `evt.res`), open flags, `fd.type*`,
//! `fd.num`, `fd.directory`/`fd.filename`, argv views (`proc.exe`,
//! `proc.args`), any-ancestor `proc.aname`, `proc.tty` and the network sets.

use super::fields::errno;
use super::lower::{join, negate, quote, re_esc, LowerError, Lowerer, Out};
use crate::event::EventType;

/// Falco's names of the permission bits of a mode (chmod, mkdir).
const MODE_BITS: &[(&str, i64)] = &[
    ("S_IXOTH", 0o1),
    ("S_IWOTH", 0o2),
    ("S_IROTH", 0o4),
    ("S_IXGRP", 0o10),
    ("S_IWGRP", 0o20),
    ("S_IRGRP", 0o40),
    ("S_IXUSR", 0o100),
    ("S_IWUSR", 0o200),
    ("S_IRUSR", 0o400),
];

impl Lowerer<'_> {
    /// Falco fields that are not a plain vigil field.
    pub(super) fn special(
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
        let field = match (field, arg) {
            ("evt.arg", Some("mode")) => "evt.arg.mode",
            ("evt.arg", Some("cmd")) => "evt.arg.cmd",
            _ => field,
        };
        Ok(match field {
            // chmod's / mkdir's mode, by the names of its bits: the special
            // ones are vigil's booleans, the others a test of fs.mode (-1,
            // unknown, has none).
            "evt.arg.mode" if op == "contains" => {
                let bit = match v0 {
                    "S_ISUID" => "fs.setuid".to_string(),
                    "S_ISGID" => "fs.setgid".to_string(),
                    "S_ISVTX" => "fs.sticky".to_string(),
                    _ => match MODE_BITS.iter().find(|(n, _)| *n == v0) {
                        Some((_, 1)) => "fs.mode % 2 == 1".to_string(),
                        Some((_, b)) => format!("(fs.mode / {b}) % 2 == 1"),
                        None => return self.unsupported_op(field, op),
                    },
                };
                const MODE: &[EventType] = &[EventType::Chmod, EventType::Mkdir];
                let alts = self.gates(vec![(MODE, bit)]);
                join(
                    alts.into_iter()
                        .map(|(gate, x)| join(vec![gate, Out::Text(x)], true))
                        .collect(),
                    false,
                )
            }
            // bpf's command, by name or by number (`evt.arg.cmd=5`) as
            // Falco compares it; no value on other kinds.
            "evt.arg.cmd" if eqop => {
                let name = |v: &str| {
                    v.parse::<u64>()
                        .map(crate::event::bpf_cmd_name)
                        .unwrap_or_else(|_| v.to_string())
                };
                let alts = self.gates(vec![(&[EventType::Bpf], "bpf.cmd".to_string())]);
                join(
                    alts.into_iter()
                        .map(|(gate, x)| {
                            let test =
                                any(&|v: &str| Out::Text(format!("{x} == {}", quote(&name(v)))));
                            join(vec![gate, flip(test)], true)
                        })
                        .collect(),
                    false,
                )
            }
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
                // vigil's exec events are the successful execs (a failed
                // one is exec_failed): SUCCESS there.
                let exec_ok = matches!(&self.kinds, Some(ks) if ks == &[EventType::Exec]);
                let one = |v: &str| -> Out {
                    match v {
                        _ if exec_ok => Out::Const(v == "SUCCESS"),
                        "SUCCESS" => Out::Text("evt.ret >= 0".into()),
                        v => match errno(v) {
                            Some(n) => Out::Text(format!("evt.ret == {}", -n)),
                            None => Out::Const(false),
                        },
                    }
                };
                match op {
                    "=" | "==" | "in" | "!=" => flip(any(&one)),
                    "startswith" if exec_ok => Out::Const("SUCCESS".starts_with(v0)),
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
                // A listening socket has its local side only (its remote
                // address reads 0.0.0.0): Falco's fd.ip / fd.port / fd.net
                // of a listen are the bound address and port.
                let listen = matches!(&self.kinds, Some(ks) if ks.contains(&EventType::Listen));
                let side = |(_, remote): &(&str, bool), test: String| {
                    Out::Text(if *remote && listen {
                        format!("(evt.type != \"listen\" && {test})")
                    } else {
                        test
                    })
                };
                let (sides, port) = match field {
                    "fd.port" => (vec![("net.sport", false), ("net.dport", true)], true),
                    "fd.lnet" => (vec![("net.saddr", false)], false),
                    "fd.rnet" => (vec![("net.daddr", false)], false),
                    _ => (vec![("net.saddr", false), ("net.daddr", true)], false),
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
                                    .map(|s| side(s, format!("{} == {p}", s.0)))
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
                                .map(|s| side(s, format!("cidr({}, {})", s.0, quote(v))))
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

    pub(super) fn unsupported_op(&mut self, field: &str, op: &str) -> Result<Out, LowerError> {
        self.needs
            .other
            .insert(format!("`{field} {op}` (not supported on this field)"));
        Ok(Out::Const(false))
    }
}
