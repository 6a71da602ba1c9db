/* SPDX-License-Identifier: Apache-2.0 */
/* vigil: record layouts and map value types shared by the BPF programs and
 * the Rust decoder (bpf/build.rs generates its Rust view of the ev_* records
 * and VG_/VF_ constants from this file with bindgen). */
#ifndef VIGIL_H
#define VIGIL_H

#define VG_EXEC 0
#define VG_OPEN 1
#define VG_CONNECT 2
#define VG_ACCEPT 3
#define VG_RETRANSMIT 4
#define VG_EXIT 5
#define VG_FORK 6
#define VG_SYSOP 7 /* the on-demand syscall kinds (ev_sys, VO_* in `op`); also their
		    * shared first-stage filter slot and counter */
#define VG_NTYPES 8

/* ev_sys.op: which on-demand syscall kind (each attached only while asked for) */
#define VO_SYMLINK 1 /* symlink, symlinkat: s1 = target, s2 = link path */
#define VO_LINK 2    /* link, linkat: s1 = existing path, s2 = new link path */
#define VO_RENAME 3  /* rename, renameat, renameat2: s1 = old, s2 = new */
#define VO_UNLINK 4  /* unlink, unlinkat: s1 = path */
#define VO_MKDIR 5   /* mkdir, mkdirat: s1 = path */
#define VO_RMDIR 6   /* rmdir: s1 = path */
#define VO_CHMOD 7   /* chmod, fchmod, fchmodat(2): s1 = path (fchmod: none) */
#define VO_PTRACE 8  /* ptrace: arg0 = request, arg1 = target pid */
#define VO_SOCKET 9  /* socket: arg0..2 = domain, type, protocol */
#define VO_SETUID 10 /* setuid, setreuid, setresuid: requested ids in arg0..2 */
#define VO_SETGID 11 /* setgid, setregid, setresgid */
#define VO_SETNS 12  /* setns: arg0 = fd, arg1 = nstype */
#define VO_UNSHARE 13 /* unshare: arg0 = flags */
#define VO_MEMFD 14  /* memfd_create: s1 = name, arg1 = flags */
#define VO_DUP 15    /* dup, dup2, dup3, fcntl(F_DUPFD*): arg0 = old fd; sock = its socket */
#define VO_LISTEN 16 /* listen: arg0 = fd, arg1 = backlog; sock = the socket */
#define VO_CHOWN 17  /* chown, fchown, lchown, fchownat: s1 = path (fchown: the fd's walk) */
#define VO_MOUNT 18  /* mount: s1 = source, s2 = target, s3 = fs type; umount2: s1 = target;
		      * move_mount: s1 = from, s2 = to; fsmount: none */
#define VO_BPF 19    /* bpf: arg0 = command; map/prog creation: aux = type, s1 = name */
#define VO_USERFAULTFD 20 /* userfaultfd: arg0 = flags */
#define VO_MODULE 21 /* init_module: s2 = params; finit_module: s1 = the fd's walk, s2 = params */
#define VO_TRUNCATE 22 /* truncate: s1 = path, arg1 = length */
#define VO_EXECFAIL 23 /* execve, execveat the kernel refused (ret < 0 only): s1 = filename */
#define VO_MAX 23

/* hdr.flags */
#define VF_PASSED 1 /* passed the first-stage filter: evaluate rules on it */
#define VF_TRUNC 2  /* some string was cut at its bound (one of the VF_CUT_* bits says which) */
#define VF_WALKED 4 /* open: the walk part is the opened file's own path (successful opens) */
/* which string was cut (bits per record kind) */
#define VF_CUT_FILENAME 8 /* exec: bprm->filename */
#define VF_CUT_ARGS 16    /* exec: argv */
#define VF_CUT_CWD 32     /* exec: the cwd walk */
#define VF_CUT_PATH 8     /* open: the raw path as passed */
#define VF_CUT_WALK 16    /* open: the walk (opened file or base directory) */
#define VF_CUT_S1 8       /* sysop: the first string */
#define VF_CUT_S2 16      /* sysop: the second string */
#define VF_CUT_S3 32      /* sysop: the third string */
/* sysop: VF_WALKED = s1 is the dentry walk of the fd argument (fchmod, fchown, finit_module) */

