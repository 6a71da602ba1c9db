//! Webhook sink against a real HTTP server on loopback: JSON keys, custom
//! headers, the HMAC signature, retries while the server is down or failing,
//! permanent errors, and `batch` (array and ndjson bodies, batches retried
//! whole, config errors).

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

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

// ---- batch ----

/// `proc.pid - 1000` of each alert object (the `i` given to `alert`).
fn indices(objs: &[serde_json::Value]) -> Vec<i64> {
    objs.iter()
        .map(|o| o["output_fields"]["proc.pid"].as_i64().unwrap() - 1000)
        .collect()
}

/// The alert objects of a JSON-array body (it must be an array).
fn array_body(body: &[u8]) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    v.as_array().expect("body is a JSON array").clone()
}

#[tokio::test]
async fn batches_fill_to_max_alerts_and_the_rest_goes_after_max_wait() {
    let mut srv = HttpServer::start("127.0.0.1:0").await;
    let max_wait = Duration::from_secs(2);
    let cfg = outputs(&format!(
        "loss_alert_interval: 0s\nwebhook:\n  url: http://{}/hook\n  batch: {{ max_alerts: 3, max_wait: 2s }}\n",
        srv.addr
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    let t0 = Instant::now();
    for i in 0..7 {
        router.submit(alert("r", Priority::Warning, i));
    }
    let mut sizes = Vec::new();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let req = recv(&mut srv.rx).await;
        assert_eq!(req.method, "POST");
        assert_eq!(req.headers["content-type"], "application/json");
        let objs = array_body(&req.body);
        for o in &objs {
            assert_eq!(o["rule"], "r");
            assert!(o.get("output_fields").is_some() && o.get("hostname").is_some());
        }
        sizes.push(objs.len());
        seen.extend(indices(&objs));
    }
    // The last, partial batch waited for max_wait after its first alert
    // (a timer never fires early, so this lower bound is exact).
    assert!(
        t0.elapsed() >= max_wait,
        "partial batch sent before max_wait"
    );
    assert_eq!(sizes, [3, 3, 1]);
    assert_eq!(
        seen,
        (0..7).collect::<Vec<_>>(),
        "each alert once, in order"
    );
    eventually(|| (router.stats()[0].sent == 7).then_some(())).await;
    let report = router.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.undelivered, 0);
    assert_eq!(report.sinks[0].sent, 7, "sent counts alerts, not requests");
    assert_eq!(report.sinks[0].failed, 0);
    assert!(
        srv.rx.try_recv().is_err(),
        "no request beyond the three batches"
    );
}

