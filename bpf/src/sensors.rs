//! Loading and attaching the embedded BPF object ([`Sensors`]), writing the
//! first-stage filter maps without a gap between generations, and reading
//! the per-CPU counters.
//!
//! Why one file past ~800 lines: `Sensors` owns one libbpf object: loading,
//! attaching each hook (always-on and on demand), the filter maps written
//! generation by generation and the counters all go through its maps and
//! links; the record layouts and filter plan are modules beside (`decode`, `filter`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, Object, ObjectBuilder, PrintLevel};
use vigil_engine::filter::KernelFilter;

use crate::decode::{OpKind, RawKind};
use crate::filter::{FilterPlan, MODE_DROP, SYSOP_SLOT};
use crate::identity::Identity;

static OBJ: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/vigil.bpf.o"));

/// Name prefix of the on-demand syscall programs (`vigil_op_<syscall>`).
const OP_PREFIX: &str = "vigil_op_";

/// The on-demand io_uring submission hook (`vigil_op_uring_submit`): it keeps
/// the paths of ring RENAMEAT/UNLINKAT/MKDIRAT/SYMLINKAT/LINKAT requests
/// for their completion; attached while one of those kinds is asked for.
const URING_SUBMIT: &str = "uring_submit";

/// Why the sensors could not start. Each message is one sentence a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    #[error("loading the eBPF sensors needs root (CAP_BPF and CAP_PERFMON); run vigil as root")]
    NotRoot,
    #[error("this kernel exposes no BTF (/sys/kernel/btf/vmlinux is missing); vigil needs a kernel built with CONFIG_DEBUG_INFO_BTF=y")]
    NoBtf,
    #[error("the kernel refused to load vigil's eBPF programs ({0}); BPF may be disabled or restricted here (lockdown, seccomp, a container without CAP_BPF)")]
    LoadDenied(String),
    #[error("the kernel's verifier rejected vigil's eBPF programs ({0}); run with VIGIL_LOG=libbpf=debug for the verifier log (needs Linux 5.17 or later with BTF)")]
    Load(String),
    #[error("attaching the eBPF program to hook `{hook}` failed: {reason}")]
    Attach { hook: String, reason: String },
    #[error("eBPF map `{map}` is missing from the embedded object")]
    MissingMap { map: &'static str },
    #[error("writing eBPF map `{map}` failed: {reason}")]
    Map { map: &'static str, reason: String },
}

impl SensorError {
    /// True when this host cannot run BPF at all (not root, no kernel BTF,
    /// loading denied: lockdown, seccomp, a container without CAP_BPF);
    /// false for a defect of vigil's programs (the verifier rejecting one, a
    /// missing map, a hook that does not attach), which tests treat as a
    /// failure everywhere.
    pub fn kernel_lacks_capability(&self) -> bool {
        matches!(
            self,
            SensorError::NotRoot | SensorError::NoBtf | SensorError::LoadDenied(_)
        )
    }

    /// EPERM: this process may not load BPF here (capabilities, lockdown,
    /// seccomp). The verifier's rejections are EACCES or EINVAL: a defect
    /// of the programs. (libbpf-rs folds both into one kind; its text keeps
    /// the errno.)
    fn of_load(e: libbpf_rs::Error) -> SensorError {
        let eacces = format!("(os error {})", libc::EACCES);
        if e.kind() == libbpf_rs::ErrorKind::PermissionDenied && !e.to_string().contains(&eacces) {
            SensorError::LoadDenied(e.to_string())
        } else {
            SensorError::Load(e.to_string())
        }
    }
}

/// Root and kernel BTF, the preconditions of loading anything.
fn host_ready() -> Result<(), SensorError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(SensorError::NotRoot);
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Err(SensorError::NoBtf);
    }
    Ok(())
}

/// Loads (then drops) the BPF object `obj` with [`Sensors::load`]'s checks
/// and error classification. For tests proving that a broken object is
/// reported as a defect, not as a kernel without BPF.
#[doc(hidden)]
pub fn check_object(obj: &[u8]) -> Result<(), SensorError> {
    host_ready()?;
    ObjectBuilder::default()
        .open_memory(obj)
        .and_then(|o| o.load())
        .map(drop)
        .map_err(SensorError::of_load)
}

