//! The operator's command line against the kernel: `-o` overrides the config
//! file, `-T` takes a rule out of evaluation, `--dry-run` loads no BPF program.
//!
//! Why one file past ~800 lines: ten cases of the operator's flags against
//! the live daemon, sharing one set of helpers (`common`) and listeners; one
//! file keeps one test binary.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use common::{copy_named, live_capable, unique, Vigil};

/// Serve HTTP on `listener`: each request's body sent on `tx`, answered 200.
fn serve_http(listener: TcpListener, tx: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(s) = s else { continue };
            let tx = tx.clone();
            std::thread::spawn(move || serve_conn(s, tx));
        }
    });
}

fn serve_conn(mut s: TcpStream, tx: mpsc::Sender<String>) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(clone) = s.try_clone() else { return };
    let mut r = BufReader::new(clone);
    loop {
        let mut len = 0usize;
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        if tx
            .send(String::from_utf8_lossy(&body).into_owned())
            .is_err()
        {
            return;
        }
    }
}

fn probe_rule(rule: &str, comm: &str, tag: &str) -> String {
    format!(
        "- rule: {rule}\n  desc: t\n  events: [exec]\n  condition: proc.name == \"{comm}\"\n  output: \"exec of {{proc.name}}\"\n  priority: warning\n  tags: [{tag}]\n"
    )
}

fn exec_as(name: &str) {
    let bin = tempfile::tempdir().unwrap();
    let p = copy_named(bin.path(), "/bin/true", name);
    assert!(Command::new(&p).status().unwrap().success());
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[test]
fn dash_o_overrides_the_webhook_url_of_the_config_file() {
    if live_capable().is_none() {
        return;
    }
    let name = unique("ovr");
    let rule = format!("Override probe {name}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yaml"), probe_rule(&rule, &name, "t")).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    serve_http(listener, tx);
    let cfg = dir.path().join("vigil.yaml");
    // The file's webhook goes nowhere (port 9, discard, closed here).
    std::fs::write(
        &cfg,
        "rules: [rules.yaml]\noutputs:\n  stdout: { format: json }\n  webhook: { url: \"http://127.0.0.1:9/file\", retry: { max_attempts: 1 } }\n",
    )
    .unwrap();
    let url = format!("outputs.webhook.url=http://127.0.0.1:{port}/from-flag");
    let v = Vigil::spawn(
        tempfile::tempdir().unwrap(),
        &args(&["run", "--config", cfg.to_str().unwrap(), "-o", &url]),
        &[],
    );
    exec_as(&name);
    v.wait_alert(20, |a| a["rule"] == rule.as_str())
        .expect("the alert on stdout");
    let body = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the webhook at the -o URL got the alert");
    let j: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(j["rule"], rule.as_str());
}

#[test]
fn dash_t_removes_a_tagged_rule_from_evaluation() {
    if live_capable().is_none() {
        return;
    }
    let off = unique("toff");
    let on = unique("ton");
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        format!(
            "{}\n{}",
            probe_rule(&format!("Tagged off {off}"), &off, "noisy"),
            probe_rule(&format!("Kept on {on}"), &on, "kept")
        ),
    )
    .unwrap();
    let v = Vigil::spawn(
        dir,
        &args(&[
            "run",
            "--json",
            "--rules",
            rules.to_str().unwrap(),
            "-T",
            "noisy",
        ]),
        &[],
    );
    // The disabled rule's process first, then the marker: once the marker's
    // alert is out, the first exec has been through the pipeline.
    exec_as(&off);
    exec_as(&on);
    let first = v.wait_alert(20, |_| true).expect("an alert");
    assert_eq!(
        first["rule"],
        format!("Kept on {on}").as_str(),
        "the -T rule must not fire before the marker"
    );
}

