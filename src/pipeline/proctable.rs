//! The process table: pid → engine [`Process`] snapshot, seeded from /proc
//! after the sensors attach and then kept current from fork/exec/exit
//! records. It turns every raw kernel record into an engine [`Event`]
//! (process state, epoch time, open paths: the kernel-resolved path, renamed
//! to the watched name when the opened file is a watched file's alias by
//! identity, see [`vigil_bpf::Identity`]). Bounded: at most `cap`
//! entries; exited processes stay for a short grace period so late events
//! (e.g. a retransmit after exit) still resolve.
//!
//! Why one file past ~800 lines (about 700 of code, the record → event
//! conversion in `apply`; the rest its scenario tests, which build raw
//! records and share those builders with `ops`' tests): /proc reading is in
//! `procfs` and the on-demand syscall conversion in `ops` already.

use std::collections::{HashMap, VecDeque};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_bpf::decode::{tcp_state_name, RawNet};
use vigil_bpf::{Identity, RawBody, RawEvent, RawKind};
use vigil_engine::{Detail, Event, EventType, FileInfo, NetInfo, Process};

/// How long an exited process stays resolvable.
pub const EXIT_GRACE: Duration = Duration::from_secs(5);
/// Ancestors kept per process (parent first).
pub const MAX_ANCESTORS: usize = 16;
const AT_FDCWD: i32 = -100;

mod ops;
mod procfs;

pub use crate::config::DEFAULT_ENV;
pub use procfs::{
    container_id_from_cgroup, exe_link_flags, parse_passwd, pick_env, unit_from_cgroup,
    ENV_VALUE_MAX,
};
use procfs::{read_proc, readlink, status_cap, ProcInfo, Users};
/// Bytes of /proc/PID/environ read at most.
pub const ENVIRON_READ_MAX: u64 = 128 * 1024;

/// Process attributes set at exec: capabilities, where the executable came
/// from, the allow-listed environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecAttrs {
    pub cap_effective: u64,
    pub cap_permitted: u64,
    pub exe_from_memfd: bool,
    pub exe_deleted: bool,
    pub exe_upper_layer: bool,
    /// `NAME=value` joined by spaces, and the names.
    pub env: String,
    pub env_names: Vec<String>,
}

struct Entry {
    proc: Arc<Process>,
}

/// Lexically normalise an absolute path: drop `.`, resolve `..`, squeeze `//`.
pub fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str().unwrap_or("")),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    let mut out = String::with_capacity(path.len());
    for p in &parts {
        out.push('/');
        out.push_str(p);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Counters of the table's work, for metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct TableStats {
    pub size: usize,
    pub incomplete_events: u64,
    pub evicted: u64,
}

/// The process table.
pub struct ProcTable {
    procs: HashMap<u32, Entry>,
    /// (exit time, pid, that process's start): a reused pid is not removed.
    exited: VecDeque<(Instant, u32, i64)>,
    cap: usize,
    users: Users,
    proc_root: PathBuf,
    boot_offset: i64,
    tick_ns: i64,
    /// cgroup id → path, learnt from /proc/PID/cgroup.
    cgroups: HashMap<u64, String>,
    /// Watched files and directories by identity (canonical open paths).
    ident: Identity,
    stats: TableStats,
    /// Environment variables recorded in `proc.env`.
    env_names: Vec<String>,
    /// Capability mask → names, shared by the processes holding it.
    cap_names: HashMap<u64, Arc<[String]>>,
}

impl ProcTable {
    pub fn new(cap: usize) -> ProcTable {
        ProcTable::with_roots(cap, PathBuf::from("/proc"), PathBuf::from("/etc/passwd"))
    }

    pub fn with_roots(cap: usize, proc_root: PathBuf, passwd: PathBuf) -> ProcTable {
        ProcTable {
            procs: HashMap::new(),
            exited: VecDeque::new(),
            cap: cap.max(1),
            users: Users::new(passwd),
            proc_root,
            boot_offset: vigil_bpf::time::boot_to_epoch_offset(),
            tick_ns: 1_000_000_000 / vigil_bpf::time::clock_ticks(),
            cgroups: HashMap::new(),
            ident: Identity::default(),
            stats: TableStats::default(),
            env_names: DEFAULT_ENV.iter().map(|s| s.to_string()).collect(),
            cap_names: HashMap::new(),
        }
    }

    /// The environment variables recorded in `proc.env` (config `proc_env`).
    pub fn set_env_names(&mut self, names: Vec<String>) {
        self.env_names = names;
    }

    /// The names of a capability mask (one shared list per distinct mask).
    fn caps(&mut self, mask: u64) -> Arc<[String]> {
        if self.cap_names.len() > 1024 {
            self.cap_names.clear();
        }
        self.cap_names
            .entry(mask)
            .or_insert_with(|| vigil_engine::event::capability_names(mask).into())
            .clone()
    }

