//! vigil's alert outputs. [`Router`] fans every alert out to the configured
//! sinks ([`stdout`], [`file`], [`syslog`], [`webhook`], [`email`], [`nats`]), each
//! behind its own bounded queue and task with retry and counters, after
//! optional deduplication ([`dedup`]). [`config`] holds the serde types of the
//! config file's `outputs:` section (documented in `sinks/CONFIG.md`).
//!
//! Wiring in the daemon (inside the tokio runtime):
//! ```ignore
//! let router = vigil_sinks::Router::start(&config.outputs, &hostname)?; // spawns the sink tasks
//! // event loop:  router.submit(Arc::new(alert));   // never blocks
//! // SIGHUP:      router.reopen_files();
//! // /metrics:    body.push_str(&router.render_metrics());
//! // SIGTERM:     let report = router.shutdown(config.shutdown_timeout).await;
//! ```

pub mod config;
pub mod dedup;
pub mod email;
pub mod file;
pub mod nats;
pub mod nats_config;
pub mod router;
pub mod stdout;
pub mod syslog;
mod tls;
pub mod webhook;

pub use config::OutputsConfig;
pub use router::{render_prometheus, DedupStats, FlushReport, Router, SinkStats};

/// Errors starting the sinks (bad settings that only show at start, missing
/// environment variables, TLS setup).
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("outputs: no sink configured")]
    NoSinks,
    #[error("outputs.{sink}: {msg}")]
    Config { sink: &'static str, msg: String },
    #[error("outputs.{sink}: environment variable `{var}` ({key}) is not set")]
    MissingEnv {
        sink: &'static str,
        key: &'static str,
        var: String,
    },
    #[error("outputs.{sink}: {source}")]
    Io {
        sink: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Nats(#[from] nats_config::NatsConfigError),
    #[error("Router::start must be called inside a tokio runtime")]
    NoRuntime,
}

/// Why one delivery attempt failed; `retryable` decides whether the router
/// tries again (network errors, 5xx, 429) or gives the alert up (4xx, a
/// message the server refuses permanently).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{msg}")]
pub struct DeliveryError {
    pub retryable: bool,
    pub msg: String,
}

impl DeliveryError {
    pub fn transient(msg: impl Into<String>) -> Self {
        DeliveryError {
            retryable: true,
            msg: msg.into(),
        }
    }
    pub fn permanent(msg: impl Into<String>) -> Self {
        DeliveryError {
            retryable: false,
            msg: msg.into(),
        }
    }
}
