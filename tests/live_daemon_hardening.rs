//! Live hardening tests of `vigil run` (issue 17, items 7 and 8):
//! - debug logging written into the rules directory vigil watches does not
//!   feed itself (bounded log, no reload until a real rule change, which is
//!   still picked up) and SIGTERM exits within the shutdown timeout;
//! - a rule file that appears later world-writable, or owned by another
//!   user, is not loaded: the reload fails whole with the usual
//!   "vigil rule reload failed" alert and the rules in force keep firing;
//!   fixing the owner reloads it;
//! - `--insecure-permissions` starts on a world-writable rules directory.
//!
//! Needs root, BPF and BTF; skipped with a message otherwise, unless
//! VIGIL_REQUIRE_LIVE=1 (CI), which makes that a failure.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{copy_named, field, live_capable, unique, Vigil};

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn probe_rule(rule: &str, comm: &str) -> String {
    format!(
        r#"
- rule: {rule}
  desc: test
  events: [exec]
  condition: proc.name == "{comm}"
  output: "{rule} fired by {{proc.cmdline}}"
  priority: warning
"#
    )
}

/// Writes `text` to `dir/name` with `mode` (and owner `uid`, if given) in one
/// atomic step: a dot-named temp file (which the watcher ignores), renamed in.
fn drop_file(dir: &Path, name: &str, text: &str, mode: u32, uid: Option<u32>) -> PathBuf {
    let tmp = dir.join(format!(".{name}.tmp"));
    fs::write(&tmp, text).unwrap();
    chmod(&tmp, mode);
    if let Some(uid) = uid {
        std::os::unix::fs::chown(&tmp, Some(uid), Some(uid)).unwrap();
    }
    let path = dir.join(name);
    fs::rename(&tmp, &path).unwrap();
    path
}

fn run_bin(bin: &Path, tag: &str) {
    let st = Command::new(bin).arg(tag).status().unwrap();
    assert!(st.success());
}

/// Runs `bin TAG` every half second until an alert of `rule` with TAG arrives.
fn fires(v: &Vigil, bin: &Path, rule: &str, tag: &str) -> bool {
    for _ in 0..20 {
        run_bin(bin, tag);
        let hit = v.wait_alert(1, |a| {
            a["rule"] == rule && a["output"].as_str().is_some_and(|o| o.contains(tag))
        });
        if hit.is_some() {
            return true;
        }
    }
    false
}

/// The "vigil rule reload failed" alert whose errors name `file`.
fn reload_failed_for(v: &Vigil, file: &Path, secs: u64) -> Option<Value> {
    let file = file.display().to_string();
    v.wait_alert(secs, |a| {
        a["rule"] == "vigil rule reload failed"
            && field(a, "vigil.reload.errors")
                .as_array()
                .is_some_and(|errs| errs.iter().any(|e| e["file"] == file.as_str()))
    })
}

