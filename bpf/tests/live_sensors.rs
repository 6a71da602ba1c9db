//! Live tests of the sensors through the crate API: load + attach, filter
//! maps, counters, decoded records for real processes. Need root and BPF;
//! skipped with a message otherwise unless VIGIL_REQUIRE_LIVE=1.
//!
//! Why one file past ~800 lines: every case loads the real sensors as root
//! and shares the loader, filter builders and record waits at the top; one
//! file keeps one test binary (one BPF load path, one skip-or-fail rule).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use vigil_bpf::{Identity, OpKind, RawBody, RawEvent, RawKind, Reader, Sensors};
use vigil_engine::filter::{FilterSets, KernelFilter, TypeFilter};
use vigil_engine::EventType;

#[path = "../../tests/common/evasion.rs"]
mod evasion;

/// The sensors, or None (skip) when this kernel cannot run them and live
/// tests are not required; a load failure on a capable kernel fails.
fn sensors_or_skip() -> Option<Sensors> {
    match Sensors::load() {
        Ok(s) => Some(s),
        Err(e) => {
            vigil_testkit::sensor_load_failed(&e, e.kernel_lacks_capability());
            None
        }
    }
}

/// netcat's real path (its copies get a comm of their own), or None (skip;
/// a failure when live tests are required).
fn netcat() -> Option<PathBuf> {
    let nc = vigil_testkit::tool("nc", "netcat-openbsd")?;
    Some(std::fs::canonicalize(nc).expect("canonicalize nc"))
}

fn match_comms(types: &[EventType], comms: &[&str]) -> KernelFilter {
    let mut f = KernelFilter {
        types: std::array::from_fn(|_| TypeFilter::Drop),
    };
    let sets = FilterSets {
        comms: comms.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    for t in types {
        f.types[t.index()] = TypeFilter::Match(sets.clone());
    }
    f
}

/// A copy of `bin` named `name` in a fresh temp dir (so its comm is `name`).
fn copy_named(bin: &str, name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(name);
    // `cp` in a child process: the write fd never lives in this multi-threaded
    // test process, where a sibling test's fork could inherit it (ETXTBSY).
    let st = std::process::Command::new("cp")
        .arg(bin)
        .arg(&p)
        .status()
        .unwrap();
    assert!(st.success(), "cp {bin} {}", p.display());
    (dir, p)
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", std::process::id() % 100_000)
}

/// Collect events until `pred` matches one or the deadline passes.
async fn wait_for(
    rx: &mut mpsc::Receiver<RawEvent>,
    secs: u64,
    mut pred: impl FnMut(&RawEvent) -> bool,
) -> Option<RawEvent> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(ev)) if pred(&ev) => return Some(ev),
            Ok(Some(_)) => continue,
            _ => return None,
        }
    }
}

/// A fresh child cgroup in the cgroup v2 hierarchy (wherever it is mounted),
/// removed on drop; None where there is no cgroup2 mount or it is read-only.
struct TestCgroup(std::path::PathBuf);

