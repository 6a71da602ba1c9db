//! What the process table reads from /proc and /etc/passwd: a process's
//! stat, status, cmdline and links ([`read_proc`]), capability masks, the
//! allow-listed environment, user names, and the systemd unit and container
//! id a cgroup path names.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A recorded value is cut at this many bytes.
pub const ENV_VALUE_MAX: usize = 256;

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

/// `/etc/passwd` uid → name, reloaded on a miss at most every 10 s.
pub(super) struct Users {
    path: PathBuf,
    names: HashMap<i64, String>,
    loaded: Option<Instant>,
}

impl Users {
    pub(super) fn new(path: PathBuf) -> Users {
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
    pub(super) fn name(&mut self, uid: i64) -> String {
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

pub(super) fn readlink(p: String) -> Option<String> {
    std::fs::read_link(p)
        .ok()
        .map(|l| l.to_string_lossy().into_owned())
}

/// What /proc says about one process (no derived parent fields).
#[derive(Clone, Debug, Default)]
pub(super) struct ProcInfo {
    pub(super) pid: i64,
    pub(super) ppid: i64,
    pub(super) name: String,
    pub(super) exe: String,
    pub(super) argv: Vec<String>,
    pub(super) cwd: String,
    pub(super) start_ticks: i64,
    pub(super) uid: i64,
    pub(super) gid: i64,
    pub(super) loginuid: i64,
    pub(super) cgroup: String,
    pub(super) tty: bool,
    pub(super) cap_effective: u64,
    pub(super) cap_permitted: u64,
}

/// A capability mask line (`CapEff:\t000001ffffffffff`) of /proc/PID/status.
pub(super) fn status_cap(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0)
}

pub(super) fn read_proc(root: &Path, pid: u32) -> Option<ProcInfo> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
