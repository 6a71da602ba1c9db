//! Delivery, the part every sink shares (vector's "sink driver"): the
//! [`Sink`] trait a sink implements (deliver one [`Batch`] or fail), the
//! bounded queue in front of each sink ([`Queue`]: `try_send`, never blocks,
//! a full queue is a counted, rate-limited-log drop), the retry worker that
//! batches per the sink's [`BatchPolicy`] and retries with backoff
//! ([`worker`]), the loss-notice slots that bypass the queue ([`notices`]),
//! and the per-sink counters ([`SinkStats`]).
//!
//! A sink module builds its sink and policy; [`spawn`] puts the queue and the
//! worker task in front of it. Nothing here knows any sink.

mod notices;
mod worker;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use vigil_engine::Priority;

use crate::de::de_duration;
use crate::encode::Encoded;
use crate::error::DeliveryError;
use notices::Notices;
pub use notices::NOTICE_RETRY_EVERY;

/// Minimum time between two "queue full" warnings of one sink.
const DROP_WARN_EVERY: Duration = Duration::from_secs(10);

/// One output. `deliver` sends a whole batch or fails; the worker retries.
pub(crate) trait Sink: Send + 'static {
    fn deliver(&mut self, batch: &Batch) -> impl Future<Output = Result<(), DeliveryError>> + Send;
}

/// A group of alerts delivered together: what is queued for most sinks, a
/// digest for email. Alerts beyond the policy's `max` are only counted per
/// rule (`count_rest`).
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub alerts: Vec<Arc<Encoded>>,
    /// rule -> (count, most severe priority) of the alerts not kept.
    pub omitted: BTreeMap<Arc<str>, (u64, Priority)>,
    pub omitted_total: u64,
}

impl Batch {
    pub(crate) fn push(&mut self, a: Arc<Encoded>, keep: usize) {
        if self.alerts.len() < keep {
            self.alerts.push(a);
        } else {
            let e = self
                .omitted
                .entry(a.rule.clone())
                .or_insert((0, a.priority));
            e.0 += 1;
            e.1 = e.1.min(a.priority);
            self.omitted_total += 1;
        }
    }

    /// Alerts the batch stands for, kept or counted.
    pub fn len(&self) -> u64 {
        self.alerts.len() as u64 + self.omitted_total
    }
}

/// How a sink's worker groups alerts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchPolicy {
    /// Wait this long after the first alert for more (email digests,
    /// webhook batches). Zero: take only what is already queued.
    pub window: Duration,
    /// Alerts kept in one batch (with `count_rest`, the rest of a window's
    /// alerts are counted).
    pub max: usize,
    /// True: a window's alerts beyond `max` are only counted (digests).
    /// False: the batch ends at `max` alerts (sent as soon as it is full,
    /// even before `window` has passed).
    pub count_rest: bool,
    /// True (email): the first alert after `window` without any is sent
    /// alone at once; alerts within `window` after it form the next batch.
    pub lead_alone: bool,
}

impl BatchPolicy {
    /// Whatever is queued, up to `max`, at once (stdout, file, streams).
    pub fn queued(max: usize) -> BatchPolicy {
        BatchPolicy {
            window: Duration::ZERO,
            max,
            count_rest: false,
            lead_alone: false,
        }
    }
}

/// Retry policy of a sink (exponential backoff with jitter): `retry:` in
/// every sink's config block but stdout's.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts per alert (or digest) before it is given up and counted as
    /// abandoned; `0` = keep retrying while the alert is queued (until shutdown).
    #[serde(default)]
    pub max_attempts: u32,
    /// First backoff; doubled each failed attempt up to `max_backoff`.
    #[serde(default = "default_initial_backoff", deserialize_with = "de_duration")]
    pub initial_backoff: Duration,
    #[serde(default = "default_max_backoff", deserialize_with = "de_duration")]
    pub max_backoff: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 0,
            initial_backoff: default_initial_backoff(),
            max_backoff: default_max_backoff(),
        }
    }
}

fn default_initial_backoff() -> Duration {
    Duration::from_millis(500)
}
fn default_max_backoff() -> Duration {
    Duration::from_secs(30)
}

/// The settings every sink has: `min_priority`, `queue_size`, `retry`.
#[derive(Debug, Clone)]
pub(crate) struct QueueSettings {
    pub min: Option<Priority>,
    pub capacity: usize,
    pub retry: RetryConfig,
}

/// Counters of one sink, as returned by [`crate::Router::stats`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkStats {
    pub name: String,
    /// Alerts delivered (an email digest counts every alert it carries).
    pub sent: u64,
    /// Failed delivery attempts (each retry that fails counts once).
    pub failed: u64,
    /// Alerts dropped because the queue was full.
    pub dropped: u64,
    /// Alerts given up after `retry.max_attempts` or a permanent error.
    pub abandoned: u64,
    /// Alerts still queued or being delivered at shutdown's deadline.
    pub unflushed: u64,
    /// Alerts currently queued or in delivery.
    pub queued: u64,
    /// Retries scheduled (backoff sleeps).
    pub retries: u64,
    /// Queue capacity.
    pub capacity: usize,
    /// Batches sent at once as the first alert of a quiet period (email).
    pub immediate: u64,
    /// Batches collected over a window after a first alert (email digests).
    pub digests: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    abandoned: AtomicU64,
    unflushed: AtomicU64,
    queued: AtomicU64,
    retries: AtomicU64,
    immediate: AtomicU64,
    digests: AtomicU64,
    last_warn_ms: AtomicU64,
    dropped_since_warn: AtomicU64,
}

