/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* vigil BPF: sending records. The header every record starts with, the
 * ring buffer's wake-up policy, and the two ways out: a fixed-size record
 * reserved in the ring (rec_reserve ... rec_submit), or a variable-size one
 * built in the per-CPU scratch buffer and copied out at its used size
 * (emit_scratch). A full ring counts `lost` for the record's type. */
#ifndef VIGIL_EMIT_BPF_H
#define VIGIL_EMIT_BPF_H

/* Header of a record about task `t` (the current task): ids, comm and
 * cgroup read from the task with direct loads, one clock read. */
static __always_inline void fill_hdr(struct ev_hdr *h, struct task_struct *t, __u8 type, __u8 flags,
				     __u16 size)
{
	struct comm16 c = task_comm(t);

	h->type = type;
	h->flags = flags;
	h->size = size;
	h->tgid = t->tgid;
	h->tid = t->pid;
	h->ppid = t->real_parent->tgid;
	h->ts = bpf_ktime_get_boot_ns();
	h->cgroup_id = t->cgroups->dfl_cgrp->kn->id;
	__builtin_memcpy(h->comm, &c, sizeof(c));
}


/* Wake-up policy for every record: a wake-up per record costs more than the
 * record (on these VMs the irq_work self-IPI is a VM exit: ~5-10 us charged to
 * the traced task; fork/exec/exit programs measured 12-16 us a run with the
 * kernel's adaptive wake-up, 3-8 us with this policy), so a record
 * wakes the reader only when this CPU has not forced one for WAKE_NS (or a
 * backlog over WAKE_BYTES builds up). An isolated event thus wakes the reader
 * at once, a flood costs at most 1000 wake-ups a second per CPU, and a
 * record's wait is bounded by WAKE_NS or the reader's periodic consume.
 * The backlog is queried every WAKE_QUERY_EVERY records only (a helper call
 * per record is dear), which at most delays a backlog wake-up by that many
 * records. `now` is the record's own timestamp (no second clock read). */
#define WAKE_BYTES (512 << 10)
#define WAKE_NS 1000000ULL
#define WAKE_QUERY_EVERY 32

static __always_inline __u64 rb_flags(__u64 now)
{
	__u32 zero = 0;
	struct wake *w = bpf_map_lookup_elem(&last_wake, &zero);

	if (!w)
		return BPF_RB_FORCE_WAKEUP;
	if (now - w->last > WAKE_NS ||
	    (++w->n % WAKE_QUERY_EVERY == 0 &&
	     bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > WAKE_BYTES)) {
		w->last = now;
		return BPF_RB_FORCE_WAKEUP;
	}
	return BPF_RB_NO_WAKEUP;
}

/* A fixed-size record of `type` reserved in the ring (`size` must be a
 * constant; not zeroed); NULL, counted lost, when the ring is full. */
static __always_inline void *rec_reserve(__u32 size, __u8 type)
{
	void *e = bpf_ringbuf_reserve(&events, size, 0);

	if (!e)
		count_lost(type);
	return e;
}

static __always_inline void rec_submit(struct ev_hdr *h)
{
	bpf_ringbuf_submit(h, rb_flags(h->ts));
}

/* Send the record built in the scratch buffer (header `h` first): `size`
 * bytes, fixed part and strings; a record over the buffer is dropped. */
static __always_inline void emit_scratch(struct ev_hdr *h, __u32 size)
{
	h->size = size;
	if (size > SCRATCH_SIZE)
		return;
	if (bpf_ringbuf_output(&events, h, size, rb_flags(h->ts)))
		count_lost(h->type);
}

#endif
