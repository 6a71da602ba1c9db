//! The event model: what a sensor (live or recorded) hands the engine.
//!
//! An [`Event`] is one observation (an exec, an open, a connect, ...) plus the
//! state of the process that made it. Process state is shared through an
//! `Arc` so the process table can hand the same snapshot to many events
//! without copying strings. Every field a rule can read is described once in
//! [`crate::fields`]; this module only holds the data.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

mod args;

pub use args::{
    bpf_cmd_name, bpf_map_type_name, bpf_prog_type_name, capability_names, ns_type_names,
    open_flag_names, open_flags_from_names, open_flags_write, ptrace_request_name,
    socket_domain_name, socket_type_name, CAPABILITIES, OPEN_FLAGS,
};

/// The kernel keeps comm in 16 bytes with a NUL: 15 significant bytes.
pub const COMM_LEN: usize = 15;

/// Truncate a process name the way the kernel keeps it (15 bytes, on a char boundary).
pub fn truncate_comm(s: &str) -> &str {
    if s.len() <= COMM_LEN {
        return s;
    }
    let mut end = COMM_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The kinds of event vigil observes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Exec,
    Open,
    Connect,
    Accept,
    Retransmit,
    Exit,
    // On-demand syscall kinds: hooked only while a rule (or snoop/record)
    // needs them.
    Symlink,
    Link,
    Rename,
    Unlink,
    Mkdir,
    Rmdir,
    Chmod,
    Ptrace,
    Socket,
    Setuid,
    Setgid,
    Setns,
    Unshare,
    Memfd,
    Dup,
    Listen,
    Chown,
    Mount,
    Bpf,
    Userfaultfd,
    Module,
    Truncate,
    /// An execve/execveat the kernel refused (`evt.ret` < 0); the process
    /// context is the caller's. Its own type so that rules on `exec` never
    /// see one.
    ExecFailed,
}

impl EventType {
    /// Number of event types.
    pub const COUNT: usize = 29;

    /// Every event type, in a fixed order (the first six are also the
    /// kernel's record numbering; the rest share its on-demand record).
    pub const ALL: [EventType; EventType::COUNT] = [
        EventType::Exec,
        EventType::Open,
        EventType::Connect,
        EventType::Accept,
        EventType::Retransmit,
        EventType::Exit,
        EventType::Symlink,
        EventType::Link,
        EventType::Rename,
        EventType::Unlink,
        EventType::Mkdir,
        EventType::Rmdir,
        EventType::Chmod,
        EventType::Ptrace,
        EventType::Socket,
        EventType::Setuid,
        EventType::Setgid,
        EventType::Setns,
        EventType::Unshare,
        EventType::Memfd,
        EventType::Dup,
        EventType::Listen,
        EventType::Chown,
        EventType::Mount,
        EventType::Bpf,
        EventType::Userfaultfd,
        EventType::Module,
        EventType::Truncate,
        EventType::ExecFailed,
    ];

