//! The NATS JetStream sink against real `nats-server -js` processes started
//! here: alerts land in the stream in queue order, each with a `uuid` equal
//! to its `Nats-Msg-Id`; a server down for 10 s and restarted loses nothing
//! and stores nothing twice; an outage longer than the queue is counted and
//! alerted; a 3-node R3 stream whose leader is killed mid-flow holds every
//! alert exactly once.

mod common;
#[path = "common/nats_server.rs"]
mod nats_server;

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream;
use common::{alert, eventually, outputs};
use nats_server::{read_stream, NatsCluster, Stored};
use serde_json::Value as Json;
use vigil_engine::Priority;
use vigil_sinks::nats_config::{NatsConnection, NatsTls};
use vigil_sinks::{Router, SinkStats};

const STREAM: &str = "VIGIL_ALERTS";

fn router(yaml: &str, urls: Vec<String>) -> Router {
    let mut cfg = outputs(yaml);
    cfg.nats_connection = Some(NatsConnection::plain(urls));
    Router::start(&cfg, "testhost").unwrap()
}

fn nats_stats(r: &Router) -> SinkStats {
    r.stats().into_iter().find(|s| s.name == "nats").unwrap()
}

/// Waits until the nats sink has sent `n` alerts; panics with its counters.
async fn wait_sent(r: &Router, n: u64) {
    let end = tokio::time::Instant::now() + common::WAIT;
    while nats_stats(r).sent < n {
        assert!(
            tokio::time::Instant::now() < end,
            "never sent {n}: {:?}",
            nats_stats(r)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The test alert's index (`proc.pid` - 1000) of each stored message.
fn indexes(stored: &[Stored]) -> Vec<i64> {
    stored
        .iter()
        .map(|s| s.json["output_fields"]["proc.pid"].as_i64().unwrap() - 1000)
        .collect()
}

/// Every id appears once, and is the payload's `uuid`.
fn assert_ids_unique(stored: &[Stored]) {
    let mut seen = BTreeMap::new();
    for s in stored {
        assert_eq!(s.json["uuid"], s.msg_id.as_str(), "uuid == Nats-Msg-Id");
        assert_eq!(s.msg_id.len(), 36, "a UUID: {}", s.msg_id);
        *seen.entry(s.msg_id.clone()).or_insert(0) += 1;
    }
    let dup: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dup.is_empty(), "ids stored more than once: {dup:?}");
}

#[tokio::test]
async fn alerts_arrive_in_order_with_ids_and_survive_a_10s_outage() {
    let Some(mut srv) = NatsCluster::single() else {
        return;
    };
    let urls = srv.urls();
    let r = router(
        "nats:\n  create_stream: {}\n  ack_timeout: 1s\n  retry: { initial_backoff: 100ms, max_backoff: 1s }\n",
        urls.clone(),
    );
    for i in 0..50 {
        r.submit(alert("Shell spawned", Priority::Warning, i));
    }
    wait_sent(&r, 50).await;
    let stored = read_stream(urls.clone(), STREAM).await;
    assert_eq!(indexes(&stored), (0..50).collect::<Vec<_>>(), "queue order");
    assert_ids_unique(&stored);
    assert_eq!(stored[0].subject, "vigil.alerts.testhost.warning");
    assert_eq!(stored[0].json["rule"], "Shell spawned");

    // Down for 10 s while alerts keep coming, then back with its store.
    srv.nodes[0].kill();
    for i in 50..150 {
        r.submit(alert("Shell spawned", Priority::Warning, i));
        if i % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(1000)).await;
        }
    }
    let during = nats_stats(&r);
    assert!(during.queued > 0 && during.failed > 0, "{during:?}");
    srv.nodes[0].restart();
    wait_sent(&r, 150).await;
    let st = nats_stats(&r);
    assert_eq!((st.dropped, st.abandoned), (0, 0), "{st:?}");
    let stored = read_stream(urls, STREAM).await;
    assert_eq!(
        indexes(&stored),
        (0..150).collect::<Vec<_>>(),
        "every alert once, in order"
    );
    assert_ids_unique(&stored);
    let rep = r.shutdown(Duration::from_secs(2)).await;
    assert_eq!(rep.undelivered, 0);
}

