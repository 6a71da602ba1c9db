//! The field catalogue: every field a rule, a template or a JSON event can
//! name, its type, the events that carry it, and how to read it from an
//! [`Event`]. The compiler, `vigil fields`, output templates, JSON alerts and
//! recorded/test events all go through this one table.
//!
//! Why one file past ~800 lines (about 740 of code, the rest unit tests):
//! it is one table, one entry per field with its type, kinds and reader, so a
//! new field is one entry and the catalogue `vigil fields` prints is the code.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value as Json;

use crate::event::{
    open_flag_names, open_flags_from_names, open_flags_write, Detail, Event, EventMask, EventType,
    Process,
};

/// The type of a field's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldType {
    Str,
    Int,
    Bool,
    /// A list of strings.
    StrList,
}

impl FieldType {
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Str => "string",
            FieldType::Int => "int",
            FieldType::Bool => "bool",
            FieldType::StrList => "array",
        }
    }
}

/// A field's value read from an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldValue<'a> {
    Str(std::borrow::Cow<'a, str>),
    Int(i64),
    Bool(bool),
    StrList(std::borrow::Cow<'a, [String]>),
}

impl FieldValue<'_> {
    pub fn to_json(&self) -> Json {
        match self {
            FieldValue::Str(s) => Json::String(s.to_string()),
            FieldValue::Int(i) => Json::from(*i),
            FieldValue::Bool(b) => Json::Bool(*b),
            FieldValue::StrList(l) => {
                Json::Array(l.iter().map(|s| Json::String(s.clone())).collect())
            }
        }
    }

    /// Text as shown in rendered outputs (lists joined by spaces).
    pub fn render(&self) -> String {
        match self {
            FieldValue::Str(s) => s.to_string(),
            FieldValue::Int(i) => i.to_string(),
            FieldValue::Bool(b) => b.to_string(),
            FieldValue::StrList(l) => l.join(" "),
        }
    }
}

/// One catalogue entry.
#[derive(Debug)]
pub struct FieldDef {
    pub id: Field,
    pub name: &'static str,
    pub ty: FieldType,
    /// The event types that carry this field.
    pub events: EventMask,
    pub desc: &'static str,
}

const ALL: EventMask = EventMask::ALL;
const OPEN: EventMask = EventMask(1 << 1);
/// connect, accept, retransmit, and the sockets dup and listen name.
const NET: EventMask =
    EventMask((1 << 2) | (1 << 3) | (1 << 4) | (1 << T::Dup as u32) | (1 << T::Listen as u32));
const RETRANS: EventMask = EventMask(1 << 4);
const EXIT: EventMask = EventMask(1 << 5);
const fn kinds(ts: &[EventType]) -> EventMask {
    let mut m = 0;
    let mut i = 0;
    while i < ts.len() {
        m |= 1 << ts[i] as u32;
        i += 1;
    }
    EventMask(m)
}
use EventType as T;
/// Kinds with a path (`fs.path`).
const FS: EventMask = kinds(&[
    T::ExecFailed,
    T::Symlink,
    T::Link,
    T::Rename,
    T::Unlink,
    T::Mkdir,
    T::Rmdir,
    T::Chmod,
    T::Chown,
    T::Truncate,
]);
/// Kinds with a second path (`fs.source`).
const FS2: EventMask = kinds(&[T::Symlink, T::Link, T::Rename]);
const MODE: EventMask = kinds(&[T::Chmod, T::Mkdir]);
const PTRACE: EventMask = kinds(&[T::Ptrace]);
const SOCKET: EventMask = kinds(&[T::Socket]);
const SETID: EventMask = kinds(&[T::Setuid, T::Setgid]);
const NS: EventMask = kinds(&[T::Setns, T::Unshare]);
const MEMFD: EventMask = kinds(&[T::Memfd]);
const DUP: EventMask = kinds(&[T::Dup]);
const LISTEN: EventMask = kinds(&[T::Listen]);
const CHOWN: EventMask = kinds(&[T::Chown]);
const MOUNT: EventMask = kinds(&[T::Mount]);
const BPF: EventMask = kinds(&[T::Bpf]);
const UFFD: EventMask = kinds(&[T::Userfaultfd]);
const MODULE: EventMask = kinds(&[T::Module]);
const TRUNCATE: EventMask = kinds(&[T::Truncate]);

macro_rules! catalogue {
    ($( $variant:ident => $name:literal, $ty:ident, $ev:expr, $desc:literal; )*) => {
        /// Every field, by identity. `Field as usize` indexes [`FIELDS`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u16)]
        pub enum Field { $($variant),* }

        /// The catalogue, in display order.
        pub static FIELDS: &[FieldDef] = &[
            $( FieldDef { id: Field::$variant, name: $name, ty: FieldType::$ty, events: $ev, desc: $desc } ),*
        ];
    };
}

