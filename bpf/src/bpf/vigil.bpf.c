// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* vigil's kernel sensors: exec/fork/exit (process lifecycle), open,
 * connect, accept (syscall enter/exit), TCP retransmit attribution, the
 * first-stage filter maps and per-type counters. Only tp_btf programs: no
 * kprobes, fentry or LSM, and no tracefs needed. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "vigil.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define NR_open 2
#define NR_connect 42
#define NR_accept 43
#define NR_openat 257
#define NR_accept4 288
#define NR_openat2 437
#define NR_open_by_handle_at 304
/* the same syscalls in the ia32 (int 0x80 / compat) table */
#define NR32_open 5
#define NR32_openat 295
#define NR32_connect 362
#define NR32_accept4 364
#define NR32_open_by_handle_at 342
#define NR32_socketcall 102 /* ia32's socket multiplexer: bx = call, cx = args */
#define SYS_CONNECT_ 3
#define SYS_ACCEPT_ 5
#define SYS_ACCEPT4_ 18
#define TS_COMPAT_ 0x0002 /* thread_info.status: a 32-bit syscall is running */

#define AT_FDCWD_ -100
#define AF_UNIX_ 1
#define AF_INET_ 2
#define AF_INET6_ 10
#define IPPROTO_TCP_ 6
#define S_IFMT_ 00170000
#define S_IFSOCK_ 0140000
#define TCP_SYN_SENT_ 2
#define TCP_CLOSE_ 7
#define SIGNAL_GROUP_EXIT_ 0x00000004

#define SCRATCH_SIZE 8192

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VG_NTYPES);
	__type(key, __u32);
	__type(value, struct counters);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct filter_state);
} fstate SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct filter_cfg);
} fcfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct comm_key);
	__type(value, __u8);
} f_comm SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct comm_key);
	__type(value, __u8);
} f_pcomm SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct pid_key);
	__type(value, __u8);
} f_pid SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct cg_key);
	__type(value, __u8);
} f_cgroup SEC(".maps");

/* open path prefixes, keyed {generation byte, path bytes} */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 8192);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct path_key);
	__type(value, __u8);
} f_path SEC(".maps");

/* open path suffixes, keyed {generation byte, reversed path bytes} */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 8192);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct path_key);
	__type(value, __u8);
} f_suffix SEC(".maps");

/* suffix pre-check: [gen << 16 | last two path bytes] is non-zero when some
 * suffix of that generation can end there (one array load spares the
 * reversal and the trie lookup for most paths) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 << 16);
	__type(key, __u32);
	__type(value, __u8);
} f_tail SEC(".maps");

/* comm pre-check: [gen << 16 | comm_hash16(comm)] holds the OR of the type
 * bits of every f_comm (f_pcomm) entry of that generation hashing there. An
 * array load is inlined by the verifier; a hash lookup is a call that costs
 * ~75 ns here, so a comm that no rule names skips it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 << 16);
	__type(key, __u32);
	__type(value, __u8);
} f_comm_pre SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 << 16);
	__type(key, __u32);
	__type(value, __u8);
} f_pcomm_pre SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_buf);
} pathbuf SEC(".maps");

/* Identity of the files and directories the path terms name: (dev, inode)
 * -> VI_* flags, so an alias (hard link, bind mount, symlink,
 * /proc/self/root) of a watched file passes the filter like the file. Not
 * generational: userspace adds new entries before removing stale ones
 * (passing more for a moment is sound). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct ident_key);
	__type(value, __u8);
} f_ident SEC(".maps");

/* identity pre-check: [ident_hash16(dev, ino)] is the OR of the flags of the
 * f_ident entries hashing there (an inlined array load spares the hash
 * lookup call for the inodes no rule names) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << 16);
	__type(key, __u32);
	__type(value, __u8);
} f_ident_pre SEC(".maps");

/* a watched syscall's number and first three arguments (see syscall_args) */
struct sys_args {
	__u64 a0;
	__u64 a1;
	__u64 a2;
	__u32 nr;
	__u32 pad;
};

/* TCP socket -> the process that connected/accepted it (retransmit attribution) */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct owner);
} owners SEC(".maps");

/* slot 0: the record being built; slot 1: dentry-walk output */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u8[SCRATCH_SIZE]);
} scratch SEC(".maps");

static __always_inline struct counters *ctr(__u32 type)
{
	return bpf_map_lookup_elem(&counters, &type);
}

static __always_inline void count_seen(__u32 type)
{
	struct counters *c = ctr(type);
	if (c)
		c->seen++;
}

static __always_inline void count_passed(__u32 type)
{
	struct counters *c = ctr(type);
	if (c)
		c->passed++;
}

static __always_inline void count_lost(__u32 type)
{
	struct counters *c = ctr(type);
	if (c)
		c->lost++;
}

static __always_inline struct filter_state *get_state(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&fstate, &zero);
}

static __always_inline struct filter_cfg *get_cfg(struct filter_state *st, __u32 *gen)
{
	*gen = st->gen & 1;
	return bpf_map_lookup_elem(&fcfg, gen);
}

/* A comm as two words (NUL-padded, as the kernel keeps task->comm). Read
 * from the task with two loads: the bpf_get_current_comm helper costs ~85 ns
 * a call on these machines (helper calls are dear here), this a few. */
struct comm16 {
	__u64 lo;
	__u64 hi;
};

static __always_inline struct comm16 task_comm(struct task_struct *t)
{
	const __u64 *c = (const __u64 *)t->comm;
	struct comm16 r = { c[0], c[1] };
	return r;
}

static __always_inline struct comm16 comm_of(const char *comm)
{
	struct comm16 r;
	__builtin_memcpy(&r, comm, sizeof(r));
	return r;
}

/* 16-bit hash of a comm; `comm_hash16` in filter.rs is the same function. */
static __always_inline __u32 comm_hash16(struct comm16 c)
{
	return (__u32)(((c.lo * 0x9E3779B97F4A7C15ULL) ^ (c.hi * 0xC2B2AE3D27D4EB4FULL)) >> 48);
}

/* Is comm `c` in the comm set `set` (f_comm / f_pcomm, pre-check `pre`) of
 * generation `gen` with type bit `bit`? */
static __always_inline bool comm_in(void *set, void *pre, __u32 gen, __u8 bit, struct comm16 c)
{
	__u32 idx = (gen & 1) << 16 | comm_hash16(c);
	__u8 *m = bpf_map_lookup_elem(pre, &idx);

	if (!m || !(*m & bit))
		return false;
	struct comm_key k = { .gen = gen };
	__builtin_memcpy(k.comm, &c, sizeof(c));
	m = bpf_map_lookup_elem(set, &k);
	return m && (*m & bit);
}

/* Who an event is about, for the first-stage filter: the current task (`t`
 * set; comm, parent comm and cgroup read from it on demand) or a recorded
 * socket owner (`o` set). */
struct subject {
	__u32 tgid;
	struct task_struct *t;
	struct owner *o;
};

/* The first-stage filter in match mode: does any of the pid / comm /
 * cgroup / parent comm maps of generation `gen` have the type's bit? Only
 * the maps that hold entries are consulted, cheapest first. */
static __always_inline bool match_sets(struct filter_cfg *cfg, __u32 gen, __u32 type,
				       struct subject *who)
{
	__u8 bit = 1 << (type & 7);
	__u8 has = cfg->type_has[type & 7];
	__u8 *m;

