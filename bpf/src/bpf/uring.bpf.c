/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* vigil BPF, io_uring: opens and connects submitted through a ring, seen at
 * their completion; the on-demand path operations (RENAMEAT, UNLINKAT,
 * MKDIRAT, SYMLINKAT, LINKAT: paths kept at submission) and SOCKET as the
 * same ev_sys records as their syscalls. Included by vigil.bpf.c. */

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
	struct ev_net *e = rec_reserve(sizeof(*e), VG_CONNECT);
	if (!e)
		return;
	__builtin_memset(e, 0, sizeof(*e));
	fill_hdr(&e->h, t, VG_CONNECT, VF_PASSED, sizeof(*e));
	struct comm16 c = task_comm(t->group_leader);
	__builtin_memcpy(e->h.comm, &c, sizeof(c));
	e->ret = res;
	sk_endpoints(sk, e);
	rec_submit(&e->h);
}

/* ---- on-demand kinds through io_uring ----
 *
 * The path operations' file names are kernel copies (`struct filename`)
 * made when the request is prepared and freed when it runs, so they are
 * read at submission (io_uring_submit_req, attached only while one of
 * these kinds is asked for) into `uring_ops`, keyed by the request, and
 * reported with the result at completion. SOCKET keeps its arguments in
 * the request: read at completion. */

/* A path operation between submission and completion. */
struct uring_op {
	__u64 arg[5]; /* the equivalent syscall's arguments (x86_64 order) */
	__u32 nr;     /* the equivalent syscall (renameat2, unlinkat, ...) */
	__u16 l1;
	__u16 l2;
	__u8 op;
	__u8 cut;     /* VF_CUT_S1 / VF_CUT_S2 */
	char s[2 * VG_PATH_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct uring_op);
} uring_ops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct uring_op);
} uring_tmp SEC(".maps");

/* A kernel file name into `dst` (at most VG_PATH_MAX bytes incl. its NUL);
 * its length, `cut` set in *flags when it was longer. */
static __always_inline __u16 uring_name(char *dst, struct filename *fn, __u8 *flags, __u8 cut)
{
	const char *name = BPF_CORE_READ(fn, name);
	long n = bpf_probe_read_kernel_str(dst, VG_PATH_MAX, name);

	if (n <= 0)
		return 0;
	if (n >= VG_PATH_MAX)
		*flags |= cut; /* names of PATH_MAX may exceed the bound */
	return n;
}

SEC("tp_btf/io_uring_submit_req")
int BPF_PROG(vigil_op_uring_submit, struct io_kiocb *req)
{
	struct io_kiocb *r = bpf_core_cast(req, struct io_kiocb);
	__u8 opc = r->opcode;
	__u8 op;
	__u32 nr;

	switch (opc) {
	case IORING_OP_RENAMEAT: op = VO_RENAME; nr = 316; break;
	case IORING_OP_UNLINKAT: op = VO_UNLINK; nr = 263; break;
	case IORING_OP_MKDIRAT: op = VO_MKDIR; nr = 258; break;
	case IORING_OP_SYMLINKAT: op = VO_SYMLINK; nr = 266; break;
	case IORING_OP_LINKAT: op = VO_LINK; nr = 265; break;
	default:
		return 0;
	}
	if (!op_wanted(op) && !(nr == 263 && op_wanted(VO_RMDIR)))
		return 0;
	struct filter_state *st = get_state();
	struct task_struct *t = bpf_get_current_task_btf();
	if (!st || t->tgid == st->self_tgid || !pass_uring(st, VG_SYSOP, t))
		return 0;
	__u32 zero = 0;
	struct uring_op *u = bpf_map_lookup_elem(&uring_tmp, &zero);
	if (!u)
		return 0;
	void *cmd = (void *)r + bpf_core_field_offset(struct io_kiocb, cmd);
	struct filename *f1 = NULL, *f2 = NULL;
	__builtin_memset(u->arg, 0, sizeof(u->arg));
	u->op = op;
	u->nr = nr;
	u->cut = 0;
	if (opc == IORING_OP_RENAMEAT || opc == IORING_OP_LINKAT || opc == IORING_OP_SYMLINKAT) {
		/* io_rename and io_link share this layout */
		struct io_link *l = cmd;
		f1 = BPF_CORE_READ(l, oldpath);
		f2 = BPF_CORE_READ(l, newpath);
		if (opc == IORING_OP_SYMLINKAT) {
			/* symlinkat(target, newdfd, linkpath) */
			u->arg[1] = (__u32)BPF_CORE_READ(l, new_dfd);
		} else {
			/* renameat2 / linkat(olddfd, old, newdfd, new, flags) */
			u->arg[0] = (__u32)BPF_CORE_READ(l, old_dfd);
			u->arg[2] = (__u32)BPF_CORE_READ(l, new_dfd);
			u->arg[4] = (__u32)BPF_CORE_READ(l, flags);
		}
	} else if (opc == IORING_OP_UNLINKAT) {
		struct io_unlink *ul = cmd;
		f1 = BPF_CORE_READ(ul, filename);
		u->arg[0] = (__u32)BPF_CORE_READ(ul, dfd);
		u->arg[2] = (__u32)BPF_CORE_READ(ul, flags);
	} else {
		struct io_mkdir *mk = cmd;
		f1 = BPF_CORE_READ(mk, filename);
		u->arg[0] = (__u32)BPF_CORE_READ(mk, dfd);
		u->arg[2] = BPF_CORE_READ(mk, mode);
	}
	u->l1 = f1 ? uring_name(u->s, f1, &u->cut, VF_CUT_S1) : 0;
	__u16 l1 = u->l1 & (VG_PATH_MAX * 2 - 1);
	if (l1 > VG_PATH_MAX)
		l1 = VG_PATH_MAX;
	u->l2 = f2 ? uring_name(u->s + l1, f2, &u->cut, VF_CUT_S2) : 0;
	__u64 key = (__u64)req;
	bpf_map_update_elem(&uring_ops, &key, u, BPF_ANY);
	return 0;
}

