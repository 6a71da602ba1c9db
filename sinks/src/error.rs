//! The sinks' error types: [`SinkError`] (a sink that cannot start) and
//! [`DeliveryError`] (one failed delivery attempt, retryable or not), and
//! [`NatsConfigError`] (the top-level `nats:` connection block).

/// Errors preparing or opening a NATS connection. The text names the key
/// (`nats.password`) and the variable or file, never the secret.
#[derive(Debug, Clone, thiserror::Error)]
#[error("nats.{key}: {msg}")]
pub struct NatsConfigError {
    pub key: &'static str,
    pub msg: String,
}

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
    Nats(#[from] NatsConfigError),
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
