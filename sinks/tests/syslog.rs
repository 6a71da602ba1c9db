//! Syslog sink against real sockets on loopback: UDP and unix datagram
//! receivers, and a TCP receiver that parses RFC 6587 octet-counted frames,
//! closes the connection mid-stream and expects the sink to reconnect. TCP
//! delivery is counted only when the receiver acknowledged it: a receiver
//! that never reads, or dies with unread data, yields failures, retries and
//! a loss alert, never "sent".

mod common;

use std::time::Duration;

use common::*;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, UdpSocket, UnixDatagram};
use vigil_engine::Priority;
use vigil_sinks::Router;

/// Checks an RFC 5424 message and returns (pri, msg part).
fn parse_5424(m: &str) -> (u8, String, String) {
    let rest = m.strip_prefix('<').expect("starts with <PRI>");
    let (pri, rest) = rest.split_once('>').unwrap();
    let pri: u8 = pri.parse().unwrap();
    let rest = rest.strip_prefix("1 ").expect("VERSION 1");
    // TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG
    let mut it = rest.splitn(6, ' ');
    let ts = it.next().unwrap();
    assert_eq!(ts.len(), "2026-11-18T11:06:40.000001Z".len(), "{ts}");
    assert!(ts.ends_with('Z'));
    assert_eq!(it.next().unwrap(), "testhost");
    assert_eq!(it.next().unwrap(), "vigil");
    assert_eq!(
        it.next().unwrap().parse::<u32>().unwrap(),
        std::process::id()
    );
    assert_eq!(it.next().unwrap(), "alert");
    let sd_msg = it.next().unwrap();
    assert!(sd_msg.starts_with("[vigil@32473 "), "{sd_msg}");
    // The SD element ends at the first unescaped ']'.
    let b = sd_msg.as_bytes();
    let mut i = 1;
    while b[i] != b']' {
        i += if b[i] == b'\\' { 2 } else { 1 };
    }
    let sd = sd_msg[..=i].to_string();
    let msg = sd_msg[i + 1..].strip_prefix(' ').unwrap().to_string();
    (pri, sd, msg)
}