impl TestCgroup {
    fn create(name: &str) -> Option<TestCgroup> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        let mount = info.lines().find_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            post.starts_with("cgroup2 ")
                .then(|| pre.split(' ').nth(4).map(str::to_string))?
        })?;
        let dir = std::path::Path::new(&mount).join(name);
        std::fs::create_dir(&dir).ok()?;
        Some(TestCgroup(dir))
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_event_names_parent_and_argv() {
    let Some(mut s) = sensors_or_skip() else {
        return;
    };
    let name = unique("vgx");
    let (_d, bash) = copy_named("/bin/bash", &name);
    s.set_filter(&match_comms(&[EventType::Exec], &["true"]))
        .unwrap();
    let (tx, mut rx) = mpsc::channel(65536);
    let reader = Reader::spawn(&s, tx).unwrap();
    // The bash copy moves itself into a cgroup of its own first, so the
    // records' cgroup id can be checked against that directory's inode.
    let cg = TestCgroup::create(&name);
    let script = match &cg {
        Some(cg) => format!(
            "echo $$ > {}/cgroup.procs; /bin/true one two; exit 3",
            cg.0.display()
        ),
        None => "/bin/true one two; exit 3".to_string(),
    };
    let st = Command::new(&bash).args(["-c", &script]).status().unwrap();
    assert_eq!(st.code(), Some(3));
    let mut bash_pid = 0;
    let ev = wait_for(&mut rx, 5, |e| {
        if e.kind == RawKind::Exec && e.comm == name {
            bash_pid = e.tgid;
        }
        e.kind == RawKind::Exec && e.comm == "true" && e.ppid == bash_pid && bash_pid != 0
    })
    .await
    .expect("exec of /bin/true by the renamed bash");
    assert!(ev.passed, "comm `true` is in the filter");
    // The header's cgroup id is the inode of the task's cgroup v2 directory.
    match &cg {
        Some(cg) => {
            use std::os::unix::fs::MetadataExt;
            let ino = std::fs::metadata(&cg.0).unwrap().ino();
            assert_eq!(ev.cgroup_id, ino, "cgroup id of {}", cg.0.display());
        }
        None => eprintln!("note: no writable cgroup2 hierarchy; cgroup id not checked"),
    }
    match &ev.body {
        RawBody::Exec { filename, argv, .. } => {
            assert_eq!(filename, "/bin/true");
            assert_eq!(argv, &["/bin/true", "one", "two"]);
        }
        other => panic!("not an exec body: {other:?}"),
    }
    let exit = wait_for(&mut rx, 5, |e| {
        e.kind == RawKind::Exit && e.tgid == bash_pid
    })
    .await
    .expect("exit of the bash copy");
    assert_eq!(exit.body, RawBody::Exit { code: 3, signal: 0 });
    assert!(!exit.passed, "exit is not in the filter: lifecycle only");
    reader.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_open_reaches_userspace_and_excluded_does_not() {
    let Some(mut s) = sensors_or_skip() else {
        return;
    };
    let yes = unique("vgo");
    let no = unique("vgn");
    let (_d1, cat_yes) = copy_named("/bin/cat", &yes);
    let (_d2, cat_no) = copy_named("/bin/cat", &no);
    s.set_filter(&match_comms(&[EventType::Open], &[&yes]))
        .unwrap();
    let (tx, mut rx) = mpsc::channel(65536);
    let reader = Reader::spawn(&s, tx).unwrap();
    let before = s.counters().unwrap().get(RawKind::Open);
    let marker = format!("/etc/../etc/hostname-{}", yes);
    for _ in 0..3 {
        let _ = Command::new(&cat_no).arg(&marker).output().unwrap();
    }
    let _ = Command::new(&cat_yes).arg(&marker).output().unwrap();
    let ev = wait_for(
        &mut rx,
        5,
        |e| matches!(&e.body, RawBody::Open { path, .. } if *path == marker),
    )
    .await
    .expect("open by the filtered-in comm");
    assert_eq!(ev.comm, yes);
    match &ev.body {
        RawBody::Open { ret, dirfd, .. } => {
            assert_eq!(*ret, -2, "ENOENT");
            assert_eq!(*dirfd, -100, "AT_FDCWD");
        }
        _ => unreachable!(),
    }
    // Nothing of type open from the excluded comm reached userspace (its
    // exec/exit lifecycle records may).
    let mut leaked = Vec::new();
    while let Ok(e) = rx.try_recv() {
        if e.kind == RawKind::Open && e.comm == no {
            leaked.push(e);
        }
    }
    assert!(leaked.is_empty(), "excluded opens leaked: {leaked:?}");
    let after = s.counters().unwrap().get(RawKind::Open);
    assert!(after.seen >= before.seen + 4, "kernel saw the opens");
    assert!(after.seen - before.seen > after.passed - before.passed);
    reader.stop().await;
}

/// A filter on path prefixes only: opens of a non-matching absolute path are
/// seen but rejected in the kernel (no record), opens below a prefix, of a
/// relative path, of an unnormalised path and ending in a suffix pass, and a write-only prefix
/// passes writes but not reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_prefix_filter_in_the_kernel() {
    let Some(mut s) = sensors_or_skip() else {
        return;
    };
    let id = unique("vgp");
    let (_d1, cat) = copy_named("/bin/cat", &id);
    let (_d2, bash) = copy_named("/bin/bash", &format!("{id}w"));
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap().to_string();
    let yes = format!("{root}/yes/");
    let wr = format!("{root}/wr/");
    std::fs::create_dir_all(&wr).unwrap();
    let mut f = KernelFilter {
        types: std::array::from_fn(|_| TypeFilter::Drop),
    };
    f.types[EventType::Open.index()] = TypeFilter::Match(FilterSets {
        path_prefixes: [yes.clone()].into(),
        write_prefixes: [wr.clone()].into(),
        path_suffixes: [format!(".{id}s")].into(),
        unclean_paths: true,
        ..Default::default()
    });
    s.set_filter(&f).unwrap();
    assert_eq!(s.live_paths().get(yes.as_bytes()), Some(&1));
    let (tx, mut rx) = mpsc::channel(65536);
    let reader = Reader::spawn(&s, tx).unwrap();
    let before = s.counters().unwrap().get(RawKind::Open);
    let no = format!("{root}/no/x");
    let n = 50;
    for _ in 0..n {
        let _ = Command::new(&cat).arg(&no).output().unwrap();
    }
    let read_wr = format!("{wr}r");
    let _ = Command::new(&cat).arg(&read_wr).output().unwrap();
    let after = s.counters().unwrap().get(RawKind::Open);
    assert!(after.seen >= before.seen + n, "kernel saw the opens");
    assert!(
        (after.seen - after.passed) - (before.seen - before.passed) >= n,
        "the non-matching opens were rejected: {before:?} -> {after:?}"
    );
    let inside = format!("{yes}a");
    let dirty = format!("{root}/no/../yes-not/b");
    let written = format!("{wr}w");
    let suffixed = format!("{root}/no/deeper/than/one/word/z.{id}s");
    let _ = Command::new(&cat).arg(&inside).output().unwrap();
    let _ = Command::new(&cat)
        .arg("rel-vgp")
        .current_dir(&root)
        .output()
        .unwrap();
    let _ = Command::new(&cat).arg(&dirty).output().unwrap();
    let _ = Command::new(&bash)
        .args(["-c", &format!(": > {written}")])
        .output()
        .unwrap();
    let _ = Command::new(&cat).arg(&suffixed).output().unwrap();
    let mut want: Vec<String> = vec![inside, "rel-vgp".into(), dirty, written, suffixed];
    let mut leaked = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !want.is_empty() && Instant::now() < deadline {
        let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await else {
            continue;
        };
        if let RawBody::Open { path, .. } = &e.body {
            if *path == no || *path == read_wr {
                leaked.push(path.clone());
            }
            want.retain(|w| w != path);
        }
    }
    assert!(want.is_empty(), "opens that should have passed: {want:?}");
    while let Ok(e) = rx.try_recv() {
        if let RawBody::Open { path, .. } = &e.body {
            if *path == no || *path == read_wr {
                leaked.push(path.clone());
            }
        }
    }
    assert!(
        leaked.is_empty(),
        "rejected opens reached userspace: {leaked:?}"
    );
    // A reload flips to the other generation: the new prefix passes, the
    // old one no longer does.
    let yes2 = format!("{root}/yes2/");
    f.types[EventType::Open.index()] = TypeFilter::Match(FilterSets {
        path_prefixes: [yes2.clone()].into(),
        ..Default::default()
    });
    s.set_filter(&f).unwrap();
    let live = s.live_paths();
    assert_eq!(live.len(), 1, "{live:?}");
    assert!(live.contains_key(yes2.as_bytes()));
    let old = format!("{yes}again");
    let new = format!("{yes2}b");
    let _ = Command::new(&cat).arg(&old).output().unwrap();
    let _ = Command::new(&cat).arg(&new).output().unwrap();
    let mut saw_old = false;
    let ev = wait_for(&mut rx, 5, |e| match &e.body {
        RawBody::Open { path, .. } => {
            saw_old |= *path == old;
            *path == new
        }
        _ => false,
    })
    .await;
    assert!(ev.is_some(), "open below the reloaded prefix");
    while let Ok(e) = rx.try_recv() {
        if matches!(&e.body, RawBody::Open { path, .. } if *path == old) {
            saw_old = true;
        }
    }
    assert!(!saw_old, "the old generation's prefix still passed");
    reader.stop().await;
}

