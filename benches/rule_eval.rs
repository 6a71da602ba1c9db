//! Criterion benches for the rule engine (no kernel): evaluation throughput
//! of the default rules (`rules/`), of Falco's stable rule file unchanged
//! (`falco-stable`, read from `<repo>/../shared/falco/`, skipped when absent)
//! and of 10 / 100 / 1,000 generated rules on
//! a mixed event stream where about 1 event in 100 matches; the cost of an
//! event that meets no candidate rule; and rule-set compile time for the same
//! sets. Before criterion runs, a short fixed-time pass prints how the cost
//! per event grows with the number of rules (`scaling` table), with the
//! evaluator's own count of conditions evaluated per event.
//!
//! Run: `cargo bench -p vigil-engine --bench rule_eval` (add `-- --quick`
//! for a short run). Events are built in memory, so the numbers are the
//! evaluator's alone: ring-buffer decoding and the process table are not in
//! them (see `benches/overhead.sh` for the whole live path).
//! `VIGIL_BENCH_DUMP_STREAM=FILE` also writes the event stream as JSONL, so
//! `vigil replay` can be profiled on the same events.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use vigil_engine::{
    Alert, Detail, Evaluator, Event, EventType, FileInfo, NetInfo, Process, RuleSet,
};

#[path = "../engine/tests/common/falco.rs"]
mod falco;

/// Sizes of the generated rule sets.
const SIZES: [usize; 3] = [10, 100, 1000];
/// Length of the mixed event stream (one criterion iteration evaluates all of it).
const STREAM_LEN: usize = 1000;

// ---------------------------------------------------------------------------
// Rule sets

/// `n` generated rules in the shapes real rule sets use, rotating through:
/// exec scoped by `proc.name` (indexable), exec scoped by `proc.pname in [..]`
/// (indexable), open by path prefix with a list exception (not indexable: every
/// open meets it), connect by port (not indexable), open with a regex helper
/// (Rhai path), exec scoped by name with an ancestor test (indexable).
/// So execs are indexed while opens and connects meet every rule of their type.
fn generated_rules(n: usize) -> String {
    let mut y = String::from(
        "- list: gen_allowed\n  items: [gen_allowed_a, gen_allowed_b, gen_allowed_c]\n\n",
    );
    for i in 0..n {
        let (events, cond) = match i % 6 {
            0 => (
                "exec",
                format!("proc.name == \"genbin{i}\" && proc.cmdline.contains(\"--gen{i}\")"),
            ),
            1 => (
                "exec",
                format!(
                    "proc.pname in [\"genpar{i}a\", \"genpar{i}b\"] && proc.name in [\"sh\", \"bash\", \"dash\"] && proc.uid != 4242"
                ),
            ),
            2 => (
                "open",
                format!(
                    "file.path.starts_with(\"/opt/gen{i}/\") && !(proc.name in gen_allowed)"
                ),
            ),
            3 => (
                "connect",
                format!("net.dport == {} && proc.name != \"gen_allowed_a\"", 20000 + i),
            ),
            4 => (
                "open",
                format!("regex(file.path, \"^/srv/gen{i}/[a-z]+\\\\.key$\") && file.write"),
            ),
            _ => (
                "exec",
                format!(
                    "proc.name in [\"genc{i}\", \"gend{i}\"] && \"genanc{i}\" in proc.ancestors"
                ),
            ),
        };
        y.push_str(&format!(
            "- rule: generated rule {i}\n  desc: generated benchmark rule {i}\n  events: [{events}]\n  condition: '{cond}'\n  output: \"gen {i} {{proc.name}} {{proc.pid}}\"\n  priority: notice\n  tags: [bench]\n\n"
        ));
    }
    y
}

/// The shipped default rules as `(name, yaml)` sources, in name order
/// (`rules/` at the workspace root). Empty if there are none yet.
fn default_rule_sources() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|x| x == "yaml" || x == "yml")
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
        .into_iter()
        .filter_map(|p| {
            let text = std::fs::read_to_string(&p).ok()?;
            Some((p.display().to_string(), text))
        })
        .collect()
}

/// A named rule set to benchmark, with its sources (for compile time).
struct Set {
    name: String,
    sources: Vec<(String, String)>,
    rules: Arc<RuleSet>,
    /// An event that meets no candidate rule in this set, and how it was chosen.
    idle_event: Event,
    idle_note: &'static str,
}

