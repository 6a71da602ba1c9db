//! `vigil run`: load rules, attach the sensors, write the kernel filter,
//! evaluate rules on live events and print alerts (text or JSON lines) on
//! stdout; `--metrics` serves Prometheus text. `READY=1` goes to
//! `$NOTIFY_SOCKET` once every sensor is attached; SIGTERM/SIGINT flush and
//! exit 0.
//!
//! Wiring points for the rest of the daemon: [`StdoutSink`] is the alert
//! output (swap for `vigil_sinks::Router::submit`), the `signals` arm is
//! where SIGHUP / reload results call `Evaluator::swap_rules` +
//! `Live::set_filter`.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use vigil_bpf::RawKind;
use vigil_engine::ruleset::{hostname, Evaluator, RuleSet};
use vigil_engine::{Alert, Priority};

use crate::metrics::Metrics;
use crate::pipeline::{Live, LiveOptions};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub rules: crate::RulesArg,
    /// Configuration file (outputs, limits); loaded by the config module.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print alerts as JSON lines (Falco's keys) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9376).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Userspace event queue capacity (records).
    #[arg(long, default_value_t = 65_536)]
    pub queue: usize,
    /// Maximum processes tracked.
    #[arg(long, default_value_t = 65_536)]
    pub max_procs: usize,
}

/// Alerts to stdout, one line each.
pub struct StdoutSink {
    json: bool,
    out: std::io::BufWriter<std::io::Stdout>,
}

impl StdoutSink {
    pub fn new(json: bool) -> StdoutSink {
        StdoutSink {
            json,
            out: std::io::BufWriter::new(std::io::stdout()),
        }
    }
    pub fn submit(&mut self, a: Arc<Alert>) {
        let line = if self.json {
            a.to_json_line()
        } else {
            a.to_text_line()
        };
        if let Err(e) = writeln!(self.out, "{line}") {
            tracing::warn!(error = %e, "writing an alert to stdout failed");
        }
    }
    pub fn flush(&mut self) {
        let _ = self.out.flush();
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.rules.rules.is_empty() {
        anyhow::bail!("give at least one rule file or directory with --rules PATH");
    }
    if let Some(c) = &args.config {
        tracing::debug!(config = %c.display(), "config file accepted; outputs use stdout");
    }
    let rules = match RuleSet::load(&args.rules.rules) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            eprintln!("{e}");
            anyhow::bail!("the rules did not load ({} error(s))", e.0.len());
        }
    };
    let rt = crate::pipeline::runtime().context("starting the tokio runtime")?;
    rt.block_on(run_async(args, rules))
}

/// The "events lost" alert raised when the kernel or the queue dropped events.
fn loss_alert(host: &Arc<str>, what: &str, n: u64, by_type: &BTreeMap<&'static str, u64>) -> Alert {
    let mut fields = serde_json::Map::new();
    fields.insert("vigil.lost".into(), n.into());
    for (t, c) in by_type {
        fields.insert(format!("vigil.lost.{t}"), (*c).into());
    }
    let now = vigil_bpf::time::boottime_ns() + vigil_bpf::time::boot_to_epoch_offset();
    Alert {
        time: now,
        rule: Arc::from("vigil events lost"),
        priority: Priority::Warning,
        output: format!("vigil lost {n} events ({what}): {by_type:?}"),
        output_fields: fields,
        tags: Arc::from(vec!["vigil".to_string(), "loss".to_string()]),
        source: "syscall",
        hostname: host.clone(),
    }
}

/// Evaluates eligible events and hands alerts to the sink.
struct Handler {
    evaluator: Evaluator,
    sink: StdoutSink,
    alerts: Vec<Alert>,
    per_rule: BTreeMap<(String, String), u64>,
    evaluated: u64,
}

impl Handler {
    fn handle(&mut self, le: crate::pipeline::LiveEvent) {
        if !le.eligible {
            return;
        }
        self.evaluated += 1;
        self.evaluator.evaluate(&le.event, &mut self.alerts);
        for mut a in self.alerts.drain(..) {
            if le.event.proc.incomplete {
                a.output_fields
                    .insert("proc.incomplete".into(), true.into());
            }
            if le.truncated {
                a.output_fields
                    .insert("vigil.truncated".into(), true.into());
            }
            *self
                .per_rule
                .entry((a.rule.to_string(), a.priority.falco_name().to_string()))
                .or_default() += 1;
            self.sink.submit(Arc::new(a));
        }
    }
}