	if (has & VH_PID) {
		struct pid_key k = { .gen = gen, .pid = who->tgid };
		m = bpf_map_lookup_elem(&f_pid, &k);
		if (m && (*m & bit))
			return true;
	}
	if (has & VH_COMM) {
		struct comm16 c = who->o ? comm_of(who->o->comm) : task_comm(who->t);
		if (comm_in(&f_comm, &f_comm_pre, gen, bit, c))
			return true;
	}
	if (has & VH_CGROUP) {
		struct cg_key k = { .gen = gen,
				    .cgid = who->o ? who->o->cgroup_id : bpf_get_current_cgroup_id() };
		m = bpf_map_lookup_elem(&f_cgroup, &k);
		if (m && (*m & bit))
			return true;
	}
	if (has & VH_PCOMM) {
		struct comm16 c = who->o ? comm_of(who->o->pcomm) : task_comm(who->t->real_parent);
		if (comm_in(&f_pcomm, &f_pcomm_pre, gen, bit, c))
			return true;
	}
	return false;
}

/* Filter for an event of the current task `t`, matched by the comm of
 * `named` (t itself, or for io_uring work its thread group leader); counts
 * `seen` and `passed`. With `path_pass`, an open type with path terms passes
 * (they cannot be checked without the raw path). The mode is checked before
 * anything about the task is read, so a dropped type costs two array
 * lookups. */
static __always_inline bool pass_task(struct filter_state *st, __u32 type, struct task_struct *t,
				      struct task_struct *named, bool path_pass)
{
	__u32 gen;
	struct filter_cfg *cfg;

	count_seen(type);
	cfg = get_cfg(st, &gen);
	if (!cfg)
		return false;
	__u8 mode = cfg->mode[type & 7];
	if (mode == VM_DROP)
		return false;
	if (mode != VM_PASS_ALL) {
		struct subject who = { .tgid = t->tgid, .t = named };
		if (!match_sets(cfg, gen, type, &who) &&
		    !(path_pass && (cfg->type_has[type & 7] & (VH_PATH | VH_WRITE))))
			return false;
	}
	count_passed(type);
	return true;
}

static __always_inline bool pass_current(struct filter_state *st, __u32 type, struct task_struct *t)
{
	return pass_task(st, type, t, t, false);
}

/* ---- open: the raw-path part of the first-stage filter ---- */

#define ONES_ 0x0101010101010101ULL
#define LO7_ 0x7f7f7f7f7f7f7f7fULL

/* Unaligned 8-byte load / store (clang splits unaligned accesses into
 * bytes for BPF; the verifier allows them on map values where the arch has
 * efficient unaligned access, as x86_64 does). */
static __always_inline __u64 load64(const void *p)
{
	__u64 x;
	asm volatile("%0 = *(u64 *)(%1 + 0)" : "=r"(x) : "r"(p));
	return x;
}

static __always_inline void store64(void *p, __u64 x)
{
	asm volatile("*(u64 *)(%0 + 0) = %1" : : "r"(p), "r"(x) : "memory");
}

/* High bit of each byte of `x` that equals `c` (exact, no borrow leaks). */
static __always_inline __u64 eq_bytes(__u64 x, __u64 c)
{
	__u64 v = x ^ (c * ONES_);
	__u64 t = (v & LO7_) + LO7_;
	return ~(t | v | LO7_);
}

/* Does the absolute path `s` (`len` bytes, NUL at s[len]) hold `//`,
 * `/./`, `/../` or end in `/.` / `/..`? Userspace normalises such paths, so
 * the raw bytes cannot be compared with the prefixes. Eight bytes at a time:
 * windows every 5 bytes, each testing the 5 positions it can see 3 bytes
 * beyond; positions at or past the NUL are masked out. */
static __always_inline bool path_unclean(const __u8 *s, __u32 len)
{
	for (__u32 w = 0; w < (VG_PKEY_PATH + 4) / 5; w++) {
		__u32 o = w * 5;
		if (o >= len)
			break;
		__u64 x = load64(s + o);
		__u64 sl = eq_bytes(x, '/');
		__u64 dot = eq_bytes(x, '.');
		__u64 end = sl | eq_bytes(x, 0);
		__u64 d = sl & ((sl >> 8) | ((dot >> 8) & ((end >> 16) | ((dot >> 16) & (end >> 24)))));
		__u32 k = len - o;
		if (k > 5)
			k = 5;
		if (d & ((1ULL << (8 * k)) - 1))
			return true;
	}
	return false;
}

/* The open's flags say it writes (O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND,
 * as userspace's `file.write`); -1 when openat2's open_how is unreadable. */
static __always_inline int open_writes(struct sys_args *p)
{
	__u64 f = p->a2;

	if (p->nr == NR_openat2 && bpf_probe_read_user(&f, sizeof(f), (void *)p->a2))
		return -1;
	return (f & (01 | 02 | 0100 | 01000 | 02000)) != 0;
}

static __always_inline bool path_flags_pass(__u8 *v, int write)
{
	return v && ((*v & VP_ANY) || ((*v & VP_WRITE) && write));
}

/* Raw path check: unreadable, empty, relative, unnormalised (including a
 * trailing `/`) or long paths pass; a clean absolute path passes when its
 * longest prefix in f_path, or its longest suffix in f_suffix (generation
 * `gen`), allows it. */
static __always_inline bool path_passes(__u32 gen, __u8 has, const char *upath, int write)
{
	__u32 zero = 0;
	struct path_buf *b = bpf_map_lookup_elem(&pathbuf, &zero);

	if (!b)
		return true;
	long n = bpf_probe_read_user_str(&b->k.data[1], VG_PKEY_DATA - 1, upath);
	if (n <= 1)
		return true;
	__u32 len = n - 1;
	if (len >= VG_PKEY_PATH || b->k.data[1] != '/' || b->k.data[len & 0xff] == '/')
		return true;
	if (path_unclean(&b->k.data[1], len))
		return true;
	b->k.data[0] = gen;
	b->k.prefixlen = 8 * (len + 1);
	if (path_flags_pass(bpf_map_lookup_elem(&f_path, &b->k), write))
		return true;
	if (!(has & VH_SUFFIX))
		return false;
	__u32 tail = (gen & 1) << 16 | (__u32)b->k.data[(len - 1) & 0xff] << 8 | b->k.data[len & 0xff];
	__u8 *t = bpf_map_lookup_elem(&f_tail, &tail);
	if (!t || !*t)
		return false;
	/* reverse the path 8 bytes at a time: word j of r is the byte-swapped
	 * word ending 8*j bytes before the path's end (the pad absorbs the
	 * bytes before the path's start; they land past r's prefix length) */
	const __u8 *base = &b->k.data[1] - 8;
	for (__u32 j = 0; j < 32; j++) {
		if (8 * j >= len)
			break;
		__u64 x = load64(base + ((len - 8 * j) & 0xff));
		store64(&b->r.data[1 + 8 * j], __builtin_bswap64(x));
	}
	b->r.data[0] = gen;
	b->r.prefixlen = 8 * (len + 1);
	return path_flags_pass(bpf_map_lookup_elem(&f_suffix, &b->r), write);
}

/* ---- the opened file: fd -> struct file, and its identity ---- */

/* The file at `fd` of the current task: direct loads through the task's BTF
 * pointers and one read of the fd array slot (a pointer to pointers is not
 * a BTF pointer). */
static __always_inline struct file *file_from_fd(int fd)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct fdtable *fdt = t->files->fdt;
	struct file *f = NULL;

	if (!fdt || fd < 0 || (unsigned int)fd >= fdt->max_fds)
		return NULL;
	struct file **fds = fdt->fd;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]))
		return NULL;
	return f;
}

/* The file a successful open returned, read once (by the filter or the
 * record, whichever needs it first): the file, its inode, its superblock's
 * dev_t and its parent directory's inode (of the dentry, as stat(2) sees
 * them). */
struct opened {
	struct file *f; /* NULL: unknown */
	__u64 ino;
	__u64 pino;
	__u32 dev;
	bool got;
};

