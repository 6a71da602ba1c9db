//! Email sink against an SMTP server run by the test on loopback: one mail
//! per alert with subject/Date/From/To/Message-ID and a readable body, and
//! digest batching: the first alert of a quiet period is mailed at once, a
//! storm after it becomes one mail listing a bounded number of alerts and
//! counting the rest.

mod common;

use std::time::Duration;

use common::*;
use vigil_engine::Priority;
use vigil_sinks::Router;

#[tokio::test]
async fn one_mail_per_alert_with_headers_and_body() {
    let mut srv = SmtpServer::start().await;
    let cfg = outputs(&format!(
        "email:\n  smtp: smtp://{}\n  tls: none\n  from: \"vigil <vigil@example.invalid>\"\n  to: [sec@example.invalid, ops@example.invalid]\n  digest_window: 0s\n",
        srv.addr
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    router.submit(alert("Shell spawned by web server", Priority::Critical, 1));
    let m = recv(&mut srv.rx).await;
    assert_eq!(m.from, "<vigil@example.invalid>");
    assert_eq!(
        m.rcpt,
        vec![
            "<sec@example.invalid>".to_string(),
            "<ops@example.invalid>".to_string()
        ]
    );
    assert_eq!(
        m.header("subject").unwrap(),
        "[vigil] Critical Shell spawned by web server on testhost"
    );
    assert!(m.header("from").unwrap().contains("vigil@example.invalid"));
    let to = m.header("to").unwrap();
    assert!(to.contains("sec@example.invalid") && to.contains("ops@example.invalid"));
    let date = m.header("date").expect("Date header");
    assert!(date.contains(" +0000") || date.contains("GMT"), "{date}");
    let id = m.header("message-id").expect("Message-ID header");
    assert!(id.starts_with('<') && id.ends_with("@testhost>"), "{id}");
    let body = m.body();
    assert!(
        body.contains("Rule:     Shell spawned by web server"),
        "{body}"
    );
    assert!(body.contains("Priority: Critical"), "{body}");
    assert!(
        body.contains("Output:   Shell bash spawned (pid=1001 n=1)"),
        "{body}"
    );
    assert!(body.contains("proc.cmdline = bash -c echo 1"), "{body}");

    router.submit(alert("Other", Priority::Notice, 2));
    let m2 = recv(&mut srv.rx).await;
    assert_ne!(m2.header("message-id"), m.header("message-id"));
    assert_eq!(
        m2.header("subject").unwrap(),
        "[vigil] Notice Other on testhost"
    );
    let r = router.shutdown(Duration::from_secs(5)).await;
    assert_eq!(r.sinks[0].sent, 2);
}

#[tokio::test]
async fn storm_becomes_one_digest() {
    let mut srv = SmtpServer::start().await;
    // A window far longer than the test: the first alert is mailed at once,
    // the digest goes out when shutdown closes the queue, so exactly one more
    // mail must carry the other 299 alerts.
    let cfg = outputs(&format!(
        "email:\n  smtp: smtp://{}\n  tls: none\n  from: vigil@example.invalid\n  to: [sec@example.invalid]\n  digest_window: 1h\n  max_alerts_per_mail: 5\n",
        srv.addr
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    for i in 0..300 {
        let (rule, p) = match i % 3 {
            0 => ("Noisy", Priority::Warning),
            1 => ("Quiet", Priority::Notice),
            _ => ("Bad", Priority::Critical),
        };
        router.submit(alert(rule, p, i));
    }
    let first = recv(&mut srv.rx).await;
    assert_eq!(
        first.header("subject").unwrap(),
        "[vigil] Warning Noisy on testhost"
    );
    // Let the sink collect the rest (it is waiting inside its window).
    eventually(|| {
        let s = &router.stats()[0];
        (s.sent == 1 && s.queued == 299).then_some(())
    })
    .await;
    let r = router.shutdown(Duration::from_secs(10)).await;
    assert_eq!(r.undelivered, 0);
    assert_eq!(r.sinks[0].sent, 300);
    assert_eq!((r.sinks[0].immediate, r.sinks[0].digests), (1, 1));
    let m = recv(&mut srv.rx).await;
    assert!(srv.rx.try_recv().is_err(), "exactly one digest");
    assert_eq!(
        m.header("subject").unwrap(),
        "[vigil] Critical Bad on testhost (+298 more alerts)"
    );
    let body = m.body();
    assert!(
        body.contains("vigil raised 299 alerts on testhost"),
        "{body}"
    );
    assert!(body.contains("   100  Critical       Bad"), "{body}");
    assert!(body.contains("    99  Warning        Noisy"), "{body}");
    assert!(body.contains("   100  Notice         Quiet"), "{body}");
    assert_eq!(body.matches("--- alert ").count(), 5, "{body}");
    assert!(
        body.contains("294 more alerts in this digest are not listed"),
        "{body}"
    );
}

#[tokio::test]
async fn digest_window_closes_on_its_own() {
    let mut srv = SmtpServer::start().await;
    let cfg = outputs(&format!(
        "email:\n  smtp: smtp://{}\n  tls: none\n  from: vigil@example.invalid\n  to: [sec@example.invalid]\n  digest_window: 200ms\n",
        srv.addr
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    for i in 0..4 {
        router.submit(alert("Noisy", Priority::Warning, i));
    }
    let m = recv(&mut srv.rx).await;
    assert_eq!(
        m.header("subject").unwrap(),
        "[vigil] Warning Noisy on testhost"
    );
    let m = recv(&mut srv.rx).await;
    // The other three were queued before the window (200 ms) could close.
    assert_eq!(
        m.header("subject").unwrap(),
        "[vigil] Warning Noisy on testhost (+2 more alerts)"
    );
    router.shutdown(Duration::from_secs(5)).await;
}

/// Issue 15: the first alert of a quiet period is mailed at once (not after
/// the digest window); a burst of 20 after it is one digest; both counted.
#[tokio::test]
async fn first_alert_at_once_then_a_burst_as_one_digest() {
    let mut srv = SmtpServer::start().await;
    let cfg = outputs(&format!(
        "email:\n  smtp: smtp://{}\n  tls: none\n  from: vigil@example.invalid\n  to: [sec@example.invalid]\n  digest_window: 1h\n",
        srv.addr
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    router.submit(alert("Page me", Priority::Critical, 1));
    // Within the helper's wait, long before the 1 h window.
    let m = recv(&mut srv.rx).await;
    assert_eq!(
        m.header("subject").unwrap(),
        "[vigil] Critical Page me on testhost"
    );
    for i in 0..20 {
        router.submit(alert("Burst", Priority::Warning, 10 + i));
    }
    eventually(|| (router.stats()[0].queued == 20).then_some(())).await;
    assert!(srv.rx.try_recv().is_err(), "the burst waits for its window");
    let metrics = router.render_metrics();
    assert!(
        metrics.contains("vigil_sink_immediate_batches_total{sink=\"email\"} 1"),
        "{metrics}"
    );
    let r = router.shutdown(Duration::from_secs(10)).await;
    assert_eq!((r.sinks[0].immediate, r.sinks[0].digests), (1, 1));
    let d = recv(&mut srv.rx).await;
    assert!(srv.rx.try_recv().is_err(), "one digest");
    assert_eq!(
        d.header("subject").unwrap(),
        "[vigil] Warning Burst on testhost (+19 more alerts)"
    );
    assert!(d.body().contains("vigil raised 20 alerts on testhost"));
}

/// Issue 15: `immediate_first: false` turns the mail at once off: the
/// first alert of a quiet period waits in its window with the rest, and
/// the one mail is a digest (counted as one, no immediate batch).
#[tokio::test]
async fn digests_only_when_immediate_first_is_off() {
    let mut srv = SmtpServer::start().await;
    let cfg = outputs(&format!(
        "email:\n  smtp: smtp://{}\n  tls: none\n  from: vigil@example.invalid\n  to: [sec@example.invalid]\n  digest_window: 1h\n  immediate_first: false\n",
        srv.addr
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    router.submit(alert("Page me", Priority::Critical, 1));
    for i in 0..3 {
        router.submit(alert("Burst", Priority::Warning, 10 + i));
    }
    eventually(|| (router.stats()[0].queued == 4).then_some(())).await;
    assert!(
        srv.rx.try_recv().is_err(),
        "nothing before the window closes"
    );
    let r = router.shutdown(Duration::from_secs(10)).await;
    assert_eq!((r.sinks[0].immediate, r.sinks[0].digests), (0, 1));
    let d = recv(&mut srv.rx).await;
    assert!(srv.rx.try_recv().is_err(), "one digest");
    assert_eq!(
        d.header("subject").unwrap(),
        "[vigil] Critical Page me on testhost (+3 more alerts)"
    );
}

#[tokio::test]
async fn smtp_down_then_up() {
    let port = free_port();
    let cfg = outputs(&format!(
        "email:\n  smtp: smtp://127.0.0.1:{port}\n  tls: none\n  from: vigil@example.invalid\n  to: [sec@example.invalid]\n  digest_window: 0s\n  retry: {{ initial_backoff: 20ms, max_backoff: 100ms }}\n"
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    router.submit(alert("r", Priority::Alert, 1));
    eventually(|| (router.stats()[0].failed >= 2).then_some(())).await;
    // Now a server appears on that port.
    let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let mut srv = SmtpServer::from_listener(l);
    let m = recv(&mut srv.rx).await;
    assert_eq!(m.header("subject").unwrap(), "[vigil] Alert r on testhost");
    router.shutdown(Duration::from_secs(5)).await;
}

/// `tls: none` with credentials to a relay off this host would send the
/// password in cleartext: refused at start, naming the keys, unless the relay
/// is on loopback or `allow_plaintext_auth: true` says the risk is accepted.
#[tokio::test]
async fn plaintext_credentials_are_refused_off_loopback() {
    std::env::set_var("VIGIL_TEST_PLAIN_USER", "u");
    std::env::set_var("VIGIL_TEST_PLAIN_PASS", "p");
    let cfg = |smtp: &str, extra: &str| {
        outputs(&format!(
            "email:\n  smtp: {smtp}\n  tls: none\n  from: vigil@example.invalid\n  to: [sec@example.invalid]\n  username_env: VIGIL_TEST_PLAIN_USER\n  password_env: VIGIL_TEST_PLAIN_PASS\n{extra}"
        ))
    };
    for smtp in ["smtp://mail.example.invalid:25", "smtp://192.0.2.7"] {
        let e = Router::start(&cfg(smtp, ""), "testhost")
            .err()
            .expect("cleartext credentials to a remote relay must be refused")
            .to_string();
        assert!(
            e.contains("outputs.email")
                && e.contains("tls: none")
                && e.contains("allow_plaintext_auth")
                && e.contains("cleartext"),
            "{e}"
        );
    }
    // Accepted when asked for explicitly.
    let r = Router::start(
        &cfg(
            "smtp://mail.example.invalid:25",
            "  allow_plaintext_auth: true\n",
        ),
        "testhost",
    )
    .expect("allow_plaintext_auth: true accepts the risk");
    r.shutdown(Duration::from_secs(1)).await;
    // Without credentials, plaintext to a remote relay is fine.
    let no_creds = outputs(
        "email:\n  smtp: smtp://mail.example.invalid\n  tls: none\n  from: vigil@example.invalid\n  to: [sec@example.invalid]\n",
    );
    Router::start(&no_creds, "testhost")
        .expect("no credentials, nothing to leak")
        .shutdown(Duration::from_secs(1))
        .await;
    // A loopback relay with credentials: allowed, and mail goes through.
    let mut srv = SmtpServer::start().await;
    let router = Router::start(
        &cfg(&format!("smtp://{}", srv.addr), "  digest_window: 0s\n"),
        "testhost",
    )
    .expect("loopback relay");
    router.submit(alert("r", Priority::Alert, 1));
    let m = recv(&mut srv.rx).await;
    assert_eq!(m.header("subject").unwrap(), "[vigil] Alert r on testhost");
    assert_eq!(m.auth.as_deref(), Some(":u:p"), "authenticated on loopback");
    router.shutdown(Duration::from_secs(5)).await;
}