/* The ev_sys record of an io_uring operation of `t` (group leader's comm),
 * arguments `a`, result `res`; strings `s` (`l1` + `l2` bytes) when given.
 * The filter ran already. */
static __always_inline void uring_sysop(struct task_struct *t, __u8 op, __u32 nr, __u64 *a,
					__s32 res, const char *s, __u32 l1, __u32 l2, __u8 cut)
{
	struct ev_sys *e = scratch_buf();

	if (!e)
		return;
	fill_hdr(&e->h, t, VG_SYSOP, VF_PASSED, 0);
	struct comm16 c = task_comm(t->group_leader);
	__builtin_memcpy(e->h.comm, &c, sizeof(c));
	if (cut)
		e->h.flags |= VF_TRUNC | cut;
	e->ret = res;
	for (int i = 0; i < 5; i++)
		e->arg[i] = a[i];
	e->nr = nr;
	e->op = op;
	e->aux = 0;
	sock_fill(&e->sock, NULL);
	l1 &= 2 * VG_PATH_MAX - 1;
	l2 &= 2 * VG_PATH_MAX - 1;
	if (l1 > VG_PATH_MAX)
		l1 = VG_PATH_MAX;
	if (l2 > VG_PATH_MAX)
		l2 = VG_PATH_MAX;
	if (s && (l1 + l2) && bpf_probe_read_kernel(e->data, l1 + l2, s))
		l1 = l2 = 0;
	e->s1_len = l1;
	e->s2_len = l2;
	e->s3_len = 0;
	emit_scratch(&e->h, sizeof(*e) + l1 + l2);
}

/* A completed io_uring path operation (kept at submission) or socket. */
static __always_inline void uring_op_complete(struct filter_state *st, struct task_struct *t,
					      struct io_kiocb *r, void *req, __u8 opc, __s32 res)
{
	if (opc == IORING_OP_SOCKET) {
		if (!op_wanted(VO_SOCKET) || !pass_uring(st, VG_SYSOP, t))
			return;
		struct io_socket *so = (void *)r + bpf_core_field_offset(struct io_kiocb, cmd);
		__u64 a[5] = { (__u32)BPF_CORE_READ(so, domain), (__u32)BPF_CORE_READ(so, type),
			       (__u32)BPF_CORE_READ(so, protocol), 0, 0 };
		uring_sysop(t, VO_SOCKET, 41, a, res, NULL, 0, 0, 0);
		return;
	}
	__u64 key = (__u64)req;
	struct uring_op *u = bpf_map_lookup_elem(&uring_ops, &key);
	if (!u)
		return;
	uring_sysop(t, u->op, u->nr, u->arg, res, u->s, u->l1, u->l2, u->cut);
	bpf_map_delete_elem(&uring_ops, &key);
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
	bool path_op = op == IORING_OP_RENAMEAT || op == IORING_OP_UNLINKAT ||
		       op == IORING_OP_MKDIRAT || op == IORING_OP_SYMLINKAT || op == IORING_OP_LINKAT;
	if (op != IORING_OP_OPENAT && op != IORING_OP_OPENAT2 && op != IORING_OP_CONNECT &&
	    op != IORING_OP_SOCKET && !path_op)
		return 0;
	struct filter_state *st = get_state();
	struct task_struct *t = bpf_get_current_task_btf();
	if (!st || t->tgid == st->self_tgid)
		return 0;
	__s32 res = BPF_CORE_READ(cqe, res);
	if (path_op || op == IORING_OP_SOCKET) {
		uring_op_complete(st, t, r, req, op, res);
		return 0;
	}
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
	emit_scratch(&e->h, size);
	return 0;
}