#[test]
fn dry_run_loads_no_bpf_program() {
    if live_capable().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, probe_rule("Dry probe", "dryprobe", "t")).unwrap();
    // strace records every bpf(2) call of vigil and its threads.
    let trace = dir.path().join("trace");
    let o = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=bpf", "-o"])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_vigil"))
        .args(["run", "--dry-run", "--rules"])
        .arg(&rules)
        .output()
        .expect("strace (apt-get install strace)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("nothing attached"));
    let t = std::fs::read_to_string(&trace).unwrap();
    assert!(
        !t.contains("BPF_PROG_LOAD") && !t.contains("BPF_LINK_CREATE"),
        "{t}"
    );
}

/// `vigil run --config CFG` with its log (VIGIL_LOG=info) in `log`; killed
/// when dropped, so a failed assertion leaves no daemon behind.
struct Logged(std::process::Child);

impl Logged {
    fn run(cfg: &std::path::Path, log: &std::path::Path) -> Logged {
        let child = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(["run", "--config", cfg.to_str().unwrap()])
            .env("VIGIL_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        Logged(child)
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The value of `key=` in a log line.
fn log_value<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(&format!(" {key}="))? + key.len() + 2;
    line[at..].split_whitespace().next()
}

/// Waits until the log holds `n` lines containing `what`; those lines.
fn wait_log(log: &std::path::Path, what: &str, n: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let hits: Vec<String> = text
            .lines()
            .filter(|l| l.contains(what))
            .map(String::from)
            .collect();
        if hits.len() >= n {
            return hits;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {n}x `{what}` in:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The reload log: start-up `content=` is the next reload's `previous=`,
/// `load_ms` has one decimal, a config-only edit logs no rule reload, a
/// broken config's alert names the file once, and a fixed config is logged.
#[test]
fn reload_logs_are_consistent() {
    if live_capable().is_none() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let rules_dir = d.path().join("rules.d");
    std::fs::create_dir(&rules_dir).unwrap();
    let name = unique("rlog");
    std::fs::write(
        rules_dir.join("a.yaml"),
        probe_rule("Log probe", &name, "t"),
    )
    .unwrap();
    let cfg_dir = d.path().join("etc");
    std::fs::create_dir(&cfg_dir).unwrap();
    let cfg = cfg_dir.join("vigil.yaml");
    let alerts = d.path().join("alerts.jsonl");
    let config = |extra: &str| {
        format!(
            "rules: [{}]\noutputs:\n  file: {{ path: {}{extra} }}\n",
            rules_dir.display(),
            alerts.display()
        )
    };
    std::fs::write(&cfg, config("")).unwrap();
    let log = d.path().join("vigil.log");
    let _guard = Logged::run(&cfg, &log);
    let start = wait_log(&log, "vigil running", 1).remove(0);
    assert_eq!(
        log_value(&start, "config"),
        Some(cfg.to_str().unwrap()),
        "{start}"
    );
    let content = log_value(&start, "content").expect("content=").to_string();

    // A rule edit: its `previous=` is the start-up `content=`.
    std::fs::write(
        rules_dir.join("b.yaml"),
        probe_rule("Log probe 2", &name, "t"),
    )
    .unwrap();
    let r = wait_log(&log, "rules reloaded", 1).remove(0);
    assert_eq!(log_value(&r, "previous"), Some(content.as_str()), "{r}");
    let ms = log_value(&r, "load_ms").unwrap();
    assert!(ms.split('.').nth(1).is_some_and(|f| f.len() == 1), "{r}");

    // A config-only edit: the config is re-read, no "rules reloaded".
    std::fs::write(&cfg, config(", queue_size: 500")).unwrap();
    wait_log(&log, "config reload: config file changed", 1);
    assert_eq!(wait_log(&log, "rules reloaded", 1).len(), 1);

    // Broken, then fixed.
    std::fs::write(&cfg, "outputs: [\n").unwrap();
    let e = wait_log(&log, "config reload:", 2).remove(1);
    assert_eq!(e.matches("vigil.yaml").count(), 1, "{e}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let failed = loop {
        let text = std::fs::read_to_string(&alerts).unwrap_or_default();
        if let Some(l) = text
            .lines()
            .find(|l| l.contains("vigil config reload failed"))
        {
            break l.to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no config-failed alert"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let a: serde_json::Value = serde_json::from_str(&failed).unwrap();
    assert_eq!(
        a["output"].as_str().unwrap().matches("vigil.yaml").count(),
        1,
        "{a}"
    );
    std::fs::write(&cfg, config("")).unwrap();
    wait_log(&log, "the config loads again and is in force", 1);
}

/// GET `path` on 127.0.0.1:`port`: (status code, body), None when nothing listens.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut c = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut s = String::new();
    c.read_to_string(&mut s).ok()?;
    let code = s.split(' ').nth(1)?.parse().ok()?;
    let body = s.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}

/// Polls /healthz until its status is `want`; the body.
fn wait_health(port: u16, want: u16) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut last = None;
    while std::time::Instant::now() < deadline {
        last = http_get(port, "/healthz");
        if let Some((code, body)) = &last {
            if *code == want {
                return body.clone();
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("/healthz never answered {want}; last: {last:?}");
}

/// `/healthz` is 503 while the webhook output has abandoned alerts after its
/// retries and 200 again once it delivers; shutdown logs one summary line.
#[test]
fn healthz_follows_the_webhook_and_shutdown_summarises() {
    if live_capable().is_none() {
        return;
    }
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let down = Arc::new(AtomicBool::new(true));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_port = listener.local_addr().unwrap().port();
    {
        let down = down.clone();
        std::thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(mut s) = s else { continue };
                let down = down.clone();
                std::thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut buf = [0u8; 65536];
                    // One request per connection is enough here: answer, close.
                    let _ = s.read(&mut buf);
                    let resp: &[u8] = if down.load(Ordering::SeqCst) {
                        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    } else {
                        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    };
                    let _ = s.write_all(resp);
                });
            }
        });
    }
    let metrics_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let name = unique("hlth");
    let d = tempfile::tempdir().unwrap();
    let rules = d.path().join("rules.yaml");
    std::fs::write(&rules, probe_rule("Health probe", &name, "t")).unwrap();
    let cfg_dir = d.path().join("etc");
    std::fs::create_dir(&cfg_dir).unwrap();
    let cfg = cfg_dir.join("vigil.yaml");
    std::fs::write(
        &cfg,
        format!(
            "rules: [{}]\nmetrics: 127.0.0.1:{metrics_port}\noutputs:\n  webhook:\n    url: http://127.0.0.1:{hook_port}/a\n    retry: {{ max_attempts: 2, initial_backoff: 100ms, max_backoff: 200ms }}\n",
            rules.display()
        ),
    )
    .unwrap();
    let log = d.path().join("vigil.log");
    let mut guard = Logged::run(&cfg, &log);
    assert_eq!(wait_health(metrics_port, 200), "ok\n");
    exec_as(&name);
    let why = wait_health(metrics_port, 503);
    assert!(why.contains("output webhook"), "{why}");
    down.store(false, Ordering::SeqCst);
    exec_as(&name);
    wait_health(metrics_port, 200);

    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(guard.0.id() as i32, libc::SIGTERM) };
    let status = guard.0.wait().unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let summary: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("shutdown summary"))
        .collect();
    assert_eq!(summary.len(), 1, "{text}");
    assert!(
        summary[0].contains("events_seen={") && summary[0].contains("\"exec\": "),
        "{}",
        summary[0]
    );
    assert!(
        summary[0].contains("alerts={\"Warning\": 2}"),
        "{}",
        summary[0]
    );
    assert!(summary[0].contains("lost="), "{}", summary[0]);
}

