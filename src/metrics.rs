//! Prometheus metrics for `vigil run --metrics ADDR`: a snapshot the run
//! loop refreshes (kernel counters, queue drops, process table, evaluator
//! stats) plus alert counters, rendered in the text exposition format and
//! served by a tiny HTTP/1.1 server (GET /metrics), which also answers
//! GET /healthz: 200 `ok`, or 503 with the reasons (see [`Snapshot::health`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use vigil_bpf::{KernelCounters, RawKind};

/// Everything the exporter shows.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub kernel: KernelCounters,
    /// Userspace queue drops per record kind.
    pub queue_drops: [u64; RawKind::COUNT],
    pub decode_errors: u64,
    pub proc_table_size: usize,
    pub proc_table_cap: usize,
    pub incomplete_events: u64,
    pub events_evaluated: u64,
    /// Alerts raised per (rule, priority).
    pub alerts: BTreeMap<(String, String), u64>,
    /// Rule evaluation errors per rule.
    pub eval_errors: BTreeMap<String, u64>,
    pub rules_loaded: usize,
    /// Loaded rules that cannot run on vigil (Falco rules needing an event
    /// kind or field vigil lacks): (rule, reason).
    pub rules_inactive: Vec<(String, String)>,
    /// Every sensor is attached (set once the daemon runs).
    pub attached: bool,
    /// The hooks attached (always-on and on-demand), by name.
    pub hooks: Vec<String>,
    /// On-demand kinds the rules need that this kernel cannot report.
    pub unavailable_kinds: Vec<String>,
    /// Outputs that gave up alerts after their retry budget and have not
    /// delivered since, each with its reason.
    pub failing_outputs: Vec<String>,
}

impl Snapshot {
    /// Healthy when the sensors are attached, rules are loaded and no output
    /// is failing beyond its retry budget; otherwise every reason.
    pub fn health(&self) -> Result<(), Vec<String>> {
        let mut why = Vec::new();
        if !self.attached {
            why.push("sensors not attached".to_string());
        }
        if self.rules_loaded == 0 {
            why.push("no enabled rule loaded".to_string());
        }
        why.extend(self.failing_outputs.iter().cloned());
        if why.is_empty() {
            Ok(())
        } else {
            Err(why)
        }
    }
}

/// Extra exposition text appended to every scrape (e.g. the sinks router's
/// `render_metrics`).
pub type MetricsSource = Box<dyn Fn() -> String + Send + Sync>;