    /// The allow-listed variables of /proc/PID/environ (bounded read); empty
    /// when the process is gone or no name is asked for.
    fn proc_env(&self, pid: u32) -> (String, Vec<String>) {
        use std::io::Read;
        if self.env_names.is_empty() {
            return Default::default();
        }
        let mut block = Vec::new();
        let path = self.proc_root.join(pid.to_string()).join("environ");
        if let Ok(f) = std::fs::File::open(path) {
            let _ = f.take(ENVIRON_READ_MAX).read_to_end(&mut block);
        }
        pick_env(&block, &self.env_names)
    }

    /// The attributes of a live process from /proc (processes that were
    /// there before vigil, and execs whose record carries none).
    fn proc_attrs(&self, pid: u32, exe_link: &str, cap_eff: u64, cap_prm: u64) -> ExecAttrs {
        let (exe_from_memfd, exe_deleted) = exe_link_flags(exe_link);
        let (env, env_names) = self.proc_env(pid);
        ExecAttrs {
            cap_effective: cap_eff,
            cap_permitted: cap_prm,
            exe_from_memfd,
            exe_deleted,
            exe_upper_layer: false,
            env,
            env_names,
        }
    }

    /// Effective and permitted capabilities from /proc/PID/status (0 when
    /// the process is gone).
    fn proc_caps(&self, pid: u32) -> (u64, u64) {
        let status = std::fs::read_to_string(self.proc_root.join(pid.to_string()).join("status"))
            .unwrap_or_default();
        (
            status_cap(&status, "CapEff:"),
            status_cap(&status, "CapPrm:"),
        )
    }

    /// Set `p`'s attributes.
    fn set_attrs(&mut self, p: &mut Process, a: ExecAttrs) {
        p.cap_effective = self.caps(a.cap_effective);
        p.cap_permitted = self.caps(a.cap_permitted);
        p.exe_from_memfd = a.exe_from_memfd;
        p.exe_deleted = a.exe_deleted;
        p.exe_upper_layer = a.exe_upper_layer;
        p.env = a.env;
        p.env_names = a.env_names;
    }

    /// The identities of the watched files and directories (see
    /// [`Identity::canonical`]), after each scan.
    pub fn set_identity(&mut self, ident: Identity) {
        self.ident = ident;
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.procs.len()
    }

    pub fn stats(&self) -> TableStats {
        TableStats {
            size: self.procs.len(),
            ..self.stats
        }
    }

    #[cfg(test)]
    pub fn get(&self, pid: u32) -> Option<Arc<Process>> {
        self.procs.get(&pid).map(|e| e.proc.clone())
    }

    /// Fill the table from /proc (call after the sensors are attached).
    pub fn seed_from_proc(&mut self) -> usize {
        let Ok(dir) = std::fs::read_dir(&self.proc_root) else {
            return 0;
        };
        let mut infos: HashMap<i64, ProcInfo> = HashMap::new();
        for d in dir.flatten() {
            let Some(pid) = d.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(info) = read_proc(&self.proc_root, pid) {
                infos.insert(info.pid, info);
            }
        }
        // Parents before children: insert in order of depth.
        let depth = |mut pid: i64| {
            let mut d = 0;
            while let Some(i) = infos.get(&pid) {
                if i.ppid == 0 || i.ppid == pid || d > 64 {
                    break;
                }
                pid = i.ppid;
                d += 1;
            }
            d
        };
        let mut order: Vec<(usize, i64)> = infos.keys().map(|&p| (depth(p), p)).collect();
        order.sort();
        let mut n = 0;
        for (_, pid) in order {
            if self.procs.len() >= self.cap {
                break;
            }
            let info = &infos[&pid];
            // a process seen by a live event in the meantime is newer
            if self.procs.contains_key(&(pid as u32)) {
                continue;
            }
            let p = self.build_from_info(info);
            self.procs.insert(pid as u32, Entry { proc: Arc::new(p) });
            n += 1;
        }
        n
    }

    fn build_from_info(&mut self, info: &ProcInfo) -> Process {
        let mut p = Process {
            pid: info.pid,
            ppid: info.ppid,
            name: info.name.clone(),
            exe: info.exe.clone(),
            cmdline: info.argv.join(" "),
            args: info.argv.iter().skip(1).cloned().collect(),
            cwd: info.cwd.clone(),
            start: if info.start_ticks > 0 {
                info.start_ticks * self.tick_ns + self.boot_offset
            } else {
                0
            },
            uid: info.uid,
            gid: info.gid,
            loginuid: info.loginuid,
            user_name: self.users.name(info.uid),
            cgroup: info.cgroup.clone(),
            unit: unit_from_cgroup(&info.cgroup),
            container_id: container_id_from_cgroup(&info.cgroup),
            tty: info.tty,
            ..Default::default()
        };
        let attrs = self.proc_attrs(
            info.pid as u32,
            &info.exe,
            info.cap_effective,
            info.cap_permitted,
        );
        self.set_attrs(&mut p, attrs);
        self.set_parent(&mut p);
        p
    }