/// `--duration` stops the daemon by itself, exit 0, through the normal
/// shutdown (its summary line is logged).
#[test]
fn duration_stops_the_daemon() {
    if live_capable().is_none() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let rules = d.path().join("rules.yaml");
    std::fs::write(&rules, probe_rule("Duration probe", "durprobe", "t")).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args([
            "run",
            "--rules",
            rules.to_str().unwrap(),
            "--duration",
            "2s",
        ])
        .env("VIGIL_LOG", "info")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("--duration reached: shutting down"), "{err}");
    assert_eq!(err.matches("shutdown summary").count(), 1, "{err}");
}

/// A minimal SMTP server: every mail's DATA sent on `tx`.
fn serve_smtp(listener: TcpListener, tx: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let Ok(clone) = s.try_clone() else { return };
                let mut r = BufReader::new(clone);
                let _ = s.write_all(b"220 test ESMTP\r\n");
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let cmd = line.trim_end().to_ascii_uppercase();
                    if cmd.starts_with("DATA") {
                        let _ = s.write_all(b"354 go on\r\n");
                        let mut data = String::new();
                        loop {
                            let mut l = String::new();
                            if r.read_line(&mut l).unwrap_or(0) == 0 {
                                return;
                            }
                            if l == ".\r\n" {
                                break;
                            }
                            data.push_str(&l);
                        }
                        let _ = s.write_all(b"250 queued\r\n");
                        let _ = tx.send(data);
                    } else if cmd.starts_with("QUIT") {
                        let _ = s.write_all(b"221 bye\r\n");
                        return;
                    } else {
                        let _ = s.write_all(b"250 ok\r\n");
                    }
                }
            });
        }
    });
}