/// The test process is "vigil" for these sensors (its own tgid is always
/// dropped), so both ends run in child processes: a copy of netcat listens,
/// a copy of bash connects through /dev/tcp.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_and_accept_on_loopback() {
    let Some(mut s) = sensors_or_skip() else {
        return;
    };
    let Some(nc) = netcat() else {
        return;
    };
    let srv = unique("vgs");
    let cli = unique("vgc");
    let (_d1, srv_bin) = copy_named(nc.to_str().unwrap(), &srv);
    let (_d2, cli_bin) = copy_named("/bin/bash", &cli);
    s.set_filter(&match_comms(
        &[EventType::Connect, EventType::Accept],
        &[&srv, &cli],
    ))
    .unwrap();
    let (tx, mut rx) = mpsc::channel(65536);
    let reader = Reader::spawn(&s, tx).unwrap();
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut server = Command::new(&srv_bin)
        .args(["-l", "127.0.0.1", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let st = Command::new(&cli_bin)
        .args([
            "-c",
            &format!(
                "for i in $(seq 100); do exec 3<>/dev/tcp/127.0.0.1/{port} && exit 0; sleep 0.1; done 2>/dev/null; exit 1"
            ),
        ])
        .status()
        .unwrap();
    assert!(st.success(), "the client connected");
    // accept may return before connect does: collect both, in any order
    let mut got: Vec<RawEvent> = Vec::new();
    let _ = wait_for(&mut rx, 10, |e| {
        got.push(e.clone());
        got.iter()
            .any(|e| e.kind == RawKind::Accept && e.comm == srv)
            && got.iter().any(|e| {
                e.kind == RawKind::Connect
                    && e.comm == cli
                    && matches!(&e.body, RawBody::Net(n) if n.ret == 0)
            })
    })
    .await;
    let _ = server.kill();
    let _ = server.wait();
    let net = |e: &RawEvent| match &e.body {
        RawBody::Net(n) => n.clone(),
        other => panic!("not a net body: {other:?}"),
    };
    let conn = got
        .iter()
        .find(|e| {
            e.kind == RawKind::Connect
                && e.comm == cli
                && matches!(&e.body, RawBody::Net(n) if n.ret == 0)
        })
        .map(net)
        .expect("successful connect event from the bash copy");
    assert_eq!((conn.family_name(), conn.proto_name()), ("inet", "tcp"));
    assert_eq!((conn.daddr.as_str(), conn.dport), ("127.0.0.1", port));
    assert_eq!(conn.saddr, "127.0.0.1");
    assert_ne!(conn.sport, 0, "source port known at connect exit");
    let acc = got
        .iter()
        .find(|e| e.kind == RawKind::Accept && e.comm == srv)
        .map(net)
        .expect("accept event from the netcat copy");
    assert_eq!((acc.saddr.as_str(), acc.sport), ("127.0.0.1", port));
    assert_eq!(
        (acc.daddr.as_str(), acc.dport),
        ("127.0.0.1", conn.sport),
        "peer of the accept is the connecting socket"
    );
    assert!(acc.ret >= 0);
    reader.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_reload_flips_generations_and_cleans_up() {
    let Some(mut s) = sensors_or_skip() else {
        return;
    };
    let a = unique("vga");
    let b = unique("vgb");
    let (_d1, cat_a) = copy_named("/bin/cat", &a);
    let (_d2, cat_b) = copy_named("/bin/cat", &b);
    s.set_filter(&match_comms(&[EventType::Open], &[&a]))
        .unwrap();
    let g1 = s.live_generation();
    assert_eq!(s.live_comms().get(&a), Some(&(EventType::Open.bit() as u8)));
    s.set_filter(&match_comms(&[EventType::Open], &[&b]))
        .unwrap();
    assert_ne!(
        s.live_generation(),
        g1,
        "a reload writes the other generation"
    );
    let comms = s.live_comms();
    assert!(
        comms.contains_key(&b) && !comms.contains_key(&a),
        "{comms:?}"
    );
    let (tx, mut rx) = mpsc::channel(65536);
    let reader = Reader::spawn(&s, tx).unwrap();
    let marker = format!("/nonexistent-{a}");
    let _ = Command::new(&cat_a).arg(&marker).output().unwrap();
    let _ = Command::new(&cat_b).arg(&marker).output().unwrap();
    let ev = wait_for(
        &mut rx,
        5,
        |e| matches!(&e.body, RawBody::Open { path, .. } if *path == marker),
    )
    .await
    .expect("open by the comm of the new filter");
    assert_eq!(ev.comm, b, "the old filter's comm no longer passes");
    reader.stop().await;
}

/// A TCP connection made before the sensors load gets its socket owners from
/// the task_file iterator run at load (so retransmits on connections older
/// than vigil are attributed too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_older_than_the_sensors_have_owners() {
    let Some(nc) = netcat() else {
        return;
    };
    let srv = unique("vrs");
    let cli = unique("vrc");
    let (_d1, srv_bin) = copy_named(nc.to_str().unwrap(), &srv);
    let (_d2, cli_bin) = copy_named("/bin/bash", &cli);
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut server = Command::new(&srv_bin)
        .args(["-l", "127.0.0.1", &port.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut client = Command::new(&cli_bin)
        .args([
            "-c",
            &format!(
                "for i in $(seq 100); do exec 3<>/dev/tcp/127.0.0.1/{port} && break; sleep 0.1; done 2>/dev/null; read -t 30 x <&3"
            ),
        ])
        .spawn()
        .unwrap();
    let fd3 = format!("/proc/{}/fd/3", client.id());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_link(&fd3).is_ok_and(|l| l.to_string_lossy().starts_with("socket:")) {
        if Instant::now() > deadline {
            let _ = (client.kill(), server.kill());
            panic!("the client never connected");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Only now load the sensors: the connection is older than them.
    let sensors = sensors_or_skip();
    let owners = sensors.as_ref().map(|s| s.socket_owner_list());
    let _ = (client.kill(), server.kill());
    let _ = (client.wait(), server.wait());
    let Some(owners) = owners else {
        return;
    };
    assert!(
        owners.contains(&(client.id(), cli.clone())),
        "client socket owner seeded: {owners:?}"
    );
    assert!(
        owners.contains(&(server.id(), srv.clone())),
        "server socket owner seeded: {owners:?}"
    );
}

/// A 32-bit syscall (`int 0x80`, here from this 64-bit process: the
/// evasion that per-syscall tracepoints miss, since the kernel never runs
/// them for compat syscalls) is seen through the compat exit program, with
/// its ia32 number and bx/cx/dx arguments translated: `open` (ia32 5) and
/// `openat` (ia32 295) with AT_FDCWD, which must come out sign-extended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compat_int80_opens_are_seen() {
    let Some(mut s) = sensors_or_skip() else {
        return;
    };
    let name = unique("vg32");
    s.set_filter(&match_comms(&[EventType::Open], &[&name]))
        .unwrap();
    let (tx, mut rx) = mpsc::channel(65536);
    let reader = Reader::spawn(&s, tx).unwrap();
    // `int80_child` does the opens on a thread named `name`.
    let rets: Vec<i64> =
        evasion::child_result("int80_child", &[("VIGIL_INT80_CHILD", &name)], "INT80")
            .split(' ')
            .map(|v| v.parse().unwrap())
            .collect();
    let rets = (rets[0], rets[1]);
    assert!(
        rets.0 >= 0 && rets.1 >= 0,
        "int 0x80 opens failed: {rets:?}"
    );
    for (nr, ret) in [("open", rets.0), ("openat", rets.1)] {
        let ev = wait_for(&mut rx, 5, |e| {
            e.kind == RawKind::Open
                && e.comm == name
                && matches!(&e.body, RawBody::Open { ret: r, .. } if *r == ret)
        })
        .await
        .unwrap_or_else(|| panic!("the int 0x80 {nr} (fd {ret}) was not seen"));
        match &ev.body {
            RawBody::Open { path, dirfd, .. } => {
                assert_eq!(path, "/etc/hostname", "{nr}");
                assert_eq!(*dirfd, -100, "{nr}: AT_FDCWD, sign-extended");
            }
            _ => unreachable!(),
        }
    }
    reader.stop().await;
}

/// 32-bit shellcode (msfvenom's linux/x86 reverse shells) and older 32-bit
/// libcs connect through ia32 `socketcall(2)`: SYS_SOCKET then SYS_CONNECT
/// with the arguments in a user-memory array. The connect is seen with its
/// destination.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compat_int80_socketcall_connect_is_seen() {
    let seen = connect_seen_from_child("vg32c", "socketcall", |name, port| {
        let envs = [("VIGIL_INT80_CHILD", name), ("VIGIL_INT80_CONNECT", port)];
        let res = evasion::child_result("int80_child", &envs, "INT80C");
        assert!(
            !res.contains('-'),
            "socketcall socket/connect failed: {res}"
        );
        Some(())
    });
    let Some(n) = seen.await else {
        return;
    };
    assert_eq!(n.family_name(), "inet");
}

/// `child_result` of `uring_child`; None (skip) where io_uring is unavailable
/// and live tests are not required.
fn uring_child_result(envs: &[(&str, &str)]) -> Option<String> {
    let res = evasion::child_result("uring_child", envs, "URING");
    if res == "unsupported" {
        vigil_testkit::cannot_run("io_uring is unavailable here (kernel.io_uring_disabled?)");
        return None;
    }
    Some(res)
}

/// The child side of the `compat_int80_*` tests (a no-op unless one of them
/// started this binary with VIGIL_INT80_CHILD set): opens, or with
/// VIGIL_INT80_CONNECT=PORT a socketcall connect to 127.0.0.1:PORT, on a
/// thread named after VIGIL_INT80_CHILD.
#[test]
#[ignore = "child entry point: run by common::evasion::child_result, not a test"]
fn int80_child() {
    let Ok(name) = std::env::var("VIGIL_INT80_CHILD") else {
        return;
    };
    let port: Option<u16> = std::env::var("VIGIL_INT80_CONNECT")
        .ok()
        .map(|p| p.parse().unwrap());
    let t = std::thread::Builder::new().name(name);
    if let Ok(port) = std::env::var("VIGIL_INT80_DUP2") {
        // stdout onto a TCP connection, the reverse-shell way
        let r = t
            .spawn(move || {
                let c = std::net::TcpStream::connect(("127.0.0.1", port.parse().unwrap())).unwrap();
                use std::os::fd::AsRawFd;
                evasion::int80_dup2(c.as_raw_fd(), 100)
            })
            .unwrap()
            .join()
            .unwrap();
        println!("INT80D {r}");
        return;
    }
    if let Ok(link) = std::env::var("VIGIL_INT80_SYMLINK") {
        let (r, u) = t
            .spawn(move || evasion::int80_symlink("/etc/shadow", &link))
            .unwrap()
            .join()
            .unwrap();
        println!("INT80S {r} {u}");
        return;
    }
    match port {
        Some(port) => {
            let (fd, ret) = t
                .spawn(move || evasion::int80_connect(port))
                .unwrap()
                .join()
                .unwrap();
            println!("INT80C {fd} {ret}");
        }
        None => {
            let (a, b) = t
                .spawn(|| evasion::int80_opens("/etc/hostname"))
                .unwrap()
                .join()
                .unwrap();
            println!("INT80 {a} {b}");
        }
    }
}

/// An open submitted through io_uring never passes a syscall hook (the
/// "curing" evasion). It is seen at its completion, with the opened file's
/// resolved path (here through a `..` the user string had), its fd, and the
/// process's comm even when an io-wq worker did the work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn io_uring_open_is_seen_with_its_resolved_path() {
    let Some(mut s) = sensors_or_skip() else {
        return;
    };
    let name = unique("vgur");
    s.set_filter(&match_comms(&[EventType::Open], &[&name]))
        .unwrap();
    let (tx, mut rx) = mpsc::channel(65536);
    let reader = Reader::spawn(&s, tx).unwrap();
    let Some(fd) = uring_child_result(&[("VIGIL_URING_CHILD", &name)]) else {
        return;
    };
    let fd: i64 = fd.parse().unwrap();
    assert!(fd >= 0, "io_uring openat failed: {fd}");
    // The child's own syscall opens (of /proc/self/comm, libraries) come
    // first; the ring's is the one with its fd, the resolved path and no
    // raw path (a syscall record would carry the raw "/etc/../etc/hostname").
    let ev = wait_for(&mut rx, 5, |e| {
        e.kind == RawKind::Open
            && e.comm == name
            && matches!(&e.body, RawBody::Open { path, resolved, ret, .. }
                if path.is_empty() && resolved == "/etc/hostname" && *ret == fd)
    })
    .await
    .expect("the io_uring open was not seen");
    match &ev.body {
        RawBody::Open { id, .. } => assert_ne!(id.ino, 0, "the opened file's identity"),
        other => panic!("not an open body: {other:?}"),
    }
    reader.stop().await;
}

/// A symlink to a watched file has a clean raw path that no prefix matches;
/// the open passes the kernel filter by the opened file's identity (inode
/// in `f_ident`) and carries the resolved path, while an unwatched file's
/// open by the same program is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alias_of_a_watched_file_passes_by_identity() {
    let Some(mut s) = sensors_or_skip() else {
        return;
    };
    let mut f = KernelFilter {
        types: std::array::from_fn(|_| TypeFilter::Drop),
    };
    f.types[EventType::Open.index()] = TypeFilter::Match(FilterSets {
        path_prefixes: ["/etc/hostname".to_string()].into(),
        ..Default::default()
    });
    let plan = s.set_filter(&f).unwrap();
    s.set_identity(Identity::scan(&plan)).unwrap();
    assert!(!s.identity().entries.is_empty(), "/etc/hostname stat'ed");
    let (tx, mut rx) = mpsc::channel(65536);
    let reader = Reader::spawn(&s, tx).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("h");
    std::os::unix::fs::symlink("/etc/hostname", &link).unwrap();
    std::fs::write(dir.path().join("other"), "x").unwrap();
    let link_s = link.to_str().unwrap().to_string();
    for p in [dir.path().join("other").to_str().unwrap(), link_s.as_str()] {
        let st = Command::new("cat")
            .arg(p)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
    }
    let mut other_seen = false;
    let ev = wait_for(&mut rx, 5, |e| {
        if let RawBody::Open { path, .. } = &e.body {
            other_seen |= path.ends_with("/other");
            return *path == link_s;
        }
        false
    })
    .await
    .expect("the symlinked open of /etc/hostname was not passed");
    assert!(!other_seen, "an unwatched file's open passed the filter");
    match &ev.body {
        RawBody::Open { resolved, id, .. } => {
            assert_eq!(resolved, "/etc/hostname");
            // the record carries the opened inode, the one the scan stat'ed
            assert!(
                s.identity().entries.contains_key(&(id.dev, id.ino)),
                "opened file {id:?} is not the scanned /etc/hostname"
            );
            // already the watched name: nothing to rename
            assert_eq!(s.identity().canonical(id, resolved), None);
        }
        other => panic!("not an open body: {other:?}"),
    }
    reader.stop().await;
}

/// A connect submitted through io_uring is seen with its destination.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn io_uring_connect_is_seen() {
    let seen = connect_seen_from_child("vguc", "io_uring", |name, port| {
        let envs = [("VIGIL_URING_CHILD", name), ("VIGIL_URING_CONNECT", port)];
        let res = uring_child_result(&envs)?;
        assert_eq!(res, "0", "io_uring connect result");
        Some(())
    });
    let Some(n) = seen.await else {
        return;
    };
    assert_eq!((n.family_name(), n.proto_name()), ("inet", "tcp"));
    assert_ne!(n.sport, 0, "the source port is known at completion");
}

