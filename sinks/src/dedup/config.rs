//! `outputs.dedup`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::de::{de_duration, de_opt_duration, de_queue_size};

/// Deduplication: alerts of the same rule with the same values of `by`
/// within `window` are one alert. The first goes out at once; the rest are
/// counted and, when the window closes, one summary alert carrying
/// `vigil.count` (how many were suppressed) goes out.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupConfig {
    #[serde(default = "default_dedup_window", deserialize_with = "de_duration")]
    pub window: Duration,
    /// Output fields forming the key together with the rule name.
    #[serde(default = "default_dedup_by")]
    pub by: Vec<String>,
    /// Keys tracked at once; alerts with new keys beyond it pass undeduplicated
    /// (counted), never dropped.
    #[serde(default = "default_max_keys", deserialize_with = "de_queue_size")]
    pub max_keys: usize,
    /// Per-rule overrides, by rule name. `window: 0s` disables dedup for it.
    #[serde(default)]
    pub rules: BTreeMap<String, DedupRuleConfig>,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            window: default_dedup_window(),
            by: default_dedup_by(),
            max_keys: default_max_keys(),
            rules: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupRuleConfig {
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub window: Option<Duration>,
    #[serde(default)]
    pub by: Option<Vec<String>>,
}

fn default_dedup_window() -> Duration {
    Duration::from_secs(60)
}
fn default_dedup_by() -> Vec<String> {
    vec![
        "proc.exe".to_string(),
        "proc.cmdline".to_string(),
        "container.id".to_string(),
    ]
}
fn default_max_keys() -> usize {
    10_000
}