fn subject(mail: &str) -> &str {
    mail.lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .unwrap_or("")
        .trim_end()
}

/// Issue 15: the first alert of a quiet period is mailed at once (within
/// 5 s, not after the digest window); a burst of 20 after it is one digest.
#[test]
fn first_email_at_once_and_a_burst_as_one_digest() {
    if live_capable().is_none() {
        return;
    }
    let smtp = TcpListener::bind("127.0.0.1:0").unwrap();
    let smtp_port = smtp.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    serve_smtp(smtp, tx);
    let name = unique("mail");
    let d = tempfile::tempdir().unwrap();
    let rules = d.path().join("rules.yaml");
    std::fs::write(&rules, probe_rule("Mail probe", &name, "t")).unwrap();
    let cfg_dir = d.path().join("etc");
    std::fs::create_dir(&cfg_dir).unwrap();
    let cfg = cfg_dir.join("vigil.yaml");
    std::fs::write(
        &cfg,
        format!(
            "rules: [{}]\noutputs:\n  stdout: {{ format: json }}\n  email:\n    smtp: smtp://127.0.0.1:{smtp_port}\n    tls: none\n    from: vigil@test.invalid\n    to: [sec@test.invalid]\n    digest_window: 4s\n",
            rules.display()
        ),
    )
    .unwrap();
    let v = Vigil::spawn(
        tempfile::tempdir().unwrap(),
        &args(&["run", "--config", cfg.to_str().unwrap()]),
        &[],
    );
    let bin = tempfile::tempdir().unwrap();
    let exe = copy_named(bin.path(), "/bin/true", &name);
    let started = std::time::Instant::now();
    assert!(Command::new(&exe).status().unwrap().success());
    let first = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the first mail within 5 s");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        subject(&first),
        "[vigil] Warning Mail probe on ".to_string() + &hostname_of(&v),
        "{first}"
    );
    for _ in 0..20 {
        assert!(Command::new(&exe).status().unwrap().success());
    }
    let digest = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the digest after the window");
    assert!(
        subject(&digest).ends_with("(+19 more alerts)"),
        "{}",
        subject(&digest)
    );
    assert!(digest.contains("vigil raised 20 alerts"), "{digest}");
}

/// The hostname the daemon puts in alerts (from its first stdout alert).
fn hostname_of(v: &Vigil) -> String {
    v.wait_alert(10, |_| true)
        .and_then(|a| a["hostname"].as_str().map(String::from))
        .unwrap_or_default()
}

