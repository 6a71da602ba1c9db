/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* vigil BPF: the first-stage (kernel) filter. An event passes when its
 * type's mode is pass-all, or the mode is match and one of the process sets
 * (pid, comm, cgroup, parent comm) of the live generation holds the type's
 * bit; opens are also matched by raw path (prefix / suffix tries), write
 * flag and the opened file's identity. vigil's own tgid never passes. Each
 * pass_* counts `seen` and `passed` for its type. `KernelFilter::passes` in
 * the engine models this (its proptest checks it is sound). */
#ifndef VIGIL_FILTER_BPF_H
#define VIGIL_FILTER_BPF_H

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

/* ---- open: the raw path ---- */

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

/* An open's raw path, read from user memory once per event: by the filter
 * when it checks the path (whole, up to VG_PATH_MAX bytes, into `pathbuf`
 * where the LPM key wants it), else by the record. The record copies the
 * filter's read, so the path the filter judged is the path reported even
 * if the process rewrites its buffer in between. */
struct upath {
	const char *u; /* the user pointer (NULL: none, e.g. open_by_handle_at) */
	__u32 n;       /* bytes read incl. the NUL (0: unreadable) */
	bool got;      /* read into pathbuf (k.data[1..]) */
	bool cut;      /* went on past VG_PATH_MAX */
};

/* Raw path check: unreadable, empty, relative, unnormalised (including a
 * trailing `/`) or long paths pass; a clean absolute path passes when its
 * longest prefix in f_path, or its longest suffix in f_suffix (generation
 * `gen`), allows it. */
static __always_inline bool path_passes(__u32 gen, __u8 has, struct upath *up, int write)
{
	__u32 zero = 0;
	struct path_buf *b = bpf_map_lookup_elem(&pathbuf, &zero);

	if (!b)
		return true;
	__u32 n = ustr_read((char *)&b->k.data[1], up->u, &up->cut);
	up->n = n;
	up->got = true;
	if (n <= 1)
		return true;
	__u32 len = n - 1;
	if (len >= VG_PKEY_PATH)
		return true;
	barrier_var(len); /* keep the `& 0xff` masks below: the verifier needs them */
	if (b->k.data[1] != '/' || b->k.data[len & 0xff] == '/')
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


/* ---- open: the opened file's identity ---- */

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

/* ---- open: the whole check ---- */

/* Filter for an open at its syscall exit (arguments in `p`, result `ret`);
 * counts `seen` and `passed`. Process sets first, then the write flag, then
 * the raw path, then for a successful open the identity of the opened file
 * (a symlink, hard link, bind mount or /proc/self/root alias of a watched
 * file has a raw path no prefix matches): a rejected open costs the set
 * lookups, one user-string copy, one LPM lookup and, when it succeeded, an
 * fd-slot read and one or two array loads. */
static __always_inline bool pass_open(struct filter_state *st, struct sys_args *p, long ret,
				      struct upath *up, struct opened *id, struct task_struct *t)
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
	if ((has & VH_PATH) && path_passes(gen, has, up, w))
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

#endif
