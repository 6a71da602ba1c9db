// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* vigil's kernel sensors, one BPF object. Only tracepoints (tp_btf, the
 * per-syscall exit tracepoints, one raw sys_exit for compat syscalls) and
 * one task_file iterator: no kprobes, fentry or LSM.
 *
 * This file is the object's only compilation unit (build.rs hands it to
 * libbpf-cargo); it includes the parts in dependency order:
 *
 *   vigil.h          record layouts and map value types shared with Rust (bindgen)
 *   maps.bpf.h       syscall numbers, constants, every map and its accessors
 *   path.bpf.h       fd -> file and its identity, dentry walks, user strings
 *   filter.bpf.h     the first-stage filter (process sets, open path / identity)
 *   emit.bpf.h       record header, ring-buffer wake-up policy, the emit tails
 *   process.bpf.c    exec, fork, exit
 *   net.bpf.c        connect / accept records, TCP socket owners, retransmits
 *   open.bpf.c       the open record
 *   ops.bpf.c        the on-demand syscall kinds (ev_sys), attached when asked for
 *   syscalls.bpf.c   the open/connect/accept syscall exits, raw fallback, compat
 *   uring.bpf.c      io_uring opens and connects at completion
 *
 * The hook families (*.bpf.c) are not compiled on their own. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "vigil.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#include "maps.bpf.h"
#include "path.bpf.h"
#include "filter.bpf.h"
#include "emit.bpf.h"

#include "process.bpf.c"
#include "net.bpf.c"
#include "open.bpf.c"
#include "ops.bpf.c"
#include "syscalls.bpf.c"
#include "uring.bpf.c"