fn sets() -> Vec<Set> {
    let mut out = Vec::new();
    let defaults = default_rule_sources();
    if defaults.is_empty() {
        eprintln!("rule_eval: no rules/*.yaml found; default-rule benches skipped");
    } else {
        match RuleSet::from_sources(&defaults) {
            Ok(rs) => {
                let (idle_event, idle_note) = idle_event_for(&rs);
                out.push(Set {
                    name: "default".into(),
                    sources: defaults,
                    rules: Arc::new(rs),
                    idle_event,
                    idle_note,
                });
            }
            Err(e) => eprintln!("rule_eval: default rules failed to load, skipped:\n{e}"),
        }
    }
    // Falco's stable rules, unchanged (their active ones), on the same stream.
    let stable = falco::falco_file("falco_rules.yaml")
        .and_then(|p| Some((p.display().to_string(), std::fs::read_to_string(&p).ok()?)));
    if let Some(src) = stable {
        match RuleSet::from_sources(std::slice::from_ref(&src)) {
            Ok(rs) => {
                let (idle_event, idle_note) = idle_event_for(&rs);
                out.push(Set {
                    name: "falco-stable".into(),
                    sources: vec![src],
                    rules: Arc::new(rs),
                    idle_event,
                    idle_note,
                });
            }
            Err(e) => eprintln!("rule_eval: Falco's stable rules failed to load, skipped:\n{e}"),
        }
    }
    for n in SIZES {
        let sources = vec![(format!("generated-{n}.yaml"), generated_rules(n))];
        let rs = RuleSet::from_sources(&sources)
            .unwrap_or_else(|e| panic!("generated rule set of {n} failed to load:\n{e}"));
        out.push(Set {
            name: format!("gen{n}"),
            sources,
            rules: Arc::new(rs),
            // Every generated exec rule is scoped by proc.name / proc.pname or
            // needs an ancestor no stream process has; this exec's comm and
            // parent are in no index.
            idle_event: exec_event("unrelated", "unrelated-parent", "/usr/bin/unrelated", 1),
            idle_note: "exec, comm and parent in no rule's index",
        });
    }
    out
}

/// For the default (and Falco) rules: an event of a type no enabled rule handles if there
/// is one (the evaluator's cheapest path), else an exec of an unknown comm.
fn idle_event_for(rs: &RuleSet) -> (Event, &'static str) {
    let used: Vec<EventType> = rs
        .rules()
        .filter(|r| r.enabled)
        .flat_map(|r| r.events)
        .collect();
    for (t, note) in [
        (EventType::Exit, "exit, a type no rule of the set handles"),
        (
            EventType::Accept,
            "accept, a type no rule of the set handles",
        ),
    ] {
        if !used.contains(&t) {
            let mut ev = Event::new(t);
            ev.proc = proc_of("unrelated", "unrelated-parent", "/usr/bin/unrelated", 7);
            return (ev, note);
        }
    }
    (
        exec_event("unrelated", "unrelated-parent", "/usr/bin/unrelated", 1),
        "exec of an unknown comm (every type has rules)",
    )
}

// ---------------------------------------------------------------------------
// Events

fn proc_of(name: &str, pname: &str, exe: &str, seed: usize) -> Arc<Process> {
    let cmdline = format!("{name} --opt value{seed}");
    Arc::new(Process {
        pid: 1000 + seed as i64,
        ppid: 900 + (seed % 7) as i64,
        name: name.into(),
        exe: exe.into(),
        args: vec!["--opt".into(), format!("value{seed}")],
        cmdline,
        cwd: "/home/alice".into(),
        start: 1_764_000_000_000_000_000,
        uid: if seed.is_multiple_of(3) { 0 } else { 1000 },
        gid: 1000,
        loginuid: 1000,
        user_name: if seed.is_multiple_of(3) {
            "root"
        } else {
            "alice"
        }
        .into(),
        pname: pname.into(),
        pexe: format!("/usr/bin/{pname}"),
        pcmdline: pname.into(),
        ancestors: vec![pname.into(), "systemd".into()],
        cgroup: "/user.slice/user-1000.slice/session-3.scope".into(),
        unit: "session-3.scope".into(),
        container_id: String::new(),
        tty: seed.is_multiple_of(2),
        incomplete: false,
        ..Default::default()
    })
}

fn exec_event(name: &str, pname: &str, exe: &str, seed: usize) -> Event {
    let mut ev = Event::new(EventType::Exec);
    ev.time = 1_764_000_010_000_000_000 + seed as i64;
    ev.proc = proc_of(name, pname, exe, seed);
    ev
}