    /// The name rules and JSON use (`exec`, `open`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Exec => "exec",
            EventType::Open => "open",
            EventType::Connect => "connect",
            EventType::Accept => "accept",
            EventType::Retransmit => "retransmit",
            EventType::Exit => "exit",
            EventType::Symlink => "symlink",
            EventType::Link => "link",
            EventType::Rename => "rename",
            EventType::Unlink => "unlink",
            EventType::Mkdir => "mkdir",
            EventType::Rmdir => "rmdir",
            EventType::Chmod => "chmod",
            EventType::Ptrace => "ptrace",
            EventType::Socket => "socket",
            EventType::Setuid => "setuid",
            EventType::Setgid => "setgid",
            EventType::Setns => "setns",
            EventType::Unshare => "unshare",
            EventType::Memfd => "memfd",
            EventType::Dup => "dup",
            EventType::Listen => "listen",
            EventType::Chown => "chown",
            EventType::Mount => "mount",
            EventType::Bpf => "bpf",
            EventType::Userfaultfd => "userfaultfd",
            EventType::Module => "module",
            EventType::Truncate => "truncate",
            EventType::ExecFailed => "exec_failed",
        }
    }

    /// Dense index 0..COUNT (for the first six, the kernel's record number).
    pub fn index(self) -> usize {
        self as usize
    }

    /// A one-bit mask for sets of event types.
    pub fn bit(self) -> u32 {
        1 << (self as u32)
    }

    /// An on-demand kind whose fd may be a socket (its endpoints are the
    /// `net.*` fields): dup, listen.
    pub fn carries_socket(self) -> bool {
        matches!(self, EventType::Dup | EventType::Listen)
    }

    /// An on-demand kind: its syscalls are hooked only while needed.
    pub fn on_demand(self) -> bool {
        self as usize > EventType::Exit as usize
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for an event type name that is not one of [`EventType::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type `{0}` (expected one of exec, open, connect, accept, retransmit, exit, symlink, link, rename, unlink, mkdir, rmdir, chmod, ptrace, socket, setuid, setgid, setns, unshare, memfd, dup, listen, chown, mount, bpf, userfaultfd, module, truncate, exec_failed)")]
pub struct UnknownEventType(pub String);

impl FromStr for EventType {
    type Err = UnknownEventType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownEventType(s.to_string()))
    }
}

/// A set of event types as a bit mask (bit `EventType::index()`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EventMask(pub u32);

impl EventMask {
    pub const NONE: EventMask = EventMask(0);
    pub const ALL: EventMask = EventMask((1 << EventType::COUNT) - 1);

    pub fn of(types: &[EventType]) -> EventMask {
        EventMask(types.iter().fold(0, |m, t| m | t.bit()))
    }
    pub fn contains(self, t: EventType) -> bool {
        self.0 & t.bit() != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn union(self, other: EventMask) -> EventMask {
        EventMask(self.0 | other.0)
    }
    pub fn intersect(self, other: EventMask) -> EventMask {
        EventMask(self.0 & other.0)
    }
    pub fn iter(self) -> impl Iterator<Item = EventType> {
        EventType::ALL
            .into_iter()
            .filter(move |t| self.contains(*t))
    }
}

/// What vigil knows about the process that caused an event.
///
/// Filled by the process table (live) or from a recorded/test event. Strings
/// are empty and numbers zero when unknown; `incomplete` says the table did
/// not have the full picture (e.g. the process started before vigil and /proc
/// was already gone).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Process {
    pub pid: i64,
    pub ppid: i64,
    /// comm, at most 15 bytes as the kernel keeps it.
    pub name: String,
    pub exe: String,
    pub cmdline: String,
    /// argv[1..].
    pub args: Vec<String>,
    pub cwd: String,
    /// Start time, nanoseconds since the epoch.
    pub start: i64,
    pub uid: i64,
    pub gid: i64,
    /// Audit login uid; -1 (4294967295 in the kernel) when unset.
    pub loginuid: i64,
    pub user_name: String,
    pub pname: String,
    pub pexe: String,
    pub pcmdline: String,
    /// Names of the ancestors, parent first.
    pub ancestors: Vec<String>,
    /// argv was cut at the kernel's bound (2 KiB): `cmdline` and `args` hold
    /// only its start.
    pub cmdline_truncated: bool,
    /// The executable path was cut at the kernel's bound and could not be
    /// read back from /proc.
    pub exe_truncated: bool,
    /// The working directory's walk was cut at the kernel's bound.
    pub cwd_truncated: bool,
    /// cgroup v2 path, e.g. `/system.slice/nginx.service`.
    pub cgroup: String,
    /// systemd unit owning the cgroup, "" if none.
    pub unit: String,
    /// Container id parsed from the cgroup path, "" on the host.
    pub container_id: String,
    pub tty: bool,
    /// The process table lacked part of this process's state.
    pub incomplete: bool,
    /// Effective and permitted capabilities at exec (`CAP_*` names, in
    /// capability number order).
    pub cap_effective: Arc<[String]>,
    pub cap_permitted: Arc<[String]>,
    /// The executable was an anonymous memory file (memfd_create + fexecve).
    pub exe_from_memfd: bool,
    /// The executable had no link left on its file system at exec (deleted,
    /// or an O_TMPFILE never linked); memfds are `exe_from_memfd` instead.
    pub exe_deleted: bool,
    /// The executable came from an overlayfs upper layer (written after the
    /// container started, not part of its image).
    pub exe_upper_layer: bool,
    /// The allow-listed environment variables present at exec, as
    /// `NAME=value` joined by spaces, in environment order.
    pub env: String,
    /// Their names.
    pub env_names: Vec<String>,
}

/// `open` details.
///
/// Several paths, because a path can name a file in many ways: `path_raw`
/// is what the process passed; `path_lexical` is that made absolute and
/// normalised as text (`.`, `..`, `//` removed, no symlink followed);
/// `path_resolved` is the opened file's own path as the kernel resolved it
/// (symlinks, `/proc/self/root` and padding undone); `path` is what rules
/// should match: for a file (or a file in a directory) that the rules name
/// and that was reached through an alias (hard link, bind mount), the name
/// the rules use; else the resolved path; else (failed opens) the lexical one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileInfo {
    /// Canonical absolute path (see above).
    pub path: String,
    /// The path exactly as passed to the syscall.
    pub path_raw: String,
    /// `path_raw` made absolute and normalised lexically.
    pub path_lexical: String,
    /// The path the kernel resolved for a successful open; "" otherwise.
    pub path_resolved: String,
    /// Raw open(2) flags (`O_*` bits as on x86_64/aarch64 Linux).
    pub flags: u32,
    /// `path` was built from a string the kernel cut at its bound (a raw
    /// path over 1 KiB of a failed open, or a walk over 2 KiB / 48 levels).
    pub path_truncated: bool,
    /// The raw path was longer than the kernel copies (1 KiB): `path_raw`
    /// holds its start (padding, e.g. `/etc/` + `./` x 2000 + `shadow`).
    pub path_raw_truncated: bool,
}

/// `connect` / `accept` / `retransmit` endpoint details.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetInfo {
    /// "tcp" / "udp" ("" for unix sockets of other kinds).
    pub proto: String,
    /// "inet" / "inet6" / "unix".
    pub family: String,
    pub saddr: String,
    pub sport: i64,
    pub daddr: String,
    pub dport: i64,
}