/* filter modes (per event type) */
#define VM_DROP 0
#define VM_PASS_ALL 1
#define VM_MATCH 2

/* filter_cfg.has */
#define VH_COMM 1
#define VH_PCOMM 2
#define VH_PID 4
#define VH_CGROUP 8
#define VH_PATH 16  /* open: check the raw path (unnormalised paths pass, clean ones by f_path) */
#define VH_WRITE 32 /* open: every open that writes passes */
#define VH_SUFFIX 64 /* open: f_suffix holds entries */
#define VH_IDENT 128 /* open: a successful open passes when its inode (or its parent
		      * directory's) is in f_ident (files and directories the path terms name) */

/* f_ident values */
#define VI_FILE 1       /* any successful open of this inode passes */
#define VI_FILE_WRITE 2 /* ... that writes */
#define VI_DIR 4        /* any successful open of a file directly in this directory passes */
#define VI_DIR_WRITE 8  /* ... that writes */

/* f_path values (userspace ORs each entry with its ancestors' flags, since
 * an LPM lookup returns only the longest match) */
#define VP_ANY 1   /* any open below this prefix passes */
#define VP_WRITE 2 /* opens that write below this prefix pass */

#define VG_PKEY_DATA 256 /* LPM data: generation byte + path bytes (LPM_DATA_SIZE_MAX) */
#define VG_PKEY_PATH 254 /* raw paths this long or longer are not looked up: they pass */

#define VG_COMM_LEN 16
#define VG_FILENAME_MAX 512
#define VG_ARGS_MAX 2048
#define VG_PATH_MAX 1024
#define VG_UNIX_MAX 108
#define VG_DIR_MAX 2048 /* dentry-walk output: components leaf first, NUL-terminated */
#define VG_DIR_DEPTH 48

struct ev_hdr { /* 48 bytes */
	__u8 type;
	__u8 flags;
	__u16 size;
	__u32 tgid;
	__u32 tid;
	__u32 ppid;
	__u64 ts; /* CLOCK_BOOTTIME ns */
	__u64 cgroup_id;
	char comm[VG_COMM_LEN];
};

struct ev_exec { /* 96 + filename + args + cwd */
	struct ev_hdr h;
	__u32 uid;
	__u32 gid;
	__u32 loginuid;
	__u16 filename_len; /* bytes incl. NUL */
	__u16 args_len;     /* bytes of NUL-separated argv */
	__u64 start_ns;     /* boottime ns of the process start */
	__u8 tty;
	__u8 exe_flags; /* VX_*: where the executable came from */
	__u16 cwd_len; /* bytes of the cwd walk (components leaf first) */
	__u8 pad[4];
	__u64 cap_eff; /* capabilities after the exec (bit N = capability N) */
	__u64 cap_prm;
	char data[]; /* filename, argv, cwd walk */
};

/* ev_exec.exe_flags */
#define VX_MEMFD 1   /* an anonymous memory file (memfd_create) */
#define VX_DELETED 2 /* no link left on its file system (not a memfd) */
#define VX_UPPER 4   /* an overlayfs file whose upper layer holds it */
#define VX_KNOWN 8   /* the flags and capabilities were read (else: unknown) */

struct ev_fork { /* 64 */
	struct ev_hdr h;
	__u64 start_ns;
	__u32 uid;
	__u32 gid;
};

struct ev_exit { /* 56 */
	struct ev_hdr h;
	__s32 code;
	__s32 signal;
};

