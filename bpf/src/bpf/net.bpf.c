/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* vigil BPF, network: sockets behind fds, connect and accept records (at
 * their syscall exit, dispatched by syscalls.bpf.c), TCP socket owners
 * (set at SYN_SENT / accept, seeded once by a task_file iterator) and
 * retransmits attributed through them. Included by vigil.bpf.c. */

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


static __always_inline void connect_exit(struct sys_args *p, long ret, struct task_struct *t)
{
	struct ev_net *e;
	__u16 family = 0;
	void *uaddr = (void *)p->a1;
	__u32 alen = p->a2;

	if (bpf_probe_read_user(&family, sizeof(family), uaddr))
		return;
	if (family == AF_UNIX_) {
		e = rec_reserve(sizeof(*e) + VG_UNIX_MAX, VG_CONNECT);
		if (!e)
			return;
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
		rec_submit(&e->h);
		return;
	}
	if (family != AF_INET_ && family != AF_INET6_)
		return;
	e = rec_reserve(sizeof(*e), VG_CONNECT);
	if (!e)
		return;
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
	rec_submit(&e->h);
}

static __always_inline void accept_exit(struct sys_args *p, long ret, struct task_struct *t)
{
	struct ev_net *e;
	struct sock *sk = NULL;

	if (ret >= 0)
		sk = sock_from_fd((int)ret);
	e = rec_reserve(sizeof(*e), VG_ACCEPT);
	if (!e)
		return;
	__builtin_memset(e, 0, sizeof(*e));
	fill_hdr(&e->h, t, VG_ACCEPT, VF_PASSED, sizeof(*e));
	e->ret = ret;
	if (sk) {
		sk_endpoints(sk, e);
		if (e->proto == IPPROTO_TCP_ && (e->family == AF_INET_ || e->family == AF_INET6_))
			remember_owner(sk);
	}
	rec_submit(&e->h);
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
	e = rec_reserve(sizeof(*e), VG_RETRANSMIT);
	if (!e)
		return 0;
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
	rec_submit(&e->h);
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
