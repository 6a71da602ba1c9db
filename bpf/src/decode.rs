//! Decoding of the kernel's ring-buffer records (layouts in
//! `src/bpf/vigil.h`) into [`RawEvent`]: owned, kernel-free values.
//!
//! Why one file past ~800 lines (about 740 of code, the rest unit tests):
//! one reader per record layout of `vigil.h`, each mirroring its C struct
//! field by field beside the kind enums they share, so a layout change is one
//! diff read against one header.

use std::net::{Ipv4Addr, Ipv6Addr};

use vigil_engine::EventType;

/// Record kinds, numbered as in the kernel (`VG_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RawKind {
    Exec = 0,
    Open = 1,
    Connect = 2,
    Accept = 3,
    Retransmit = 4,
    Exit = 5,
    Fork = 6,
    /// An on-demand syscall kind (`RawBody::Op`; which one is [`OpKind`]).
    SysOp = 7,
}

impl RawKind {
    /// Number of record kinds (the kernel's `VG_NTYPES`).
    pub const COUNT: usize = records::VG_NTYPES as usize;

    pub const ALL: [RawKind; RawKind::COUNT] = [
        RawKind::Exec,
        RawKind::Open,
        RawKind::Connect,
        RawKind::Accept,
        RawKind::Retransmit,
        RawKind::Exit,
        RawKind::Fork,
        RawKind::SysOp,
    ];

    pub fn from_u8(v: u8) -> Option<RawKind> {
        RawKind::ALL.get(v as usize).copied()
    }

    /// The engine event type (fork has none: it only feeds the process
    /// table; the on-demand kinds are named by their [`OpKind`]).
    pub fn event_type(self) -> Option<EventType> {
        EventType::ALL.get(self as usize).copied()
    }

    pub fn as_str(self) -> &'static str {
        match self.event_type() {
            Some(t) => t.as_str(),
            None if self == RawKind::SysOp => "sysop",
            None => "fork",
        }
    }
}

/// Header fields every record has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEvent {
    pub kind: RawKind,
    /// Passed the first-stage filter: rules may be evaluated on it. Lifecycle
    /// records (exec/exit/fork) always arrive, for the process table.
    pub passed: bool,
    /// Some string in the record was cut at its kernel-side bound (the body
    /// says which).
    pub truncated: bool,
    pub tgid: u32,
    pub tid: u32,
    pub ppid: u32,
    /// CLOCK_BOOTTIME nanoseconds.
    pub ts_boot_ns: u64,
    pub cgroup_id: u64,
    pub comm: String,
    pub body: RawBody,
}

/// The per-kind part of a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawBody {
    Exec {
        uid: u32,
        gid: u32,
        loginuid: u32,
        start_boot_ns: u64,
        tty: bool,
        filename: String,
        argv: Vec<String>,
        /// Working directory from the kernel's dentry walk ("" if unknown).
        cwd: String,
        /// Which of the strings were cut at their kernel-side bound.
        cut: ExecCut,
        /// Capabilities and where the executable came from, read by the
        /// kernel at exec (None: the record did not carry them).
        attrs: Option<ExecKernelAttrs>,
    },
    Fork {
        start_boot_ns: u64,
        uid: u32,
        gid: u32,
    },
    Exit {
        code: i32,
        signal: i32,
    },
    Open {
        ret: i64,
        flags: u32,
        dirfd: i32,
        /// The path as passed ("" for open_by_handle_at and io_uring opens).
        path: String,
        /// For a failed relative `path`: the directory it is relative to (the
        /// cwd or `dirfd`'s path) from the kernel's dentry walk; "" otherwise.
        base_dir: String,
        /// For a successful open: the opened file's own path from the
        /// kernel's dentry walk (what the kernel resolved, relative to the
        /// task's root); "" otherwise.
        resolved: String,
        /// The opened file's identity (zeros when unknown).
        id: FileId,
        /// `path` was cut at its kernel-side bound (1023 bytes).
        path_cut: bool,
        /// The walk (`resolved` or `base_dir`) was cut.
        walk_cut: bool,
    },
    Net(RawNet),
    Op(RawOp),
}

/// The on-demand syscall kinds (`VO_*` in vigil.h), each hooked only while
/// asked for ([`crate::Sensors::set_ops`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    Symlink = 1,
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
    ExecFailed,
}

impl OpKind {
    pub const ALL: [OpKind; 23] = [
        OpKind::Symlink,
        OpKind::Link,
        OpKind::Rename,
        OpKind::Unlink,
        OpKind::Mkdir,
        OpKind::Rmdir,
        OpKind::Chmod,
        OpKind::Ptrace,
        OpKind::Socket,
        OpKind::Setuid,
        OpKind::Setgid,
        OpKind::Setns,
        OpKind::Unshare,
        OpKind::Memfd,
        OpKind::Dup,
        OpKind::Listen,
        OpKind::Chown,
        OpKind::Mount,
        OpKind::Bpf,
        OpKind::Userfaultfd,
        OpKind::Module,
        OpKind::Truncate,
        OpKind::ExecFailed,
    ];

