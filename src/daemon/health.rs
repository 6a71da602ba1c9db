//! The daemon's health bookkeeping, fed every tick by the event loop
//! (`daemon/run.rs`): events lost (the "vigil events lost" notice and its
//! rate-limited warning), outputs failing beyond their retry budget (for
//! `/healthz`), the shutdown summary line, and the warning for a metrics
//! address other hosts can reach.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use vigil_bpf::RawKind;
use vigil_engine::{Alert, Priority};

/// The warning for a metrics address other hosts can reach, or None for loopback.
pub(super) fn metrics_exposure_warning(addr: SocketAddr) -> Option<String> {
    let ip = addr.ip().to_canonical();
    if ip.is_loopback() {
        return None;
    }
    Some(format!(
        "metrics served on {addr}, reachable from other hosts: it exposes vigil's internals \
         (rule names, alert counts per rule, event drop counters, evaluation errors) to anyone \
         who can connect; bind to 127.0.0.1 or firewall the port"
    ))
}

/// The "events lost" alert raised when the kernel or the queue dropped
/// events: `total` (and the per-type counts) since start, `new` since the
/// previous notice. Cumulative, so a notice that replaces an undelivered
/// older one in the sinks' notice slots loses nothing.
fn loss_alert(
    host: &Arc<str>,
    what: &str,
    total: u64,
    new: u64,
    by_type: &BTreeMap<&'static str, u64>,
) -> Alert {
    let mut fields = serde_json::Map::new();
    fields.insert("vigil.lost".into(), total.into());
    fields.insert("vigil.lost_new".into(), new.into());
    for (t, c) in by_type {
        fields.insert(format!("vigil.lost.{t}"), (*c).into());
    }
    let now = vigil_bpf::time::boottime_ns() + vigil_bpf::time::boot_to_epoch_offset();
    Alert {
        time: now,
        rule: Arc::from("vigil events lost"),
        priority: Priority::Warning,
        output: format!("vigil lost {total} events since start ({new} new; {what}): {by_type:?}"),
        output_fields: fields,
        tags: Arc::from(vec!["vigil".to_string(), "loss".to_string()]),
        source: "syscall",
        hostname: host.clone(),
    }
}

/// Minimum time between two "events lost" warnings in the log.
const LOSS_LOG_EVERY: Duration = Duration::from_secs(10);

/// When to raise (and log) the "vigil events lost" notice. The notice goes
/// through `Router::submit_notice`, which no full queue can drop, so the
/// reported total may advance as soon as the notice is handed over.
#[derive(Default)]
pub(super) struct EventLoss {
    /// The total carried by the last notice.
    pub(super) reported: u64,
    /// When the last warning was logged, and the losses since then.
    logged_at: Option<std::time::Instant>,
    unlogged: u64,
}

impl EventLoss {
    /// A notice when `total` grew since the last one; the growth is also
    /// logged as a warning, at most every [`LOSS_LOG_EVERY`].
    pub(super) fn observe(
        &mut self,
        host: &Arc<str>,
        total: u64,
        by_type: &BTreeMap<&'static str, u64>,
        now: std::time::Instant,
    ) -> Option<Alert> {
        if total <= self.reported {
            return None;
        }
        let new = total - self.reported;
        self.reported = total;
        self.unlogged += new;
        if self
            .logged_at
            .is_none_or(|t| now.duration_since(t) >= LOSS_LOG_EVERY)
        {
            tracing::warn!(
                lost = self.unlogged,
                total,
                by_type = ?by_type,
                "events lost: kernel ring buffer or userspace queue full"
            );
            self.logged_at = Some(now);
            self.unlogged = 0;
        }
        Some(loss_alert(
            host,
            "kernel ring buffer or userspace queue full",
            total,
            new,
            by_type,
        ))
    }
}

/// Which outputs are failing beyond their retry budget, for `/healthz`: an
/// output that abandoned alerts is failing until it delivers again. Fed the
/// router's counters every tick (a new router after a config reload starts
/// from zero).
#[derive(Default)]
pub(super) struct OutputHealth {
    /// (sent, abandoned) per output at the previous tick.
    last: BTreeMap<String, (u64, u64)>,
    failing: std::collections::BTreeSet<String>,
}