#[tokio::test]
async fn an_outage_longer_than_the_queue_is_counted_and_alerted() {
    let Some(mut srv) = NatsCluster::single() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alerts.jsonl");
    let r = router(
        &format!(
            "loss_alert_interval: 200ms\nfile: {{ path: {} }}\nnats:\n  create_stream: {{}}\n  queue_size: 5\n  ack_timeout: 500ms\n  retry: {{ initial_backoff: 50ms, max_backoff: 200ms }}\n",
            file.display()
        ),
        srv.urls(),
    );
    r.submit(alert("r", Priority::Warning, 0));
    wait_sent(&r, 1).await;
    srv.nodes[0].kill();
    for i in 1..=20 {
        r.submit(alert("r", Priority::Warning, i));
    }
    // At most the queue (5) plus the batch in delivery wait; the rest is dropped.
    let st = nats_stats(&r);
    assert!(st.dropped >= 14, "{st:?}");
    let loss = eventually(|| {
        std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Json>(l).unwrap())
            .find(|v| v["rule"] == vigil_sinks::LOSS_RULE)
    })
    .await;
    assert_eq!(
        loss["output_fields"]["vigil.lost.nats"].as_u64(),
        Some(st.dropped),
        "{loss}"
    );
    // Back up: what was queued is delivered; the dropped ones stay counted.
    srv.nodes[0].restart();
    eventually(|| {
        let s = nats_stats(&r);
        (s.queued == 0).then_some(())
    })
    .await;
    let s = nats_stats(&r);
    assert!(s.sent >= 2 && s.abandoned == 0, "{s:?}");
}

#[tokio::test]
async fn killing_the_stream_leader_of_an_r3_stream_loses_and_duplicates_nothing() {
    let Some(mut cluster) = NatsCluster::start(3) else {
        return;
    };
    let urls = cluster.urls();
    let r = router(
        "nats:\n  create_stream: { replicas: 3 }\n  ack_timeout: 2s\n  retry: { initial_backoff: 100ms, max_backoff: 1s }\n",
        urls.clone(),
    );
    // The cluster elects its meta leader first; the first alert waits for it.
    r.submit(alert("r", Priority::Warning, 0));
    wait_sent(&r, 1).await;
    let client = async_nats::connect(urls.clone()).await.unwrap();
    let js = jetstream::new(client);
    let leader = js
        .get_stream(STREAM)
        .await
        .unwrap()
        .get_info()
        .await
        .unwrap()
        .cluster
        .and_then(|c| c.leader)
        .expect("R3 stream has a leader");
    drop(js);

    for i in 1..1000 {
        r.submit(alert("r", Priority::Warning, i));
        if i % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        if i == 300 {
            cluster.node(&leader).kill();
        }
    }
    wait_sent(&r, 1000).await;
    let st = nats_stats(&r);
    eprintln!("after the leader kill: {st:?}");
    assert_eq!((st.dropped, st.abandoned), (0, 0), "{st:?}");
    let survivors: Vec<String> = cluster
        .nodes
        .iter()
        .filter(|n| n.running())
        .map(|n| n.url())
        .collect();
    let stored = read_stream(survivors, STREAM).await;
    assert_ids_unique(&stored);
    let mut idx = indexes(&stored);
    assert_eq!(idx.len(), 1000, "every alert exactly once");
    idx.sort_unstable();
    assert_eq!(idx, (0..1000).collect::<Vec<_>>());
}

#[tokio::test]
async fn tls_with_a_private_ca_and_a_client_certificate() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let issue = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let ca_file = write("ca.pem", ca.pem());
    let (s_cert, s_key) = issue(vec!["127.0.0.1".into(), "localhost".into()]);
    let (c_cert, c_key) = issue(vec!["vigil-client".into()]);
    let (s_cert, s_key) = (write("server.pem", s_cert), write("server.key", s_key));
    let (c_cert, c_key) = (write("client.pem", c_cert), write("client.key", c_key));
    // The server requires a client certificate signed by the CA.
    let Some(srv) = NatsCluster::start_with(
        1,
        &format!(
            "tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\", verify: true }}\n",
            s_cert.display(),
            s_key.display(),
            ca_file.display()
        ),
    ) else {
        return;
    };
    let url = format!("tls://127.0.0.1:{}", srv.nodes[0].port);
    let start = |tls: NatsTls| {
        let mut cfg = outputs(
            "nats:\n  create_stream: {}\n  ack_timeout: 1s\n  retry: { initial_backoff: 50ms, max_backoff: 200ms }\n",
        );
        let mut conn = NatsConnection::plain(vec![url.clone()]);
        conn.tls = Some(tls);
        cfg.nats_connection = Some(conn);
        Router::start(&cfg, "testhost").unwrap()
    };
    let r = start(NatsTls {
        ca_file: Some(ca_file.clone()),
        cert_file: Some(c_cert),
        key_file: Some(c_key),
    });
    for i in 0..3 {
        r.submit(alert("r", Priority::Warning, i));
    }
    wait_sent(&r, 3).await;

    // Trusting the CA but without a client certificate: refused by the server.
    let r = start(NatsTls {
        ca_file: Some(ca_file),
        ..NatsTls::default()
    });
    r.submit(alert("r", Priority::Warning, 0));
    eventually(|| (nats_stats(&r).failed >= 2).then_some(())).await;
    assert_eq!(nats_stats(&r).sent, 0);
}
