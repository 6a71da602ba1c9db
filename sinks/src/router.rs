//! The fan-out: [`Router`] owns one bounded queue and one tokio task per
//! sink. `submit` applies dedup and each sink's `min_priority`, then
//! `try_send`s into the queues: it never blocks and never awaits; a full queue
//! is a counted, rate-limit-logged drop. Each sink task delivers with retry
//! (exponential backoff with jitter) while the alert is queued; `shutdown`
//! flushes within a bound and reports what was left. A ticker task closes
//! dedup windows and raises the "vigil alerts dropped" self-alert.
//!
//! Loss notices ("vigil alerts dropped" and the daemon's "vigil events lost",
//! through [`Router::submit_notice`]) bypass the queues: each sink keeps the
//! newest pending notice per rule in a slot of its own (a newer one replaces
//! an older undelivered one, so notices carry cumulative totals) and its
//! task delivers it before the next queued alert. A full queue or
//! `min_priority` can therefore never drop a notice. One the sink gives up
//! on (`retry.max_attempts`, a permanent error) is kept aside and put back
//! in its slot (unless a newer one is there) by the ticker and after the
//! sink's next successful delivery, at most every [`NOTICE_RETRY_EVERY`]:
//! notices repeat until one is delivered.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use serde_json::{Map, Value as Json};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use vigil_engine::{Alert, Priority};

use crate::config::{OutputsConfig, RetryConfig};
use crate::dedup::Dedup;
use crate::{DeliveryError, SinkError};

/// Minimum time between two "queue full" warnings of one sink.
const DROP_WARN_EVERY: Duration = Duration::from_secs(10);
/// Rule name of the self-alert raised when alerts were lost.
pub const LOSS_RULE: &str = "vigil alerts dropped";
/// Minimum time between two re-tries of a notice a sink gave up on.
pub const NOTICE_RETRY_EVERY: Duration = Duration::from_secs(1);

/// Counters of one sink, as returned by [`Router::stats`].
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

/// Dedup counters, as returned by [`Router::dedup_stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DedupStats {
    /// Keys currently tracked (bounded by `dedup.max_keys`).
    pub keys: usize,
    /// Alerts folded into a summary.
    pub suppressed: u64,
    /// Summary alerts emitted (carrying `vigil.count`).
    pub summaries: u64,
    /// Alerts passed through undeduplicated because the key table was full.
    pub over_capacity: u64,
}

/// What [`Router::shutdown`] managed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlushReport {
    /// The deadline passed before every queue was empty.
    pub timed_out: bool,
    /// Alerts left undelivered at the deadline (sum of `unflushed`).
    pub undelivered: u64,
    /// Final counters per sink.
    pub sinks: Vec<SinkStats>,
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

/// A group of alerts delivered together: one alert for most sinks, a digest
/// for email. Alerts beyond the sink's batch size are only counted per rule.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub alerts: Vec<Arc<Alert>>,
    /// rule -> (count, most severe priority) of the alerts not kept.
    pub omitted: BTreeMap<Arc<str>, (u64, Priority)>,
    pub omitted_total: u64,
}

impl Batch {
    fn push(&mut self, a: Arc<Alert>, keep: usize) {
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
    pub fn len(&self) -> u64 {
        self.alerts.len() as u64 + self.omitted_total
    }
}

/// How a sink's task groups alerts.
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

/// One output. `deliver` sends a whole batch or fails; the router retries.
pub(crate) trait Sink: Send + 'static {
    fn deliver(&mut self, batch: &Batch) -> impl Future<Output = Result<(), DeliveryError>> + Send;
}

struct Slot {
    name: &'static str,
    min: Option<Priority>,
    capacity: usize,
    tx: mpsc::Sender<Arc<Alert>>,
    c: Arc<Counters>,
    notices: Arc<Notices>,
}

/// The loss notices of one sink: the newest pending per rule, and those the
/// sink gave up on, waiting to be tried again.
#[derive(Default)]
struct Notices {
    state: Mutex<NoticeState>,
    wake: tokio::sync::Notify,
}

#[derive(Default)]
struct NoticeState {
    pending: BTreeMap<Arc<str>, Arc<Alert>>,
    given_up: BTreeMap<Arc<str>, Arc<Alert>>,
    last_retry: Option<Instant>,
}