static __always_inline void file_id(long fd, struct opened *id)
{
	if (id->got)
		return;
	id->got = true;
	struct file *raw = file_from_fd(fd);
	if (!raw)
		return;
	struct file *f = bpf_core_cast(raw, struct file);
	struct dentry *d = f->f_path.dentry;
	id->f = f;
	id->ino = d->d_inode->i_ino;
	id->dev = d->d_inode->i_sb->s_dev;
	id->pino = d->d_parent->d_inode->i_ino;
}

/* 16-bit hash of an identity; `ident_hash16` in filter.rs is the same. */
static __always_inline __u32 ident_hash16(__u32 dev, __u64 ino)
{
	return (__u32)((((__u64)dev * 0x9E3779B97F4A7C15ULL) ^ (ino * 0xC2B2AE3D27D4EB4FULL)) >> 48);
}

static __always_inline __u8 ident_flags(__u32 dev, __u64 ino)
{
	__u32 h = ident_hash16(dev, ino);
	__u8 *pre = bpf_map_lookup_elem(&f_ident_pre, &h);

	if (!pre || !*pre || !ino)
		return 0;
	struct ident_key k = { .dev = dev, .ino = ino };
	__u8 *v = bpf_map_lookup_elem(&f_ident, &k);
	return v ? *v : 0;
}

/* Is the opened file one a path term names (VI_FILE*), or directly in a
 * directory one names (VI_DIR*), whatever path reached it? */
static __always_inline bool ident_passes(struct opened *id, int write)
{
	if (!id->f)
		return false;
	if (ident_flags(id->dev, id->ino) & (VI_FILE | (write ? VI_FILE_WRITE : 0)))
		return true;
	return ident_flags(id->dev, id->pino) & (VI_DIR | (write ? VI_DIR_WRITE : 0));
}

/* Filter for an open at its syscall exit (arguments in `p`, result `ret`);
 * counts `seen` and `passed`. Process sets first, then the write flag, then
 * the raw path, then for a successful open the identity of the opened file
 * (a symlink, hard link, bind mount or /proc/self/root alias of a watched
 * file has a raw path no prefix matches): a rejected open costs the set
 * lookups, one user-string copy, one LPM lookup and, when it succeeded, an
 * fd-slot read and one or two array loads. */
static __always_inline bool pass_open(struct filter_state *st, struct sys_args *p, long ret,
				      struct opened *id, struct task_struct *t)
{
	__u32 gen;
	struct filter_cfg *cfg;

	count_seen(VG_OPEN);
	cfg = get_cfg(st, &gen);
	if (!cfg)
		return false;
	__u8 mode = cfg->mode[VG_OPEN];
	if (mode == VM_DROP)
		return false;
	if (mode == VM_PASS_ALL)
		goto pass;
	struct subject who = { .tgid = t->tgid, .t = t };
	if (match_sets(cfg, gen, VG_OPEN, &who))
		goto pass;
	__u8 has = cfg->type_has[VG_OPEN];
	if (!(has & (VH_PATH | VH_WRITE)))
		return false;
	int w = open_writes(p);
	if (w < 0 || (w && (has & VH_WRITE)))
		goto pass;
	/* open_by_handle_at has no path (a1 = 0): it passes here (sound; rare) */
	if ((has & VH_PATH) && path_passes(gen, has, (const char *)p->a1, w))
		goto pass;
	if (!(has & VH_IDENT) || ret < 0)
		return false;
	file_id(ret, id);
	if (!ident_passes(id, w))
		return false;
pass:
	count_passed(VG_OPEN);
	return true;
}

/* Filter for a socket owner recorded at connect/accept (retransmit). */
static __always_inline bool pass_owner(struct filter_state *st, __u32 type, struct owner *o)
{
	__u32 gen;
	struct filter_cfg *cfg = get_cfg(st, &gen);

	if (!cfg)
		return false;
	__u8 mode = cfg->mode[type & 7];
	if (mode == VM_PASS_ALL)
		return true;
	if (mode != VM_MATCH || !o)
		return false;
	struct subject who = { .tgid = o->tgid, .o = o };
	return match_sets(cfg, gen, type, &who);
}

/* Header of a record about task `t` (the current task): ids, comm and
 * cgroup read from the task with direct loads, one clock read. */
static __always_inline void fill_hdr(struct ev_hdr *h, struct task_struct *t, __u8 type, __u8 flags,
				     __u16 size)
{
	struct comm16 c = task_comm(t);

	h->type = type;
	h->flags = flags;
	h->size = size;
	h->tgid = t->tgid;
	h->tid = t->pid;
	h->ppid = t->real_parent->tgid;
	h->ts = bpf_ktime_get_boot_ns();
	h->cgroup_id = t->cgroups->dfl_cgrp->kn->id;
	__builtin_memcpy(h->comm, &c, sizeof(c));
}

/* Wake-up policy for every record: a wake-up per record costs more than the
 * record (on these VMs the irq_work self-IPI is a VM exit: ~5-10 us charged to
 * the traced task; fork/exec/exit programs measured 12-16 us a run with the
 * kernel's adaptive wake-up, 3-8 us with this policy), so a record
 * wakes the reader only when this CPU has not forced one for WAKE_NS (or a
 * backlog over WAKE_BYTES builds up). An isolated event thus wakes the reader
 * at once, a flood costs at most 1000 wake-ups a second per CPU, and a
 * record's wait is bounded by WAKE_NS or the reader's periodic consume.
 * The backlog is queried every WAKE_QUERY_EVERY records only (a helper call
 * per record is dear), which at most delays a backlog wake-up by that many
 * records. `now` is the record's own timestamp (no second clock read). */
#define WAKE_BYTES (512 << 10)
#define WAKE_NS 1000000ULL
#define WAKE_QUERY_EVERY 32

struct wake {
	__u64 last;
	__u64 n;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct wake);
} last_wake SEC(".maps");

static __always_inline __u64 rb_flags(__u64 now)
{
	__u32 zero = 0;
	struct wake *w = bpf_map_lookup_elem(&last_wake, &zero);

	if (!w)
		return BPF_RB_FORCE_WAKEUP;
	if (now - w->last > WAKE_NS ||
	    (++w->n % WAKE_QUERY_EVERY == 0 &&
	     bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > WAKE_BYTES)) {
		w->last = now;
		return BPF_RB_FORCE_WAKEUP;
	}
	return BPF_RB_NO_WAKEUP;
}

static __always_inline void *scratch_buf(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&scratch, &zero);
}

static __always_inline void *walk_buf(void)
{
	__u32 one = 1;
	return bpf_map_lookup_elem(&scratch, &one);
}

/* Walk a path's dentries up to the task's root (the global root unless the
 * task is chrooted or in a container), crossing mounts, and write
 * the component names leaf first, each NUL-terminated, into the walk
 * scratch buffer (at most VG_DIR_MAX bytes). Userspace reverses them.
 * bpf_d_path is not allowed in tp_btf programs; bpf_loop keeps the
 * verifier's cost of the walk constant. */
struct walk_ctx {
	struct dentry *d;
	struct vfsmount *vm;
	struct mount *m;
	struct dentry *root_d; /* the task's root (chroot, container): the walk stops there */
	struct vfsmount *root_m;
	__u32 off;
	bool trunc;
};

