//! `outputs.webhook`: URL, headers, HMAC secret, optional batching.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::Deserializer;
use serde::Deserialize;
use vigil_engine::Priority;

use crate::de::{de_bounded, de_duration, de_str_with};
use crate::de::{de_opt_priority, de_queue_size, default_queue_size};
use crate::delivery::RetryConfig;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://` or `https://` URL the alert JSON is POSTed to.
    #[serde(deserialize_with = "de_http_url")]
    pub url: String,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Name of the environment variable holding the HMAC-SHA256 key; when set,
    /// requests carry `X-Vigil-Signature: sha256=<hex>`. The variable must exist.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// Whole-request timeout.
    #[serde(default = "default_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// PEM file with CA certificates trusted in addition to the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Several alerts per request. Absent: one alert object per request
    /// (falcosidekick-compatible).
    #[serde(default)]
    pub batch: Option<WebhookBatchConfig>,

    #[serde(default, deserialize_with = "de_opt_priority")]
    pub min_priority: Option<Priority>,
    #[serde(default = "default_queue_size", deserialize_with = "de_queue_size")]
    pub queue_size: usize,
    #[serde(default)]
    pub retry: RetryConfig,
}

/// Largest `webhook.batch.max_alerts`.
pub const WEBHOOK_MAX_BATCH: usize = 10_000;

/// `webhook.batch`: alerts are collected and POSTed together. A batch is
/// sent when it holds `max_alerts` alerts or `max_wait` after its first
/// alert, whichever comes first; it is delivered (and retried) whole.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookBatchConfig {
    /// Alerts per request at most (1 to [`WEBHOOK_MAX_BATCH`]).
    #[serde(
        default = "default_batch_max_alerts",
        deserialize_with = "de_batch_max_alerts"
    )]
    pub max_alerts: usize,
    /// How long a batch waits for more alerts after its first one. `0s`:
    /// no waiting, a request carries what is queued at that moment.
    #[serde(default = "default_batch_max_wait", deserialize_with = "de_duration")]
    pub max_wait: Duration,
    /// Body layout.
    #[serde(default)]
    pub format: WebhookBatchFormat,
}

impl Default for WebhookBatchConfig {
    fn default() -> Self {
        WebhookBatchConfig {
            max_alerts: default_batch_max_alerts(),
            max_wait: default_batch_max_wait(),
            format: WebhookBatchFormat::default(),
        }
    }
}

/// Body of a batched webhook request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookBatchFormat {
    /// One JSON array of alert objects (`Content-Type: application/json`).
    #[default]
    Array,
    /// One alert JSON object per line, each line ending in `\n`
    /// (`Content-Type: application/x-ndjson`).
    Ndjson,
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_batch_max_alerts() -> usize {
    100
}
fn default_batch_max_wait() -> Duration {
    Duration::from_secs(1)
}
fn de_batch_max_alerts<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    de_bounded(d, WEBHOOK_MAX_BATCH as u64)
}

fn de_http_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    de_str_with(d, "an http(s) URL", |s| {
        let u = reqwest::Url::parse(s).map_err(|e| format!("`{s}`: {e}"))?;
        if u.scheme() != "http" && u.scheme() != "https" {
            return Err(format!("`{s}`: scheme must be http or https"));
        }
        if u.host_str().is_none() {
            return Err(format!("`{s}`: missing host"));
        }
        Ok(s.to_string())
    })
}
