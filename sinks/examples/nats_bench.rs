//! Benchmark of the `outputs.nats` sink into one local `nats-server -js`
//! (started here, store in a temp dir, file storage): sustained alerts/s
//! through the router (queue, pipelined JetStream publish, acks), and the
//! alert-to-stored latency at a fixed rate (alert time set at submit, read
//! back against the stream's store timestamp, which the ack follows by one
//! loopback hop). Recorded in BENCHMARKS.md:
//!
//! ```sh
//! cargo run --release -p vigil-sinks --example nats_bench -- [ALERTS] [RATE] [SECONDS]
//! ```
//! defaults: 200000 alerts flat out; then 2000 alerts/s for 5 s.

#[path = "../tests/common/nats_server.rs"]
mod nats_server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value as Json};
use vigil_engine::{Alert, Priority};
use vigil_sinks::nats_config::NatsConnection;
use vigil_sinks::{OutputsConfig, Router};

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn alert(rule: &str, i: u64) -> Arc<Alert> {
    let mut f = Map::new();
    f.insert("proc.name".into(), Json::from("bash"));
    f.insert("proc.pid".into(), Json::from(i));
    f.insert(
        "proc.cmdline".into(),
        Json::from(format!("bash -c 'cat /etc/shadow' {i}")),
    );
    f.insert("fd.name".into(), Json::from("/etc/shadow"));
    Arc::new(Alert {
        time: now_ns(),
        rule: Arc::from(rule),
        priority: Priority::Warning,
        output: format!(
            "Sensitive file opened for reading by non-trusted program (file=/etc/shadow n={i})"
        ),
        output_fields: f,
        tags: Arc::from(vec![
            "filesystem".to_string(),
            "mitre_credential_access".to_string(),
        ]),
        source: "syscall",
        hostname: Arc::from("bench-host"),
    })
}

fn sent(r: &Router) -> u64 {
    r.stats()
        .iter()
        .find(|s| s.name == "nats")
        .map_or(0, |s| s.sent)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(200_000);
    let rate = args.get(1).copied().unwrap_or(2_000);
    let secs = args.get(2).copied().unwrap_or(5);
    let Some(srv) = nats_server::NatsCluster::single() else {
        std::process::exit(1);
    };
    let mut cfg: OutputsConfig = serde_yaml_ng::from_str(
        "loss_alert_interval: 0s\nnats:\n  create_stream: {}\n  queue_size: 100000\n",
    )
    .expect("config");
    cfg.nats_connection = Some(NatsConnection::plain(srv.urls()));
    let r = Router::start(&cfg, "bench-host").expect("router");
    // Warm up: connect and create the stream.
    r.submit(alert("warmup", 0));
    while sent(&r) < 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // 1. Flat out: keep the queue fed (never past half full, so nothing drops).
    let start = Instant::now();
    let mut i = 0;
    while i < n {
        let queued = r
            .stats()
            .iter()
            .find(|s| s.name == "nats")
            .map_or(0, |s| s.queued);
        if queued > 50_000 {
            tokio::time::sleep(Duration::from_micros(200)).await;
            continue;
        }
        for _ in 0..1000.min(n - i) {
            r.submit(alert("throughput", i));
            i += 1;
        }
        tokio::task::yield_now().await;
    }
    while sent(&r) < n + 1 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let el = start.elapsed();
    println!(
        "throughput: {n} alerts in {:.2} s = {:.0} alerts/s (queued, published, acked)",
        el.as_secs_f64(),
        n as f64 / el.as_secs_f64()
    );

    // 2. A fixed rate: alert time (submit) to stored, per alert.
    let total = rate * secs;
    let first_seq = n.saturating_sub(10);
    let every = Duration::from_secs_f64(1.0 / rate as f64);
    let t0 = tokio::time::Instant::now();
    for k in 0..total {
        tokio::time::sleep_until(t0 + every * k as u32).await;
        r.submit(alert("latency", k));
    }
    while sent(&r) < n + 1 + total {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let client = async_nats::connect(srv.urls()).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    let stream = js.get_stream("VIGIL_ALERTS").await.expect("stream");
    let last = stream.get_info().await.expect("info").state.last_sequence;
    let mut lat: Vec<f64> = Vec::with_capacity(total as usize);
    let mut read_errors = 0;
    for seq in first_seq..=last {
        let m = match stream.get_raw_message(seq).await {
            Ok(m) => m,
            Err(e) => {
                read_errors += 1;
                if read_errors == 1 {
                    eprintln!("read-back of seq {seq}: {e}");
                }
                continue;
            }
        };
        let v: Json = serde_json::from_slice(&m.payload).expect("json");
        if v["rule"] != "latency" {
            continue;
        }
        let sent_ns = Alert::from_json(&v).expect("alert").time;
        let stored_ns = m.time.unix_timestamp_nanos() as i64;
        lat.push((stored_ns - sent_ns) as f64 / 1e6);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "latency at {rate} alerts/s for {secs} s ({} of {total} alerts read back, {read_errors} read errors): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (alert submitted -> stored in the stream)",
        lat.len(),
        pct(0.50),
        pct(0.99),
        lat[lat.len() - 1]
    );
    let rep = r.shutdown(Duration::from_secs(5)).await;
    let st = &rep.sinks[0];
    println!(
        "sink counters: sent {} failed {} dropped {} abandoned {}",
        st.sent, st.failed, st.dropped, st.abandoned
    );
}
