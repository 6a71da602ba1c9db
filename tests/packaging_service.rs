//! The packaged service contract, end to end, as systemd would run it: the
//! daemon started exactly as `ExecStart=` says (`vigil run --config FILE`, with
//! the shipped config's paths pointed into a temp dir) under a `$NOTIFY_SOCKET`
//! the test listens on. Checks: `READY=1` arrives; an exec of a probe binary
//! raises an alert in the configured alerts file; a rule file dropped into
//! rules.d is picked up without a signal (hot reload); a broken rule file
//! raises "vigil rule reload failed" and the old rules keep working; SIGTERM
//! sends `STOPPING=1` and exits 0.
//!
//! Needs root and BPF (skips without, fails under VIGIL_REQUIRE_LIVE=1).

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const VIGIL: &str = env!("CARGO_BIN_EXE_vigil");
/// Upper bound for each wait; only there so a broken daemon cannot hang the suite.
const WAIT: Duration = Duration::from_secs(60);

fn live_capable() -> bool {
    vigil_testkit::live_capable().is_some()
}

struct Daemon {
    child: Child,
    stderr: PathBuf,
}

impl Daemon {
    fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }
    fn assert_running(&mut self, while_: &str) {
        if let Some(st) = self.child.try_wait().unwrap() {
            panic!(
                "vigil exited ({st}) while {while_}; stderr:\n{}",
                self.stderr()
            );
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits for a datagram containing `needle` on the notify socket.
fn wait_notify(sock: &UnixDatagram, d: &mut Daemon, needle: &str) -> String {
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + WAIT;
    let mut buf = [0u8; 4096];
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        match sock.recv(&mut buf) {
            Ok(n) => {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                if msg.lines().any(|l| l == needle) {
                    return msg;
                }
                seen.push(msg);
            }
            Err(_) => d.assert_running(&format!("waiting for {needle}")),
        }
    }
    panic!(
        "no {needle} on NOTIFY_SOCKET (got {seen:?}); stderr:\n{}",
        d.stderr()
    );
}

/// Alerts (JSON lines) in the alerts file whose rule is `rule`.
fn alerts_for(file: &Path, rule: &str) -> usize {
    fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["rule"] == rule)
        .count()
}

/// Runs `probe` (once per round) until the alerts file has more than `before`
/// alerts of `rule`.
fn expect_alert(d: &mut Daemon, file: &Path, rule: &str, before: usize, probe: Option<&Path>) {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if let Some(p) = probe {
            let st = Command::new(p).status().unwrap();
            assert!(st.success());
        }
        for _ in 0..10 {
            if alerts_for(file, rule) > before {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        d.assert_running(&format!("waiting for an alert of {rule:?}"));
    }
    // Under heavy load elsewhere on the host the daemon may be shedding events; say so.
    let lost = alerts_for(file, "vigil events lost");
    let text = fs::read_to_string(file).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(20).collect();
    panic!(
        "no alert of {rule:?} in {} ({lost} \"vigil events lost\" alerts); last alerts:\n{}\nstderr:\n{}",
        file.display(),
        tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        d.stderr()
    );
}

fn probe_rule(name: &str, comm: &str) -> String {
    format!(
        "- rule: {name}\n  desc: service test probe\n  events: [exec]\n  condition: proc.name == \"{comm}\"\n  output: \"{name} ran {{proc.name}} pid={{proc.pid}}\"\n  priority: warning\n  tags: [test]\n"
    )
}

/// Saves like an editor: temp file, then rename over the target.
fn save(path: &Path, text: &str) {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().unwrap().to_string_lossy()
    ));
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, path).unwrap();
}

