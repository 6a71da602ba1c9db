//! Live test of the five alert outputs of `vigil run --config FILE`: one
//! alert raised by a real exec reaches stdout (JSON), a file, syslog (RFC 5424
//! over UDP to a listener of this test), a webhook (an HTTP server of this
//! test that only starts listening 2 s after the alert, so delivery needs the
//! retries; HMAC signature checked) and email (a minimal SMTP server of this
//! test, digest window 1 s), each exactly once, and SIGTERM exits 0. Needs
//! root, BPF and BTF; skipped with a message otherwise, unless
//! VIGIL_REQUIRE_LIVE=1 (CI), which makes that a failure.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use common::{copy_named, field, live_capable, unique, Vigil};

const SECRET: &str = "e2e-webhook-key";
const HOST: &str = "vigil-e2e";

/// HMAC-SHA256 (RFC 2104) over sha2, lower-case hex.
fn hmac_sha256_hex(key: &[u8], msg: &[u8]) -> String {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    let outer = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    outer.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn hmac_matches_rfc4231_case_2() {
    assert_eq!(
        hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

/// A free loopback TCP port (bound, then released).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// GET /metrics from the daemon's exporter.
fn scrape(port: u16) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut s = String::new();
    c.read_to_string(&mut s).unwrap();
    s
}

/// One HTTP request as the test server saw it.
#[derive(Debug)]
struct HttpRequest {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn read_http(s: &mut TcpStream) -> Option<HttpRequest> {
    let mut r = BufReader::new(s.try_clone().ok()?);
    let mut request_line = String::new();
    if r.read_line(&mut request_line).ok()? == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        if r.read_line(&mut l).ok()? == 0 {
            return None;
        }
        let l = l.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    Some(HttpRequest {
        request_line: request_line.trim_end().to_string(),
        headers,
        body,
    })
}

/// Serve HTTP on `listener`: every request answered 200 and sent on `tx`.
fn serve_http(listener: TcpListener, tx: mpsc::Sender<HttpRequest>) {
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            // keep-alive connections: answer every request on the stream
            while let Some(req) = read_http(&mut s) {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
                if tx.send(req).is_err() {
                    return;
                }
            }
        }
    });
}

/// One mail as the test SMTP server received it.
#[derive(Debug)]
struct Mail {
    commands: Vec<String>,
    data: String,
}

impl Mail {
    /// Header value (unfolded), by case-insensitive name.
    fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        let mut unfolded: Vec<String> = Vec::new();
        for l in head.split("\r\n") {
            if l.starts_with([' ', '\t']) {
                if let Some(last) = unfolded.last_mut() {
                    last.push(' ');
                    last.push_str(l.trim());
                }
            } else {
                unfolded.push(l.to_string());
            }
        }
        unfolded.iter().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// A minimal SMTP server (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT):
/// every mail is sent on `tx`.
fn serve_smtp(listener: TcpListener, tx: mpsc::Sender<Mail>) {
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let _ = s.write_all(b"220 e2e.test ESMTP test\r\n");
            let mut commands = Vec::new();
            loop {
                let mut l = String::new();
                match r.read_line(&mut l) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let cmd = l.trim_end().to_string();
                let verb = cmd
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_ascii_uppercase();
                commands.push(cmd);
                let reply: &[u8] = match verb.as_str() {
                    "EHLO" => b"250-e2e.test\r\n250 8BITMIME\r\n",
                    "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
                    "DATA" => {
                        let _ = s.write_all(b"354 end with <CRLF>.<CRLF>\r\n");
                        let mut data = String::new();
                        loop {
                            let mut dl = String::new();
                            match r.read_line(&mut dl) {
                                Ok(0) | Err(_) => return,
                                Ok(_) => {}
                            }
                            if dl == ".\r\n" {
                                break;
                            }
                            // undo dot-stuffing
                            data.push_str(dl.strip_prefix('.').unwrap_or(&dl));
                        }
                        let mail = Mail {
                            commands: std::mem::take(&mut commands),
                            data,
                        };
                        if tx.send(mail).is_err() {
                            return;
                        }
                        b"250 OK queued\r\n"
                    }
                    "QUIT" => {
                        let _ = s.write_all(b"221 bye\r\n");
                        break;
                    }
                    _ => b"502 not implemented\r\n",
                };
                if s.write_all(reply).is_err() {
                    break;
                }
            }
        }
    });
}

/// Every item `rx` yields within `secs` after the first one (which must
/// come within `first_secs`).
fn collect<T>(rx: &mpsc::Receiver<T>, first_secs: u64, secs: u64) -> Vec<T> {
    let mut out = Vec::new();
    if let Ok(x) = rx.recv_timeout(Duration::from_secs(first_secs)) {
        out.push(x);
        while let Ok(x) = rx.recv_timeout(Duration::from_secs(secs)) {
            out.push(x);
        }
    }
    out
}