/// Issue 16: `vigil run` handles signals with `daemon::Signals` (the handler
/// `tests/reload_daemon.rs` tests). The first SIGTERM (SIGINT) starts the
/// flush; a second one during it exits at once with 128 + its number: 143
/// for SIGTERM, 130 for SIGINT. The flush is held open by a webhook server
/// that accepts the alert's connection and never answers (request timeout
/// and `shutdown_timeout` 120 s).
#[test]
fn a_second_signal_during_the_flush_exits_with_its_own_code() {
    if live_capable().is_none() {
        return;
    }
    for (sig, name, code) in [
        (libc::SIGTERM, "SIGTERM", 143),
        (libc::SIGINT, "SIGINT", 130),
    ] {
        let hook = TcpListener::bind("127.0.0.1:0").unwrap();
        let hook_port = hook.local_addr().unwrap().port();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for s in hook.incoming() {
                let Ok(s) = s else { continue };
                held.push(s);
                if tx.send(()).is_err() {
                    return;
                }
            }
        });
        let comm = unique("sig2");
        let d = tempfile::tempdir().unwrap();
        let rules = d.path().join("rules.yaml");
        std::fs::write(&rules, probe_rule("Signal probe", &comm, "t")).unwrap();
        let cfg_dir = d.path().join("etc");
        std::fs::create_dir(&cfg_dir).unwrap();
        let cfg = cfg_dir.join("vigil.yaml");
        std::fs::write(
            &cfg,
            format!(
                "rules: [{}]\nshutdown_timeout: 120s\noutputs:\n  webhook:\n    url: http://127.0.0.1:{hook_port}/a\n    timeout: 120s\n",
                rules.display()
            ),
        )
        .unwrap();
        let log = d.path().join("vigil.log");
        let mut daemon = Logged::run(&cfg, &log);
        wait_log(&log, "vigil running", 1);
        exec_as(&comm);
        rx.recv_timeout(Duration::from_secs(20))
            .expect("the alert's webhook request is in flight");
        let pid = daemon.0.id() as i32;
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(pid, sig) };
        wait_log(&log, &format!("{name}: shutting down"), 1);
        // SAFETY: as above.
        unsafe { libc::kill(pid, sig) };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(st) = daemon.0.try_wait().unwrap() {
                break st;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{name}: no exit on the second signal (the flush waits 120 s)"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(status.code(), Some(code), "{name}: {status:?}");
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.contains(&format!(
                "second {name}: exiting without finishing the flush"
            )),
            "{text}"
        );
    }
}

/// Issue 15: the rule selection follows config reloads without a restart.
/// The config's `select:` changes from nothing to `enable_tags: [a]`: the
/// rule its file disables (tag `a`) starts to fire, the other (tag `b`)
/// stops (checked with a marker rule, also tagged `a`, fired after it).
#[test]
fn select_follows_a_config_reload() {
    if live_capable().is_none() {
        return;
    }
    let (a, b, c) = (unique("sela"), unique("selb"), unique("selc"));
    let d = tempfile::tempdir().unwrap();
    let rules = d.path().join("rules.d");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("r.yaml"),
        format!(
            "{}  enabled: false\n\n{}\n{}",
            probe_rule("Select A", &a, "a"),
            probe_rule("Select B", &b, "b"),
            probe_rule("Select marker", &c, "a")
        ),
    )
    .unwrap();
    let etc = d.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    let cfg = etc.join("vigil.yaml");
    let config = |select: &str| {
        format!(
            "rules: [{}]\noutputs:\n  stdout: {{ format: json }}\n{select}",
            rules.display()
        )
    };
    std::fs::write(&cfg, config("")).unwrap();
    let v = Vigil::spawn(
        tempfile::tempdir().unwrap(),
        &args(&["run", "--config", cfg.to_str().unwrap()]),
        &[],
    );
    // A's process first, B's as the marker: B's alert comes first.
    exec_as(&a);
    exec_as(&b);
    let first = v.wait_alert(20, |_| true).expect("an alert");
    assert_eq!(first["rule"], "Select B", "{first}");

    std::fs::write(&cfg, config("select: { enable_tags: [a] }\n")).unwrap();
    // The reload lands when A's exec raises its alert.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        exec_as(&a);
        if v.wait_alert(1, |x| x["rule"] == "Select A").is_some() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Select A never fired after the config reload"
        );
    }
    // B is off now: nothing from B before the marker's alert.
    exec_as(&b);
    exec_as(&c);
    let seen = std::cell::RefCell::new(Vec::new());
    v.wait_alert(20, |x| {
        seen.borrow_mut().push(x["rule"].to_string());
        x["rule"] == "Select marker"
    })
    .expect("the marker's alert");
    let seen = seen.into_inner();
    assert!(!seen.iter().any(|r| r.contains("Select B")), "{seen:?}");
}

