//! The `file` sink: JSON lines appended to a local file; and the write loop shared with `stdout`.
//!
//! A batch is acknowledged once its bytes are written and flushed to the operating system (and,
//! with `fsync = true`, to the disk). A failed write is retried with backoff on a reopened file
//! until it succeeds or the agent's grace period ends; it is never skipped.

use super::{
    default_min_severity, write_json_line, write_text_line, RecordKinds, Routing, SinkBatch,
    SinkContext, SinkError, SinkTask,
};
use crate::record::Severity;
use crate::telemetry::SinkHealth;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;

/// Append JSON lines to a local file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    /// The file; created (with its directory) when missing, appended to otherwise.
    pub path: PathBuf,
    /// `alerts`, `events` or `both`.
    #[serde(default)]
    pub records: RecordKinds,
    /// Alerts below this severity are not written.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// Write raw prompt/response text when records carry it (off: it never leaves memory).
    #[serde(default)]
    pub forward_content: bool,
    /// Flush each batch to the disk, not only to the operating system (survives power loss).
    #[serde(default)]
    pub fsync: bool,
}

impl FileSinkConfig {
    /// What the sink takes.
    pub fn routing(&self) -> Routing {
        Routing {
            records: self.records,
            min_severity: self.min_severity,
            forward_content: self.forward_content,
        }
    }

    /// Check what serde cannot.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.path.as_os_str().is_empty() {
            return Err(("path".into(), "must not be empty".into()));
        }
        Ok(())
    }
}

/// Open the file and start the sink.
pub fn build(
    config: FileSinkConfig,
    context: SinkContext,
    batches: mpsc::Receiver<SinkBatch>,
) -> Result<SinkTask, SinkError> {
    let path = config.path.clone();
    let open = move || -> std::io::Result<File> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        OpenOptions::new().create(true).append(true).open(&path)
    };
    // Open once now so a wrong path is a startup error, not a retry loop.
    let first = open().map_err(|source| SinkError::Io {
        context: format!("opening {}", config.path.display()),
        source,
    })?;
    let writer = LineWriter {
        routing: config.routing(),
        text: false,
        fsync: config.fsync,
    };
    Ok(writer.spawn(Some(first), open, context, batches))
}

/// The write loop of the local sinks.
pub(crate) struct LineWriter {
    pub routing: Routing,
    /// Readable text instead of JSON.
    pub text: bool,
    pub fsync: bool,
}

pub(crate) trait SyncWrite: Write + Send + 'static {
    fn sync(&mut self) -> std::io::Result<()>;
}

impl SyncWrite for File {
    fn sync(&mut self) -> std::io::Result<()> {
        self.sync_data()
    }
}

impl SyncWrite for std::io::Stdout {
    fn sync(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LineWriter {
    pub(crate) fn spawn<W, F>(
        self,
        first: Option<W>,
        mut open: F,
        context: SinkContext,
        mut batches: mpsc::Receiver<SinkBatch>,
    ) -> SinkTask
    where
        W: SyncWrite,
        F: FnMut() -> std::io::Result<W> + Send + 'static,
    {
        Box::pin(async move {
            let handle = tokio::task::spawn_blocking(move || {
                let mut writer = first;
                let mut buffer = Vec::with_capacity(64 * 1024);
                while let Some(batch) = batches.blocking_recv() {
                    buffer.clear();
                    let mut count = 0u64;
                    for item in batch.items.iter().filter(|item| self.routing.accepts(item)) {
                        if self.text {
                            write_text_line(item, &mut buffer);
                        } else {
                            write_json_line(item, self.routing.forward_content, &mut buffer);
                        }
                        count += 1;
                    }
                    if count == 0 {
                        batch.ack.delivered();
                        continue;
                    }
                    if self.write_with_retry(&mut writer, &mut open, &buffer, &context) {
                        context.metrics.sink_sent(&context.name, count);
                        context
                            .metrics
                            .set_sink_health(&context.name, SinkHealth::Healthy);
                        context.metrics.record_latencies(
                            "sink_delivery_latency",
                            vec![("sink", context.name.to_string())],
                            [batch.read_at.elapsed()],
                        );
                        batch.ack.delivered();
                    } else {
                        // Grace period over: leave the batch unacknowledged so it is re-read.
                        return;
                    }
                }
            });
            handle.await.map_err(|error| SinkError::Io {
                context: "sink task".into(),
                source: std::io::Error::other(error.to_string()),
            })
        })
    }

    /// Write until it succeeds; false only when the agent is aborting.
    fn write_with_retry<W: SyncWrite>(
        &self,
        writer: &mut Option<W>,
        open: &mut impl FnMut() -> std::io::Result<W>,
        bytes: &[u8],
        context: &SinkContext,
    ) -> bool {
        let mut backoff = Duration::from_millis(100);
        loop {
            let attempt = (|| {
                if writer.is_none() {
                    *writer = Some(open()?);
                }
                let Some(w) = writer.as_mut() else {
                    return Err(std::io::Error::other("no writer"));
                };
                w.write_all(bytes)?;
                w.flush()?;
                if self.fsync {
                    w.sync()?;
                }
                Ok::<(), std::io::Error>(())
            })();
            match attempt {
                Ok(()) => return true,
                Err(error) => {
                    context.metrics.sink_error(&context.name);
                    context
                        .metrics
                        .set_sink_health(&context.name, SinkHealth::Degraded(error.to_string()));
                    tracing::warn!(sink = %context.name, %error, retry_in_ms = backoff.as_millis() as u64, "Write failed; retrying.");
                    // A partial write may have left half a line: start on a fresh handle.
                    *writer = None;
                    if context.abort.is_cancelled() {
                        return false;
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}