/// Details of the on-demand syscall kinds (`symlink` ... `memfd`); each
/// kind fills the fields the catalogue lists for it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpInfo {
    /// The path created or changed (link/symlink: the new link; rename: the
    /// new name; unlink/mkdir/rmdir/chmod: the path), absolute and
    /// normalised as text ("" for fchmod).
    pub path: String,
    /// `path` as passed.
    pub path_raw: String,
    /// The other path (link: the existing file; symlink: what it points to,
    /// made absolute against the link's directory; rename: the old name).
    pub source: String,
    /// `source` as passed.
    pub source_raw: String,
    /// chmod / mkdir mode bits (-1 when none).
    pub mode: i64,
    /// ptrace request name (PTRACE_ATTACH, PTRACE_TRACEME, ...).
    pub request: String,
    /// ptrace target pid, and its name and executable when vigil knows the
    /// process ("" otherwise).
    pub target_pid: i64,
    pub target_name: String,
    pub target_exe: String,
    /// socket domain, type names (AF_PACKET, SOCK_RAW) and protocol number.
    pub domain: String,
    pub sock_type: String,
    pub protocol: i64,
    /// setuid/setgid family: the (effective) id asked for (-1: unchanged).
    pub requested_id: i64,
    /// setns / unshare: namespace type names (mnt, uts, ipc, user, pid, net, cgroup, time).
    pub ns_types: Vec<String>,
    /// memfd_create: name and flags; bpf: the map or program name;
    /// userfaultfd and mount: flags.
    pub name: String,
    pub flags: i64,
    /// dup: the duplicated fd and the new one (-1 when the call failed).
    pub oldfd: i64,
    pub newfd: i64,
    /// dup (the old fd) and listen: the socket's endpoints, read in the
    /// kernel (`None`: not a socket); the `net.*` fields read it.
    pub sock: Option<NetInfo>,
    /// listen: the backlog asked for.
    pub backlog: i64,
    /// chown family: the owner and group asked for (-1: unchanged).
    pub uid: i64,
    pub gid: i64,
    /// mount: the syscall (mount, umount2, move_mount, fsmount) and the
    /// file system type (mount(2) only); source in `source`, target in `path`.
    pub call: String,
    pub fstype: String,
    /// bpf: the command name (BPF_PROG_LOAD, ...) and, for map / program
    /// creation, the type created (BPF_PROG_TYPE_KPROBE, BPF_MAP_TYPE_HASH).
    pub cmd: String,
    pub prog_type: String,
    pub map_type: String,
    /// module: the parameters passed (the module file is in `path`).
    pub params: String,
    /// truncate: the length asked for.
    pub length: i64,
}