#[test]
fn service_ready_alerts_hot_reload_bad_reload_and_stop() {
    if !live_capable() {
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    // The packaged layout, below the temp dir.
    let rules = t.join("usr/share/vigil/rules");
    let rules_d = t.join("etc/vigil/rules.d");
    let logs = t.join("var/log/vigil");
    let bin = t.join("bin");
    for d in [&rules, &rules_d, &logs, &bin] {
        fs::create_dir_all(d).unwrap();
    }
    for e in fs::read_dir(repo.join("rules")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yaml") {
            fs::copy(&p, rules.join(p.file_name().unwrap())).unwrap();
        }
    }
    let shipped = fs::read_to_string(repo.join("packaging/vigil.yaml")).unwrap();
    let mut cfg_text = shipped.clone();
    for (from, to) in [
        ("/usr/share/vigil/rules", &rules),
        ("/etc/vigil/rules.d", &rules_d),
        ("/var/log/vigil", &logs),
    ] {
        assert!(cfg_text.contains(from), "shipped config mentions {from}");
        cfg_text = cfg_text.replace(from, to.to_str().unwrap());
    }
    let cfg = t.join("etc/vigil/vigil.yaml");
    fs::write(&cfg, cfg_text).unwrap();
    let alerts = logs.join("alerts.jsonl");

    // Probe binaries: their comm is their file name.
    let probe_a = bin.join("vgprobe-a");
    let probe_b = bin.join("vgprobe-b");
    // Copied by `cp` in a child: a write fd held by this multi-threaded test
    // process could leak into a sibling's fork and fail the exec (ETXTBSY).
    for p in [&probe_a, &probe_b] {
        let st = Command::new("cp").arg("/bin/true").arg(p).status().unwrap();
        assert!(st.success());
    }
    save(
        &rules_d.join("50-a.yaml"),
        &probe_rule("Probe A", "vgprobe-a"),
    );

    let notify_path = t.join("notify");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    let stderr = t.join("stderr.log");
    // ExecStart= of packaging/vigil.service, with the config path moved.
    let unit = fs::read_to_string(repo.join("packaging/vigil.service")).unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    let args: Vec<String> = exec
        .split_whitespace()
        .skip(1)
        .map(|a| {
            if a == "/etc/vigil/vigil.yaml" {
                cfg.to_str().unwrap().to_string()
            } else {
                a.to_string()
            }
        })
        .collect();
    assert_eq!(exec.split_whitespace().next(), Some("/usr/bin/vigil"));
    let child = Command::new(VIGIL)
        .args(&args)
        .env("NOTIFY_SOCKET", &notify_path)
        .env("VIGIL_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let mut d = Daemon { child, stderr };

    wait_notify(&notify, &mut d, "READY=1");

    // The configured alerts file gets the alert.
    expect_alert(&mut d, &alerts, "Probe A", 0, Some(&probe_a));

    // Hot reload without a signal: a new rule file in rules.d.
    save(
        &rules_d.join("60-b.yaml"),
        &probe_rule("Probe B", "vgprobe-b"),
    );
    expect_alert(&mut d, &alerts, "Probe B", 0, Some(&probe_b));

    // A broken file: reload fails loudly, old rules keep working.
    save(
        &rules_d.join("70-broken.yaml"),
        "- rule: Broken\n  desc: x\n  events: [exec]\n  condition: proc.nmae == \"x\"\n  output: x\n  priority: warning\n",
    );
    expect_alert(&mut d, &alerts, "vigil rule reload failed", 0, None);
    let a_before = alerts_for(&alerts, "Probe A");
    expect_alert(&mut d, &alerts, "Probe A", a_before, Some(&probe_a));

    // SIGTERM: STOPPING=1, flush, exit 0.
    // SAFETY: kill(2) on our own child.
    assert_eq!(
        unsafe { libc::kill(d.child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    wait_notify(&notify, &mut d, "STOPPING=1");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = d.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "vigil did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "exit status {status}; stderr:\n{}",
        d.stderr()
    );
    for l in d.stderr().lines().filter(|l| l.contains("reload")) {
        eprintln!("vigil: {l}");
    }
}