/// Kernel counters for one record kind, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TypeCounters {
    /// Events the program saw (before the filter).
    pub seen: u64,
    /// Events that passed the filter.
    pub passed: u64,
    /// Records lost because the ring buffer was full.
    pub lost: u64,
}

/// Counters per [`RawKind`] (index = `RawKind as usize`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelCounters {
    pub per_kind: [TypeCounters; RawKind::COUNT],
}

impl KernelCounters {
    pub fn get(&self, k: RawKind) -> TypeCounters {
        self.per_kind[k as usize]
    }
}

pub(crate) struct Maps {
    pub events: MapHandle,
    counters: MapHandle,
    fstate: MapHandle,
    fcfg: MapHandle,
    f_comm: MapHandle,
    f_pcomm: MapHandle,
    f_comm_pre: MapHandle,
    f_pcomm_pre: MapHandle,
    f_pid: MapHandle,
    f_path: MapHandle,
    f_suffix: MapHandle,
    f_tail: MapHandle,
    f_ident: MapHandle,
    f_ident_pre: MapHandle,
    owners: MapHandle,
    op_on: MapHandle,
}

/// The loaded and attached sensors. Dropping it detaches everything.
pub struct Sensors {
    // Links first: detach before the object goes away.
    links: Vec<(String, Link)>,
    _obj: Object,
    pub(crate) maps: Maps,
    gen: u32,
    self_tgid: u32,
    /// Keys written for the live generation (to delete after the next flip).
    live: Option<FilterPlan>,
    /// The identities in `f_ident` (see [`Sensors::set_identity`]).
    ident: Identity,
    /// Attached on-demand syscall hooks by syscall (see [`Sensors::set_ops`]).
    op_links: BTreeMap<&'static str, (String, Link)>,
    /// The on-demand kinds asked for.
    ops: BTreeSet<OpKind>,
    /// Kinds asked for whose syscalls this kernel does not have (no exit
    /// tracepoint: e.g. `module` on a kernel without module support).
    unavailable: BTreeSet<OpKind>,
}

fn libbpf_log(level: PrintLevel, msg: String) {
    match level {
        PrintLevel::Warn => tracing::debug!(target: "libbpf", "{}", msg.trim_end()),
        _ => tracing::trace!(target: "libbpf", "{}", msg.trim_end()),
    }
}

fn map_err(map: &'static str) -> impl Fn(libbpf_rs::Error) -> SensorError {
    move |e| SensorError::Map {
        map,
        reason: e.to_string(),
    }
}

/// Writes `(index, value)` pairs into generation `gen`'s half of a
/// `2 << 16` array map (`f_tail`, the comm pre-checks): slot `gen << 16 | index`.
fn write_gen16(
    map: &MapHandle,
    name: &'static str,
    gen: u32,
    entries: impl IntoIterator<Item = (u16, u8)>,
) -> Result<(), SensorError> {
    for (i, v) in entries {
        let idx = (gen & 1) << 16 | u32::from(i);
        map.update(&idx.to_ne_bytes(), &[v], MapFlags::ANY)
            .map_err(map_err(name))?;
    }
    Ok(())
}

/// Whether the kernel runs 32-bit syscalls at all, from its command line:
/// `ia32_emulation=0|false|off|n` turns them off (Linux 6.7+), and then
/// there is nothing for the compat program to watch. (A kernel built with
/// `IA32_EMULATION_DEFAULT_DISABLED` and no command-line override is not
/// detected: the program is loaded and simply never fires.)
pub fn ia32_emulation_enabled(cmdline: &str) -> bool {
    // The last occurrence wins; the value is read like the kernel's kstrtobool.
    let last = cmdline
        .split_whitespace()
        .rev()
        .find_map(|w| w.strip_prefix("ia32_emulation="));
    !matches!(
        last.map(str::as_bytes),
        Some([b'n' | b'N' | b'f' | b'F' | b'0', ..] | [b'o' | b'O', b'f' | b'F', ..])
    )
}