    pub fn from_u8(v: u8) -> Option<OpKind> {
        OpKind::ALL.into_iter().find(|k| *k as u8 == v)
    }

    /// The event type name rules will use (`symlink`, `ptrace`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Symlink => "symlink",
            OpKind::Link => "link",
            OpKind::Rename => "rename",
            OpKind::Unlink => "unlink",
            OpKind::Mkdir => "mkdir",
            OpKind::Rmdir => "rmdir",
            OpKind::Chmod => "chmod",
            OpKind::Ptrace => "ptrace",
            OpKind::Socket => "socket",
            OpKind::Setuid => "setuid",
            OpKind::Setgid => "setgid",
            OpKind::Setns => "setns",
            OpKind::Unshare => "unshare",
            OpKind::Memfd => "memfd",
            OpKind::Dup => "dup",
            OpKind::Listen => "listen",
            OpKind::Chown => "chown",
            OpKind::Mount => "mount",
            OpKind::Bpf => "bpf",
            OpKind::Userfaultfd => "userfaultfd",
            OpKind::Module => "module",
            OpKind::Truncate => "truncate",
            OpKind::ExecFailed => "exec_failed",
        }
    }

    /// The engine event type of this kind (the same name).
    pub fn event_type(self) -> Option<EventType> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == self.as_str())
    }

    /// The kind of an on-demand engine event type.
    pub fn from_event_type(t: EventType) -> Option<OpKind> {
        OpKind::ALL.into_iter().find(|k| k.as_str() == t.as_str())
    }

    /// The hooks this kind attaches: its syscalls' exit tracepoints
    /// (`sys_exit_<syscall>`), and `io_uring_submit_req` for the path kinds.
    pub fn hooks(self) -> Vec<String> {
        let mut v: Vec<String> = self
            .syscalls()
            .iter()
            .map(|sc| format!("sys_exit_{sc}"))
            .collect();
        if self.uring_paths() {
            v.push("io_uring_submit_req".into());
        }
        v
    }

    /// Whether this kernel can report the kind: at least one of its
    /// syscalls has an exit tracepoint (`None` when tracefs is not mounted).
    pub fn available(self) -> Option<bool> {
        let mut any = None;
        for sc in self.syscalls() {
            match crate::tracefs::has_syscall_exit(sc) {
                Some(true) => return Some(true),
                Some(false) => any = Some(false),
                None => {}
            }
        }
        any
    }

    /// io_uring path operations (IORING_OP_RENAMEAT, UNLINKAT, MKDIRAT,
    /// SYMLINKAT, LINKAT) make this kind too; their paths are kept at
    /// submission, which needs the submission hook.
    pub fn uring_paths(self) -> bool {
        matches!(
            self,
            OpKind::Symlink
                | OpKind::Link
                | OpKind::Rename
                | OpKind::Unlink
                | OpKind::Mkdir
                | OpKind::Rmdir
        )
    }

    /// The syscalls (exit tracepoint names) that make this kind.
    pub fn syscalls(self) -> &'static [&'static str] {
        match self {
            OpKind::Symlink => &["symlink", "symlinkat"],
            OpKind::Link => &["link", "linkat"],
            OpKind::Rename => &["rename", "renameat", "renameat2"],
            OpKind::Unlink => &["unlink", "unlinkat"],
            OpKind::Mkdir => &["mkdir", "mkdirat"],
            OpKind::Rmdir => &["rmdir", "unlinkat"],
            OpKind::Chmod => &["chmod", "fchmod", "fchmodat", "fchmodat2"],
            OpKind::Ptrace => &["ptrace"],
            OpKind::Socket => &["socket"],
            OpKind::Setuid => &["setuid", "setreuid", "setresuid"],
            OpKind::Setgid => &["setgid", "setregid", "setresgid"],
            OpKind::Setns => &["setns"],
            OpKind::Unshare => &["unshare"],
            OpKind::Memfd => &["memfd_create"],
            // fcntl: only F_DUPFD / F_DUPFD_CLOEXEC are reported
            OpKind::Dup => &["dup", "dup2", "dup3", "fcntl"],
            OpKind::Listen => &["listen"],
            OpKind::Chown => &["chown", "fchown", "lchown", "fchownat"],
            // umount is umount2's tracepoint
            OpKind::Mount => &["mount", "umount", "move_mount", "fsmount"],
            OpKind::Bpf => &["bpf"],
            OpKind::Userfaultfd => &["userfaultfd"],
            OpKind::Module => &["init_module", "finit_module"],
            // by path only: ftruncate follows an open the open hooks see
            OpKind::Truncate => &["truncate"],
            OpKind::ExecFailed => &["execve", "execveat"],
        }
    }
}

