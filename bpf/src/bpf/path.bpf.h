/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* vigil BPF: files, paths and user strings. The file behind an fd of the
 * current task and its identity (`struct opened`, read once per event), the
 * dentry walk of a `struct path` up to the task's root (what the records
 * carry as resolved paths: the opened file, the cwd, a relative path's base
 * directory), and the bounded user-string read every record uses. */
#ifndef VIGIL_PATH_BPF_H
#define VIGIL_PATH_BPF_H

/* The file at `fd` of the current task: direct loads through the task's BTF
 * pointers and one read of the fd array slot (a pointer to pointers is not
 * a BTF pointer). */
static __always_inline struct file *file_from_fd(int fd)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct fdtable *fdt = t->files->fdt;
	struct file *f = NULL;

	if (!fdt || fd < 0 || (unsigned int)fd >= fdt->max_fds)
		return NULL;
	struct file **fds = fdt->fd;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]))
		return NULL;
	return f;
}

/* The file a successful open returned, read once (by the filter or the
 * record, whichever needs it first): the file, its inode, its superblock's
 * dev_t and its parent directory's inode (of the dentry, as stat(2) sees
 * them). */
struct opened {
	struct file *f; /* NULL: unknown */
	__u64 ino;
	__u64 pino;
	__u32 dev;
	bool got;
};

static __always_inline void file_id(long fd, struct opened *id)
{
	if (id->got)
		return;
	id->got = true;
	struct file *raw = file_from_fd(fd);
	if (!raw)
		return;
	struct file *f = bpf_core_cast(raw, struct file);
	struct dentry *d = f->f_path.dentry;
	id->f = f;
	id->ino = d->d_inode->i_ino;
	id->dev = d->d_inode->i_sb->s_dev;
	id->pino = d->d_parent->d_inode->i_ino;
}
/* Walk a path's dentries up to the task's root (the global root unless the
 * task is chrooted or in a container), crossing mounts, and write
 * the component names leaf first, each NUL-terminated, into the walk
 * scratch buffer (at most VG_DIR_MAX bytes). Userspace reverses them.
 * bpf_d_path is not allowed in tp_btf programs; bpf_loop keeps the
 * verifier's cost of the walk constant. */
struct walk_ctx {
	struct dentry *d;
	struct vfsmount *vm;
	struct mount *m;
	struct dentry *root_d; /* the task's root (chroot, container): the walk stops there */
	struct vfsmount *root_m;
	__u32 off;
	bool trunc;
};

static long walk_step(__u64 i, void *ctx)
{
	struct walk_ctx *c = ctx;
	struct dentry *d = c->d;
	struct vfsmount *vm = c->vm;
	struct mount *m = c->m;
	struct dentry *mroot = BPF_CORE_READ(vm, mnt_root);
	struct dentry *parent = BPF_CORE_READ(d, d_parent);
	char *buf;

	if (d == c->root_d && vm == c->root_m)
		return 1; /* the task's root: paths are shown as the task sees them */
	if (d == mroot) {
		struct mount *mp = BPF_CORE_READ(m, mnt_parent);
		if (mp == m)
			return 1; /* root of the root mount */
		c->d = BPF_CORE_READ(m, mnt_mountpoint);
		c->m = mp;
		c->vm = &mp->mnt;
		return 0;
	}
	if (d == parent)
		return 1;
	__u32 off = c->off;
	if (off > VG_DIR_MAX - 256) {
		c->trunc = true;
		return 1;
	}
	buf = walk_buf();
	if (!buf)
		return 1;
	const unsigned char *name = BPF_CORE_READ(d, d_name.name);
	long n = bpf_probe_read_kernel_str(buf + off, 256, name);
	if (n <= 0)
		return 1;
	c->off = off + n;
	c->d = parent;
	return 0;
}

/* Returns the bytes written to the walk buffer; sets *trunc when cut short. */
static __always_inline __u32 walk_path(struct path *p, bool *trunc)
{
	struct walk_ctx c = {};

	struct task_struct *t = bpf_get_current_task_btf();

	c.d = BPF_CORE_READ(p, dentry);
	c.vm = BPF_CORE_READ(p, mnt);
	c.m = container_of(c.vm, struct mount, mnt);
	c.root_d = t->fs->root.dentry;
	c.root_m = t->fs->root.mnt;
	long loops = bpf_loop(VG_DIR_DEPTH, walk_step, &c, 0);
	if (loops >= VG_DIR_DEPTH)
		c.trunc = true;
	*trunc = c.trunc;
	return c.off;
}

/* The walk of `base` appended to the record at byte `at` of its path
 * area; returns its length (0 when unknown) and flags a cut walk. */
static __always_inline __u32 append_walk(struct ev_open *e, __u32 at, struct path *base)
{
	char *wb = walk_buf();
	bool trunc = false;

	if (!wb)
		return 0;
	__u32 n = walk_path(base, &trunc) & (VG_DIR_MAX - 1);
	if (n && bpf_probe_read_kernel(e->path + (at & (2 * VG_PATH_MAX - 1)), n, wb))
		n = 0;
	if (trunc)
		e->h.flags |= VF_TRUNC | VF_CUT_WALK;
	return n;
}

/* A user string (at most VG_PATH_MAX bytes incl. its NUL) into `dst`;
 * returns the bytes copied (0 if unreadable) and sets *cut when the string
 * went on past the bound. */
static __always_inline __u32 ustr_read(char *dst, const void *src, bool *cut)
{
	long n = bpf_probe_read_user_str(dst, VG_PATH_MAX, src);

	if (n < 0)
		return 0;
	if (n >= VG_PATH_MAX) {
		/* the last byte became the NUL: was there more? */
		char more = 0;
		n = VG_PATH_MAX;
		bpf_probe_read_user(&more, 1, src + VG_PATH_MAX - 1);
		*cut = more != 0;
	}
	return n;
}

/* ustr_read into a record: a cut string flags `cut` (a VF_CUT_* bit) in `h`. */
static __always_inline __u32 read_ustr(char *dst, const void *src, struct ev_hdr *h, __u8 cut)
{
	bool c = false;
	__u32 n = ustr_read(dst, src, &c);

	if (c)
		h->flags |= VF_TRUNC | cut;
	return n;
}

#endif
