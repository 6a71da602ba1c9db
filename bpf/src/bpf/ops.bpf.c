/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* vigil BPF, the on-demand syscall kinds (ev_sys records): one exit program
 * per syscall, attached only while asked for, and the ia32 table of the same
 * syscalls for the compat path (syscalls.bpf.c). Included by vigil.bpf.c. */

/* One exit program per syscall, loaded with the others but attached only
 * while a loaded rule (or a snoop/record request) needs its kind
 * (Sensors::set_ops): a kind nobody asks for costs nothing. The arguments
 * are read from the task's saved registers at exit, like the open hooks;
 * the first-stage filter's comm/pid/cgroup sets apply through the shared
 * VG_SYSOP slot. Failed attempts are recorded too (`ret` < 0). */

#define NR_fchmod 91
#define NR_fchown 93
#define NR_mount 165
#define NR_fcntl 72
#define NR_finit_module 313
#define F_DUPFD_ 0
#define F_DUPFD_CLOEXEC_ 1030
#define BPF_MAP_CREATE_ 0
#define BPF_PROG_LOAD_ 5
/* offsets in union bpf_attr (uapi, stable): map_name, prog_name */
#define BPF_ATTR_MAP_NAME 28
#define BPF_ATTR_PROG_NAME 48
#define BPF_OBJ_NAME_LEN_ 16

/* The endpoints of socket `sk` (NULL: leaves `o` zeroed, family 0). */
static __always_inline void sock_fill(struct op_sock *o, struct sock *sk)
{
	__builtin_memset(o, 0, sizeof(*o));
	if (!sk)
		return;
	o->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	o->type = BPF_CORE_READ(sk, sk_type);
	o->proto = BPF_CORE_READ(sk, sk_protocol);
	o->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	o->dport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	o->state = BPF_CORE_READ(sk, __sk_common.skc_state);
	if (o->family == AF_INET6_) {
		BPF_CORE_READ_INTO(&o->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&o->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	} else if (o->family == AF_INET_) {
		BPF_CORE_READ_INTO((__u32 *)o->saddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)o->daddr, sk, __sk_common.skc_daddr);
	}
}

/* The dentry walk of the current task's fd `fd` into `dst`; its length
 * (0 when the fd is not open). */
static __always_inline __u32 fd_walk(char *dst, long fd, struct ev_hdr *h)
{
	struct file *f = file_from_fd(fd);
	struct path fp = {};

	if (!f || bpf_probe_read_kernel(&fp, sizeof(fp), &f->f_path))
		return 0;
	h->flags |= VF_WALKED;
	return walk_into(dst, &fp, h, VF_CUT_S1);
}

/* Record one on-demand syscall of `t` (it passed sysop_pass) with arguments `a` (x86_64 order),
 * user strings in argument slots `s1` / `s2` (OP_STR_NONE: none). What a
 * kind needs beyond its arguments is read here, once, while the syscall's
 * objects still exist: the socket behind the fd (dup, listen), the file
 * behind the fd (fchmod, fchown, finit_module: a dentry walk as s1), the
 * fs type string (mount), the created map/program type and name (bpf). */
static __always_inline int sysop_emit(__u8 op, __u32 nr, long ret, struct task_struct *t,
				      __u64 *a, int s1, int s2)
{
	struct ev_sys *e = scratch_buf();

	if (!e)
		return 0;
	fill_hdr(&e->h, t, VG_SYSOP, VF_PASSED, 0);
	e->ret = ret;
	for (int i = 0; i < 5; i++)
		e->arg[i] = a[i];
	e->nr = nr;
	e->op = op;
	e->aux = 0;
	__u64 p1 = s1 >= 0 && s1 < 5 ? e->arg[s1 & 7] : 0;
	__u64 p2 = s2 >= 0 && s2 < 5 ? e->arg[s2 & 7] : 0;
	__u64 p3 = 0;
	bool walk = false;
	struct sock *sk = NULL;
	switch (op) {
	case VO_DUP:
	case VO_LISTEN:
		sk = sock_from_fd((int)a[0]);
		break;
	case VO_CHMOD:
	case VO_CHOWN:
	case VO_MODULE:
		walk = nr == NR_fchmod || nr == NR_fchown || nr == NR_finit_module;
		break;
	case VO_MOUNT:
		if (nr == NR_mount)
			p3 = a[2];
		break;
	case VO_BPF:
		if (a[0] == BPF_MAP_CREATE_ || a[0] == BPF_PROG_LOAD_) {
			__u32 ty = 0;
			if (!bpf_probe_read_user(&ty, sizeof(ty), (void *)a[1]))
				e->aux = ty;
			p1 = a[1] + (a[0] == BPF_PROG_LOAD_ ? BPF_ATTR_PROG_NAME : BPF_ATTR_MAP_NAME);
		}
		break;
	}
	sock_fill(&e->sock, sk);
	__u32 l1 = 0, l2 = 0, l3 = 0;
	if (walk)
		l1 = fd_walk(e->data, (int)a[0], &e->h);
	else if (op == VO_BPF && p1) {
		long n = bpf_probe_read_user_str(e->data, BPF_OBJ_NAME_LEN_, (void *)p1);
		l1 = n > 0 ? n : 0;
	}
	else if (p1)
		l1 = read_ustr(e->data, (void *)p1, &e->h, VF_CUT_S1);
	l1 &= VG_DIR_MAX - 1;
	if (p2)
		l2 = read_ustr(e->data + l1, (void *)p2, &e->h, VF_CUT_S2);
	l2 &= 2 * VG_PATH_MAX - 1;
	if (p3)
		l3 = read_ustr(e->data + l1 + l2, (void *)p3, &e->h, VF_CUT_S3);
	l3 &= 2 * VG_PATH_MAX - 1;
	e->s1_len = l1;
	e->s2_len = l2;
	e->s3_len = l3;
	emit_scratch(&e->h, sizeof(*e) + l1 + l2 + l3);
	return 0;
}