catalogue! {
    EvtType => "evt.type", Str, ALL, "event type: exec, open, connect, accept, retransmit, exit, and the on-demand symlink, link, rename, unlink, mkdir, rmdir, chmod, ptrace, socket, setuid, setgid, setns, unshare, memfd, dup, listen, chown, mount, bpf, userfaultfd, module, truncate, and exec_failed (an execve/execveat the kernel refused)";
    EvtTime => "evt.time", Int, ALL, "event time, nanoseconds since the epoch";
    EvtRet => "evt.ret", Int, ALL, "syscall result where there is one (fd, 0, -errno)";
    ProcPid => "proc.pid", Int, ALL, "process id (host view)";
    ProcTid => "proc.tid", Int, ALL, "thread id (host view)";
    ProcPpid => "proc.ppid", Int, ALL, "parent process id";
    ProcName => "proc.name", Str, ALL, "comm: the kernel's 15-character process name";
    ProcExe => "proc.exe", Str, ALL, "executable path";
    ProcExeTruncated => "proc.exe_truncated", Bool, ALL, "the executable path was cut at the kernel's bound (512 bytes) and /proc could not complete it";
    ProcCmdline => "proc.cmdline", Str, ALL, "argv joined by spaces";
    ProcCmdlineTruncated => "proc.cmdline_truncated", Bool, ALL, "argv was longer than the kernel copies (2 KiB): proc.cmdline and proc.args hold its start";
    ProcArgs => "proc.args", StrList, ALL, "argv[1..]";
    ProcCwd => "proc.cwd", Str, ALL, "working directory when known";
    ProcCwdTruncated => "proc.cwd_truncated", Bool, ALL, "the working directory was cut at the kernel's bound (2 KiB or 48 levels)";
    ProcStart => "proc.start", Int, ALL, "process start time, ns since the epoch";
    ProcDuration => "proc.duration", Int, ALL, "ns the process had been alive at this event";
    ProcUid => "proc.uid", Int, ALL, "user id";
    ProcGid => "proc.gid", Int, ALL, "group id";
    ProcLoginuid => "proc.loginuid", Int, ALL, "audit login uid (-1 when unset)";
    UserName => "user.name", Str, ALL, "name of proc.uid";
    ProcPname => "proc.pname", Str, ALL, "parent's name (comm)";
    ProcPexe => "proc.pexe", Str, ALL, "parent's executable path";
    ProcPcmdline => "proc.pcmdline", Str, ALL, "parent's command line";
    ProcAncestors => "proc.ancestors", StrList, ALL, "names of the ancestors, parent first";
    ProcCgroup => "proc.cgroup", Str, ALL, "cgroup v2 path";
    ProcUnit => "proc.unit", Str, ALL, "systemd unit owning the cgroup (\"\" if none)";
    ContainerId => "container.id", Str, ALL, "container id from the cgroup path (\"\" on the host)";
    ProcTty => "proc.tty", Bool, ALL, "has a controlling terminal";
    ProcIncomplete => "proc.incomplete", Bool, ALL, "process state was incomplete when the event was seen";
    ProcCapEffective => "proc.cap_effective", StrList, ALL, "effective capabilities at exec, as names (CAP_SYS_ADMIN, ...): `\"CAP_SYS_ADMIN\" in proc.cap_effective`";
    ProcCapPermitted => "proc.cap_permitted", StrList, ALL, "permitted capabilities at exec, as names";
    ProcExeFromMemfd => "proc.exe_from_memfd", Bool, ALL, "the executable was an anonymous memory file (memfd_create + fexecve)";
    ProcExeDeleted => "proc.exe_deleted", Bool, ALL, "the executable had no link left on its file system at exec (deleted, or an unlinked O_TMPFILE; not a memfd)";
    ProcExeUpperLayer => "proc.exe_upper_layer", Bool, ALL, "the executable came from an overlayfs upper layer (a container's writable layer: written after the container started)";
    ProcEnv => "proc.env", Str, ALL, "the allow-listed environment variables present at exec (config key proc_env; default LD_PRELOAD, LD_LIBRARY_PATH, http_proxy, https_proxy, HTTP_PROXY, HTTPS_PROXY, GLIBC_TUNABLES) as NAME=value joined by spaces; never the whole environment";
    ProcEnvNames => "proc.env_names", StrList, ALL, "the names of the variables in proc.env: `\"LD_PRELOAD\" in proc.env_names`";
    FilePath => "file.path", Str, OPEN, "canonical absolute path: the name the rules use for a watched file reached through an alias (hard link, bind mount), else the path the kernel resolved (successful opens: symlinks, /proc/self/root, padding undone), else file.path_lexical";
    FilePathRaw => "file.path_raw", Str, OPEN, "the path exactly as the process passed it";
    FilePathLexical => "file.path_lexical", Str, OPEN, "file.path_raw made absolute and normalised as text (., .., // removed; no symlink followed)";
    FilePathResolved => "file.path_resolved", Str, OPEN, "the opened file's own path as the kernel resolved it (successful opens; \"\" otherwise)";
    FilePathTruncated => "file.path_truncated", Bool, OPEN, "file.path was built from a string the kernel cut at its bound";
    FilePathRawTruncated => "file.path_raw_truncated", Bool, OPEN, "the raw path was longer than the kernel copies (1 KiB): file.path_raw holds its start";
    FileFlags => "file.flags", StrList, OPEN, "open flag names (O_WRONLY, O_CREAT, ...)";
    FileWrite => "file.write", Bool, OPEN, "opened for writing";
    NetProto => "net.proto", Str, NET, "tcp / udp (dup, listen: of the socket the fd is; \"\" when it is not one)";
    NetFamily => "net.family", Str, NET, "inet / inet6 / unix (dup, listen: \"\" when the fd is not a socket)";
    NetSaddr => "net.saddr", Str, NET, "local address";
    NetSport => "net.sport", Int, NET, "local port";
    NetDaddr => "net.daddr", Str, NET, "remote address (connect: destination; accept: peer)";
    NetDport => "net.dport", Int, NET, "remote port";
    TcpState => "tcp.state", Str, RETRANS, "TCP state name at the retransmit";
    ExitCode => "exit.code", Int, EXIT, "exit status";
    ExitSignal => "exit.signal", Int, EXIT, "signal that ended the process (0 if none)";
    FsPathName => "fs.path", Str, FS, "the path created or changed (link, symlink: the new link; rename: the new name; unlink, mkdir, rmdir, chmod, chown: the path; fchmod, fchown: the fd's file as the kernel resolved it; exec_failed: the file the exec asked for), absolute and normalised as text";
    FsPathNameRaw => "fs.path_raw", Str, FS, "fs.path as the process passed it";
    FsPathSource => "fs.source", Str, FS2, "link: the existing file; symlink: what the link points to (relative targets made absolute against the link's directory); rename: the old name";
    FsPathSourceRaw => "fs.source_raw", Str, FS2, "fs.source as the process passed it";
    FsMode => "fs.mode", Int, MODE, "mode bits asked for (chmod, mkdir)";
    FsSetuid => "fs.setuid", Bool, MODE, "the mode has the setuid bit (04000)";
    FsSetgid => "fs.setgid", Bool, MODE, "the mode has the setgid bit (02000)";
    FsSticky => "fs.sticky", Bool, MODE, "the mode has the sticky bit (01000)";
    PtraceRequest => "ptrace.request", Str, PTRACE, "ptrace request name (PTRACE_ATTACH, PTRACE_SEIZE, PTRACE_TRACEME, PTRACE_POKETEXT, ...)";
    PtracePid => "ptrace.pid", Int, PTRACE, "the traced process's pid (0 for PTRACE_TRACEME)";
    PtraceTargetName => "ptrace.target_name", Str, PTRACE, "the traced process's name (comm) when known";
    PtraceTargetExe => "ptrace.target_exe", Str, PTRACE, "the traced process's executable when known";
    SocketDomain => "socket.domain", Str, SOCKET, "address family name (AF_INET, AF_PACKET, ...)";
    SocketType => "socket.type", Str, SOCKET, "socket type name (SOCK_STREAM, SOCK_RAW, ...)";
    SocketProtocol => "socket.protocol", Int, SOCKET, "protocol number as passed";
    IdRequested => "setid.requested", Int, SETID, "the (effective) user or group id asked for (-1: unchanged); proc.uid / proc.gid are the ids before";
    NsTypes => "ns.types", StrList, NS, "namespace types entered or unshared (mnt, uts, ipc, user, pid, net, cgroup, time; setns with nstype 0: none named)";
    MemfdName => "memfd.name", Str, MEMFD, "the name given to memfd_create";
    MemfdFlags => "memfd.flags", Int, MEMFD, "memfd_create flags";
    DupOldfd => "dup.oldfd", Int, DUP, "the fd duplicated (dup, dup2, dup3, fcntl F_DUPFD*); net.* describe it when it is a socket";
    DupNewfd => "dup.newfd", Int, DUP, "the new fd (dup2/dup3: the one asked for; -1 when the call failed)";
    ListenBacklog => "listen.backlog", Int, LISTEN, "the backlog asked for; net.saddr / net.sport are the listening endpoint";
    ChownUid => "chown.uid", Int, CHOWN, "the owner asked for (-1: unchanged)";
    ChownGid => "chown.gid", Int, CHOWN, "the group asked for (-1: unchanged)";
    MountCall => "mount.call", Str, MOUNT, "mount, umount2, move_mount or fsmount";
    MountSource => "mount.source", Str, MOUNT, "mount: the device or source as passed; move_mount: the path moved (\"\" when none)";
    MountTarget => "mount.target", Str, MOUNT, "the mount point (mount, umount2: as passed; move_mount: the destination), made absolute";
    MountFstype => "mount.fstype", Str, MOUNT, "the file system type (mount(2): ext4, tmpfs, proc, overlay, ...)";
    MountFlags => "mount.flags", Int, MOUNT, "the flags argument (mount: MS_*; umount2: MNT_*; move_mount: MOVE_MOUNT_*)";
    BpfCmd => "bpf.cmd", Str, BPF, "bpf(2) command name (BPF_PROG_LOAD, BPF_MAP_CREATE, BPF_LINK_CREATE, ...)";
    BpfProgType => "bpf.prog_type", Str, BPF, "BPF_PROG_LOAD: the program type (BPF_PROG_TYPE_KPROBE, ...; \"\" otherwise)";
    BpfMapType => "bpf.map_type", Str, BPF, "BPF_MAP_CREATE: the map type (BPF_MAP_TYPE_HASH, ...; \"\" otherwise)";
    BpfName => "bpf.name", Str, BPF, "BPF_PROG_LOAD / BPF_MAP_CREATE: the object's name (up to 15 bytes)";
    UffdFlags => "userfaultfd.flags", Int, UFFD, "userfaultfd flags (O_CLOEXEC, O_NONBLOCK, UFFD_USER_MODE_ONLY 1)";
    ModulePath => "module.path", Str, MODULE, "finit_module: the module file as the kernel resolved the fd (\"\" for init_module)";
    ModuleParams => "module.params", Str, MODULE, "the module parameters passed";
    TruncateLength => "truncate.length", Int, TRUNCATE, "truncate(2): the length asked for (fs.path is the file)";
}

