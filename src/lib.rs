//! The `vigil` library: everything the daemon and the live commands run,
//! for the thin `vigil` binary (`src/main.rs`, `src/commands/`: argument
//! parsing only) and for the tests, which use it as any caller would.
//!
//! - [`pipeline`]: sensors → ring buffer → process table → engine events.
//! - [`daemon`]: `vigil run` itself ([`daemon::run`]), sd_notify and the one
//!   signal handler ([`daemon::Signals`]).
//! - [`reload`]: the rule and config watcher (hot reload).
//! - [`config`]: the config file, `-o` overrides and the rule selection.
//! - [`metrics`]: Prometheus text and `/healthz`.
//! - [`perms`]: who may change what configures detection.
//! - [`fleet`]: rule sets from a NATS KV bucket, host status.

pub mod config;
pub mod daemon;
pub mod fleet;
pub mod metrics;
pub mod perms;
pub mod pipeline;
pub mod reload;