#[test]
fn one_real_alert_reaches_all_five_outputs_once() {
    if live_capable().is_none() {
        return;
    }
    let name = unique("out");
    let rule = format!("E2E outputs {name}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.yaml"),
        format!(
            "- rule: {rule}\n  desc: e2e\n  events: [exec]\n  condition: proc.name == \"{name}\"\n  output: \"exec of {{proc.name}} pid={{proc.pid}} cmdline={{proc.cmdline}}\"\n  priority: warning\n  tags: [e2e, outputs]\n"
        ),
    )
    .unwrap();

    // syslog: a UDP listener collecting datagrams
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let syslog_port = udp.local_addr().unwrap().port();
    let (syslog_tx, syslog_rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = udp.recv(&mut buf) {
            if syslog_tx
                .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                .is_err()
            {
                break;
            }
        }
    });
    // email: SMTP server up from the start
    let smtp = TcpListener::bind("127.0.0.1:0").unwrap();
    let smtp_port = smtp.local_addr().unwrap().port();
    let (mail_tx, mail_rx) = mpsc::channel();
    serve_smtp(smtp, mail_tx);
    // webhook: a port nobody listens on yet
    let hook_port = free_port();
    let metrics_port = free_port();

    let alerts_file = dir.path().join("out/alerts.jsonl");
    let cfg = dir.path().join("vigil.yaml");
    std::fs::write(
        &cfg,
        format!(
            r#"rules: [rules.yaml]
hostname: {HOST}
metrics: 127.0.0.1:{metrics_port}
shutdown_timeout: 15s
outputs:
  stdout:
    format: json
  file:
    path: {file}
    format: json
  syslog:
    address: "udp://127.0.0.1:{syslog_port}"
    format: rfc5424
    facility: local3
    payload: text
    app_name: vigil
  webhook:
    url: "http://127.0.0.1:{hook_port}/alerts"
    headers: {{ X-E2E: "yes" }}
    secret_env: VIGIL_E2E_WEBHOOK_SECRET
    timeout: 3s
    retry: {{ max_attempts: 0, initial_backoff: 200ms, max_backoff: 1s }}
  email:
    smtp: "smtp://127.0.0.1:{smtp_port}"
    tls: none
    from: "vigil <vigil@e2e.test>"
    to: ["secops@e2e.test"]
    digest_window: 1s
    timeout: 10s
    retry: {{ max_attempts: 0, initial_backoff: 200ms, max_backoff: 1s }}
"#,
            file = alerts_file.display()
        ),
    )
    .unwrap();

    let args: Vec<String> = ["run", "--config", cfg.to_str().unwrap()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut v = Vigil::spawn(
        tempfile::tempdir().unwrap(),
        &args,
        &[("VIGIL_E2E_WEBHOOK_SECRET", SECRET)],
    );

    // The real event: exec of a copy of bash under the unique name.
    let bin_dir = tempfile::tempdir().unwrap();
    let bash = copy_named(bin_dir.path(), "/bin/bash", &name);
    let mut trig = Command::new(&bash)
        .args(["-c", "true e2e"])
        .spawn()
        .unwrap();
    let pid = trig.id();
    assert!(trig.wait().unwrap().success());

    // stdout
    let a = v
        .wait_alert(20, |a| a["rule"] == rule.as_str())
        .expect("the alert on stdout");
    assert_eq!(a["priority"], "Warning");
    assert_eq!(a["hostname"], HOST);
    assert_eq!(a["source"], "syscall");
    assert_eq!(field(&a, "proc.name"), name.as_str());
    assert_eq!(field(&a, "proc.pid").as_u64(), Some(pid as u64));
    assert_eq!(
        a["output"],
        format!(
            "exec of {name} pid={pid} cmdline={} -c true e2e",
            bash.display()
        )
    );
    assert_eq!(a["tags"], serde_json::json!(["e2e", "outputs"]));

    // The webhook comes up only after a delivery attempt failed (the
    // failure counter says so): delivery needs a retry.
    let failed_once = |body: &str| {
        body.lines()
            .find_map(|l| l.strip_prefix("vigil_sink_delivery_failures_total{sink=\"webhook\"} "))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .is_some_and(|n| n >= 1)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !failed_once(&scrape(metrics_port)) {
        assert!(
            Instant::now() < deadline,
            "no failed webhook delivery was counted"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let hook = TcpListener::bind(("127.0.0.1", hook_port)).unwrap();
    let (hook_tx, hook_rx) = mpsc::channel();
    serve_http(hook, hook_tx);

    let hooks = collect(&hook_rx, 20, 3);
    let mails = collect(&mail_rx, 20, 3);
    let syslogs = collect(&syslog_rx, 20, 1);

    // The router's counters: every sink delivered the alert once; the
    // webhook only after failed attempts (nothing listened at first).
    let want_sent: Vec<String> = ["stdout", "file", "syslog", "webhook", "email"]
        .iter()
        .map(|s| format!("vigil_sink_alerts_sent_total{{sink=\"{s}\"}} 1\n"))
        .collect();
    let mut body = String::new();
    for _ in 0..75 {
        body = scrape(metrics_port);
        if want_sent.iter().all(|w| body.contains(w.as_str())) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for w in &want_sent {
        assert!(body.contains(w.as_str()), "no `{}` in:\n{body}", w.trim());
    }
    let hook_failures: u64 = body
        .lines()
        .find_map(|l| l.strip_prefix("vigil_sink_delivery_failures_total{sink=\"webhook\"} "))
        .and_then(|n| n.trim().parse().ok())
        .expect("webhook failure counter");
    assert!(hook_failures >= 1, "the webhook was down at first:\n{body}");

    assert_eq!(v.stop(), Some(0), "SIGTERM exits 0");
    let more_stdout = v.drain(2);

    // stdout: exactly once
    assert!(
        more_stdout.iter().all(|x| x["rule"] != rule.as_str()),
        "alert repeated on stdout: {more_stdout:?}"
    );

    // file: the same alert object, once
    let text = std::fs::read_to_string(&alerts_file).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert_eq!(lines[0], a);

    // syslog: one RFC 5424 frame; PRI = local3 (19) * 8 + warning (4)
    let syslogs: Vec<String> = syslogs.into_iter().chain(syslog_rx.try_iter()).collect();
    assert_eq!(syslogs.len(), 1, "{syslogs:?}");
    let m = &syslogs[0];
    let (pri, rest) = m
        .strip_prefix('<')
        .and_then(|r| r.split_once('>'))
        .expect("PRI");
    assert_eq!(pri, "156", "{m}");
    let parts: Vec<&str> = rest.splitn(7, ' ').collect();
    assert_eq!(parts[0], "1", "version: {m}");
    assert!(parts[1].ends_with('Z') && parts[1].contains('T'), "{m}");
    assert_eq!(parts[2], HOST, "{m}");
    assert_eq!(parts[3], "vigil", "{m}");
    assert_eq!(parts[4], v.child.id().to_string(), "PROCID: {m}");
    assert_eq!(parts[5], "alert", "MSGID: {m}");
    let sd = parts[6];
    let (sd, msg) = sd.split_once("] ").expect("structured data then MSG");
    assert!(
        sd.starts_with(&format!(
            "[vigil@32473 rule=\"{rule}\" priority=\"Warning\" source=\"syscall\" tags=\"e2e,outputs\""
        )),
        "{m}"
    );
    assert!(sd.contains(&format!("proc.name=\"{name}\"")), "{m}");
    assert!(sd.contains(&format!("proc.pid=\"{pid}\"")), "{m}");
    assert_eq!(msg, a["output"].as_str().unwrap());

    // webhook: one POST, after the retries, signed
    let hooks: Vec<HttpRequest> = hooks.into_iter().chain(hook_rx.try_iter()).collect();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    let h = &hooks[0];
    assert_eq!(h.request_line, "POST /alerts HTTP/1.1");
    assert_eq!(h.header("content-type"), Some("application/json"));
    assert_eq!(h.header("x-e2e"), Some("yes"));
    let want = format!("sha256={}", hmac_sha256_hex(SECRET.as_bytes(), &h.body));
    assert_eq!(h.header("x-vigil-signature"), Some(want.as_str()));
    let body: Value = serde_json::from_slice(&h.body).unwrap();
    for k in [
        "time",
        "rule",
        "priority",
        "output",
        "output_fields",
        "tags",
        "source",
        "hostname",
    ] {
        assert!(body.get(k).is_some(), "webhook body lacks {k}: {body}");
    }
    assert_eq!(body, a);

    // email: one mail, subject names the rule
    let mails: Vec<Mail> = mails.into_iter().chain(mail_rx.try_iter()).collect();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    assert!(
        mail.commands.iter().any(|c| c
            .to_ascii_uppercase()
            .starts_with("MAIL FROM:<VIGIL@E2E.TEST>")),
        "{:?}",
        mail.commands
    );
    assert!(
        mail.commands.iter().any(|c| c
            .to_ascii_uppercase()
            .starts_with("RCPT TO:<SECOPS@E2E.TEST>")),
        "{:?}",
        mail.commands
    );
    let subject = mail.header("subject").expect("Subject");
    assert_eq!(subject, format!("[vigil] Warning {rule} on {HOST}"));
    assert!(subject.contains(&rule));
    let from = mail.header("from").expect("From");
    assert!(from.contains("vigil@e2e.test"), "{from}");
    assert!(mail.header("to").expect("To").contains("secops@e2e.test"));
    let date = mail.header("date").expect("Date");
    assert!(date.contains(" +0000") || date.contains("GMT"), "{date}");
    let mid = mail.header("message-id").expect("Message-ID");
    assert!(
        mid.starts_with('<') && mid.ends_with(&format!("@{HOST}>")),
        "{mid}"
    );
}