#[test]
fn a_world_writable_or_foreign_rule_file_appearing_later_is_not_loaded() {
    if live_capable().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.d");
    fs::create_dir(&rules).unwrap();
    chmod(&rules, 0o755);
    let (comm, comm2) = (unique("permp"), unique("permq"));
    drop_file(
        &rules,
        "10-probe.yaml",
        &probe_rule("Perm probe", &comm),
        0o644,
        None,
    );
    let bins = tempfile::tempdir().unwrap();
    let bin = copy_named(bins.path(), "/bin/true", &comm);
    let bin2 = copy_named(bins.path(), "/bin/true", &comm2);
    let args: Vec<String> = ["run", "--json", "--rules", rules.to_str().unwrap()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut v = Vigil::spawn(dir, &args, &[]);
    assert!(fires(&v, &bin, "Perm probe", "before"), "probe rule works");

    // The evasion of issue 17: anyone who can write into the rules directory
    // silences a rule with an override. A world-writable file is refused.
    let disable = "- {rule: Perm probe, enabled: false}\n";
    let evil = drop_file(&rules, "50-evil.yaml", disable, 0o666, None);
    let failed = reload_failed_for(&v, &evil, 15).expect("a reload-failed alert naming the file");
    let msg = field(&failed, "vigil.reload.errors").to_string();
    assert!(
        msg.contains("insecure permissions, not loaded: rule file is writable by every user"),
        "{msg}"
    );
    assert!(
        fires(&v, &bin, "Perm probe", "after-0666"),
        "the rule stays in force"
    );

    // The same override from a file owned by another user (mode 0644).
    fs::remove_file(&evil).unwrap();
    let text = format!("{disable}{}", probe_rule("Perm probe two", &comm2));
    let foreign = drop_file(&rules, "60-nobody.yaml", &text, 0o644, Some(65534));
    let failed =
        reload_failed_for(&v, &foreign, 15).expect("a reload-failed alert naming the file");
    let msg = field(&failed, "vigil.reload.errors").to_string();
    assert!(msg.contains("rule file is owned by uid 65534"), "{msg}");
    assert!(
        fires(&v, &bin, "Perm probe", "after-nobody"),
        "the rule stays in force"
    );

    // Once root owns it, the same content loads (owner changes are changes).
    std::os::unix::fs::chown(&foreign, Some(0), Some(0)).unwrap();
    assert!(
        fires(&v, &bin2, "Perm probe two", "fixed"),
        "the file loads once root owns it"
    );
    assert_eq!(v.stop(), Some(0));
}

#[test]
fn insecure_permissions_flag_starts_on_a_world_writable_rules_directory() {
    if live_capable().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.d");
    fs::create_dir(&rules).unwrap();
    let comm = unique("permi");
    drop_file(
        &rules,
        "10-probe.yaml",
        &probe_rule("Insecure probe", &comm),
        0o644,
        None,
    );
    chmod(&rules, 0o777);
    let bins = tempfile::tempdir().unwrap();
    let bin = copy_named(bins.path(), "/bin/true", &comm);
    let args: Vec<String> = [
        "run",
        "--json",
        "--insecure-permissions",
        "--rules",
        rules.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut v = Vigil::spawn(dir, &args, &[]);
    assert!(fires(&v, &bin, "Insecure probe", "flagged"));
    assert_eq!(v.stop(), Some(0));
}

/// `vigil run` with stderr going to `log` and `VIGIL_LOG=debug`; returns once READY=1.
fn spawn_logging_into(dir: &Path, args: &[&str], log: &Path) -> Child {
    let notify_path = dir.join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .env("NOTIFY_SOCKET", &notify_path)
        .env("VIGIL_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(fs::File::create(log).unwrap())
        .spawn()
        .expect("spawn vigil");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut buf = [0u8; 512];
    loop {
        if let Ok(n) = notify.recv(&mut buf) {
            if String::from_utf8_lossy(&buf[..n]).contains("READY=1") {
                return child;
            }
        }
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "vigil never sent READY=1; log:\n{}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
    }
}

fn count(log: &Path, needle: &str) -> usize {
    let bytes = fs::read(log).unwrap_or_default();
    String::from_utf8_lossy(&bytes).matches(needle).count()
}

#[test]
fn debug_logging_into_the_watched_rules_directory_does_not_loop() {
    if live_capable().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.d");
    fs::create_dir(&rules).unwrap();
    drop_file(
        &rules,
        "10-probe.yaml",
        &probe_rule("Loop probe", &unique("loopp")),
        0o644,
        None,
    );
    let log = rules.join("vigil.log");
    let mut child = spawn_logging_into(
        dir.path(),
        &["run", "--json", "--rules", rules.to_str().unwrap()],
        &log,
    );
    // Each log line is a write into the watched directory. Give a loop time to
    // show (it would write megabytes per second), then check the log.
    std::thread::sleep(Duration::from_secs(3));
    let size = fs::metadata(&log).unwrap().len();
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        size < 256 * 1024,
        "log grew to {size} bytes in 3 s:\n{}",
        &text[..4096.min(text.len())]
    );
    assert_eq!(
        count(&log, "rules reloaded"),
        0,
        "no reload without a rule change:\n{text}"
    );
    assert!(
        count(&log, "reload: ignored filesystem events") <= 1,
        "ignored events are summarised at most once per 10 s:\n{text}"
    );

    // The watcher still sees real rule changes: exactly one reload for one.
    let marker = unique("loopm");
    drop_file(
        &rules,
        "20-marker.yaml",
        &probe_rule("Loop marker", &marker),
        0o644,
        None,
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while count(&log, "rules reloaded") == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        count(&log, "rules reloaded"),
        1,
        "{}",
        fs::read_to_string(&log).unwrap_or_default()
    );

    // SIGTERM: out within the shutdown timeout (5 s by default).
    let started = Instant::now();
    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = started.elapsed();
    eprintln!("log after 3 s: {size} bytes; SIGTERM to exit: {took:?}");
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "clean exit after SIGTERM"
    );
    assert!(took < Duration::from_secs(5), "SIGTERM took {took:?}");
    let size_at_end = fs::metadata(&log).unwrap().len();
    assert!(size_at_end < 512 * 1024, "log grew to {size_at_end} bytes");
}
