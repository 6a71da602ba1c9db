//! What the on-demand syscall hooks cost the open path: the per-run time of
//! the open exit programs (kernel.bpf_stats_enabled, bpftool) over a shell
//! open loop, with no on-demand kind attached and then with all of them,
//! and the on-demand programs' run counts (0 while detached). Root only.
//!
//!     cargo run -p vigil-bpf --example op_cost -- [OPENS]

use std::collections::BTreeMap;
use std::process::Command;

use vigil_bpf::{OpKind, Sensors};
use vigil_engine::filter::{FilterSets, KernelFilter, TypeFilter};
use vigil_engine::EventType;

/// id -> (name, run_time_ns, run_cnt) of every loaded program, from bpftool.
fn snapshot() -> BTreeMap<u32, (String, u64, u64)> {
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

/// The loop's cost on this process's programs (`ours`: ids loaded by it;
/// other vigil instances on the machine have the same program names).
fn measure(label: &str, opens: u32, ours: &[u32]) {
    let before = snapshot();
    std::fs::write("/proc/sys/kernel/bpf_stats_enabled", "1").expect("bpf_stats");
    let st = Command::new("bash")
        .args([
            "-c",
            &format!("for ((i = 0; i < {opens}; i++)); do : < /etc/hostname; done"),
        ])
        .status()
        .expect("bash");
    std::fs::write("/proc/sys/kernel/bpf_stats_enabled", "0").expect("bpf_stats");
    assert!(st.success());
    println!("{label}:");
    let after = snapshot();
    for id in ours {
        let (Some((name, rt0, rc0)), Some((_, rt, rc))) = (before.get(id), after.get(id)) else {
            continue;
        };
        let (d, t) = (rc.saturating_sub(*rc0), rt.saturating_sub(*rt0));
        if let Some(avg) = t.checked_div(d) {
            println!("  {name:<28} runs {d:>8}  avg {avg:>5} ns/run");
        }
    }
}

fn main() {
    let opens: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let others = snapshot();
    let mut s = Sensors::load().expect("loading the sensors (root?)");
    let ours: Vec<u32> = snapshot()
        .into_iter()
        .filter(|(id, (name, _, _))| !others.contains_key(id) && name.starts_with("vigil_"))
        .map(|(id, _)| id)
        .collect();
    // Scoped like a typical rule set: opens match a comm the loop does not have.
    let mut f = KernelFilter {
        types: std::array::from_fn(|_| TypeFilter::Drop),
    };
    f.types[EventType::Open.index()] = TypeFilter::Match(FilterSets {
        comms: ["nginx".to_string()].into(),
        ..Default::default()
    });
    s.set_filter(&f).expect("filter");
    for round in 0..2 {
        measure(
            &format!("round {round}: no on-demand kind attached"),
            opens,
            &ours,
        );
        s.set_ops(&OpKind::ALL).expect("attach");
        measure(
            &format!("round {round}: all 14 on-demand kinds attached"),
            opens,
            &ours,
        );
        s.set_ops(&[]).expect("detach");
    }
}
