//! The process table: pid → engine [`Process`] snapshot, seeded from /proc
//! after the sensors attach and then kept current from fork/exec/exit
//! records. It turns every raw kernel record into an engine [`Event`]
//! (process state, epoch time, open paths: the kernel-resolved path, renamed
//! to the watched name when the opened file is a watched file's alias by
//! identity, see [`vigil_bpf::Identity`]). Bounded: at most `cap`
//! entries; exited processes stay for a short grace period so late events
//! (e.g. a retransmit after exit) still resolve.

use std::collections::{HashMap, VecDeque};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_bpf::decode::{tcp_state_name, RawNet};
use vigil_bpf::{Identity, OpKind, RawBody, RawEvent, RawKind, RawOp};
use vigil_engine::event::{
    bpf_cmd_name, bpf_map_type_name, bpf_prog_type_name, ns_type_names, ptrace_request_name,
    socket_domain_name, socket_type_name,
};
use vigil_engine::{Detail, Event, EventType, FileInfo, NetInfo, OpInfo, Process};

/// How long an exited process stays resolvable.
pub const EXIT_GRACE: Duration = Duration::from_secs(5);
/// Ancestors kept per process (parent first).
pub const MAX_ANCESTORS: usize = 16;
const AT_FDCWD: i32 = -100;

pub use crate::config::DEFAULT_ENV;
/// A recorded value is cut at this many bytes.
pub const ENV_VALUE_MAX: usize = 256;
/// Bytes of /proc/PID/environ read at most.
pub const ENVIRON_READ_MAX: u64 = 128 * 1024;

/// The allow-listed variables of a NUL-separated environment block:
/// (`NAME=value` joined by spaces, names), in block order, each value cut
/// at `ENV_VALUE_MAX` bytes. A name set twice is recorded once (the first,
/// which is what getenv(3) returns).
pub fn pick_env(block: &[u8], names: &[String]) -> (String, Vec<String>) {
    let mut env = String::new();
    let mut found: Vec<String> = Vec::new();
    for var in block.split(|&b| b == 0) {
        let Some(eq) = var.iter().position(|&b| b == b'=') else {
            continue;
        };
        let Some(name) = names.iter().find(|n| n.as_bytes() == &var[..eq]) else {
            continue;
        };
        if found.contains(name) {
            continue;
        }
        let value = &var[eq + 1..];
        let value = String::from_utf8_lossy(&value[..value.len().min(ENV_VALUE_MAX)]);
        if !env.is_empty() {
            env.push(' ');
        }
        env.push_str(name);
        env.push('=');
        env.push_str(&value);
        found.push(name.clone());
    }
    (env, found)
}

/// What the executable's /proc link says about its file: (from a memfd,
/// deleted). The kernel names a memfd `/memfd:NAME (deleted)`.
pub fn exe_link_flags(link: &str) -> (bool, bool) {
    let memfd = link.starts_with("/memfd:");
    (memfd, !memfd && link.ends_with(" (deleted)"))
}

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

/// `/etc/passwd` uid → name, reloaded on a miss at most every 10 s.
struct Users {
    path: PathBuf,
    names: HashMap<i64, String>,
    loaded: Option<Instant>,
}

impl Users {
    fn new(path: PathBuf) -> Users {
        let mut u = Users {
            path,
            names: HashMap::new(),
            loaded: None,
        };
        u.reload();
        u
    }
    fn reload(&mut self) {
        self.loaded = Some(Instant::now());
        if let Ok(text) = std::fs::read_to_string(&self.path) {
            self.names = parse_passwd(&text);
        }
    }
    fn name(&mut self, uid: i64) -> String {
        if let Some(n) = self.names.get(&uid) {
            return n.clone();
        }
        if self
            .loaded
            .is_none_or(|t| t.elapsed() > Duration::from_secs(10))
        {
            self.reload();
        }
        self.names.get(&uid).cloned().unwrap_or_default()
    }
}

