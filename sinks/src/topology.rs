//! From the `outputs:` config to running sinks: each configured block is
//! built by its sink module (settings checked, TLS and clients set up) and
//! put behind a queue and a worker ([`crate::delivery::spawn`]). The only
//! module that knows every sink.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::OutputsConfig;
use crate::delivery::{self, Queue, QueueSettings, RetryConfig};
use crate::error::SinkError;

/// The running sinks, in configuration order.
pub(crate) struct Started {
    pub queues: Vec<Queue>,
    pub workers: Vec<JoinHandle<()>>,
}

/// Builds every configured sink and spawns its worker. `reopen` is the file
/// sink's reopen generation; `abort` stops retries at shutdown's deadline.
pub(crate) fn start(
    cfg: &OutputsConfig,
    hostname: &Arc<str>,
    reopen: &Arc<AtomicU64>,
    abort: &watch::Receiver<bool>,
) -> Result<Started, SinkError> {
    let mut st = Started {
        queues: Vec::new(),
        workers: Vec::new(),
    };
    let mut add = |(q, h): (Queue, JoinHandle<()>)| {
        st.queues.push(q);
        st.workers.push(h);
    };
    let settings = |min, capacity, retry: &RetryConfig| QueueSettings {
        min,
        capacity,
        retry: retry.clone(),
    };
    if let Some(s) = &cfg.stdout {
        let set = settings(s.min_priority, s.queue_size, &RetryConfig::default());
        add(delivery::spawn(
            "stdout",
            crate::stdout::build(s),
            set,
            abort.clone(),
        ));
    }
    if let Some(s) = &cfg.file {
        let set = settings(s.min_priority, s.queue_size, &s.retry);
        add(delivery::spawn(
            "file",
            crate::file::build(s, reopen.clone())?,
            set,
            abort.clone(),
        ));
    }
    if let Some(s) = &cfg.syslog {
        let set = settings(s.min_priority, s.queue_size, &s.retry);
        add(delivery::spawn(
            "syslog",
            crate::syslog::build(s, hostname)?,
            set,
            abort.clone(),
        ));
    }
    if let Some(s) = &cfg.webhook {
        let set = settings(s.min_priority, s.queue_size, &s.retry);
        add(delivery::spawn(
            "webhook",
            crate::webhook::build(s)?,
            set,
            abort.clone(),
        ));
    }
    if let Some(s) = &cfg.email {
        let set = settings(s.min_priority, s.queue_size, &s.retry);
        add(delivery::spawn(
            "email",
            crate::email::build(s, hostname)?,
            set,
            abort.clone(),
        ));
    }
    if let Some(s) = &cfg.nats {
        let set = settings(s.min_priority, s.queue_size, &s.retry);
        let built = crate::nats::build(s, cfg.nats_connection.as_ref(), hostname)?;
        add(delivery::spawn("nats", built, set, abort.clone()));
    }
    Ok(st)
}