impl Counters {
    /// Alerts lost so far: dropped (queue full) plus given up.
    pub(crate) fn lost(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed) + self.abandoned.load(Ordering::Relaxed)
    }

    pub(crate) fn stats(&self, name: &str, capacity: usize) -> SinkStats {
        SinkStats {
            name: name.to_string(),
            sent: self.sent.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            abandoned: self.abandoned.load(Ordering::Relaxed),
            unflushed: self.unflushed.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            capacity,
            immediate: self.immediate.load(Ordering::Relaxed),
            digests: self.digests.load(Ordering::Relaxed),
        }
    }
}

/// The sending side of one sink: its bounded queue, its notice slots and
/// its counters. Dropping it closes the queue (the worker drains and exits).
pub(crate) struct Queue {
    pub name: &'static str,
    min: Option<Priority>,
    capacity: usize,
    tx: mpsc::Sender<Arc<Encoded>>,
    pub(crate) counters: Arc<Counters>,
    notices: Arc<Notices>,
}

fn now_ms() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_millis() as u64
}

impl Queue {
    /// Queues `alert` if it meets the sink's `min_priority`. Never blocks:
    /// a full queue drops it for this sink only, counted and logged (at
    /// most every 10 s).
    pub fn offer(&self, alert: &Arc<Encoded>) {
        if let Some(min) = self.min {
            if !alert.priority.at_least(min) {
                return;
            }
        }
        let c = &self.counters;
        c.queued.fetch_add(1, Ordering::Relaxed);
        if self.tx.try_send(alert.clone()).is_ok() {
            return;
        }
        c.queued.fetch_sub(1, Ordering::Relaxed);
        let total = c.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        c.dropped_since_warn.fetch_add(1, Ordering::Relaxed);
        let now = now_ms();
        let last = c.last_warn_ms.load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= DROP_WARN_EVERY.as_millis() as u64)
            && c.last_warn_ms
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let n = c.dropped_since_warn.swap(0, Ordering::Relaxed);
            tracing::warn!(
                sink = self.name,
                capacity = self.capacity,
                dropped = n,
                total_dropped = total,
                "alert queue full: alerts dropped for this sink"
            );
        }
    }

    /// Puts a loss notice in the sink's slot for its rule (past
    /// `min_priority` and the queue; a newer one replaces an undelivered one).
    pub fn notice(&self, alert: &Arc<Encoded>) {
        // Counted before it is visible, so the worker never takes it first.
        self.counters.queued.fetch_add(1, Ordering::Relaxed);
        if !self.notices.put(alert.clone()) {
            self.counters.queued.fetch_sub(1, Ordering::Relaxed); // replaced a pending one
        }
    }

    /// Puts the notices the sink gave up on back in their slots (at most
    /// every [`NOTICE_RETRY_EVERY`]).
    pub fn retry_notices(&self) {
        let n = self.notices.retry_given_up();
        self.counters.queued.fetch_add(n, Ordering::Relaxed);
    }

    pub fn stats(&self) -> SinkStats {
        self.counters.stats(self.name, self.capacity)
    }

    /// What [`Queue::stats`] needs after the queue is closed.
    pub fn stats_handle(&self) -> (&'static str, usize, Arc<Counters>) {
        (self.name, self.capacity, self.counters.clone())
    }
}

/// Puts a queue and a worker task (on the current tokio runtime) in front
/// of `sink`. `abort` turning true stops the worker's retries (shutdown's
/// deadline).
pub(crate) fn spawn<S: Sink>(
    name: &'static str,
    (sink, policy): (S, BatchPolicy),
    settings: QueueSettings,
    abort: watch::Receiver<bool>,
) -> (Queue, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(settings.capacity);
    let counters = Arc::new(Counters::default());
    let notices = Arc::new(Notices::default());
    let w = worker::Worker::new(
        name,
        rx,
        notices.clone(),
        counters.clone(),
        settings.retry,
        policy,
        abort,
    );
    let handle = tokio::spawn(w.run(sink));
    let queue = Queue {
        name,
        min: settings.min,
        capacity: settings.capacity,
        tx,
        counters,
        notices,
    };
    (queue, handle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_engine::Alert;

    #[test]
    fn batch_counts_what_it_does_not_keep() {
        let mk = |rule: &str, p| {
            Encoded::new(Arc::new(Alert {
                time: 0,
                rule: Arc::from(rule),
                priority: p,
                output: String::new(),
                output_fields: serde_json::Map::new(),
                tags: Arc::from(Vec::<String>::new()),
                source: "syscall",
                hostname: Arc::from("h"),
            }))
        };
        let mut b = Batch::default();
        b.push(mk("a", Priority::Info), 1);
        b.push(mk("b", Priority::Info), 1);
        b.push(mk("b", Priority::Critical), 1);
        assert_eq!(b.alerts.len(), 1);
        assert_eq!(b.len(), 3);
        assert_eq!(b.omitted[&Arc::<str>::from("b")], (2, Priority::Critical));
    }
}
