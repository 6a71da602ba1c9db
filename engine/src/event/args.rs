//! Names of syscall arguments as the kernel's UAPI numbers them: open(2)
//! flags (both ways), ptrace requests, socket domains and types,
//! capabilities, namespace types, bpf(2) commands, program and map types.
//! The event model re-exports them (`crate::event::*`).

/// open(2) flag bits and their names (Linux generic values, x86_64/aarch64).
pub const OPEN_FLAGS: &[(u32, &str)] = &[
    (0o1, "O_WRONLY"),
    (0o2, "O_RDWR"),
    (0o100, "O_CREAT"),
    (0o200, "O_EXCL"),
    (0o400, "O_NOCTTY"),
    (0o1000, "O_TRUNC"),
    (0o2000, "O_APPEND"),
    (0o4000, "O_NONBLOCK"),
    (0o10000, "O_DSYNC"),
    (0o20000, "O_ASYNC"),
    (0o40000, "O_DIRECT"),
    (0o100000, "O_LARGEFILE"),
    (0o200000, "O_DIRECTORY"),
    (0o400000, "O_NOFOLLOW"),
    (0o1000000, "O_NOATIME"),
    (0o2000000, "O_CLOEXEC"),
    (0o4010000, "O_SYNC"),
    (0o10000000, "O_PATH"),
    (0o20200000, "O_TMPFILE"),
];

/// Names of the flags set in `flags`; `O_RDONLY` when neither write bit is set.
pub fn open_flag_names(flags: u32) -> Vec<String> {
    let mut out = Vec::new();
    if flags & 0o3 == 0 {
        out.push("O_RDONLY".to_string());
    }
    for &(bit, name) in OPEN_FLAGS {
        // O_SYNC and O_TMPFILE include other bits; require all of them.
        if flags & bit == bit {
            if name == "O_DSYNC" && flags & 0o4010000 == 0o4010000 {
                continue;
            }
            if name == "O_DIRECTORY" && flags & 0o20200000 == 0o20200000 {
                continue;
            }
            out.push(name.to_string());
        }
    }
    out
}

/// Parse flag names back into bits; `None` names the first unknown flag.
pub fn open_flags_from_names<S: AsRef<str>>(names: &[S]) -> Result<u32, String> {
    let mut bits = 0;
    for n in names {
        let n = n.as_ref();
        if n == "O_RDONLY" {
            continue;
        }
        match OPEN_FLAGS.iter().find(|(_, name)| *name == n) {
            Some((bit, _)) => bits |= bit,
            None => return Err(n.to_string()),
        }
    }
    Ok(bits)
}

/// True when the flags open a file for writing (O_WRONLY, O_RDWR, O_CREAT, O_TRUNC or O_APPEND).
pub fn open_flags_write(flags: u32) -> bool {
    flags & (0o1 | 0o2 | 0o100 | 0o1000 | 0o2000) != 0
}

/// ptrace(2) request name (x86_64 numbers); the number when unknown.
pub fn ptrace_request_name(req: u64) -> String {
    let n = match req {
        0 => "PTRACE_TRACEME",
        1 => "PTRACE_PEEKTEXT",
        2 => "PTRACE_PEEKDATA",
        3 => "PTRACE_PEEKUSER",
        4 => "PTRACE_POKETEXT",
        5 => "PTRACE_POKEDATA",
        6 => "PTRACE_POKEUSER",
        7 => "PTRACE_CONT",
        8 => "PTRACE_KILL",
        9 => "PTRACE_SINGLESTEP",
        12 => "PTRACE_GETREGS",
        13 => "PTRACE_SETREGS",
        16 => "PTRACE_ATTACH",
        17 => "PTRACE_DETACH",
        24 => "PTRACE_SYSCALL",
        0x4200 => "PTRACE_SETOPTIONS",
        0x4206 => "PTRACE_SEIZE",
        0x4207 => "PTRACE_INTERRUPT",
        _ => return req.to_string(),
    };
    n.to_string()
}

/// socket(2) domain name (AF_INET, AF_PACKET, ...); the number when unknown.
pub fn socket_domain_name(d: u64) -> String {
    let n = match d {
        1 => "AF_UNIX",
        2 => "AF_INET",
        10 => "AF_INET6",
        16 => "AF_NETLINK",
        17 => "AF_PACKET",
        40 => "AF_VSOCK",
        44 => "AF_XDP",
        _ => return d.to_string(),
    };
    n.to_string()
}

/// socket(2) type name without the SOCK_NONBLOCK/SOCK_CLOEXEC bits.
pub fn socket_type_name(t: u64) -> String {
    let n = match t & 0xf {
        1 => "SOCK_STREAM",
        2 => "SOCK_DGRAM",
        3 => "SOCK_RAW",
        4 => "SOCK_RDM",
        5 => "SOCK_SEQPACKET",
        10 => "SOCK_PACKET",
        _ => return (t & 0xf).to_string(),
    };
    n.to_string()
}