impl OpInfo {
    /// An empty detail: numbers that mean "none" at -1.
    pub fn new() -> OpInfo {
        OpInfo {
            mode: -1,
            requested_id: -1,
            uid: -1,
            gid: -1,
            oldfd: -1,
            newfd: -1,
            ..OpInfo::default()
        }
    }
}

/// The endpoints of an fd that is not a socket (dup, listen): all empty.
static NO_SOCKET: NetInfo = NetInfo {
    proto: String::new(),
    family: String::new(),
    saddr: String::new(),
    sport: 0,
    daddr: String::new(),
    dport: 0,
};

/// The type-specific part of an event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Detail {
    /// exec: everything is in the process.
    #[default]
    None,
    File(FileInfo),
    Net(NetInfo),
    Retransmit {
        net: NetInfo,
        /// TCP state name, e.g. "ESTABLISHED", "SYN_SENT".
        state: String,
    },
    Exit {
        code: i64,
        signal: i64,
    },
    Op(Box<OpInfo>),
}

/// One observation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventType,
    /// Nanoseconds since the epoch.
    pub time: i64,
    /// Syscall result where there is one (fd, 0, -errno); 0 otherwise.
    pub ret: i64,
    /// Thread id (host view); the process ids are in `proc`.
    pub tid: i64,
    pub proc: Arc<Process>,
    pub detail: Detail,
}

impl Event {
    /// An event of `kind` with an empty process and the detail that kind
    /// carries, all defaulted. Handy for tests and decoders.
    pub fn new(kind: EventType) -> Event {
        let detail = match kind {
            EventType::Exec => Detail::None,
            EventType::Open => Detail::File(FileInfo::default()),
            EventType::Connect | EventType::Accept => Detail::Net(NetInfo::default()),
            EventType::Retransmit => Detail::Retransmit {
                net: NetInfo::default(),
                state: String::new(),
            },
            EventType::Exit => Detail::Exit { code: 0, signal: 0 },
            _ => Detail::Op(Box::new(OpInfo::new())),
        };
        Event {
            kind,
            time: 0,
            ret: 0,
            tid: 0,
            proc: Arc::new(Process::default()),
            detail,
        }
    }

    pub fn file(&self) -> Option<&FileInfo> {
        match &self.detail {
            Detail::File(f) => Some(f),
            _ => None,
        }
    }

    /// The endpoints: a connect/accept/retransmit's, or the socket a dup
    /// or listen named.
    pub fn net(&self) -> Option<&NetInfo> {
        match &self.detail {
            Detail::Net(n) | Detail::Retransmit { net: n, .. } => Some(n),
            Detail::Op(_) if self.kind.carries_socket() => Some(
                self.op()
                    .and_then(|o| o.sock.as_ref())
                    .unwrap_or(&NO_SOCKET),
            ),
            _ => None,
        }
    }

    pub fn op(&self) -> Option<&OpInfo> {
        match &self.detail {
            Detail::Op(o) => Some(o),
            _ => None,
        }
    }

    /// ns the process had been alive at this event (0 if its start is unknown).
    pub fn proc_duration(&self) -> i64 {
        if self.proc.start > 0 && self.time >= self.proc.start {
            self.time - self.proc.start
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_round_trips() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>().unwrap(), t);
        }
        assert!("execve".parse::<EventType>().is_err());
    }

    #[test]
    fn on_demand_kinds() {
        assert!(EventType::Memfd.on_demand() && !EventType::Exit.on_demand());
        assert!(EventMask::ALL.contains(EventType::Memfd));
        assert!(EventType::ExecFailed.on_demand());
    }

    #[test]
    fn mask_ops() {
        let m = EventMask::of(&[EventType::Exec, EventType::Open]);
        assert!(m.contains(EventType::Exec) && !m.contains(EventType::Exit));
        assert_eq!(m.iter().count(), 2);
    }
}
