//! `outputs.stdout`.

use serde::Deserialize;
use vigil_engine::Priority;

use crate::de::{de_opt_priority, de_queue_size, default_queue_size};

pub use crate::encode::Format;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutConfig {
    #[serde(default)]
    pub format: Format,
    #[serde(default, deserialize_with = "de_opt_priority")]
    pub min_priority: Option<Priority>,
    #[serde(default = "default_queue_size", deserialize_with = "de_queue_size")]
    pub queue_size: usize,
}

impl Default for StdoutConfig {
    fn default() -> Self {
        StdoutConfig {
            format: Format::Json,
            min_priority: None,
            queue_size: default_queue_size(),
        }
    }
}
