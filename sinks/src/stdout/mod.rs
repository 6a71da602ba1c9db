//! The stdout sink: one alert a line, Falco JSON or text, written in batches
//! of what is queued.

pub mod config;

use tokio::io::AsyncWriteExt;

use crate::delivery::{Batch, BatchPolicy, Sink};
use crate::encode::Format;
use crate::error::DeliveryError;
use config::StdoutConfig;

pub(crate) struct StdoutSink {
    format: Format,
    out: tokio::io::Stdout,
}

pub(crate) fn build(cfg: &StdoutConfig) -> (StdoutSink, BatchPolicy) {
    (
        StdoutSink {
            format: cfg.format,
            out: tokio::io::stdout(),
        },
        BatchPolicy::queued(256),
    )
}

impl Sink for StdoutSink {
    async fn deliver(&mut self, batch: &Batch) -> Result<(), DeliveryError> {
        let mut buf = Vec::new();
        for a in &batch.alerts {
            a.push_line(self.format, &mut buf);
        }
        self.out
            .write_all(&buf)
            .await
            .map_err(|e| DeliveryError::transient(format!("write stdout: {e}")))?;
        self.out
            .flush()
            .await
            .map_err(|e| DeliveryError::transient(format!("flush stdout: {e}")))
    }
}