/* The first-stage filter for an on-demand record of `t` (vigil itself is
 * never reported); counts `seen` and `passed`. Runs before anything else
 * is read, so a scoped-away call costs the filter only. */
static __always_inline bool sysop_pass(struct task_struct *t)
{
	struct filter_state *st = get_state();

	return st && t->tgid != st->self_tgid && pass_current(st, VG_SYSOP, t);
}

static __always_inline int sysop_exit(__u8 op, __u32 nr, long ret, struct task_struct *t,
				      int s1, int s2)
{
	if (!sysop_pass(t))
		return 0;
	/* direct loads through the BTF pointer (no helper call per register) */
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(t);
	__u64 a[5] = { regs->di, regs->si, regs->dx, regs->r10, regs->r8 };

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
	case 41: OPC(VO_DUP, 32, N, N); break;
	case 63: OPC(VO_DUP, 33, N, N); break;
	case 330: OPC(VO_DUP, 292, N, N); break;
	case 55: /* fcntl, fcntl64: only F_DUPFD* (compat_sysop) */
	case 221: OPC(VO_DUP, NR_fcntl, N, N); break;
	case 363: OPC(VO_LISTEN, 50, N, N); break;
	case 182: /* 16-bit ids */
	case 212: OPC(VO_CHOWN, 92, 0, N); break;
	case 95:
	case 207: OPC(VO_CHOWN, NR_fchown, N, N); break;
	case 16:
	case 198: OPC(VO_CHOWN, 94, 0, N); break;
	case 298: OPC(VO_CHOWN, 260, 1, N); break;
	case 21: OPC(VO_MOUNT, NR_mount, 0, 1); break;
	case 52: OPC(VO_MOUNT, 166, 0, N); break;
	case 429: OPC(VO_MOUNT, 429, 1, 3); break;
	case 432: OPC(VO_MOUNT, 432, N, N); break;
	case 357: OPC(VO_BPF, 321, N, N); break;
	case 374: OPC(VO_USERFAULTFD, 323, N, N); break;
	case 128: OPC(VO_MODULE, 175, N, 2); break;
	case 350: OPC(VO_MODULE, NR_finit_module, N, 1); break;
	case 92: /* truncate, truncate64 (length in two registers: low word kept) */
	case 193: OPC(VO_TRUNCATE, 76, 0, N); break;
	case 11: OPC(VO_EXECFAIL, 59, 0, N); break;
	case 358: OPC(VO_EXECFAIL, 322, 1, N); break;
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
	if (c->op == VO_EXECFAIL && ret >= 0)
		return 0;
	__u64 a[5] = { (__u32)regs->bx, (__u32)regs->cx, (__u32)regs->dx, (__u32)regs->si,
		       (__u32)regs->di };
	if (c->nr == NR_fcntl && a[1] != F_DUPFD_ && a[1] != F_DUPFD_CLOEXEC_)
		return 0;
	if (!sysop_pass(t))
		return 0;
	return sysop_emit(c->op, c->nr, ret, t, a, c->s1, c->s2);
}