/// Choices made when the sensors load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SensorOptions {
    /// Watch 32-bit (`int 0x80` / compat) syscalls too. The per-syscall
    /// tracepoints never fire for them, so without this a 32-bit binary, or a
    /// 64-bit one issuing `int 0x80`, opens and connects unseen. It costs a
    /// raw `sys_exit` program on every syscall of the host (it returns on its
    /// first test for 64-bit syscalls; ~100 ns a syscall on the test VMs).
    pub compat_syscalls: bool,
}

impl Default for SensorOptions {
    fn default() -> Self {
        SensorOptions {
            compat_syscalls: true,
        }
    }
}

impl Sensors {
    /// [`Sensors::load_with`] the default options.
    pub fn load() -> Result<Sensors, SensorError> {
        Sensors::load_with(SensorOptions::default())
    }

    /// Load the programs, initialise the maps (every rule event type dropped
    /// until [`Sensors::set_filter`]; vigil's own process always dropped) and
    /// attach every hook, each on its own so a failure names the hook.
    pub fn load_with(opts: SensorOptions) -> Result<Sensors, SensorError> {
        host_ready()?;
        libbpf_rs::set_print(Some((PrintLevel::Debug, libbpf_log)));
        // Per-syscall tracepoints need tracefs (libbpf reads their ids from
        // it); without it the raw sys_exit program is used, which
        // run (and bail out early) on every syscall in the system.
        let per_syscall = crate::tracefs::ensure_mounted();
        if !per_syscall {
            tracing::warn!("tracefs is not available: watching syscalls through the raw sys_exit hook, which costs every syscall a little");
        }
        let ia32 =
            ia32_emulation_enabled(&std::fs::read_to_string("/proc/cmdline").unwrap_or_default());
        if per_syscall && opts.compat_syscalls && !ia32 {
            tracing::info!(
                "ia32 emulation is off (kernel command line): no 32-bit syscalls to watch"
            );
        } else if per_syscall && !opts.compat_syscalls {
            tracing::warn!("32-bit (int 0x80) syscalls are not watched: compat_syscalls is off");
        }
        let compat = opts.compat_syscalls && ia32;
        // Two programs are optional: the socket-owner iterator and the
        // io_uring hook (a kernel without io_uring has no such tracepoint). If
        // this kernel refuses one, the rest loads without it.
        let mut attempt = Err(libbpf_rs::Error::from_raw_os_error(libc::EINVAL));
        for (iter, uring) in [(true, true), (false, true), (true, false), (false, false)] {
            attempt = Self::open_and_load(iter, uring, per_syscall, compat);
            match &attempt {
                Ok(_) => {
                    if !iter {
                        tracing::warn!("the socket-owner iterator did not load: retransmits on connections older than vigil go unattributed");
                    }
                    if !uring {
                        tracing::warn!("the io_uring hook did not load: opens submitted through io_uring are not watched");
                    }
                    break;
                }
                Err(e) => {
                    tracing::debug!(error = %e, iter, uring, "loading failed; retrying with fewer optional programs")
                }
            }
        }
        let obj = attempt.map_err(SensorError::of_load)?;
        let handle = |name: &'static str| -> Result<MapHandle, SensorError> {
            let m = obj
                .maps()
                .find(|m| m.name() == name)
                .ok_or(SensorError::MissingMap { map: name })?;
            MapHandle::try_from(&m).map_err(map_err(name))
        };
        let maps = Maps {
            events: handle("events")?,
            counters: handle("counters")?,
            fstate: handle("fstate")?,
            fcfg: handle("fcfg")?,
            f_comm: handle("f_comm")?,
            f_pcomm: handle("f_pcomm")?,
            f_comm_pre: handle("f_comm_pre")?,
            f_pcomm_pre: handle("f_pcomm_pre")?,
            f_pid: handle("f_pid")?,
            f_path: handle("f_path")?,
            f_suffix: handle("f_suffix")?,
            f_tail: handle("f_tail")?,
            f_ident: handle("f_ident")?,
            f_ident_pre: handle("f_ident_pre")?,
            owners: handle("owners")?,
            op_on: handle("op_on")?,
        };
        let self_tgid = std::process::id();
        let mut s = Sensors {
            links: Vec::new(),
            _obj: obj,
            maps,
            gen: 0,
            self_tgid,
            live: None,
            ident: Identity::default(),
            op_links: BTreeMap::new(),
            ops: BTreeSet::new(),
            unavailable: BTreeSet::new(),
        };
        s.write_state(0)?;
        let mut links = Vec::new();
        let mut seed = None;
        for prog in s._obj.progs_mut() {
            if !prog.autoload() {
                continue;
            }
            let section = prog.section().to_string_lossy().into_owned();
            if section.starts_with("iter/") {
                seed = Some(prog);
                continue;
            }
            if prog.name().to_string_lossy().starts_with(OP_PREFIX) {
                continue; // attached on demand (set_ops)
            }
            let hook = section
                .trim_start_matches("tp_btf/")
                .trim_start_matches("tracepoint/syscalls/")
                .to_string();
            let link = prog.attach().map_err(|e| SensorError::Attach {
                hook: hook.clone(),
                reason: e.to_string(),
            })?;
            tracing::debug!(hook = %hook, "attached");
            links.push((hook, link));
        }
        s.links = links;
        // After the live socket hooks are attached: nothing falls in between.
        if let Some(prog) = seed {
            match prog.attach().and_then(|link| {
                let mut it = libbpf_rs::Iter::new(&link)?;
                std::io::copy(&mut it, &mut std::io::sink()).map_err(libbpf_rs::Error::from)
            }) {
                Ok(_) => tracing::debug!("socket owners seeded from existing TCP sockets"),
                Err(e) => {
                    tracing::warn!(error = %e, "seeding socket owners failed; retransmits on older connections stay unattributed")
                }
            }
        }
        Ok(s)
    }

    /// Open and load the object with the optional iterator and one of the
    /// two syscall hook sets (per-syscall exit tracepoints or the raw sys_exit).
    fn open_and_load(
        with_iter: bool,
        with_uring: bool,
        per_syscall: bool,
        compat: bool,
    ) -> Result<Object, libbpf_rs::Error> {
        let mut open = ObjectBuilder::default().open_memory(OBJ)?;
        for mut p in open.progs_mut() {
            let section = p.section().to_string_lossy().into_owned();
            let name = p.name().to_string_lossy().into_owned();
            // Per-syscall tracepoints (+ the compat-only raw program when
            // asked), or the raw fallback alone (it sees compat syscalls itself).
            let skip = (!with_iter && section.starts_with("iter/"))
                || (!with_uring
                    && (name == "vigil_uring_complete" || name == "vigil_op_uring_submit"))
                || (per_syscall && name == "vigil_sys_exit")
                || (name == "vigil_compat_exit" && !(per_syscall && compat))
                || (!per_syscall && section.starts_with("tracepoint/syscalls/"));
            // The on-demand hooks are per-syscall tracepoints only.
            let skip = skip || (!per_syscall && name.starts_with(OP_PREFIX));
            if skip {
                p.set_autoload(false);
            }
        }
        open.load()
    }

    /// Number of TCP sockets with a known owner (for tests and metrics).
    pub fn socket_owners(&self) -> usize {
        self.maps.owners.keys().count()
    }

    /// `(tgid, comm)` of every known TCP socket owner.
    pub fn socket_owner_list(&self) -> Vec<(u32, String)> {
        let mut out = Vec::new();
        for k in self.maps.owners.keys() {
            if let Ok(Some(v)) = self.maps.owners.lookup(&k, MapFlags::ANY) {
                if v.len() >= 32 {
                    let tgid = u32::from_ne_bytes([v[0], v[1], v[2], v[3]]);
                    let c = &v[16..32];
                    let end = c.iter().position(|&b| b == 0).unwrap_or(16);
                    out.push((tgid, String::from_utf8_lossy(&c[..end]).into_owned()));
                }
            }
        }
        out
    }

    /// Hooks attached, by name (e.g. `sched_process_exec`, `sys_exit_symlinkat`).
    pub fn hooks(&self) -> Vec<&str> {
        self.links
            .iter()
            .map(|(h, _)| h.as_str())
            .chain(self.op_links.values().map(|(h, _)| h.as_str()))
            .collect()
    }

    /// The on-demand syscall kinds asked for (see [`Sensors::set_ops`]).
    pub fn ops(&self) -> Vec<OpKind> {
        self.ops.iter().copied().collect()
    }

    /// The kinds asked for that this kernel cannot report: none of their
    /// syscalls exists here (see [`Sensors::set_ops`]).
    pub fn unavailable_ops(&self) -> Vec<OpKind> {
        self.unavailable.iter().copied().collect()
    }

    /// Attach the hooks of exactly `kinds` (their syscalls' exit
    /// tracepoints, each once even when two kinds share it), detaching the
    /// rest: a kind no loaded rule (or snoop/record request) needs costs
    /// nothing. Hooks already attached stay attached (no gap). Their
    /// records go through the shared `VG_SYSOP` filter slot, which follows
    /// the live filter's on-demand types (comm / parent comm / pid, see
    /// [`FilterPlan::from_filter`]) while any hook is attached. A shared
    /// syscall (unlinkat makes both unlink and rmdir) may deliver kinds not
    /// asked for. A syscall this kernel does not have (no exit tracepoint,
    /// e.g. `init_module` without module support) is skipped; a kind left
    /// with none is reported by [`Sensors::unavailable_ops`] and warned
    /// about, never an error. On an error the hooks attached so far stay
    /// attached.
    pub fn set_ops(&mut self, kinds: &[OpKind]) -> Result<(), SensorError> {
        let want: BTreeSet<OpKind> = kinds.iter().copied().collect();
        let exists = |sc: &&str| crate::tracefs::has_syscall_exit(sc) != Some(false);
        let unavailable: BTreeSet<OpKind> = want
            .iter()
            .copied()
            .filter(|k| !k.syscalls().iter().any(exists))
            .collect();
        for k in unavailable.difference(&self.unavailable) {
            tracing::warn!(
                kind = k.as_str(),
                syscalls = ?k.syscalls(),
                "this kernel has none of the syscalls of this event kind (no exit tracepoint): rules on it never match here"
            );
        }
        self.unavailable = unavailable;
        let mut calls: BTreeSet<&'static str> = want
            .iter()
            .flat_map(|k| k.syscalls())
            .filter(|sc| exists(sc))
            .copied()
            .collect();
        let uring_loaded = self
            ._obj
            .progs()
            .any(|p| p.name().to_string_lossy() == "vigil_op_uring_submit");
        if uring_loaded && want.iter().any(|k| k.uring_paths()) {
            calls.insert(URING_SUBMIT);
        }
        self.op_links.retain(|sc, _| calls.contains(sc));
        if !calls.is_empty() {
            // pass first, then attach: nothing attached is filtered away
            self.write_cfg(self.gen, calls.len())?;
        }
        // the compat (int 0x80) program reports the kinds asked for
        for k in OpKind::ALL {
            self.maps
                .op_on
                .update(
                    &(k as u32).to_ne_bytes(),
                    &[u8::from(want.contains(&k))],
                    MapFlags::ANY,
                )
                .map_err(map_err("op_on"))?;
        }
        self.ops = want;
        for sc in calls {
            if self.op_links.contains_key(sc) {
                continue;
            }
            let name = format!("{OP_PREFIX}{sc}");
            let hook = || {
                if sc == URING_SUBMIT {
                    "io_uring_submit_req".to_string()
                } else {
                    format!("sys_exit_{sc}")
                }
            };
            let prog = self
                ._obj
                .progs_mut()
                .find(|p| p.name().to_string_lossy() == name.as_str())
                .ok_or_else(|| SensorError::Attach {
                    hook: hook(),
                    reason: "program not loaded (per-syscall tracepoints unavailable)".into(),
                })?;
            let link = prog.attach().map_err(|e| SensorError::Attach {
                hook: hook(),
                reason: e.to_string(),
            })?;
            tracing::debug!(hook = %hook(), "on-demand hook attached");
            self.op_links.insert(sc, (hook(), link));
        }
        self.write_cfg(self.gen, self.op_links.len())
    }

    fn write_state(&self, gen: u32) -> Result<(), SensorError> {
        let mut v = [0u8; 8];
        v[..4].copy_from_slice(&gen.to_ne_bytes());
        v[4..].copy_from_slice(&self.self_tgid.to_ne_bytes());
        self.maps
            .fstate
            .update(&0u32.to_ne_bytes(), &v, MapFlags::ANY)
            .map_err(map_err("fstate"))
    }

    fn write_plan(&self, gen: u32, plan: &FilterPlan) -> Result<(), SensorError> {
        let g = gen.to_ne_bytes();
        let comm_key = |c: &[u8; 16]| {
            let mut k = [0u8; 20];
            k[..4].copy_from_slice(&g);
            k[4..].copy_from_slice(c);
            k
        };
        for (c, m) in &plan.comms {
            self.maps
                .f_comm
                .update(&comm_key(c), &[*m], MapFlags::ANY)
                .map_err(map_err("f_comm"))?;
        }
        for (c, m) in &plan.pcomms {
            self.maps
                .f_pcomm
                .update(&comm_key(c), &[*m], MapFlags::ANY)
                .map_err(map_err("f_pcomm"))?;
        }
        // Pre-checks after the sets they guard: a comm passing its
        // pre-check always finds its set entry.
        write_gen16(&self.maps.f_comm_pre, "f_comm_pre", gen, plan.comm_pre())?;
        write_gen16(&self.maps.f_pcomm_pre, "f_pcomm_pre", gen, plan.pcomm_pre())?;
        for (p, m) in &plan.pids {
            let mut k = [0u8; 8];
            k[..4].copy_from_slice(&g);
            k[4..].copy_from_slice(&p.to_ne_bytes());
            self.maps
                .f_pid
                .update(&k, &[*m], MapFlags::ANY)
                .map_err(map_err("f_pid"))?;
        }
        for (p, v) in &plan.paths {
            self.maps
                .f_path
                .update(&Self::path_key(gen, p), &[*v], MapFlags::ANY)
                .map_err(map_err("f_path"))?;
        }
        for (p, v) in &plan.suffixes {
            let rev: Vec<u8> = p.iter().rev().copied().collect();
            self.maps
                .f_suffix
                .update(&Self::path_key(gen, &rev), &[*v], MapFlags::ANY)
                .map_err(map_err("f_suffix"))?;
        }
        let tails = plan.tails().into_iter().map(|t| (t, 1));
        write_gen16(&self.maps.f_tail, "f_tail", gen, tails)?;
        self.maps
            .fcfg
            .update(
                &gen.to_ne_bytes(),
                &Self::cfg_bytes(plan, self.op_links.len()),
                MapFlags::ANY,
            )
            .map_err(map_err("fcfg"))
    }

    /// `struct filter_cfg` for `plan`; the shared on-demand slot follows
    /// the plan while `ops` hooks are attached.
    fn cfg_bytes(plan: &FilterPlan, ops: usize) -> [u8; 24] {
        let mut cfg = [0u8; 24];
        cfg[..6].copy_from_slice(&plan.modes);
        cfg[SYSOP_SLOT] = if ops > 0 { plan.ops_mode } else { MODE_DROP };
        cfg[8] = plan.has();
        for i in (0..6).chain([SYSOP_SLOT]) {
            cfg[16 + i] = plan.type_has(i);
        }
        cfg
    }

    /// Rewrite generation `gen`'s `filter_cfg` from the live plan (or an
    /// empty one before the first [`Sensors::set_filter`]).
    fn write_cfg(&self, gen: u32, ops: usize) -> Result<(), SensorError> {
        let empty = FilterPlan::default();
        let plan = self.live.as_ref().unwrap_or(&empty);
        self.maps
            .fcfg
            .update(
                &gen.to_ne_bytes(),
                &Self::cfg_bytes(plan, ops),
                MapFlags::ANY,
            )
            .map_err(map_err("fcfg"))
    }

    /// `f_path` key: prefix length in bits, then generation byte + prefix.
    fn path_key(gen: u32, prefix: &[u8]) -> Vec<u8> {
        let mut k = vec![0u8; 4 + 256];
        let bits = 8 * (1 + prefix.len() as u32);
        k[..4].copy_from_slice(&bits.to_ne_bytes());
        k[4] = gen as u8;
        k[5..5 + prefix.len()].copy_from_slice(prefix);
        k
    }

    fn delete_plan(&self, gen: u32, plan: &FilterPlan) {
        let g = gen.to_ne_bytes();
        for c in plan.comms.keys() {
            let mut k = [0u8; 20];
            k[..4].copy_from_slice(&g);
            k[4..].copy_from_slice(c);
            let _ = self.maps.f_comm.delete(&k);
        }
        for c in plan.pcomms.keys() {
            let mut k = [0u8; 20];
            k[..4].copy_from_slice(&g);
            k[4..].copy_from_slice(c);
            let _ = self.maps.f_pcomm.delete(&k);
        }
        let zero = |m: BTreeMap<u16, u8>| m.into_keys().map(|k| (k, 0));
        let _ = write_gen16(
            &self.maps.f_comm_pre,
            "f_comm_pre",
            gen,
            zero(plan.comm_pre()),
        );
        let _ = write_gen16(
            &self.maps.f_pcomm_pre,
            "f_pcomm_pre",
            gen,
            zero(plan.pcomm_pre()),
        );
        for p in plan.pids.keys() {
            let mut k = [0u8; 8];
            k[..4].copy_from_slice(&g);
            k[4..].copy_from_slice(&p.to_ne_bytes());
            let _ = self.maps.f_pid.delete(&k);
        }
        for p in plan.paths.keys() {
            let _ = self.maps.f_path.delete(&Self::path_key(gen, p));
        }
        for p in plan.suffixes.keys() {
            let rev: Vec<u8> = p.iter().rev().copied().collect();
            let _ = self.maps.f_suffix.delete(&Self::path_key(gen, &rev));
        }
        let tails = plan.tails().into_iter().map(|t| (t, 0));
        let _ = write_gen16(&self.maps.f_tail, "f_tail", gen, tails);
    }

    /// Write `filter` into the kernel without a gap: the new generation's map
    /// entries and modes are written first, then one array write flips the
    /// live generation, then the old generation's entries are deleted. A
    /// program that read the old generation just before the flip still
    /// finds its entries (they go after a short grace period).
    pub fn set_filter(&mut self, filter: &KernelFilter) -> Result<FilterPlan, SensorError> {
        let plan = FilterPlan::from_filter(filter);
        let new_gen = self.gen ^ 1;
        // stale entries from two reloads ago may linger if a delete failed
        self.write_plan(new_gen, &plan)?;
        self.write_state(new_gen)?;
        let old_gen = self.gen;
        self.gen = new_gen;
        if let Some(old) = self.live.replace(plan.clone()) {
            std::thread::sleep(std::time::Duration::from_millis(2));
            self.delete_plan(old_gen, &old);
        }
        tracing::debug!(
            generation = new_gen,
            modes = ?plan.modes,
            comms = plan.comms.len(),
            pcomms = plan.pcomms.len(),
            pids = plan.pids.len(),
            paths = plan.paths.len(),
            suffixes = plan.suffixes.len(),
            open_writes = plan.open_writes,
            "kernel filter written"
        );
        Ok(plan)
    }

    /// Write the identities of watched files and directories (a fresh
    /// [`Identity::scan`] of the live filter) into `f_ident`: new and
    /// changed entries first, then their pre-check slots, then the stale
    /// entries go. An entry is never missing while it is wanted (passing
    /// more for a moment is sound).
    pub fn set_identity(&mut self, id: Identity) -> Result<(), SensorError> {
        if id == self.ident {
            return Ok(());
        }
        let key = |&(dev, ino): &(u32, u64)| {
            let mut k = [0u8; 16];
            k[..4].copy_from_slice(&dev.to_ne_bytes());
            k[8..].copy_from_slice(&ino.to_ne_bytes());
            k
        };
        for (k, v) in &id.entries {
            if self.ident.entries.get(k) != Some(v) {
                self.maps
                    .f_ident
                    .update(&key(k), &[*v], MapFlags::ANY)
                    .map_err(map_err("f_ident"))?;
            }
        }
        let pre = id.pre_check();
        let old_pre = self.ident.pre_check();
        for (h, v) in pre.iter().chain(
            old_pre
                .iter()
                .filter(|(h, _)| !pre.contains_key(h))
                .map(|(h, _)| (h, &0)),
        ) {
            self.maps
                .f_ident_pre
                .update(&u32::from(*h).to_ne_bytes(), &[*v], MapFlags::ANY)
                .map_err(map_err("f_ident_pre"))?;
        }
        for k in self.ident.entries.keys() {
            if !id.entries.contains_key(k) {
                let _ = self.maps.f_ident.delete(&key(k));
            }
        }
        if id.capped {
            tracing::warn!(
                entries = id.entries.len(),
                "identity scan capped: some directories below watched prefixes are matched by path only"
            );
        }
        tracing::debug!(entries = id.entries.len(), "file identities written");
        self.ident = id;
        Ok(())
    }

    /// The identities last written by [`Sensors::set_identity`].
    pub fn identity(&self) -> &Identity {
        &self.ident
    }

    /// Kernel counters summed over CPUs.
    pub fn counters(&self) -> Result<KernelCounters, SensorError> {
        let mut out = KernelCounters::default();
        for (i, slot) in out.per_kind.iter_mut().enumerate() {
            let per_cpu = self
                .maps
                .counters
                .lookup_percpu(&(i as u32).to_ne_bytes(), MapFlags::ANY)
                .map_err(map_err("counters"))?
                .unwrap_or_default();
            for v in per_cpu {
                if v.len() >= 24 {
                    let rd = |o: usize| {
                        let mut a = [0u8; 8];
                        a.copy_from_slice(&v[o..o + 8]);
                        u64::from_ne_bytes(a)
                    };
                    slot.seen += rd(0);
                    slot.passed += rd(8);
                    slot.lost += rd(16);
                }
            }
        }
        Ok(out)
    }

    /// Map contents for tests and `vigil explain --live`: comm keys per generation.
    pub fn live_generation(&self) -> u32 {
        self.gen
    }

    /// The path prefixes of the live generation and their `PATH_*` flags.
    pub fn live_paths(&self) -> BTreeMap<Vec<u8>, u8> {
        let mut out = BTreeMap::new();
        for k in self.maps.f_path.keys() {
            if k.len() == 260 && u32::from(k[4]) == self.gen {
                let bits = u32::from_ne_bytes([k[0], k[1], k[2], k[3]]) as usize;
                let n = (bits / 8).saturating_sub(1).min(255);
                if let Ok(Some(v)) = self.maps.f_path.lookup(&k, MapFlags::ANY) {
                    out.insert(k[5..5 + n].to_vec(), v.first().copied().unwrap_or(0));
                }
            }
        }
        out
    }

    /// The comm entries of the live generation (as strings) and their masks.
    pub fn live_comms(&self) -> BTreeMap<String, u8> {
        let mut out = BTreeMap::new();
        for k in self.maps.f_comm.keys() {
            if k.len() == 20 && u32::from_ne_bytes([k[0], k[1], k[2], k[3]]) == self.gen {
                if let Ok(Some(v)) = self.maps.f_comm.lookup(&k, MapFlags::ANY) {
                    let end = k[4..].iter().position(|&c| c == 0).unwrap_or(16);
                    out.insert(
                        String::from_utf8_lossy(&k[4..4 + end]).into_owned(),
                        v.first().copied().unwrap_or(0),
                    );
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::ia32_emulation_enabled;

    #[test]
    fn ia32_emulation_from_the_kernel_command_line() {
        assert!(ia32_emulation_enabled(
            "BOOT_IMAGE=/vmlinuz root=/dev/vda1 ro"
        ));
        for off in ["0", "false", "off", "n", "N", "no", "Off"] {
            assert!(
                !ia32_emulation_enabled(&format!("ro ia32_emulation={off} quiet")),
                "{off}"
            );
        }
        for on in ["1", "true", "on", "y"] {
            assert!(
                ia32_emulation_enabled(&format!("ia32_emulation={on}")),
                "{on}"
            );
        }
        assert!(
            ia32_emulation_enabled("ia32_emulation=0 ia32_emulation=1"),
            "last wins"
        );
        assert!(!ia32_emulation_enabled(
            "xia32_emulation=1 ia32_emulation=0"
        ));
    }
}
