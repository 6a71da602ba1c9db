//! Live test of Falco's stable rule file, unchanged, in `vigil run` (issue
//! 12): a real shell started by a process named nginx trips "Run shell
//! untrusted", a real /etc/shadow read by an unknown program "Read sensitive
//! file untrusted", and a real symlink over /etc/shadow "Create Symlink Over
//! Sensitive Files" (symlinkat, a kind vigil hooks on demand), each with the
//! output rendered from Falco's `%field` template and Falco-shaped
//! `output_fields`; Falco's sandbox file, a real unprivileged userfaultfd.
//! The files are read from `<repo>/../shared/falco/` (never
//! copied in). Needs root, BPF and BTF; skipped with a message otherwise,
//! unless VIGIL_REQUIRE_LIVE=1 (CI), which makes that a failure.

mod common;

use std::process::{Command, Stdio};

use common::{copy_named, field, unique, Vigil};

#[path = "../engine/tests/common/falco.rs"]
mod falco;

#[test]
fn falco_stable_rules_fire_on_live_events() {
    let Some(rules) = falco::falco_file("falco_rules.yaml") else {
        return;
    };
    let Some(mut v) = Vigil::on_rules(rules.to_str().unwrap()) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();

    // A web server (bash named nginx) starts a shell.
    let nginx = copy_named(work.path(), "/bin/bash", "nginx");
    let marker = unique("m");
    let st = Command::new(&nginx)
        .args(["-c", &format!("sh -c 'id; true {marker}'; true")])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let a = v
        .wait_alert(20, |a| {
            a["rule"] == "Run shell untrusted"
                && field(a, "proc.cmdline")
                    .as_str()
                    .is_some_and(|c| c.contains(&marker))
        })
        .expect("Falco rule `Run shell untrusted` for sh under nginx");
    assert_eq!(a["priority"], "Notice");
    assert_eq!(a["source"], "syscall");
    let out = a["output"].as_str().unwrap();
    assert!(
        out.starts_with("Shell spawned by untrusted binary | ")
            && out.contains("process=sh ")
            && out.contains("parent=nginx "),
        "{out}"
    );
    assert!(!out.contains('%'), "{out}");
    // Falco-shaped output_fields: the template's fields by Falco's names
    // with Falco's types (numbers as numbers), nothing else but evt.time.
    assert_eq!(field(&a, "evt.type"), "execve");
    assert!(field(&a, "user.uid").is_i64(), "{a}");
    assert!(field(&a, "proc.tty").is_i64(), "{a}");
    assert!(field(&a, "evt.time").is_i64(), "{a}");
    assert_eq!(field(&a, "proc.pname"), "nginx");
    assert!(field(&a, "proc.aname[2]").is_string(), "{a}");
    assert!(a["output_fields"].get("proc.ancestors").is_none(), "{a}");

    // /etc/shadow read by a program no list trusts.
    let name = unique("shr");
    let cat = copy_named(work.path(), "/bin/cat", &name);
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
        .expect("Falco rule `Read sensitive file untrusted` for the shadow read");
    assert_eq!(a["priority"], "Warning");
    let out = a["output"].as_str().unwrap();
    assert!(
        out.contains("file=/etc/shadow ") && out.contains(&format!("process={name} ")),
        "{out}"
    );
    assert_eq!(field(&a, "fd.name"), "/etc/shadow");
    assert_eq!(field(&a, "evt.type"), "openat");
    assert!(a["output_fields"].get("file.path").is_none(), "{a}");

    // A symlink over /etc/shadow: a Falco rule on a syscall vigil hooks on
    // demand (symlinkat), its evt.arg.* read from vigil's fields.
    let link = work.path().join(unique("lnk"));
    std::os::unix::fs::symlink("/etc/shadow", &link).unwrap();
    let linkpath = link.display().to_string();
    let a = v
        .wait_alert(20, |a| {
            a["rule"] == "Create Symlink Over Sensitive Files"
                && field(a, "evt.arg.linkpath") == linkpath.as_str()
        })
        .expect("Falco rule `Create Symlink Over Sensitive Files` for the symlink");
    assert_eq!(field(&a, "evt.arg.target"), "/etc/shadow");
    assert_eq!(field(&a, "evt.type"), "symlinkat");
    v.stop();
}

/// Falco's sandbox file, unchanged: a real userfaultfd(2) by an unprivileged
/// user (refused or not: Falco's rule takes every result) trips
/// "Unprivileged Delegation of Page Faults Handling to a Userspace Process",
/// a rule on a syscall vigil hooks only while such a rule is loaded.
#[test]
fn falco_sandbox_userfaultfd_rule_fires_on_a_live_syscall() {
    let Some(rules) = falco::falco_file("falco-sandbox_rules.yaml") else {
        return;
    };
    let Some(mut v) = Vigil::on_rules(rules.to_str().unwrap()) else {
        return;
    };
    let marker = unique("uffd");
    let st = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
        ])
        .arg(format!(
            "import ctypes\nctypes.CDLL(None).syscall(323, 0o2000000)\n# {marker}"
        ))
        .status()
        .unwrap();
    assert!(st.success());
    let a = v
        .wait_alert(20, |a| {
            a["rule"] == "Unprivileged Delegation of Page Faults Handling to a Userspace Process"
                && field(a, "proc.cmdline")
                    .as_str()
                    .is_some_and(|c| c.contains(&marker))
        })
        .expect("Falco rule on userfaultfd for an unprivileged caller");
    assert_eq!(field(&a, "evt.type"), "userfaultfd");
    assert_eq!(field(&a, "user.uid"), 65534);
    assert_eq!(a["priority"], "Critical");
    v.stop();
}
