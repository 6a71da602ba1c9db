//! The stdout sink: one alert a line, Falco JSON or text, written in batches
//! of what is queued.

use tokio::io::AsyncWriteExt;
use vigil_engine::Alert;

use crate::config::{Format, StdoutConfig};
use crate::router::{Batch, BatchPolicy, Sink};
use crate::DeliveryError;

/// Renders one alert line (with trailing newline) in `format`.
pub fn render_line(a: &Alert, format: Format, out: &mut String) {
    match format {
        Format::Json => out.push_str(&a.to_json_line()),
        Format::Text => out.push_str(&a.to_text_line()),
    }
    out.push('\n');
}

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
        BatchPolicy {
            window: std::time::Duration::ZERO,
            max: 256,
            count_rest: false,
            lead_alone: false,
        },
    )
}

impl Sink for StdoutSink {
    async fn deliver(&mut self, batch: &Batch) -> Result<(), DeliveryError> {
        let mut buf = String::new();
        for a in &batch.alerts {
            render_line(a, self.format, &mut buf);
        }
        self.out
            .write_all(buf.as_bytes())
            .await
            .map_err(|e| DeliveryError::transient(format!("write stdout: {e}")))?;
        self.out
            .flush()
            .await
            .map_err(|e| DeliveryError::transient(format!("flush stdout: {e}")))
    }
}
