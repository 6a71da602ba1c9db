//! Live tests of `vigil run` (the real binary, real eBPF sensors, real
//! processes): exec by a process whose parent is named `nginx`, an open of
//! /etc/shadow, loopback connect/accept, a SYN retransmit inside a network
//! namespace with an nftables drop rule, process exit. Need root, BPF and
//! BTF (and `ip`/`nft` for the retransmit test); skipped with a message
//! otherwise, unless VIGIL_REQUIRE_LIVE=1 (CI), which makes that a failure.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{copy_named, field, live_capable, tool, unique, Vigil};
use serde_json::Value;

#[test]
fn shell_spawned_by_nginx_fires_and_sigterm_exits_zero() {
    let Some(mut v) = Vigil::start(
        r#"
- rule: Shell spawned by web server
  desc: a web server started a shell
  events: [exec]
  condition: proc.pname == "nginx" && proc.name in ["sh", "bash", "dash"]
  output: "Shell {proc.name} spawned by {proc.pname} (pid={proc.pid} cmdline={proc.cmdline})"
  priority: critical
"#,
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let nginx = copy_named(dir.path(), "/bin/bash", "nginx");
    let marker = unique("m");
    let st = Command::new(&nginx)
        .args(["-c", &format!("/bin/sh -c 'true {marker}'; true")])
        .status()
        .unwrap();
    assert!(st.success());
    let a = v
        .wait_alert(15, |a| {
            field(a, "proc.cmdline")
                .as_str()
                .is_some_and(|c| c.contains(&marker))
        })
        .expect("alert for the shell started by nginx");
    assert_eq!(a["rule"], "Shell spawned by web server");
    assert_eq!(a["priority"], "Critical");
    assert_eq!(field(&a, "proc.name"), "sh");
    assert_eq!(field(&a, "proc.pname"), "nginx");
    assert_eq!(
        field(&a, "proc.pexe").as_str().unwrap(),
        nginx.to_str().unwrap()
    );
    assert_eq!(field(&a, "proc.exe"), "/bin/sh");
    assert_eq!(field(&a, "proc.args")[1], format!("true {marker}"));
    assert_eq!(field(&a, "evt.type"), "exec");
    assert_eq!(v.stop(), Some(0), "SIGTERM exits 0");
}

#[test]
fn shadow_open_by_named_process_resolves_paths() {
    let name = unique("shr");
    let Some(mut v) = Vigil::start(&format!(
        r#"
- rule: Read shadow
  desc: test
  events: [open]
  condition: proc.name == "{name}" && file.path == "/etc/shadow"
  output: "{{proc.name}} opened {{file.path}} raw={{file.path_raw}}"
  priority: warning
"#
    )) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cat = copy_named(dir.path(), "/bin/cat", &name);
    // relative path with a traversal, resolved against the cwd
    let out = Command::new(&cat)
        .arg("../etc/../etc/shadow")
        .current_dir("/usr")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(out.success());
    let a = v
        .wait_alert(15, |a| field(a, "proc.name") == name.as_str())
        .expect("alert for the shadow read");
    assert_eq!(field(&a, "file.path"), "/etc/shadow");
    assert_eq!(field(&a, "file.path_raw"), "../etc/../etc/shadow");
    assert!(field(&a, "evt.ret").as_i64().unwrap() >= 0, "fd returned");
    assert_eq!(field(&a, "file.write"), false);
    assert_eq!(field(&a, "proc.cwd"), "/usr");
    assert_eq!(v.stop(), Some(0));
}

#[test]
fn loopback_connect_and_accept() {
    let client = unique("cli");
    let me = std::process::id();
    let Some(mut v) = Vigil::start(&format!(
        r#"
- rule: Client connect
  desc: test
  events: [connect]
  condition: proc.name == "{client}" && net.proto == "tcp"
  output: "connect {{net.daddr}}:{{net.dport}}"
  priority: notice
- rule: Server accept
  desc: test
  events: [accept]
  condition: proc.pid == {me}
  output: "accept from {{net.daddr}}:{{net.dport}}"
  priority: notice
"#
    )) else {
        return;
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let bash = copy_named(dir.path(), "/bin/bash", &client);
    let mut c = Command::new(&bash)
        .args([
            "-c",
            &format!("exec 3<>/dev/tcp/127.0.0.1/{port}; read -t 10 x <&3; true"),
        ])
        .spawn()
        .unwrap();
    let (sock, peer) = listener.accept().unwrap();
    drop(sock);
    let _ = c.wait();
    let conn = v
        .wait_alert(15, |a| a["rule"] == "Client connect")
        .expect("connect alert");
    assert_eq!(field(&conn, "proc.pid").as_u64().unwrap(), c.id() as u64);
    assert_eq!(field(&conn, "net.daddr"), "127.0.0.1");
    assert_eq!(field(&conn, "net.dport").as_u64().unwrap(), port as u64);
    assert_eq!(
        field(&conn, "net.sport").as_u64().unwrap(),
        peer.port() as u64
    );
    assert_eq!(field(&conn, "net.proto"), "tcp");
    assert_eq!(field(&conn, "net.family"), "inet");
    assert_eq!(field(&conn, "evt.ret"), 0);
    let acc = v
        .wait_alert(15, |a| a["rule"] == "Server accept")
        .expect("accept alert");
    assert_eq!(field(&acc, "proc.pid").as_u64().unwrap(), me as u64);
    assert_eq!(field(&acc, "net.daddr"), "127.0.0.1");
    assert_eq!(
        field(&acc, "net.dport").as_u64().unwrap(),
        peer.port() as u64
    );
    assert_eq!(field(&acc, "net.sport").as_u64().unwrap(), port as u64);
    assert_eq!(v.stop(), Some(0));
}

#[test]
fn exit_code_and_signal() {
    let name = unique("ex");
    let Some(mut v) = Vigil::start(&format!(
        r#"
- rule: Exit seen
  desc: test
  events: [exit]
  condition: proc.name == "{name}"
  output: "exit {{exit.code}} {{exit.signal}}"
  priority: info
"#
    )) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bash = copy_named(dir.path(), "/bin/bash", &name);
    let st = Command::new(&bash).args(["-c", "exit 7"]).status().unwrap();
    assert_eq!(st.code(), Some(7));
    let a = v
        .wait_alert(15, |a| field(a, "exit.code") == 7)
        .expect("exit alert with code 7");
    assert_eq!(field(&a, "exit.signal"), 0);
    let _ = Command::new(&bash)
        .args(["-c", "kill -KILL $$"])
        .status()
        .unwrap();
    let a = v
        .wait_alert(15, |a| field(a, "exit.signal") == 9)
        .expect("exit alert with signal 9");
    assert_eq!(field(&a, "proc.name"), name.as_str());
    assert_eq!(v.stop(), Some(0));
}

/// Runs `cmd` in a network namespace removed on drop.
struct Netns(String);

impl Netns {
    fn create(name: &str) -> Option<Netns> {
        let ok = Command::new("ip")
            .args(["netns", "add", name])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return None;
        }
        let ns = Netns(name.to_string());
        let run = |args: &[&str]| {
            Command::new("ip")
                .args(["netns", "exec", name])
                .args(args)
                .status()
                .is_ok_and(|s| s.success())
        };
        let ok = run(&["ip", "link", "set", "lo", "up"])
            && run(&["nft", "add", "table", "inet", "vigiltest"])
            && run(&[
                "nft",
                "add chain inet vigiltest input { type filter hook input priority 0 ; }",
            ])
            && run(&[
                "nft",
                "add rule inet vigiltest input tcp dport 9 tcp flags syn drop",
            ]);
        ok.then_some(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn syn_retransmit_is_attributed_to_the_connecting_process() {
    if live_capable().is_none() {
        return;
    }
    if tool("ip", "iproute2").is_none() || tool("nft", "nftables").is_none() {
        return;
    }
    let name = unique("rtx");
    let Some(mut v) = Vigil::start(&format!(
        r#"
- rule: Retransmit seen
  desc: test
  events: [retransmit]
  condition: proc.name == "{name}"
  output: "retransmit {{net.daddr}}:{{net.dport}} {{tcp.state}}"
  priority: info
"#
    )) else {
        return;
    };
    let ns = Netns::create(&format!("vigil-{name}")).expect("creating the test netns with nft");
    let dir = tempfile::tempdir().unwrap();
    let bash = copy_named(dir.path(), "/bin/bash", &name);
    // The SYN is dropped: the kernel retransmits it after ~1 s.
    let mut c = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(&bash)
        .args(["-c", "exec 3<>/dev/tcp/127.0.0.1/9"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let a = v.wait_alert(20, |a| a["rule"] == "Retransmit seen");
    let _ = c.kill();
    let _ = c.wait();
    let a = a.expect("retransmit alert naming the connecting process");
    assert_eq!(field(&a, "proc.name"), name.as_str());
    assert_eq!(field(&a, "net.daddr"), "127.0.0.1");
    assert_eq!(field(&a, "net.dport"), 9);
    assert_eq!(field(&a, "tcp.state"), "SYN_SENT");
    assert_eq!(field(&a, "evt.type"), "retransmit");
    drop(ns);
    assert_eq!(v.stop(), Some(0));
}

#[test]
fn without_root_run_fails_with_one_sentence() {
    // setpriv drops to an unprivileged user; missing it fails under CI.
    if vigil_testkit::root().is_none() || tool("setpriv", "util-linux").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("r.yaml");
    std::fs::write(
        &rules,
        "- rule: x\n  desc: x\n  events: [exec]\n  condition: proc.name == \"x\"\n  output: x\n  priority: info\n",
    )
    .unwrap();
    let mut perms = std::fs::metadata(dir.path()).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(dir.path(), perms).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_vigil"))
        .arg("run")
        .arg("--rules")
        .arg(&rules)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.trim_end().lines().last().unwrap_or("");
    assert!(
        last.contains("needs root") && last.ends_with("run vigil as root"),
        "stderr: {err}"
    );
    assert!(!err.contains("libbpf"), "no libbpf dump: {err}");
}

#[test]
fn record_writes_events_replay_can_read() {
    if live_capable().is_none() {
        return;
    }
    let name = unique("rec");
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("r.yaml");
    std::fs::write(
        &rules,
        format!(
            "- rule: rec\n  desc: x\n  events: [exec, exit]\n  condition: proc.name == \"{name}\"\n  output: x\n  priority: info\n"
        ),
    )
    .unwrap();
    let out = dir.path().join("events.jsonl");
    let args: Vec<String> = [
        "record",
        "--out",
        out.to_str().unwrap(),
        "--duration",
        "30",
        "--rules",
        rules.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let bin_dir = tempfile::tempdir().unwrap();
    let mut v = Vigil::spawn(tempfile::tempdir().unwrap(), &args, &[]);
    let bash = copy_named(bin_dir.path(), "/bin/bash", &name);
    let st = Command::new(&bash).args(["-c", "exit 5"]).status().unwrap();
    assert_eq!(st.code(), Some(5));
    // The kernel wrote both records before the wait above returned; stopping
    // drains the ring buffer and flushes the file.
    assert_eq!(v.stop(), Some(0));
    let text = std::fs::read_to_string(&out).unwrap();
    let events: Vec<vigil_engine::Event> = text
        .lines()
        .map(|l| {
            let obj: serde_json::Map<String, Value> = serde_json::from_str(l).unwrap();
            vigil_engine::Event::from_flat_json(&obj).unwrap()
        })
        .collect();
    let exec = events
        .iter()
        .find(|e| e.kind == vigil_engine::EventType::Exec && e.proc.name == name)
        .expect("the exec of the named bash was recorded");
    assert_eq!(exec.proc.exe, bash.to_str().unwrap());
    let exit = events
        .iter()
        .find(|e| e.kind == vigil_engine::EventType::Exit && e.proc.name == name)
        .expect("its exit was recorded");
    assert_eq!(
        exit.detail,
        vigil_engine::Detail::Exit { code: 5, signal: 0 }
    );
    assert!(
        events.iter().all(|e| e.proc.name == name),
        "the rules' kernel filter limited the recording"
    );
}

#[test]
fn snoop_exec_prints_a_row_for_the_named_process() {
    if live_capable().is_none() {
        return;
    }
    let name = unique("snp");
    let args: Vec<String> = ["snoop", "exec", "--comm", &name, "--count", "1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut v = Vigil::spawn(tempfile::tempdir().unwrap(), &args, &[]);
    let bin_dir = tempfile::tempdir().unwrap();
    let bash = copy_named(bin_dir.path(), "/bin/bash", &name);
    let st = Command::new(&bash)
        .args(["-c", "true snoop-arg"])
        .status()
        .unwrap();
    assert!(st.success());
    let row = v
        .wait_line(15, |l| l.contains(&name))
        .expect("a row for the named process");
    assert!(
        row.contains("-c \"true snoop-arg\""),
        "quoted argument: {row}"
    );
    let _ = v.stop();
}

#[test]
fn snoop_exec_x_shows_a_failed_exec_with_its_errno() {
    if live_capable().is_none() {
        return;
    }
    let name = unique("snx");
    let args: Vec<String> = ["snoop", "exec", "-x", "--comm", &name]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut v = Vigil::spawn(tempfile::tempdir().unwrap(), &args, &[]);
    let bin_dir = tempfile::tempdir().unwrap();
    let bash = copy_named(bin_dir.path(), "/bin/bash", &name);
    let missing = bin_dir.path().join("no-such-program");
    // the shell (comm `name`) execs a missing file: ENOENT
    let st = Command::new(&bash)
        .args(["-c", &format!("exec {}", missing.display())])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(127));
    let row = v
        // the shell's own row names the path inside its quoted -c argument
        .wait_line(15, |l| l.ends_with(&*missing.to_string_lossy()))
        .expect("a row for the failed exec");
    let cols: Vec<&str> = row.split_whitespace().collect();
    // TIME PCOMM PID PPID UID RET ARGS
    assert_eq!(cols.get(1), Some(&name.as_str()), "{row}");
    assert_eq!(cols.get(5), Some(&"-2"), "RET is -ENOENT: {row}");
    let _ = v.stop();
}

#[test]
fn metrics_endpoint_counts_events_and_alerts() {
    if live_capable().is_none() {
        return;
    }
    let name = unique("met");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("r.yaml");
    std::fs::write(
        &rules,
        format!(
            "- rule: metric rule\n  desc: x\n  events: [exec]\n  condition: proc.name == \"{name}\"\n  output: x\n  priority: notice\n"
        ),
    )
    .unwrap();
    let args: Vec<String> = [
        "run",
        "--json",
        "--rules",
        rules.to_str().unwrap(),
        "--metrics",
        &format!("127.0.0.1:{port}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut v = Vigil::spawn(dir, &args, &[]);
    let bin_dir = tempfile::tempdir().unwrap();
    let bash = copy_named(bin_dir.path(), "/bin/bash", &name);
    assert!(Command::new(&bash)
        .args(["-c", "true"])
        .status()
        .unwrap()
        .success());
    v.wait_alert(15, |a| a["rule"] == "metric rule")
        .expect("the alert");
    let get = || -> String {
        use std::io::Write;
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut s = String::new();
        c.read_to_string(&mut s).unwrap();
        s
    };
    // the exporter's snapshot refreshes every second: poll
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut body = String::new();
    while Instant::now() < deadline {
        body = get();
        if body.contains("vigil_alerts_total{rule=\"metric rule\",priority=\"Notice\"} 1") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
    assert!(
        body.contains("vigil_alerts_total{rule=\"metric rule\",priority=\"Notice\"} 1\n"),
        "{body}"
    );
    let seen_exec: u64 = body
        .lines()
        .find_map(|l| l.strip_prefix("vigil_kernel_events_seen_total{type=\"exec\"} "))
        .and_then(|n| n.parse().ok())
        .expect("exec seen counter");
    assert!(seen_exec >= 1);
    let size: u64 = body
        .lines()
        .find_map(|l| l.strip_prefix("vigil_process_table_size "))
        .and_then(|n| n.parse().ok())
        .expect("process table size");
    assert!(size > 1, "seeded from /proc");
    assert_eq!(v.stop(), Some(0));
}