    fn set_parent(&self, p: &mut Process) {
        match self.procs.get(&(p.ppid as u32)).filter(|_| p.ppid > 0) {
            Some(parent) => {
                let pp = &parent.proc;
                p.pname = pp.name.clone();
                p.pexe = pp.exe.clone();
                p.pcmdline = pp.cmdline.clone();
                p.ancestors = std::iter::once(pp.name.clone())
                    .chain(pp.ancestors.iter().cloned())
                    .take(MAX_ANCESTORS)
                    .collect();
            }
            None => {
                p.pname.clear();
                p.pexe.clear();
                p.pcmdline.clear();
                p.ancestors.clear();
                // pid 1 and kernel threads (ppid 0) have no parent to know
                if p.ppid > 0 {
                    p.incomplete = true;
                }
            }
        }
    }

    fn cgroup_path(&mut self, pid: u32, cgid: u64) -> Option<String> {
        if let Some(p) = self.cgroups.get(&cgid) {
            return Some(p.clone());
        }
        let text =
            std::fs::read_to_string(self.proc_root.join(pid.to_string()).join("cgroup")).ok()?;
        let path = text
            .lines()
            .find_map(|l| l.strip_prefix("0::").map(str::to_string))?;
        if self.cgroups.len() > 4096 {
            self.cgroups.clear();
        }
        self.cgroups.insert(cgid, path.clone());
        Some(path)
    }

    fn insert(&mut self, pid: u32, p: Process) -> Arc<Process> {
        let arc = Arc::new(p);
        if self.procs.len() >= self.cap && !self.procs.contains_key(&pid) {
            self.expire(true);
            if self.procs.len() >= self.cap {
                self.stats.evicted += 1;
                return arc;
            }
        }
        self.procs.insert(pid, Entry { proc: arc.clone() });
        arc
    }

    /// Drop exited processes whose grace period is over (all, with `force`).
    pub fn expire(&mut self, force: bool) {
        let now = Instant::now();
        while let Some(&(t, pid, start)) = self.exited.front() {
            if !force && now.duration_since(t) < EXIT_GRACE {
                break;
            }
            self.exited.pop_front();
            if self.procs.get(&pid).is_some_and(|e| e.proc.start == start) {
                self.procs.remove(&pid);
            }
        }
    }

    /// The process for a record: the table's, refreshed from /proc when
    /// missing, else built from the record header and marked incomplete.
    fn lookup(&mut self, raw: &RawEvent) -> Arc<Process> {
        if let Some(e) = self.procs.get(&raw.tgid) {
            if e.proc.name == raw.comm || raw.comm.is_empty() {
                return e.proc.clone();
            }
            // comm changed without exec (prctl PR_SET_NAME)
            let mut p = (*e.proc).clone();
            p.name = raw.comm.clone();
            return self.insert(raw.tgid, p);
        }
        if raw.tgid != 0 {
            if let Some(info) = read_proc(&self.proc_root, raw.tgid) {
                let p = self.build_from_info(&info);
                return self.insert(raw.tgid, p);
            }
        }
        let mut p = Process {
            pid: raw.tgid as i64,
            ppid: raw.ppid as i64,
            name: raw.comm.clone(),
            loginuid: -1,
            incomplete: true,
            ..Default::default()
        };
        if let Some(cg) = self.cgroups.get(&raw.cgroup_id).cloned() {
            p.unit = unit_from_cgroup(&cg);
            p.container_id = container_id_from_cgroup(&cg);
            p.cgroup = cg;
        }
        self.set_parent(&mut p);
        p.incomplete = true;
        Arc::new(p)
    }