fn open_event(name: &str, pname: &str, path: &str, flags: u32, seed: usize) -> Event {
    let mut ev = Event::new(EventType::Open);
    ev.time = 1_764_000_010_000_000_000 + seed as i64;
    ev.ret = 3;
    ev.proc = proc_of(name, pname, &format!("/usr/bin/{name}"), seed);
    ev.detail = Detail::File(FileInfo {
        path: path.into(),
        path_raw: path.into(),
        flags,
        ..Default::default()
    });
    ev
}

fn connect_event(name: &str, pname: &str, daddr: &str, dport: i64, seed: usize) -> Event {
    let mut ev = Event::new(EventType::Connect);
    ev.time = 1_764_000_010_000_000_000 + seed as i64;
    ev.proc = proc_of(name, pname, &format!("/usr/bin/{name}"), seed);
    ev.detail = Detail::Net(NetInfo {
        proto: "tcp".into(),
        family: "inet".into(),
        saddr: "10.0.0.5".into(),
        sport: 40000 + (seed % 20000) as i64,
        daddr: daddr.into(),
        dport,
    });
    ev
}

/// A deterministic mixed stream of `STREAM_LEN` events resembling a busy
/// host: mostly opens of libraries and config files, execs of shell tools,
/// connects to 443/53, exits and accepts. About 1 in 100 is an attack-like
/// event that the default rules or a generated rule match.
fn mixed_stream() -> Vec<Event> {
    const OPENS: [(&str, &str, &str, u32); 8] = [
        ("bash", "sshd", "/etc/ld.so.cache", 0o2000000),
        (
            "python3",
            "bash",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            0o2000000,
        ),
        ("nginx", "nginx", "/var/www/html/index.html", 0),
        ("nginx", "nginx", "/var/log/nginx/access.log", 0o2101),
        ("cron", "systemd", "/etc/crontab", 0),
        ("java", "systemd", "/opt/app/lib/app.jar", 0),
        ("sshd", "sshd", "/proc/self/stat", 0),
        ("node", "systemd", "/srv/app/node_modules/x/index.js", 0),
    ];
    const EXECS: [(&str, &str, &str); 6] = [
        ("ls", "bash", "/usr/bin/ls"),
        ("cat", "bash", "/usr/bin/cat"),
        ("grep", "bash", "/usr/bin/grep"),
        ("sh", "cron", "/usr/bin/dash"),
        ("git", "bash", "/usr/bin/git"),
        ("systemctl", "bash", "/usr/bin/systemctl"),
    ];
    let mut v = Vec::with_capacity(STREAM_LEN);
    for i in 0..STREAM_LEN {
        if i % 100 == 50 {
            // the few matching events, rotating through attack shapes
            v.push(match (i / 100) % 5 {
                0 => open_event("cat", "bash", "/etc/shadow", 0, i),
                1 => exec_event("sh", "nginx", "/usr/bin/dash", i),
                2 => connect_event("bash", "nc", "203.0.113.9", 4444, i),
                3 => exec_event("genbin0", "bash", "/usr/bin/genbin0", i)
                    .with_cmdline("genbin0 --gen0"),
                _ => open_event("vi", "bash", "/opt/gen2/secret", 0o1, i),
            });
            continue;
        }
        let ev = match i % 20 {
            0..=7 => {
                let (n, p, path, f) = OPENS[i % OPENS.len()];
                open_event(n, p, path, f, i)
            }
            8..=13 => {
                let (n, p, exe) = EXECS[i % EXECS.len()];
                exec_event(n, p, exe, i)
            }
            14..=16 => {
                if i % 2 == 0 {
                    connect_event("curl", "bash", "93.184.215.14", 443, i)
                } else {
                    connect_event("systemd-resolve", "systemd", "127.0.0.53", 53, i)
                }
            }
            17 | 18 => {
                let mut ev = Event::new(EventType::Exit);
                ev.proc = proc_of("ls", "bash", "/usr/bin/ls", i);
                ev
            }
            _ => {
                let mut ev = connect_event("nginx", "nginx", "10.0.0.5", 443, i);
                ev.kind = EventType::Accept;
                ev
            }
        };
        v.push(ev);
    }
    v
}

trait WithCmdline {
    fn with_cmdline(self, c: &str) -> Self;
}
impl WithCmdline for Event {
    fn with_cmdline(mut self, c: &str) -> Event {
        let mut p = (*self.proc).clone();
        p.cmdline = c.into();
        self.proc = Arc::new(p);
        self
    }
}

// ---------------------------------------------------------------------------
// Benches

