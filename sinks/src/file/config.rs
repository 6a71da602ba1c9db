//! `outputs.file`.

use std::path::PathBuf;

use serde::Deserialize;
use vigil_engine::Priority;

use crate::de::{de_opt_priority, de_queue_size, default_queue_size};
use crate::delivery::RetryConfig;

pub use crate::encode::Format;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Appended to; parent directories are created; reopened on SIGHUP.
    pub path: PathBuf,
    #[serde(default)]
    pub format: Format,
    #[serde(default, deserialize_with = "de_opt_priority")]
    pub min_priority: Option<Priority>,
    #[serde(default = "default_queue_size", deserialize_with = "de_queue_size")]
    pub queue_size: usize,
    #[serde(default)]
    pub retry: RetryConfig,
}
