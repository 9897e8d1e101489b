//! The `file` sink: JSON lines appended to a local file; and the write loop shared with `stdout`.
//!
//! A batch is acknowledged once its bytes are written and flushed to the operating system (and,
//! with `fsync = true`, to the disk). A failed write is retried with backoff on a reopened file
//! until it succeeds or the agent's grace period ends; it is never skipped.
//!
//! Each item goes through the privacy transform (`[privacy]`, this sink's `forward_content` and
//! `real_identity`) before it is written. With `[evidence] enabled`, every JSON line is stamped
//! into this sink's hash chain as it is encoded, a signed checkpoint follows every N records or
//! T seconds (also in a quiet stream) and at the end, and the chain head is persisted after
//! each batch is written. The bytes of a batch are encoded once, so a retried write repeats the
//! same stamps. At start the `file` sink continues the chain after the newest stamped line in its
//! file, so a crash between writing a batch and persisting the head reuses no `seq`.

use super::{
    default_min_severity, write_json_line, write_text_line, RecordKinds, Routing, SinkBatch,
    SinkContext, SinkError, SinkTask,
};
use crate::evidence::{EvidenceConfig, SinkEvidence, Stamp, JSON_LINES_STAMP};
use crate::privacy::{PrivacyConfig, SinkPrivacy, Transform};
use crate::record::{Output, RecordView, Severity};
use crate::telemetry::SinkHealth;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
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
    /// Send the real user next to the pseudonym (`real_user_id`) when `[privacy] pseudonymise`
    /// is on: only for destinations whose readers may see identities.
    #[serde(default)]
    pub real_identity: bool,
    /// `[privacy]` and `[evidence]`, handed over by the configuration (not a sink key).
    #[serde(skip)]
    pub outbound: Option<Outbound>,
}

/// The agent-wide privacy and evidence settings a local sink applies.
#[derive(Debug, Clone, Default)]
pub struct Outbound {
    /// `[privacy]`.
    pub privacy: PrivacyConfig,
    /// `[evidence]`.
    pub evidence: EvidenceConfig,
}

impl Outbound {
    /// The transform and, when enabled, the opened chain of sink `name`.
    pub(crate) fn open(
        outbound: Option<&Outbound>,
        context: &SinkContext,
    ) -> Result<(Arc<Transform>, Option<SinkEvidence>), SinkError> {
        let default = Outbound::default();
        let outbound = outbound.unwrap_or(&default);
        let transform = Transform::from_config(&outbound.privacy)
            .map_err(|error| SinkError::Config(format!("[privacy]: {error}")))?;
        let evidence = if outbound.evidence.enabled {
            Some(
                SinkEvidence::open(
                    &outbound.evidence,
                    &context.state_dir,
                    &context.name,
                    JSON_LINES_STAMP,
                )
                .map_err(|error| SinkError::Config(format!("[evidence]: {error}")))?,
            )
        } else {
            None
        };
        Ok((Arc::new(transform), evidence))
    }
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