impl OutputHealth {
    pub(super) fn observe(&mut self, stats: &[vigil_sinks::SinkStats]) -> Vec<String> {
        for s in stats {
            let (sent, abandoned) = self.last.get(&s.name).copied().unwrap_or_default();
            let (sent, abandoned) = if s.sent < sent || s.abandoned < abandoned {
                (0, 0)
            } else {
                (sent, abandoned)
            };
            if s.abandoned > abandoned {
                if self.failing.insert(s.name.clone()) {
                    tracing::warn!(output = %s.name, abandoned = s.abandoned, "output failing: alerts given up after the retry budget (/healthz reports 503)");
                }
            } else if s.sent > sent && self.failing.remove(&s.name) {
                tracing::info!(output = %s.name, "output delivering again");
            }
            self.last.insert(s.name.clone(), (s.sent, s.abandoned));
        }
        self.failing
            .iter()
            .map(|n| {
                format!("output {n}: alerts abandoned after the retry budget, none delivered since")
            })
            .collect()
    }
}

/// The one line logged at shutdown: events the kernel saw per kind, alerts
/// raised per priority, events lost.
pub(super) fn shutdown_summary(
    kernel: &vigil_bpf::KernelCounters,
    per_rule: &BTreeMap<(String, String), u64>,
    lost: u64,
) {
    let seen: BTreeMap<&str, u64> = RawKind::ALL
        .iter()
        .map(|k| (k.as_str(), kernel.get(*k).seen))
        .collect();
    let mut alerts: BTreeMap<&str, u64> = BTreeMap::new();
    for ((_, prio), n) in per_rule {
        *alerts.entry(prio.as_str()).or_default() += n;
    }
    tracing::info!(events_seen = ?seen, alerts = ?alerts, lost, "shutdown summary");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_on_a_non_loopback_address_warns() {
        for a in [
            "127.0.0.1:9376",
            "127.8.0.1:1",
            "[::1]:9376",
            "[::ffff:127.0.0.1]:1",
        ] {
            assert_eq!(metrics_exposure_warning(a.parse().unwrap()), None, "{a}");
        }
        for a in ["0.0.0.0:9376", "192.0.2.7:9376", "[::]:9376"] {
            let w = metrics_exposure_warning(a.parse().unwrap()).unwrap_or_default();
            assert!(w.contains(a) && w.contains("exposes"), "{a}: {w}");
        }
    }

    #[test]
    fn loss_alert_names_counts_per_type() {
        let host: Arc<str> = Arc::from("h");
        let by_type: BTreeMap<&'static str, u64> = [("open", 3), ("exec", 2)].into_iter().collect();
        let a = loss_alert(&host, "queue full", 5, 2, &by_type);
        assert_eq!(&*a.rule, "vigil events lost");
        assert_eq!(a.priority, Priority::Warning);
        assert_eq!(a.output_fields["vigil.lost"], 5);
        assert_eq!(a.output_fields["vigil.lost_new"], 2);
        assert_eq!(a.output_fields["vigil.lost.open"], 3);
        assert!(a
            .output
            .contains("lost 5 events since start (2 new; queue full)"));
        let j: serde_json::Value = serde_json::from_str(&a.to_json_line()).unwrap();
        assert_eq!(j["rule"], "vigil events lost");
    }

    #[test]
    fn event_loss_notices_carry_cumulative_totals_and_log_rate_limited() {
        let host: Arc<str> = Arc::from("h");
        let t0 = std::time::Instant::now();
        let mut el = EventLoss::default();
        assert!(el.observe(&host, 0, &BTreeMap::new(), t0).is_none());
        let by: BTreeMap<&'static str, u64> = [("open", 5)].into_iter().collect();
        let a = el.observe(&host, 5, &by, t0).expect("first loss");
        assert_eq!(a.output_fields["vigil.lost"], 5);
        assert_eq!(a.output_fields["vigil.lost_new"], 5);
        assert_eq!(el.logged_at, Some(t0));
        assert!(el.observe(&host, 5, &by, t0).is_none(), "no new loss");
        // More losses a second later: a notice with the running total (it
        // supersedes the first if that is still undelivered); the warning
        // waits for the log interval.
        let by: BTreeMap<&'static str, u64> = [("open", 9), ("exec", 3)].into_iter().collect();
        let t1 = t0 + Duration::from_secs(1);
        let a = el.observe(&host, 12, &by, t1).expect("more loss");
        assert_eq!(a.output_fields["vigil.lost"], 12);
        assert_eq!(a.output_fields["vigil.lost_new"], 7);
        assert_eq!(a.output_fields["vigil.lost.open"], 9);
        assert_eq!(a.output_fields["vigil.lost.exec"], 3);
        assert_eq!((el.logged_at, el.unlogged), (Some(t0), 7));
        let t2 = t0 + LOSS_LOG_EVERY;
        el.observe(&host, 13, &by, t2).expect("more loss");
        assert_eq!((el.logged_at, el.unlogged), (Some(t2), 0));
    }

    /// Regression (issue 17, item 6): in an alert storm the "events lost"
    /// alert was submitted like any alert, dropped by the full queue, and
    /// never repeated. Now it takes the notice path: with the only sink's
    /// queue full, it is still delivered, first, with the total.
    #[tokio::test(flavor = "current_thread")]
    async fn events_lost_notice_survives_a_full_queue() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.jsonl");
        let outputs: vigil_sinks::OutputsConfig = serde_yaml_ng::from_str(&format!(
            "loss_alert_interval: 0s\nfile: {{ path: {}, queue_size: 4 }}\n",
            path.display()
        ))
        .unwrap();
        let router = vigil_sinks::Router::start(&outputs, "h").unwrap();
        let host: Arc<str> = Arc::from("h");
        let storm = crate::daemon::run::config_failed_alert(
            &host,
            std::path::Path::new("/x"),
            "an ordinary alert",
        );
        for _ in 0..100 {
            router.submit(Arc::new(storm.clone()));
        }
        assert_eq!(router.stats()[0].dropped, 96, "the queue is full");
        let mut el = EventLoss::default();
        let by: BTreeMap<&'static str, u64> = [("open", 95_683)].into_iter().collect();
        let now = std::time::Instant::now();
        let a = el.observe(&host, 95_683, &by, now).unwrap();
        router.submit_notice(Arc::new(a));
        let report = router.shutdown(Duration::from_secs(5)).await;
        assert_eq!(report.undelivered, 0);
        let text = std::fs::read_to_string(&path).unwrap();
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["rule"], "vigil events lost");
        assert_eq!(first["output_fields"]["vigil.lost"], 95_683);
        assert_eq!(first["output_fields"]["vigil.lost.open"], 95_683);
        assert_eq!(
            text.lines().count(),
            5,
            "the notice and the 4 queued alerts"
        );
    }

    #[test]
    fn an_output_fails_when_it_abandons_and_recovers_when_it_delivers() {
        let st = |sent, abandoned| vigil_sinks::SinkStats {
            name: "webhook".into(),
            sent,
            failed: 0,
            dropped: 0,
            abandoned,
            unflushed: 0,
            queued: 0,
            retries: 0,
            capacity: 10,
            immediate: 0,
            digests: 0,
        };
        let mut h = OutputHealth::default();
        assert!(h.observe(&[st(3, 0)]).is_empty());
        let f = h.observe(&[st(3, 1)]);
        assert_eq!(f.len(), 1);
        assert!(f[0].starts_with("output webhook:"), "{f:?}");
        assert_eq!(
            h.observe(&[st(3, 1)]).len(),
            1,
            "still failing: nothing delivered"
        );
        assert!(h.observe(&[st(4, 1)]).is_empty(), "delivered again");
        // A new router (config reload) starts its counters at zero.
        assert!(h.observe(&[st(0, 0)]).is_empty());
        assert_eq!(h.observe(&[st(0, 2)]).len(), 1);
    }
}
