/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* vigil BPF, the on-demand syscall kinds (ev_sys records): one exit program
 * per syscall, attached only while asked for, and the ia32 table of the same
 * syscalls for the compat path (syscalls.bpf.c). Included by vigil.bpf.c. */

/* ---- on-demand syscall kinds (ev_sys) ----
 *
 * One exit program per syscall, loaded with the others but attached only
 * while a loaded rule (or a snoop/record request) needs its kind
 * (Sensors::set_ops): a kind nobody asks for costs nothing. The arguments
 * are read from the task's saved registers at exit, like the open hooks;
 * the first-stage filter's comm/pid/cgroup sets apply through the shared
 * VG_SYSOP slot. Failed attempts are recorded too (`ret` < 0). */


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
	emit_scratch(&e->h, size);
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