#[tokio::test]
async fn a_full_batch_does_not_wait_and_shutdown_sends_the_partial_one() {
    let mut srv = HttpServer::start("127.0.0.1:0").await;
    // max_wait far beyond the test's WAIT: only "full" or "closing" can send.
    let cfg = outputs(&format!(
        "loss_alert_interval: 0s\nwebhook:\n  url: http://{}/\n  batch: {{ max_alerts: 4, max_wait: 1h }}\n",
        srv.addr
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    for i in 0..6 {
        router.submit(alert("r", Priority::Warning, i));
    }
    let first = array_body(&recv(&mut srv.rx).await.body);
    assert_eq!(indices(&first), [0, 1, 2, 3]);
    eventually(|| (router.stats()[0].sent == 4).then_some(())).await;
    let report = router.shutdown(Duration::from_secs(10)).await;
    let rest = array_body(&recv(&mut srv.rx).await.body);
    assert_eq!(indices(&rest), [4, 5]);
    assert!(!report.timed_out);
    assert_eq!(report.undelivered, 0);
    assert_eq!(report.sinks[0].sent, 6);
}

#[tokio::test]
async fn ndjson_batches_are_one_object_per_line() {
    let mut srv = HttpServer::start("127.0.0.1:0").await;
    let cfg = outputs(&format!(
        "loss_alert_interval: 0s\nwebhook:\n  url: http://{}/\n  headers: {{ X-Team: blue }}\n  batch: {{ max_alerts: 5, max_wait: 1h, format: ndjson }}\n",
        srv.addr
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    for i in 0..5 {
        router.submit(alert("Shell spawned", Priority::Critical, i));
    }
    let req = recv(&mut srv.rx).await;
    assert_eq!(req.headers["content-type"], "application/x-ndjson");
    assert_eq!(req.headers["x-team"], "blue");
    let text = String::from_utf8(req.body).unwrap();
    assert!(text.ends_with('\n'), "every line ends in a newline");
    let objs: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(indices(&objs), [0, 1, 2, 3, 4]);
    for o in &objs {
        assert_eq!(o["rule"], "Shell spawned");
        assert_eq!(o["priority"], "Critical");
    }
    eventually(|| (router.stats()[0].sent == 5).then_some(())).await;
    let report = router.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.undelivered, 0);
}

#[tokio::test]
async fn a_failed_batch_is_retried_whole_without_duplicates_or_losses() {
    let mut srv = HttpServer::start("127.0.0.1:0").await;
    srv.fail_next.store(1, Ordering::SeqCst);
    let (addr, rx) = (srv.addr, &mut srv.rx);
    let cfg = outputs(&format!(
        "loss_alert_interval: 0s\nwebhook:\n  url: http://{addr}/\n  retry: {{ initial_backoff: 20ms, max_backoff: 100ms }}\n  batch: {{ max_alerts: 3, max_wait: 1h }}\n"
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    for i in 0..6 {
        router.submit(alert("r", Priority::Warning, i));
    }
    // 503 to the first batch, its retry, then the second batch.
    let (r1, r2, r3) = (recv(rx).await, recv(rx).await, recv(rx).await);
    assert_eq!((r1.status, r2.status, r3.status), (503, 200, 200));
    assert_eq!(indices(&array_body(&r1.body)), [0, 1, 2]);
    assert_eq!(r2.body, r1.body, "the retry carries the same whole batch");
    let mut delivered = indices(&array_body(&r2.body));
    delivered.extend(indices(&array_body(&r3.body)));
    assert_eq!(
        delivered,
        (0..6).collect::<Vec<_>>(),
        "every alert accepted exactly once, in order"
    );
    eventually(|| (router.stats()[0].sent == 6).then_some(())).await;
    let st = &router.stats()[0];
    assert_eq!(st.failed, 1, "one failed attempt (the 503)");
    assert_eq!(st.retries, 1);
    assert_eq!(st.abandoned, 0);
    assert_eq!(st.queued, 0);
    let report = router.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.undelivered, 0);
    assert!(rx.try_recv().is_err(), "nothing re-sent after success");
}

#[tokio::test]
async fn signature_covers_the_whole_batch_body() {
    std::env::set_var("VIGIL_TEST_WEBHOOK_SECRET_BATCH", "b4tch-k3y");
    let mut srv = HttpServer::start("127.0.0.1:0").await;
    let cfg = outputs(&format!(
        "loss_alert_interval: 0s\nwebhook:\n  url: http://{}/\n  secret_env: VIGIL_TEST_WEBHOOK_SECRET_BATCH\n  batch: {{ max_alerts: 4, max_wait: 1h }}\n",
        srv.addr
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    for i in 0..4 {
        router.submit(alert("r", Priority::Warning, i));
    }
    let req = recv(&mut srv.rx).await;
    assert_eq!(indices(&array_body(&req.body)), [0, 1, 2, 3]);
    let sig = &req.headers["x-vigil-signature"];
    assert_eq!(
        *sig,
        format!("sha256={}", hmac_hex(b"b4tch-k3y", &req.body))
    );
    // Over the whole body, not one alert of it.
    let one = array_body(&req.body)[0].to_string();
    assert_ne!(
        *sig,
        format!("sha256={}", hmac_hex(b"b4tch-k3y", one.as_bytes()))
    );
    let report = router.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.undelivered, 0);
    assert_eq!(report.sinks[0].sent, 4);
}

#[test]
fn bad_batch_settings_are_config_errors_naming_the_key() {
    let parse = |y: &str| {
        serde_yaml_ng::from_str::<vigil_sinks::OutputsConfig>(y)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let e = parse("webhook:\n  url: http://127.0.0.1/\n  batch:\n    max_alerts: 0\n");
    assert!(
        e.contains("webhook.batch.max_alerts") && e.contains("line 4"),
        "{e}"
    );
    let e = parse("webhook: { url: \"http://127.0.0.1/\", batch: { max_alerts: 10001 } }");
    assert!(e.contains("webhook.batch.max_alerts"), "{e}");
    let e = parse("webhook:\n  url: http://127.0.0.1/\n  batch:\n    format: csv\n");
    assert!(
        e.contains("webhook.batch.format") && e.contains("csv"),
        "{e}"
    );
    let e = parse("webhook: { url: \"http://127.0.0.1/\", batch: { max_size: 10 } }");
    assert!(e.contains("max_size"), "{e}");
}
