//! Falco's field catalogue as vigil reads it: the fields mapped onto
//! vigil's (with Falco's meaning), the ones vigil cannot produce yet
//! (rules reading them are inactive), container metadata (empty on the
//! host), `evt.arg.*` (per syscall) and errno names.

use crate::event::EventType;

/// How a Falco field reads in vigil.
pub(super) enum Subject {
    /// A vigil field (or expression) of a type.
    Expr(String, Kind),
    /// Per event kind: (kinds, vigil field) alternatives with disjoint kinds;
    /// on other kinds the field has no value.
    Gated(Vec<(&'static [EventType], String)>, Kind),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Kind {
    Str,
    Int,
    Bool,
}

/// Falco field names vigil does not produce (yet): rules reading them are
/// inactive. Names outside this table and the mapped ones are unknown to
/// Falco too, so an error.
pub(super) const MISSING: &[&str] = &[
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
pub(super) fn is_metadata(name: &str) -> bool {
    (name.starts_with("container.") && name != "container.id")
        || name.starts_with("k8s.")
        || name.starts_with("k8smeta.")
}

/// `evt.arg.NAME` vigil records, per syscall: open's (the raw path as
/// passed), the path-changing calls' (`target`/`linkpath` of symlink,
/// `oldpath`/`newpath` of link and rename, the path of unlink, rmdir, mkdir,
/// chmod, chown, truncate: absolute), ptrace's, socket's, memfd_create's,
/// dup's `oldfd`/`newfd`, listen's `backlog`, mount's `dev`/`dir`/`type`,
/// truncate's `length`, the module's `uargs`. (setuid's and chown's `uid`
/// are not mapped: setuid's is a user name in Falco, which vigil lacks.)
/// `mode` and bpf's `cmd` are [`super::lower::Lowerer::special`]'s.
pub(super) fn evt_arg(name: &str) -> Option<Subject> {
    use EventType as E;
    use Kind::*;
    let g = |alts: &[(&'static [EventType], &str)], k: Kind| {
        Subject::Gated(alts.iter().map(|(t, f)| (*t, f.to_string())).collect(), k)
    };
    const FS_PATH: &[EventType] = &[
        E::Unlink,
        E::Rmdir,
        E::Mkdir,
        E::Chmod,
        E::Chown,
        E::Truncate,
    ];
    Some(match name {
        "flags" => Subject::Expr("file.flags".into(), Str),
        "fd" | "res" => Subject::Expr("evt.ret".into(), Int),
        "name" => g(
            &[
                (&[E::Open], "file.path_raw"),
                (FS_PATH, "fs.path"),
                (&[E::Memfd], "memfd.name"),
                (&[E::Mount], "mount.target"),
            ],
            Str,
        ),
        "path" | "filename" => g(&[(&[E::Open], "file.path_raw"), (FS_PATH, "fs.path")], Str),
        "pathname" => g(&[(&[E::Chown], "fs.path")], Str),
        "target" => g(&[(&[E::Symlink], "fs.source")], Str),
        "linkpath" => g(&[(&[E::Symlink], "fs.path")], Str),
        "oldpath" => g(&[(&[E::Link, E::Rename], "fs.source")], Str),
        "newpath" => g(&[(&[E::Link, E::Rename], "fs.path")], Str),
        "request" => g(&[(&[E::Ptrace], "ptrace.request")], Str),
        "pid" => g(&[(&[E::Ptrace], "ptrace.pid")], Int),
        "domain" => g(&[(&[E::Socket], "socket.domain")], Str),
        "type" => g(
            &[(&[E::Socket], "socket.type"), (&[E::Mount], "mount.fstype")],
            Str,
        ),
        "dev" => g(&[(&[E::Mount], "mount.source")], Str),
        "dir" => g(&[(&[E::Mount], "mount.target")], Str),
        "oldfd" => g(&[(&[E::Dup], "dup.oldfd")], Int),
        "newfd" => g(&[(&[E::Dup], "dup.newfd")], Int),
        "backlog" => g(&[(&[E::Listen], "listen.backlog")], Int),
        "length" => g(&[(&[E::Truncate], "truncate.length")], Int),
        "uargs" => g(&[(&[E::Module], "module.params")], Str),
        "proto" => g(&[(&[E::Socket], "socket.protocol")], Int),
        _ => return None,
    })
}

/// The server / client side of a connection: connect's own side, accept's
/// (and a retransmit's) the other.
pub(super) fn net_side(connect: &str, accept: &str, kind: Kind) -> Subject {
    use EventType as E;
    Subject::Gated(
        vec![
            (&[E::Connect], connect.into()),
            (&[E::Accept, E::Retransmit], accept.into()),
        ],
        kind,
    )
}

/// Map a Falco field (without its argument) to how vigil reads it. `None`:
/// handled by [`Lowerer::special`]; `Err(true)`: known to Falco, missing in
/// vigil; `Err(false)`: unknown.
pub(super) fn subject(name: &str, arg: Option<&str>) -> Result<Option<Subject>, bool> {
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
        ("evt.arg", Some("mode" | "cmd")) | ("evt.arg.mode" | "evt.arg.cmd", None) => Ok(None),
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
pub(super) const LIST_FIELDS: &[&str] = &["file.flags", "proc.cap_effective", "proc.cap_permitted"];

/// A Falco value as an item of list field `x`: capability names gain the
/// `CAP_` Falco's text match lets rules leave out (`contains SYS_ADMIN`).
pub(super) fn list_item(x: &str, v: &str) -> String {
    if x.starts_with("proc.cap_") && !v.starts_with("CAP_") {
        format!("CAP_{v}")
    } else {
        v.to_string()
    }
}

/// Errno names for `evt.res` (the first name of a number is the one shown).
const ERRNO: &[(&str, i64)] = &[
    ("EPERM", 1),
    ("ENOENT", 2),
    ("ESRCH", 3),
    ("EINTR", 4),
    ("EIO", 5),
    ("ENXIO", 6),
    ("E2BIG", 7),
    ("ENOEXEC", 8),
    ("EBADF", 9),
    ("EAGAIN", 11),
    ("ENOMEM", 12),
    ("EACCES", 13),
    ("EACCESS", 13),
    ("EFAULT", 14),
    ("EBUSY", 16),
    ("EEXIST", 17),
    ("ENOTDIR", 20),
    ("EISDIR", 21),
    ("EINVAL", 22),
    ("ENFILE", 23),
    ("EMFILE", 24),
    ("ETXTBSY", 26),
    ("ENOSPC", 28),
    ("EROFS", 30),
    ("ENAMETOOLONG", 36),
    ("ELOOP", 40),
    ("ECONNREFUSED", 111),
    ("ETIMEDOUT", 110),
    ("EINPROGRESS", 115),
    ("EWOULDBLOCK", 11),
    ("ECHILD", 10),
    ("ENOTBLK", 15),
    ("EXDEV", 18),
    ("ENODEV", 19),
    ("ENOTTY", 25),
    ("EFBIG", 27),
    ("ESPIPE", 29),
    ("EMLINK", 31),
    ("EPIPE", 32),
    ("ERANGE", 34),
    ("ENOSYS", 38),
    ("ENOTEMPTY", 39),
    ("ENOTSOCK", 88),
    ("EPROTONOSUPPORT", 93),
    ("EOPNOTSUPP", 95),
    ("EAFNOSUPPORT", 97),
    ("EADDRINUSE", 98),
    ("EADDRNOTAVAIL", 99),
    ("ENETDOWN", 100),
    ("ENETUNREACH", 101),
    ("ECONNABORTED", 103),
    ("ECONNRESET", 104),
    ("ENOBUFS", 105),
    ("EISCONN", 106),
    ("ENOTCONN", 107),
    ("EHOSTUNREACH", 113),
    ("EALREADY", 114),
    ("EDQUOT", 122),
];

/// The number of an errno name.
pub(super) fn errno(name: &str) -> Option<i64> {
    ERRNO.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// The name of an errno number (`None`: not in the table).
pub(super) fn errno_name(n: i64) -> Option<&'static str> {
    ERRNO.iter().find(|(_, v)| *v == n).map(|(name, _)| *name)
}