struct ev_open { /* 88 + path + walk */
	struct ev_hdr h;
	__s64 ret;
	__u32 flags;
	__s32 dirfd;
	__u16 path_len; /* bytes incl. NUL (0: no path, e.g. open_by_handle_at) */
	__u16 base_len; /* bytes of the walk: the opened file (VF_WALKED), else for a
			 * relative path the base directory (cwd or dirfd) */
	__u32 dev;      /* opened file: its superblock's dev_t (kernel encoding), 0 if none */
	__u64 ino;      /* opened file's inode number */
	__u64 pino;     /* its parent directory's inode number */
	char path[];    /* path, then the walk */
};

struct ev_net { /* 104 (+ unix path) */
	struct ev_hdr h;
	__s64 ret;
	__u16 family; /* AF_INET / AF_INET6 / AF_UNIX */
	__u16 sport;  /* host order */
	__u16 dport;  /* host order */
	__u8 proto;   /* IPPROTO_TCP / IPPROTO_UDP / 0 */
	__u8 state;   /* TCP state (retransmit) */
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 path_len; /* unix: bytes of sun_path copied */
	__u16 pad[3];
	char path[];
};

/* ev_sys.sock: a socket the syscall named (dup: the old fd; listen: the fd),
 * read in the kernel while the fd is open; family 0: not a socket */
struct op_sock { /* 48 */
	__u16 family; /* AF_INET / AF_INET6 / AF_UNIX / ... */
	__u16 type;   /* SOCK_STREAM / SOCK_DGRAM / SOCK_RAW / ... */
	__u16 sport;  /* host order */
	__u16 dport;  /* host order */
	__u8 proto;   /* IPPROTO_TCP / IPPROTO_UDP / ... */
	__u8 state;   /* TCP state */
	__u8 pad[6];
	__u8 saddr[16];
	__u8 daddr[16];
};

struct ev_sys { /* 160 + s1 + s2 + s3 */
	struct ev_hdr h;
	__s64 ret;
	__u64 arg[5]; /* the syscall's arguments as passed (x86_64 order) */
	__u32 nr;     /* syscall number */
	__u16 s1_len; /* bytes of the first user string incl. NUL (0: none) */
	__u16 s2_len; /* bytes of the second */
	__u8 op;      /* VO_* */
	__u8 pad;
	__u16 s3_len; /* bytes of the third */
	__u32 aux;    /* bpf: the map or program type created */
	struct op_sock sock;
	char data[];  /* s1, then s2, then s3 */
};

struct counters {
	__u64 seen;
	__u64 passed;
	__u64 lost;
};

struct filter_cfg {
	__u8 mode[8];
	__u8 has; /* VH_* of every type together */
	__u8 pad[7];
	__u8 type_has[8]; /* VH_* per event type: which maps hold that type's bit */
};

struct filter_state {
	__u32 gen; /* 0 or 1: which generation of the filter maps is live */
	__u32 self_tgid;
};

struct comm_key {
	__u32 gen;
	char comm[VG_COMM_LEN];
};

struct pid_key {
	__u32 gen;
	__u32 pid;
};

struct cg_key {
	__u32 gen;
	__u32 pad;
	__u64 cgid;
};

struct path_key {
	__u32 prefixlen; /* bits: 8 * (1 + path bytes) */
	__u8 data[VG_PKEY_DATA]; /* generation, then the path (no NUL) */
};

/* per-CPU buffer the open filter reads the raw path into, once and whole
 * (`k.data[1..]`, running on into `more` for paths longer than a key), and
 * reverses it into (`r`, for the suffix trie); the pads let the 8-byte
 * loads and stores run past either end */
struct path_buf {
	__u8 pad[8];
	struct path_key k;
	__u8 more[VG_PATH_MAX - VG_PKEY_DATA + 8];
	struct path_key r;
	__u8 slack2[8];
};

struct ident_key {
	__u32 dev; /* kernel dev_t (MAJOR << 20 | MINOR) */
	__u32 pad;
	__u64 ino;
};

struct owner {
	__u32 tgid;
	__u32 ppid;
	__u64 cgroup_id;
	char comm[VG_COMM_LEN];
	char pcomm[VG_COMM_LEN];
};

#endif