/// A child connects (through `connect(name, port)`, which runs it; None:
/// skip) to a loopback listener of this test while the sensors watch
/// connects of comm `name` (from `prefix`): the `what` connect record is seen with
/// that destination and result 0. Returns it for further checks; None when
/// the sensors or the child's mechanism are unavailable here (skip).
async fn connect_seen_from_child(
    prefix: &str,
    what: &str,
    connect: impl FnOnce(&str, &str) -> Option<()>,
) -> Option<vigil_bpf::decode::RawNet> {
    let mut s = sensors_or_skip()?;
    let name = unique(prefix);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    s.set_filter(&match_comms(&[EventType::Connect], &[&name]))
        .unwrap();
    let (tx, mut rx) = mpsc::channel(65536);
    let reader = Reader::spawn(&s, tx).unwrap();
    connect(&name, &port.to_string())?;
    let ev = wait_for(&mut rx, 5, |e| e.kind == RawKind::Connect && e.comm == name)
        .await
        .unwrap_or_else(|| panic!("the {what} connect was not seen"));
    let n = match ev.body {
        RawBody::Net(n) => n,
        other => panic!("not a net body: {other:?}"),
    };
    assert_eq!((n.daddr.as_str(), n.dport), ("127.0.0.1", port));
    assert_eq!(n.ret, 0);
    drop(listener);
    reader.stop().await;
    Some(n)
}

