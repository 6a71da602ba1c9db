//! What the second set of on-demand kinds costs, side by side in one run:
//! each hook on its own syscall (a rename, dup2, fcntl(F_GETFL), chown,
//! truncate, listen loop) with the kind not attached (no rule uses it) and
//! attached with a rule scoped away in the kernel (comm `nginx`), and the
//! getppid, open+close and fork+exec loops with none of the new kinds vs all
//! of them attached (they should not move). Loops run in this process (no
//! interpreter in the way); ns/call is the best of 5 rounds, and the hook's
//! own ns/run comes from kernel.bpf_stats_enabled. Root only.
//!
//!     cargo run --release -p vigil-bpf --example kind_cost -- [CALLS]

use std::collections::BTreeMap;
use std::ffi::CString;
use std::process::Command;
use std::time::Instant;

use vigil_bpf::{OpKind, Sensors};
use vigil_engine::filter::{FilterSets, KernelFilter, TypeFilter};
use vigil_engine::EventType;

/// id -> (name, run_time_ns, run_cnt) of every loaded program, from bpftool.
fn progs() -> BTreeMap<u32, (String, u64, u64)> {
    let out = Command::new("bpftool")
        .args(["prog", "show"])
        .output()
        .expect("bpftool");
    let mut m = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let get = |k: &str| w.iter().position(|x| *x == k).and_then(|i| w.get(i + 1));
        let id = w.first().and_then(|x| x.trim_end_matches(':').parse().ok());
        if let (Some(id), Some(name)) = (id, get("name")) {
            let n = |k| get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
            m.insert(id, (name.to_string(), n("run_time_ns"), n("run_cnt")));
        }
    }
    m
}

/// Best ns/call of 5 rounds of `calls` calls of `f`.
fn best(calls: u32, f: &mut dyn FnMut()) -> f64 {
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..calls {
                f();
            }
            t.elapsed().as_nanos() as f64 / f64::from(calls)
        })
        .fold(f64::INFINITY, f64::min)
}

