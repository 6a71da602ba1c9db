//! Criterion benches for the rule engine (no kernel): evaluation throughput
//! of the default rules (`rules/`), of Falco's stable rule file alone (`falco-stable`) and of Falco's
//! three rule files together (`falco3`) (read from
//! `<repo>/../shared/falco/` or `$VIGIL_FALCO_RULES`, never copied in; the
//! row is skipped with a message when they are absent) and of 10 / 100 /
//! 1,000 / 10,000 generated rules on a mixed event stream where about 1
//! event in 100 matches; the cost of an event that meets no candidate rule;
//! and rule-set compile time for the same sets. Before criterion runs, a
//! short fixed-time pass prints how the cost per event grows with the number
//! of rules (`scaling` table: ns/event and its ratio to the 10-rule set's
//! cost in the same run), with the evaluator's own count of conditions
//! evaluated per event.
//!
//! Run: `cargo bench -p vigil-engine --bench rule_eval` (add `-- --quick`
//! for a short run). Events are built in memory, so the numbers are the
//! evaluator's alone: ring-buffer decoding and the process table are not in
//! them (see `benches/overhead.sh` for the whole live path).
//! `VIGIL_BENCH_SETS=falco3,gen10` keeps only the named sets (to profile one).
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

/// Sizes of the generated rule sets.
const SIZES: [usize; 4] = [10, 100, 1000, 10_000];
/// Length of the mixed event stream (one criterion iteration evaluates all of it).
const STREAM_LEN: usize = 1000;

// ---------------------------------------------------------------------------
// Rule sets

/// `n` generated rules in the shapes real rule sets use, rotating through:
/// exec scoped by `proc.name`, exec scoped by `proc.pname in [..]`, open by
/// path prefix with a list exception, connect by port, open with an anchored
/// `regex()` on the path, exec scoped by name with an ancestor test. Half
/// have process terms, half path or port terms.
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