impl Notices {
    fn lock(&self) -> std::sync::MutexGuard<'_, NoticeState> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Puts `a` in its rule's slot; true if the slot was empty (false: it
    /// replaced an undelivered older notice, which it supersedes).
    fn put(&self, a: Arc<Alert>) -> bool {
        let fresh = {
            let mut st = self.lock();
            st.given_up.remove(&a.rule);
            st.pending.insert(a.rule.clone(), a).is_none()
        };
        self.wake.notify_one();
        fresh
    }

    /// Takes every pending notice.
    fn take(&self) -> Vec<Arc<Alert>> {
        std::mem::take(&mut self.lock().pending)
            .into_values()
            .collect()
    }

    /// Keeps notices the sink gave up on, unless a newer one is pending.
    fn give_back(&self, notices: Vec<Arc<Alert>>) {
        let mut st = self.lock();
        for a in notices {
            if !st.pending.contains_key(&a.rule) {
                st.given_up.insert(a.rule.clone(), a);
            }
        }
    }

    /// Moves the given-up notices back to pending, at most every
    /// [`NOTICE_RETRY_EVERY`]. Returns how many became pending.
    fn retry_given_up(&self) -> u64 {
        let mut st = self.lock();
        if st.given_up.is_empty()
            || st
                .last_retry
                .is_some_and(|t| t.elapsed() < NOTICE_RETRY_EVERY)
        {
            return 0;
        }
        st.last_retry = Some(Instant::now());
        let mut n = 0;
        for (rule, a) in std::mem::take(&mut st.given_up) {
            if let std::collections::btree_map::Entry::Vacant(e) = st.pending.entry(rule) {
                e.insert(a);
                n += 1;
            }
        }
        drop(st);
        if n > 0 {
            self.wake.notify_one();
        }
        n
    }

    /// Takes everything (shutdown): (pending, given up).
    fn drain(&self) -> (u64, u64) {
        let mut st = self.lock();
        let p = std::mem::take(&mut st.pending).len() as u64;
        let g = std::mem::take(&mut st.given_up).len() as u64;
        (p, g)
    }
}

struct Spawner {
    slots: Vec<Slot>,
    workers: Vec<JoinHandle<()>>,
    abort: watch::Receiver<bool>,
}

impl Spawner {
    fn add<S: Sink>(
        &mut self,
        name: &'static str,
        sink: S,
        policy: BatchPolicy,
        (min, capacity, retry): (Option<Priority>, usize, RetryConfig),
    ) {
        let (tx, rx) = mpsc::channel(capacity);
        let c = Arc::new(Counters::default());
        let notices = Arc::new(Notices::default());
        let w = Worker {
            name,
            rx,
            notices: notices.clone(),
            c: c.clone(),
            retry,
            policy,
            abort: self.abort.clone(),
            last_alert: None,
            window_until: None,
        };
        self.workers.push(tokio::spawn(w.run(sink)));
        self.slots.push(Slot {
            name,
            min,
            capacity,
            tx,
            c,
            notices,
        });
    }
}

struct Inner {
    slots: Vec<Slot>,
    dedup: Option<Mutex<Dedup>>,
    hostname: Arc<str>,
    loss: Mutex<LossState>,
    loss_interval: Duration,
}

struct LossState {
    reported: BTreeMap<&'static str, u64>,
    last: Instant,
}

/// Fan-out of alerts to the configured sinks. See the module docs.
pub struct Router {
    inner: Arc<Inner>,
    workers: Vec<JoinHandle<()>>,
    ticker: Option<JoinHandle<()>>,
    abort: watch::Sender<bool>,
    reopen: Arc<AtomicU64>,
}

fn now_ms() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_millis() as u64
}

