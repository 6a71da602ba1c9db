//! TLS on every network sink, against servers the test runs on loopback with
//! a self-signed certificate made by rcgen: syslog over `tls://` (RFC 5425
//! octet counting), the webhook over HTTPS, and SMTP with STARTTLS; each
//! trusts the certificate only through `ca_file`, and an untrusted server is
//! refused.

mod common;

use std::sync::atomic::AtomicU16;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use vigil_engine::Priority;
use vigil_sinks::Router;

fn write_ca(dir: &tempfile::TempDir, pem: &str) -> std::path::PathBuf {
    let p = dir.path().join("ca.pem");
    std::fs::write(&p, pem).unwrap();
    p
}

#[tokio::test]
async fn syslog_over_tls_octet_counted() {
    let (pem, acceptor) = tls_server();
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(&dir, &pem);
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cfg = outputs(&format!(
        "syslog: {{ address: \"tls://{}\", ca_file: {}, facility: local0 }}",
        l.local_addr().unwrap(),
        ca.display()
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    for i in 0..3 {
        router.submit(alert("TLS rule", Priority::Critical, i));
    }
    let (s, _) = tokio::time::timeout(WAIT, l.accept())
        .await
        .unwrap()
        .unwrap();
    let mut t = acceptor.accept(s).await.expect("TLS handshake");
    let mut buf = Vec::new();
    let mut frames = Vec::new();
    while frames.len() < 3 {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, t.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "connection closed early");
        buf.extend_from_slice(&chunk[..n]);
        while let Some(sp) = buf.iter().position(|&b| b == b' ') {
            let len: usize = std::str::from_utf8(&buf[..sp]).unwrap().parse().unwrap();
            if buf.len() < sp + 1 + len {
                break;
            }
            frames.push(String::from_utf8(buf[sp + 1..sp + 1 + len].to_vec()).unwrap());
            buf.drain(..sp + 1 + len);
        }
    }
    for (i, f) in frames.iter().enumerate() {
        assert!(f.starts_with("<130>1 "), "local0.crit: {f}");
        assert!(f.contains("[vigil@32473 rule=\"TLS rule\""), "{f}");
        assert!(f.ends_with(&format!("n={i})")), "{f}");
    }
    let r = router.shutdown(Duration::from_secs(5)).await;
    assert_eq!(r.sinks[0].sent, 3);
}

#[tokio::test]
async fn syslog_tls_refuses_an_untrusted_server() {
    let (_pem, acceptor) = tls_server();
    // A different CA than the one the server's certificate comes from.
    let (other_pem, _) = tls_server();
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(&dir, &other_pem);
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let _ = acceptor.accept(s).await;
        }
    });
    let cfg = outputs(&format!(
        "loss_alert_interval: 0s\nsyslog: {{ address: \"tls://{addr}\", ca_file: {}, retry: {{ max_attempts: 2, initial_backoff: 10ms }} }}",
        ca.display()
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    router.submit(alert("r", Priority::Critical, 1));
    eventually(|| (router.stats()[0].abandoned == 1).then_some(())).await;
    assert_eq!(router.stats()[0].sent, 0);
    assert_eq!(router.stats()[0].failed, 2);
    router.shutdown(Duration::from_secs(1)).await;
}

async fn https_server(
    acceptor: tokio_rustls::TlsAcceptor,
) -> (std::net::SocketAddr, mpsc::UnboundedReceiver<HttpRequest>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let replies = Replies {
        status: Arc::new(AtomicU16::new(200)),
        ..Default::default()
    };
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let (acceptor, tx, replies) = (acceptor.clone(), tx.clone(), replies.clone());
            tokio::spawn(async move {
                if let Ok(t) = acceptor.accept(s).await {
                    http_conn(t, tx, replies).await;
                }
            });
        }
    });
    (addr, rx)
}

