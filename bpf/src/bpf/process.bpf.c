/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* vigil BPF, process lifecycle: exec (filename, argv, ids, tty, cwd walk,
 * capabilities, where the executable came from;
 * always sent for the process table, flagged VF_PASSED when the filter
 * accepts it), fork (processes only) and exit (the last thread). Included
 * by vigil.bpf.c. */

#define TMPFS_MAGIC_ 0x01021994
#define HUGETLBFS_MAGIC_ 0x958458f6
#define OVERLAYFS_MAGIC_ 0x794c7630

/* Where the executable came from (VX_*): a memfd (its dentry is named
 * "memfd:..." on the internal shmem/hugetlbfs mount), a file with no link
 * left (unlinked before an fexecve of its fd, or an O_TMPFILE), or an
 * overlayfs file held by the upper layer (an overlay inode with an upper
 * dentry: written or copied up since the container started). */
static __always_inline __u8 exe_flags(struct linux_binprm *bprm)
{
	struct file *f = BPF_CORE_READ(bprm, file);
	__u8 fl = VX_KNOWN;

	if (!f)
		return 0;
	struct inode *ino = BPF_CORE_READ(f, f_inode);
	struct dentry *d = BPF_CORE_READ(f, f_path.dentry);
	unsigned long magic = BPF_CORE_READ(ino, i_sb, s_magic);
	char pre[6] = {};
	bpf_probe_read_kernel(pre, sizeof(pre), BPF_CORE_READ(d, d_name.name));
	if ((magic == TMPFS_MAGIC_ || magic == HUGETLBFS_MAGIC_) && pre[0] == 'm' &&
	    pre[1] == 'e' && pre[2] == 'm' && pre[3] == 'f' && pre[4] == 'd' && pre[5] == ':')
		fl |= VX_MEMFD;
	else if (BPF_CORE_READ(ino, i_nlink) == 0 ||
		 (!BPF_CORE_READ(d, d_hash.pprev) && BPF_CORE_READ(d, d_parent) != d))
		fl |= VX_DELETED;
	if (magic == OVERLAYFS_MAGIC_ && bpf_core_type_exists(struct ovl_inode)) {
		struct ovl_inode *oi =
			(void *)((char *)ino - bpf_core_field_offset(struct ovl_inode, vfs_inode));
		if (BPF_CORE_READ(oi, __upperdentry))
			fl |= VX_UPPER;
	}
	return fl;
}

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
	/* the new credentials are committed by now */
	e->cap_eff = BPF_CORE_READ(p, cred, cap_effective.val);
	e->cap_prm = BPF_CORE_READ(p, cred, cap_permitted.val);
	e->exe_flags = exe_flags(bprm);

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
	emit_scratch(&e->h, size);
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
	e = rec_reserve(sizeof(*e), VG_FORK);
	if (!e)
		return 0;
	fill_hdr(&e->h, bpf_get_current_task_btf(), VG_FORK, 0, sizeof(*e));
	e->h.tgid = ctgid;
	e->h.tid = cpid;
	e->h.ppid = BPF_CORE_READ(child, real_parent, tgid);
	e->start_ns = BPF_CORE_READ(child, start_boottime);
	__u64 ugid = bpf_get_current_uid_gid();
	e->uid = (__u32)ugid;
	e->gid = ugid >> 32;
	rec_submit(&e->h);
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
	e = rec_reserve(sizeof(*e), VG_EXIT);
	if (!e)
		return 0;
	fill_hdr(&e->h, p, VG_EXIT, flags, sizeof(*e));
	int code = BPF_CORE_READ(p, exit_code);
	if (BPF_CORE_READ(p, signal, flags) & SIGNAL_GROUP_EXIT_)
		code = BPF_CORE_READ(p, signal, group_exit_code);
	e->code = (code >> 8) & 0xff;
	e->signal = code & 0x7f;
	rec_submit(&e->h);
	return 0;
}