/// Look a field up by name.
pub fn lookup(name: &str) -> Option<Field> {
    FIELDS.iter().find(|f| f.name == name).map(|f| f.id)
}

impl Field {
    pub fn def(self) -> &'static FieldDef {
        &FIELDS[self as usize]
    }
    pub fn name(self) -> &'static str {
        self.def().name
    }
}

/// The closest known field name to `name`, for "did you mean" hints.
pub fn suggest(name: &str) -> Option<&'static str> {
    FIELDS
        .iter()
        .map(|f| (edit_distance(name, f.name), f.name))
        .filter(|(d, n)| *d <= 3.max(n.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

/// Levenshtein distance (small strings only).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

impl Event {
    /// Read a field; `None` when this event type does not carry it.
    pub fn get(&self, id: Field) -> Option<FieldValue<'_>> {
        use std::borrow::Cow::{Borrowed, Owned};
        use FieldValue::*;
        let p = &*self.proc;
        let def = id.def();
        if !def.events.contains(self.kind) {
            return None;
        }
        Some(match id {
            Field::EvtType => Str(Borrowed(self.kind.as_str())),
            Field::EvtTime => Int(self.time),
            Field::EvtRet => Int(self.ret),
            Field::ProcPid => Int(p.pid),
            Field::ProcTid => Int(if self.tid != 0 { self.tid } else { p.pid }),
            Field::ProcPpid => Int(p.ppid),
            Field::ProcName => Str(Borrowed(&p.name)),
            Field::ProcExe => Str(Borrowed(&p.exe)),
            Field::ProcCmdline => Str(Borrowed(&p.cmdline)),
            Field::ProcCmdlineTruncated => Bool(p.cmdline_truncated),
            Field::ProcExeTruncated => Bool(p.exe_truncated),
            Field::ProcCwdTruncated => Bool(p.cwd_truncated),
            Field::ProcArgs => StrList(Borrowed(&p.args)),
            Field::ProcCwd => Str(Borrowed(&p.cwd)),
            Field::ProcStart => Int(p.start),
            Field::ProcDuration => Int(self.proc_duration()),
            Field::ProcUid => Int(p.uid),
            Field::ProcGid => Int(p.gid),
            Field::ProcLoginuid => Int(p.loginuid),
            Field::UserName => Str(Borrowed(&p.user_name)),
            Field::ProcPname => Str(Borrowed(&p.pname)),
            Field::ProcPexe => Str(Borrowed(&p.pexe)),
            Field::ProcPcmdline => Str(Borrowed(&p.pcmdline)),
            Field::ProcAncestors => StrList(Borrowed(&p.ancestors)),
            Field::ProcCgroup => Str(Borrowed(&p.cgroup)),
            Field::ProcUnit => Str(Borrowed(&p.unit)),
            Field::ContainerId => Str(Borrowed(&p.container_id)),
            Field::ProcTty => Bool(p.tty),
            Field::ProcIncomplete => Bool(p.incomplete),
            Field::ProcCapEffective => StrList(Borrowed(&p.cap_effective)),
            Field::ProcCapPermitted => StrList(Borrowed(&p.cap_permitted)),
            Field::ProcExeFromMemfd => Bool(p.exe_from_memfd),
            Field::ProcExeDeleted => Bool(p.exe_deleted),
            Field::ProcExeUpperLayer => Bool(p.exe_upper_layer),
            Field::ProcEnv => Str(Borrowed(&p.env)),
            Field::ProcEnvNames => StrList(Borrowed(&p.env_names)),
            Field::FilePath => Str(Borrowed(&self.file()?.path)),
            Field::FilePathRaw => Str(Borrowed(&self.file()?.path_raw)),
            Field::FilePathLexical => Str(Borrowed(&self.file()?.path_lexical)),
            Field::FilePathResolved => Str(Borrowed(&self.file()?.path_resolved)),
            Field::FilePathTruncated => Bool(self.file()?.path_truncated),
            Field::FilePathRawTruncated => Bool(self.file()?.path_raw_truncated),
            Field::FileFlags => StrList(Owned(open_flag_names(self.file()?.flags))),
            Field::FileWrite => Bool(open_flags_write(self.file()?.flags)),
            Field::NetProto => Str(Borrowed(&self.net()?.proto)),
            Field::NetFamily => Str(Borrowed(&self.net()?.family)),
            Field::NetSaddr => Str(Borrowed(&self.net()?.saddr)),
            Field::NetSport => Int(self.net()?.sport),
            Field::NetDaddr => Str(Borrowed(&self.net()?.daddr)),
            Field::NetDport => Int(self.net()?.dport),
            Field::TcpState => match &self.detail {
                Detail::Retransmit { state, .. } => Str(Borrowed(state)),
                _ => return None,
            },
            Field::ExitCode => match self.detail {
                Detail::Exit { code, .. } => Int(code),
                _ => return None,
            },
            Field::ExitSignal => match self.detail {
                Detail::Exit { signal, .. } => Int(signal),
                _ => return None,
            },
            Field::FsPathName => Str(Borrowed(&self.op()?.path)),
            Field::FsPathNameRaw => Str(Borrowed(&self.op()?.path_raw)),
            Field::FsPathSource => Str(Borrowed(&self.op()?.source)),
            Field::FsPathSourceRaw => Str(Borrowed(&self.op()?.source_raw)),
            Field::FsMode => Int(self.op()?.mode),
            Field::FsSetuid => Bool(self.op()?.mode & 0o4000 != 0 && self.op()?.mode >= 0),
            Field::FsSetgid => Bool(self.op()?.mode & 0o2000 != 0 && self.op()?.mode >= 0),
            Field::FsSticky => Bool(self.op()?.mode & 0o1000 != 0 && self.op()?.mode >= 0),
            Field::PtraceRequest => Str(Borrowed(&self.op()?.request)),
            Field::PtracePid => Int(self.op()?.target_pid),
            Field::PtraceTargetName => Str(Borrowed(&self.op()?.target_name)),
            Field::PtraceTargetExe => Str(Borrowed(&self.op()?.target_exe)),
            Field::SocketDomain => Str(Borrowed(&self.op()?.domain)),
            Field::SocketType => Str(Borrowed(&self.op()?.sock_type)),
            Field::SocketProtocol => Int(self.op()?.protocol),
            Field::IdRequested => Int(self.op()?.requested_id),
            Field::NsTypes => StrList(Borrowed(&self.op()?.ns_types)),
            Field::MemfdName => Str(Borrowed(&self.op()?.name)),
            Field::MemfdFlags => Int(self.op()?.flags),
            Field::DupOldfd => Int(self.op()?.oldfd),
            Field::DupNewfd => Int(self.op()?.newfd),
            Field::ListenBacklog => Int(self.op()?.backlog),
            Field::ChownUid => Int(self.op()?.uid),
            Field::ChownGid => Int(self.op()?.gid),
            Field::MountCall => Str(Borrowed(&self.op()?.call)),
            Field::MountSource => Str(Borrowed(&self.op()?.source)),
            Field::MountTarget => Str(Borrowed(&self.op()?.path)),
            Field::MountFstype => Str(Borrowed(&self.op()?.fstype)),
            Field::MountFlags => Int(self.op()?.flags),
            Field::BpfCmd => Str(Borrowed(&self.op()?.cmd)),
            Field::BpfProgType => Str(Borrowed(&self.op()?.prog_type)),
            Field::BpfMapType => Str(Borrowed(&self.op()?.map_type)),
            Field::BpfName => Str(Borrowed(&self.op()?.name)),
            Field::UffdFlags => Int(self.op()?.flags),
            Field::ModulePath => Str(Borrowed(&self.op()?.path)),
            Field::ModuleParams => Str(Borrowed(&self.op()?.params)),
            Field::TruncateLength => Int(self.op()?.length),
        })
    }

    /// Every field this event carries, as flat JSON (`{"proc.name": "bash", ...}`).
    /// This is both the alert's `output_fields` and the recorded-event format.
    pub fn to_flat_json(&self) -> serde_json::Map<String, Json> {
        let mut out = serde_json::Map::new();
        for def in FIELDS {
            if let Some(v) = self.get(def.id) {
                out.insert(def.name.to_string(), v.to_json());
            }
        }
        out
    }

    /// Build an event from flat JSON as written by [`Event::to_flat_json`]
    /// (recorded events, test cases). `evt.type` is required; every other
    /// field defaults to empty/zero. Derived fields (`proc.duration`,
    /// `file.write`) are accepted but recomputed.
    pub fn from_flat_json(obj: &serde_json::Map<String, Json>) -> Result<Event, EventError> {
        let kind = match obj.get("evt.type") {
            Some(Json::String(s)) => s.parse::<EventType>().map_err(|e| EventError::BadValue {
                field: "evt.type".into(),
                msg: e.to_string(),
            })?,
            Some(_) => {
                return Err(EventError::BadValue {
                    field: "evt.type".into(),
                    msg: "expected a string".into(),
                })
            }
            None => return Err(EventError::MissingType),
        };
        let mut ev = Event::new(kind);
        let mut p = Process {
            loginuid: -1,
            ..Process::default()
        };
        let mut duration: Option<i64> = None;
        let mut write: Option<bool> = None;
        let mut env_names: Option<Vec<String>> = None;
        for (key, val) in obj {
            let id = lookup(key).ok_or_else(|| EventError::UnknownField {
                field: key.clone(),
                suggestion: suggest(key).map(str::to_string),
            })?;
            let def = id.def();
            if !def.events.contains(kind) {
                return Err(EventError::NotOnType {
                    field: key.clone(),
                    kind,
                });
            }
            let bad = |msg: &str| EventError::BadValue {
                field: key.clone(),
                msg: msg.to_string(),
            };
            let s = || {
                val.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad("expected a string"))
            };
            let i = || {
                val.as_i64()
                    .or_else(|| val.as_u64().map(|u| u as i64))
                    .ok_or_else(|| bad("expected an integer"))
            };
            let b = || val.as_bool().ok_or_else(|| bad("expected true or false"));
            let list = || -> Result<Vec<String>, EventError> {
                match val {
                    Json::Array(a) => a
                        .iter()
                        .map(|x| {
                            x.as_str()
                                .map(str::to_string)
                                .ok_or_else(|| bad("expected an array of strings"))
                        })
                        .collect(),
                    Json::String(s) => Ok(s.split_whitespace().map(str::to_string).collect()),
                    _ => Err(bad("expected an array of strings")),
                }
            };
            match def.name {
                "evt.type" => {}
                "evt.time" => ev.time = i()?,
                "evt.ret" => ev.ret = i()?,
                "proc.pid" => p.pid = i()?,
                "proc.tid" => ev.tid = i()?,
                "proc.ppid" => p.ppid = i()?,
                "proc.name" => p.name = s()?,
                "proc.exe" => p.exe = s()?,
                "proc.cmdline" => p.cmdline = s()?,
                "proc.cmdline_truncated" => p.cmdline_truncated = b()?,
                "proc.exe_truncated" => p.exe_truncated = b()?,
                "proc.cwd_truncated" => p.cwd_truncated = b()?,
                "proc.args" => p.args = list()?,
                "proc.cwd" => p.cwd = s()?,
                "proc.start" => p.start = i()?,
                "proc.duration" => duration = Some(i()?),
                "proc.uid" => p.uid = i()?,
                "proc.gid" => p.gid = i()?,
                "proc.loginuid" => p.loginuid = i()?,
                "user.name" => p.user_name = s()?,
                "proc.pname" => p.pname = s()?,
                "proc.pexe" => p.pexe = s()?,
                "proc.pcmdline" => p.pcmdline = s()?,
                "proc.ancestors" => p.ancestors = list()?,
                "proc.cgroup" => p.cgroup = s()?,
                "proc.unit" => p.unit = s()?,
                "container.id" => p.container_id = s()?,
                "proc.tty" => p.tty = b()?,
                "proc.incomplete" => p.incomplete = b()?,
                "proc.cap_effective" | "proc.cap_permitted" => {
                    let names = list()?;
                    if let Some(n) = names.iter().find(|n| !is_capability_name(n)) {
                        return Err(bad(&format!("unknown capability `{n}`")));
                    }
                    if def.name == "proc.cap_effective" {
                        p.cap_effective = names.into();
                    } else {
                        p.cap_permitted = names.into();
                    }
                }
                "proc.exe_from_memfd" => p.exe_from_memfd = b()?,
                "proc.exe_deleted" => p.exe_deleted = b()?,
                "proc.exe_upper_layer" => p.exe_upper_layer = b()?,
                "proc.env" => p.env = s()?,
                // derived from proc.env: a test case may give the names alone
                "proc.env_names" => env_names = Some(list()?),
                "file.path"
                | "file.path_raw"
                | "file.path_lexical"
                | "file.path_resolved"
                | "file.path_truncated"
                | "file.path_raw_truncated"
                | "file.flags"
                | "file.write" => {
                    if let Detail::File(f) = &mut ev.detail {
                        match def.name {
                            "file.path" => f.path = s()?,
                            "file.path_raw" => f.path_raw = s()?,
                            "file.path_lexical" => f.path_lexical = s()?,
                            "file.path_resolved" => f.path_resolved = s()?,
                            "file.path_truncated" => f.path_truncated = b()?,
                            "file.path_raw_truncated" => f.path_raw_truncated = b()?,
                            "file.flags" => {
                                f.flags = open_flags_from_names(&list()?)
                                    .map_err(|flag| bad(&format!("unknown open flag `{flag}`")))?
                            }
                            _ => write = Some(b()?),
                        }
                    }
                }
                "tcp.state" => {
                    if let Detail::Retransmit { state, .. } = &mut ev.detail {
                        *state = s()?;
                    }
                }
                "exit.code" | "exit.signal" => {
                    if let Detail::Exit { code, signal } = &mut ev.detail {
                        if def.name == "exit.code" {
                            *code = i()?;
                        } else {
                            *signal = i()?;
                        }
                    }
                }
                op_field
                    if op_field.starts_with("fs.")
                        || op_field.starts_with("ptrace.")
                        || op_field.starts_with("socket.")
                        || op_field.starts_with("setid.")
                        || op_field.starts_with("ns.")
                        || op_field.starts_with("memfd.")
                        || op_field.starts_with("dup.")
                        || op_field.starts_with("listen.")
                        || op_field.starts_with("chown.")
                        || op_field.starts_with("mount.")
                        || op_field.starts_with("bpf.")
                        || op_field.starts_with("userfaultfd.")
                        || op_field.starts_with("module.")
                        || op_field.starts_with("truncate.") =>
                {
                    let Detail::Op(o) = &mut ev.detail else {
                        continue;
                    };
                    match op_field {
                        "fs.path" => o.path = s()?,
                        "fs.path_raw" => o.path_raw = s()?,
                        "fs.source" => o.source = s()?,
                        "fs.source_raw" => o.source_raw = s()?,
                        "fs.mode" => o.mode = i()?,
                        // derived from fs.mode: a test case may give the
                        // bits alone
                        "fs.setuid" | "fs.setgid" | "fs.sticky" => {
                            let bit = match op_field {
                                "fs.setuid" => 0o4000,
                                "fs.setgid" => 0o2000,
                                _ => 0o1000,
                            };
                            o.mode = o.mode.max(0);
                            if b()? {
                                o.mode |= bit;
                            } else {
                                o.mode &= !bit;
                            }
                        }
                        "ptrace.request" => o.request = s()?,
                        "ptrace.pid" => o.target_pid = i()?,
                        "ptrace.target_name" => o.target_name = s()?,
                        "ptrace.target_exe" => o.target_exe = s()?,
                        "socket.domain" => o.domain = s()?,
                        "socket.type" => o.sock_type = s()?,
                        "socket.protocol" => o.protocol = i()?,
                        "setid.requested" => o.requested_id = i()?,
                        "ns.types" => o.ns_types = list()?,
                        "memfd.name" => o.name = s()?,
                        "memfd.flags" | "mount.flags" | "userfaultfd.flags" => o.flags = i()?,
                        "dup.oldfd" => o.oldfd = i()?,
                        "dup.newfd" => o.newfd = i()?,
                        "listen.backlog" => o.backlog = i()?,
                        "chown.uid" => o.uid = i()?,
                        "chown.gid" => o.gid = i()?,
                        "mount.call" => o.call = s()?,
                        "mount.source" => o.source = s()?,
                        "mount.target" | "module.path" => o.path = s()?,
                        "mount.fstype" => o.fstype = s()?,
                        "bpf.cmd" => o.cmd = s()?,
                        "bpf.prog_type" => o.prog_type = s()?,
                        "bpf.map_type" => o.map_type = s()?,
                        "bpf.name" => o.name = s()?,
                        "module.params" => o.params = s()?,
                        "truncate.length" => o.length = i()?,
                        other => unreachable!("field {other} has no writer"),
                    }
                }
                net_field => {
                    let n = match &mut ev.detail {
                        Detail::Net(n) | Detail::Retransmit { net: n, .. } => n,
                        // dup / listen: the socket the fd is
                        Detail::Op(o) => o.sock.get_or_insert_with(Default::default),
                        _ => continue,
                    };
                    match net_field {
                        "net.proto" => n.proto = s()?,
                        "net.family" => n.family = s()?,
                        "net.saddr" => n.saddr = s()?,
                        "net.sport" => n.sport = i()?,
                        "net.daddr" => n.daddr = s()?,
                        "net.dport" => n.dport = i()?,
                        other => unreachable!("field {other} has no writer"),
                    }
                }
            }
        }
        // Derived fields given explicitly (test cases): honour them.
        if let Some(d) = duration {
            if p.start == 0 {
                p.start = ev.time - d;
                if p.start <= 0 {
                    // Keep duration meaningful with a zero/absent evt.time.
                    ev.time = d + 1;
                    p.start = 1;
                }
            }
        }
        if let (Some(w), Detail::File(f)) = (write, &mut ev.detail) {
            if w != open_flags_write(f.flags) {
                // An explicit `file.write` without matching flags: add O_WRONLY
                // or clear the write bits so the two agree.
                if w {
                    f.flags |= 0o1;
                } else {
                    f.flags &= !(0o1 | 0o2 | 0o100 | 0o1000 | 0o2000);
                }
            }
        }
        // proc.env_names given (recorded events, test cases) is exact; a
        // name missing from proc.env is added to it with an empty value
        match env_names {
            Some(names) => {
                for n in &names {
                    let entry = format!("{n}=");
                    if !(p.env.starts_with(&entry) || p.env.contains(&format!(" {entry}"))) {
                        if !p.env.is_empty() {
                            p.env.push(' ');
                        }
                        p.env.push_str(&entry);
                    }
                }
                p.env_names = names;
            }
            None => p.env_names = env_var_names(&p.env),
        }
        if p.cmdline.is_empty() && !p.name.is_empty() {
            let mut parts = vec![p.name.clone()];
            parts.extend(p.args.iter().cloned());
            p.cmdline = parts.join(" ");
        }
        if let Detail::Op(o) = &mut ev.detail {
            // one path given: the raw forms default to it
            if o.path_raw.is_empty() {
                o.path_raw = o.path.clone();
            }
            if o.source_raw.is_empty() {
                o.source_raw = o.source.clone();
            }
        }
        if let Detail::File(f) = &mut ev.detail {
            if f.path_raw.is_empty() {
                f.path_raw = f.path.clone();
            }
            // a recorded or hand-written event names one path: the others
            // default to it (no alias)
            if f.path_lexical.is_empty() {
                f.path_lexical = f.path.clone();
            }
        }
        ev.proc = Arc::new(p);
        Ok(ev)
    }
}