/// Linux capability names by number (`include/uapi/linux/capability.h`).
pub const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Names of the capabilities in a kernel capability mask (bit N =
/// capability N); unknown bits as `CAP_N`.
pub fn capability_names(mask: u64) -> Vec<String> {
    (0..64)
        .filter(|b| mask & (1u64 << b) != 0)
        .map(|b| match CAPABILITIES.get(b) {
            Some(n) => n.to_string(),
            None => format!("CAP_{b}"),
        })
        .collect()
}

/// Namespace type names of CLONE_NEW* bits (setns' nstype, unshare's flags).
pub fn ns_type_names(flags: u64) -> Vec<String> {
    const NS: [(u64, &str); 8] = [
        (0x0002_0000, "mnt"),
        (0x0400_0000, "uts"),
        (0x0800_0000, "ipc"),
        (0x1000_0000, "user"),
        (0x2000_0000, "pid"),
        (0x4000_0000, "net"),
        (0x0200_0000, "cgroup"),
        (0x0000_0080, "time"),
    ];
    NS.iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, n)| n.to_string())
        .collect()
}

/// bpf(2) command names (uapi `enum bpf_cmd`), by number.
const BPF_CMDS: [&str; 37] = [
    "BPF_MAP_CREATE",
    "BPF_MAP_LOOKUP_ELEM",
    "BPF_MAP_UPDATE_ELEM",
    "BPF_MAP_DELETE_ELEM",
    "BPF_MAP_GET_NEXT_KEY",
    "BPF_PROG_LOAD",
    "BPF_OBJ_PIN",
    "BPF_OBJ_GET",
    "BPF_PROG_ATTACH",
    "BPF_PROG_DETACH",
    "BPF_PROG_TEST_RUN",
    "BPF_PROG_GET_NEXT_ID",
    "BPF_MAP_GET_NEXT_ID",
    "BPF_PROG_GET_FD_BY_ID",
    "BPF_MAP_GET_FD_BY_ID",
    "BPF_OBJ_GET_INFO_BY_FD",
    "BPF_PROG_QUERY",
    "BPF_RAW_TRACEPOINT_OPEN",
    "BPF_BTF_LOAD",
    "BPF_BTF_GET_FD_BY_ID",
    "BPF_TASK_FD_QUERY",
    "BPF_MAP_LOOKUP_AND_DELETE_ELEM",
    "BPF_MAP_FREEZE",
    "BPF_BTF_GET_NEXT_ID",
    "BPF_MAP_LOOKUP_BATCH",
    "BPF_MAP_LOOKUP_AND_DELETE_BATCH",
    "BPF_MAP_UPDATE_BATCH",
    "BPF_MAP_DELETE_BATCH",
    "BPF_LINK_CREATE",
    "BPF_LINK_UPDATE",
    "BPF_LINK_GET_FD_BY_ID",
    "BPF_LINK_GET_NEXT_ID",
    "BPF_ENABLE_STATS",
    "BPF_ITER_CREATE",
    "BPF_LINK_DETACH",
    "BPF_PROG_BIND_MAP",
    "BPF_TOKEN_CREATE",
];

/// BPF program type names (uapi `enum bpf_prog_type`), by number.
const BPF_PROG_TYPES: [&str; 33] = [
    "BPF_PROG_TYPE_UNSPEC",
    "BPF_PROG_TYPE_SOCKET_FILTER",
    "BPF_PROG_TYPE_KPROBE",
    "BPF_PROG_TYPE_SCHED_CLS",
    "BPF_PROG_TYPE_SCHED_ACT",
    "BPF_PROG_TYPE_TRACEPOINT",
    "BPF_PROG_TYPE_XDP",
    "BPF_PROG_TYPE_PERF_EVENT",
    "BPF_PROG_TYPE_CGROUP_SKB",
    "BPF_PROG_TYPE_CGROUP_SOCK",
    "BPF_PROG_TYPE_LWT_IN",
    "BPF_PROG_TYPE_LWT_OUT",
    "BPF_PROG_TYPE_LWT_XMIT",
    "BPF_PROG_TYPE_SOCK_OPS",
    "BPF_PROG_TYPE_SK_SKB",
    "BPF_PROG_TYPE_CGROUP_DEVICE",
    "BPF_PROG_TYPE_SK_MSG",
    "BPF_PROG_TYPE_RAW_TRACEPOINT",
    "BPF_PROG_TYPE_CGROUP_SOCK_ADDR",
    "BPF_PROG_TYPE_LWT_SEG6LOCAL",
    "BPF_PROG_TYPE_LIRC_MODE2",
    "BPF_PROG_TYPE_SK_REUSEPORT",
    "BPF_PROG_TYPE_FLOW_DISSECTOR",
    "BPF_PROG_TYPE_CGROUP_SYSCTL",
    "BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE",
    "BPF_PROG_TYPE_CGROUP_SOCKOPT",
    "BPF_PROG_TYPE_TRACING",
    "BPF_PROG_TYPE_STRUCT_OPS",
    "BPF_PROG_TYPE_EXT",
    "BPF_PROG_TYPE_LSM",
    "BPF_PROG_TYPE_SK_LOOKUP",
    "BPF_PROG_TYPE_SYSCALL",
    "BPF_PROG_TYPE_NETFILTER",
];

