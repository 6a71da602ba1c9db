//! Live: the process attributes set at exec (capabilities, an executable
//! from a memfd, from a deleted file or from an overlayfs upper layer, the
//! allow-listed environment) and failed execs (`exec_failed`, natively and
//! through `int 0x80`), each from a real child process, through `vigil run`
//! on probe rules and the shipped rules.

mod common;

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::process::Command;

use common::{evasion, field, Vigil};
use serde_json::Value;

const PROBES: &str = r#"
- rule: pa exec
  desc: every exec whose command line names the test's marker
  events: [exec]
  condition: proc.cmdline.contains("vgpa")
  output: "pa exec {proc.cmdline}"
  priority: notice
- rule: pa failed exec
  desc: every failed exec of a marked file
  events: [exec_failed]
  condition: fs.path.contains("vgpa")
  output: "pa failed {fs.path} {evt.ret}"
  priority: notice
"#;

/// Every alert until each of `wants` matched one (or `secs` passed).
fn collect(v: &Vigil, secs: u64, wants: &[&dyn Fn(&Value) -> bool]) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let mut seen: Vec<Value> = Vec::new();
    while !wants.iter().all(|w| seen.iter().any(w)) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break;
        }
        seen.extend(v.drain(1));
    }
    seen
}

fn rule_is(a: &Value, rule: &str) -> bool {
    a["rule"] == rule
}

fn cmdline_has(a: &Value, s: &str) -> bool {
    field(a, "proc.cmdline")
        .as_str()
        .is_some_and(|c| c.contains(s))
}

fn has(list: &Value, item: &str) -> bool {
    list.as_array()
        .is_some_and(|l| l.iter().any(|x| x.as_str() == Some(item)))
}

/// A memfd holding /bin/true's bytes, inheritable (no MFD_CLOEXEC).
fn memfd_true(name: &str) -> i32 {
    let n = CString::new(name).unwrap();
    // SAFETY: memfd_create with a NUL-terminated name.
    let fd = unsafe { libc::memfd_create(n.as_ptr(), 0) };
    assert!(fd >= 0, "memfd_create");
    let bytes = std::fs::read("/bin/true").unwrap();
    // SAFETY: writing our buffer to our fd.
    let w = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    assert_eq!(w as usize, bytes.len());
    fd
}

