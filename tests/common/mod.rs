//! Helpers shared by the live tests of the `vigil` binary (`live_pipeline`,
//! `live_shipped_rules`, `live_outputs`): the capability check (skip, or fail under
//! VIGIL_REQUIRE_LIVE=1), a running `vigil run` child that is READY
//! ($NOTIFY_SOCKET) with its stdout lines on a channel, unique process names
//! and binary copies made by `cp` in a child (no ETXTBSY).
#![allow(dead_code)]

pub mod cli;
pub mod evasion;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The one skip-or-fail helper of every crate's tests (`vigil-testkit`).
#[allow(unused_imports)] // each test file uses some
pub use vigil_testkit::{cannot_run, live_capable, tool};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A name unique to this test process and call, at most 15 bytes.
pub fn unique(prefix: &str) -> String {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}x{n}", std::process::id() % 100_000)
}

/// A copy of `bin` at `dir/name` (its comm is `name`), made by `cp` in a
/// child process: the write fd then never lives in this multi-threaded test
/// process, where a sibling test's fork could inherit it (ETXTBSY on exec).
pub fn copy_named(dir: &Path, bin: &str, name: &str) -> PathBuf {
    let p = dir.join(name);
    let st = Command::new("cp").arg(bin).arg(&p).status().unwrap();
    assert!(st.success(), "cp {bin} {}", p.display());
    p
}

/// `output_fields[name]` of an alert.
pub fn field<'a>(v: &'a Value, name: &str) -> &'a Value {
    &v["output_fields"][name]
}

/// A running `vigil` child that has sent READY=1.
pub struct Vigil {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    /// The daemon's stderr (its log), line by line.
    log: mpsc::Receiver<String>,
    _dir: tempfile::TempDir,
}

impl Vigil {
    /// Start `vigil run --json` on the rule file text `rules` and wait for
    /// READY=1; None (skip) when live tests cannot run here.
    pub fn start(rules: &str) -> Option<Vigil> {
        live_capable()?;
        let dir = tempfile::tempdir().unwrap();
        let rules_path = dir.path().join("rules.yaml");
        std::fs::write(&rules_path, rules).unwrap();
        let args = vec![
            "run".to_string(),
            "--json".to_string(),
            "--rules".to_string(),
            rules_path.to_string_lossy().into_owned(),
        ];
        Some(Vigil::spawn(dir, &args, &[]))
    }

    /// `vigil run --json --rules PATH` with a config file of the test's own
    /// (stdout JSON only), so a host /etc/vigil/vigil.yaml cannot change the
    /// outputs; waits for READY=1. None (skip) when live tests cannot run.
    pub fn on_rules(rules: &str) -> Option<Vigil> {
        live_capable()?;
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("vigil.yaml");
        std::fs::write(&cfg, "outputs:\n  stdout: { format: json }\n").unwrap();
        let args: Vec<String> = [
            "run",
            "--json",
            "--config",
            cfg.to_str().unwrap(),
            "--rules",
            rules,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        Some(Vigil::spawn(dir, &args, &[]))
    }

    /// [`Vigil::on_rules`] on the repository's shipped rules/ directory.
    pub fn on_shipped_rules() -> Option<Vigil> {
        Vigil::on_rules(concat!(env!("CARGO_MANIFEST_DIR"), "/rules"))
    }

    /// Run `vigil ARGS` with $NOTIFY_SOCKET (in `dir`, kept alive as long as
    /// the child) and wait for READY=1. `envs` are added to its environment.
    pub fn spawn(dir: tempfile::TempDir, args: &[String], envs: &[(&str, &str)]) -> Vigil {
        let notify_path = dir.path().join("notify.sock");
        let notify = UnixDatagram::bind(&notify_path).unwrap();
        notify
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(args)
            .env("NOTIFY_SOCKET", &notify_path)
            .env("VIGIL_LOG", "warn")
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn vigil");
        // READY=1 within a minute (loading BPF on a busy machine is slow).
        let mut buf = [0u8; 512];
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = None;
        let ready = loop {
            if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
                break false;
            }
            match notify.recv(&mut buf) {
                Ok(n) if String::from_utf8_lossy(&buf[..n]).contains("READY=1") => break true,
                Ok(n) => last = Some(Ok(String::from_utf8_lossy(&buf[..n]).into_owned())),
                Err(e) => last = Some(Err(e)),
            }
        };
        if !ready {
            eprintln!("notify socket, last result: {last:?}");
            let _ = child.kill();
            let _ = child.wait();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("vigil never sent READY=1; stderr:\n{err}");
        }
        // stderr: drained (and echoed) so a chatty daemon never blocks on a
        // full pipe.
        let err = child.stderr.take().unwrap();
        let (log_tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                eprintln!("vigil stderr: {line}");
                let _ = log_tx.send(line);
            }
        });
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Vigil {
            child,
            lines: rx,
            log,
            _dir: dir,
        }
    }

    /// The first log (stderr) line for which `pred` holds, waiting up to
    /// `secs`. The log level is the child's `VIGIL_LOG` (`warn` unless the
    /// test passed another).
    pub fn wait_log(&self, secs: u64, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if pred(&line) => return Some(line),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }

    /// The first stdout line for which `pred` holds.
    pub fn wait_line(&self, secs: u64, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if pred(&line) => return Some(line),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }

    /// The first alert (parsed JSON) on stdout for which `pred` holds.
    pub fn wait_alert(&self, secs: u64, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let v: Value = serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
                    if pred(&v) {
                        return Some(v);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// Every stdout line still buffered or arriving within `secs`, parsed.
    pub fn drain(&self, secs: u64) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => out.push(
                    serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}")),
                ),
                Err(_) => return out,
            }
        }
    }

    /// SIGTERM; the exit status code (None: killed after 30 s or a signal).
    pub fn stop(&mut self) -> Option<i32> {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Vigil {
    /// A failed assertion must not leave the daemon (and its sensors) running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