    /// Update the table from `raw` and build the engine event (None for fork,
    /// which only feeds the table).
    pub fn apply(&mut self, raw: RawEvent) -> Option<Event> {
        self.expire(false);
        let time = raw.ts_boot_ns as i64 + self.boot_offset;
        let kind = raw.kind.event_type();
        let (proc_, detail, ret) = match raw.body {
            RawBody::Fork {
                start_boot_ns,
                uid,
                gid,
            } => {
                let mut p = match self.procs.get(&raw.ppid) {
                    Some(parent) => (*parent.proc).clone(),
                    None => match read_proc(&self.proc_root, raw.tgid) {
                        Some(info) => self.build_from_info(&info),
                        None => Process {
                            name: raw.comm.clone(),
                            uid: uid as i64,
                            gid: gid as i64,
                            loginuid: -1,
                            incomplete: true,
                            ..Default::default()
                        },
                    },
                };
                p.pid = raw.tgid as i64;
                p.ppid = raw.ppid as i64;
                p.start = start_boot_ns as i64 + self.boot_offset;
                self.set_parent(&mut p);
                self.insert(raw.tgid, p);
                return None;
            }
            RawBody::Exec {
                uid,
                gid,
                loginuid,
                start_boot_ns,
                tty,
                ref filename,
                ref argv,
                ref cwd,
                cut,
                attrs,
            } => {
                let old = self.procs.get(&raw.tgid).map(|e| e.proc.clone());
                let base = self.proc_root.join(raw.tgid.to_string());
                let proc_link =
                    |name: &str| readlink(base.join(name).to_string_lossy().into_owned());
                // a cut filename or cwd walk: /proc has the whole path while
                // the process lives
                let exe_full = cut.filename.then(|| proc_link("exe")).flatten();
                let cwd_full = cut.cwd.then(|| proc_link("cwd")).flatten();
                let exe_truncated = cut.filename && exe_full.is_none();
                let cwd_truncated = cut.cwd && cwd_full.is_none();
                let exe = if let Some(e) = exe_full {
                    e
                } else if filename.starts_with('/') && !filename.starts_with("/dev/fd/") {
                    normalize(filename)
                } else if !filename.starts_with('/') && cwd.starts_with('/') {
                    // `./nginx`: relative to the cwd the kernel saw at exec
                    normalize(&format!("{cwd}/{filename}"))
                } else {
                    readlink(base.join("exe").to_string_lossy().into_owned())
                        .unwrap_or_else(|| filename.clone())
                };
                // the kernel's walk is exact at exec time; /proc is the fallback
                let cwd = if let Some(c) = cwd_full {
                    c
                } else if !cwd.is_empty() {
                    cwd.clone()
                } else {
                    readlink(base.join("cwd").to_string_lossy().into_owned())
                        .or_else(|| old.as_ref().map(|o| o.cwd.clone()))
                        .unwrap_or_default()
                };
                let cgroup = self
                    .cgroup_path(raw.tgid, raw.cgroup_id)
                    .or_else(|| old.as_ref().map(|o| o.cgroup.clone()))
                    .unwrap_or_default();
                let mut p = Process {
                    pid: raw.tgid as i64,
                    ppid: raw.ppid as i64,
                    name: raw.comm.clone(),
                    exe,
                    cmdline: argv.join(" "),
                    args: argv.iter().skip(1).cloned().collect(),
                    cwd,
                    start: start_boot_ns as i64 + self.boot_offset,
                    uid: uid as i64,
                    gid: gid as i64,
                    loginuid: if loginuid == u32::MAX {
                        -1
                    } else {
                        loginuid as i64
                    },
                    user_name: self.users.name(uid as i64),
                    unit: unit_from_cgroup(&cgroup),
                    container_id: container_id_from_cgroup(&cgroup),
                    cgroup,
                    tty,
                    cmdline_truncated: cut.args,
                    exe_truncated,
                    cwd_truncated,
                    ..Default::default()
                };
                // the kernel's view at exec; /proc for a record without it
                let attrs = match attrs {
                    Some(k) => {
                        let (env, env_names) = self.proc_env(raw.tgid);
                        ExecAttrs {
                            cap_effective: k.cap_effective,
                            cap_permitted: k.cap_permitted,
                            exe_from_memfd: k.exe_from_memfd,
                            exe_deleted: k.exe_deleted,
                            exe_upper_layer: k.exe_upper_layer,
                            env,
                            env_names,
                        }
                    }
                    None => {
                        let (eff, prm) = self.proc_caps(raw.tgid);
                        self.proc_attrs(raw.tgid, &proc_link("exe").unwrap_or_default(), eff, prm)
                    }
                };
                self.set_attrs(&mut p, attrs);
                self.set_parent(&mut p);
                (self.insert(raw.tgid, p), Detail::None, 0)
            }
            RawBody::Exit { code, signal } => {
                let p = self.lookup(&raw);
                if raw.tgid != 0 && self.procs.contains_key(&raw.tgid) {
                    self.exited.push_back((Instant::now(), raw.tgid, p.start));
                }
                (
                    p,
                    Detail::Exit {
                        code: code as i64,
                        signal: signal as i64,
                    },
                    0,
                )
            }
            RawBody::Open {
                ret,
                flags,
                dirfd,
                ref path,
                ref base_dir,
                ref resolved,
                id,
                path_cut,
                walk_cut,
            } => {
                let p = self.lookup(&raw);
                let file = if path.is_empty() {
                    // io_uring and open_by_handle_at: no path as passed (or
                    // none at all); the resolved one stands for it
                    FileInfo {
                        path: resolved.clone(),
                        path_raw: resolved.clone(),
                        path_lexical: resolved.clone(),
                        path_resolved: resolved.clone(),
                        flags,
                        path_truncated: walk_cut,
                        path_raw_truncated: false,
                    }
                } else {
                    let lexical = if !path.starts_with('/') && base_dir.starts_with('/') {
                        normalize(&format!("{base_dir}/{path}"))
                    } else {
                        self.resolve_path(&raw, &p, dirfd, path)
                    };
                    open_file(path, lexical, resolved, path_cut, walk_cut, flags)
                };
                let file = match self.ident.canonical(&id, &file.path_resolved) {
                    Some(c) => FileInfo {
                        path: c,
                        path_truncated: false,
                        ..file
                    },
                    None => file,
                };
                (p, Detail::File(file), ret)
            }
            RawBody::Op(ref o) => {
                let p = self.lookup(&raw);
                let info = self.op_info(&raw, &p, o);
                let kind = o.op.event_type();
                let ev = Event {
                    kind: kind?,
                    time,
                    ret: o.ret,
                    tid: raw.tid as i64,
                    proc: p,
                    detail: Detail::Op(Box::new(info)),
                };
                if ev.proc.incomplete {
                    self.stats.incomplete_events += 1;
                }
                return Some(ev);
            }
            RawBody::Net(ref n) => {
                let p = self.lookup(&raw);
                let net = net_info(n);
                let ret = n.ret;
                let d = if raw.kind == RawKind::Retransmit {
                    Detail::Retransmit {
                        net,
                        state: tcp_state_name(n.state).to_string(),
                    }
                } else {
                    Detail::Net(net)
                };
                (p, d, ret)
            }
        };
        if proc_.incomplete {
            self.stats.incomplete_events += 1;
        }
        Some(Event {
            kind: kind.unwrap_or(EventType::Exec),
            time,
            ret,
            tid: raw.tid as i64,
            proc: proc_,
            detail,
        })
    }