async fn run_async(args: Args, rules: Arc<RuleSet>) -> anyhow::Result<ExitCode> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut sigterm = signal(SignalKind::terminate()).context("installing signal handlers")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing signal handlers")?;
    let mut sighup = signal(SignalKind::hangup()).context("installing signal handlers")?;
    let filter = rules.kernel_filter();
    let host: Arc<str> = Arc::from(hostname());
    let evaluator = Evaluator::new(rules.clone(), &host);
    let mut live = Live::start(
        &filter,
        LiveOptions {
            queue: args.queue,
            max_procs: args.max_procs,
        },
    )?;
    let metrics = Arc::new(Metrics::default());
    let metrics_task = match args.metrics {
        Some(addr) => {
            let (local, task) = crate::metrics::serve(addr, metrics.clone())
                .await
                .with_context(|| format!("serving metrics on {addr}"))?;
            tracing::info!(addr = %local, "metrics at http://{local}/metrics");
            Some(task)
        }
        None => None,
    };
    let n_rules = rules.rules().filter(|r| r.enabled).count();
    tracing::info!(rules = n_rules, hash = rules.hash(), hooks = ?live.hooks(), "vigil running");
    let status = format!("watching with {n_rules} rules");
    if let Err(e) = crate::pipeline::sd_notify(&format!("READY=1\nSTATUS={status}\n")) {
        tracing::warn!(error = %e, "sd_notify READY failed");
    }

    let mut h = Handler {
        evaluator,
        sink: StdoutSink::new(args.json),
        alerts: Vec::new(),
        per_rule: BTreeMap::new(),
        evaluated: 0,
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut lost_reported = 0u64;
    let drops = live.queue_drops();

    loop {
        tokio::select! {
            _ = sigterm.recv() => {
                tracing::info!("SIGTERM: shutting down");
                break;
            }
            _ = sigint.recv() => {
                tracing::info!("SIGINT: shutting down");
                break;
            }
            _ = sighup.recv() => {
                // Reload: compile off to the side, swap only if it loaded.
                let paths = args.rules.rules.clone();
                match tokio::task::spawn_blocking(move || RuleSet::load(&paths)).await {
                    Ok(Ok(new)) => {
                        let new = Arc::new(new);
                        match live.set_filter(&new.kernel_filter()) {
                            Ok(()) => {
                                h.evaluator.swap_rules(new.clone());
                                tracing::info!(hash = new.hash(), "SIGHUP: rules reloaded");
                            }
                            Err(e) => tracing::error!(error = %e, "SIGHUP: writing the kernel filter failed; old rules kept"),
                        }
                    }
                    Ok(Err(e)) => tracing::error!("SIGHUP: rules did not load; old rules kept:\n{e}"),
                    Err(e) => tracing::error!(error = %e, "SIGHUP: reload task failed"),
                }
            }
            ev = live.next() => {
                let Some(le) = ev else {
                    tracing::error!("the event reader stopped");
                    break;
                };
                h.handle(le);
                // batch: take what is already queued before flushing
                for _ in 0..1024 {
                    match live.try_next() {
                        Some(le) => h.handle(le),
                        None => break,
                    }
                }
                h.sink.flush();
            }
            _ = tick.tick() => {
                let kernel = live.counters().unwrap_or_default();
                let qd: [u64; 7] = std::array::from_fn(|i| {
                    drops.as_ref().map_or(0, |d| d.per_kind[i].load(std::sync::atomic::Ordering::Relaxed))
                });
                let mut by_type = BTreeMap::new();
                let mut total = 0;
                for k in RawKind::ALL {
                    let n = kernel.get(k).lost + qd[k as usize];
                    if n > 0 {
                        by_type.insert(k.as_str(), n);
                    }
                    total += n;
                }
                if total > lost_reported {
                    let a = loss_alert(&host, "kernel ring buffer or userspace queue full", total - lost_reported, &by_type);
                    lost_reported = total;
                    h.sink.submit(Arc::new(a));
                    h.sink.flush();
                }
                let stats = h.evaluator.stats();
                let table = live.table_stats();
                metrics.update(|s| {
                    s.kernel = kernel;
                    s.queue_drops = qd;
                    s.decode_errors = drops.as_ref().map_or(0, |d| d.decode_errors.load(std::sync::atomic::Ordering::Relaxed));
                    s.proc_table_size = table.size;
                    s.proc_table_cap = args.max_procs;
                    s.incomplete_events = table.incomplete_events;
                    s.events_evaluated = h.evaluated;
                    s.alerts = h.per_rule.clone();
                    s.eval_errors = stats.errors.clone();
                    s.rules_loaded = n_rules;
                });
            }
        }
    }
    let _ = crate::pipeline::sd_notify("STOPPING=1\n");
    // A second SIGTERM/SIGINT skips the flush.
    tokio::spawn(async move {
        tokio::select! {
            _ = sigterm.recv() => {},
            _ = sigint.recv() => {},
        }
        std::process::exit(130);
    });
    // Drain what the kernel already handed over, bounded in time.
    live.stop().await;
    let deadline = std::time::Instant::now() + Duration::from_millis(1000);
    while std::time::Instant::now() < deadline {
        match live.try_next() {
            Some(le) => h.handle(le),
            None => break,
        }
    }
    h.sink.flush();
    if let Some(t) = metrics_task {
        t.abort();
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_alert_names_counts_per_type() {
        let host: Arc<str> = Arc::from("h");
        let by_type: BTreeMap<&'static str, u64> = [("open", 3), ("exec", 2)].into_iter().collect();
        let a = loss_alert(&host, "queue full", 5, &by_type);
        assert_eq!(&*a.rule, "vigil events lost");
        assert_eq!(a.priority, Priority::Warning);
        assert_eq!(a.output_fields["vigil.lost"], 5);
        assert_eq!(a.output_fields["vigil.lost.open"], 3);
        assert!(a.output.contains("lost 5 events (queue full)"));
        let j: serde_json::Value = serde_json::from_str(&a.to_json_line()).unwrap();
        assert_eq!(j["rule"], "vigil events lost");
    }
}