/// The child side of the `io_uring_*` tests: renames the process (its comm)
/// to VIGIL_URING_CHILD, then either opens /etc/../etc/hostname with
/// IORING_OP_OPENAT and prints the fd, or with VIGIL_URING_CONNECT=PORT
/// connects a TCP socket to 127.0.0.1:PORT with IORING_OP_CONNECT and prints
/// the result.
#[test]
#[ignore = "child entry point: run by common::evasion::child_result, not a test"]
fn uring_child() {
    let Ok(name) = std::env::var("VIGIL_URING_CHILD") else {
        return;
    };
    evasion::name_process(&name);
    if let Ok(dir) = std::env::var("VIGIL_URING_OPS") {
        match evasion::uring_path_ops(&dir) {
            Some(r) => println!(
                "URING {}",
                r.iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            None => println!("URING unsupported"),
        }
        return;
    }
    let res = match std::env::var("VIGIL_URING_CONNECT") {
        Ok(port) => evasion::uring_connect(port.parse().unwrap()),
        Err(_) => evasion::uring_open("/etc/../etc/hostname"),
    };
    match res {
        Some(res) => println!("URING {res}"),
        None => println!("URING unsupported"),
    }
}

/// The engine's on-demand event types (symlink ... memfd).
fn on_demand_types() -> Vec<EventType> {
    EventType::ALL
        .into_iter()
        .filter(|t| t.on_demand())
        .collect()
}

/// What `OPS_CHILD` does, in order, in directory `argv[1]`: every
/// on-demand kind once (a symlink twice: the second fails with EEXIST),
/// memfd_create last.
const OPS_CHILD: &str = r#"
import ctypes, os, socket, sys
d = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)
open(d + "/f", "w").close()
os.symlink("/etc/shadow", d + "/sl")
try:
    os.symlink("/etc/shadow", d + "/sl")
except FileExistsError:
    pass
os.link(d + "/f", d + "/hl")
os.rename(d + "/hl", d + "/hl2")
os.unlink(d + "/hl2")
os.mkdir(d + "/dd")
os.rmdir(d + "/dd")
os.chmod(d + "/f", 0o4755)
libc.ptrace(0, 0, 0, 0)
try:
    socket.socket(socket.AF_PACKET, socket.SOCK_RAW).close()
except OSError:
    pass
os.setgid(0)
os.setuid(0)
fd = os.open("/proc/self/ns/uts", os.O_RDONLY)
libc.setns(fd, 0)
libc.unshare(0x04000000)
os.memfd_create("vgmemfd")
"#;

/// Runs `OPS_CHILD` under a python copy named `name`; its pid.
fn run_ops_child(py: &std::path::Path, dir: &std::path::Path) -> u32 {
    let mut c = Command::new(py)
        .args(["-c", OPS_CHILD])
        .arg(dir)
        .spawn()
        .unwrap();
    let pid = c.id();
    assert!(c.wait().unwrap().success(), "ops child failed");
    pid
}

