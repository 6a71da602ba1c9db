//! Webhook sink against a real HTTP server on loopback: JSON keys, custom
//! headers, the HMAC signature, retries while the server is down or failing,
//! and permanent errors.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use vigil_engine::Priority;
use vigil_sinks::Router;

fn hmac_hex(key: &[u8], body: &[u8]) -> String {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::sign(&k, body)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn posts_falco_json_with_headers_and_hmac() {
    std::env::set_var("VIGIL_TEST_WEBHOOK_SECRET_A", "s3cret");
    let mut srv = HttpServer::start("127.0.0.1:0").await;
    let cfg = outputs(&format!(
        "webhook:\n  url: http://{}/hook\n  headers: {{ X-Team: blue, Authorization: \"Bearer t\" }}\n  secret_env: VIGIL_TEST_WEBHOOK_SECRET_A\n",
        srv.addr
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    for i in 0..3 {
        router.submit(alert("Shell spawned", Priority::Critical, i));
    }
    for i in 0..3 {
        let req = recv(&mut srv.rx).await;
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/hook");
        assert_eq!(req.headers["content-type"], "application/json");
        assert_eq!(req.headers["x-team"], "blue");
        assert_eq!(req.headers["authorization"], "Bearer t");
        assert!(req.headers["user-agent"].starts_with("vigil/"));
        let sig = &req.headers["x-vigil-signature"];
        assert_eq!(*sig, format!("sha256={}", hmac_hex(b"s3cret", &req.body)));
        let j: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
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
            assert!(j.get(k).is_some(), "missing key {k} in {j}");
        }
        assert_eq!(j["rule"], "Shell spawned");
        assert_eq!(j["priority"], "Critical");
        assert_eq!(j["output_fields"]["proc.pid"], 1000 + i);
        assert_eq!(j["source"], "syscall");
    }
    eventually(|| (router.stats()[0].sent == 3).then_some(())).await;
    let report = router.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.undelivered, 0);
    assert_eq!(report.sinks[0].sent, 3);
    assert_eq!(report.sinks[0].failed, 0);
}

#[tokio::test]
async fn missing_secret_env_is_a_start_error() {
    let cfg = outputs(
        "webhook: { url: \"http://127.0.0.1:9/x\", secret_env: VIGIL_TEST_SURELY_UNSET_VAR }",
    );
    let e = Router::start(&cfg, "h").err().expect("start must fail");
    let msg = e.to_string();
    assert!(
        msg.contains("VIGIL_TEST_SURELY_UNSET_VAR") && msg.contains("secret_env"),
        "{msg}"
    );
}

#[tokio::test]
async fn server_down_at_first_then_up_every_alert_arrives_in_order() {
    let port = free_port();
    let cfg = outputs(&format!(
        "webhook:\n  url: http://127.0.0.1:{port}/\n  retry: {{ initial_backoff: 20ms, max_backoff: 200ms }}\n"
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    for i in 0..10 {
        router.submit(alert("r", Priority::Warning, i));
    }
    // The sink has failed at least twice while nothing listens.
    eventually(|| (router.stats()[0].failed >= 2).then_some(())).await;
    assert_eq!(router.stats()[0].sent, 0);
    let mut srv = HttpServer::start(&format!("127.0.0.1:{port}")).await;
    for i in 0..10 {
        let req = recv(&mut srv.rx).await;
        let j: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(j["output_fields"]["proc.pid"], 1000 + i, "in order");
    }
    eventually(|| (router.stats()[0].sent == 10).then_some(())).await;
    let st = router.stats();
    assert!(st[0].retries >= 2);
    assert_eq!(st[0].dropped, 0);
    let report = router.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.undelivered, 0);
}

#[tokio::test]
async fn server_errors_are_retried_client_errors_abandoned() {
    let mut srv = HttpServer::start("127.0.0.1:0").await;
    srv.status.store(503, Ordering::SeqCst);
    let cfg = outputs(&format!(
        "loss_alert_interval: 0s\nwebhook:\n  url: http://{}/\n  retry: {{ initial_backoff: 10ms, max_backoff: 50ms }}\n",
        srv.addr
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    router.submit(alert("r", Priority::Warning, 1));
    // Three 503s, then the server recovers.
    for _ in 0..3 {
        recv(&mut srv.rx).await;
    }
    srv.status.store(200, Ordering::SeqCst);
    eventually(|| (router.stats()[0].sent == 1).then_some(())).await;
    assert!(router.stats()[0].failed >= 3);

    srv.status.store(400, Ordering::SeqCst);
    router.submit(alert("r", Priority::Warning, 2));
    eventually(|| (router.stats()[0].abandoned == 1).then_some(())).await;
    let st = &router.stats()[0];
    assert_eq!(st.sent, 1);
    assert_eq!(st.queued, 0);
    let report = router.shutdown(Duration::from_secs(5)).await;
    // The 400 alert was given up (counted), not left queued.
    assert_eq!(report.undelivered, 0);
    assert_eq!(report.sinks[0].abandoned, 1);
}

#[tokio::test]
async fn max_attempts_bounds_retries() {
    let port = free_port();
    let cfg = outputs(&format!(
        "webhook:\n  url: http://127.0.0.1:{port}/\n  retry: {{ max_attempts: 3, initial_backoff: 5ms, max_backoff: 10ms }}\n"
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    router.submit(alert("r", Priority::Warning, 1));
    eventually(|| (router.stats()[0].abandoned == 1).then_some(())).await;
    let st = &router.stats()[0];
    assert_eq!(st.failed, 3);
    assert_eq!(st.retries, 2);
    router.shutdown(Duration::from_secs(1)).await;
}
