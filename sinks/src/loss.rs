//! The "vigil alerts dropped" self-alert: when any sink dropped (queue
//! full) or gave up alerts since the last one, at most once per
//! `loss_alert_interval` (and once at shutdown), an alert naming each
//! sink's total and new losses goes to every sink as a loss notice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value as Json};
use vigil_engine::{Alert, Priority};

use crate::delivery::Queue;

/// Rule name of the self-alert raised when alerts were lost.
pub const LOSS_RULE: &str = "vigil alerts dropped";

/// What the last loss alert reported.
pub(crate) struct LossReporter {
    interval: Duration,
    reported: BTreeMap<&'static str, u64>,
    last: Instant,
}

impl LossReporter {
    /// `interval` zero: never raises.
    pub fn new(interval: Duration) -> LossReporter {
        LossReporter {
            interval,
            reported: BTreeMap::new(),
            last: Instant::now(),
        }
    }

    /// The loss alert when any sink lost alerts since the last one and the
    /// interval has passed (or `force`).
    pub fn check(&mut self, queues: &[Queue], hostname: &Arc<str>, force: bool) -> Option<Alert> {
        if self.interval.is_zero() || (!force && self.last.elapsed() < self.interval) {
            return None;
        }
        let mut fields = Map::new();
        let mut parts = Vec::new();
        let mut any = false;
        for q in queues {
            let lost = q.counters.lost();
            let prev = self.reported.get(q.name).copied().unwrap_or(0);
            any |= lost > prev;
            if lost > 0 {
                parts.push(format!("{} lost {lost} ({} new)", q.name, lost - prev));
                fields.insert(format!("vigil.lost.{}", q.name), Json::from(lost));
                fields.insert(
                    format!("vigil.lost_new.{}", q.name),
                    Json::from(lost - prev),
                );
            }
            self.reported.insert(q.name, lost);
        }
        self.last = Instant::now();
        if !any {
            return None;
        }
        let alert = Alert::internal(
            LOSS_RULE,
            Priority::Error,
            "loss",
            format!(
                "vigil lost alerts (queue full or delivery given up), in total since start: {}",
                parts.join(", ")
            ),
            fields,
            hostname.clone(),
        );
        tracing::warn!(output = %alert.output, "raising loss alert");
        Some(alert)
    }
}
