//! The worker task of one sink: takes loss notices first, then batches
//! what is queued per the sink's [`BatchPolicy`] (a window to wait, a size,
//! email's first-alert-alone), and delivers each batch with retries
//! (exponential backoff with equal jitter) until it is sent, given up
//! (`retry.max_attempts`, a permanent error) or shutdown's deadline passes.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::notices::Notices;
use super::{Batch, BatchPolicy, Counters, RetryConfig, Sink};
use crate::encode::Encoded;

/// How one [`Worker::deliver`] ended.
enum Outcome {
    Sent,
    GivenUp,
    /// Shutdown's deadline passed first.
    Deadline,
}

pub(super) struct Worker {
    name: &'static str,
    rx: mpsc::Receiver<Arc<Encoded>>,
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
    pub(super) fn new(
        name: &'static str,
        rx: mpsc::Receiver<Arc<Encoded>>,
        notices: Arc<Notices>,
        c: Arc<Counters>,
        retry: RetryConfig,
        policy: BatchPolicy,
        abort: watch::Receiver<bool>,
    ) -> Worker {
        Worker {
            name,
            rx,
            notices,
            c,
            retry,
            policy,
            abort,
            last_alert: None,
            window_until: None,
        }
    }

    pub(super) async fn run<S: Sink>(mut self, mut sink: S) {
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
}