fn eval_stream(ev: &mut Evaluator, stream: &[Event], out: &mut Vec<Alert>) -> usize {
    let mut alerts = 0;
    for e in stream {
        ev.evaluate(black_box(e), out);
        alerts += out.len();
        out.clear();
    }
    alerts
}

/// Fixed-time pass printing ns/event, events/s and conditions evaluated per
/// event for each set, so the growth with rule count is visible in one table.
fn scaling_report(sets: &[Set], stream: &[Event]) {
    println!(
        "\nrule_eval scaling (mixed stream of {} events, single thread):",
        stream.len()
    );
    println!(
        "{:<12} {:>6} {:>12} {:>14} {:>16} {:>14} {:>12}",
        "set", "rules", "ns/event", "events/s", "conds/event", "alerts/1000ev", "idle ns"
    );
    for s in sets {
        let mut ev = Evaluator::new(s.rules.clone(), "bench-host");
        let mut out = Vec::new();
        let alerts = eval_stream(&mut ev, stream, &mut out); // warm-up + match count
        let start = Instant::now();
        let mut n = 0usize;
        while start.elapsed() < Duration::from_millis(400) {
            eval_stream(&mut ev, stream, &mut out);
            n += stream.len();
        }
        let ns = start.elapsed().as_nanos() as f64 / n as f64;
        let st = ev.stats();
        let conds = st.rules_evaluated as f64 / st.events.max(1) as f64;
        let idle_start = Instant::now();
        let mut m = 0usize;
        while idle_start.elapsed() < Duration::from_millis(100) {
            for _ in 0..1000 {
                ev.evaluate(black_box(&s.idle_event), &mut out);
                out.clear();
            }
            m += 1000;
        }
        let idle_ns = idle_start.elapsed().as_nanos() as f64 / m as f64;
        let errors: u64 = st.errors.values().sum();
        println!(
            "{:<12} {:>6} {:>12.0} {:>14.0} {:>16.2} {:>14} {:>12.1}{}",
            s.name,
            s.rules.rules().filter(|r| r.enabled).count(),
            ns,
            1e9 / ns,
            conds,
            alerts * 1000 / stream.len(),
            idle_ns,
            if errors > 0 {
                format!("  ({errors} eval errors)")
            } else {
                String::new()
            }
        );
    }
    for s in sets {
        println!("  idle event for {}: {}", s.name, s.idle_note);
    }
    println!();
}

fn benches(c: &mut Criterion, sets: &[Set], stream: &[Event]) {
    let mut g = c.benchmark_group("eval_stream");
    g.throughput(Throughput::Elements(stream.len() as u64));
    for s in sets {
        g.bench_function(BenchmarkId::from_parameter(&s.name), |b| {
            let mut ev = Evaluator::new(s.rules.clone(), "bench-host");
            let mut out = Vec::with_capacity(16);
            b.iter(|| eval_stream(&mut ev, stream, &mut out));
        });
    }
    g.finish();

    let mut g = c.benchmark_group("eval_no_candidate");
    g.throughput(Throughput::Elements(1));
    for s in sets {
        g.bench_function(BenchmarkId::from_parameter(&s.name), |b| {
            let mut ev = Evaluator::new(s.rules.clone(), "bench-host");
            let mut out = Vec::with_capacity(16);
            b.iter(|| {
                ev.evaluate(black_box(&s.idle_event), &mut out);
                out.clear();
            });
        });
    }
    g.finish();

    let mut g = c.benchmark_group("compile");
    g.sample_size(10);
    for s in sets {
        g.bench_function(BenchmarkId::from_parameter(&s.name), |b| {
            b.iter(|| RuleSet::from_sources(black_box(&s.sources)).map(|r| r.hash().len()))
        });
    }
    g.finish();
}

fn main() {
    let sets = sets();
    let stream = mixed_stream();
    // VIGIL_BENCH_DUMP_STREAM=FILE writes the mixed stream as flat-JSON lines
    // (what `vigil replay` reads), for profiling a replay run of the same events.
    if let Some(path) = std::env::var_os("VIGIL_BENCH_DUMP_STREAM") {
        let mut text = String::new();
        for e in &stream {
            text.push_str(&serde_json::Value::Object(e.to_flat_json()).to_string());
            text.push('\n');
        }
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("rule_eval: cannot write {}: {e}", path.to_string_lossy());
        }
    }
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench` passes --bench; `cargo test --benches` does not (one quick pass).
    let bench_mode = args.iter().any(|a| a == "--bench");
    let listing = args.iter().any(|a| a == "--list");
    if bench_mode && !listing {
        scaling_report(&sets, &stream);
    }
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c, &sets, &stream);
    c.final_summary();
}