/// `CAP_SYS_ADMIN`, or `CAP_N` for a capability without a name here.
fn is_capability_name(n: &str) -> bool {
    crate::event::CAPABILITIES.contains(&n)
        || n.strip_prefix("CAP_")
            .is_some_and(|d| d.parse::<u8>().is_ok_and(|b| b < 64))
}

/// The names of `NAME=value` entries joined by spaces (a space inside a
/// value may split it: a word without `=` is not a name).
fn env_var_names(env: &str) -> Vec<String> {
    env.split(' ')
        .filter_map(|w| w.split_once('=').map(|(n, _)| n))
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .map(str::to_string)
        .collect()
}

/// A flat-JSON event that does not fit the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("missing `evt.type`")]
    MissingType,
    #[error("unknown field `{field}`{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownField {
        field: String,
        suggestion: Option<String>,
    },
    #[error("field `{field}` is not carried by `{kind}` events")]
    NotOnType { field: String, kind: EventType },
    #[error("field `{field}`: {msg}")]
    BadValue { field: String, msg: String },
}

/// Every field with its type and description, for `vigil fields`.
pub fn catalogue() -> BTreeMap<&'static str, &'static FieldDef> {
    FIELDS.iter().map(|f| (f.name, f)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_field_has_a_reader() {
        for t in EventType::ALL {
            let ev = Event::new(t);
            for def in FIELDS {
                let v = ev.get(def.id);
                assert_eq!(v.is_some(), def.events.contains(t), "{} on {t}", def.name);
                if let Some(v) = v {
                    let ok = matches!(
                        (def.ty, &v),
                        (FieldType::Str, FieldValue::Str(_))
                            | (FieldType::Int, FieldValue::Int(_))
                            | (FieldType::Bool, FieldValue::Bool(_))
                            | (FieldType::StrList, FieldValue::StrList(_))
                    );
                    assert!(ok, "{} has type {:?} but read {:?}", def.name, def.ty, v);
                }
            }
        }
    }

    #[test]
    fn ids_index_the_table() {
        for (i, def) in FIELDS.iter().enumerate() {
            assert_eq!(def.id as usize, i);
            assert_eq!(lookup(def.name), Some(def.id));
        }
    }

    #[test]
    fn flat_json_round_trip() {
        let j = json!({
            "evt.type": "open", "evt.time": 5_000_000_000i64, "proc.name": "cat",
            "proc.args": ["/etc/shadow"], "proc.start": 1_000_000_000i64,
            "file.path": "/etc/shadow", "file.flags": ["O_RDONLY", "O_CLOEXEC"], "proc.ancestors": ["bash", "sshd"]
        });
        let ev = Event::from_flat_json(j.as_object().unwrap()).unwrap();
        assert_eq!(ev.proc.cmdline, "cat /etc/shadow");
        assert_eq!(ev.proc_duration(), 4_000_000_000);
        let flat = ev.to_flat_json();
        assert_eq!(flat["file.write"], json!(false));
        assert_eq!(flat["file.path_raw"], json!("/etc/shadow"));
        let again = Event::from_flat_json(&flat).unwrap();
        assert_eq!(again, ev);
    }

    #[test]
    fn flat_json_errors_name_the_field() {
        let e = Event::from_flat_json(
            json!({"evt.type": "exec", "proc.nmae": "x"})
                .as_object()
                .unwrap(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown field `proc.nmae` (did you mean `proc.name`?)"
        );
        let e = Event::from_flat_json(
            json!({"evt.type": "exec", "file.path": "/x"})
                .as_object()
                .unwrap(),
        )
        .unwrap_err();
        assert!(matches!(e, EventError::NotOnType { .. }));
        let e = Event::from_flat_json(
            json!({"evt.type": "exec", "proc.pid": "1"})
                .as_object()
                .unwrap(),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "field `proc.pid`: expected an integer");
        assert_eq!(
            Event::from_flat_json(&serde_json::Map::new()).unwrap_err(),
            EventError::MissingType
        );
    }

    #[test]
    fn process_attributes_from_flat_json() {
        let j = json!({
            "evt.type": "exec", "evt.time": 9, "proc.start": 2,
            "proc.cap_effective": ["CAP_SYS_ADMIN", "CAP_45"],
            "proc.exe_from_memfd": true,
            "proc.env": "LD_PRELOAD=/tmp/x.so http_proxy=http://p:3128"
        });
        let ev = Event::from_flat_json(j.as_object().unwrap()).unwrap();
        assert_eq!(&*ev.proc.cap_effective, ["CAP_SYS_ADMIN", "CAP_45"]);
        assert!(ev.proc.cap_permitted.is_empty());
        assert!(ev.proc.exe_from_memfd && !ev.proc.exe_deleted);
        assert_eq!(ev.proc.env_names, ["LD_PRELOAD", "http_proxy"]);
        let flat = ev.to_flat_json();
        assert_eq!(flat["proc.env_names"], json!(["LD_PRELOAD", "http_proxy"]));
        assert_eq!(Event::from_flat_json(&flat).unwrap(), ev);
        // the names alone: each gets an empty value
        let j = json!({"evt.type": "open", "proc.env_names": ["LD_PRELOAD"]});
        let ev = Event::from_flat_json(j.as_object().unwrap()).unwrap();
        assert_eq!(ev.proc.env, "LD_PRELOAD=");
        // a value with a space: the given names stay exact
        let j = json!({"evt.type": "exec", "proc.env": "http_proxy=a b=c", "proc.env_names": ["http_proxy"]});
        let ev = Event::from_flat_json(j.as_object().unwrap()).unwrap();
        assert_eq!(ev.proc.env_names, ["http_proxy"]);
        let e = Event::from_flat_json(
            json!({"evt.type": "exec", "proc.cap_permitted": ["CAP_SYS_ADNIM"]})
                .as_object()
                .unwrap(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "field `proc.cap_permitted`: unknown capability `CAP_SYS_ADNIM`"
        );
    }

    #[test]
    fn duration_given_without_start() {
        let j = json!({"evt.type": "open", "proc.duration": 6_000_000_000i64});
        let ev = Event::from_flat_json(j.as_object().unwrap()).unwrap();
        assert_eq!(ev.proc_duration(), 6_000_000_000);
    }
}
