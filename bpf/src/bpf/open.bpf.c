/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* vigil BPF, opens: the open record at the syscall exit (dispatched by
 * syscalls.bpf.c; the filter is filter.bpf.h's pass_open). Included by
 * vigil.bpf.c. */

/* The filter's read of the raw path (struct upath) into the record at
 * `dst`: a kernel copy out of pathbuf, not a second read of user memory. */
static __always_inline __u32 upath_copy(char *dst, struct upath *up, struct ev_hdr *h)
{
	__u32 zero = 0;
	struct path_buf *b = bpf_map_lookup_elem(&pathbuf, &zero);
	__u32 n = up->n;

	if (!b || !n)
		return 0;
	if (n > VG_PATH_MAX)
		n = VG_PATH_MAX;
	if (bpf_probe_read_kernel(dst, n, &b->k.data[1]))
		return 0;
	if (up->cut)
		h->flags |= VF_TRUNC | VF_CUT_PATH;
	return n;
}

/* The open record: the raw path as passed, and a walk: for a successful
 * open the opened file's own path (VF_WALKED: what the kernel resolved,
 * whatever `./` padding, `..`, symlinks or /proc/self/root the raw path
 * held, and whatever its length) with its identity; for a failed relative
 * open the base directory. open_by_handle_at has no path: only its
 * successful opens are recorded. The raw path is the filter's read when it
 * read one (`up`), else read here: once per event either way. */
static __always_inline void open_exit(struct sys_args *p, long ret, struct task_struct *t,
				      struct upath *up, struct opened *id)
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
	__u32 len = 0;
	if (!handle)
		len = up->got ? upath_copy(e->path, up, &e->h)
			      : read_ustr(e->path, up->u, &e->h, VF_CUT_PATH);
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
	emit_scratch(&e->h, size);
}