/// Falco's three upstream rule files as `(name, yaml)` sources: from
/// `$VIGIL_FALCO_RULES`, else `<repo>/../shared/falco/` (a checkout at
/// /work/X) or `<repo>/../../shared/falco/` (a worktree at /work/wt/X).
/// An error naming the directories tried when a file is missing.
fn falco_rule_sources() -> Result<Vec<(String, String)>, String> {
    const FILES: [&str; 3] = [
        "falco_rules.yaml",
        "falco-incubating_rules.yaml",
        "falco-sandbox_rules.yaml",
    ];
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dirs: Vec<PathBuf> = std::env::var_os("VIGIL_FALCO_RULES")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            repo.join("../shared/falco"),
            repo.join("../../shared/falco"),
        ])
        .collect();
    let Some(dir) = dirs
        .iter()
        .find(|d| FILES.iter().all(|f| d.join(f).exists()))
    else {
        return Err(format!(
            "Falco's rule files not found in {}",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(" or ")
        ));
    };
    FILES
        .iter()
        .map(|f| {
            let p = dir.join(f);
            std::fs::read_to_string(&p)
                .map(|t| (p.display().to_string(), t))
                .map_err(|e| format!("{}: {e}", p.display()))
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
    // Falco's rules, unchanged (their active ones), on the same stream: the
    // stable file alone and the three files together.
    match falco_rule_sources() {
        Err(why) => eprintln!("rule_eval: {why}; Falco rows skipped"),
        Ok(sources) => {
            for (name, sources) in [("falco-stable", sources[..1].to_vec()), ("falco3", sources)] {
                match RuleSet::from_sources(&sources) {
                    Ok(rs) => {
                        let (idle_event, idle_note) = idle_event_for(&rs);
                        out.push(Set {
                            name: name.into(),
                            sources,
                            rules: Arc::new(rs),
                            idle_event,
                            idle_note,
                        });
                    }
                    Err(e) => eprintln!("rule_eval: {name} failed to load, skipped:\n{e}"),
                }
            }
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

/// Fixed-time pass printing ns/event (the fastest pass over the stream),
/// its ratio to the 10-rule set's, events/s and conditions evaluated per
/// event for each set, so the growth with rule count is visible in one table.
fn scaling_report(sets: &[Set], stream: &[Event], variant: &str) {
    println!(
        "\nrule_eval scaling (mixed stream of {} events, single thread{variant}):",
        stream.len()
    );
    println!(
        "{:<12} {:>6} {:>10} {:>8} {:>12} {:>12} {:>14} {:>10}",
        "set",
        "rules",
        "ns/event",
        "x gen10",
        "events/s",
        "conds/event",
        "alerts/1000ev",
        "idle ns"
    );
    // Per-event cost of the 10-rule set, the base of the ratio column.
    let mut base: Option<f64> = None;
    let mut order: Vec<&Set> = sets.iter().filter(|s| s.name == "gen10").collect();
    order.extend(sets.iter().filter(|s| s.name != "gen10"));
    for s in order {
        let mut ev = Evaluator::new(s.rules.clone(), "bench-host");
        let mut out = Vec::new();
        let alerts = eval_stream(&mut ev, stream, &mut out); // warm-up + match count
                                                             // The fastest pass over the stream within 400 ms: other load on a
                                                             // shared machine only ever adds time, and a pass (0.1-3 ms) mostly
                                                             // fits between preemptions.
        let start = Instant::now();
        let mut best = Duration::MAX;
        while start.elapsed() < Duration::from_millis(400) {
            let t = Instant::now();
            eval_stream(&mut ev, stream, &mut out);
            best = best.min(t.elapsed());
        }
        let ns = best.as_nanos() as f64 / stream.len() as f64;
        let st = ev.stats();
        let conds = st.rules_evaluated as f64 / st.events.max(1) as f64;
        let idle_start = Instant::now();
        let mut idle_best = Duration::MAX;
        while idle_start.elapsed() < Duration::from_millis(100) {
            let t = Instant::now();
            for _ in 0..1000 {
                ev.evaluate(black_box(&s.idle_event), &mut out);
                out.clear();
            }
            idle_best = idle_best.min(t.elapsed());
        }
        let idle_ns = idle_best.as_nanos() as f64 / 1000.0;
        let errors: u64 = st.errors.values().sum();
        let base = *base.get_or_insert(ns);
        println!(
            "{:<12} {:>6} {:>10.0} {:>7.2}x {:>12.0} {:>12.3} {:>14} {:>10.1}{}",
            s.name,
            s.rules.rules().filter(|r| r.enabled).count(),
            ns,
            ns / base,
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
    if variant.is_empty() {
        for s in sets {
            println!("  idle event for {}: {}", s.name, s.idle_note);
        }
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
    let mut sets = sets();
    // VIGIL_BENCH_SETS=falco3,gen1000 keeps only those sets (e.g. to profile one).
    if let Ok(keep) = std::env::var("VIGIL_BENCH_SETS") {
        sets.retain(|s| keep.split(',').any(|k| k == s.name));
    }
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
        scaling_report(&sets, &stream, "");
        // The same sets with the candidate index and the shared
        // sub-conditions off: every enabled rule evaluates every event of
        // its kinds, each on its own tree (what the index saves).
        let plain: Vec<Set> = sets
            .iter()
            .filter_map(|s| {
                let mut rs = RuleSet::from_sources(&s.sources).ok()?;
                rs.set_indexed(false);
                Some(Set {
                    name: s.name.clone(),
                    sources: Vec::new(),
                    rules: Arc::new(rs),
                    idle_event: s.idle_event.clone(),
                    idle_note: s.idle_note,
                })
            })
            .collect();
        scaling_report(&plain, &stream, ", index and shared sub-conditions off");
    }
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c, &sets, &stream);
    c.final_summary();
}