    fn resolve_path(&self, raw: &RawEvent, p: &Process, dirfd: i32, path: &str) -> String {
        if path.starts_with('/') {
            return normalize(path);
        }
        let base = self.proc_root.join(raw.tgid.to_string());
        let dir = if dirfd == AT_FDCWD {
            readlink(base.join("cwd").to_string_lossy().into_owned()).or_else(|| {
                if p.cwd.is_empty() {
                    None
                } else {
                    Some(p.cwd.clone())
                }
            })
        } else {
            readlink(
                base.join("fd")
                    .join(dirfd.to_string())
                    .to_string_lossy()
                    .into_owned(),
            )
        };
        match dir {
            Some(d) if d.starts_with('/') => normalize(&format!("{d}/{path}")),
            // unknown base directory: keep what we have
            _ => path.to_string(),
        }
    }
}

/// The paths of an open that passed one: `file.path` is the path the kernel
/// resolved (successful opens) unless that walk was cut and the lexical
/// path was not, else the lexical path.
fn open_file(
    raw: &str,
    lexical: String,
    resolved: &str,
    path_cut: bool,
    walk_cut: bool,
    flags: u32,
) -> FileInfo {
    // the walk, unless it was cut and the raw path was not
    let walk_usable = !resolved.is_empty() && (!walk_cut || path_cut);
    let (path, path_truncated) = if walk_usable {
        (resolved.to_string(), walk_cut)
    } else {
        // failed opens (the walk, if any, was of the base directory), or a
        // cut walk of an uncut raw path
        let cut = path_cut || (walk_cut && resolved.is_empty());
        (lexical.clone(), cut)
    };
    FileInfo {
        path,
        path_raw: raw.to_string(),
        path_lexical: lexical,
        path_resolved: resolved.to_string(),
        flags,
        path_truncated,
        path_raw_truncated: path_cut,
    }
}

