/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* vigil BPF, io_uring: opens and connects submitted through a ring, seen at
 * their completion. Included by vigil.bpf.c. */

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
	emit_scratch(&e->h, size);
	return 0;
}
