/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* vigil BPF: the definitions every hook family shares, in one place.
 *
 * - syscall numbers (x86_64 and the ia32 table the compat path maps) and the
 *   kernel constants vigil needs without the uapi headers;
 * - every map: the ring buffer (`events`), the per-type counters, the
 *   first-stage filter (`fstate` = live generation + vigil's tgid, `fcfg`,
 *   the comm / parent comm / pid / cgroup sets and their pre-check arrays,
 *   the path prefix/suffix tries, the identity set), the socket owners, the
 *   per-CPU scratch buffers, the wake-up state and the on-demand kinds asked
 *   for (`op_on`);
 * - the small accessors of those maps (counters, filter state, scratch).
 *
 * Record layouts and map value types shared with Rust live in vigil.h. */
#ifndef VIGIL_MAPS_BPF_H
#define VIGIL_MAPS_BPF_H

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

/* every record to userspace (emit.bpf.h: wake-up policy) */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

/* per record type: seen, passed the filter, lost (ring full) */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VG_NTYPES);
	__type(key, __u32);
	__type(value, struct counters);
} counters SEC(".maps");

/* the live filter generation and vigil's own tgid (always dropped) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct filter_state);
} fstate SEC(".maps");

/* per generation: each type's mode and which sets hold its bit */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct filter_cfg);
} fcfg SEC(".maps");

/* the filter's sets, keyed with the generation; value: type bit mask */
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

/* per-CPU: the open's raw path, read once (filter.bpf.h: struct upath) */
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

/* per-CPU: when this CPU last forced a reader wake-up, records since (rb_flags) */
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

/* the on-demand kinds' string slot meaning "no string" (ops.bpf.c) */
#define OP_STR_NONE 7

/* The on-demand kinds asked for (index VO_*, written by Sensors::set_ops):
 * the compat path, always attached, reports only these. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u8);
} op_on SEC(".maps");

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

#endif