impl Router {
    /// Builds every configured sink and spawns its task on the current tokio
    /// runtime. Fails on settings that only show at start (missing env
    /// variables, unopenable file, bad header).
    pub fn start(cfg: &OutputsConfig, hostname: &str) -> Result<Router, SinkError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(SinkError::NoRuntime);
        }
        if cfg.is_empty() {
            return Err(SinkError::NoSinks);
        }
        let hostname: Arc<str> = Arc::from(hostname);
        let (abort, abort_rx) = watch::channel(false);
        let reopen = Arc::new(AtomicU64::new(0));

        let mut sp = Spawner {
            slots: Vec::new(),
            workers: Vec::new(),
            abort: abort_rx,
        };
        if let Some(s) = &cfg.stdout {
            let (sink, pol) = crate::stdout::build(s);
            let common = (s.min_priority, s.queue_size, RetryConfig::default());
            sp.add("stdout", sink, pol, common);
        }
        if let Some(s) = &cfg.file {
            let (sink, pol) = crate::file::build(s, reopen.clone())?;
            sp.add(
                "file",
                sink,
                pol,
                (s.min_priority, s.queue_size, s.retry.clone()),
            );
        }
        if let Some(s) = &cfg.syslog {
            let (sink, pol) = crate::syslog::build(s, &hostname)?;
            sp.add(
                "syslog",
                sink,
                pol,
                (s.min_priority, s.queue_size, s.retry.clone()),
            );
        }
        if let Some(s) = &cfg.webhook {
            let (sink, pol) = crate::webhook::build(s)?;
            sp.add(
                "webhook",
                sink,
                pol,
                (s.min_priority, s.queue_size, s.retry.clone()),
            );
        }
        if let Some(s) = &cfg.email {
            let (sink, pol) = crate::email::build(s, &hostname)?;
            sp.add(
                "email",
                sink,
                pol,
                (s.min_priority, s.queue_size, s.retry.clone()),
            );
        }
        if let Some(s) = &cfg.nats {
            let (sink, pol) = crate::nats::build(s, cfg.nats_connection.as_ref(), &hostname)?;
            sp.add(
                "nats",
                sink,
                pol,
                (s.min_priority, s.queue_size, s.retry.clone()),
            );
        }
        let Spawner { slots, workers, .. } = sp;

        let dedup = cfg.dedup.as_ref().map(|d| Mutex::new(Dedup::new(d)));
        let tick = tick_interval(cfg);
        let inner = Arc::new(Inner {
            slots,
            dedup,
            hostname,
            loss: Mutex::new(LossState {
                reported: BTreeMap::new(),
                last: Instant::now(),
            }),
            loss_interval: cfg.loss_alert_interval,
        });
        let ticker = tick.map(|t| tokio::spawn(ticker(Arc::downgrade(&inner), t)));
        tracing::info!(
            sinks = ?inner.slots.iter().map(|s| s.name).collect::<Vec<_>>(),
            dedup = inner.dedup.is_some(),
            "alert sinks started"
        );
        Ok(Router {
            inner,
            workers,
            ticker,
            abort,
            reopen,
        })
    }

    /// Hands an alert to every sink whose `min_priority` it meets, after
    /// dedup. Never blocks: a full queue drops the alert for that sink only,
    /// counted in `dropped` and logged (at most every 10 s per sink).
    pub fn submit(&self, alert: Arc<Alert>) {
        match &self.inner.dedup {
            None => self.inner.fan_out(alert),
            Some(d) => {
                let out = match d.lock() {
                    Ok(mut d) => d.admit(alert, Instant::now()),
                    Err(poisoned) => poisoned.into_inner().admit(alert, Instant::now()),
                };
                for a in out.into_iter().flatten() {
                    self.inner.fan_out(a);
                }
            }
        }
    }

    /// Hands a loss notice to every sink, past dedup, `min_priority` and the
    /// queues: it waits in the sink's notice slot and goes out before the
    /// next queued alert. A newer notice of the same rule replaces one not
    /// yet delivered, so a notice must carry cumulative totals.
    pub fn submit_notice(&self, alert: Arc<Alert>) {
        self.inner.notice(alert);
    }

    /// Makes the file sink reopen its path before its next write (SIGHUP,
    /// after logrotate renamed the file).
    pub fn reopen_files(&self) {
        self.reopen.fetch_add(1, Ordering::Relaxed);
        tracing::info!("alert files will be reopened");
    }

    /// Counters of every sink, in configuration order.
    pub fn stats(&self) -> Vec<SinkStats> {
        self.inner.stats()
    }

    /// Dedup counters (all zero when dedup is off).
    pub fn dedup_stats(&self) -> DedupStats {
        match &self.inner.dedup {
            None => DedupStats::default(),
            Some(d) => match d.lock() {
                Ok(d) => d.stats(),
                Err(p) => p.into_inner().stats(),
            },
        }
    }

    /// The sink and dedup counters in Prometheus text format (append to the
    /// daemon's `/metrics`). See [`render_prometheus`].
    pub fn render_metrics(&self) -> String {
        render_prometheus(&self.stats(), &self.dedup_stats())
    }

    /// Emits pending dedup summaries, closes the queues and waits for every
    /// sink to deliver what is queued, at most `timeout`. Alerts still
    /// undelivered then are counted in `unflushed` and reported.
    pub async fn shutdown(mut self, timeout: Duration) -> FlushReport {
        let deadline = tokio::time::Instant::now() + timeout;
        if let Some(t) = self.ticker.take() {
            t.abort();
            let _ = t.await;
        }
        if let Some(d) = &self.inner.dedup {
            let pending = match d.lock() {
                Ok(mut d) => d.drain(),
                Err(p) => p.into_inner().drain(),
            };
            for a in pending {
                self.inner.fan_out(a);
            }
        }
        self.inner.raise_loss_alert(true);
        let counters: Vec<(&'static str, usize, Arc<Counters>)> = self
            .inner
            .slots
            .iter()
            .map(|s| (s.name, s.capacity, s.c.clone()))
            .collect();
        let Router {
            inner,
            workers,
            abort,
            ..
        } = self;
        drop(inner); // closes the queues: workers drain, then exit
        let mut workers: Vec<Option<JoinHandle<()>>> = workers.into_iter().map(Some).collect();
        let timed_out = tokio::time::timeout_at(deadline, join_all(&mut workers))
            .await
            .is_err();
        if timed_out {
            // Deadline: workers stop retrying and count what is left.
            let _ = abort.send(true);
            if tokio::time::timeout(Duration::from_secs(1), join_all(&mut workers))
                .await
                .is_err()
            {
                for h in workers.iter().flatten() {
                    h.abort();
                }
            }
        }
        let sinks: Vec<SinkStats> = counters
            .iter()
            .map(|(n, cap, c)| stats_of(n, *cap, c))
            .collect();
        let undelivered = sinks.iter().map(|s| s.unflushed + s.queued).sum();
        if undelivered > 0 {
            tracing::warn!(undelivered, "alert sinks shut down with undelivered alerts");
        } else {
            tracing::info!("alert sinks flushed");
        }
        FlushReport {
            timed_out,
            undelivered,
            sinks,
        }
    }
}

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