#[tokio::test]
async fn webhook_over_https_with_ca_file() {
    let (pem, acceptor) = tls_server();
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(&dir, &pem);
    let (addr, mut rx) = https_server(acceptor).await;
    let cfg = outputs(&format!(
        "webhook: {{ url: \"https://127.0.0.1:{}/in\", ca_file: {} }}",
        addr.port(),
        ca.display()
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    router.submit(alert("Over HTTPS", Priority::Alert, 5));
    let req = recv(&mut rx).await;
    assert_eq!(req.path, "/in");
    let j: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(j["rule"], "Over HTTPS");
    assert_eq!(j["priority"], "Alert");
    router.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn webhook_refuses_an_untrusted_certificate() {
    let (_pem, acceptor) = tls_server();
    let (addr, mut rx) = https_server(acceptor).await;
    let cfg = outputs(&format!(
        "loss_alert_interval: 0s\nwebhook: {{ url: \"https://127.0.0.1:{}/\", retry: {{ max_attempts: 2, initial_backoff: 10ms }} }}",
        addr.port()
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    router.submit(alert("r", Priority::Alert, 1));
    eventually(|| (router.stats()[0].abandoned == 1).then_some(())).await;
    assert!(
        rx.try_recv().is_err(),
        "no request may pass an untrusted TLS handshake"
    );
    router.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn email_starttls_with_ca_file() {
    let (pem, acceptor) = tls_server();
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(&dir, &pem);
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut srv = SmtpServer::with_tls(l, Some(acceptor));
    std::env::set_var("VIGIL_TEST_SMTP_USER", "u");
    std::env::set_var("VIGIL_TEST_SMTP_PASS", "p");
    // The config names the variables; the values never appear in it.
    let cfg = outputs(&format!(
        "email:\n  smtp: smtp://127.0.0.1:{}\n  tls: starttls\n  ca_file: {}\n  from: vigil@example.invalid\n  to: [sec@example.invalid]\n  username_env: VIGIL_TEST_SMTP_USER\n  password_env: VIGIL_TEST_SMTP_PASS\n  digest_window: 0s\n",
        srv.addr.port(),
        ca.display()
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    router.submit(alert("Mail over TLS", Priority::Critical, 1));
    let m = recv(&mut srv.rx).await;
    assert!(m.tls, "the mail must have been sent after STARTTLS");
    assert_eq!(
        m.auth.as_deref(),
        Some(":u:p"),
        "credentials from the env variables"
    );
    assert_eq!(
        m.header("subject").unwrap(),
        "[vigil] Critical Mail over TLS on testhost"
    );
    router.shutdown(Duration::from_secs(5)).await;
}

/// Syslog over TLS counts an alert as sent only once the receiver's TCP
/// stack acknowledged it, and keeps one connection while the receiver
/// reads: a receiver that completes the handshake and then never reads
/// gets failures and abandoned alerts, never "sent".
#[tokio::test]
async fn syslog_tls_acknowledged_delivery() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (pem, acceptor) = tls_server();
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(&dir, &pem);

    // A reader: two rounds of alerts go over one connection.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let accepts = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = mpsc::unbounded_channel::<usize>();
    {
        let (acceptor, accepts) = (acceptor.clone(), accepts.clone());
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                accepts.fetch_add(1, Ordering::SeqCst);
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let Ok(mut t) = acceptor.accept(s).await else {
                        return;
                    };
                    let mut chunk = [0u8; 4096];
                    while let Ok(n) = t.read(&mut chunk).await {
                        if n == 0 || tx.send(n).is_err() {
                            return;
                        }
                    }
                });
            }
        });
    }
    let cfg = outputs(&format!(
        "loss_alert_interval: 0s\nsyslog: {{ address: \"tls://{addr}\", ca_file: {} }}",
        ca.display()
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    router.submit(alert("r", Priority::Error, 0));
    eventually(|| (router.stats()[0].sent == 1).then_some(())).await;
    router.submit(alert("r", Priority::Error, 1));
    eventually(|| (router.stats()[0].sent == 2).then_some(())).await;
    assert!(recv(&mut rx).await > 0);
    assert_eq!(accepts.load(Ordering::SeqCst), 1, "one connection for both");
    router.shutdown(Duration::from_secs(5)).await;

    // A receiver that completes the handshake, then never reads (a small
    // receive buffer: what its kernel acknowledges unread is counted as
    // sent, see CONFIG.md).
    let l = small_window_listener(0);
    let addr = l.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            if let Ok(t) = acceptor.accept(s).await {
                held.push(t);
            }
        }
    });
    let cfg = outputs(&format!(
        "loss_alert_interval: 0s\nsyslog: {{ address: \"tls://{addr}\", ca_file: {}, timeout: 300ms, retry: {{ max_attempts: 1 }} }}",
        ca.display()
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    let n = 2000;
    for i in 0..n {
        router.submit(alert("r", Priority::Error, i));
    }
    let st = eventually(|| {
        let st = router.stats()[0].clone();
        (st.abandoned == n as u64).then_some(st)
    })
    .await;
    assert_eq!(st.sent, 0, "{st:?}");
    assert!(st.failed >= 1);
    router.shutdown(Duration::from_secs(2)).await;
    hold.abort();
}