fn net_info(n: &RawNet) -> NetInfo {
    if n.family == 1 {
        return NetInfo {
            proto: String::new(),
            family: "unix".into(),
            saddr: String::new(),
            sport: 0,
            daddr: n.unix_path.clone(),
            dport: 0,
        };
    }
    NetInfo {
        proto: n.proto_name().to_string(),
        family: n.family_name().to_string(),
        saddr: n.saddr.clone(),
        sport: n.sport as i64,
        daddr: n.daddr.clone(),
        dport: n.dport as i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_bpf::decode::FileId;
    use vigil_bpf::{OpKind, RawOp};

    pub(super) fn raw(kind: RawKind, tgid: u32, ppid: u32, comm: &str, body: RawBody) -> RawEvent {
        RawEvent {
            kind,
            passed: true,
            truncated: false,
            tgid,
            tid: tgid,
            ppid,
            ts_boot_ns: 1_000,
            cgroup_id: 0,
            comm: comm.into(),
            body,
        }
    }

    pub(super) fn exec(tgid: u32, ppid: u32, comm: &str, file: &str, argv: &[&str]) -> RawEvent {
        raw(
            RawKind::Exec,
            tgid,
            ppid,
            comm,
            RawBody::Exec {
                uid: 0,
                gid: 0,
                loginuid: u32::MAX,
                start_boot_ns: 500,
                tty: false,
                filename: file.into(),
                argv: argv.iter().map(|s| s.to_string()).collect(),
                cwd: "/srv".into(),
                cut: Default::default(),
                attrs: None,
            },
        )
    }

    /// A table whose /proc is an empty temp dir: only live records fill it.
    pub(super) fn empty_table(cap: usize) -> (tempfile::TempDir, ProcTable) {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("passwd"),
            "root:x:0:0::/root:/bin/sh\nwww:x:33:33::/:/bin/false\n",
        )
        .unwrap();
        let t = ProcTable::with_roots(cap, d.path().join("proc"), d.path().join("passwd"));
        (d, t)
    }

    /// An on-demand record of kind `op`, syscall `nr`, arguments `args`.
    pub(super) fn op_raw(op: OpKind, nr: u32, ret: i64, args: [u64; 5], s: [&str; 3]) -> RawOp {
        RawOp {
            op,
            nr,
            ret,
            args,
            s1: s[0].into(),
            s2: s[1].into(),
            s3: s[2].into(),
            s1_cut: false,
            s2_cut: false,
            s3_cut: false,
            s1_walked: false,
            aux: 0,
            sock: None,
            sock_type: 0,
        }
    }

    #[test]
    fn exec_fork_exec_builds_ancestry() {
        // pid numbers far above pid_max so a real /proc could never answer
        let (_d, mut t) = empty_table(100);
        let ev = t
            .apply(exec(
                5_000_001,
                1,
                "nginx",
                "/usr/sbin/nginx",
                &["nginx", "-g", "daemon off;"],
            ))
            .unwrap();
        assert_eq!(ev.kind, EventType::Exec);
        assert_eq!(ev.proc.name, "nginx");
        assert_eq!(ev.proc.args, ["-g", "daemon off;"]);
        assert_eq!(ev.proc.user_name, "root");
        assert!(ev.proc.incomplete, "parent 1 unknown in an empty table");
        let fork = raw(
            RawKind::Fork,
            5_000_002,
            5_000_001,
            "nginx",
            RawBody::Fork {
                start_boot_ns: 900,
                uid: 0,
                gid: 0,
            },
        );
        assert!(t.apply(fork).is_none());
        let ev = t
            .apply(exec(
                5_000_002,
                5_000_001,
                "sh",
                "/bin/sh",
                &["sh", "-c", "id"],
            ))
            .unwrap();
        assert_eq!(ev.proc.pname, "nginx");
        assert_eq!(ev.proc.pexe, "/usr/sbin/nginx");
        assert_eq!(ev.proc.pcmdline, "nginx -g daemon off;");
        assert_eq!(ev.proc.ancestors, ["nginx"]);
        assert_eq!(ev.proc.cmdline, "sh -c id");
        assert_eq!(ev.proc.cwd, "/srv");
        let ev = t
            .apply(exec(
                5_000_003,
                5_000_002,
                "tool",
                "./bin/../tool",
                &["./tool"],
            ))
            .unwrap();
        assert_eq!(
            ev.proc.exe, "/srv/tool",
            "relative filename resolved against the cwd"
        );
        assert!(!ev.proc.incomplete);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn exit_removes_after_grace_and_cap_holds() {
        let (_d, mut t) = empty_table(2);
        t.apply(exec(5_000_001, 0, "a", "/a", &["a"]));
        t.apply(exec(5_000_002, 0, "b", "/b", &["b"]));
        t.apply(exec(5_000_003, 0, "c", "/c", &["c"]));
        assert_eq!(t.len(), 2, "capped");
        assert_eq!(t.stats().evicted, 1);
        let ev = t
            .apply(raw(
                RawKind::Exit,
                5_000_001,
                0,
                "a",
                RawBody::Exit { code: 1, signal: 0 },
            ))
            .unwrap();
        assert_eq!(ev.detail, Detail::Exit { code: 1, signal: 0 });
        assert_eq!(ev.proc.name, "a");
        assert!(
            t.get(5_000_001).is_some(),
            "still there during the grace period"
        );
        t.expire(true);
        assert!(t.get(5_000_001).is_none());
        assert_eq!(t.len(), 1);
        // a pid reused before the grace period ends keeps the new process
        t.apply(exec(5_000_002, 0, "b", "/b", &["b"]));
        t.apply(raw(
            RawKind::Exit,
            5_000_002,
            0,
            "b",
            RawBody::Exit { code: 0, signal: 0 },
        ));
        let mut again = exec(5_000_002, 0, "b2", "/b2", &["b2"]);
        if let RawBody::Exec { start_boot_ns, .. } = &mut again.body {
            *start_boot_ns = 777;
        }
        t.apply(again);
        t.expire(true);
        assert_eq!(t.get(5_000_002).unwrap().name, "b2");
    }

    #[test]
    fn open_resolves_relative_against_cwd_and_keeps_raw() {
        let (_d, mut t) = empty_table(10);
        t.apply(exec(5_000_001, 0, "cat", "/bin/cat", &["cat"]));
        // no /proc entry: the cwd is unknown, the relative path stays relative
        let ev = t
            .apply(raw(
                RawKind::Open,
                5_000_001,
                0,
                "cat",
                RawBody::Open {
                    ret: 3,
                    flags: 0,
                    dirfd: -100,
                    path: "/etc/../etc//shadow".into(),
                    base_dir: String::new(),
                    resolved: String::new(),
                    id: Default::default(),
                    path_cut: false,
                    walk_cut: false,
                },
            ))
            .unwrap();
        let f = ev.file().unwrap();
        assert_eq!(f.path, "/etc/shadow");
        assert_eq!(f.path_raw, "/etc/../etc//shadow");
        assert_eq!(ev.ret, 3);
        // a relative path with the kernel's base directory
        let ev = t
            .apply(raw(
                RawKind::Open,
                5_000_001,
                0,
                "cat",
                RawBody::Open {
                    ret: 3,
                    flags: 0,
                    dirfd: -100,
                    path: "../etc/./shadow".into(),
                    base_dir: "/usr".into(),
                    resolved: String::new(),
                    id: Default::default(),
                    path_cut: false,
                    walk_cut: false,
                },
            ))
            .unwrap();
        assert_eq!(ev.file().unwrap().path, "/etc/shadow");
        assert_eq!(ev.file().unwrap().path_raw, "../etc/./shadow");
    }

    fn open_raw(
        tgid: u32,
        ret: i64,
        path: &str,
        resolved: &str,
        id: FileId,
        cut: bool,
    ) -> RawEvent {
        raw(
            RawKind::Open,
            tgid,
            0,
            "cat",
            RawBody::Open {
                ret,
                flags: 0,
                dirfd: -100,
                path: path.into(),
                base_dir: String::new(),
                resolved: resolved.into(),
                id,
                path_cut: cut,
                walk_cut: false,
            },
        )
    }

    #[test]
    fn successful_opens_take_the_resolved_path_and_watched_names_by_identity() {
        use std::os::unix::fs::MetadataExt;
        let (d, mut t) = empty_table(10);
        t.apply(exec(5_000_001, 0, "cat", "/bin/cat", &["cat"]));
        // padding cut at the kernel's bound: the walk has the real file
        let padded = format!("/etc/{}", "./".repeat(500));
        let ev = t
            .apply(open_raw(
                5_000_001,
                3,
                &padded,
                "/etc/shadow",
                FileId::default(),
                true,
            ))
            .unwrap();
        let f = ev.file().unwrap();
        assert_eq!(f.path, "/etc/shadow");
        assert_eq!(f.path_lexical, "/etc");
        assert!(f.path_raw_truncated && !f.path_truncated);
        // a failed open of a cut path: the lexical path, flagged
        let ev = t
            .apply(open_raw(
                5_000_001,
                -2,
                &padded,
                "",
                FileId::default(),
                true,
            ))
            .unwrap();
        assert_eq!(ev.file().unwrap().path, "/etc");
        assert!(ev.file().unwrap().path_truncated);
        // a hard link of a watched file is read as the watched file
        let watched = d.path().join("secret");
        std::fs::write(&watched, "s").unwrap();
        std::fs::hard_link(&watched, d.path().join("alias")).unwrap();
        let md = std::fs::metadata(&watched).unwrap();
        let plan = vigil_bpf::FilterPlan {
            paths: [(watched.to_str().unwrap().as_bytes().to_vec(), 1u8)].into(),
            ..Default::default()
        };
        t.set_identity(Identity::scan(&plan));
        let alias = d.path().join("alias");
        let id = FileId {
            dev: vigil_bpf::decode::kernel_dev(md.dev()),
            ino: md.ino(),
            parent_ino: 0,
        };
        let ev = t
            .apply(open_raw(
                5_000_001,
                3,
                alias.to_str().unwrap(),
                alias.to_str().unwrap(),
                id,
                false,
            ))
            .unwrap();
        let f = ev.file().unwrap();
        assert_eq!(f.path, watched.to_str().unwrap());
        assert_eq!(f.path_resolved, alias.to_str().unwrap());
        assert_eq!(f.path_raw, alias.to_str().unwrap());
    }

    #[test]
    fn cut_exec_strings_are_flagged() {
        let (_d, mut t) = empty_table(10);
        let mut e = exec(5_000_001, 0, "bash", "/bin/bash", &["bash", "-c", "true"]);
        if let RawBody::Exec { cut, .. } = &mut e.body {
            cut.args = true;
            cut.cwd = true;
        }
        let ev = t.apply(e).unwrap();
        assert!(ev.proc.cmdline_truncated);
        assert!(ev.proc.cwd_truncated, "no /proc entry to complete it");
        assert!(!ev.proc.exe_truncated);
    }

    #[test]
    fn unknown_process_is_incomplete_and_comm_changes_apply() {
        let (_d, mut t) = empty_table(10);
        let ev = t
            .apply(raw(
                RawKind::Connect,
                5_000_009,
                1,
                "curl",
                RawBody::Net(RawNet {
                    family: 2,
                    proto: 6,
                    daddr: "127.0.0.1".into(),
                    dport: 80,
                    ..Default::default()
                }),
            ))
            .unwrap();
        assert!(ev.proc.incomplete);
        let n = ev.net().unwrap();
        assert_eq!(
            (n.proto.as_str(), n.family.as_str(), n.dport),
            ("tcp", "inet", 80)
        );
        t.apply(exec(5_000_001, 0, "a", "/a", &["a"]));
        let ev = t
            .apply(raw(
                RawKind::Exit,
                5_000_001,
                0,
                "renamed",
                RawBody::Exit { code: 0, signal: 9 },
            ))
            .unwrap();
        assert_eq!(ev.proc.name, "renamed");
    }

    #[test]
    fn seeds_from_real_proc() {
        let mut t = ProcTable::new(100_000);
        let n = t.seed_from_proc();
        assert!(n > 0);
        let me = t.get(std::process::id()).expect("this test process");
        assert!(
            me.exe.ends_with(
                &*std::env::current_exe()
                    .unwrap()
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
            ) || me.exe.contains("deleted")
        );
        assert!(!me.cwd.is_empty());
        assert!(me.start > 1_577_836_800_000_000_000, "epoch start time");
    }

    #[test]
    fn exec_attributes_from_proc_and_inherited_by_fork() {
        let (d, mut t) = empty_table(100);
        t.set_env_names(vec!["LD_PRELOAD".into(), "http_proxy".into()]);
        let pid = 5_000_001u32;
        let dir = d.path().join("proc").join(pid.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("status"),
            "Name:\tx\nCapInh:\t0000000000000000\nCapPrm:\t0000000000210000\nCapEff:\t0000000000200000\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("environ"),
            b"HOME=/root\0LD_PRELOAD=/tmp/evil.so\0SECRET=x\0LD_PRELOAD=/second.so\0http_proxy=http://p:3128\0",
        )
        .unwrap();
        std::os::unix::fs::symlink("/memfd:payload (deleted)", dir.join("exe")).unwrap();
        let ev = t.apply(exec(pid, 1, "x", "/dev/fd/3", &["x"])).unwrap();
        let p = &ev.proc;
        assert_eq!(&*p.cap_effective, ["CAP_SYS_ADMIN"]);
        assert_eq!(&*p.cap_permitted, ["CAP_SYS_MODULE", "CAP_SYS_ADMIN"]);
        assert!(p.exe_from_memfd && !p.exe_deleted && !p.exe_upper_layer);
        assert_eq!(p.env, "LD_PRELOAD=/tmp/evil.so http_proxy=http://p:3128");
        assert_eq!(p.env_names, ["LD_PRELOAD", "http_proxy"]);
        // a child keeps its parent's attributes until it execs
        let child = pid + 1;
        t.apply(raw(
            RawKind::Fork,
            child,
            pid,
            "x",
            RawBody::Fork {
                start_boot_ns: 9,
                uid: 0,
                gid: 0,
            },
        ));
        assert!(t.get(child).unwrap().exe_from_memfd);
        assert_eq!(t.get(child).unwrap().env, p.env);
        // the same mask is one shared list
        assert!(Arc::ptr_eq(
            &t.get(child).unwrap().cap_effective,
            &p.cap_effective
        ));
        // the kernel's attributes win over /proc's (read later, racy)
        let mut e = exec(pid, 1, "x", "/bin/x", &["x"]);
        if let RawBody::Exec { attrs, .. } = &mut e.body {
            *attrs = Some(vigil_bpf::decode::ExecKernelAttrs {
                cap_effective: 0,
                cap_permitted: 1 << 39,
                exe_upper_layer: true,
                ..Default::default()
            });
        }
        let ev = t.apply(e).unwrap();
        let p = &ev.proc;
        assert!(p.cap_effective.is_empty());
        assert_eq!(&*p.cap_permitted, ["CAP_BPF"]);
        assert!(p.exe_upper_layer && !p.exe_from_memfd);
        assert_eq!(p.env_names, ["LD_PRELOAD", "http_proxy"]);
    }

    #[test]
    fn failed_exec_names_the_file_without_touching_the_table() {
        let (_d, mut t) = empty_table(100);
        t.apply(exec(5_000_010, 1, "sh", "/bin/sh", &["sh"]));
        let op = |nr: u32, args: [u64; 5], s1: &str| {
            raw(
                RawKind::SysOp,
                5_000_010,
                1,
                "sh",
                RawBody::Op(RawOp {
                    ret: -2,
                    ..op_raw(OpKind::ExecFailed, nr, 0, args, [s1, "", ""])
                }),
            )
        };
        let ev = t.apply(op(59, [0; 5], "./nope")).unwrap();
        assert_eq!(ev.kind, EventType::ExecFailed);
        assert_eq!(ev.ret, -2);
        let o = ev.op().unwrap();
        assert_eq!(
            (o.path.as_str(), o.path_raw.as_str()),
            ("/srv/nope", "./nope")
        );
        // the caller's process is unchanged
        assert_eq!(ev.proc.exe, "/bin/sh");
        assert_eq!(t.get(5_000_010).unwrap().exe, "/bin/sh");
        let ev = t
            .apply(op(322, [(-100i64) as u64, 0, 0, 0, 0], "/usr/bin/../bin/x"))
            .unwrap();
        assert_eq!(ev.op().unwrap().path, "/usr/bin/x");
    }

    #[test]
    fn normalize_squeezes_dots() {
        assert_eq!(normalize("/a/./b/../../c//d/"), "/c/d");
        assert_eq!(normalize("/.."), "/");
    }
}