/// An on-demand syscall: its raw arguments, up to three user strings
/// (paths, a memfd name, a mount's fs type) as passed, and what the kernel
/// read about the objects it named (a socket, an fd's file). Which argument
/// means what depends on `nr` (x86_64 numbering) and is named when the
/// engine event is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawOp {
    pub op: OpKind,
    /// x86_64 syscall number.
    pub nr: u32,
    pub ret: i64,
    pub args: [u64; 5],
    /// First string (symlink target, link/rename source, the path of
    /// unlink/mkdir/rmdir/chmod, the memfd name); "" if none.
    pub s1: String,
    /// Second string (the new link / new name); "" if none.
    pub s2: String,
    /// Third string (mount: the fs type); "" if none.
    pub s3: String,
    /// `s1` / `s2` / `s3` were cut at the kernel's bound (1023 bytes).
    pub s1_cut: bool,
    pub s2_cut: bool,
    pub s3_cut: bool,
    /// `s1` is the path of the fd argument from the kernel's dentry walk
    /// (fchmod, fchown, finit_module), not a user string.
    pub s1_walked: bool,
    /// bpf: the map or program type created (BPF_MAP_CREATE, BPF_PROG_LOAD).
    pub aux: u32,
    /// dup (the old fd) / listen (the fd): its socket's endpoints, read in
    /// the kernel (`None`: not a socket).
    pub sock: Option<RawNet>,
    /// The socket's type (SOCK_STREAM 1, SOCK_DGRAM 2, SOCK_RAW 3, ...).
    pub sock_type: u16,
}

/// Process attributes the kernel read at exec.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecKernelAttrs {
    /// Effective / permitted capability masks (bit N = capability N).
    pub cap_effective: u64,
    pub cap_permitted: u64,
    pub exe_from_memfd: bool,
    pub exe_deleted: bool,
    pub exe_upper_layer: bool,
}

/// Which exec strings the kernel cut at their bound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecCut {
    /// `filename` (512 bytes).
    pub filename: bool,
    /// argv (2 KiB).
    pub args: bool,
    /// The cwd walk (2 KiB / 48 components).
    pub cwd: bool,
}

/// An opened file's identity as the kernel sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FileId {
    /// The superblock's dev_t in the kernel's encoding (`MAJOR << 20 |
    /// MINOR`; see [`kernel_dev`]).
    pub dev: u32,
    pub ino: u64,
    /// The inode of the directory the file's dentry is in.
    pub parent_ino: u64,
}

/// A userspace `st_dev` (glibc's `makedev` encoding) as the kernel's
/// internal dev_t (`sb->s_dev`: `MAJOR << 20 | MINOR`).
pub fn kernel_dev(st_dev: u64) -> u32 {
    let major = libc::major(st_dev);
    let minor = libc::minor(st_dev);
    (major << 20) | (minor & 0xf_ffff)
}

/// connect / accept / retransmit endpoints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawNet {
    pub ret: i64,
    /// AF_INET (2), AF_INET6 (10), AF_UNIX (1).
    pub family: u16,
    /// IPPROTO_TCP (6), IPPROTO_UDP (17), 0 for unix.
    pub proto: u8,
    /// TCP state number (retransmit; also filled at accept/connect).
    pub state: u8,
    pub saddr: String,
    pub sport: u16,
    pub daddr: String,
    pub dport: u16,
    /// Unix socket path (`@name` for the abstract namespace).
    pub unix_path: String,
}

impl RawNet {
    pub fn family_name(&self) -> &'static str {
        match self.family {
            1 => "unix",
            2 => "inet",
            10 => "inet6",
            _ => "",
        }
    }
    pub fn proto_name(&self) -> &'static str {
        match self.proto {
            6 => "tcp",
            17 => "udp",
            _ => "",
        }
    }
}

/// Linux TCP state names, indexed by state number.
pub fn tcp_state_name(state: u8) -> &'static str {
    const NAMES: [&str; 13] = [
        "UNKNOWN",
        "ESTABLISHED",
        "SYN_SENT",
        "SYN_RECV",
        "FIN_WAIT1",
        "FIN_WAIT2",
        "TIME_WAIT",
        "CLOSE",
        "CLOSE_WAIT",
        "LAST_ACK",
        "LISTEN",
        "CLOSING",
        "NEW_SYN_RECV",
    ];
    NAMES.get(state as usize).copied().unwrap_or("UNKNOWN")
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record of {0} bytes is shorter than its {1}-byte layout")]
    Short(usize, usize),
    #[error("unknown record type {0}")]
    UnknownType(u8),
    #[error("unknown syscall kind {0}")]
    UnknownOp(u8),
}

/// The record layouts and constants of `src/bpf/vigil.h`, generated by
/// bindgen at build time (`build.rs`).
#[allow(non_camel_case_types, non_upper_case_globals, dead_code, clippy::all)]
mod records {
    include!(concat!(env!("OUT_DIR"), "/records.rs"));
}
use records::{ev_exec, ev_exit, ev_fork, ev_hdr, ev_net, ev_open, ev_sys};