static long walk_step(__u64 i, void *ctx)
{
	struct walk_ctx *c = ctx;
	struct dentry *d = c->d;
	struct vfsmount *vm = c->vm;
	struct mount *m = c->m;
	struct dentry *mroot = BPF_CORE_READ(vm, mnt_root);
	struct dentry *parent = BPF_CORE_READ(d, d_parent);
	char *buf;

	if (d == c->root_d && vm == c->root_m)
		return 1; /* the task's root: paths are shown as the task sees them */
	if (d == mroot) {
		struct mount *mp = BPF_CORE_READ(m, mnt_parent);
		if (mp == m)
			return 1; /* root of the root mount */
		c->d = BPF_CORE_READ(m, mnt_mountpoint);
		c->m = mp;
		c->vm = &mp->mnt;
		return 0;
	}
	if (d == parent)
		return 1;
	__u32 off = c->off;
	if (off > VG_DIR_MAX - 256) {
		c->trunc = true;
		return 1;
	}
	buf = walk_buf();
	if (!buf)
		return 1;
	const unsigned char *name = BPF_CORE_READ(d, d_name.name);
	long n = bpf_probe_read_kernel_str(buf + off, 256, name);
	if (n <= 0)
		return 1;
	c->off = off + n;
	c->d = parent;
	return 0;
}

/* Returns the bytes written to the walk buffer; sets *trunc when cut short. */
static __always_inline __u32 walk_path(struct path *p, bool *trunc)
{
	struct walk_ctx c = {};

	struct task_struct *t = bpf_get_current_task_btf();

	c.d = BPF_CORE_READ(p, dentry);
	c.vm = BPF_CORE_READ(p, mnt);
	c.m = container_of(c.vm, struct mount, mnt);
	c.root_d = t->fs->root.dentry;
	c.root_m = t->fs->root.mnt;
	long loops = bpf_loop(VG_DIR_DEPTH, walk_step, &c, 0);
	if (loops >= VG_DIR_DEPTH)
		c.trunc = true;
	*trunc = c.trunc;
	return c.off;
}

/* ---- process lifecycle ---- */

SEC("tp_btf/sched_process_exec")
int BPF_PROG(vigil_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct filter_state *st = get_state();
	struct ev_exec *e;
	__u8 flags = 0;
	long n;

	if (!st)
		return 0;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (tgid == st->self_tgid)
		return 0;
	if (pass_current(st, VG_EXEC, p))
		flags |= VF_PASSED;
	e = scratch_buf();
	if (!e)
		return 0;
	fill_hdr(&e->h, p, VG_EXEC, flags, 0);
	__u64 ugid = bpf_get_current_uid_gid();
	e->uid = (__u32)ugid;
	e->gid = ugid >> 32;
	e->loginuid = (__u32)-1;
	if (bpf_core_field_exists(p->loginuid))
		e->loginuid = BPF_CORE_READ(p, loginuid.val);
	e->start_ns = BPF_CORE_READ(p, group_leader, start_boottime);
	e->tty = BPF_CORE_READ(p, signal, tty) != NULL;

	const char *fname = BPF_CORE_READ(bprm, filename);
	n = bpf_probe_read_kernel_str(e->data, VG_FILENAME_MAX, fname);
	if (n < 0)
		n = 0;
	if (n >= VG_FILENAME_MAX) {
		/* the last byte became the NUL: was there more? */
		char more = 0;
		n = VG_FILENAME_MAX;
		bpf_probe_read_kernel(&more, 1, fname + VG_FILENAME_MAX - 1);
		if (more)
			e->h.flags |= VF_TRUNC | VF_CUT_FILENAME;
	}
	__u32 flen = n;
	e->filename_len = flen;

	unsigned long as = BPF_CORE_READ(p, mm, arg_start);
	unsigned long ae = BPF_CORE_READ(p, mm, arg_end);
	__u32 alen = 0;
	if (ae > as) {
		unsigned long want = ae - as;
		if (want > VG_ARGS_MAX - 1) {
			want = VG_ARGS_MAX - 1;
			e->h.flags |= VF_TRUNC | VF_CUT_ARGS;
		}
		alen = want & (VG_ARGS_MAX - 1);
		if (bpf_probe_read_user(e->data + (flen & (2 * VG_FILENAME_MAX - 1)), alen, (void *)as) < 0)
			alen = 0;
	}
	e->args_len = alen;
	__u32 cwd_len = 0;
	char *wb = walk_buf();
	if (wb) {
		bool trunc = false;
		struct path pwd = {};
		struct fs_struct *fs = BPF_CORE_READ(p, fs);
		if (fs && !bpf_probe_read_kernel(&pwd, sizeof(pwd), &fs->pwd)) {
			cwd_len = walk_path(&pwd, &trunc) & (VG_DIR_MAX - 1);
			__u32 off = (flen & (2 * VG_FILENAME_MAX - 1)) + (alen & (VG_ARGS_MAX - 1));
			if (cwd_len &&
			    bpf_probe_read_kernel(e->data + (off & 4095), cwd_len, wb))
				cwd_len = 0;
			if (trunc)
				e->h.flags |= VF_TRUNC | VF_CUT_CWD;
		}
	}
	e->cwd_len = cwd_len;
	__u32 size = sizeof(*e) + (flen & (2 * VG_FILENAME_MAX - 1)) + (alen & (VG_ARGS_MAX - 1)) +
		     (cwd_len & (VG_DIR_MAX - 1));
	e->h.size = size;
	if (size > SCRATCH_SIZE)
		return 0;
	if (bpf_ringbuf_output(&events, e, size, rb_flags(e->h.ts)))
		count_lost(VG_EXEC);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(vigil_fork, struct task_struct *parent, struct task_struct *child)
{
	struct filter_state *st = get_state();
	struct ev_fork *e;

	if (!st)
		return 0;
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	__u32 cpid = BPF_CORE_READ(child, pid);
	if (ctgid != cpid) /* a thread */
		return 0;
	if ((bpf_get_current_pid_tgid() >> 32) == st->self_tgid)
		return 0;
	count_seen(VG_FORK);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost(VG_FORK);
		return 0;
	}
	fill_hdr(&e->h, bpf_get_current_task_btf(), VG_FORK, 0, sizeof(*e));
	e->h.tgid = ctgid;
	e->h.tid = cpid;
	e->h.ppid = BPF_CORE_READ(child, real_parent, tgid);
	e->start_ns = BPF_CORE_READ(child, start_boottime);
	__u64 ugid = bpf_get_current_uid_gid();
	e->uid = (__u32)ugid;
	e->gid = ugid >> 32;
	bpf_ringbuf_submit(e, rb_flags(e->h.ts));
	count_passed(VG_FORK);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(vigil_exit, struct task_struct *p)
{
	struct filter_state *st = get_state();
	struct ev_exit *e;
	__u8 flags = 0;

	if (!st)
		return 0;
	if (BPF_CORE_READ(p, signal, live.counter) != 0) /* not the last thread */
		return 0;
	if ((bpf_get_current_pid_tgid() >> 32) == st->self_tgid)
		return 0;
	if (pass_current(st, VG_EXIT, p))
		flags |= VF_PASSED;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost(VG_EXIT);
		return 0;
	}
	fill_hdr(&e->h, p, VG_EXIT, flags, sizeof(*e));
	int code = BPF_CORE_READ(p, exit_code);
	if (BPF_CORE_READ(p, signal, flags) & SIGNAL_GROUP_EXIT_)
		code = BPF_CORE_READ(p, signal, group_exit_code);
	e->code = (code >> 8) & 0xff;
	e->signal = code & 0x7f;
	bpf_ringbuf_submit(e, rb_flags(e->h.ts));
	return 0;
}

/* ---- syscalls: open / connect / accept ---- */

static __always_inline struct sock *sock_from_file(struct file *f)
{
	if (!f)
		return NULL;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT_) != S_IFSOCK_)
		return NULL;
	struct socket *s = BPF_CORE_READ(f, private_data);
	if (!s)
		return NULL;
	return BPF_CORE_READ(s, sk);
}

static __always_inline struct sock *sock_from_fd(int fd)
{
	return sock_from_file(file_from_fd(fd));
}