#[test]
fn attributes_at_exec_and_failed_execs() {
    let dir = tempfile::tempdir().unwrap();
    let probes = dir.path().join("probes.yaml");
    std::fs::write(&probes, PROBES).unwrap();
    let cfg = dir.path().join("vigil.yaml");
    std::fs::write(&cfg, "outputs:\n  stdout: { format: json }\n").unwrap();
    if common::live_capable().is_none() {
        return;
    }
    let args: Vec<String> = [
        "run",
        "--json",
        "--config",
        cfg.to_str().unwrap(),
        "--rules",
        concat!(env!("CARGO_MANIFEST_DIR"), "/rules"),
        "--rules",
        probes.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut v = Vigil::spawn(tempfile::tempdir().unwrap(), &args, &[]);
    let d = dir.path().to_string_lossy().into_owned();

    // 1. a memfd run through a symlink to /proc/self/fd/N: the path names
    // neither a memfd nor an fd, only the kernel's fact does
    let mfd = memfd_true("vgpa");
    let link = format!("{d}/vgpa_link");
    std::os::unix::fs::symlink(format!("/proc/self/fd/{mfd}"), &link).unwrap();
    let st = Command::new(&link).arg0("vgpa-memfd").status().unwrap();
    assert!(st.success());
    // SAFETY: closing our memfd.
    unsafe { libc::close(mfd) };

    // 2. a file unlinked before its fd is executed (same symlink trick)
    let f = common::copy_named(dir.path(), "/bin/true", "vgpa_gone");
    let file = std::fs::File::open(&f).unwrap();
    std::fs::remove_file(&f).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    // an inheritable copy (std opens with O_CLOEXEC)
    // SAFETY: dup of our open fd.
    let fd2 = unsafe { libc::dup(fd) };
    let link2 = format!("{d}/vgpa_link2");
    std::os::unix::fs::symlink(format!("/proc/self/fd/{fd2}"), &link2).unwrap();
    let st = Command::new(&link2).arg0("vgpa-deleted").status().unwrap();
    assert!(st.success());
    // SAFETY: closing our dup.
    unsafe { libc::close(fd2) };
    drop(file);

    // 3. an overlayfs in a private mount namespace: a file written into the
    // merged tree (upper layer) and one of the lower layer
    let script = format!(
        "set -e; mount -t tmpfs none {d}/ov; cd {d}/ov; mkdir lower upper work m; \
         cp /bin/true lower/vgpa_low; \
         mount -t overlay overlay -o lowerdir=lower,upperdir=upper,workdir=work m; \
         cp /bin/true m/vgpa_up; ./m/vgpa_up; ./m/vgpa_low"
    );
    std::fs::create_dir(dir.path().join("ov")).unwrap();
    let st = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .status()
        .unwrap();
    assert!(st.success(), "overlay script");

    // 4. LD_PRELOAD for a process of a non-root user (nobody); it lives a
    // second so its environment can be read
    let mut sleeper = Command::new("/bin/sleep")
        .arg0("vgpa-preload")
        .arg("1")
        .env("LD_PRELOAD", format!("{d}/vgpa-evil.so"))
        .env("SECRET_TOKEN", "never-recorded")
        .uid(65534)
        .gid(65534)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();

    // 5. failed execs: a missing file, a file without the x bit, and a
    // missing file through int 0x80
    let missing = format!("{d}/vgpa-missing");
    assert!(Command::new(&missing).status().is_err());
    let noexec = format!("{d}/vgpa-noexec");
    std::fs::write(&noexec, "#!/bin/sh\n").unwrap();
    assert!(Command::new(&noexec).status().is_err());
    let missing32 = format!("{d}/vgpa-missing32");
    assert_eq!(evasion::int80_execve(&missing32), -2);
    sleeper.wait().unwrap();

    let exec_of =
        |marker: &'static str| move |a: &Value| rule_is(a, "pa exec") && cmdline_has(a, marker);
    // the overlay script's own command line names both files: by comm
    let comm_of = |name: &'static str| {
        move |a: &Value| rule_is(a, "pa exec") && field(a, "proc.name") == name
    };
    let failed_of = |path: String, ret: i64| {
        move |a: &Value| {
            rule_is(a, "pa failed exec")
                && field(a, "fs.path").as_str() == Some(path.as_str())
                && field(a, "evt.ret").as_i64() == Some(ret)
        }
    };
    let (m, del, up, low, pre) = (
        exec_of("vgpa-memfd"),
        exec_of("vgpa-deleted"),
        comm_of("vgpa_up"),
        comm_of("vgpa_low"),
        exec_of("vgpa-preload"),
    );
    let (f1, f2, f3) = (
        failed_of(missing.clone(), -2),
        failed_of(noexec.clone(), -13),
        failed_of(missing32.clone(), -2),
    );
    let fileless = |a: &Value| {
        rule_is(a, "Fileless or deleted binary execution") && cmdline_has(a, "vgpa-memfd")
    };
    let fileless_del = |a: &Value| {
        rule_is(a, "Fileless or deleted binary execution") && cmdline_has(a, "vgpa-deleted")
    };
    let preload = |a: &Value| {
        rule_is(a, "LD_PRELOAD set by a non-root user") && cmdline_has(a, "vgpa-preload")
    };
    let wants: [&dyn Fn(&Value) -> bool; 11] = [
        &m,
        &del,
        &up,
        &low,
        &pre,
        &f1,
        &f2,
        &f3,
        &fileless,
        &fileless_del,
        &preload,
    ];
    let alerts = collect(&v, 30, &wants);
    v.stop();
    let find = |w: &dyn Fn(&Value) -> bool, what: &str| -> Value {
        alerts
            .iter()
            .find(|a| w(a))
            .cloned()
            .unwrap_or_else(|| panic!("no alert for {what}; got {alerts:#?}"))
    };

    let a = find(&m, "the memfd exec");
    assert_eq!(field(&a, "proc.exe_from_memfd"), true, "{a}");
    assert_eq!(field(&a, "proc.exe_deleted"), false, "{a}");
    // run by root: every capability, CAP_SYS_ADMIN among them
    assert!(has(field(&a, "proc.cap_effective"), "CAP_SYS_ADMIN"), "{a}");
    assert!(
        has(field(&a, "proc.cap_permitted"), "CAP_SYS_MODULE"),
        "{a}"
    );
    find(&fileless, "Fileless or deleted binary execution (memfd)");

    let a = find(&del, "the deleted file's exec");
    assert_eq!(field(&a, "proc.exe_deleted"), true, "{a}");
    assert_eq!(field(&a, "proc.exe_from_memfd"), false, "{a}");
    find(
        &fileless_del,
        "Fileless or deleted binary execution (deleted)",
    );

    let a = find(&up, "the upper-layer exec");
    assert_eq!(field(&a, "proc.exe_upper_layer"), true, "{a}");
    let a = find(&low, "the lower-layer exec");
    assert_eq!(field(&a, "proc.exe_upper_layer"), false, "{a}");

    let a = find(&pre, "the LD_PRELOAD exec");
    let env = field(&a, "proc.env")
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(env.contains(&format!("LD_PRELOAD={d}/vgpa-evil.so")), "{a}");
    assert!(
        !env.contains("SECRET_TOKEN"),
        "only allow-listed names: {a}"
    );
    assert!(has(field(&a, "proc.env_names"), "LD_PRELOAD"), "{a}");
    assert_eq!(
        field(&a, "proc.cap_effective"),
        &Value::Array(vec![]),
        "{a}"
    );
    find(&preload, "LD_PRELOAD set by a non-root user");

    find(&f1, "the failed exec of a missing file");
    find(&f2, "the failed exec of a non-executable file");
    find(&f3, "the failed int 0x80 exec of a missing file");
    // no rule on exec saw a failed exec
    assert!(
        !alerts.iter().any(|a| a["rule"] != "pa failed exec"
            && (cmdline_has(a, "vgpa-missing") || cmdline_has(a, "vgpa-noexec"))),
        "{alerts:#?}"
    );
}