/// A counter of a Prometheus scrape (`name{labels} value`), 0 when absent.
fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

/// Issue 15: a rule taken out with `-T` leaves the kernel filter, not only
/// evaluation. Two open rules scoped to a process name each; the one tagged
/// `noisy` is disabled. `explain` with the same flag keeps only the
/// marker's name; live, the noisy process's 50+ opens pass the kernel
/// filter zero times: once the marker process's last open has raised its
/// alert, the kernel's passed-opens counter has grown by exactly the
/// marker's alerts (every open that passes is the marker's, and each raises
/// one).
#[test]
fn dash_t_keeps_a_disabled_rule_out_of_the_kernel_filter() {
    if live_capable().is_none() {
        return;
    }
    let (noisy, marker) = (unique("knoisy"), unique("kmark"));
    let rule = |name: &str, comm: &str, tag: &str| {
        format!(
            "- rule: {name}\n  desc: t\n  events: [open]\n  condition: proc.name == \"{comm}\"\n  output: \"open {{file.path}} by {{proc.name}}\"\n  priority: warning\n  tags: [{tag}]\n"
        )
    };
    let d = tempfile::tempdir().unwrap();
    let rules = d.path().join("rules.yaml");
    std::fs::write(
        &rules,
        format!(
            "{}\n{}",
            rule("Noisy opens", &noisy, "noisy"),
            rule("Marker opens", &marker, "kept")
        ),
    )
    .unwrap();

    let o = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["explain", "--format", "json", "-T", "noisy", "--rules"])
        .arg(&rules)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let comms = &j["types"]["open"]["sets"]["comms"];
    assert_eq!(comms, &serde_json::json!([marker.clone()]), "{j}");

    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let etc = d.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    let cfg = etc.join("vigil.yaml");
    std::fs::write(
        &cfg,
        format!("metrics: 127.0.0.1:{port}\noutputs:\n  stdout: {{ format: json }}\n"),
    )
    .unwrap();
    let v = Vigil::spawn(
        tempfile::tempdir().unwrap(),
        &args(&[
            "run",
            "--config",
            cfg.to_str().unwrap(),
            "--rules",
            rules.to_str().unwrap(),
            "-T",
            "noisy",
        ]),
        &[],
    );
    let passed = || {
        let (_, body) = http_get(port, "/metrics").expect("metrics answer");
        metric(&body, "vigil_kernel_events_passed_total{type=\"open\"}")
    };
    let before = passed();
    let bin = tempfile::tempdir().unwrap();
    let cat_noisy = copy_named(bin.path(), "/bin/cat", &noisy);
    let o = Command::new(&cat_noisy)
        .args(std::iter::repeat_n("/etc/hostname", 50))
        .output()
        .unwrap();
    assert!(o.status.success());
    let cat_marker = copy_named(bin.path(), "/bin/cat", &marker);
    assert!(Command::new(&cat_marker)
        .arg("/etc/hostname")
        .output()
        .unwrap()
        .status
        .success());
    // Every alert up to the marker's open of /etc/hostname (its last open).
    let alerts = std::cell::RefCell::new(Vec::new());
    v.wait_alert(20, |a| {
        alerts.borrow_mut().push(a["rule"].to_string());
        a["rule"] == "Marker opens" && a["output_fields"]["file.path"] == "/etc/hostname"
    })
    .expect("the marker's open of /etc/hostname");
    let alerts = alerts.into_inner();
    assert!(
        alerts.iter().all(|r| r.contains("Marker opens")),
        "{alerts:?}"
    );
    // The counters reach the scrape on the daemon's next tick: wait until the
    // marker's opens are all in, then nothing else may be.
    let want = alerts.len() as u64;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let grown = loop {
        let n = passed() - before;
        if n >= want {
            break n;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "passed opens grew by {n}, want {want}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        grown, want,
        "only the marker's opens pass the kernel filter"
    );
}
