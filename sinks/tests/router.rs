//! Router behaviour through the file sink (and a dead webhook as the slow
//! sink): logrotate rename + reopen, min_priority, queue overflow counted per
//! sink without slowing the others, shutdown flush and its bound, dedup
//! summaries, and the "alerts dropped" self-alert.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use vigil_engine::{Alert, Priority};
use vigil_sinks::Router;

fn read_alerts(p: &Path) -> Vec<Alert> {
    let s = std::fs::read_to_string(p).unwrap_or_default();
    s.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
            Alert::from_json(&v).expect("alert JSON")
        })
        .collect()
}

#[tokio::test]
async fn file_creates_parent_dir_and_reopens_after_rename() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/dir/alerts.jsonl");
    let cfg = outputs(&format!("file: {{ path: {} }}", path.display()));
    let router = Router::start(&cfg, "testhost").unwrap();
    for i in 0..3 {
        router.submit(alert("r", Priority::Warning, i));
    }
    eventually(|| (read_alerts(&path).len() == 3).then_some(())).await;
    // logrotate: rename, then SIGHUP -> reopen_files.
    let rotated = dir.path().join("sub/dir/alerts.jsonl.1");
    std::fs::rename(&path, &rotated).unwrap();
    router.reopen_files();
    for i in 3..5 {
        router.submit(alert("r", Priority::Warning, i));
    }
    eventually(|| (read_alerts(&path).len() == 2).then_some(())).await;
    let old: Vec<i64> = read_alerts(&rotated).iter().map(|a| a.time).collect();
    let new: Vec<i64> = read_alerts(&path).iter().map(|a| a.time).collect();
    assert_eq!(
        old,
        (0..3)
            .map(|i| alert("r", Priority::Warning, i).time)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        new,
        (3..5)
            .map(|i| alert("r", Priority::Warning, i).time)
            .collect::<Vec<_>>()
    );
    let back = &read_alerts(&path)[0];
    assert_eq!(
        *back,
        *alert("r", Priority::Warning, 3),
        "JSON line round-trips"
    );
    router.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn unopenable_file_is_a_start_error() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("afile");
    std::fs::write(&blocker, "x").unwrap();
    let cfg = outputs(&format!(
        "file: {{ path: {}/alerts.jsonl }}",
        blocker.display()
    ));
    let e = Router::start(&cfg, "h").err().expect("must fail");
    assert!(e.to_string().contains("outputs.file"), "{e}");
}

#[tokio::test]
async fn min_priority_filters_per_sink() {
    let dir = tempfile::tempdir().unwrap();
    let all = dir.path().join("all.jsonl");
    let loud = dir.path().join("loud.jsonl");
    // Two routers, one per file, to check min_priority on the same stream.
    let r1 = Router::start(
        &outputs(&format!("file: {{ path: {} }}", all.display())),
        "h",
    )
    .unwrap();
    let r2 = Router::start(
        &outputs(&format!(
            "file: {{ path: {}, min_priority: error }}",
            loud.display()
        )),
        "h",
    )
    .unwrap();
    for (i, p) in Priority::ALL.iter().enumerate() {
        r1.submit(alert("r", *p, i as i64));
        r2.submit(alert("r", *p, i as i64));
    }
    r1.shutdown(Duration::from_secs(5)).await;
    r2.shutdown(Duration::from_secs(5)).await;
    assert_eq!(read_alerts(&all).len(), 8);
    let got: Vec<Priority> = read_alerts(&loud).iter().map(|a| a.priority).collect();
    assert_eq!(
        got,
        vec![
            Priority::Emergency,
            Priority::Alert,
            Priority::Critical,
            Priority::Error
        ]
    );
}