/// BPF map type names (uapi `enum bpf_map_type`), by number.
const BPF_MAP_TYPES: [&str; 34] = [
    "BPF_MAP_TYPE_UNSPEC",
    "BPF_MAP_TYPE_HASH",
    "BPF_MAP_TYPE_ARRAY",
    "BPF_MAP_TYPE_PROG_ARRAY",
    "BPF_MAP_TYPE_PERF_EVENT_ARRAY",
    "BPF_MAP_TYPE_PERCPU_HASH",
    "BPF_MAP_TYPE_PERCPU_ARRAY",
    "BPF_MAP_TYPE_STACK_TRACE",
    "BPF_MAP_TYPE_CGROUP_ARRAY",
    "BPF_MAP_TYPE_LRU_HASH",
    "BPF_MAP_TYPE_LRU_PERCPU_HASH",
    "BPF_MAP_TYPE_LPM_TRIE",
    "BPF_MAP_TYPE_ARRAY_OF_MAPS",
    "BPF_MAP_TYPE_HASH_OF_MAPS",
    "BPF_MAP_TYPE_DEVMAP",
    "BPF_MAP_TYPE_SOCKMAP",
    "BPF_MAP_TYPE_CPUMAP",
    "BPF_MAP_TYPE_XSKMAP",
    "BPF_MAP_TYPE_SOCKHASH",
    "BPF_MAP_TYPE_CGROUP_STORAGE",
    "BPF_MAP_TYPE_REUSEPORT_SOCKARRAY",
    "BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE",
    "BPF_MAP_TYPE_QUEUE",
    "BPF_MAP_TYPE_STACK",
    "BPF_MAP_TYPE_SK_STORAGE",
    "BPF_MAP_TYPE_DEVMAP_HASH",
    "BPF_MAP_TYPE_STRUCT_OPS",
    "BPF_MAP_TYPE_RINGBUF",
    "BPF_MAP_TYPE_INODE_STORAGE",
    "BPF_MAP_TYPE_TASK_STORAGE",
    "BPF_MAP_TYPE_BLOOM_FILTER",
    "BPF_MAP_TYPE_USER_RINGBUF",
    "BPF_MAP_TYPE_CGRP_STORAGE",
    "BPF_MAP_TYPE_ARENA",
];

/// A name from one of the tables above; the number when unknown.
fn uapi_name(table: &[&str], n: u64) -> String {
    usize::try_from(n)
        .ok()
        .and_then(|i| table.get(i))
        .map_or_else(|| n.to_string(), |s| (*s).to_string())
}

/// bpf(2) command name (BPF_PROG_LOAD, ...); the number when unknown.
pub fn bpf_cmd_name(cmd: u64) -> String {
    uapi_name(&BPF_CMDS, cmd)
}

/// BPF program type name (BPF_PROG_TYPE_KPROBE, ...); the number when unknown.
pub fn bpf_prog_type_name(t: u64) -> String {
    uapi_name(&BPF_PROG_TYPES, t)
}

/// BPF map type name (BPF_MAP_TYPE_HASH, ...); the number when unknown.
pub fn bpf_map_type_name(t: u64) -> String {
    uapi_name(&BPF_MAP_TYPES, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpf_names_follow_the_uapi_numbering() {
        assert_eq!(bpf_cmd_name(5), "BPF_PROG_LOAD");
        assert_eq!(bpf_cmd_name(28), "BPF_LINK_CREATE");
        assert_eq!(bpf_prog_type_name(2), "BPF_PROG_TYPE_KPROBE");
        assert_eq!(bpf_prog_type_name(29), "BPF_PROG_TYPE_LSM");
        assert_eq!(bpf_map_type_name(27), "BPF_MAP_TYPE_RINGBUF");
        assert_eq!(bpf_cmd_name(999), "999");
    }

    #[test]
    fn flag_names_round_trip() {
        let flags = 0o1 | 0o100 | 0o1000 | 0o2000000;
        let names = open_flag_names(flags);
        assert_eq!(names, ["O_WRONLY", "O_CREAT", "O_TRUNC", "O_CLOEXEC"]);
        assert_eq!(open_flags_from_names(&names).unwrap(), flags);
        assert_eq!(open_flag_names(0), ["O_RDONLY"]);
        assert!(open_flags_write(flags));
        assert!(!open_flags_write(0o2000000));
        assert_eq!(open_flags_from_names(&["O_BOGUS"]), Err("O_BOGUS".into()));
    }

    #[test]
    fn syscall_argument_names() {
        assert_eq!(ptrace_request_name(16), "PTRACE_ATTACH");
        assert_eq!(ptrace_request_name(999), "999");
        assert_eq!(socket_domain_name(17), "AF_PACKET");
        assert_eq!(socket_type_name(3 | 0o2000000), "SOCK_RAW");
        assert_eq!(ns_type_names(0x4400_0000), ["uts", "net"]);
        assert_eq!(
            capability_names((1 << 21) | (1 << 16) | (1 << 50)),
            ["CAP_SYS_MODULE", "CAP_SYS_ADMIN", "CAP_50"]
        );
        assert_eq!(capability_names(0), Vec::<String>::new());
    }
}