/// Awaits every worker still running; a finished one is taken out, so this
/// can be called again after a timeout cancelled it.
async fn join_all(workers: &mut [Option<JoinHandle<()>>]) {
    for slot in workers.iter_mut() {
        if let Some(h) = slot {
            let _ = h.await;
            *slot = None;
        }
    }
}

fn stats_of(name: &str, capacity: usize, c: &Counters) -> SinkStats {
    SinkStats {
        name: name.to_string(),
        sent: c.sent.load(Ordering::Relaxed),
        failed: c.failed.load(Ordering::Relaxed),
        dropped: c.dropped.load(Ordering::Relaxed),
        abandoned: c.abandoned.load(Ordering::Relaxed),
        unflushed: c.unflushed.load(Ordering::Relaxed),
        queued: c.queued.load(Ordering::Relaxed),
        retries: c.retries.load(Ordering::Relaxed),
        capacity,
        immediate: c.immediate.load(Ordering::Relaxed),
        digests: c.digests.load(Ordering::Relaxed),
    }
}

fn tick_interval(cfg: &OutputsConfig) -> Option<Duration> {
    let mut t: Option<Duration> = None;
    if let Some(d) = &cfg.dedup {
        let mut min = d.window;
        for r in d.rules.values() {
            if let Some(w) = r.window {
                if !w.is_zero() {
                    min = min.min(w);
                }
            }
        }
        if !min.is_zero() {
            t = Some(min / 4);
        }
    }
    if !cfg.loss_alert_interval.is_zero() {
        let l = cfg.loss_alert_interval / 4;
        t = Some(t.map_or(l, |t| t.min(l)));
    }
    t.map(|t| t.clamp(Duration::from_millis(10), Duration::from_secs(1)))
}