/// The on-demand records of process `pid`, up to and including its memfd
/// (the child's last syscall of interest).
async fn ops_of(rx: &mut mpsc::Receiver<RawEvent>, pid: u32) -> Vec<vigil_bpf::RawOp> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Some(ev) = wait_for(rx, 10, |e| e.tgid == pid && e.kind == RawKind::SysOp).await {
        if let RawBody::Op(op) = ev.body {
            let last = op.op == OpKind::Memfd;
            out.push(op);
            if last || Instant::now() > deadline {
                break;
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_demand_syscall_kinds_are_hooked_only_when_asked_for() {
    let Some(mut s) = sensors_or_skip() else {
        return;
    };
    let name = unique("vgops");
    let (dir, py) = copy_named("/usr/bin/python3", &name);
    let work = dir.path().join("w");
    std::fs::create_dir(&work).unwrap();
    // the kernel filter applies: the on-demand kinds of this comm pass
    s.set_filter(&match_comms(&on_demand_types(), &[&name]))
        .unwrap();
    let (tx, mut rx) = mpsc::channel(65536);
    let reader = Reader::spawn(&s, tx).unwrap();

    // Nothing asked for: no hook attached.
    assert!(!s.hooks().iter().any(|h| h.contains("symlink")));
    let before = run_ops_child(&py, &work);
    for f in ["f", "sl"] {
        std::fs::remove_file(work.join(f)).unwrap();
    }

    s.set_ops(&OpKind::ALL).unwrap();
    assert!(s.hooks().contains(&"sys_exit_symlinkat"));
    assert!(s.hooks().contains(&"sys_exit_memfd_create"));
    // another program's symlink: filtered away in the kernel (comm)
    let st = Command::new("ln")
        .arg("-s")
        .arg("/etc/shadow")
        .arg(work.join("other"))
        .status()
        .unwrap();
    assert!(st.success());
    let pid = run_ops_child(&py, &work);
    // Records arrive in order: any record of the first child, or of `ln`,
    // would precede the second child's.
    let mut seen = Vec::new();
    while let Some(ev) = wait_for(&mut rx, 10, |e| {
        e.kind == RawKind::SysOp && (e.tgid == pid || e.tgid == before || e.comm == "ln")
    })
    .await
    {
        assert_ne!(ev.tgid, before, "a record from before the hooks: {ev:?}");
        assert_ne!(
            ev.comm, "ln",
            "a record the comm filter should drop: {ev:?}"
        );
        let RawBody::Op(op) = ev.body else {
            panic!("sysop without an op body")
        };
        let last = op.op == OpKind::Memfd;
        seen.push(op);
        if last {
            break;
        }
    }
    let find = |k: OpKind| {
        seen.iter()
            .find(|o| o.op == k)
            .unwrap_or_else(|| panic!("no {} record in {seen:#?}", k.as_str()))
    };
    let w = work.display().to_string();
    let sl = find(OpKind::Symlink);
    assert_eq!(
        (sl.s1.as_str(), sl.s2.clone()),
        ("/etc/shadow", format!("{w}/sl"))
    );
    assert_eq!(sl.ret, 0);
    assert!(
        seen.iter()
            .any(|o| o.op == OpKind::Symlink && o.ret == -(libc::EEXIST as i64)),
        "the failed attempt is reported"
    );
    let ln = find(OpKind::Link);
    assert_eq!(
        (ln.s1.clone(), ln.s2.clone()),
        (format!("{w}/f"), format!("{w}/hl"))
    );
    let rn = find(OpKind::Rename);
    assert_eq!(
        (rn.s1.clone(), rn.s2.clone()),
        (format!("{w}/hl"), format!("{w}/hl2"))
    );
    assert_eq!(find(OpKind::Unlink).s1, format!("{w}/hl2"));
    assert_eq!(find(OpKind::Mkdir).s1, format!("{w}/dd"));
    assert_eq!(find(OpKind::Rmdir).s1, format!("{w}/dd"));
    let ch = find(OpKind::Chmod);
    assert_eq!(ch.s1, format!("{w}/f"));
    // chmod(path, mode) or fchmodat(dirfd, path, mode, ...)
    let mode = if ch.nr == 90 { ch.args[1] } else { ch.args[2] };
    assert_eq!(mode & 0o7777, 0o4755);
    assert_eq!(find(OpKind::Ptrace).args[0], 0, "PTRACE_TRACEME");
    let so = find(OpKind::Socket);
    assert_eq!(
        (so.args[0], so.args[1] & 0xf),
        (17, 3),
        "AF_PACKET, SOCK_RAW"
    );
    assert_eq!(find(OpKind::Setuid).args[0], 0);
    assert_eq!(find(OpKind::Setgid).args[0], 0);
    assert_eq!(find(OpKind::Setns).ret, 0);
    assert_eq!(find(OpKind::Unshare).args[0], 0x0400_0000, "CLONE_NEWUTS");
    assert_eq!(find(OpKind::Memfd).s1, "vgmemfd");

    // Narrowed to memfd: the other hooks are detached.
    s.set_ops(&[OpKind::Memfd]).unwrap();
    assert!(!s.hooks().iter().any(|h| h.contains("symlink")));
    for f in ["f", "sl"] {
        std::fs::remove_file(work.join(f)).unwrap();
    }
    let pid = run_ops_child(&py, &work);
    let ops = ops_of(&mut rx, pid).await;
    assert_eq!(
        ops.iter().map(|o| o.op).collect::<Vec<_>>(),
        [OpKind::Memfd],
        "only the memfd hook is attached: {ops:#?}"
    );
    s.set_ops(&[]).unwrap();
    assert!(!s.hooks().iter().any(|h| h.contains("memfd")));
    reader.stop().await;
}

/// An on-demand kind reached through `int 0x80` (ia32 symlink): the
/// per-syscall tracepoints never fire for it; the compat program reports it
/// once the kind is asked for, with the x86_64 syscall number, and not a
/// kind that was not asked for (the ia32 unshare before it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compat_int80_symlink_is_seen_once_asked_for() {
    let Some(mut s) = sensors_or_skip() else {
        return;
    };
    let name = unique("vg32s");
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("sl").display().to_string();
    s.set_filter(&match_comms(&on_demand_types(), &[&name]))
        .unwrap();
    s.set_ops(&[OpKind::Symlink]).unwrap();
    let (tx, mut rx) = mpsc::channel(65536);
    let reader = Reader::spawn(&s, tx).unwrap();
    let envs = [
        ("VIGIL_INT80_CHILD", name.as_str()),
        ("VIGIL_INT80_SYMLINK", &link),
    ];
    let res = evasion::child_result("int80_child", &envs, "INT80S");
    assert_eq!(res, "0 0", "int 0x80 symlink, unshare");
    // The child's unshare (a kind not asked for) came first: the first
    // record of the child is the symlink.
    let ev = wait_for(&mut rx, 5, |e| e.kind == RawKind::SysOp && e.comm == name)
        .await
        .expect("the int 0x80 symlink was not seen");
    let RawBody::Op(op) = ev.body else {
        panic!("not an op body")
    };
    assert_eq!((op.op, op.nr, op.ret), (OpKind::Symlink, 88, 0));
    assert_eq!(
        (op.s1.as_str(), op.s2.as_str()),
        ("/etc/shadow", link.as_str())
    );
    // unshare was not asked for: the next record of the child is none
    s.set_ops(&[]).unwrap();
    let more = wait_for(&mut rx, 1, |e| e.comm == name && e.kind == RawKind::SysOp).await;
    assert!(
        more.is_none(),
        "a kind not asked for was reported: {more:?}"
    );
    reader.stop().await;
}

/// What `MORE_OPS_CHILD` does in directory `argv[1]`, with a TCP listener
/// on port `argv[2]`: dup2 and fcntl(F_DUPFD) of a connected TCP socket
/// (stdio redirected to the network), listen, chown, fchown, truncate, a tmpfs
/// mount and its umount2, a BPF array map named vgmap, userfaultfd, and
/// memfd_create last (the end marker).
const MORE_OPS_CHILD: &str = r#"
import ctypes, fcntl, os, socket, struct, sys
d, port = sys.argv[1], int(sys.argv[2])
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
c = socket.create_connection(("127.0.0.1", port))
os.dup2(c.fileno(), 50)
fcntl.fcntl(c.fileno(), fcntl.F_DUPFD, 60)
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(7)
open(d + "/f", "w").close()
os.chown(d + "/f", 65534, -1)
fd = os.open(d + "/f", os.O_RDONLY)
os.fchown(fd, -1, 65534)
os.truncate(d + "/f", 0)
os.mkdir(d + "/m")
libc.mount(b"none", (d + "/m").encode(), b"tmpfs", 0, None)
libc.umount2((d + "/m").encode(), 0)
attr = ctypes.create_string_buffer(struct.pack("7I16s", 2, 4, 4, 1, 0, 0, 0, b"vgmap"), 128)
libc.syscall(321, 0, attr, 128)
libc.syscall(323, os.O_CLOEXEC)
os.memfd_create("vgend")
"#;

/// dup (with the socket behind the old fd), listen, chown, mount, bpf and
/// userfaultfd reach userspace once asked for, from a child process; the
/// module kind is reported unavailable where the kernel has no module
/// syscalls (no tracepoint), never an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dup_listen_chown_truncate_mount_bpf_userfaultfd_are_seen() {
    let Some(mut s) = sensors_or_skip() else {
        return;
    };
    let name = unique("vgmore");
    let (dir, py) = copy_named("/usr/bin/python3", &name);
    let work = dir.path().join("w");
    std::fs::create_dir(&work).unwrap();
    let srv = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = srv.local_addr().unwrap().port();
    s.set_filter(&match_comms(&on_demand_types(), &[&name]))
        .unwrap();
    let kinds = [
        OpKind::Dup,
        OpKind::Listen,
        OpKind::Chown,
        OpKind::Mount,
        OpKind::Bpf,
        OpKind::Userfaultfd,
        OpKind::Module,
        OpKind::Truncate,
        OpKind::Memfd,
    ];
    s.set_ops(&kinds).unwrap();
    let module_here = vigil_bpf::tracefs::has_syscall_exit("finit_module") == Some(true);
    assert_eq!(
        s.unavailable_ops().contains(&OpKind::Module),
        !module_here,
        "module is unavailable exactly when the kernel lacks its syscalls"
    );
    for h in [
        "sys_exit_dup2",
        "sys_exit_fcntl",
        "sys_exit_listen",
        "sys_exit_fchown",
        "sys_exit_mount",
        "sys_exit_bpf",
        "sys_exit_userfaultfd",
    ] {
        assert!(s.hooks().contains(&h), "{h} attached: {:?}", s.hooks());
    }
    let (tx, mut rx) = mpsc::channel(65536);
    let reader = Reader::spawn(&s, tx).unwrap();
    let mut c = Command::new(&py)
        .args(["-c", MORE_OPS_CHILD])
        .arg(&work)
        .arg(port.to_string())
        .spawn()
        .unwrap();
    let pid = c.id();
    let _conn = srv.accept().unwrap();
    assert!(c.wait().unwrap().success(), "child failed");
    let ops = ops_of(&mut rx, pid).await;
    let w = work.display().to_string();
    let find = |what: &str, f: &dyn Fn(&vigil_bpf::RawOp) -> bool| {
        ops.iter()
            .find(|o| f(o))
            .unwrap_or_else(|| panic!("no {what} record in {ops:#?}"))
            .clone()
    };
    let d2 = find("dup2", &|o| {
        o.op == OpKind::Dup && o.args[1] == 50 && o.nr != 72
    });
    let n = d2.sock.expect("the old fd's socket");
    assert_eq!(
        (n.family, n.proto, n.daddr.as_str(), n.dport),
        (2, 6, "127.0.0.1", port),
        "dup2's old fd is the TCP connection"
    );
    assert_eq!(d2.sock_type, 1, "SOCK_STREAM");
    let fc = find("fcntl F_DUPFD", &|o| {
        o.op == OpKind::Dup && o.nr == 72 && o.args[2] == 60
    });
    assert!(fc.ret >= 60 && fc.sock.as_ref().is_some_and(|n| n.dport == port));
    let li = find("listen", &|o| o.op == OpKind::Listen);
    let n = li.sock.expect("listen's socket");
    assert_eq!(
        (li.args[1], n.family, n.saddr.as_str()),
        (7, 2, "127.0.0.1")
    );
    assert_ne!(n.sport, 0, "the bound port");
    let ch = find("chown", &|o| o.op == OpKind::Chown && !o.s1_walked);
    assert_eq!((ch.s1.clone(), ch.args[1]), (format!("{w}/f"), 65534));
    let fch = find("fchown", &|o| o.op == OpKind::Chown && o.s1_walked);
    assert_eq!(
        (fch.s1.clone(), fch.args[2]),
        (format!("{w}/f"), 65534),
        "fchown's fd walked in the kernel"
    );
    let tr = find("truncate", &|o| o.op == OpKind::Truncate);
    assert_eq!(
        (tr.s1.clone(), tr.args[1], tr.ret),
        (format!("{w}/f"), 0, 0)
    );
    let mo = find("mount", &|o| o.op == OpKind::Mount && o.nr == 165);
    assert_eq!(
        (mo.s1.as_str(), mo.s2.clone(), mo.s3.as_str()),
        ("none", format!("{w}/m"), "tmpfs")
    );
    let um = find("umount2", &|o| o.op == OpKind::Mount && o.nr == 166);
    assert_eq!(um.s1, format!("{w}/m"));
    let bp = find("bpf", &|o| o.op == OpKind::Bpf && o.args[0] == 0);
    assert_eq!(
        (bp.aux, bp.s1.as_str()),
        (2, "vgmap"),
        "BPF_MAP_TYPE_ARRAY named vgmap"
    );
    assert!(bp.ret > 0, "the map was created: {}", bp.ret);
    find("userfaultfd", &|o| o.op == OpKind::Userfaultfd);
    assert!(!ops.iter().any(|o| o.op == OpKind::Module));
    reader.stop().await;
}

/// The socket kind through ia32 `socketcall(SYS_SOCKET, ...)` (what 32-bit
/// shellcode uses; the per-syscall socket tracepoint never sees it): the
/// compat program decodes the argument array.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compat_int80_socketcall_socket_is_seen_once_asked_for() {
    let Some(mut s) = sensors_or_skip() else {
        return;
    };
    let name = unique("vg32k");
    let srv = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = srv.local_addr().unwrap().port().to_string();
    s.set_filter(&match_comms(&on_demand_types(), &[&name]))
        .unwrap();
    s.set_ops(&[OpKind::Socket]).unwrap();
    let (tx, mut rx) = mpsc::channel(65536);
    let reader = Reader::spawn(&s, tx).unwrap();
    let envs = [
        ("VIGIL_INT80_CHILD", name.as_str()),
        ("VIGIL_INT80_CONNECT", &port),
    ];
    let res = evasion::child_result("int80_child", &envs, "INT80C");
    let fd: i64 = res.split(' ').next().unwrap().parse().unwrap();
    assert!(fd >= 0, "socketcall socket: {res}");
    let ev = wait_for(&mut rx, 5, |e| e.kind == RawKind::SysOp && e.comm == name)
        .await
        .expect("the socketcall socket was not seen");
    let RawBody::Op(op) = ev.body else {
        panic!("not an op body")
    };
    assert_eq!((op.op, op.nr, op.ret), (OpKind::Socket, 41, fd));
    assert_eq!(
        (op.args[0], op.args[1], op.args[2]),
        (2, 1, 0),
        "AF_INET, SOCK_STREAM, 0"
    );
    reader.stop().await;
}

