//! vigil's alert outputs, shaped like vector's sinks:
//!
//! - [`router`]: the fan-out. Dedup ([`dedup`]) first, then each alert is
//!   encoded once ([`encode`]) and offered to every sink's queue.
//! - [`delivery`]: what every sink shares: the `Sink` trait, the bounded
//!   queue, the retry worker and batching, the loss-notice slots, counters.
//! - one module folder per sink, each with its `config` type and its I/O:
//!   [`stdout`], [`file`], [`syslog`], [`webhook`], [`email`], [`nats`].
//!   No sink imports another; shared TLS setup is [`tls`].
//! - [`topology`] builds the configured sinks; [`config`] composes their
//!   config types into the `outputs:` section (documented in
//!   `sinks/CONFIG.md`); [`loss`] raises the "vigil alerts dropped"
//!   self-alert; [`metrics`] renders the counters for Prometheus.
//!
//! Imports point down that list (router -> topology -> sinks -> delivery ->
//! encode), never back: `sinks/tests/layering.rs` checks there is no cycle.
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
pub mod de;
pub mod dedup;
pub mod delivery;
pub mod email;
pub mod encode;
pub mod error;
pub mod file;
pub mod loss;
pub mod metrics;
pub mod nats;
pub mod router;
pub mod stdout;
pub mod syslog;
mod tls;
mod topology;
pub mod webhook;

pub use config::OutputsConfig;
pub use dedup::DedupStats;
pub use delivery::SinkStats;
pub use error::{DeliveryError, SinkError};
pub use loss::LOSS_RULE;
pub use metrics::render_prometheus;
pub use nats::connection as nats_config;
pub use router::{FlushReport, Router};