/* ia32 socketcall(2) (what 32-bit shellcode uses): SYS_SOCKET and
 * SYS_LISTEN make the socket and listen kinds, their arguments read from
 * the user array of 32-bit words. -1 for the other calls (connect and
 * accept go on to the open/connect/accept body). */
#define SYS_SOCKET_ 1
#define SYS_LISTEN_ 4
static __always_inline int compat_socketcall_op(long ret, struct pt_regs *regs,
						struct task_struct *t)
{
	__u32 call = (__u32)regs->bx;
	__u8 op;
	__u32 nr;

	if (call == SYS_SOCKET_) {
		op = VO_SOCKET;
		nr = 41;
	} else if (call == SYS_LISTEN_) {
		op = VO_LISTEN;
		nr = 50;
	} else {
		return -1;
	}
	if (!op_wanted(op))
		return 0;
	__u32 w[3] = {};
	void *arr = (void *)(__u64)(__u32)regs->cx;
	if (bpf_probe_read_user(w, 2 * sizeof(__u32), arr))
		return 0;
	if (op == VO_SOCKET && bpf_probe_read_user(&w[2], sizeof(__u32), arr + 8))
		return 0;
	if (!sysop_pass(t))
		return 0;
	__u64 a[5] = { w[0], w[1], w[2], 0, 0 };
	return sysop_emit(op, nr, ret, t, a, OP_STR_NONE, OP_STR_NONE);
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
SYSOP_TP(dup, VO_DUP, 32, OP_STR_NONE, OP_STR_NONE)
SYSOP_TP(dup2, VO_DUP, 33, OP_STR_NONE, OP_STR_NONE)
SYSOP_TP(dup3, VO_DUP, 292, OP_STR_NONE, OP_STR_NONE)
SYSOP_TP(listen, VO_LISTEN, 50, OP_STR_NONE, OP_STR_NONE)
SYSOP_TP(chown, VO_CHOWN, 92, 0, OP_STR_NONE)
SYSOP_TP(fchown, VO_CHOWN, NR_fchown, OP_STR_NONE, OP_STR_NONE)
SYSOP_TP(lchown, VO_CHOWN, 94, 0, OP_STR_NONE)
SYSOP_TP(fchownat, VO_CHOWN, 260, 1, OP_STR_NONE)
SYSOP_TP(mount, VO_MOUNT, NR_mount, 0, 1)
SYSOP_TP(umount, VO_MOUNT, 166, 0, OP_STR_NONE) /* umount2's tracepoint */
SYSOP_TP(move_mount, VO_MOUNT, 429, 1, 3)
SYSOP_TP(fsmount, VO_MOUNT, 432, OP_STR_NONE, OP_STR_NONE)
SYSOP_TP(bpf, VO_BPF, 321, OP_STR_NONE, OP_STR_NONE)
SYSOP_TP(userfaultfd, VO_USERFAULTFD, 323, OP_STR_NONE, OP_STR_NONE)
/* absent where the kernel has no module support (set_ops reports the kind
 * unavailable instead of failing) */
SYSOP_TP(init_module, VO_MODULE, 175, OP_STR_NONE, 2)
SYSOP_TP(finit_module, VO_MODULE, NR_finit_module, OP_STR_NONE, 1)
SYSOP_TP(truncate, VO_TRUNCATE, 76, 0, OP_STR_NONE)

/* fcntl runs often: only F_DUPFD / F_DUPFD_CLOEXEC make a dup, the rest
 * return before the filter */
SEC("tracepoint/syscalls/sys_exit_fcntl")
int vigil_op_fcntl(struct trace_event_raw_sys_exit *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(t);
	__u64 cmd = regs->si;

	if (cmd != F_DUPFD_ && cmd != F_DUPFD_CLOEXEC_)
		return 0;
	return sysop_exit(VO_DUP, NR_fcntl, ctx->ret, t, OP_STR_NONE, OP_STR_NONE);
}

/* Failed execs: a successful one is the exec record (sched_process_exec),
 * so these report only what the kernel refused. After a failure the
 * caller's memory is unchanged, so the filename is read back from the saved
 * registers like every other exit hook. */
#define EXECFAIL_TP(name, nr, s1)                                                     \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                    \
	int vigil_op_##name(struct trace_event_raw_sys_exit *ctx)                     \
	{                                                                             \
		if (ctx->ret >= 0)                                                    \
			return 0;                                                     \
		return sysop_exit(VO_EXECFAIL, nr, ctx->ret, bpf_get_current_task_btf(), s1, \
				  OP_STR_NONE);                                       \
	}

EXECFAIL_TP(execve, 59, 0)
EXECFAIL_TP(execveat, 322, 1)