/// uid → user name from passwd-format text.
pub fn parse_passwd(text: &str) -> HashMap<i64, String> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let _pw = f.next()?;
            let uid = f.next()?.parse::<i64>().ok()?;
            Some((uid, name.to_string()))
        })
        .collect()
}

/// The systemd unit owning a cgroup v2 path: its last `.service` or `.scope` component.
pub fn unit_from_cgroup(path: &str) -> String {
    path.split('/')
        .rfind(|c| c.ends_with(".service") || c.ends_with(".scope"))
        .unwrap_or("")
        .to_string()
}

/// Container id (12 hex chars, as Falco prints it) from a cgroup path:
/// docker (`/docker/<id>`, `docker-<id>.scope`), containerd
/// (`cri-containerd-<id>.scope`, `/kubepods/.../<id>`), cri-o
/// (`crio-<id>.scope`), podman (`libpod-<id>.scope`).
pub fn container_id_from_cgroup(path: &str) -> String {
    for comp in path.split('/').rev() {
        let c = comp.strip_suffix(".scope").unwrap_or(comp);
        if c.starts_with("crio-conmon-") {
            continue;
        }
        let id = [
            "docker-",
            "cri-containerd-",
            "crio-",
            "libpod-",
            "containerd-",
        ]
        .iter()
        .find_map(|p| c.strip_prefix(p))
        .unwrap_or(c);
        if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return id[..12].to_string();
        }
    }
    String::new()
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

fn readlink(p: String) -> Option<String> {
    std::fs::read_link(p)
        .ok()
        .map(|l| l.to_string_lossy().into_owned())
}

/// What /proc says about one process (no derived parent fields).
#[derive(Clone, Debug, Default)]
struct ProcInfo {
    pid: i64,
    ppid: i64,
    name: String,
    exe: String,
    argv: Vec<String>,
    cwd: String,
    start_ticks: i64,
    uid: i64,
    gid: i64,
    loginuid: i64,
    cgroup: String,
    tty: bool,
    cap_effective: u64,
    cap_permitted: u64,
}

/// A capability mask line (`CapEff:\t000001ffffffffff`) of /proc/PID/status.
fn status_cap(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0)
}