    /// What the sink may receive.
    pub fn privacy(&self) -> SinkPrivacy {
        SinkPrivacy {
            forward_content: self.forward_content,
            real_identity: self.real_identity,
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
    let (transform, mut evidence) = Outbound::open(config.outbound.as_ref(), &context)?;
    if let Some(evidence) = evidence.as_mut() {
        if let Some(stamp) = last_stamp(&config.path) {
            evidence.chain_mut().recover(&stamp);
        }
    }
    let writer = LineWriter {
        routing: config.routing(),
        text: false,
        fsync: config.fsync,
        transform,
        privacy: config.privacy(),
        evidence,
        stop_on_broken_pipe: false,
    };
    Ok(writer.spawn(Some(first), open, context, batches))
}

/// The stamp of the newest complete stamped line in the last 1 MiB of `path`.
fn last_stamp(path: &std::path::Path) -> Option<Stamp> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = File::open(path).ok()?;
    let length = file.metadata().ok()?.len();
    let start = length.saturating_sub(1 << 20);
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    tail.split(|b| *b == b'\n')
        .rev()
        .filter_map(|line| serde_json::from_slice::<Value>(line).ok())
        .find_map(|value| value.get(JSON_LINES_STAMP_KEY).and_then(Stamp::from_value))
}

const JSON_LINES_STAMP_KEY: &str = "chain";

/// The write loop of the local sinks.
pub(crate) struct LineWriter {
    pub routing: Routing,
    /// Readable text instead of JSON.
    pub text: bool,
    pub fsync: bool,
    /// Pseudonyms, masking and redaction.
    pub transform: Arc<Transform>,
    /// What this sink may receive.
    pub privacy: SinkPrivacy,
    /// The hash chain, when `[evidence]` is on (JSON only: readable text is not evidence).
    pub evidence: Option<SinkEvidence>,
    /// A broken pipe means the reader is gone for good (`aiwarden demo | head`): stop the agent
    /// instead of retrying. Only stdout sets it; a file that fails may come back.
    pub stop_on_broken_pipe: bool,
}

/// The JSON object of an item, as `write_json_line` writes it.
fn json_object(item: &Output, forward_content: bool) -> Map<String, Value> {
    let value = match item {
        Output::Event(record) => serde_json::to_value(RecordView {
            record,
            include_content: forward_content,
        }),
        Output::Alert(alert) => serde_json::to_value(alert.as_ref()),
    };
    match value {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

fn push_json_line(document: &Map<String, Value>, buffer: &mut Vec<u8>) {
    // Serialising a map of JSON values into memory cannot fail.
    let _ = serde_json::to_writer(&mut *buffer, document);
    buffer.push(b'\n');
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
        mut self,
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
            let runtime = tokio::runtime::Handle::current();
            let handle = tokio::task::spawn_blocking(move || {
                let mut writer = first;
                let mut buffer = Vec::with_capacity(64 * 1024);
                loop {
                    // With evidence on, wake up when a time-based checkpoint may be due, so a
                    // quiet stream's last records are signed without waiting for the next one.
                    let interval = self
                        .evidence
                        .as_ref()
                        .map(SinkEvidence::checkpoint_interval);
                    let next = match interval {
                        Some(interval) => {
                            runtime.block_on(tokio::time::timeout(interval, batches.recv()))
                        }
                        None => Ok(batches.blocking_recv()),
                    };
                    let batch = match next {
                        Ok(Some(batch)) => batch,
                        Ok(None) => break,
                        Err(_quiet) => {
                            let due = self.evidence.as_mut().and_then(|e| e.checkpoint_if_due());
                            if let Some(checkpoint) = due {
                                buffer.clear();
                                push_json_line(&checkpoint, &mut buffer);
                                if !self.write_with_retry(&mut writer, &mut open, &buffer, &context)
                                {
                                    return;
                                }
                                self.persist_chain(&context);
                            }
                            continue;
                        }
                    };
                    buffer.clear();
                    let mut count = 0u64;
                    let routing = self.routing;
                    let transform = Arc::clone(&self.transform);
                    for item in batch.items.iter().filter(|item| routing.accepts(item)) {
                        let item = transform.apply(item, &self.privacy);
                        self.encode(&item, &mut buffer);
                        count += 1;
                    }
                    if count == 0 {
                        batch.ack.delivered();
                        continue;
                    }
                    if self.write_with_retry(&mut writer, &mut open, &buffer, &context) {
                        self.persist_chain(&context);
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
                // The channel closed after a drain: sign the tail so nothing stays unproven.
                if let Some(checkpoint) = self
                    .evidence
                    .as_mut()
                    .and_then(SinkEvidence::final_checkpoint)
                {
                    buffer.clear();
                    push_json_line(&checkpoint, &mut buffer);
                    if self.write_with_retry(&mut writer, &mut open, &buffer, &context) {
                        self.persist_chain(&context);
                    }
                }
            });
            handle.await.map_err(|error| SinkError::Io {
                context: "sink task".into(),
                source: std::io::Error::other(error.to_string()),
            })
        })
    }

    /// Append one item: readable text, a JSON line, or a stamped JSON line.
    fn encode(&mut self, item: &Output, buffer: &mut Vec<u8>) {
        if self.text {
            write_text_line(item, buffer);
        } else if let Some(evidence) = self.evidence.as_mut() {
            let mut document = json_object(item, self.routing.forward_content);
            evidence.stamp(&mut document);
            push_json_line(&document, buffer);
            if let Some(checkpoint) = evidence.checkpoint_if_due() {
                push_json_line(&checkpoint, buffer);
            }
        } else {
            write_json_line(item, self.routing.forward_content, buffer);
        }
    }

    /// Persist the chain head once its records are written; a failure is logged, not fatal:
    /// the `file` sink recovers the head from its own output at the next start.
    fn persist_chain(&self, context: &SinkContext) {
        if let Some(evidence) = &self.evidence {
            if let Err(error) = evidence.persist() {
                tracing::warn!(sink = %context.name, %error, "Cannot persist the evidence chain head.");
            }
        }
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
        let mut after_failure = false;
        loop {
            let attempt = (|| {
                if writer.is_none() {
                    *writer = Some(open()?);
                }
                let Some(w) = writer.as_mut() else {
                    return Err(std::io::Error::other("no writer"));
                };
                if after_failure {
                    // End a half-written line so the first record of the retry stays whole.
                    w.write_all(b"\n")?;
                }
                w.write_all(bytes)?;
                w.flush()?;
                if self.fsync {
                    w.sync()?;
                }
                Ok::<(), std::io::Error>(())
            })();
            match attempt {
                Ok(()) => return true,
                Err(error)
                    if self.stop_on_broken_pipe
                        && error.kind() == std::io::ErrorKind::BrokenPipe =>
                {
                    context
                        .metrics
                        .set_sink_health(&context.name, SinkHealth::Degraded(error.to_string()));
                    tracing::error!(sink = %context.name, "Output closed by its reader; the agent stops (unwritten records stay unacknowledged and are read again at the next start).");
                    context.stop_intake.cancel();
                    return false;
                }
                Err(error) => {
                    context.metrics.sink_error(&context.name);
                    context
                        .metrics
                        .set_sink_health(&context.name, SinkHealth::Degraded(error.to_string()));
                    tracing::warn!(sink = %context.name, %error, retry_in_ms = backoff.as_millis() as u64, "Write failed; retrying.");
                    // A partial write may have left half a line: start on a fresh handle.
                    *writer = None;
                    after_failure = true;
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

#[cfg(test)]
mod tests {
    //! The retry path with evidence on: a write that fails half-way is repeated with the same
    //! stamps, so the chain verifies with the torn line reported as unreadable.

    use super::*;
    use crate::evidence::export::read_json;
    use crate::evidence::verify::verify;
    use crate::evidence::{CheckpointSigner, EvidenceConfig, VerifyOptions};
    use crate::pipeline::ack::batch_ack;
    use crate::record::{AuditRecord, EventType};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    #[derive(Clone)]
    struct Flaky {
        written: Arc<Mutex<Vec<u8>>>,
        fail_once: Arc<AtomicBool>,
    }

    impl Write for Flaky {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.fail_once.swap(false, Ordering::SeqCst) {
                // Torn inside the first line.
                let torn = buf.len().min(10);
                self.written.lock().unwrap().extend_from_slice(&buf[..torn]);
                return Err(std::io::Error::other("disk full"));
            }
            self.written.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl SyncWrite for Flaky {
        fn sync(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_retried_write_repeats_the_same_stamps() {
        let dir = tempfile::tempdir().unwrap();
        let signer = CheckpointSigner::generate();
        let key = dir.path().join("cp.key");
        std::fs::write(&key, signer.secret_hex()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let context = SinkContext {
            name: Arc::from("local"),
            metrics: Arc::new(crate::telemetry::Metrics::new()),
            abort: tokio_util::sync::CancellationToken::new(),
            stop_intake: tokio_util::sync::CancellationToken::new(),
            state_dir: dir.path().to_path_buf(),
            agent: crate::record::AgentInfo::local(Some("h")),
            deployment: Arc::from("d"),
            alerts: None,
            outbound: None,
        };
        let outbound = Outbound {
            privacy: PrivacyConfig::default(),
            evidence: EvidenceConfig {
                enabled: true,
                signing_key_file: Some(key),
                ..Default::default()
            },
        };
        let (transform, evidence) = Outbound::open(Some(&outbound), &context).unwrap();
        let writer = LineWriter {
            routing: Routing {
                records: RecordKinds::Events,
                min_severity: Severity::Low,
                forward_content: false,
            },
            text: false,
            fsync: false,
            transform,
            privacy: SinkPrivacy::default(),
            evidence,
            stop_on_broken_pipe: false,
        };
        let flaky = Flaky {
            written: Arc::new(Mutex::new(Vec::new())),
            fail_once: Arc::new(AtomicBool::new(true)),
        };
        let reopened = flaky.clone();
        let (sender, receiver) = mpsc::channel(2);
        let task = writer.spawn(
            Some(flaky.clone()),
            move || Ok(reopened.clone()),
            context,
            receiver,
        );
        let handle = tokio::spawn(task);
        let items: Vec<Output> = (0..5)
            .map(|i| {
                let time = chrono::DateTime::from_timestamp(1_795_400_000 + i, 0).unwrap();
                Output::Event(Arc::new(AuditRecord::new(
                    format!("e{i}"),
                    time,
                    EventType::ApiRequest,
                    "u",
                    "s",
                )))
            })
            .collect();
        let (ack, status) = batch_ack();
        sender
            .send(SinkBatch {
                items: Arc::new(items),
                ack,
                read_at: std::time::Instant::now(),
            })
            .await
            .unwrap();
        drop(sender);
        handle.await.unwrap().unwrap();
        let mut status = status;
        assert!(matches!(
            status.try_status(),
            Some(crate::pipeline::ack::BatchStatus::Delivered)
        ));
        let text = String::from_utf8(flaky.written.lock().unwrap().clone()).unwrap();
        let read = read_json(&text, "out");
        assert_eq!(read.unreadable.len(), 1, "the torn line: {text}");
        let report = verify(
            read.records,
            &[signer.verifying_key()],
            &VerifyOptions { from_seq: Some(1) },
        );
        let chain = &report.chains[0];
        assert!(chain.is_clean(), "{chain:?}");
        // Five events and the final checkpoint; the torn copies of the first ones are the
        // duplicates of nothing (unreadable), the retried copies are whole.
        assert_eq!((chain.verified, chain.checkpoints_verified), (6, 1));
        assert_eq!(chain.proven, 5);
    }
}