static __always_inline void remember_owner(struct sock *sk)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct owner o = {};
	__u64 key = (__u64)sk;

	o.tgid = bpf_get_current_pid_tgid() >> 32;
	o.ppid = BPF_CORE_READ(t, real_parent, tgid);
	o.cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(o.comm, sizeof(o.comm));
	struct task_struct *parent = BPF_CORE_READ(t, real_parent);
	bpf_probe_read_kernel_str(o.pcomm, sizeof(o.pcomm), &parent->comm);
	bpf_map_update_elem(&owners, &key, &o, BPF_ANY);
}

static __always_inline void sk_endpoints(struct sock *sk, struct ev_net *e)
{
	e->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	e->proto = BPF_CORE_READ(sk, sk_protocol);
	e->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	e->dport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	e->state = BPF_CORE_READ(sk, __sk_common.skc_state);
	if (e->family == AF_INET6_) {
		BPF_CORE_READ_INTO(&e->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&e->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	} else {
		BPF_CORE_READ_INTO((__u32 *)e->saddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)e->daddr, sk, __sk_common.skc_daddr);
	}
}

/* The watched syscalls are seen once, at their exit: the arguments are read
 * back from the task's saved user registers (x86_64 di, si, dx: open,
 * openat, openat2, connect, accept and accept4 leave them as the caller passed
 * them), so there is no entry program, no per-task state between entry and
 * exit, and a dropped syscall costs one program run. Fills `p` and the event
 * type; false for a syscall vigil does not watch.
 *
 * A compat syscall (int 0x80, from a 32-bit binary or a 64-bit one) has its
 * number in the ia32 table and its arguments in bx, cx, dx, 32 bits wide:
 * it is translated to the x86_64 number, fds sign-extended, pointers
 * zero-extended. ia32's socketcall(2) (what 32-bit shellcode and older
 * libcs use) is decoded for connect, accept and accept4: its arguments are
 * an array of 32-bit words in user memory. */
static __always_inline bool syscall_args(long id, struct pt_regs *regs, bool compat,
					 struct sys_args *p, __u32 *type)
{
	__u64 a0, a1, a2;

	if (compat) {
		switch (id) {
		case NR32_open:
			id = NR_open;
			break;
		case NR32_openat:
			id = NR_openat;
			break;
		case NR_openat2: /* 437 in both tables */
			break;
		case NR32_connect:
			id = NR_connect;
			break;
		case NR32_accept4:
			id = NR_accept4;
			break;
		case NR32_open_by_handle_at:
			id = NR_open_by_handle_at;
			break;
		case NR32_socketcall:
			break;
		default:
			return false;
		}
		a0 = (__u64)(__s64)(__s32)regs->bx;
		a1 = (__u32)regs->cx;
		a2 = (__u32)regs->dx;
		if (id == NR_open) /* open(path, flags): a0 is a pointer */
			a0 = (__u32)regs->bx;
		if (id == NR32_socketcall) {
			__u32 call = (__u32)regs->bx, w[3] = {};
			if (call == SYS_CONNECT_)
				id = NR_connect;
			else if (call == SYS_ACCEPT_)
				id = NR_accept;
			else if (call == SYS_ACCEPT4_)
				id = NR_accept4;
			else
				return false;
			if (bpf_probe_read_user(w, sizeof(w), (void *)(__u64)(__u32)regs->cx))
				return false;
			a0 = (__u64)(__s64)(__s32)w[0];
			a1 = w[1];
			a2 = w[2];
		}
	} else {
		a0 = regs->di;
		a1 = regs->si;
		a2 = regs->dx;
	}
	switch (id) {
	case NR_open:
		p->a0 = (__u64)(__s64)AT_FDCWD_;
		p->a1 = a0;
		p->a2 = a1;
		*type = VG_OPEN;
		break;
	case NR_openat:
	case NR_openat2:
	case NR_connect:
		p->a0 = a0;
		p->a1 = a1;
		p->a2 = a2;
		*type = id == NR_connect ? VG_CONNECT : VG_OPEN;
		break;
	case NR_open_by_handle_at: /* (mount_fd, handle, flags): no path */
		p->a0 = a0;
		p->a1 = 0;
		p->a2 = a2;
		*type = VG_OPEN;
		break;
	case NR_accept:
	case NR_accept4:
		p->a0 = a0;
		*type = VG_ACCEPT;
		break;
	default:
		return false;
	}
	p->nr = id;
	return true;
}

/* The walk of `base` appended to the record at byte `at` of its path
 * area; returns its length (0 when unknown) and flags a cut walk. */
static __always_inline __u32 append_walk(struct ev_open *e, __u32 at, struct path *base)
{
	char *wb = walk_buf();
	bool trunc = false;

	if (!wb)
		return 0;
	__u32 n = walk_path(base, &trunc) & (VG_DIR_MAX - 1);
	if (n && bpf_probe_read_kernel(e->path + (at & (2 * VG_PATH_MAX - 1)), n, wb))
		n = 0;
	if (trunc)
		e->h.flags |= VF_TRUNC | VF_CUT_WALK;
	return n;
}

/* A user string (at most VG_PATH_MAX bytes incl. its NUL) into `dst`;
 * returns the bytes copied (0 if unreadable) and flags `cut` in `h` when the
 * string went on past the bound. */
static __always_inline __u32 read_ustr(char *dst, const void *src, struct ev_hdr *h, __u8 cut)
{
	long n = bpf_probe_read_user_str(dst, VG_PATH_MAX, src);

	if (n < 0)
		return 0;
	if (n >= VG_PATH_MAX) {
		/* the last byte became the NUL: was there more? */
		char more = 0;
		n = VG_PATH_MAX;
		bpf_probe_read_user(&more, 1, src + VG_PATH_MAX - 1);
		if (more)
			h->flags |= VF_TRUNC | cut;
	}
	return n;
}

/* The open record: the raw path as passed, and a walk: for a successful
 * open the opened file's own path (VF_WALKED: what the kernel resolved,
 * whatever `./` padding, `..`, symlinks or /proc/self/root the raw path
 * held, and whatever its length) with its identity; for a failed relative
 * open the base directory. open_by_handle_at has no path: only its
 * successful opens are recorded. */
static __always_inline void open_exit(struct sys_args *p, long ret, struct task_struct *t,
				      struct opened *id)
{
	struct ev_open *e = scratch_buf();
	bool handle = p->nr == NR_open_by_handle_at;

	if (!e || (handle && ret < 0))
		return;
	fill_hdr(&e->h, t, VG_OPEN, VF_PASSED, 0);
	e->ret = ret;
	e->dirfd = (__s32)p->a0;
	if (p->nr == NR_openat2) {
		__u64 f = 0;
		bpf_probe_read_user(&f, sizeof(f), (void *)p->a2);
		e->flags = (__u32)f;
	} else {
		e->flags = (__u32)p->a2;
	}
	e->dev = 0;
	e->ino = 0;
	e->pino = 0;
	__u32 len = handle ? 0 : read_ustr(e->path, (void *)p->a1, &e->h, VF_CUT_PATH);
	e->path_len = len;
	__u32 base_len = 0;
	struct path base = {};
	bool have = false;
	if (ret >= 0) {
		file_id(ret, id);
		if (id->f) {
			have = !bpf_probe_read_kernel(&base, sizeof(base), &id->f->f_path);
			e->dev = id->dev;
			e->ino = id->ino;
			e->pino = id->pino;
			if (have)
				e->h.flags |= VF_WALKED;
		}
	} else if (len > 1 && e->path[0] != '/') {
		if (e->dirfd == AT_FDCWD_) {
			struct fs_struct *fs = BPF_CORE_READ(t, fs);
			have = fs && !bpf_probe_read_kernel(&base, sizeof(base), &fs->pwd);
		} else {
			struct file *f = file_from_fd(e->dirfd);
			have = f && !bpf_probe_read_kernel(&base, sizeof(base), &f->f_path);
		}
	}
	if (have)
		base_len = append_walk(e, len, &base);
	e->base_len = base_len;
	__u32 size = sizeof(*e) + (len & (2 * VG_PATH_MAX - 1)) + (base_len & (VG_DIR_MAX - 1));
	e->h.size = size;
	if (size > SCRATCH_SIZE)
		return;
	if (bpf_ringbuf_output(&events, e, size, rb_flags(e->h.ts)))
		count_lost(VG_OPEN);
}