async fn ticker(inner: Weak<Inner>, every: Duration) {
    let mut iv = tokio::time::interval(every);
    iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        iv.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        if let Some(d) = &inner.dedup {
            let due = match d.lock() {
                Ok(mut d) => d.expire(Instant::now()),
                Err(p) => p.into_inner().expire(Instant::now()),
            };
            for a in due {
                inner.fan_out(a);
            }
        }
        inner.raise_loss_alert(false);
        inner.retry_notices();
    }
}

impl Inner {
    fn fan_out(&self, alert: Arc<Alert>) {
        for s in &self.slots {
            if let Some(min) = s.min {
                if !alert.priority.at_least(min) {
                    continue;
                }
            }
            s.c.queued.fetch_add(1, Ordering::Relaxed);
            if s.tx.try_send(alert.clone()).is_err() {
                s.c.queued.fetch_sub(1, Ordering::Relaxed);
                let total = s.c.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                s.c.dropped_since_warn.fetch_add(1, Ordering::Relaxed);
                let now = now_ms();
                let last = s.c.last_warn_ms.load(Ordering::Relaxed);
                if (last == 0 || now.saturating_sub(last) >= DROP_WARN_EVERY.as_millis() as u64)
                    && s.c
                        .last_warn_ms
                        .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    let n = s.c.dropped_since_warn.swap(0, Ordering::Relaxed);
                    tracing::warn!(
                        sink = s.name,
                        capacity = s.capacity,
                        dropped = n,
                        total_dropped = total,
                        "alert queue full: alerts dropped for this sink"
                    );
                }
            }
        }
    }

    fn stats(&self) -> Vec<SinkStats> {
        self.slots
            .iter()
            .map(|s| stats_of(s.name, s.capacity, &s.c))
            .collect()
    }

    /// Raises the "alerts dropped" self-alert when any sink lost alerts since
    /// the last one, at most once per `loss_interval` (or now if `force`).
    fn raise_loss_alert(&self, force: bool) {
        if self.loss_interval.is_zero() {
            return;
        }
        let mut st = match self.loss.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if !force && st.last.elapsed() < self.loss_interval {
            return;
        }
        let mut fields = Map::new();
        let mut parts = Vec::new();
        let mut any = false;
        for s in &self.slots {
            let lost = s.c.dropped.load(Ordering::Relaxed) + s.c.abandoned.load(Ordering::Relaxed);
            let prev = st.reported.get(s.name).copied().unwrap_or(0);
            if lost > prev {
                any = true;
            }
            if lost > 0 {
                parts.push(format!("{} lost {lost} ({} new)", s.name, lost - prev));
                fields.insert(format!("vigil.lost.{}", s.name), Json::from(lost));
                fields.insert(
                    format!("vigil.lost_new.{}", s.name),
                    Json::from(lost - prev),
                );
            }
            st.reported.insert(s.name, lost);
        }
        st.last = Instant::now();
        if !any {
            return;
        }
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        let alert = Alert {
            time,
            rule: Arc::from(LOSS_RULE),
            priority: Priority::Error,
            output: format!(
                "vigil lost alerts (queue full or delivery given up), in total since start: {}",
                parts.join(", ")
            ),
            output_fields: fields,
            tags: Arc::from(vec!["vigil".to_string(), "loss".to_string()]),
            source: "internal",
            hostname: self.hostname.clone(),
        };
        tracing::warn!(output = %alert.output, "raising loss alert");
        drop(st);
        self.notice(Arc::new(alert));
    }

    /// Puts notices the sinks gave up on back in their slots.
    fn retry_notices(&self) {
        for s in &self.slots {
            let n = s.notices.retry_given_up();
            s.c.queued.fetch_add(n, Ordering::Relaxed);
        }
    }

    fn notice(&self, alert: Arc<Alert>) {
        for s in &self.slots {
            // Counted before it is visible, so the worker never takes it first.
            s.c.queued.fetch_add(1, Ordering::Relaxed);
            if !s.notices.put(alert.clone()) {
                s.c.queued.fetch_sub(1, Ordering::Relaxed); // replaced a pending one
            }
        }
    }
}

