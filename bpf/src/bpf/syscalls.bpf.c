/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* vigil BPF, the syscall exits of open / connect / accept: the arguments
 * read back from the saved registers (x86_64 and ia32), the shared body
 * (filter, then the family's record), the per-syscall tracepoints, the raw
 * sys_exit fallback and the compat (int 0x80) program, which also serves the
 * on-demand kinds. Included by vigil.bpf.c. */

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
	struct upath up = { .u = (const char *)p.a1 };
	if (type == VG_OPEN ? !pass_open(st, &p, ret, &up, &of, t) : !pass_current(st, type, t))
		return 0;
	switch (type) {
	case VG_OPEN:
		open_exit(&p, ret, t, &up, &of);
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