const HDR: usize = size_of::<ev_hdr>();
/// Size of the fixed part of an open record.
const OPEN: usize = size_of::<ev_open>();
const F_PASSED: u8 = records::VF_PASSED as u8;
const F_TRUNC: u8 = records::VF_TRUNC as u8;
/// Open: the walk part is the opened file's own path.
const F_WALKED: u8 = records::VF_WALKED as u8;

// The layouts the kernel writes (and the tests below build by hand).
const _: () = assert!(HDR == 48 && OPEN == 88);
const _: () = assert!(size_of::<ev_exec>() == 96 && size_of::<ev_fork>() == 64);
const _: () = assert!(size_of::<ev_exit>() == 56 && size_of::<ev_net>() == 104);
const _: () = assert!(size_of::<ev_sys>() == 160);
// OpKind numbers are vigil.h's VO_* (contiguous, Symlink first, ExecFailed last).
const _: () = assert!(OpKind::Symlink as u32 == records::VO_SYMLINK);
const _: () = assert!(OpKind::Memfd as u32 == records::VO_MEMFD);
const _: () = assert!(OpKind::Dup as u32 == records::VO_DUP);
const _: () = assert!(OpKind::Truncate as u32 == records::VO_TRUNCATE);
const _: () = assert!(OpKind::ALL.len() as u32 == records::VO_MAX);
const _: () = assert!(OpKind::ExecFailed as u32 == records::VO_EXECFAIL);

/// x86_64 unlinkat(2) and its flag that makes it an rmdir.
const NR_UNLINKAT: u32 = 263;
const AT_REMOVEDIR: u64 = 0x200;

/// A generated record struct: plain integers and byte arrays (any bit
/// pattern is a valid value), so it can be read from record bytes.
trait Record: Sized {}
impl Record for ev_hdr {}
impl Record for ev_exec {}
impl Record for ev_fork {}
impl Record for ev_exit {}
impl Record for ev_open {}
impl Record for ev_net {}
impl Record for ev_sys {}

/// The fixed part of a record of layout `T`, checked to fit in `b`.
fn fixed<T: Record>(b: &[u8]) -> Result<T, DecodeError> {
    need(b, size_of::<T>())?;
    // SAFETY: `b` holds at least size_of::<T>() bytes (checked above), the
    // read is unaligned-safe, and `T` (a `Record`) is a C struct of integers
    // and integer arrays, valid for any bytes.
    Ok(unsafe { std::ptr::read_unaligned(b.as_ptr().cast::<T>()) })
}

/// The `len` bytes after the fixed part `at`, checked to fit.
fn tail(b: &[u8], at: usize, len: usize) -> Result<&[u8], DecodeError> {
    need(b, at + len)?;
    Ok(&b[at..at + len])
}

/// comm and other fixed `char[]` fields as the bytes they hold.
fn chars(c: &[core::ffi::c_char]) -> Vec<u8> {
    c.iter().map(|&x| x as u8).collect()
}

/// A C string: bytes up to the first NUL, lossily UTF-8.
fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn need(b: &[u8], n: usize) -> Result<(), DecodeError> {
    if b.len() < n {
        Err(DecodeError::Short(b.len(), n))
    } else {
        Ok(())
    }
}

fn addr(family: u16, b: &[u8]) -> String {
    match family {
        2 => Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string(),
        10 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&b[..16]);
            Ipv6Addr::from(a).to_string()
        }
        _ => String::new(),
    }
}