/// How one [`Worker::deliver`] ended.
enum Outcome {
    Sent,
    GivenUp,
    /// Shutdown's deadline passed first.
    Deadline,
}

struct Worker {
    name: &'static str,
    rx: mpsc::Receiver<Arc<Alert>>,
    notices: Arc<Notices>,
    c: Arc<Counters>,
    retry: RetryConfig,
    policy: BatchPolicy,
    abort: watch::Receiver<bool>,
    /// When the last alert arrived (`lead_alone`: is this one after a quiet period?).
    last_alert: Option<tokio::time::Instant>,
    /// End of the digest window opened by the last immediate send.
    window_until: Option<tokio::time::Instant>,
}

/// Resolves when shutdown's deadline has passed (never if the router is gone
/// without a shutdown: then the queues just drain).
async fn aborted(rx: &mut watch::Receiver<bool>) {
    if rx.wait_for(|v| *v).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Exponential backoff for attempt `n` (1-based) with "equal jitter": half
/// the step fixed, half random, so many sinks retrying do not synchronise.
pub(crate) fn backoff(retry: &RetryConfig, n: u32) -> Duration {
    let exp = 2u32.saturating_pow(n.saturating_sub(1).min(30));
    let base = retry
        .initial_backoff
        .saturating_mul(exp)
        .min(retry.max_backoff);
    let half = base / 2;
    let jitter = Duration::from_nanos(fastrand::u64(
        0..=half.as_nanos().min(u64::MAX as u128) as u64,
    ));
    half + jitter
}

impl Worker {
    async fn run<S: Sink>(mut self, mut sink: S) {
        loop {
            // Loss notices first: they never wait behind a full queue.
            if !self.deliver_notices(&mut sink).await {
                break;
            }
            let first = tokio::select! {
                biased;
                _ = aborted(&mut self.abort) => None,
                _ = self.notices.wake.notified() => continue,
                a = self.rx.recv() => a,
            };
            let Some(first) = first else {
                // Queue closed and empty: notices raised meanwhile still go out.
                self.deliver_notices(&mut sink).await;
                break;
            };
            let mut batch = Batch::default();
            batch.push(first, self.policy.max);
            let now = tokio::time::Instant::now();
            let quiet = self
                .last_alert
                .is_none_or(|t| now.duration_since(t) >= self.policy.window);
            self.last_alert = Some(now);
            let lead = self.policy.lead_alone && !self.policy.window.is_zero() && quiet;
            if lead {
                self.window_until = Some(now + self.policy.window);
            } else if !self.collect(&mut batch).await {
                self.unflushed(batch.len());
                break;
            }
            match self.deliver(&mut sink, &batch, false).await {
                Outcome::Deadline => {
                    self.unflushed(batch.len());
                    break;
                }
                // The sink works: notices it gave up on get another chance.
                Outcome::Sent => {
                    if lead {
                        self.c.immediate.fetch_add(1, Ordering::Relaxed);
                    } else if self.policy.count_rest && !self.policy.window.is_zero() {
                        self.c.digests.fetch_add(1, Ordering::Relaxed);
                    }
                    let n = self.notices.retry_given_up();
                    self.c.queued.fetch_add(n, Ordering::Relaxed);
                }
                Outcome::GivenUp => {}
            }
        }
        // Deadline passed or queue closed: count what is left.
        let (mut left, given_up) = self.notices.drain();
        self.c.unflushed.fetch_add(given_up, Ordering::Relaxed);
        while self.rx.try_recv().is_ok() {
            left += 1;
        }
        if left > 0 {
            self.unflushed(left);
        }
    }

    /// Delivers the pending notices (with retries). False if the deadline
    /// passed first.
    async fn deliver_notices<S: Sink>(&mut self, sink: &mut S) -> bool {
        let notices = self.notices.take();
        if notices.is_empty() {
            return true;
        }
        let batch = Batch {
            alerts: notices,
            ..Batch::default()
        };
        match self.deliver(sink, &batch, true).await {
            Outcome::Deadline => {
                self.unflushed(batch.len());
                false
            }
            Outcome::GivenUp => {
                self.notices.give_back(batch.alerts);
                true
            }
            Outcome::Sent => true,
        }
    }

    fn unflushed(&self, n: u64) {
        self.c.unflushed.fetch_add(n, Ordering::Relaxed);
        self.c.queued.fetch_sub(n, Ordering::Relaxed);
    }

    /// Fills the batch per the policy. False if the deadline passed.
    async fn collect(&mut self, batch: &mut Batch) -> bool {
        if self.policy.window.is_zero() {
            while batch.alerts.len() < self.policy.max || self.policy.count_rest {
                match self.rx.try_recv() {
                    Ok(a) => batch.push(a, self.policy.max),
                    Err(_) => break,
                }
            }
            return true;
        }
        let now = tokio::time::Instant::now();
        // After an immediate send, the digest closes when its window does.
        let until = self
            .window_until
            .take()
            .filter(|u| *u > now)
            .unwrap_or(now + self.policy.window);
        loop {
            if !self.policy.count_rest && batch.alerts.len() >= self.policy.max {
                return true; // full: send now (webhook batches)
            }
            tokio::select! {
                biased;
                _ = aborted(&mut self.abort) => return false,
                a = self.rx.recv() => match a {
                    Some(a) => {
                        self.last_alert = Some(tokio::time::Instant::now());
                        batch.push(a, self.policy.max)
                    }
                    None => return true, // closing: send what we have now
                },
                _ = tokio::time::sleep_until(until) => return true,
            }
        }
    }

    /// Delivers with retries. `notices`: a given-up batch is kept to be
    /// tried again (see [`Notices`]), not counted as abandoned.
    async fn deliver<S: Sink>(&mut self, sink: &mut S, batch: &Batch, notices: bool) -> Outcome {
        let n = batch.len();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let res = tokio::select! {
                biased;
                _ = aborted(&mut self.abort) => return Outcome::Deadline,
                r = sink.deliver(batch) => r,
            };
            match res {
                Ok(()) => {
                    self.c.sent.fetch_add(n, Ordering::Relaxed);
                    self.c.queued.fetch_sub(n, Ordering::Relaxed);
                    return Outcome::Sent;
                }
                Err(e) => {
                    self.c.failed.fetch_add(1, Ordering::Relaxed);
                    let give_up = !e.retryable
                        || (self.retry.max_attempts > 0 && attempt >= self.retry.max_attempts);
                    if give_up {
                        self.c.queued.fetch_sub(n, Ordering::Relaxed);
                        if notices {
                            tracing::error!(
                                sink = self.name,
                                attempts = attempt,
                                error = %e,
                                "loss notice delivery failed; it will be tried again"
                            );
                        } else {
                            self.c.abandoned.fetch_add(n, Ordering::Relaxed);
                            tracing::error!(
                                sink = self.name,
                                attempts = attempt,
                                alerts = n,
                                error = %e,
                                "alert delivery given up"
                            );
                        }
                        return Outcome::GivenUp;
                    }
                    let wait = backoff(&self.retry, attempt);
                    self.c.retries.fetch_add(1, Ordering::Relaxed);
                    if attempt == 1 || attempt.is_power_of_two() {
                        tracing::warn!(
                            sink = self.name,
                            attempt,
                            retry_in_ms = wait.as_millis() as u64,
                            error = %e,
                            "alert delivery failed, retrying"
                        );
                    }
                    tokio::select! {
                        biased;
                        _ = aborted(&mut self.abort) => return Outcome::Deadline,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let r = RetryConfig {
            max_attempts: 0,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        };
        for _ in 0..100 {
            let b1 = backoff(&r, 1);
            assert!(b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(100));
            let b3 = backoff(&r, 3);
            assert!(b3 >= Duration::from_millis(200) && b3 <= Duration::from_millis(400));
            let b40 = backoff(&r, 40);
            assert!(b40 >= Duration::from_millis(500) && b40 <= Duration::from_secs(1));
        }
    }

    #[test]
    fn router_can_be_shared_between_tasks() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Router>();
    }

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

    #[test]
    fn batch_counts_what_it_does_not_keep() {
        let mk = |rule: &str, p| {
            Arc::new(Alert {
                time: 0,
                rule: Arc::from(rule),
                priority: p,
                output: String::new(),
                output_fields: Map::new(),
                tags: Arc::from(Vec::<String>::new()),
                source: "syscall",
                hostname: Arc::from("h"),
            })
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