fn read_proc(root: &Path, pid: u32) -> Option<ProcInfo> {
    let base = root.join(pid.to_string());
    let stat = std::fs::read_to_string(base.join("stat")).ok()?;
    // comm is in parentheses and may contain spaces or ')'.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = stat.get(close + 2..)?.split(' ').collect();
    // fields after comm: state(0) ppid(1) pgrp(2) session(3) tty_nr(4) ... starttime(19)
    let ppid = rest.get(1)?.parse().ok()?;
    let tty = rest.get(4).and_then(|t| t.parse::<i64>().ok()).unwrap_or(0) != 0;
    let start_ticks = rest.get(19).and_then(|t| t.parse().ok()).unwrap_or(0);
    let status = std::fs::read_to_string(base.join("status")).unwrap_or_default();
    let id_of = |key: &str| -> i64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1)
    };
    let cap = |key: &str| status_cap(&status, key);
    let argv = std::fs::read(base.join("cmdline"))
        .map(|b| {
            let b = b.strip_suffix(&[0]).unwrap_or(&b).to_vec();
            if b.is_empty() {
                Vec::new()
            } else {
                b.split(|&c| c == 0)
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect()
            }
        })
        .unwrap_or_default();
    let loginuid = std::fs::read_to_string(base.join("loginuid"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .map_or(-1, |v| if v == u32::MAX { -1 } else { v as i64 });
    let cgroup = std::fs::read_to_string(base.join("cgroup"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("0::").map(str::to_string))
        })
        .unwrap_or_default();
    let p = |n: &str| base.join(n).to_string_lossy().into_owned();
    Some(ProcInfo {
        pid: pid as i64,
        ppid,
        name,
        exe: readlink(p("exe")).unwrap_or_default(),
        argv,
        cwd: readlink(p("cwd")).unwrap_or_default(),
        start_ticks,
        uid: id_of("Uid:"),
        gid: id_of("Gid:"),
        loginuid,
        cgroup,
        tty,
        cap_effective: cap("CapEff:"),
        cap_permitted: cap("CapPrm:"),
    })
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

    /// The engine details of an on-demand syscall: paths made absolute
    /// against the cwd or the dirfd the syscall named (x86_64 numbering;
    /// compat records carry it too), arguments named.
    fn op_info(&self, raw: &RawEvent, p: &Process, o: &RawOp) -> OpInfo {
        // 32-bit values (fds, ids) as the kernel reads them
        let a = |i: usize| o.args[i] as u32 as i32;
        let abs = |dirfd: i32, path: &str| {
            if path.is_empty() {
                String::new()
            } else {
                self.resolve_path(raw, p, dirfd, path)
            }
        };
        let mut info = OpInfo::new();
        // the path of an fd argument: the kernel's walk (fchmod, fchown,
        // finit_module), else /proc while the process is there
        let fd_path = |fd: i32| {
            if o.s1_walked {
                return o.s1.clone();
            }
            let fd = self
                .proc_root
                .join(raw.tgid.to_string())
                .join("fd")
                .join(fd.to_string());
            readlink(fd.to_string_lossy().into_owned()).unwrap_or_default()
        };
        match o.op {
            OpKind::Symlink | OpKind::Link | OpKind::Rename => {
                // (dirfd of the first path, dirfd of the second)
                let (d1, d2) = match o.nr {
                    266 => (AT_FDCWD, a(1)),
                    265 | 264 | 316 => (a(0), a(2)),
                    _ => (AT_FDCWD, AT_FDCWD),
                };
                info.path = abs(d2, &o.s2);
                info.source = if o.op == OpKind::Symlink && !o.s1.starts_with('/') {
                    // a relative target is relative to the link's directory
                    let dir = Path::new(&info.path).parent().map(|d| d.to_string_lossy());
                    match dir {
                        Some(d) if d.starts_with('/') => normalize(&format!("{d}/{}", o.s1)),
                        _ => o.s1.clone(),
                    }
                } else {
                    abs(d1, &o.s1)
                };
                info.path_raw = o.s2.clone();
                info.source_raw = o.s1.clone();
            }
            OpKind::Unlink | OpKind::Mkdir | OpKind::Rmdir | OpKind::Chmod => {
                let (dirfd, mode) = match o.nr {
                    263 => (a(0), None),
                    258 | 268 | 452 => (a(0), Some(2)),
                    83 | 90 => (AT_FDCWD, Some(1)),
                    91 => (a(0), Some(1)),
                    _ => (AT_FDCWD, None),
                };
                info.path = if o.nr == 91 {
                    fd_path(dirfd)
                } else {
                    abs(dirfd, &o.s1)
                };
                info.path_raw = if o.s1_walked {
                    String::new()
                } else {
                    o.s1.clone()
                };
                info.mode = mode.map_or(-1, |i| i64::from(o.args[i] as u32 & 0o7777));
            }
            OpKind::Ptrace => {
                info.request = ptrace_request_name(o.args[0]);
                info.target_pid = a(1).into();
                if let Some(t) = u32::try_from(a(1))
                    .ok()
                    .and_then(|pid| self.procs.get(&pid))
                {
                    info.target_name = t.proc.name.clone();
                    info.target_exe = t.proc.exe.clone();
                }
            }
            OpKind::Socket => {
                info.domain = socket_domain_name(o.args[0]);
                info.sock_type = socket_type_name(o.args[1]);
                info.protocol = a(2).into();
            }
            OpKind::Setuid | OpKind::Setgid => {
                // setuid(id); setreuid(r, e); setresuid(r, e, s): the
                // effective id asked for, else the real, else the saved
                info.requested_id = match o.nr {
                    113 | 114 => [a(1), a(0)].into_iter().find(|&v| v != -1),
                    117 | 119 => [a(1), a(0), a(2)].into_iter().find(|&v| v != -1),
                    _ => Some(a(0)),
                }
                .unwrap_or(-1)
                .into();
            }
            OpKind::Setns => info.ns_types = ns_type_names(o.args[1]),
            OpKind::Unshare => info.ns_types = ns_type_names(o.args[0]),
            OpKind::Memfd => {
                info.name = o.s1.clone();
                info.flags = a(1).into();
            }
            OpKind::Dup => {
                info.oldfd = a(0).into();
                info.newfd = match o.nr {
                    33 | 292 if o.ret >= 0 => a(1).into(), // dup2, dup3
                    _ if o.ret >= 0 => o.ret,
                    _ => -1,
                };
                info.sock = o.sock.as_ref().map(net_info);
            }
            OpKind::Listen => {
                info.backlog = a(1).into();
                info.sock = o.sock.as_ref().map(net_info);
            }
            OpKind::Chown => {
                // chown(path, uid, gid), fchown(fd, ..), lchown(path, ..),
                // fchownat(dirfd, path, uid, gid, flags)
                let (ids, path) = match o.nr {
                    93 => (1, fd_path(a(0))),
                    260 if o.s1.is_empty() => (2, fd_path(a(0))), // AT_EMPTY_PATH
                    260 => (2, abs(a(0), &o.s1)),
                    _ => (1, abs(AT_FDCWD, &o.s1)),
                };
                info.path = path;
                info.path_raw = if o.s1_walked {
                    String::new()
                } else {
                    o.s1.clone()
                };
                info.uid = a(ids).into();
                info.gid = a(ids + 1).into();
            }
            OpKind::Mount => {
                // mount(src, target, fstype, flags, data); umount2(target,
                // flags); move_mount(from_dfd, from, to_dfd, to, flags);
                // fsmount(fs_fd, flags, attr_flags)
                let (call, flags) = match o.nr {
                    165 => ("mount", 3),
                    166 => ("umount2", 1),
                    429 => ("move_mount", 4),
                    _ => ("fsmount", 1),
                };
                info.call = call.into();
                info.flags = i64::from(o.args[flags] as u32);
                match o.nr {
                    165 => {
                        info.source = o.s1.clone();
                        info.path = abs(AT_FDCWD, &o.s2);
                        info.fstype = o.s3.clone();
                    }
                    166 => info.path = abs(AT_FDCWD, &o.s1),
                    429 => {
                        info.source = abs(a(0), &o.s1);
                        info.path = abs(a(2), &o.s2);
                    }
                    _ => {}
                }
            }
            OpKind::Bpf => {
                info.cmd = bpf_cmd_name(o.args[0]);
                match o.args[0] {
                    0 => info.map_type = bpf_map_type_name(o.aux.into()),
                    5 => info.prog_type = bpf_prog_type_name(o.aux.into()),
                    _ => {}
                }
                info.name = o.s1.clone();
            }
            OpKind::Userfaultfd => info.flags = a(0).into(),
            OpKind::Module => {
                // init_module(image, len, params); finit_module(fd, params, flags)
                if o.nr == 313 {
                    info.path = fd_path(a(0));
                }
                info.params = o.s2.clone();
            }
            OpKind::Truncate => {
                info.path = abs(AT_FDCWD, &o.s1);
                info.path_raw = o.s1.clone();
                info.length = o.args[1] as i64;
            }
            OpKind::ExecFailed => {
                // execve(path, ...); execveat(dirfd, path, ..., flags):
                // AT_EMPTY_PATH with "" executes the dirfd itself
                let dirfd = if o.nr == 322 { a(0) } else { AT_FDCWD };
                info.path = if o.nr == 322 && o.s1.is_empty() && o.args[4] & 0x1000 != 0 {
                    let fd = self
                        .proc_root
                        .join(raw.tgid.to_string())
                        .join("fd")
                        .join(dirfd.to_string());
                    readlink(fd.to_string_lossy().into_owned()).unwrap_or_default()
                } else {
                    abs(dirfd, &o.s1)
                };
                info.path_raw = o.s1.clone();
            }
        }
        info
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

    fn raw(kind: RawKind, tgid: u32, ppid: u32, comm: &str, body: RawBody) -> RawEvent {
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

    fn exec(tgid: u32, ppid: u32, comm: &str, file: &str, argv: &[&str]) -> RawEvent {
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
    fn empty_table(cap: usize) -> (tempfile::TempDir, ProcTable) {
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
    fn op_raw(op: OpKind, nr: u32, ret: i64, args: [u64; 5], s: [&str; 3]) -> RawOp {
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
    fn the_second_on_demand_kinds_name_their_arguments() {
        use vigil_engine::fields::{lookup, FieldValue};
        let (_d, mut t) = empty_table(10);
        t.apply(exec(5_000_003, 0, "x", "/tmp/x", &["x"]));
        let mut conv = |o: RawOp| {
            t.apply(raw(RawKind::SysOp, 5_000_003, 0, "x", RawBody::Op(o)))
                .unwrap()
        };
        let get = |ev: &Event, name: &str| ev.get(lookup(name).unwrap()).map(|v| v.render());
        // dup2(3, 0) of a TCP socket: the new fd is the argument, net.* the socket
        let mut o = op_raw(OpKind::Dup, 33, 0, [3, 0, 0, 0, 0], ["", "", ""]);
        o.sock = Some(RawNet {
            family: 2,
            proto: 6,
            daddr: "10.0.0.9".into(),
            dport: 4444,
            ..Default::default()
        });
        let ev = conv(o);
        assert_eq!(ev.kind, EventType::Dup);
        assert_eq!(get(&ev, "dup.newfd").as_deref(), Some("0"));
        assert_eq!(get(&ev, "net.daddr").as_deref(), Some("10.0.0.9"));
        assert_eq!(get(&ev, "net.proto").as_deref(), Some("tcp"));
        // fcntl(F_DUPFD): the new fd is the result; a failed dup has none
        let ev = conv(op_raw(OpKind::Dup, 72, 10, [1, 0, 10, 0, 0], ["", "", ""]));
        assert_eq!(get(&ev, "dup.newfd").as_deref(), Some("10"));
        assert_eq!(get(&ev, "net.family").as_deref(), Some(""), "not a socket");
        let ev = conv(op_raw(OpKind::Dup, 33, -9, [99, 1, 0, 0, 0], ["", "", ""]));
        assert_eq!(get(&ev, "dup.newfd").as_deref(), Some("-1"));
        // fchownat(AT_FDCWD, "/etc/shadow", 1000, -1, 0)
        let ev = conv(op_raw(
            OpKind::Chown,
            260,
            0,
            [(-100i32) as u32 as u64, 0, 1000, u32::MAX as u64, 0],
            ["/etc//shadow", "", ""],
        ));
        assert_eq!(get(&ev, "fs.path").as_deref(), Some("/etc/shadow"));
        assert_eq!(
            (
                get(&ev, "chown.uid").as_deref(),
                get(&ev, "chown.gid").as_deref()
            ),
            (Some("1000"), Some("-1"))
        );
        // mount("/dev/sdb1", "/mnt/x", "ext4", MS_RDONLY, NULL)
        let ev = conv(op_raw(
            OpKind::Mount,
            165,
            0,
            [0, 0, 0, 1, 0],
            ["/dev/sdb1", "/mnt/x", "ext4"],
        ));
        assert_eq!(
            [
                "mount.call",
                "mount.source",
                "mount.target",
                "mount.fstype",
                "mount.flags"
            ]
            .map(|f| get(&ev, f).unwrap()),
            ["mount", "/dev/sdb1", "/mnt/x", "ext4", "1"]
        );
        // bpf(BPF_PROG_LOAD) of a kprobe program named hide
        let mut o = op_raw(OpKind::Bpf, 321, 5, [5, 0, 0, 0, 0], ["hide", "", ""]);
        o.aux = 2;
        let ev = conv(o);
        assert_eq!(
            ["bpf.cmd", "bpf.prog_type", "bpf.map_type", "bpf.name"].map(|f| get(&ev, f).unwrap()),
            ["BPF_PROG_LOAD", "BPF_PROG_TYPE_KPROBE", "", "hide"]
        );
        // finit_module: the kernel's walk of the fd is the module file
        let mut o = op_raw(
            OpKind::Module,
            313,
            -38,
            [4, 0, 0, 0, 0],
            ["/tmp/rk.ko", "x=1", ""],
        );
        o.s1_walked = true;
        let ev = conv(o);
        assert_eq!(get(&ev, "module.path").as_deref(), Some("/tmp/rk.ko"));
        assert_eq!(get(&ev, "module.params").as_deref(), Some("x=1"));
        assert_eq!(ev.ret, -38);
        let ev = conv(op_raw(
            OpKind::Truncate,
            76,
            0,
            [0, 0, 0, 0, 0],
            ["/root/.bash_history", "", ""],
        ));
        assert_eq!(get(&ev, "fs.path").as_deref(), Some("/root/.bash_history"));
        assert!(matches!(
            ev.get(lookup("truncate.length").unwrap()),
            Some(FieldValue::Int(0))
        ));
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
    fn env_and_exe_helpers() {
        let names: Vec<String> = vec!["LD_PRELOAD".into(), "LD_LIBRARY_PATH".into()];
        let long = format!("LD_LIBRARY_PATH={}", "a".repeat(1000));
        let block = [b"LD_PRELOADX=1\0=x\0noequals\0".to_vec(), long.into_bytes()].concat();
        let (env, found) = pick_env(&block, &names);
        assert_eq!(found, ["LD_LIBRARY_PATH"]);
        assert_eq!(env.len(), "LD_LIBRARY_PATH=".len() + ENV_VALUE_MAX);
        assert_eq!(pick_env(b"LD_PRELOAD=a", &[]), (String::new(), vec![]));
        assert_eq!(exe_link_flags("/memfd:x (deleted)"), (true, false));
        assert_eq!(exe_link_flags("/tmp/a.out (deleted)"), (false, true));
        assert_eq!(exe_link_flags("/usr/bin/ls"), (false, false));
        assert!(crate::config::check_env_names(&names).is_ok());
        assert!(crate::config::check_env_names(&["A B".into()])
            .unwrap_err()
            .contains("`A B`"));
        assert!(crate::config::check_env_names(&vec!["A".to_string(); 17]).is_err());
    }

    #[test]
    fn helpers() {
        assert_eq!(normalize("/a/./b/../../c//d/"), "/c/d");
        assert_eq!(normalize("/.."), "/");
        assert_eq!(
            unit_from_cgroup("/system.slice/nginx.service"),
            "nginx.service"
        );
        assert_eq!(
            unit_from_cgroup("/user.slice/user-0.slice/session-3.scope"),
            "session-3.scope"
        );
        assert_eq!(unit_from_cgroup("/init.scope/x"), "init.scope");
        assert_eq!(unit_from_cgroup("/"), "");
        let id = "0123456789abcdef".repeat(4);
        for p in [
            format!("/system.slice/docker-{id}.scope"),
            format!("/docker/{id}"),
            format!("/kubepods.slice/kubepods-pod1.slice/cri-containerd-{id}.scope"),
            format!("/kubepods/besteffort/pod1/{id}"),
            format!("/machine.slice/libpod-{id}.scope/container"),
            format!("/system.slice/crio-{id}.scope"),
        ] {
            assert_eq!(container_id_from_cgroup(&p), "0123456789ab", "{p}");
        }
        assert_eq!(container_id_from_cgroup("/system.slice/sshd.service"), "");
        assert_eq!(
            parse_passwd("a:x:5:5::/:/bin/sh\nbad\n").get(&5).unwrap(),
            "a"
        );
    }
}