// current_thread runtime: the sink tasks cannot run while the test submits,
// so exactly `queue_size` alerts fit and the rest must be counted as dropped.
#[tokio::test(flavor = "current_thread")]
async fn overflow_is_counted_and_a_dead_sink_does_not_slow_others() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.jsonl");
    let dead = free_port();
    let cfg = outputs(&format!(
        "file: {{ path: {}, queue_size: 1000 }}\nwebhook: {{ url: \"http://127.0.0.1:{dead}/\", queue_size: 4, retry: {{ initial_backoff: 10ms, max_backoff: 50ms }} }}\n",
        path.display()
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    for i in 0..20 {
        router.submit(alert("r", Priority::Warning, i));
    }
    let st = router.stats();
    assert_eq!(st[0].name, "file");
    assert_eq!(st[0].dropped, 0);
    assert_eq!(st[1].name, "webhook");
    assert_eq!(st[1].dropped, 16);
    assert_eq!(st[1].queued, 4);
    // The file sink gets all 20 while the webhook keeps failing.
    eventually(|| (read_alerts(&path).len() == 20).then_some(())).await;
    eventually(|| (router.stats()[1].failed >= 3).then_some(())).await;
    assert_eq!(router.stats()[1].sent, 0);

    let report = router.shutdown(Duration::from_millis(300)).await;
    assert!(report.timed_out);
    let wh = &report.sinks[1];
    // 16 dropped at submit; the loss alert raised at shutdown found room
    // (the worker had taken one alert out), so 4 + 1 were left undelivered.
    assert_eq!(wh.dropped, 16);
    assert_eq!(wh.sent, 0);
    assert_eq!(wh.unflushed, 5);
    assert_eq!(wh.queued, 0);
    assert_eq!(report.undelivered, 5);
    // The file got the "alerts dropped" self-alert naming the webhook.
    let alerts = read_alerts(&path);
    let loss: Vec<_> = alerts
        .iter()
        .filter(|a| &*a.rule == "vigil alerts dropped")
        .collect();
    assert_eq!(loss.len(), 1);
    assert_eq!(loss[0].output_fields["vigil.lost.webhook"], 16);
    assert!(loss[0].output.contains("webhook lost 16"));
}

#[tokio::test]
async fn shutdown_flushes_everything_queued() {
    let mut srv = HttpServer::start("127.0.0.1:0").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.jsonl");
    let cfg = outputs(&format!(
        "file: {{ path: {} }}\nwebhook: {{ url: \"http://{}/\" }}\n",
        path.display(),
        srv.addr
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    for i in 0..200 {
        router.submit(alert("r", Priority::Warning, i));
    }
    let report = router.shutdown(Duration::from_secs(20)).await;
    assert!(!report.timed_out);
    assert_eq!(report.undelivered, 0);
    assert_eq!(report.sinks[0].sent, 200);
    assert_eq!(report.sinks[1].sent, 200);
    assert_eq!(read_alerts(&path).len(), 200);
    let mut n = 0;
    while srv.rx.try_recv().is_ok() {
        n += 1;
    }
    assert_eq!(n, 200);
}

#[tokio::test]
async fn dedup_folds_repeats_into_a_counted_summary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.jsonl");
    let cfg = outputs(&format!(
        "file: {{ path: {} }}\ndedup: {{ window: 1h, by: [proc.name], rules: {{ Loud: {{ window: 0s }} }} }}\n",
        path.display()
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    for i in 0..10 {
        router.submit(alert("Repeat", Priority::Warning, i));
        router.submit(alert("Loud", Priority::Warning, i));
    }
    eventually(|| (read_alerts(&path).len() == 11).then_some(())).await;
    assert_eq!(router.dedup_stats().suppressed, 9);
    assert_eq!(router.dedup_stats().keys, 1);
    router.shutdown(Duration::from_secs(5)).await;
    let alerts = read_alerts(&path);
    assert_eq!(alerts.len(), 12);
    assert_eq!(alerts.iter().filter(|a| &*a.rule == "Loud").count(), 10);
    let rep: Vec<_> = alerts.iter().filter(|a| &*a.rule == "Repeat").collect();
    assert_eq!(rep.len(), 2);
    assert!(!rep[0].output_fields.contains_key("vigil.count"));
    assert_eq!(rep[1].output_fields["vigil.count"], 9);
    assert_eq!(rep[1].output_fields["vigil.first_time"], rep[0].time);
    assert!(rep[1].output.contains("repeated 9 more times"));
}

#[tokio::test]
async fn dedup_window_closes_on_the_ticker() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.jsonl");
    let cfg = outputs(&format!(
        "file: {{ path: {} }}\ndedup: {{ window: 100ms, by: [proc.name] }}\n",
        path.display()
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    for i in 0..5 {
        router.submit(alert("Repeat", Priority::Warning, i));
    }
    // No more alerts: the summary must come from the window closing alone.
    let alerts = eventually(|| {
        let a = read_alerts(&path);
        (a.len() == 2).then_some(a)
    })
    .await;
    assert_eq!(alerts[1].output_fields["vigil.count"], 4);
    assert_eq!(router.dedup_stats().summaries, 1);
    router.shutdown(Duration::from_secs(5)).await;
}

/// The daemon's "events lost" notice, as `vigil run` builds it (cumulative).
fn events_lost(total: u64) -> std::sync::Arc<Alert> {
    let mut a = (*alert("vigil events lost", Priority::Warning, 0)).clone();
    a.output_fields
        .insert("vigil.lost".into(), serde_json::Value::from(total));
    a.output = format!("vigil lost {total} events since start");
    std::sync::Arc::new(a)
}

/// Regression (issue 17, item 6): an alert storm that overflows every queue
/// (a webhook that keeps failing, a file sink filtered to critical) still
/// delivers the "events lost" notice, first, with the latest cumulative
/// total (a newer notice replaces an undelivered older one), past the full
/// queues and `min_priority`; at shutdown the "alerts dropped" notice
/// carries every sink's total.
// current_thread: the sink tasks cannot run while the test fills the queues.
#[tokio::test(flavor = "current_thread")]
async fn storm_overflowing_every_queue_still_delivers_loss_notices() {
    let mut srv = HttpServer::start("127.0.0.1:0").await;
    srv.fail_next.store(3, std::sync::atomic::Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.jsonl");
    let cfg = outputs(&format!(
        "loss_alert_interval: 1h\nfile: {{ path: {}, queue_size: 10, min_priority: critical }}\nwebhook: {{ url: \"http://{}/\", queue_size: 5, retry: {{ initial_backoff: 10ms, max_backoff: 50ms }} }}\n",
        path.display(),
        srv.addr
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    for i in 0..1000 {
        router.submit(alert("Storm", Priority::Critical, i));
    }
    let st = router.stats();
    assert_eq!(
        (st[0].dropped, st[1].dropped),
        (990, 995),
        "every queue full"
    );
    router.submit_notice(events_lost(500));
    router.submit_notice(events_lost(777));

    // The webhook fails 3 times, then its first delivery is the notice.
    let mut ok = Vec::new();
    while ok.len() < 6 {
        let r = recv(&mut srv.rx).await;
        if r.status == 200 {
            ok.push(serde_json::from_slice::<serde_json::Value>(&r.body).unwrap());
        }
    }
    assert_eq!(ok[0]["rule"], "vigil events lost");
    assert_eq!(ok[0]["output_fields"]["vigil.lost"], 777);
    assert!(ok[1..].iter().all(|j| j["rule"] == "Storm"));
    // The file: the notice first (Warning, past min_priority: critical).
    let first = eventually(|| read_alerts(&path).into_iter().next()).await;
    assert_eq!(&*first.rule, "vigil events lost");
    assert_eq!(first.output_fields["vigil.lost"], 777);

    let report = router.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.undelivered, 0);
    let alerts = read_alerts(&path);
    assert_eq!(
        alerts
            .iter()
            .filter(|a| &*a.rule == "vigil events lost")
            .count(),
        1,
        "the newer notice replaced the undelivered older one"
    );
    assert_eq!(alerts.iter().filter(|a| &*a.rule == "Storm").count(), 10);
    let dropped: Vec<_> = alerts
        .iter()
        .filter(|a| &*a.rule == "vigil alerts dropped")
        .collect();
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].output_fields["vigil.lost.file"], 990);
    assert_eq!(dropped[0].output_fields["vigil.lost.webhook"], 995);
    // ...and it reached the webhook that lost the alerts, too.
    let mut last = None;
    while let Ok(r) = srv.rx.try_recv() {
        last = Some(serde_json::from_slice::<serde_json::Value>(&r.body).unwrap());
    }
    let last = last.expect("the webhook got the shutdown notice");
    assert_eq!(last["rule"], "vigil alerts dropped");
    assert_eq!(last["output_fields"]["vigil.lost.webhook"], 995);
}

/// A loss notice the sink gives up on (here a permanent HTTP 400) is kept
/// and tried again until one is delivered; it is not counted as a lost alert.
#[tokio::test]
async fn a_given_up_notice_is_tried_again_until_delivered() {
    let mut srv = HttpServer::start("127.0.0.1:0").await;
    srv.status.store(400, std::sync::atomic::Ordering::SeqCst);
    let cfg = outputs(&format!(
        "loss_alert_interval: 50ms\nwebhook: {{ url: \"http://{}/\" }}\n",
        srv.addr
    ));
    let router = Router::start(&cfg, "testhost").unwrap();
    router.submit_notice(events_lost(5));
    let r = recv(&mut srv.rx).await;
    assert_eq!(r.status, 400);
    // The receiver recovers: the same notice goes out again.
    srv.status.store(200, std::sync::atomic::Ordering::SeqCst);
    let j = loop {
        let r = recv(&mut srv.rx).await;
        let j: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(j["rule"], "vigil events lost");
        if r.status == 200 {
            break j;
        }
    };
    assert_eq!(j["output_fields"]["vigil.lost"], 5);
    let st = eventually(|| {
        let st = router.stats()[0].clone();
        (st.sent == 1).then_some(st)
    })
    .await;
    assert_eq!((st.abandoned, st.queued), (0, 0), "{st:?}");
    assert!(st.failed >= 1);
    router.shutdown(Duration::from_secs(5)).await;
}