/// Shared between the run loop (writer) and the HTTP server (reader).
#[derive(Default)]
pub struct Metrics {
    snap: Mutex<Snapshot>,
    sources: Mutex<Vec<MetricsSource>>,
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        if let Ok(mut s) = self.snap.lock() {
            f(&mut s);
        }
    }

    /// Append `f()`'s exposition text to every scrape.
    pub fn add_source(&self, f: MetricsSource) {
        if let Ok(mut v) = self.sources.lock() {
            v.push(f);
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        self.snap.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let s = self.snapshot();
        let mut o = String::new();
        let family = |o: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        family(
            &mut o,
            "vigil_kernel_events_seen_total",
            "counter",
            "Events the kernel programs saw, per type (before the filter).",
        );
        for k in RawKind::ALL {
            let _ = writeln!(
                o,
                "vigil_kernel_events_seen_total{{type=\"{}\"}} {}",
                k.as_str(),
                s.kernel.get(k).seen
            );
        }
        family(
            &mut o,
            "vigil_kernel_events_passed_total",
            "counter",
            "Events that passed the kernel first-stage filter, per type.",
        );
        for k in RawKind::ALL {
            let _ = writeln!(
                o,
                "vigil_kernel_events_passed_total{{type=\"{}\"}} {}",
                k.as_str(),
                s.kernel.get(k).passed
            );
        }
        family(
            &mut o,
            "vigil_kernel_events_lost_total",
            "counter",
            "Events lost because the ring buffer was full, per type.",
        );
        for k in RawKind::ALL {
            let _ = writeln!(
                o,
                "vigil_kernel_events_lost_total{{type=\"{}\"}} {}",
                k.as_str(),
                s.kernel.get(k).lost
            );
        }
        family(
            &mut o,
            "vigil_queue_dropped_total",
            "counter",
            "Events dropped because the userspace queue was full, per type.",
        );
        for k in RawKind::ALL {
            let _ = writeln!(
                o,
                "vigil_queue_dropped_total{{type=\"{}\"}} {}",
                k.as_str(),
                s.queue_drops[k as usize]
            );
        }
        family(
            &mut o,
            "vigil_hook_attached",
            "gauge",
            "Kernel hooks attached (1 per hook; on-demand hooks follow the loaded rules).",
        );
        for h in &s.hooks {
            let _ = writeln!(o, "vigil_hook_attached{{hook=\"{}\"}} 1", esc(h));
        }
        family(
            &mut o,
            "vigil_event_kind_unavailable",
            "gauge",
            "On-demand event kinds the loaded rules take that this kernel cannot report.",
        );
        for k in &s.unavailable_kinds {
            let _ = writeln!(o, "vigil_event_kind_unavailable{{kind=\"{}\"}} 1", esc(k));
        }
        family(
            &mut o,
            "vigil_decode_errors_total",
            "counter",
            "Ring buffer records that could not be decoded.",
        );
        let _ = writeln!(o, "vigil_decode_errors_total {}", s.decode_errors);
        family(
            &mut o,
            "vigil_events_evaluated_total",
            "counter",
            "Events handed to the rule evaluator.",
        );
        let _ = writeln!(o, "vigil_events_evaluated_total {}", s.events_evaluated);
        family(
            &mut o,
            "vigil_alerts_total",
            "counter",
            "Alerts raised, per rule and priority.",
        );
        for ((rule, prio), n) in &s.alerts {
            let _ = writeln!(
                o,
                "vigil_alerts_total{{rule=\"{}\",priority=\"{}\"}} {n}",
                esc(rule),
                esc(prio)
            );
        }
        family(
            &mut o,
            "vigil_rule_eval_errors_total",
            "counter",
            "Rule condition evaluation errors, per rule.",
        );
        for (rule, n) in &s.eval_errors {
            let _ = writeln!(
                o,
                "vigil_rule_eval_errors_total{{rule=\"{}\"}} {n}",
                esc(rule)
            );
        }
        family(
            &mut o,
            "vigil_process_table_size",
            "gauge",
            "Processes in the process table.",
        );
        let _ = writeln!(o, "vigil_process_table_size {}", s.proc_table_size);
        family(
            &mut o,
            "vigil_process_table_capacity",
            "gauge",
            "Maximum processes in the process table.",
        );
        let _ = writeln!(o, "vigil_process_table_capacity {}", s.proc_table_cap);
        family(
            &mut o,
            "vigil_incomplete_events_total",
            "counter",
            "Events built from incomplete process state.",
        );
        let _ = writeln!(o, "vigil_incomplete_events_total {}", s.incomplete_events);
        family(
            &mut o,
            "vigil_rules_loaded",
            "gauge",
            "Rules in the active rule set.",
        );
        let _ = writeln!(o, "vigil_rules_loaded {}", s.rules_loaded);
        family(
            &mut o,
            "vigil_rules_inactive",
            "gauge",
            "Loaded rules that cannot run on vigil (e.g. a Falco rule needing a syscall or field vigil lacks).",
        );
        let _ = writeln!(o, "vigil_rules_inactive {}", s.rules_inactive.len());
        family(
            &mut o,
            "vigil_rule_inactive",
            "gauge",
            "1 for each inactive rule, with the reason it cannot run.",
        );
        for (rule, reason) in &s.rules_inactive {
            let _ = writeln!(
                o,
                "vigil_rule_inactive{{rule=\"{}\",reason=\"{}\"}} 1",
                esc(rule),
                esc(reason)
            );
        }
        if let Ok(v) = self.sources.lock() {
            for f in v.iter() {
                o.push_str(&f());
            }
        }
        o
    }
}

/// The rules of `rules` that cannot run on vigil, with the reason: (rule, reason).
pub fn inactive_rules(rules: &vigil_engine::RuleSet) -> Vec<(String, String)> {
    rules
        .rules()
        .filter_map(|r| Some((r.name, r.falco?.inactive?)))
        .collect()
}