/// A dentry walk (components leaf first, each NUL-terminated) as an absolute path.
fn walk_to_path(b: &[u8]) -> String {
    let comps: Vec<&[u8]> = b.split(|&c| c == 0).filter(|c| !c.is_empty()).collect();
    let mut out = String::new();
    for c in comps.iter().rev() {
        out.push('/');
        out.push_str(&String::from_utf8_lossy(c));
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Split NUL-separated argv bytes.
fn split_args(b: &[u8]) -> Vec<String> {
    let b = b.strip_suffix(&[0]).unwrap_or(b);
    if b.is_empty() {
        return Vec::new();
    }
    b.split(|&c| c == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// Decode one ring-buffer record.
pub fn decode(b: &[u8]) -> Result<RawEvent, DecodeError> {
    let h: ev_hdr = fixed(b)?;
    let kind = RawKind::from_u8(h.type_).ok_or(DecodeError::UnknownType(h.type_))?;
    let flags = h.flags;
    let cut = |bit: u32| flags & bit as u8 != 0;
    let body = match kind {
        RawKind::Exec => {
            let e: ev_exec = fixed(b)?;
            let at = size_of::<ev_exec>();
            let (flen, alen, clen) = (
                e.filename_len as usize,
                e.args_len as usize,
                e.cwd_len as usize,
            );
            let data = tail(b, at, flen + alen + clen)?;
            let cwd_bytes = &data[flen + alen..];
            RawBody::Exec {
                uid: e.uid,
                gid: e.gid,
                loginuid: e.loginuid,
                start_boot_ns: e.start_ns,
                tty: e.tty != 0,
                filename: cstr(&data[..flen]),
                argv: split_args(&data[flen..flen + alen]),
                cwd: if clen > 0 {
                    walk_to_path(cwd_bytes)
                } else {
                    String::new()
                },
                attrs: {
                    let x = |bit: u32| e.exe_flags & bit as u8 != 0;
                    x(records::VX_KNOWN).then_some(ExecKernelAttrs {
                        cap_effective: e.cap_eff,
                        cap_permitted: e.cap_prm,
                        exe_from_memfd: x(records::VX_MEMFD),
                        exe_deleted: x(records::VX_DELETED),
                        exe_upper_layer: x(records::VX_UPPER),
                    })
                },
                cut: ExecCut {
                    filename: cut(records::VF_CUT_FILENAME),
                    args: cut(records::VF_CUT_ARGS),
                    cwd: cut(records::VF_CUT_CWD),
                },
            }
        }
        RawKind::Fork => {
            let f: ev_fork = fixed(b)?;
            RawBody::Fork {
                start_boot_ns: f.start_ns,
                uid: f.uid,
                gid: f.gid,
            }
        }
        RawKind::Exit => {
            let x: ev_exit = fixed(b)?;
            RawBody::Exit {
                code: x.code,
                signal: x.signal,
            }
        }
        RawKind::Open => {
            let o: ev_open = fixed(b)?;
            let (plen, blen) = (o.path_len as usize, o.base_len as usize);
            let data = tail(b, OPEN, plen + blen)?;
            let path = cstr(&data[..plen]);
            let walk = if blen > 0 {
                walk_to_path(&data[plen..])
            } else {
                String::new()
            };
            let (resolved, base_dir) = if flags & F_WALKED != 0 {
                (walk, String::new())
            } else {
                (String::new(), walk)
            };
            RawBody::Open {
                ret: o.ret,
                flags: o.flags,
                dirfd: o.dirfd,
                path,
                base_dir,
                resolved,
                id: FileId {
                    dev: o.dev,
                    ino: o.ino,
                    parent_ino: o.pino,
                },
                path_cut: cut(records::VF_CUT_PATH),
                walk_cut: cut(records::VF_CUT_WALK),
            }
        }
        RawKind::Connect | RawKind::Accept | RawKind::Retransmit => {
            let n: ev_net = fixed(b)?;
            let family = n.family;
            let p = tail(b, size_of::<ev_net>(), n.path_len as usize)?;
            let unix_path = if family == 1 && !p.is_empty() {
                if p[0] == 0 {
                    // abstract namespace: the name is every byte after the NUL
                    let name = &p[1..];
                    let end = name.iter().rposition(|&c| c != 0).map_or(0, |i| i + 1);
                    format!("@{}", String::from_utf8_lossy(&name[..end]))
                } else {
                    cstr(p)
                }
            } else {
                String::new()
            };
            RawBody::Net(RawNet {
                ret: n.ret,
                family,
                sport: n.sport,
                dport: n.dport,
                proto: n.proto,
                state: n.state,
                saddr: addr(family, &n.saddr),
                daddr: addr(family, &n.daddr),
                unix_path,
            })
        }
        RawKind::SysOp => {
            let o: ev_sys = fixed(b)?;
            let op = match OpKind::from_u8(o.op).ok_or(DecodeError::UnknownOp(o.op))? {
                // unlinkat(AT_REMOVEDIR) removes a directory
                OpKind::Unlink if o.nr == NR_UNLINKAT && o.arg[2] & AT_REMOVEDIR != 0 => {
                    OpKind::Rmdir
                }
                op => op,
            };
            let (l1, l2, l3) = (o.s1_len as usize, o.s2_len as usize, o.s3_len as usize);
            let data = tail(b, size_of::<ev_sys>(), l1 + l2 + l3)?;
            let s1_walked = flags & F_WALKED != 0;
            let k = &o.sock;
            let sock = (k.family != 0).then(|| RawNet {
                ret: 0,
                family: k.family,
                proto: k.proto,
                state: k.state,
                saddr: addr(k.family, &k.saddr),
                sport: k.sport,
                daddr: addr(k.family, &k.daddr),
                dport: k.dport,
                unix_path: String::new(),
            });
            RawBody::Op(RawOp {
                op,
                nr: o.nr,
                ret: o.ret,
                args: o.arg,
                s1: if s1_walked {
                    walk_to_path(&data[..l1])
                } else {
                    cstr(&data[..l1])
                },
                s2: cstr(&data[l1..l1 + l2]),
                s3: cstr(&data[l1 + l2..]),
                s1_cut: cut(records::VF_CUT_S1),
                s2_cut: cut(records::VF_CUT_S2),
                s3_cut: cut(records::VF_CUT_S3),
                s1_walked,
                aux: o.aux,
                sock,
                sock_type: k.type_,
            })
        }
    };
    Ok(RawEvent {
        kind,
        passed: flags & F_PASSED != 0,
        truncated: flags & F_TRUNC != 0,
        tgid: h.tgid,
        tid: h.tid,
        ppid: h.ppid,
        ts_boot_ns: h.ts,
        cgroup_id: h.cgroup_id,
        comm: cstr(&chars(&h.comm)),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const F_CUT1: u8 = records::VF_CUT_PATH as u8;
    const F_CUT2: u8 = records::VF_CUT_WALK as u8;

    fn hdr(kind: u8, flags: u8) -> Vec<u8> {
        let mut b = vec![0u8; HDR];
        b[0] = kind;
        b[1] = flags;
        b[4..8].copy_from_slice(&1234u32.to_ne_bytes());
        b[8..12].copy_from_slice(&1235u32.to_ne_bytes());
        b[12..16].copy_from_slice(&1u32.to_ne_bytes());
        b[16..24].copy_from_slice(&99u64.to_ne_bytes());
        b[24..32].copy_from_slice(&7u64.to_ne_bytes());
        b[32..37].copy_from_slice(b"nginx");
        b
    }

    /// An open record: header, ret 5, dirfd AT_FDCWD, `path` and `walk`.
    fn open_rec(flags: u8, path: &[u8], walk: &[u8]) -> Vec<u8> {
        let mut b = hdr(1, flags);
        b.resize(OPEN, 0);
        b[48..56].copy_from_slice(&5u64.to_ne_bytes());
        b[60..64].copy_from_slice(&(-100i32).to_ne_bytes());
        b[64..66].copy_from_slice(&(path.len() as u16).to_ne_bytes());
        b[66..68].copy_from_slice(&(walk.len() as u16).to_ne_bytes());
        b.extend_from_slice(path);
        b.extend_from_slice(walk);
        b
    }

    #[test]
    fn decodes_an_io_uring_open_as_its_walked_path() {
        let mut b = open_rec(F_PASSED | F_WALKED, b"", b"shadow\0etc\0");
        b[68..72].copy_from_slice(&((8u32 << 20) | 1).to_ne_bytes());
        b[72..80].copy_from_slice(&1234u64.to_ne_bytes());
        b[80..88].copy_from_slice(&99u64.to_ne_bytes());
        let ev = decode(&b).unwrap();
        assert_eq!(
            ev.body,
            RawBody::Open {
                ret: 5,
                flags: 0,
                dirfd: -100,
                path: String::new(),
                base_dir: String::new(),
                resolved: "/etc/shadow".into(),
                id: FileId {
                    dev: (8 << 20) | 1,
                    ino: 1234,
                    parent_ino: 99
                },
                path_cut: false,
                walk_cut: false,
            }
        );
    }

    #[test]
    fn a_successful_open_carries_raw_and_resolved_paths_and_what_was_cut() {
        let raw = b"/etc/././././\0";
        let b = open_rec(
            F_PASSED | F_WALKED | F_TRUNC | F_CUT1,
            raw,
            b"shadow\0etc\0",
        );
        let ev = decode(&b).unwrap();
        assert!(ev.truncated);
        let RawBody::Open {
            path,
            resolved,
            base_dir,
            path_cut,
            walk_cut,
            ..
        } = ev.body
        else {
            panic!("not an open")
        };
        assert_eq!(path, "/etc/././././");
        assert_eq!(resolved, "/etc/shadow");
        assert!(base_dir.is_empty());
        assert!(path_cut && !walk_cut);
    }

    #[test]
    fn kernel_dev_encoding() {
        // glibc makedev(8, 1) = 0x801; makedev(259, 70000) puts minor's high
        // bits above bit 20 of the userspace value
        assert_eq!(kernel_dev(libc::makedev(8, 1)), (8 << 20) | 1);
        assert_eq!(kernel_dev(libc::makedev(259, 70_000)), (259 << 20) | 70_000);
    }

    #[test]
    fn decodes_exec_with_argv() {
        let mut b = hdr(0, F_PASSED);
        b.resize(96, 0);
        b[48..52].copy_from_slice(&1000u32.to_ne_bytes());
        // exe_flags: known, from a memfd; effective capabilities
        b[73] = (records::VX_KNOWN | records::VX_MEMFD) as u8;
        b[80..88].copy_from_slice(&(1u64 << 21).to_ne_bytes());
        b[56..60].copy_from_slice(&u32::MAX.to_ne_bytes());
        let fname = b"/bin/sh\0";
        let args = b"sh\0-c\0true\0";
        b[60..62].copy_from_slice(&(fname.len() as u16).to_ne_bytes());
        b[62..64].copy_from_slice(&(args.len() as u16).to_ne_bytes());
        b[72] = 1;
        let cwd = b"www\0var\0";
        b[74..76].copy_from_slice(&(cwd.len() as u16).to_ne_bytes());
        b.extend_from_slice(fname);
        b.extend_from_slice(args);
        b.extend_from_slice(cwd);
        let ev = decode(&b).unwrap();
        assert_eq!(ev.kind, RawKind::Exec);
        assert!(ev.passed && !ev.truncated);
        let mut cut = b.clone();
        cut[1] |= F_TRUNC | F_CUT2;
        let RawBody::Exec { cut: c, .. } = decode(&cut).unwrap().body else {
            panic!("not an exec")
        };
        assert_eq!(
            c,
            ExecCut {
                filename: false,
                args: true,
                cwd: false
            }
        );
        assert_eq!((ev.tgid, ev.tid, ev.ppid), (1234, 1235, 1));
        assert_eq!(ev.comm, "nginx");
        match ev.body {
            RawBody::Exec {
                uid,
                loginuid,
                tty,
                filename,
                argv,
                cwd,
                cut,
                attrs,
                ..
            } => {
                let a = attrs.expect("the kernel's attributes");
                assert_eq!((a.cap_effective, a.cap_permitted), (1 << 21, 0));
                assert!(a.exe_from_memfd && !a.exe_deleted && !a.exe_upper_layer);
                assert_eq!(cut, ExecCut::default());
                assert_eq!(cwd, "/var/www");
                assert_eq!((uid, loginuid, tty), (1000, u32::MAX, true));
                assert_eq!(filename, "/bin/sh");
                assert_eq!(argv, ["sh", "-c", "true"]);
            }
            other => panic!("wrong body {other:?}"),
        }
    }

    #[test]
    fn decodes_inet_and_unix_net() {
        let mut b = hdr(2, F_PASSED);
        b.resize(104, 0);
        b[48..56].copy_from_slice(&(-115i64).to_ne_bytes());
        b[56..58].copy_from_slice(&2u16.to_ne_bytes());
        b[58..60].copy_from_slice(&40000u16.to_ne_bytes());
        b[60..62].copy_from_slice(&443u16.to_ne_bytes());
        b[62] = 6;
        b[64..68].copy_from_slice(&[127, 0, 0, 1]);
        b[80..84].copy_from_slice(&[10, 1, 2, 3]);
        let ev = decode(&b).unwrap();
        let RawBody::Net(n) = ev.body else {
            panic!("not net")
        };
        assert_eq!(n.ret, -115);
        assert_eq!((n.family_name(), n.proto_name()), ("inet", "tcp"));
        assert_eq!((n.saddr.as_str(), n.sport), ("127.0.0.1", 40000));
        assert_eq!((n.daddr.as_str(), n.dport), ("10.1.2.3", 443));

        let mut u = hdr(2, 0);
        u.resize(104, 0);
        u[56..58].copy_from_slice(&1u16.to_ne_bytes());
        let path = b"\0my-sock";
        u[96..98].copy_from_slice(&(path.len() as u16).to_ne_bytes());
        u.extend_from_slice(path);
        let ev = decode(&u).unwrap();
        assert!(!ev.passed);
        let RawBody::Net(n) = ev.body else {
            panic!("not net")
        };
        assert_eq!(n.unix_path, "@my-sock");
        assert_eq!(n.family_name(), "unix");
    }

    #[test]
    fn rejects_short_and_unknown() {
        assert_eq!(decode(&[0u8; 10]), Err(DecodeError::Short(10, HDR)));
        let b = hdr(9, 0);
        assert_eq!(decode(&b), Err(DecodeError::UnknownType(9)));
        let mut o = hdr(1, 0);
        o.resize(OPEN, 0);
        o[64..66].copy_from_slice(&500u16.to_ne_bytes());
        assert!(matches!(decode(&o), Err(DecodeError::Short(88, 588))));
    }

    #[test]
    fn open_with_base_dir_walk() {
        let mut o = open_rec(F_PASSED | F_TRUNC | F_CUT2, b"../x\0", b"c\0b\0a\0");
        o[48..56].copy_from_slice(&(-2i64).to_ne_bytes());
        let ev = decode(&o).unwrap();
        assert_eq!(
            ev.body,
            RawBody::Open {
                ret: -2,
                flags: 0,
                dirfd: -100,
                path: "../x".into(),
                base_dir: "/a/b/c".into(),
                resolved: String::new(),
                id: FileId::default(),
                path_cut: false,
                walk_cut: true,
            }
        );
        assert_eq!(walk_to_path(b""), "/");
    }

    #[test]
    fn decodes_a_symlink_with_both_strings_and_rejects_unknown_ops() {
        let mut b = hdr(7, F_PASSED | F_TRUNC | records::VF_CUT_S2 as u8);
        b.resize(size_of::<ev_sys>(), 0);
        let (s1, s2) = (b"/etc/shadow\0", b"x\0");
        b[48..56].copy_from_slice(&(-17i64).to_ne_bytes());
        b[56..64].copy_from_slice(&0x1000u64.to_ne_bytes());
        b[96..100].copy_from_slice(&266u32.to_ne_bytes());
        b[100..102].copy_from_slice(&(s1.len() as u16).to_ne_bytes());
        b[102..104].copy_from_slice(&(s2.len() as u16).to_ne_bytes());
        // `op` sits after the lengths, before the strings
        let mut rec = b.clone();
        let op_at = 104;
        rec[op_at] = records::VO_SYMLINK as u8;
        rec.extend_from_slice(s1);
        rec.extend_from_slice(s2);
        let ev = decode(&rec).unwrap();
        assert_eq!(ev.kind, RawKind::SysOp);
        assert_eq!(
            ev.body,
            RawBody::Op(RawOp {
                op: OpKind::Symlink,
                nr: 266,
                ret: -17,
                args: [0x1000, 0, 0, 0, 0],
                s1: "/etc/shadow".into(),
                s2: "x".into(),
                s3: String::new(),
                s1_cut: false,
                s2_cut: true,
                s3_cut: false,
                s1_walked: false,
                aux: 0,
                sock: None,
                sock_type: 0,
            })
        );
        rec[op_at] = 99;
        assert_eq!(decode(&rec), Err(DecodeError::UnknownOp(99)));
        for k in OpKind::ALL {
            assert_eq!(OpKind::from_u8(k as u8), Some(k));
            let t = k.event_type().expect("an engine type per kind");
            assert!(t.on_demand());
            assert_eq!(OpKind::from_event_type(t), Some(k));
        }
        assert_eq!(
            EventType::ALL.iter().filter(|t| t.on_demand()).count(),
            OpKind::ALL.len()
        );
    }

    /// An ev_sys record of kind `op`, syscall `nr`, with `strings` (s1, s2, s3).
    fn sys_rec(flags: u8, op: u32, nr: u32, strings: [&[u8]; 3]) -> Vec<u8> {
        let mut b = hdr(7, flags);
        b.resize(size_of::<ev_sys>(), 0);
        b[96..100].copy_from_slice(&nr.to_ne_bytes());
        b[100..102].copy_from_slice(&(strings[0].len() as u16).to_ne_bytes());
        b[102..104].copy_from_slice(&(strings[1].len() as u16).to_ne_bytes());
        b[104] = op as u8;
        b[106..108].copy_from_slice(&(strings[2].len() as u16).to_ne_bytes());
        for s in strings {
            b.extend_from_slice(s);
        }
        b
    }

    #[test]
    fn decodes_the_socket_of_a_dup_and_the_strings_of_a_mount() {
        let mut b = sys_rec(F_PASSED, records::VO_DUP, 33, [b"", b"", b""]);
        // struct op_sock at 112: family, type, sport, dport, proto, state, pad, saddr, daddr
        b[112..114].copy_from_slice(&2u16.to_ne_bytes());
        b[114..116].copy_from_slice(&1u16.to_ne_bytes());
        b[116..118].copy_from_slice(&40000u16.to_ne_bytes());
        b[118..120].copy_from_slice(&4444u16.to_ne_bytes());
        b[120] = 6;
        b[121] = 1;
        b[128..132].copy_from_slice(&[127, 0, 0, 1]);
        b[144..148].copy_from_slice(&[10, 1, 2, 3]);
        let RawBody::Op(o) = decode(&b).unwrap().body else {
            panic!("not an op")
        };
        assert_eq!(o.op, OpKind::Dup);
        assert_eq!(o.sock_type, 1);
        let n = o.sock.expect("a socket");
        assert_eq!(
            (
                n.proto_name(),
                n.saddr.as_str(),
                n.sport,
                n.daddr.as_str(),
                n.dport
            ),
            ("tcp", "127.0.0.1", 40000, "10.1.2.3", 4444)
        );
        let b = sys_rec(
            F_PASSED,
            records::VO_MOUNT,
            165,
            [b"/dev/sdb1\0", b"/mnt/x\0", b"ext4\0"],
        );
        let RawBody::Op(o) = decode(&b).unwrap().body else {
            panic!("not an op")
        };
        assert_eq!(
            (o.s1.as_str(), o.s2.as_str(), o.s3.as_str()),
            ("/dev/sdb1", "/mnt/x", "ext4")
        );
        assert!(o.sock.is_none());
        // fchown: s1 is the fd's walk (leaf first)
        let b = sys_rec(
            F_PASSED | F_WALKED,
            records::VO_CHOWN,
            93,
            [b"passwd\0etc\0", b"", b""],
        );
        let RawBody::Op(o) = decode(&b).unwrap().body else {
            panic!("not an op")
        };
        assert!(o.s1_walked);
        assert_eq!(o.s1, "/etc/passwd");
        // a string length past the record is an error, not a panic
        let mut b = sys_rec(F_PASSED, records::VO_MOUNT, 165, [b"", b"", b""]);
        b[106..108].copy_from_slice(&9u16.to_ne_bytes());
        assert!(matches!(decode(&b), Err(DecodeError::Short(..))));
    }

    #[test]
    fn state_names() {
        assert_eq!(tcp_state_name(2), "SYN_SENT");
        assert_eq!(tcp_state_name(200), "UNKNOWN");
    }
}
