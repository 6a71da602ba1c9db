//! The on-demand syscall records (`RawOp`) as engine [`OpInfo`]: paths made
//! absolute against the cwd or the dirfd the syscall named, fd arguments
//! named through the kernel's walk or /proc, arguments named per syscall.

use std::path::Path;

use vigil_bpf::{OpKind, RawEvent, RawOp};
use vigil_engine::event::{
    bpf_cmd_name, bpf_map_type_name, bpf_prog_type_name, ns_type_names, ptrace_request_name,
    socket_domain_name, socket_type_name,
};
use vigil_engine::{OpInfo, Process};

use super::{net_info, normalize, procfs::readlink, ProcTable, AT_FDCWD};

impl ProcTable {
    /// The engine details of an on-demand syscall: paths made absolute
    /// against the cwd or the dirfd the syscall named (x86_64 numbering;
    /// compat records carry it too), arguments named.
    pub(super) fn op_info(&self, raw: &RawEvent, p: &Process, o: &RawOp) -> OpInfo {
        // 32-bit values (fds, ids) as the kernel reads them
        let a = |i: usize| o.args[i] as u32 as i32;
        let abs = |dirfd: i32, path: &str| {
            if path.is_empty() {
                String::new()
            } else {
                self.resolve_path(raw, p, dirfd, path)
            }
        };
        let mut info = OpInfo::new();
        // the path of an fd argument: the kernel's walk (fchmod, fchown,
        // finit_module), else /proc while the process is there
        let fd_path = |fd: i32| {
            if o.s1_walked {
                return o.s1.clone();
            }
            let fd = self
                .proc_root
                .join(raw.tgid.to_string())
                .join("fd")
                .join(fd.to_string());
            readlink(fd.to_string_lossy().into_owned()).unwrap_or_default()
        };
        match o.op {
            OpKind::Symlink | OpKind::Link | OpKind::Rename => {
                // (dirfd of the first path, dirfd of the second)
                let (d1, d2) = match o.nr {
                    266 => (AT_FDCWD, a(1)),
                    265 | 264 | 316 => (a(0), a(2)),
                    _ => (AT_FDCWD, AT_FDCWD),
                };
                info.path = abs(d2, &o.s2);
                info.source = if o.op == OpKind::Symlink && !o.s1.starts_with('/') {
                    // a relative target is relative to the link's directory
                    let dir = Path::new(&info.path).parent().map(|d| d.to_string_lossy());
                    match dir {
                        Some(d) if d.starts_with('/') => normalize(&format!("{d}/{}", o.s1)),
                        _ => o.s1.clone(),
                    }
                } else {
                    abs(d1, &o.s1)
                };
                info.path_raw = o.s2.clone();
                info.source_raw = o.s1.clone();
            }
            OpKind::Unlink | OpKind::Mkdir | OpKind::Rmdir | OpKind::Chmod => {
                let (dirfd, mode) = match o.nr {
                    263 => (a(0), None),
                    258 | 268 | 452 => (a(0), Some(2)),
                    83 | 90 => (AT_FDCWD, Some(1)),
                    91 => (a(0), Some(1)),
                    _ => (AT_FDCWD, None),
                };
                info.path = if o.nr == 91 {
                    fd_path(dirfd)
                } else {
                    abs(dirfd, &o.s1)
                };
                info.path_raw = if o.s1_walked {
                    String::new()
                } else {
                    o.s1.clone()
                };
                info.mode = mode.map_or(-1, |i| i64::from(o.args[i] as u32 & 0o7777));
            }
            OpKind::Ptrace => {
                info.request = ptrace_request_name(o.args[0]);
                info.target_pid = a(1).into();
                if let Some(t) = u32::try_from(a(1))
                    .ok()
                    .and_then(|pid| self.procs.get(&pid))
                {
                    info.target_name = t.proc.name.clone();
                    info.target_exe = t.proc.exe.clone();
                }
            }
            OpKind::Socket => {
                info.domain = socket_domain_name(o.args[0]);
                info.sock_type = socket_type_name(o.args[1]);
                info.protocol = a(2).into();
            }
            OpKind::Setuid | OpKind::Setgid => {
                // setuid(id); setreuid(r, e); setresuid(r, e, s): the
                // effective id asked for, else the real, else the saved
                info.requested_id = match o.nr {
                    113 | 114 => [a(1), a(0)].into_iter().find(|&v| v != -1),
                    117 | 119 => [a(1), a(0), a(2)].into_iter().find(|&v| v != -1),
                    _ => Some(a(0)),
                }
                .unwrap_or(-1)
                .into();
            }
            OpKind::Setns => info.ns_types = ns_type_names(o.args[1]),
            OpKind::Unshare => info.ns_types = ns_type_names(o.args[0]),
            OpKind::Memfd => {
                info.name = o.s1.clone();
                info.flags = a(1).into();
            }
            OpKind::Dup => {
                info.oldfd = a(0).into();
                info.newfd = match o.nr {
                    33 | 292 if o.ret >= 0 => a(1).into(), // dup2, dup3
                    _ if o.ret >= 0 => o.ret,
                    _ => -1,
                };
                info.sock = o.sock.as_ref().map(net_info);
            }
            OpKind::Listen => {
                info.backlog = a(1).into();
                info.sock = o.sock.as_ref().map(net_info);
            }
            OpKind::Chown => {
                // chown(path, uid, gid), fchown(fd, ..), lchown(path, ..),
                // fchownat(dirfd, path, uid, gid, flags)
                let (ids, path) = match o.nr {
                    93 => (1, fd_path(a(0))),
                    260 if o.s1.is_empty() => (2, fd_path(a(0))), // AT_EMPTY_PATH
                    260 => (2, abs(a(0), &o.s1)),
                    _ => (1, abs(AT_FDCWD, &o.s1)),
                };
                info.path = path;
                info.path_raw = if o.s1_walked {
                    String::new()
                } else {
                    o.s1.clone()
                };
                info.uid = a(ids).into();
                info.gid = a(ids + 1).into();
            }
            OpKind::Mount => {
                // mount(src, target, fstype, flags, data); umount2(target,
                // flags); move_mount(from_dfd, from, to_dfd, to, flags);
                // fsmount(fs_fd, flags, attr_flags)
                let (call, flags) = match o.nr {
                    165 => ("mount", 3),
                    166 => ("umount2", 1),
                    429 => ("move_mount", 4),
                    _ => ("fsmount", 1),
                };
                info.call = call.into();
                info.flags = i64::from(o.args[flags] as u32);
                match o.nr {
                    165 => {
                        info.source = o.s1.clone();
                        info.path = abs(AT_FDCWD, &o.s2);
                        info.fstype = o.s3.clone();
                    }
                    166 => info.path = abs(AT_FDCWD, &o.s1),
                    429 => {
                        info.source = abs(a(0), &o.s1);
                        info.path = abs(a(2), &o.s2);
                    }
                    _ => {}
                }
            }
            OpKind::Bpf => {
                info.cmd = bpf_cmd_name(o.args[0]);
                match o.args[0] {
                    0 => info.map_type = bpf_map_type_name(o.aux.into()),
                    5 => info.prog_type = bpf_prog_type_name(o.aux.into()),
                    _ => {}
                }
                info.name = o.s1.clone();
            }
            OpKind::Userfaultfd => info.flags = a(0).into(),
            OpKind::Module => {
                // init_module(image, len, params); finit_module(fd, params, flags)
                if o.nr == 313 {
                    info.path = fd_path(a(0));
                }
                info.params = o.s2.clone();
            }
            OpKind::Truncate => {
                info.path = abs(AT_FDCWD, &o.s1);
                info.path_raw = o.s1.clone();
                info.length = o.args[1] as i64;
            }
            OpKind::ExecFailed => {
                // execve(path, ...); execveat(dirfd, path, ..., flags):
                // AT_EMPTY_PATH with "" executes the dirfd itself
                let dirfd = if o.nr == 322 { a(0) } else { AT_FDCWD };
                info.path = if o.nr == 322 && o.s1.is_empty() && o.args[4] & 0x1000 != 0 {
                    let fd = self
                        .proc_root
                        .join(raw.tgid.to_string())
                        .join("fd")
                        .join(dirfd.to_string());
                    readlink(fd.to_string_lossy().into_owned()).unwrap_or_default()
                } else {
                    abs(dirfd, &o.s1)
                };
                info.path_raw = o.s1.clone();
            }
        }
        info
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{empty_table, exec, op_raw, raw};
    use super::*;
    use vigil_bpf::decode::RawNet;
    use vigil_bpf::{RawBody, RawKind};
    use vigil_engine::{Event, EventType};

    #[test]
    fn the_second_on_demand_kinds_name_their_arguments() {
        use vigil_engine::fields::{lookup, FieldValue};
        let (_d, mut t) = empty_table(10);
        t.apply(exec(5_000_003, 0, "x", "/tmp/x", &["x"]));
        let mut conv = |o: RawOp| {
            t.apply(raw(RawKind::SysOp, 5_000_003, 0, "x", RawBody::Op(o)))
                .unwrap()
        };
        let get = |ev: &Event, name: &str| ev.get(lookup(name).unwrap()).map(|v| v.render());
        // dup2(3, 0) of a TCP socket: the new fd is the argument, net.* the socket
        let mut o = op_raw(OpKind::Dup, 33, 0, [3, 0, 0, 0, 0], ["", "", ""]);
        o.sock = Some(RawNet {
            family: 2,
            proto: 6,
            daddr: "10.0.0.9".into(),
            dport: 4444,
            ..Default::default()
        });
        let ev = conv(o);
        assert_eq!(ev.kind, EventType::Dup);
        assert_eq!(get(&ev, "dup.newfd").as_deref(), Some("0"));
        assert_eq!(get(&ev, "net.daddr").as_deref(), Some("10.0.0.9"));
        assert_eq!(get(&ev, "net.proto").as_deref(), Some("tcp"));
        // fcntl(F_DUPFD): the new fd is the result; a failed dup has none
        let ev = conv(op_raw(OpKind::Dup, 72, 10, [1, 0, 10, 0, 0], ["", "", ""]));
        assert_eq!(get(&ev, "dup.newfd").as_deref(), Some("10"));
        assert_eq!(get(&ev, "net.family").as_deref(), Some(""), "not a socket");
        let ev = conv(op_raw(OpKind::Dup, 33, -9, [99, 1, 0, 0, 0], ["", "", ""]));
        assert_eq!(get(&ev, "dup.newfd").as_deref(), Some("-1"));
        // fchownat(AT_FDCWD, "/etc/shadow", 1000, -1, 0)
        let ev = conv(op_raw(
            OpKind::Chown,
            260,
            0,
            [(-100i32) as u32 as u64, 0, 1000, u32::MAX as u64, 0],
            ["/etc//shadow", "", ""],
        ));
        assert_eq!(get(&ev, "fs.path").as_deref(), Some("/etc/shadow"));
        assert_eq!(
            (
                get(&ev, "chown.uid").as_deref(),
                get(&ev, "chown.gid").as_deref()
            ),
            (Some("1000"), Some("-1"))
        );
        // mount("/dev/sdb1", "/mnt/x", "ext4", MS_RDONLY, NULL)
        let ev = conv(op_raw(
            OpKind::Mount,
            165,
            0,
            [0, 0, 0, 1, 0],
            ["/dev/sdb1", "/mnt/x", "ext4"],
        ));
        assert_eq!(
            [
                "mount.call",
                "mount.source",
                "mount.target",
                "mount.fstype",
                "mount.flags"
            ]
            .map(|f| get(&ev, f).unwrap()),
            ["mount", "/dev/sdb1", "/mnt/x", "ext4", "1"]
        );
        // bpf(BPF_PROG_LOAD) of a kprobe program named hide
        let mut o = op_raw(OpKind::Bpf, 321, 5, [5, 0, 0, 0, 0], ["hide", "", ""]);
        o.aux = 2;
        let ev = conv(o);
        assert_eq!(
            ["bpf.cmd", "bpf.prog_type", "bpf.map_type", "bpf.name"].map(|f| get(&ev, f).unwrap()),
            ["BPF_PROG_LOAD", "BPF_PROG_TYPE_KPROBE", "", "hide"]
        );
        // finit_module: the kernel's walk of the fd is the module file
        let mut o = op_raw(
            OpKind::Module,
            313,
            -38,
            [4, 0, 0, 0, 0],
            ["/tmp/rk.ko", "x=1", ""],
        );
        o.s1_walked = true;
        let ev = conv(o);
        assert_eq!(get(&ev, "module.path").as_deref(), Some("/tmp/rk.ko"));
        assert_eq!(get(&ev, "module.params").as_deref(), Some("x=1"));
        assert_eq!(ev.ret, -38);
        let ev = conv(op_raw(
            OpKind::Truncate,
            76,
            0,
            [0, 0, 0, 0, 0],
            ["/root/.bash_history", "", ""],
        ));
        assert_eq!(get(&ev, "fs.path").as_deref(), Some("/root/.bash_history"));
        assert!(matches!(
            ev.get(lookup("truncate.length").unwrap()),
            Some(FieldValue::Int(0))
        ));
    }
}
