//! The file sink: JSON (or text) lines appended to a file whose parent
//! directory is created. [`crate::Router::reopen_files`] bumps a generation
//! counter; the sink reopens the path before its next write (logrotate's
//! rename + SIGHUP). A failed write closes the file and is retried (the batch
//! may then be written twice: at-least-once).

pub mod config;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::AsyncWriteExt;

use crate::delivery::{Batch, BatchPolicy, Sink};
use crate::encode::Format;
use crate::error::{DeliveryError, SinkError};
use config::FileConfig;

pub(crate) struct FileSink {
    path: PathBuf,
    format: Format,
    file: Option<tokio::fs::File>,
    generation: u64,
    reopen: Arc<AtomicU64>,
}

fn open(path: &PathBuf) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

/// Opens the file at start so a bad path is a start error.
pub(crate) fn build(
    cfg: &FileConfig,
    reopen: Arc<AtomicU64>,
) -> Result<(FileSink, BatchPolicy), SinkError> {
    let f = open(&cfg.path).map_err(|e| SinkError::Io {
        sink: "file",
        source: std::io::Error::new(e.kind(), format!("{}: {e}", cfg.path.display())),
    })?;
    let generation = reopen.load(Ordering::Relaxed);
    Ok((
        FileSink {
            path: cfg.path.clone(),
            format: cfg.format,
            file: Some(tokio::fs::File::from_std(f)),
            generation,
            reopen,
        },
        BatchPolicy::queued(256),
    ))
}

impl Sink for FileSink {
    async fn deliver(&mut self, batch: &Batch) -> Result<(), DeliveryError> {
        let g = self.reopen.load(Ordering::Relaxed);
        if g != self.generation {
            self.generation = g;
            self.file = None;
            tracing::info!(path = %self.path.display(), "reopening alert file");
        }
        if self.file.is_none() {
            let path = self.path.clone();
            let f = tokio::task::spawn_blocking(move || open(&path))
                .await
                .map_err(|e| DeliveryError::transient(format!("open task: {e}")))?
                .map_err(|e| {
                    DeliveryError::transient(format!("open {}: {e}", self.path.display()))
                })?;
            self.file = Some(tokio::fs::File::from_std(f));
        }
        let mut buf = Vec::new();
        for a in &batch.alerts {
            a.push_line(self.format, &mut buf);
        }
        let Some(f) = self.file.as_mut() else {
            return Err(DeliveryError::transient("file not open"));
        };
        let res = async {
            f.write_all(&buf).await?;
            f.flush().await
        }
        .await;
        if let Err(e) = res {
            self.file = None;
            return Err(DeliveryError::transient(format!(
                "write {}: {e}",
                self.path.display()
            )));
        }
        Ok(())
    }
}