#[tokio::test]
async fn udp_rfc5424_with_structured_data() {
    let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let cfg = outputs(&format!(
        "syslog: {{ address: \"udp://{}\", facility: local3 }}",
        rx.local_addr().unwrap()
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    router.submit(alert("Shell spawned", Priority::Critical, 1));
    router.submit(alert("Read \"shadow\" file", Priority::Notice, 2));
    let mut buf = vec![0u8; 65536];
    let n = tokio::time::timeout(WAIT, rx.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let (pri, sd, msg) = parse_5424(std::str::from_utf8(&buf[..n]).unwrap());
    assert_eq!(pri, 19 * 8 + 2, "local3.crit");
    assert!(sd.contains("rule=\"Shell spawned\""), "{sd}");
    assert!(sd.contains("priority=\"Critical\""), "{sd}");
    assert!(sd.contains("proc.name=\"bash\""), "{sd}");
    assert!(sd.contains("proc.pid=\"1001\""), "{sd}");
    assert!(sd.contains("tags=\"process,mitre_execution\""), "{sd}");
    assert_eq!(msg, "Shell bash spawned (pid=1001 n=1)");
    let n = tokio::time::timeout(WAIT, rx.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let (pri, sd, _) = parse_5424(std::str::from_utf8(&buf[..n]).unwrap());
    assert_eq!(pri, 19 * 8 + 5, "local3.notice");
    assert!(sd.contains(r#"rule="Read \"shadow\" file""#), "{sd}");
    let r = router.shutdown(Duration::from_secs(5)).await;
    assert_eq!(r.sinks[0].sent, 2);
}

#[tokio::test]
async fn unix_datagram_rfc3164() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.sock");
    let rx = UnixDatagram::bind(&path).unwrap();
    let cfg = outputs(&format!(
        "syslog: {{ address: \"unix://{}\", format: rfc3164, facility: auth, app_name: vigild }}",
        path.display()
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    router.submit(alert("r", Priority::Warning, 7));
    let mut buf = vec![0u8; 65536];
    let n = tokio::time::timeout(WAIT, rx.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let m = std::str::from_utf8(&buf[..n]).unwrap();
    let expect_prefix = format!("<{}>", 4 * 8 + 4);
    assert!(m.starts_with(&expect_prefix), "{m}");
    assert!(
        m.ends_with(&format!(
            " testhost vigild[{}]: Shell bash spawned (pid=1007 n=7)",
            std::process::id()
        )),
        "{m}"
    );
    router.shutdown(Duration::from_secs(5)).await;
}

/// Reads one octet-counted frame (`LEN SP MSG`) from the stream.
async fn read_frame(s: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(sp) = buf.iter().position(|&b| b == b' ') {
            let len: usize = std::str::from_utf8(&buf[..sp])
                .unwrap()
                .parse()
                .expect("frame starts with a decimal length");
            if buf.len() >= sp + 1 + len {
                let msg = String::from_utf8(buf[sp + 1..sp + 1 + len].to_vec()).unwrap();
                buf.drain(..sp + 1 + len);
                return Some(msg);
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, s.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn tcp_octet_counting_and_reconnect() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cfg = outputs(&format!(
        "loss_alert_interval: 0s\nsyslog: {{ address: \"tcp://{}\", payload: json, retry: {{ initial_backoff: 10ms, max_backoff: 100ms }} }}",
        l.local_addr().unwrap()
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    for i in 0..5 {
        router.submit(alert("r", Priority::Error, i));
    }
    let (mut s, _) = tokio::time::timeout(WAIT, l.accept())
        .await
        .unwrap()
        .unwrap();
    let mut buf = Vec::new();
    for i in 0..5 {
        let m = read_frame(&mut s, &mut buf).await.expect("frame");
        let (pri, _, msg) = parse_5424(&m);
        assert_eq!(pri, 10 * 8 + 3, "authpriv.err (default facility)");
        let j: serde_json::Value = serde_json::from_str(&msg).unwrap();
        assert_eq!(j["output_fields"]["proc.pid"], 1000 + i);
        assert_eq!(j["priority"], "Error");
    }
    eventually(|| (router.stats()[0].sent == 5).then_some(())).await;
    // The receiver restarts: the connection closes.
    drop(s);
    for i in 5..10 {
        router.submit(alert("r", Priority::Error, i));
    }
    let (mut s, _) = tokio::time::timeout(WAIT, l.accept())
        .await
        .unwrap()
        .unwrap();
    let mut buf = Vec::new();
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let m = read_frame(&mut s, &mut buf)
            .await
            .expect("frame after reconnect");
        let (_, _, msg) = parse_5424(&m);
        let j: serde_json::Value = serde_json::from_str(&msg).unwrap();
        seen.push(j["output_fields"]["proc.pid"].as_i64().unwrap());
    }
    assert_eq!(seen, vec![1005, 1006, 1007, 1008, 1009]);
    let r = router.shutdown(Duration::from_secs(5)).await;
    assert_eq!(r.undelivered, 0);
    assert_eq!(r.sinks[0].sent, 10);
}

#[tokio::test]
async fn tcp_receiver_down_then_up() {
    let port = free_port();
    let cfg = outputs(&format!(
        "syslog: {{ address: \"tcp://127.0.0.1:{port}\", retry: {{ initial_backoff: 10ms, max_backoff: 100ms }} }}"
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    for i in 0..3 {
        router.submit(alert("r", Priority::Error, i));
    }
    eventually(|| (router.stats()[0].failed >= 2).then_some(())).await;
    let l = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let (mut s, _) = tokio::time::timeout(WAIT, l.accept())
        .await
        .unwrap()
        .unwrap();
    let mut buf = Vec::new();
    for i in 0..3 {
        let m = read_frame(&mut s, &mut buf).await.expect("frame");
        assert!(m.ends_with(&format!("n={i})")), "{m}");
    }
    router.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn oversized_udp_datagram_is_given_up_not_retried_forever() {
    let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let cfg = outputs(&format!(
        "loss_alert_interval: 0s\nsyslog: {{ address: \"udp://{}\", payload: json, max_message_size: 100000 }}",
        rx.local_addr().unwrap()
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    let mut big = (*alert("r", Priority::Error, 1)).clone();
    big.output = "x".repeat(70_000);
    router.submit(std::sync::Arc::new(big));
    router.submit(alert("r", Priority::Error, 2));
    // The small one after it still arrives.
    let mut buf = vec![0u8; 65536];
    let n = tokio::time::timeout(WAIT, rx.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let m = std::str::from_utf8(&buf[..n]).unwrap();
    assert!(m.contains("n=2)"), "{m}");
    let st = &router.stats()[0];
    assert_eq!(st.abandoned, 1);
    assert_eq!(st.failed, 1);
    router.shutdown(Duration::from_secs(5)).await;
}

/// Accepts every connection and never reads; counts the connections.
fn non_reading_receiver(
    l: TcpListener,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    tokio::task::JoinHandle<()>,
) {
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let n = accepted.clone();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(s);
        }
    });
    (accepted, task)
}

/// Regression (issue 17, item 5): a receiver that accepts and never reads
/// used to absorb thousands of alerts counted as sent (they sat in the
/// kernel's socket buffers) and lost them when it died.
#[tokio::test]
async fn tcp_receiver_that_never_reads_yields_failures_and_a_loss_alert_never_sent() {
    let l = small_window_listener(0);
    let addr = l.local_addr().unwrap();
    let (accepted, rx_task) = non_reading_receiver(l);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alerts.jsonl");
    // No loss alert before shutdown (interval 1h), so the syslog counters
    // below are the storm's alone.
    let cfg = outputs(&format!(
        "loss_alert_interval: 1h\nfile: {{ path: {} }}\nsyslog: {{ address: \"tcp://{addr}\", timeout: 300ms, queue_size: 5000, retry: {{ max_attempts: 2, initial_backoff: 10ms, max_backoff: 50ms }} }}",
        file.display()
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    let n = 600;
    for i in 0..n {
        router.submit(alert("r", Priority::Error, i));
    }
    let st = eventually(|| {
        let st = router.stats()[1].clone();
        (st.abandoned == n as u64).then_some(st)
    })
    .await;
    assert_eq!(st.name, "syslog");
    assert_eq!(
        st.sent, 0,
        "nothing the receiver did not take counts as sent"
    );
    assert_eq!(st.dropped, 0);
    assert!(st.failed >= 4, "two failed attempts per batch: {st:?}");
    assert!(accepted.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    let report = router.shutdown(Duration::from_secs(2)).await;
    // The shutdown loss alert reached the file sink with the syslog total.
    let text = std::fs::read_to_string(&file).unwrap();
    let loss: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|j| j["rule"] == "vigil alerts dropped")
        .collect();
    assert_eq!(loss.len(), 1, "{text}");
    assert_eq!(loss[0]["output_fields"]["vigil.lost.syslog"], n);
    assert!(report.sinks[1].abandoned >= n as u64);
    rx_task.abort();
}

/// Regression (issue 17, item 5): a receiver that dies with unread data in
/// flight must not cost those alerts: the unacknowledged batch fails, is
/// retried, and reaches the next receiver (duplicates allowed).
#[tokio::test]
async fn tcp_receiver_dying_with_unread_data_leads_to_retries_not_loss() {
    let port = free_port();
    let l = small_window_listener(port);
    let cfg = outputs(&format!(
        "loss_alert_interval: 0s\nsyslog: {{ address: \"tcp://127.0.0.1:{port}\", payload: json, timeout: 5s, queue_size: 5000, retry: {{ initial_backoff: 10ms, max_backoff: 100ms }} }}"
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    let n = 300i64;
    for i in 0..n {
        router.submit(alert("r", Priority::Error, i));
    }
    let (first, _) = tokio::time::timeout(WAIT, l.accept())
        .await
        .unwrap()
        .unwrap();
    // Wait until data arrived, then die without reading it (closing a
    // socket with unread data sends a reset).
    let mut b = [0u8; 1];
    tokio::time::timeout(WAIT, first.peek(&mut b))
        .await
        .unwrap()
        .unwrap();
    assert!(
        router.stats()[0].sent < n as u64,
        "a non-reading receiver cannot have taken every alert"
    );
    drop(first);
    drop(l);
    eventually(|| (router.stats()[0].failed >= 1).then_some(())).await;
    // A receiver that reads comes up on the same port.
    let l = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let mut seen = std::collections::BTreeSet::new();
    let mut frames = 0;
    while seen.len() < n as usize {
        let (mut s, _) = tokio::time::timeout(WAIT, l.accept())
            .await
            .unwrap()
            .unwrap();
        let mut buf = Vec::new();
        while let Some(m) = read_frame(&mut s, &mut buf).await {
            let (_, _, msg) = parse_5424(&m);
            let j: serde_json::Value = serde_json::from_str(&msg).unwrap();
            seen.insert(j["output_fields"]["proc.pid"].as_i64().unwrap());
            frames += 1;
            if seen.len() == n as usize {
                break;
            }
        }
    }
    assert_eq!(seen, (1000..1000 + n).collect());
    assert!(frames >= n);
    eventually(|| (router.stats()[0].sent == n as u64).then_some(())).await;
    let st = &router.stats()[0];
    assert!(st.failed >= 1 && st.retries >= 1, "{st:?}");
    assert_eq!(st.abandoned + st.dropped, 0);
    router.shutdown(Duration::from_secs(5)).await;
}

/// Regression (issue 17, item 5): a receiver's kernel acknowledges what fits
/// in its receive buffer even when its process never reads it; when that
/// process died, those alerts were gone. Closing a socket with unread data
/// resets the connection, and the sink then re-sends the messages that were
/// acknowledged on it.
#[tokio::test]
async fn tcp_acknowledged_but_unread_alerts_are_resent_after_a_reset() {
    let port = free_port();
    let l = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let cfg = outputs(&format!(
        "loss_alert_interval: 0s\nsyslog: {{ address: \"tcp://127.0.0.1:{port}\", payload: json, retry: {{ initial_backoff: 10ms, max_backoff: 100ms }} }}"
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    for i in 0..10 {
        router.submit(alert("r", Priority::Error, i));
    }
    let (first, _) = tokio::time::timeout(WAIT, l.accept())
        .await
        .unwrap()
        .unwrap();
    // The receiver's kernel acknowledged them all; its process read none.
    eventually(|| (router.stats()[0].sent == 10).then_some(())).await;
    drop(first);
    drop(l);
    let l = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    router.submit(alert("r", Priority::Error, 10));
    let (mut s, _) = tokio::time::timeout(WAIT, l.accept())
        .await
        .unwrap()
        .unwrap();
    let mut buf = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 11 {
        let m = read_frame(&mut s, &mut buf).await.expect("frame");
        let (_, _, msg) = parse_5424(&m);
        let j: serde_json::Value = serde_json::from_str(&msg).unwrap();
        seen.insert(j["output_fields"]["proc.pid"].as_i64().unwrap());
    }
    assert_eq!(seen, (1000..1011).collect());
    let r = router.shutdown(Duration::from_secs(5)).await;
    assert_eq!(r.sinks[0].sent, 11);
    assert_eq!(r.undelivered, 0);
}