/// dup2 through `int 0x80` (ia32 dup2, 63) of a TCP socket onto fd 100:
/// the compat program reports it with the socket behind the old fd.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compat_int80_dup2_of_a_socket_is_seen() {
    let Some(mut s) = sensors_or_skip() else {
        return;
    };
    let name = unique("vg32d");
    let srv = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = srv.local_addr().unwrap().port().to_string();
    s.set_filter(&match_comms(&on_demand_types(), &[&name]))
        .unwrap();
    s.set_ops(&[OpKind::Dup]).unwrap();
    let (tx, mut rx) = mpsc::channel(65536);
    let reader = Reader::spawn(&s, tx).unwrap();
    let envs = [
        ("VIGIL_INT80_CHILD", name.as_str()),
        ("VIGIL_INT80_DUP2", &port),
    ];
    let res = evasion::child_result("int80_child", &envs, "INT80D");
    assert_eq!(res, "100", "int 0x80 dup2");
    let ev = wait_for(&mut rx, 5, |e| {
        e.kind == RawKind::SysOp
            && e.comm == name
            && matches!(&e.body, RawBody::Op(o) if o.nr == 33)
    })
    .await
    .expect("the int 0x80 dup2 was not seen");
    let RawBody::Op(op) = ev.body else {
        panic!("not an op body")
    };
    assert_eq!((op.op, op.args[1], op.ret), (OpKind::Dup, 100, 100));
    let n = op.sock.expect("the old fd's socket");
    assert_eq!(n.dport.to_string(), port);
    reader.stop().await;
}