static __always_inline void connect_exit(struct sys_args *p, long ret, struct task_struct *t)
{
	struct ev_net *e;
	__u16 family = 0;
	void *uaddr = (void *)p->a1;
	__u32 alen = p->a2;

	if (bpf_probe_read_user(&family, sizeof(family), uaddr))
		return;
	if (family == AF_UNIX_) {
		e = bpf_ringbuf_reserve(&events, sizeof(*e) + VG_UNIX_MAX, 0);
		if (!e) {
			count_lost(VG_CONNECT);
			return;
		}
		__builtin_memset(e, 0, sizeof(*e));
		fill_hdr(&e->h, t, VG_CONNECT, VF_PASSED, sizeof(*e) + VG_UNIX_MAX);
		e->ret = ret;
		e->family = family;
		__u32 n = alen > 2 ? alen - 2 : 0;
		if (n > VG_UNIX_MAX)
			n = VG_UNIX_MAX;
		if (n && bpf_probe_read_user(e->path, n & 127, uaddr + 2))
			n = 0;
		e->path_len = n;
		bpf_ringbuf_submit(e, rb_flags(e->h.ts));
		return;
	}
	if (family != AF_INET_ && family != AF_INET6_)
		return;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost(VG_CONNECT);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	fill_hdr(&e->h, t, VG_CONNECT, VF_PASSED, sizeof(*e));
	e->ret = ret;
	e->family = family;
	struct sock *sk = sock_from_fd((int)p->a0);
	if (sk) {
		e->proto = BPF_CORE_READ(sk, sk_protocol);
		e->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
		e->state = BPF_CORE_READ(sk, __sk_common.skc_state);
		if (family == AF_INET6_)
			BPF_CORE_READ_INTO(&e->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		else
			BPF_CORE_READ_INTO((__u32 *)e->saddr, sk, __sk_common.skc_rcv_saddr);
	}
	if (family == AF_INET_) {
		struct sockaddr_in sin = {};
		bpf_probe_read_user(&sin, sizeof(sin), uaddr);
		e->dport = __builtin_bswap16(sin.sin_port);
		__builtin_memcpy(e->daddr, &sin.sin_addr.s_addr, 4);
	} else {
		struct sockaddr_in6 sin6 = {};
		bpf_probe_read_user(&sin6, sizeof(sin6), uaddr);
		e->dport = __builtin_bswap16(sin6.sin6_port);
		__builtin_memcpy(e->daddr, &sin6.sin6_addr, 16);
	}
	bpf_ringbuf_submit(e, rb_flags(e->h.ts));
}

static __always_inline void accept_exit(struct sys_args *p, long ret, struct task_struct *t)
{
	struct ev_net *e;
	struct sock *sk = NULL;

	if (ret >= 0)
		sk = sock_from_fd((int)ret);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost(VG_ACCEPT);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	fill_hdr(&e->h, t, VG_ACCEPT, VF_PASSED, sizeof(*e));
	e->ret = ret;
	if (sk) {
		sk_endpoints(sk, e);
		if (e->proto == IPPROTO_TCP_ && (e->family == AF_INET_ || e->family == AF_INET6_))
			remember_owner(sk);
	}
	bpf_ringbuf_submit(e, rb_flags(e->h.ts));
}

/* Syscall exit, shared by the per-syscall tracepoints (preferred: they run
 * only for the syscalls vigil watches) and the raw sys_exit fallback (used
 * when tracefs is unavailable; it runs for every syscall and bails out on the
 * id first). Filter first, then build the record. */
static __always_inline int sys_exit_common(long id, long ret, struct pt_regs *regs,
					   struct task_struct *t)
{
	struct sys_args p = {};
	struct opened of = {};
	__u32 type;

	bool compat = t->thread_info.status & TS_COMPAT_;

	if (!syscall_args(id, regs, compat, &p, &type))
		return 0;
	struct filter_state *st = get_state();
	if (!st)
		return 0;
	if (t->tgid == st->self_tgid)
		return 0;
	if (type == VG_OPEN ? !pass_open(st, &p, ret, &of, t) : !pass_current(st, type, t))
		return 0;
	switch (type) {
	case VG_OPEN:
		open_exit(&p, ret, t, &of);
		break;
	case VG_CONNECT:
		connect_exit(&p, ret, t);
		break;
	default:
		accept_exit(&p, ret, t);
		break;
	}
	return 0;
}

/* Raw fallback: every syscall runs this (bail-out on the id first). */
SEC("tp_btf/sys_exit")
int BPF_PROG(vigil_sys_exit, struct pt_regs *regs, long ret)
{
	return sys_exit_common(regs->orig_ax, ret, regs, bpf_get_current_task_btf());
}

/* Preferred: one tracepoint per watched syscall's exit (needs tracefs for the
 * tracepoint ids); other syscalls, and every syscall's entry, run no vigil
 * program at all. */
#define SYSCALL_TP(name, nr)                                                          \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                    \
	int vigil_exit_##name(struct trace_event_raw_sys_exit *ctx)                   \
	{                                                                             \
		struct task_struct *t = bpf_get_current_task_btf();                   \
		return sys_exit_common(nr, ctx->ret, (struct pt_regs *)bpf_task_pt_regs(t), t); \
	}

SYSCALL_TP(open, NR_open)
SYSCALL_TP(openat, NR_openat)
SYSCALL_TP(openat2, NR_openat2)
SYSCALL_TP(open_by_handle_at, NR_open_by_handle_at)
SYSCALL_TP(connect, NR_connect)
SYSCALL_TP(accept, NR_accept)
SYSCALL_TP(accept4, NR_accept4)

/* ---- on-demand syscall kinds (ev_sys) ----
 *
 * One exit program per syscall, loaded with the others but attached only
 * while a loaded rule (or a snoop/record request) needs its kind
 * (Sensors::set_ops): a kind nobody asks for costs nothing. The arguments
 * are read from the task's saved registers at exit, like the open hooks;
 * the first-stage filter's comm/pid/cgroup sets apply through the shared
 * VG_SYSOP slot. Failed attempts are recorded too (`ret` < 0). */
#define OP_STR_NONE 7

/* The on-demand kinds asked for (index VO_*, written by Sensors::set_ops):
 * the compat path, always attached, reports only these. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u8);
} op_on SEC(".maps");

/* Record one on-demand syscall of `t` with arguments `a` (x86_64 order),
 * user strings in argument slots `s1` / `s2` (OP_STR_NONE: none). */
static __always_inline int sysop_emit(__u8 op, __u32 nr, long ret, struct task_struct *t,
				      __u64 *a, int s1, int s2)
{
	struct filter_state *st = get_state();
	struct ev_sys *e;

	if (!st || t->tgid == st->self_tgid)
		return 0;
	if (!pass_current(st, VG_SYSOP, t))
		return 0;
	e = scratch_buf();
	if (!e)
		return 0;
	fill_hdr(&e->h, t, VG_SYSOP, VF_PASSED, 0);
	e->ret = ret;
	for (int i = 0; i < 5; i++)
		e->arg[i] = a[i];
	e->nr = nr;
	e->op = op;
	__u32 l1 = 0, l2 = 0;
	if (s1 >= 0 && s1 < 5)
		l1 = read_ustr(e->data, (void *)e->arg[s1 & 7], &e->h, VF_CUT_S1);
	if (s2 >= 0 && s2 < 5)
		l2 = read_ustr(e->data + (l1 & (2 * VG_PATH_MAX - 1)), (void *)e->arg[s2 & 7],
			       &e->h, VF_CUT_S2);
	e->s1_len = l1;
	e->s2_len = l2;
	__u32 size = sizeof(*e) + (l1 & (2 * VG_PATH_MAX - 1)) + (l2 & (2 * VG_PATH_MAX - 1));
	e->h.size = size;
	if (size > SCRATCH_SIZE)
		return 0;
	if (bpf_ringbuf_output(&events, e, size, rb_flags(e->h.ts)))
		count_lost(VG_SYSOP);
	return 0;
}

static __always_inline int sysop_exit(__u8 op, __u32 nr, long ret, struct task_struct *t,
				      int s1, int s2)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(t);
	__u64 a[5] = { BPF_CORE_READ(regs, di), BPF_CORE_READ(regs, si), BPF_CORE_READ(regs, dx),
		       BPF_CORE_READ(regs, r10), BPF_CORE_READ(regs, r8) };

	return sysop_emit(op, nr, ret, t, a, s1, s2);
}