/// ns/run of this process's programs whose name starts with `prefix`
/// over one more round of `f` (bpf stats on only for it).
fn hook_ns(ours: &[u32], prefix: &str, calls: u32, f: &mut dyn FnMut()) -> String {
    let before = progs();
    std::fs::write("/proc/sys/kernel/bpf_stats_enabled", "1").expect("bpf_stats");
    for _ in 0..calls {
        f();
    }
    std::fs::write("/proc/sys/kernel/bpf_stats_enabled", "0").expect("bpf_stats");
    let after = progs();
    let mut out = Vec::new();
    for id in ours {
        let (Some((name, rt0, rc0)), Some((_, rt, rc))) = (before.get(id), after.get(id)) else {
            continue;
        };
        let (d, t) = (rc - rc0, rt - rt0);
        if name.starts_with(prefix) && d > 0 {
            out.push(format!("{name} {} ns ({d} runs)", t / d));
        }
    }
    if out.is_empty() {
        "-".into()
    } else {
        out.join(", ")
    }
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn main() {
    let calls: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let others = progs();
    let mut s = Sensors::load().expect("loading the sensors (root?)");
    let ours: Vec<u32> = progs()
        .into_iter()
        .filter(|(id, (name, _, _))| !others.contains_key(id) && name.starts_with("vigil_"))
        .map(|(id, _)| id)
        .collect();
    // Every rule scoped away from this process: opens and the on-demand
    // kinds match a comm the loops do not have.
    let nginx = || {
        TypeFilter::Match(FilterSets {
            comms: ["nginx".to_string()].into(),
            ..Default::default()
        })
    };
    let mut f = KernelFilter {
        types: std::array::from_fn(|_| TypeFilter::Drop),
    };
    f.types[EventType::Open.index()] = nginx();
    for t in EventType::ALL.into_iter().filter(|t| t.on_demand()) {
        f.types[t.index()] = nginx();
    }
    s.set_filter(&f).expect("filter");

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let (a, b) = (c(&format!("{d}/a")), c(&format!("{d}/b")));
    std::fs::write(format!("{d}/a"), b"x").unwrap();
    let host = c("/etc/hostname");
    let mut flip = false;
    // SAFETY (all closures): plain syscalls on paths and fds this process owns.
    let mut rename = || unsafe {
        let (x, y) = if flip { (&b, &a) } else { (&a, &b) };
        flip = !flip;
        libc::rename(x.as_ptr(), y.as_ptr());
    };
    let mut dup2 = || unsafe {
        libc::dup2(0, 100);
    };
    let mut fcntl = || unsafe {
        libc::fcntl(0, libc::F_GETFL);
    };
    let file = c(&format!("{d}/f"));
    std::fs::write(format!("{d}/f"), b"").unwrap();
    let mut chown = || unsafe {
        libc::chown(file.as_ptr(), 0, 0);
    };
    let mut truncate = || unsafe {
        libc::truncate(file.as_ptr(), 0);
    };
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    let mut listen = || unsafe {
        libc::listen(sock, 8);
    };
    let mut getppid = || unsafe {
        libc::getppid();
    };
    let mut open = || unsafe {
        let fd = libc::open(host.as_ptr(), libc::O_RDONLY);
        libc::close(fd);
    };
    let mut exec = || {
        Command::new("/bin/true").status().unwrap();
    };

    println!("| loop | hook kind | not attached ns/call | attached, scoped away ns/call | hook ns/run (bpf_stats) |");
    println!("|---|---|---|---|---|");
    let own: [(&str, OpKind, &str, &mut dyn FnMut()); 6] = [
        (
            "rename a<->b",
            OpKind::Rename,
            "vigil_op_rename",
            &mut rename,
        ),
        ("dup2(0, 100)", OpKind::Dup, "vigil_op_", &mut dup2),
        (
            "fcntl(0, F_GETFL)",
            OpKind::Dup,
            "vigil_op_fcntl",
            &mut fcntl,
        ),
        (
            "chown(f, 0, 0)",
            OpKind::Chown,
            "vigil_op_chown",
            &mut chown,
        ),
        (
            "truncate(f, 0)",
            OpKind::Truncate,
            "vigil_op_trunc",
            &mut truncate,
        ),
        (
            "listen(s, 8)",
            OpKind::Listen,
            "vigil_op_listen",
            &mut listen,
        ),
    ];
    for (label, kind, prog, f) in own {
        s.set_ops(&[]).expect("detach");
        let off = best(calls, f);
        s.set_ops(&[kind]).expect("attach");
        let on = best(calls, f);
        let h = hook_ns(&ours, prog, calls, f);
        println!("| {label} | {} | {off:.0} | {on:.0} | {h} |", kind.as_str());
    }
    s.set_ops(&[]).expect("detach");
    let new_kinds = [
        OpKind::Dup,
        OpKind::Listen,
        OpKind::Chown,
        OpKind::Mount,
        OpKind::Bpf,
        OpKind::Userfaultfd,
        OpKind::Module,
        OpKind::Truncate,
    ];
    println!();
    println!("| loop | none of the new kinds ns/call | all new kinds attached ns/call | open/exec programs ns/run (attached) |");
    println!("|---|---|---|---|");
    let base: [(&str, u32, &str, &mut dyn FnMut()); 3] = [
        ("getppid", calls, "-", &mut getppid),
        (
            "openat+close /etc/hostname",
            calls,
            "vigil_exit_open",
            &mut open,
        ),
        ("fork+exec /bin/true", 300, "vigil_exec", &mut exec),
    ];
    for (label, n, prog, f) in base {
        s.set_ops(&[]).expect("detach");
        let off = best(n, f);
        s.set_ops(&new_kinds).expect("attach");
        let on = best(n, f);
        let h = if prog == "-" {
            "-".to_string()
        } else {
            hook_ns(&ours, prog, n, f)
        };
        println!("| {label} | {off:.0} | {on:.0} | {h} |");
    }
}