/// The on-demand path kinds and socket through io_uring (no syscall hook
/// sees them): MKDIRAT, SYMLINKAT, LINKAT, RENAMEAT, UNLINKAT (both ways)
/// and SOCKET reach the same records as their syscalls, with the paths kept
/// at submission, the results, and the process's comm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn io_uring_path_ops_and_socket_are_seen() {
    let Some(mut s) = sensors_or_skip() else {
        return;
    };
    let name = unique("vgurop");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    std::fs::write(dir.path().join("f"), b"x").unwrap();
    s.set_filter(&match_comms(&on_demand_types(), &[&name]))
        .unwrap();
    let kinds = [
        OpKind::Mkdir,
        OpKind::Symlink,
        OpKind::Link,
        OpKind::Rename,
        OpKind::Unlink,
        OpKind::Rmdir,
        OpKind::Socket,
    ];
    s.set_ops(&kinds).unwrap();
    assert!(
        s.hooks().contains(&"io_uring_submit_req"),
        "{:?}",
        s.hooks()
    );
    let (tx, mut rx) = mpsc::channel(65536);
    let reader = Reader::spawn(&s, tx).unwrap();
    let envs = [
        ("VIGIL_URING_CHILD", name.as_str()),
        ("VIGIL_URING_OPS", &d),
    ];
    let Some(res) = uring_child_result(&envs) else {
        return;
    };
    let res: Vec<i64> = res.split(',').map(|v| v.parse().unwrap()).collect();
    assert_eq!(&res[..6], [0, 0, 0, 0, 0, 0], "ring path ops");
    let mut seen = Vec::new();
    while let Some(ev) = wait_for(&mut rx, 5, |e| e.kind == RawKind::SysOp && e.comm == name).await
    {
        if let RawBody::Op(op) = ev.body {
            let last = op.op == OpKind::Socket;
            seen.push(op);
            if last {
                break;
            }
        }
    }
    let find = |k: OpKind| {
        seen.iter()
            .find(|o| o.op == k)
            .unwrap_or_else(|| panic!("no ring {} record in {seen:#?}", k.as_str()))
    };
    let mk = find(OpKind::Mkdir);
    assert_eq!(
        (mk.nr, mk.s1.clone(), mk.args[2], mk.ret),
        (258, format!("{d}/ud"), 0o755, 0)
    );
    let sl = find(OpKind::Symlink);
    assert_eq!(
        (sl.s1.as_str(), sl.s2.clone()),
        ("/etc/shadow", format!("{d}/us"))
    );
    let ln = find(OpKind::Link);
    assert_eq!(
        (ln.s1.clone(), ln.s2.clone()),
        (format!("{d}/f"), format!("{d}/ul"))
    );
    let rn = find(OpKind::Rename);
    assert_eq!(
        (rn.s1.clone(), rn.s2.clone()),
        (format!("{d}/ul"), format!("{d}/ur"))
    );
    assert_eq!(find(OpKind::Unlink).s1, format!("{d}/ur"));
    assert_eq!(
        find(OpKind::Rmdir).s1,
        format!("{d}/ud"),
        "UNLINKAT with AT_REMOVEDIR"
    );
    let so = find(OpKind::Socket);
    assert_eq!(
        (so.args[0], so.args[1] & 0xf, so.ret),
        (17, 3, res[6]),
        "AF_PACKET, SOCK_RAW"
    );
    reader.stop().await;
}
