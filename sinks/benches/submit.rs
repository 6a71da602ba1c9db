//! Cost of `Router::submit` (the only part on the event path) and sink
//! throughput: submit into a file sink, submit through dedup (the suppressed
//! path), and alerts/s until a file sink has written a whole batch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{Map, Value as Json};
use vigil_engine::{Alert, Priority};
use vigil_sinks::{OutputsConfig, Router};

fn alert(i: i64) -> Arc<Alert> {
    let mut f = Map::new();
    f.insert("proc.name".into(), Json::from("bash"));
    f.insert("proc.pid".into(), Json::from(i));
    f.insert("proc.cmdline".into(), Json::from("bash -c id"));
    f.insert("proc.exe".into(), Json::from("/usr/bin/bash"));
    Arc::new(Alert {
        time: 1_795_000_000_000_000_000 + i,
        rule: Arc::from("Shell spawned"),
        priority: Priority::Warning,
        output: format!("Shell bash spawned (pid={i})"),
        output_fields: f,
        tags: Arc::from(vec!["process".to_string()]),
        source: "syscall",
        hostname: Arc::from("bench"),
    })
}

fn cfg(yaml: &str) -> OutputsConfig {
    serde_yaml_ng::from_str(yaml).expect("bench config")
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.jsonl");
    let a = alert(1);

    // Accepted path: a fresh router per sample whose queue holds every
    // alert of the sample, so nothing is dropped while timing.
    c.bench_function("submit/file_sink_enqueued", |b| {
        b.iter_custom(|iters| {
            let n = iters.clamp(1, 5_000_000);
            let file = format!("file: {{ path: {}, queue_size: {n} }}", path.display());
            rt.block_on(async {
                let r = Router::start(&cfg(&file), "bench").expect("start");
                let t = Instant::now();
                for _ in 0..iters {
                    r.submit(a.clone());
                }
                let el = t.elapsed();
                let _ = r.shutdown(Duration::from_secs(120)).await;
                let _ = std::fs::remove_file(&path);
                el
            })
        });
    });

    // Overflow path: queue of 1, the sink cannot keep up, drops are counted.
    let file = format!("file: {{ path: {}, queue_size: 1 }}", path.display());
    let router = rt.block_on(async { Router::start(&cfg(&file), "bench").expect("start") });
    c.bench_function("submit/queue_full_drop", |b| {
        b.iter(|| router.submit(a.clone()));
    });
    rt.block_on(router.shutdown(Duration::from_secs(30)));

    let dedup = format!(
        "file: {{ path: {} }}\ndedup: {{ window: 1h, by: [proc.name, proc.cmdline] }}",
        path.display()
    );
    let router = rt.block_on(async { Router::start(&cfg(&dedup), "bench").expect("start") });
    c.bench_function("submit/dedup_suppressed", |b| {
        b.iter(|| router.submit(a.clone()));
    });
    rt.block_on(router.shutdown(Duration::from_secs(30)));

    let mut g = c.benchmark_group("throughput");
    g.sample_size(10);
    g.bench_function("file_sink_10k_alerts", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let _ = std::fs::remove_file(&path);
                let file = format!("file: {{ path: {}, queue_size: 10000 }}", path.display());
                total += rt.block_on(async {
                    let r = Router::start(&cfg(&file), "bench").expect("start");
                    let t = Instant::now();
                    for i in 0..10_000 {
                        r.submit(alert(i));
                    }
                    let rep = r.shutdown(Duration::from_secs(60)).await;
                    assert_eq!(rep.sinks[0].sent, 10_000);
                    t.elapsed()
                });
            }
            total
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