/* An ia32 on-demand syscall: its kind, x86_64 number and string slots. */
struct op_call {
	__u8 op;
	__u32 nr;
	int s1;
	int s2;
};

#define OPC(o, n, a, b) *c = (struct op_call){ .op = o, .nr = n, .s1 = a, .s2 = b }

static __always_inline bool compat_op(long id, struct op_call *c)
{
	const int N = OP_STR_NONE;

	switch (id) {
	case 83: OPC(VO_SYMLINK, 88, 0, 1); break;
	case 304: OPC(VO_SYMLINK, 266, 0, 2); break;
	case 9: OPC(VO_LINK, 86, 0, 1); break;
	case 303: OPC(VO_LINK, 265, 1, 3); break;
	case 38: OPC(VO_RENAME, 82, 0, 1); break;
	case 302: OPC(VO_RENAME, 264, 1, 3); break;
	case 353: OPC(VO_RENAME, 316, 1, 3); break;
	case 10: OPC(VO_UNLINK, 87, 0, N); break;
	case 301: OPC(VO_UNLINK, 263, 1, N); break;
	case 39: OPC(VO_MKDIR, 83, 0, N); break;
	case 296: OPC(VO_MKDIR, 258, 1, N); break;
	case 40: OPC(VO_RMDIR, 84, 0, N); break;
	case 15: OPC(VO_CHMOD, 90, 0, N); break;
	case 94: OPC(VO_CHMOD, 91, N, N); break;
	case 306: OPC(VO_CHMOD, 268, 1, N); break;
	case 452: OPC(VO_CHMOD, 452, 1, N); break;
	case 26: OPC(VO_PTRACE, 101, N, N); break;
	case 359: OPC(VO_SOCKET, 41, N, N); break;
	case 23: /* 16-bit ids */
	case 213: OPC(VO_SETUID, 105, N, N); break;
	case 70:
	case 203: OPC(VO_SETUID, 113, N, N); break;
	case 164:
	case 208: OPC(VO_SETUID, 117, N, N); break;
	case 46:
	case 214: OPC(VO_SETGID, 106, N, N); break;
	case 71:
	case 204: OPC(VO_SETGID, 114, N, N); break;
	case 170:
	case 210: OPC(VO_SETGID, 119, N, N); break;
	case 346: OPC(VO_SETNS, 308, N, N); break;
	case 310: OPC(VO_UNSHARE, 272, N, N); break;
	case 356: OPC(VO_MEMFD, 319, 0, N); break;
	default:
		return false;
	}
	return true;
}

static __always_inline bool op_wanted(__u32 op)
{
	__u8 *on = bpf_map_lookup_elem(&op_on, &op);

	return on && *on;
}

/* A compat (int 0x80) on-demand syscall: reported when its kind is asked
 * for (unlinkat also makes rmdir). Arguments from bx, cx, dx, si, di,
 * zero-extended (32-bit values: -1 reads as 4294967295). */
static __always_inline int compat_sysop(struct op_call *c, long ret, struct pt_regs *regs,
					struct task_struct *t)
{
	if (!op_wanted(c->op) && !(c->nr == 263 && op_wanted(VO_RMDIR)))
		return 0;
	__u64 a[5] = { (__u32)regs->bx, (__u32)regs->cx, (__u32)regs->dx, (__u32)regs->si,
		       (__u32)regs->di };
	return sysop_emit(c->op, c->nr, ret, t, a, c->s1, c->s2);
}

/* `name`'s exit: kind `op`, syscall number `nr`, user strings in argument
 * slots `s1` / `s2` (OP_STR_NONE: none). */
#define SYSOP_TP(name, op, nr, s1, s2)                                                \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                    \
	int vigil_op_##name(struct trace_event_raw_sys_exit *ctx)                     \
	{                                                                             \
		return sysop_exit(op, nr, ctx->ret, bpf_get_current_task_btf(), s1, s2); \
	}

SYSOP_TP(symlink, VO_SYMLINK, 88, 0, 1)
SYSOP_TP(symlinkat, VO_SYMLINK, 266, 0, 2)
SYSOP_TP(link, VO_LINK, 86, 0, 1)
SYSOP_TP(linkat, VO_LINK, 265, 1, 3)
SYSOP_TP(rename, VO_RENAME, 82, 0, 1)
SYSOP_TP(renameat, VO_RENAME, 264, 1, 3)
SYSOP_TP(renameat2, VO_RENAME, 316, 1, 3)
SYSOP_TP(unlink, VO_UNLINK, 87, 0, OP_STR_NONE)
SYSOP_TP(unlinkat, VO_UNLINK, 263, 1, OP_STR_NONE)
SYSOP_TP(mkdir, VO_MKDIR, 83, 0, OP_STR_NONE)
SYSOP_TP(mkdirat, VO_MKDIR, 258, 1, OP_STR_NONE)
SYSOP_TP(rmdir, VO_RMDIR, 84, 0, OP_STR_NONE)
SYSOP_TP(chmod, VO_CHMOD, 90, 0, OP_STR_NONE)
SYSOP_TP(fchmod, VO_CHMOD, 91, OP_STR_NONE, OP_STR_NONE)
SYSOP_TP(fchmodat, VO_CHMOD, 268, 1, OP_STR_NONE)
SYSOP_TP(fchmodat2, VO_CHMOD, 452, 1, OP_STR_NONE)
SYSOP_TP(ptrace, VO_PTRACE, 101, OP_STR_NONE, OP_STR_NONE)
SYSOP_TP(socket, VO_SOCKET, 41, OP_STR_NONE, OP_STR_NONE)
SYSOP_TP(setuid, VO_SETUID, 105, OP_STR_NONE, OP_STR_NONE)
SYSOP_TP(setreuid, VO_SETUID, 113, OP_STR_NONE, OP_STR_NONE)
SYSOP_TP(setresuid, VO_SETUID, 117, OP_STR_NONE, OP_STR_NONE)
SYSOP_TP(setgid, VO_SETGID, 106, OP_STR_NONE, OP_STR_NONE)
SYSOP_TP(setregid, VO_SETGID, 114, OP_STR_NONE, OP_STR_NONE)
SYSOP_TP(setresgid, VO_SETGID, 119, OP_STR_NONE, OP_STR_NONE)
SYSOP_TP(setns, VO_SETNS, 308, OP_STR_NONE, OP_STR_NONE)
SYSOP_TP(unshare, VO_UNSHARE, 272, OP_STR_NONE, OP_STR_NONE)
SYSOP_TP(memfd_create, VO_MEMFD, 319, 0, OP_STR_NONE)

