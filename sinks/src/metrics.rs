//! The sinks' and dedup's counters as Prometheus text (the daemon appends
//! it to `/metrics`).

use crate::dedup::DedupStats;
use crate::delivery::SinkStats;

/// Prometheus text exposition of sink counters (label `sink`) and dedup
/// counters: `vigil_sink_alerts_sent_total`, `vigil_sink_delivery_failures_total`,
/// `vigil_sink_alerts_dropped_total`, `vigil_sink_alerts_abandoned_total`,
/// `vigil_sink_alerts_unflushed_total`, `vigil_sink_retries_total`,
/// `vigil_sink_queue_length`, `vigil_sink_queue_capacity`,
/// `vigil_dedup_suppressed_total`, `vigil_dedup_summaries_total`,
/// `vigil_dedup_over_capacity_total`, `vigil_dedup_keys`.
pub fn render_prometheus(stats: &[SinkStats], dedup: &DedupStats) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    type Get = fn(&SinkStats) -> u64;
    let per_sink: [(&str, &str, &str, Get); 10] = [
        (
            "vigil_sink_alerts_sent_total",
            "counter",
            "Alerts delivered by the sink.",
            |s| s.sent,
        ),
        (
            "vigil_sink_delivery_failures_total",
            "counter",
            "Failed delivery attempts.",
            |s| s.failed,
        ),
        (
            "vigil_sink_alerts_dropped_total",
            "counter",
            "Alerts dropped because the sink's queue was full.",
            |s| s.dropped,
        ),
        (
            "vigil_sink_alerts_abandoned_total",
            "counter",
            "Alerts given up after retries or a permanent error.",
            |s| s.abandoned,
        ),
        (
            "vigil_sink_alerts_unflushed_total",
            "counter",
            "Alerts left undelivered at shutdown.",
            |s| s.unflushed,
        ),
        (
            "vigil_sink_retries_total",
            "counter",
            "Delivery retries scheduled.",
            |s| s.retries,
        ),
        (
            "vigil_sink_queue_length",
            "gauge",
            "Alerts queued or in delivery.",
            |s| s.queued,
        ),
        (
            "vigil_sink_queue_capacity",
            "gauge",
            "Capacity of the sink's queue.",
            |s| s.capacity as u64,
        ),
        (
            "vigil_sink_immediate_batches_total",
            "counter",
            "Batches sent at once as the first alert of a quiet period (email).",
            |s| s.immediate,
        ),
        (
            "vigil_sink_digests_total",
            "counter",
            "Digest batches collected over the window after a first alert (email).",
            |s| s.digests,
        ),
    ];
    for (name, kind, help, get) in per_sink {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for s in stats {
            let _ = writeln!(o, "{name}{{sink=\"{}\"}} {}", s.name, get(s));
        }
    }
    let global: [(&str, &str, &str, u64); 4] = [
        (
            "vigil_dedup_suppressed_total",
            "counter",
            "Alerts folded into a dedup summary.",
            dedup.suppressed,
        ),
        (
            "vigil_dedup_summaries_total",
            "counter",
            "Dedup summary alerts emitted.",
            dedup.summaries,
        ),
        (
            "vigil_dedup_over_capacity_total",
            "counter",
            "Alerts passed undeduplicated because the key table was full.",
            dedup.over_capacity,
        ),
        (
            "vigil_dedup_keys",
            "gauge",
            "Dedup keys tracked.",
            dedup.keys as u64,
        ),
    ];
    for (name, kind, help, v) in global {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text() {
        let st = SinkStats {
            name: "webhook".into(),
            sent: 5,
            failed: 2,
            dropped: 1,
            abandoned: 0,
            unflushed: 0,
            queued: 3,
            retries: 2,
            capacity: 100,
            immediate: 0,
            digests: 0,
        };
        let d = DedupStats {
            keys: 4,
            suppressed: 9,
            summaries: 1,
            over_capacity: 0,
        };
        let t = render_prometheus(&[st], &d);
        assert!(t.contains("vigil_sink_alerts_sent_total{sink=\"webhook\"} 5\n"));
        assert!(t.contains("vigil_sink_alerts_dropped_total{sink=\"webhook\"} 1\n"));
        assert!(t.contains(
            "# TYPE vigil_sink_queue_length gauge\nvigil_sink_queue_length{sink=\"webhook\"} 3\n"
        ));
        assert!(t.contains("vigil_sink_queue_capacity{sink=\"webhook\"} 100\n"));
        assert!(t.contains("vigil_dedup_suppressed_total 9\n"));
        assert!(t.contains("vigil_dedup_keys 4\n"));
    }
}
