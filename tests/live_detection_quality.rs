//! Live test of Falco's floor in the SHIPPED rules (issue 13) through
//! `vigil run`: a shell started under every server of the shipped
//! `protected_shell_spawners` list (copies of bash named as the server), a
//! shell below a program run by a PM2 / runsv grandparent, and commands run
//! as system accounts (www-data, nobody, daemon through `setpriv`) below a
//! process named sshd must raise "Shell spawned by server process" and
//! "System user interactive". And the measured noise stays quiet live:
//! `cc hello.c && ./a.out` and `./hello` in /tmp, typed at a terminal of a
//! login session (script(1) for the terminal, login uid 0), raise no
//! "Execution from temporary directory", while a program run from the same
//! directory without a login session does. Needs root, BPF and BTF; skipped
//! with a message otherwise, unless VIGIL_REQUIRE_LIVE=1 (CI).

mod common;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{copy_named, field, unique, Vigil};

/// A shipped list with the lists it names expanded (as the loader does).
fn shipped_list(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/rules/00-lists.yaml"))
        .unwrap();
    let docs: Vec<serde_yaml_ng::Value> = serde_yaml_ng::from_str(&text).unwrap();
    fn expand(docs: &[serde_yaml_ng::Value], name: &str, out: &mut Vec<String>) -> bool {
        let Some(list) = docs.iter().find(|d| d["list"].as_str() == Some(name)) else {
            return false;
        };
        for item in list["items"].as_sequence().unwrap() {
            let s = item.as_str().unwrap().to_string();
            if !expand(docs, &s, out) && !out.contains(&s) {
                out.push(s);
            }
        }
        true
    }
    let mut out = Vec::new();
    assert!(
        expand(&docs, name, &mut out),
        "list {name} in rules/00-lists.yaml"
    );
    out
}

/// Runs `script` with a copy of bash named `name` (bash -c with a trailing
/// `; true` so bash forks rather than execs the last command).
fn run_as(dir: &Path, name: &str, script: &str) {
    let bin = copy_named(dir, "/bin/bash", name);
    let st = Command::new(&bin)
        .args(["-c", &format!("{script}; true")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "{name} -c {script}");
}

/// Waits until every marker was seen in an alert of `rule` (in its command
/// line); panics naming the ones missing.
fn expect_all(v: &Vigil, rule: &str, mut missing: BTreeSet<String>) {
    while !missing.is_empty() {
        let got = v.wait_alert(30, |a| {
            a["rule"] == rule
                && field(a, "proc.cmdline")
                    .as_str()
                    .is_some_and(|c| missing.iter().any(|m| c.contains(m.as_str())))
        });
        let Some(a) = got else {
            panic!("no `{rule}` alert for {missing:?}");
        };
        let c = field(&a, "proc.cmdline").as_str().unwrap().to_string();
        missing.retain(|m| !c.contains(m.as_str()));
    }
}

#[test]
fn falco_floor_fires_live() {
    let Some(mut v) = Vigil::on_shipped_rules() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();

    // Shells under every protected spawner, and below a program of PM2/runsv.
    let mut shells = BTreeSet::new();
    let spawners = shipped_list("protected_shell_spawners");
    assert!(spawners.iter().any(|s| s == "postfix") && spawners.iter().any(|s| s == "fluentd"));
    for (i, server) in spawners.iter().enumerate() {
        let sub = dir.path().join(format!("s{i}"));
        std::fs::create_dir(&sub).unwrap();
        let m = unique("srv");
        run_as(&sub, server, &format!("sh -c 'true {m}'"));
        shells.insert(m);
    }
    for pm in shipped_list("process_manager_binaries") {
        let sub = dir.path().join(format!("pm-{pm}"));
        std::fs::create_dir(&sub).unwrap();
        let app = copy_named(&sub, "/bin/bash", "myapp");
        let m = unique("pm");
        run_as(
            &sub,
            &pm,
            &format!("{} -c \"sh -c 'true {m}'; true\"", app.display()),
        );
        shells.insert(m);
    }
    expect_all(&v, "Shell spawned by server process", shells);

    // System accounts running a command below a process named sshd.
    let mut users = BTreeSet::new();
    for user in ["www-data", "nobody", "daemon"] {
        let m = unique("su");
        run_as(
            dir.path(),
            "sshd",
            &format!(
                "setpriv --reuid={user} --regid=nogroup --clear-groups /bin/sh -c 'true {m}; true'"
            ),
        );
        users.insert(m);
    }
    expect_all(&v, "System user interactive", users);
    v.stop();
}

#[test]
fn compiling_in_tmp_at_a_login_terminal_is_quiet_live() {
    let Some(mut v) = Vigil::on_shipped_rules() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("hello.c"), "int main(void) { return 0; }\n").unwrap();
    // A login session's terminal: script(1) gives the pty, the shell sets
    // its login uid as pam_loginuid would (possible while it is unset).
    let typed = "echo 0 > /proc/self/loginuid; cat /proc/self/loginuid > luid; \
                 cc hello.c && ./a.out && cc -o hello hello.c && ./hello; true";
    let st = Command::new("script")
        .args(["-qec", &format!("bash -c '{typed}'"), "/dev/null"])
        .current_dir(d)
        .stdout(Stdio::null())
        .status()
        .expect("script(1) runs");
    assert!(st.success());
    let luid = std::fs::read_to_string(d.join("luid")).unwrap_or_default();
    if luid.trim() != "0" {
        eprintln!("SKIP: this process's login uid is set and immutable ({luid:?}); cannot open a login session");
        v.stop();
        return;
    }
    // The same place without a login session still fires (the control),
    // then a marker alert closes the window.
    let control = copy_named(d, "/bin/true", &unique("ctl"));
    assert!(Command::new(&control).status().unwrap().success());
    let marker = unique("mk");
    let cat = copy_named(d, "/bin/cat", &marker);
    assert!(Command::new(&cat)
        .arg("/etc/shadow")
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success());
    let before = RefCell::new(Vec::new());
    v.wait_alert(30, |a| {
        if a["rule"] == "Read sensitive file untrusted" && field(a, "proc.name") == marker.as_str()
        {
            return true;
        }
        before.borrow_mut().push(a.clone());
        false
    })
    .expect("marker alert");
    let tmp_exec: Vec<String> = before
        .borrow()
        .iter()
        .filter(|a| a["rule"] == "Execution from temporary directory")
        .map(|a| field(a, "proc.exe").as_str().unwrap_or("").to_string())
        .filter(|e| e.starts_with(d.to_str().unwrap()))
        .collect();
    assert!(
        tmp_exec.iter().any(|e| e == control.to_str().unwrap()),
        "control run raised the rule: {tmp_exec:?}"
    );
    assert!(
        !tmp_exec
            .iter()
            .any(|e| e.ends_with("/a.out") || e.ends_with("/hello")),
        "compiled programs at a login terminal raised it: {tmp_exec:?}"
    );
    v.stop();
}
