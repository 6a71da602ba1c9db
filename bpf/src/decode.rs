//! Decoding of the kernel's ring-buffer records (layouts in
//! `src/bpf/vigil.h`) into [`RawEvent`]: owned, kernel-free values.

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
}

impl RawKind {
    pub const ALL: [RawKind; 7] = [
        RawKind::Exec,
        RawKind::Open,
        RawKind::Connect,
        RawKind::Accept,
        RawKind::Retransmit,
        RawKind::Exit,
        RawKind::Fork,
    ];

    pub fn from_u8(v: u8) -> Option<RawKind> {
        RawKind::ALL.get(v as usize).copied()
    }

    /// The engine event type (fork has none: it only feeds the process table).
    pub fn event_type(self) -> Option<EventType> {
        EventType::ALL.get(self as usize).copied()
    }

    pub fn as_str(self) -> &'static str {
        match self.event_type() {
            Some(t) => t.as_str(),
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
}

const HDR: usize = 48;
/// Size of the fixed part of an open record.
const OPEN: usize = 88;
const F_PASSED: u8 = 1;
const F_TRUNC: u8 = 2;
/// Open: the walk part is the opened file's own path.
const F_WALKED: u8 = 4;
/// Which string was cut (`VF_CUT_*`: the meaning depends on the kind).
const F_CUT1: u8 = 8;
const F_CUT2: u8 = 16;
const F_CUT3: u8 = 32;

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_ne_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_ne_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_ne_bytes(a)
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
    need(b, HDR)?;
    let kind = RawKind::from_u8(b[0]).ok_or(DecodeError::UnknownType(b[0]))?;
    let flags = b[1];
    let body = match kind {
        RawKind::Exec => {
            need(b, 80)?;
            let flen = u16_at(b, 60) as usize;
            let alen = u16_at(b, 62) as usize;
            let clen = u16_at(b, 74) as usize;
            need(b, 80 + flen + alen + clen)?;
            let cwd_bytes = &b[80 + flen + alen..80 + flen + alen + clen];
            RawBody::Exec {
                uid: u32_at(b, 48),
                gid: u32_at(b, 52),
                loginuid: u32_at(b, 56),
                start_boot_ns: u64_at(b, 64),
                tty: b[72] != 0,
                filename: cstr(&b[80..80 + flen]),
                argv: split_args(&b[80 + flen..80 + flen + alen]),
                cwd: if clen > 0 {
                    walk_to_path(cwd_bytes)
                } else {
                    String::new()
                },
                cut: ExecCut {
                    filename: flags & F_CUT1 != 0,
                    args: flags & F_CUT2 != 0,
                    cwd: flags & F_CUT3 != 0,
                },
            }
        }
        RawKind::Fork => {
            need(b, 64)?;
            RawBody::Fork {
                start_boot_ns: u64_at(b, 48),
                uid: u32_at(b, 56),
                gid: u32_at(b, 60),
            }
        }
        RawKind::Exit => {
            need(b, 56)?;
            RawBody::Exit {
                code: u32_at(b, 48) as i32,
                signal: u32_at(b, 52) as i32,
            }
        }
        RawKind::Open => {
            need(b, OPEN)?;
            let plen = u16_at(b, 64) as usize;
            let blen = u16_at(b, 66) as usize;
            need(b, OPEN + plen + blen)?;
            let path = cstr(&b[OPEN..OPEN + plen]);
            let walk = &b[OPEN + plen..OPEN + plen + blen];
            let walk = if blen > 0 {
                walk_to_path(walk)
            } else {
                String::new()
            };
            let (resolved, base_dir) = if flags & F_WALKED != 0 {
                (walk, String::new())
            } else {
                (String::new(), walk)
            };
            RawBody::Open {
                ret: u64_at(b, 48) as i64,
                flags: u32_at(b, 56),
                dirfd: u32_at(b, 60) as i32,
                path,
                base_dir,
                resolved,
                id: FileId {
                    dev: u32_at(b, 68),
                    ino: u64_at(b, 72),
                    parent_ino: u64_at(b, 80),
                },
                path_cut: flags & F_CUT1 != 0,
                walk_cut: flags & F_CUT2 != 0,
            }
        }
        RawKind::Connect | RawKind::Accept | RawKind::Retransmit => {
            need(b, 104)?;
            let family = u16_at(b, 56);
            let plen = u16_at(b, 96) as usize;
            need(b, 104 + plen)?;
            let unix_path = if family == 1 && plen > 0 {
                let p = &b[104..104 + plen];
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
                ret: u64_at(b, 48) as i64,
                family,
                sport: u16_at(b, 58),
                dport: u16_at(b, 60),
                proto: b[62],
                state: b[63],
                saddr: addr(family, &b[64..80]),
                daddr: addr(family, &b[80..96]),
                unix_path,
            })
        }
    };
    Ok(RawEvent {
        kind,
        passed: flags & F_PASSED != 0,
        truncated: flags & F_TRUNC != 0,
        tgid: u32_at(b, 4),
        tid: u32_at(b, 8),
        ppid: u32_at(b, 12),
        ts_boot_ns: u64_at(b, 16),
        cgroup_id: u64_at(b, 24),
        comm: cstr(&b[32..48]),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        b.resize(80, 0);
        b[48..52].copy_from_slice(&1000u32.to_ne_bytes());
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
                ..
            } => {
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
    fn state_names() {
        assert_eq!(tcp_state_name(2), "SYN_SENT");
        assert_eq!(tcp_state_name(200), "UNKNOWN");
    }
}