/* With the per-syscall tracepoints: the kernel never runs those for compat
 * syscalls, so int 0x80 opens/connects would go unseen (an evasion). This
 * raw program returns on its first test unless a compat syscall is ending. */
SEC("tp_btf/sys_exit")
int BPF_PROG(vigil_compat_exit, struct pt_regs *regs, long ret)
{
	struct task_struct *t = bpf_get_current_task_btf();

	if (!(t->thread_info.status & TS_COMPAT_))
		return 0;
	struct op_call c;
	if (compat_op(regs->orig_ax, &c))
		return compat_sysop(&c, ret, regs, t);
	return sys_exit_common(regs->orig_ax, ret, regs, t);
}

/* ---- io_uring ---- */

/* Opens and connects submitted through an io_uring never pass the syscall
 * hooks (the ring does the work inside io_uring_enter, or in an io-wq
 * worker): an evasion of every syscall-based sensor. vigil sees them at their
 * completion instead, which only io_uring users pay for. An open's path is the opened file's own
 * dentry walk (the user's string is gone by then): the resolved absolute
 * path, so a ring open of /etc/shadow reads as one. Failed opens and opens
 * into fixed-file slots (no fd) carry no path and are not reported. The
 * record is the thread group's (io-wq workers are threads of the process;
 * the comm is the group leader's). */
static __always_inline bool pass_uring(struct filter_state *st, __u32 type, struct task_struct *t)
{
	/* path terms cannot be checked on a walk: passing is the sound side */
	return pass_task(st, type, t, t->group_leader, true);
}

/* An io_uring connect at its completion: the socket is the request's file;
 * the endpoints come from the socket (the destination is set once the
 * connect started, whatever the result). */
static __always_inline void uring_connect(struct filter_state *st, struct task_struct *t,
					  struct io_kiocb *r, __s32 res)
{
	struct sock *sk = sock_from_file(BPF_CORE_READ(r, file));

	if (!sk || !pass_uring(st, VG_CONNECT, t))
		return;
	struct ev_net *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost(VG_CONNECT);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	fill_hdr(&e->h, t, VG_CONNECT, VF_PASSED, sizeof(*e));
	struct comm16 c = task_comm(t->group_leader);
	__builtin_memcpy(e->h.comm, &c, sizeof(c));
	e->ret = res;
	sk_endpoints(sk, e);
	bpf_ringbuf_submit(e, rb_flags(e->h.ts));
}

SEC("tp_btf/io_uring_complete")
int BPF_PROG(vigil_uring_complete, struct io_ring_ctx *ring, void *req, struct io_uring_cqe *cqe)
{
	/* a BTF cast (no helper call): every io_uring completion runs this, so
	 * the opcode test must be cheap */
	struct io_kiocb *r = bpf_core_cast(req, struct io_kiocb);

	if (!r)
		return 0;
	__u8 op = r->opcode;
	if (op != IORING_OP_OPENAT && op != IORING_OP_OPENAT2 && op != IORING_OP_CONNECT)
		return 0;
	struct filter_state *st = get_state();
	struct task_struct *t = bpf_get_current_task_btf();
	if (!st || t->tgid == st->self_tgid)
		return 0;
	__s32 res = BPF_CORE_READ(cqe, res);
	if (op == IORING_OP_CONNECT) {
		uring_connect(st, t, r, res);
		return 0;
	}
	struct io_open *o = (void *)r + bpf_core_field_offset(struct io_kiocb, cmd);
	if (res < 0 || BPF_CORE_READ(o, file_slot) != 0)
		return 0;
	if (!pass_uring(st, VG_OPEN, t))
		return 0;
	struct opened id = {};
	struct ev_open *e = scratch_buf();
	file_id(res, &id);
	if (!id.f || !e)
		return 0;
	struct path fp = {};
	if (bpf_probe_read_kernel(&fp, sizeof(fp), &id.f->f_path))
		return 0;
	fill_hdr(&e->h, t, VG_OPEN, VF_PASSED | VF_WALKED, 0);
	__u32 base_len = append_walk(e, 0, &fp);
	if (!base_len)
		return 0;
	struct comm16 c = task_comm(t->group_leader);
	__builtin_memcpy(e->h.comm, &c, sizeof(c));
	e->dev = id.dev;
	e->ino = id.ino;
	e->pino = id.pino;
	e->ret = res;
	e->dirfd = BPF_CORE_READ(o, dfd);
	e->flags = (__u32)BPF_CORE_READ(o, how.flags);
	e->path_len = 0;
	e->base_len = base_len;
	__u32 size = sizeof(*e) + base_len;
	e->h.size = size;
	if (size > SCRATCH_SIZE)
		return 0;
	if (bpf_ringbuf_output(&events, e, size, rb_flags(e->h.ts)))
		count_lost(VG_OPEN);
	return 0;
}

/* ---- TCP: socket ownership and retransmits ---- */

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(vigil_sock_state, const struct sock *sk, const int oldstate, const int newstate)
{
	__u64 key = (__u64)sk;

	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP_)
		return 0;
	if (newstate == TCP_SYN_SENT_) {
		if ((bpf_get_current_pid_tgid() >> 32) != 0)
			remember_owner((struct sock *)sk);
	} else if (newstate == TCP_CLOSE_) {
		bpf_map_delete_elem(&owners, &key);
	}
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(vigil_retransmit, const struct sock *sk, const struct sk_buff *skb)
{
	struct filter_state *st = get_state();
	__u64 key = (__u64)sk;
	struct owner *o;
	struct ev_net *e;

	if (!st)
		return 0;
	count_seen(VG_RETRANSMIT);
	o = bpf_map_lookup_elem(&owners, &key);
	if (o && o->tgid == st->self_tgid)
		return 0;
	if (!pass_owner(st, VG_RETRANSMIT, o))
		return 0;
	count_passed(VG_RETRANSMIT);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost(VG_RETRANSMIT);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->h.type = VG_RETRANSMIT;
	e->h.flags = VF_PASSED;
	e->h.size = sizeof(*e);
	e->h.ts = bpf_ktime_get_boot_ns();
	if (o) {
		e->h.tgid = o->tgid;
		e->h.ppid = o->ppid;
		e->h.cgroup_id = o->cgroup_id;
		__builtin_memcpy(e->h.comm, o->comm, VG_COMM_LEN);
	}
	sk_endpoints((struct sock *)sk, e);
	bpf_ringbuf_submit(e, rb_flags(e->h.ts));
	return 0;
}

/* Run once at start (a task_file iterator): record the owner of every TCP
 * socket that already exists, so retransmits on connections made before
 * vigil started are attributed too. Existing entries (from the live hooks)
 * win. */
SEC("iter/task_file")
int vigil_seed_owners(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct owner o = {};

	if (!task || !file)
		return 0;
	umode_t mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & S_IFMT_) != S_IFSOCK_)
		return 0;
	struct socket *sock = BPF_CORE_READ(file, private_data);
	if (!sock)
		return 0;
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP_)
		return 0;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET_ && family != AF_INET6_)
		return 0;
	__u64 key = (__u64)sk;
	o.tgid = BPF_CORE_READ(task, tgid);
	o.ppid = BPF_CORE_READ(task, real_parent, tgid);
	o.cgroup_id = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
	bpf_probe_read_kernel_str(o.comm, sizeof(o.comm), &task->comm);
	struct task_struct *parent = BPF_CORE_READ(task, real_parent);
	bpf_probe_read_kernel_str(o.pcomm, sizeof(o.pcomm), &parent->comm);
	bpf_map_update_elem(&owners, &key, &o, BPF_NOEXIST);
	return 0;
}
