//! The router: fan-out and nothing else a sink does. [`Router::start`] has
//! [`crate::topology`] build the configured sinks; `submit` applies dedup,
//! encodes the alert once ([`Encoded`]) and offers it to every sink's
//! queue ([`crate::delivery::Queue::offer`]: `min_priority`, never blocks);
//! `submit_notice` puts a loss notice in every sink's notice slot. A ticker
//! task closes dedup windows, raises the "vigil alerts dropped" self-alert
//! ([`crate::loss`]) and re-arms notices a sink gave up on. `shutdown`
//! flushes within a bound and reports what was left.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use vigil_engine::Alert;

use crate::config::OutputsConfig;
use crate::dedup::{Dedup, DedupStats};
use crate::delivery::{Queue, SinkStats};
use crate::encode::Encoded;
use crate::error::SinkError;
use crate::loss::LossReporter;

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

struct Inner {
    queues: Vec<Queue>,
    dedup: Option<Mutex<Dedup>>,
    hostname: Arc<str>,
    loss: Mutex<LossReporter>,
}

/// Fan-out of alerts to the configured sinks. See the module docs.
pub struct Router {
    inner: Arc<Inner>,
    workers: Vec<JoinHandle<()>>,
    ticker: Option<JoinHandle<()>>,
    abort: watch::Sender<bool>,
    reopen: Arc<AtomicU64>,
}

/// A poisoned lock still guards valid state here (counters, dedup keys).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
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
        let started = crate::topology::start(cfg, &hostname, &reopen, &abort_rx)?;
        let tick = tick_interval(cfg);
        let inner = Arc::new(Inner {
            queues: started.queues,
            dedup: cfg.dedup.as_ref().map(|d| Mutex::new(Dedup::new(d))),
            hostname,
            loss: Mutex::new(LossReporter::new(cfg.loss_alert_interval)),
        });
        let ticker = tick.map(|t| tokio::spawn(ticker(Arc::downgrade(&inner), t)));
        tracing::info!(
            sinks = ?inner.queues.iter().map(|q| q.name).collect::<Vec<_>>(),
            dedup = inner.dedup.is_some(),
            "alert sinks started"
        );
        Ok(Router {
            inner,
            workers: started.workers,
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
                let out = lock(d).admit(alert, Instant::now());
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
        self.inner.queues.iter().map(Queue::stats).collect()
    }

    /// Dedup counters (all zero when dedup is off).
    pub fn dedup_stats(&self) -> DedupStats {
        match &self.inner.dedup {
            None => DedupStats::default(),
            Some(d) => lock(d).stats(),
        }
    }

    /// The sink and dedup counters in Prometheus text format (append to the
    /// daemon's `/metrics`). See [`crate::metrics::render_prometheus`].
    pub fn render_metrics(&self) -> String {
        crate::metrics::render_prometheus(&self.stats(), &self.dedup_stats())
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
            let pending = lock(d).drain();
            for a in pending {
                self.inner.fan_out(a);
            }
        }
        self.inner.raise_loss_alert(true);
        let counters: Vec<_> = self.inner.queues.iter().map(Queue::stats_handle).collect();
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
            .map(|(n, cap, c)| c.stats(n, *cap))
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
            let due = lock(d).expire(Instant::now());
            for a in due {
                inner.fan_out(a);
            }
        }
        inner.raise_loss_alert(false);
        for q in &inner.queues {
            q.retry_notices();
        }
    }
}

impl Inner {
    /// Encodes once, offers to every queue.
    fn fan_out(&self, alert: Arc<Alert>) {
        let e = Encoded::new(alert);
        for q in &self.queues {
            q.offer(&e);
        }
    }

    fn notice(&self, alert: Arc<Alert>) {
        let e = Encoded::new(alert);
        for q in &self.queues {
            q.notice(&e);
        }
    }

    fn raise_loss_alert(&self, force: bool) {
        let alert = lock(&self.loss).check(&self.queues, &self.hostname, force);
        if let Some(a) = alert {
            self.notice(Arc::new(a));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn router_can_be_shared_between_tasks() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Router>();
    }
}