/// Bind `addr` and serve `GET /metrics` until the task is aborted.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                continue;
            };
            let m = metrics.clone();
            tokio::spawn(async move {
                let mut buf = Vec::with_capacity(1024);
                let mut chunk = [0u8; 1024];
                // read the request head (bounded)
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 8192 {
                    match tokio::time::timeout(
                        std::time::Duration::from_secs(5),
                        sock.read(&mut chunk),
                    )
                    .await
                    {
                        Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                        _ => return,
                    }
                }
                let line = buf.split(|&b| b == b'\r').next().unwrap_or_default();
                let line = String::from_utf8_lossy(line);
                let mut parts = line.split(' ');
                let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let (status, ctype, body) =
                    if method == "GET" && (path == "/metrics" || path == "/") {
                        (
                            "200 OK",
                            "text/plain; version=0.0.4; charset=utf-8",
                            m.render(),
                        )
                    } else if method == "GET" && path == "/healthz" {
                        match m.snapshot().health() {
                            Ok(()) => ("200 OK", "text/plain", "ok\n".to_string()),
                            Err(why) => (
                                "503 Service Unavailable",
                                "text/plain",
                                format!("{}\n", why.join("\n")),
                            ),
                        }
                    } else {
                        ("404 Not Found", "text/plain", "not found\n".to_string())
                    };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Ok((local, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inactive_rules_with_their_reason() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("falco.yaml");
        std::fs::write(
            &f,
            "- required_engine_version: 0.31.0\n\
             - rule: Trace\n  desc: d\n  condition: evt.type = kill and proc.name = x\n  output: o\n  priority: WARNING\n\
             - rule: Shell\n  desc: d\n  condition: evt.type = execve and proc.name = sh\n  output: o\n  priority: WARNING\n",
        )
        .unwrap();
        let rs = vigil_engine::RuleSet::load(&[f]).unwrap();
        let inactive = inactive_rules(&rs);
        assert_eq!(inactive.len(), 1, "{inactive:?}");
        assert_eq!(inactive[0].0, "Trace");
        assert!(inactive[0].1.contains("kill"), "{inactive:?}");
        let m = Metrics::default();
        m.update(|s| s.rules_inactive = inactive);
        let t = m.render();
        assert!(t.contains("vigil_rules_inactive 1\n"), "{t}");
        assert!(
            t.contains("vigil_rule_inactive{rule=\"Trace\",reason=\"needs syscall(s) kill"),
            "{t}"
        );
    }

    #[test]
    fn renders_counters_and_labels() {
        let m = Metrics::default();
        m.update(|s| {
            s.kernel.per_kind[RawKind::Open as usize].seen = 10;
            s.kernel.per_kind[RawKind::Open as usize].passed = 4;
            s.queue_drops[RawKind::Exec as usize] = 2;
            s.alerts
                .insert(("Shell \"x\"".into(), "Critical".into()), 3);
            s.proc_table_size = 7;
            s.hooks = vec!["sched_process_exec".into(), "sys_exit_dup2".into()];
            s.unavailable_kinds = vec!["module".into()];
        });
        let t = m.render();
        assert!(t.contains("vigil_hook_attached{hook=\"sys_exit_dup2\"} 1\n"));
        assert!(t.contains("vigil_event_kind_unavailable{kind=\"module\"} 1\n"));
        assert!(t.contains("vigil_kernel_events_seen_total{type=\"open\"} 10\n"));
        assert!(t.contains("vigil_kernel_events_passed_total{type=\"open\"} 4\n"));
        assert!(t.contains("vigil_queue_dropped_total{type=\"exec\"} 2\n"));
        assert!(
            t.contains("vigil_alerts_total{rule=\"Shell \\\"x\\\"\",priority=\"Critical\"} 3\n")
        );
        assert!(t.contains("vigil_process_table_size 7\n"));
        assert!(t.contains("# TYPE vigil_alerts_total counter"));
        m.add_source(Box::new(|| {
            "vigil_sink_sent_total{sink=\"x\"} 5\n".to_string()
        }));
        assert!(m
            .render()
            .ends_with("vigil_sink_sent_total{sink=\"x\"} 5\n"));
    }

    #[tokio::test]
    async fn serves_over_http_on_loopback() {
        let m = Arc::new(Metrics::default());
        m.update(|s| s.events_evaluated = 42);
        let m2 = m.clone();
        let (addr, task) = serve("127.0.0.1:0".parse().unwrap(), m).await.unwrap();
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut resp = String::new();
        c.read_to_string(&mut resp).await.unwrap();
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(resp.contains("vigil_events_evaluated_total 42\n"));
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /nope HTTP/1.1\r\n\r\n").await.unwrap();
        let mut resp = String::new();
        c.read_to_string(&mut resp).await.unwrap();
        assert!(resp.starts_with("HTTP/1.1 404"));
        let healthz = || async {
            let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
            c.write_all(b"GET /healthz HTTP/1.1\r\n\r\n").await.unwrap();
            let mut resp = String::new();
            c.read_to_string(&mut resp).await.unwrap();
            resp
        };
        let r = healthz().await;
        assert!(r.starts_with("HTTP/1.1 503"), "{r}");
        assert!(
            r.contains("sensors not attached") && r.contains("no enabled rule"),
            "{r}"
        );
        m2.update(|s| {
            s.attached = true;
            s.rules_loaded = 3;
        });
        let r = healthz().await;
        assert!(r.starts_with("HTTP/1.1 200") && r.ends_with("ok\n"), "{r}");
        m2.update(|s| s.failing_outputs = vec!["output webhook failing".into()]);
        let r = healthz().await;
        assert!(
            r.starts_with("HTTP/1.1 503") && r.contains("output webhook failing"),
            "{r}"
        );
        task.abort();
    }
}
