//! The delivery loop every network sink shares: batch, send, sort the answer, retry, split,
//! dead-letter, acknowledge. Written once; a sink only encodes records and sends one request.
//!
//! Each record is encoded on arrival and carries its own clone of its batch's [`AckToken`], so
//! however a request is split or partly retried, every record settles on its own: acknowledged
//! when the SIEM accepted it or when it was dead-lettered after a permanent rejection. A record
//! whose request is still failing when the agent aborts is dropped unacknowledged, which keeps its
//! source position uncommitted: it is read and sent again after the restart, never lost.
//!
//! What each answer means is the sink's business ([`Service::send`] returns a [`Classified`]);
//! what to do about it is decided here, following PROTOCOLS.md's common rules: transient → retry
//! with exponential backoff and full jitter, honouring `Retry-After`; 413 → split in halves; a
//! record rejected as bad → dead letter; credentials or URL wrong → keep the records, say once
//! what to fix, and keep probing.

use super::util::batch::BatchConfig;
use super::{Routing, SinkBatch, SinkContext, SinkError};
use crate::dead_letter::DeadLetterWriter;
use crate::evidence::encoded::EncodedShape;
use crate::net::retry::RequestConfig;
use crate::pipeline::ack::AckToken;
use crate::privacy::{SinkPrivacy, Transform};
use crate::queue::{DiskQueue, QueueConfig, QueueKind};
use crate::record::Output;
use crate::telemetry::SinkHealth;
use breaker::Breaker;
use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// How a SIEM answered one request, sorted by the sink.
#[derive(Debug, Clone, PartialEq)]
pub enum Classified {
    /// Every record was accepted.
    Delivered,
    /// A verdict per record, in request order (e.g. Elastic `_bulk` items, HEC `invalid-event-number`).
    PerItem(Vec<ItemVerdict>),
    /// Transient failure of the whole request: send it again later.
    Retry {
        /// The server's `Retry-After`, when it gave one.
        after: Option<Duration>,
        /// What happened (for the log).
        reason: String,
    },
    /// Split the request in halves and send each (413 too large, or a bad record somewhere in
    /// it); a record that is alone and still refused is dead-lettered with this reason.
    Split {
        /// Why, for the dead letter of a lone record.
        reason: String,
    },
    /// Every record was rejected as bad: dead-letter them with this reason.
    Rejected {
        /// The SIEM's reason.
        reason: String,
    },
    /// Credentials, permissions or the URL are wrong: keep the records and say what to fix.
    Misconfigured {
        /// What to fix, naming the setting (never a secret).
        reason: String,
    },
}

/// The verdict on one record of a request.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemVerdict {
    /// Accepted (or already there: a duplicate of an earlier send).
    Delivered,
    /// Transient: resend this record.
    Retry(String),
    /// Permanently bad: dead-letter it with the SIEM's reason.
    Rejected(String),
}

/// One record encoded for its SIEM, with what settles it once it is delivered.
#[derive(Debug)]
pub struct Encoded {
    /// The encoded record (an envelope, a document with its action line, a JSON object); read
    /// back from a disk queue, a slice of the reader's buffer.
    pub bytes: Bytes,
    /// `event_id` or `alert_id` (UTF-8), for a dead letter.
    id: Bytes,
    settle: Settle,
    since: Since,
}

/// Who learns that a record is safe.
#[derive(Debug)]
enum Settle {
    /// Memory queue: the source's batch token, settled when the SIEM accepts the record.
    Ack(AckToken),
    /// Disk queue: the record's queue index, marked done when the SIEM accepts it.
    Queue(Arc<DiskQueue>, u64),
    /// Nothing to settle (damaged queue bytes, already counted done).
    Nothing,
}

/// When the record's journey began, for the delivery-latency histogram.
#[derive(Debug, Clone, Copy)]
enum Since {
    Read(std::time::Instant),
    QueuedAtMs(i64),
}

impl Since {
    fn elapsed(self) -> Duration {
        match self {
            Since::Read(at) => at.elapsed(),
            Since::QueuedAtMs(ms) => {
                let now = Utc::now().timestamp_millis();
                Duration::from_millis(now.saturating_sub(ms).max(0) as u64)
            }
        }
    }
}

/// An id as the bytes [`Encoded`] keeps.
fn id_bytes(id: &str) -> Bytes {
    Bytes::copy_from_slice(id.as_bytes())
}

/// Settle records: acknowledge their batches, or mark their queue indices done in runs.
fn settle(records: Vec<Encoded>) {
    let mut run: Option<(Arc<DiskQueue>, u64, u64)> = None;
    for record in records {
        match record.settle {
            Settle::Ack(token) => token.delivered(),
            Settle::Nothing => {}
            Settle::Queue(queue, index) => match &mut run {
                Some((current, _, end)) if Arc::ptr_eq(current, &queue) && *end == index => {
                    *end = index + 1;
                }
                _ => {
                    if let Some((done, start, end)) = run.take() {
                        done.done(start, end);
                    }
                    run = Some((queue, index, index + 1));
                }
            },
        }
    }
    if let Some((queue, start, end)) = run {
        queue.done(start, end);
    }
}

/// What a network sink provides: encoding, framing and one request.
pub trait Service: Send + Sync + 'static {
    /// Append one record's encoding to `out`; an error means it can never be sent (it is
    /// dead-lettered). `out` may already hold other records (intake encodes a whole group
    /// into one buffer): only what follows its length on entry is this record's.
    fn encode(&self, item: &Output, forward_content: bool, out: &mut Vec<u8>)
        -> Result<(), String>;

    /// Assemble encoded records into one request body (default: concatenated).
    fn frame(&self, items: &[Encoded], out: &mut Vec<u8>) {
        for item in items {
            out.extend_from_slice(&item.bytes);
        }
    }

    /// Bytes the framing adds per request, for the size limit (e.g. `[` and `]`).
    fn framing_overhead(&self) -> usize {
        0
    }

    /// Bytes the framing adds per record, for the size limit (e.g. a `,`).
    fn separator_bytes(&self) -> usize {
        0
    }

    /// How encoded records are laid out, for the evidence chain (`None`: this sink is not
    /// stamped).
    fn evidence_shape(&self) -> Option<EncodedShape> {
        None
    }

    /// Send one body of `count` records and sort the answer. Transport errors are `Retry`.
    fn send(
        &self,
        body: Bytes,
        gzip: bool,
        count: usize,
    ) -> impl Future<Output = Classified> + Send;
}

/// The settings the driver needs from a sink's configuration.
#[derive(Debug, Clone)]
pub struct DriverSettings {
    /// What the sink takes.
    pub routing: Routing,
    /// When a batch is sent.
    pub batch: BatchConfig,
    /// Timeouts, concurrency, backoff, compression, circuit breaker.
    pub request: RequestConfig,
    /// Where records wait for delivery.
    pub queue: QueueConfig,
    /// The queue's directory name under `<state_dir>/queue/` (the sink's name, or the sink's
    /// name and a stream for sinks with several drivers).
    pub queue_name: String,
    /// Whether this SIEM may receive the real user next to the pseudonym (`real_user_id`).
    pub real_identity: bool,
}

impl DriverSettings {
    /// Settings for a sink with one driver (its queue is named after the sink).
    pub fn new(
        routing: Routing,
        batch: BatchConfig,
        request: RequestConfig,
        queue: QueueConfig,
        sink: &str,
    ) -> Self {
        DriverSettings {
            routing,
            batch,
            request,
            queue,
            queue_name: sink.to_string(),
            real_identity: false,
        }
    }

    /// Let this SIEM receive real identities next to pseudonyms.
    pub fn with_real_identity(mut self, real_identity: bool) -> Self {
        self.real_identity = real_identity;
        self
    }
}

#[derive(Serialize)]
struct SinkDeadLetter<'a> {
    time: String,
    sink: &'a str,
    id: &'a str,
    reason: &'a str,
    payload: String,
}

struct Shared<S> {
    service: S,
    settings: DriverSettings,
    context: SinkContext,
    dead_letters: Mutex<DeadLetterWriter>,
    breaker: Breaker,
    /// `[privacy]`: pseudonyms, masked addresses, redacted content, before anything is encoded.
    transform: Arc<Transform>,
}

/// Run a network sink until its channel closes (drained) or the agent aborts.
pub async fn run<S: Service>(
    service: S,
    settings: DriverSettings,
    context: SinkContext,
    batches: mpsc::Receiver<SinkBatch>,
) -> Result<(), SinkError> {
    let dead_letter_path = context.dead_letter_path();
    let request = settings.request;
    let privacy = context
        .outbound
        .as_ref()
        .map(|outbound| outbound.privacy.clone())
        .unwrap_or_default();
    let transform = Arc::new(
        Transform::from_config(&privacy)
            .map_err(|error| SinkError::Config(format!("[privacy]: {error}")))?,
    );
    let shared = Arc::new(Shared {
        transform,
        service,
        dead_letters: Mutex::new(DeadLetterWriter::new(dead_letter_path, usize::MAX)),
        breaker: Breaker::new(
            request.breaker_threshold,
            request.breaker_cooldown,
            request.retry_max_backoff,
            Arc::clone(&context.name),
            Arc::clone(&context.metrics),
        ),
        settings,
        context,
    });
    match shared.settings.queue.kind {
        QueueKind::Memory => memory::run(shared, batches).await,
        QueueKind::Disk => queued::run(shared, batches).await,
    }
}

fn item_id(item: &Output) -> &str {
    match item {
        Output::Event(record) => &record.event_id,
        Output::Alert(alert) => &alert.alert_id,
    }
}

impl<S: Service> Shared<S> {
    /// Encode one record for this sink into a `Vec` of its own (exactly its size: one
    /// allocation per record); `None` when it is not routed here. A record that cannot be
    /// encoded is dead-lettered (and settled) on the spot. `scratch` is reused across records.
    fn encode(
        &self,
        item: &Output,
        ack: &AckToken,
        read_at: std::time::Instant,
        scratch: &mut Vec<u8>,
    ) -> Option<Vec<u8>> {
        scratch.clear();
        self.encode_into(item, ack, read_at, scratch)
            .then(|| scratch.as_slice().to_vec())
    }

    /// Append one record's encoding to `out`; false (and `out` as it was) when it is not routed
    /// here or cannot be encoded (then it is dead-lettered and settled on the spot). Intake
    /// encodes a whole group this way into one buffer kept across groups, with no `Vec` or
    /// copy per record.
    fn encode_into(
        &self,
        item: &Output,
        ack: &AckToken,
        read_at: std::time::Instant,
        out: &mut Vec<u8>,
    ) -> bool {
        if !self.settings.routing.accepts(item) {
            return false;
        }
        let policy = SinkPrivacy {
            forward_content: self.settings.routing.forward_content,
            real_identity: self.settings.real_identity,
        };
        let item = self.transform.apply(item, &policy);
        let start = out.len();
        match self.service.encode(&item, policy.forward_content, out) {
            Ok(()) => true,
            Err(reason) => {
                let encoded = Encoded {
                    bytes: out.split_off(start).into(),
                    id: id_bytes(item_id(&item)),
                    settle: Settle::Ack(ack.clone()),
                    since: Since::Read(read_at),
                };
                self.dead_letter(vec![encoded], &format!("cannot encode: {reason}"));
                false
            }
        }
    }

    /// Sleep before a retry; false when the agent aborts meanwhile (records stay unsettled).
    async fn wait(&self, delay: Duration) -> bool {
        tokio::select! {
            _ = self.context.abort.cancelled() => false,
            _ = tokio::time::sleep(delay) => true,
        }
    }

    fn delivered(&self, records: Vec<Encoded>) {
        if records.is_empty() {
            return;
        }
        let metrics = &self.context.metrics;
        metrics.sink_sent(&self.context.name, records.len() as u64);
        metrics.set_sink_health(&self.context.name, SinkHealth::Healthy);
        metrics.record_latencies(
            "sink_delivery_latency",
            vec![("sink", self.context.name.to_string())],
            records.iter().map(|record| record.since.elapsed()),
        );
        settle(records);
    }

    /// Dead-letter permanently rejected records; they count as handled once written.
    fn dead_letter(&self, records: Vec<Encoded>, reason: &str) {
        let name = &self.context.name;
        tracing::warn!(sink = %name, records = records.len(), reason = log_label(reason), "Records rejected by the SIEM; dead-lettered.");
        let mut writer = match self.dead_letters.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut written = Vec::with_capacity(records.len());
        for record in records {
            self.context.metrics.sink_dead_lettered(name);
            let entry = SinkDeadLetter {
                time: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
                sink: name,
                id: &String::from_utf8_lossy(&record.id),
                reason,
                payload: String::from_utf8_lossy(&record.bytes).into_owned(),
            };
            match writer.append(&entry) {
                Ok(()) => written.push(record),
                Err(error) => {
                    tracing::error!(sink = %name, path = %writer.path().display(), %error, "Cannot write the dead-letter file; the records stay unacknowledged.");
                }
            }
        }
        match writer.flush() {
            Ok(()) => settle(written),
            Err(error) => {
                tracing::error!(sink = %name, path = %writer.path().display(), %error, "Cannot flush the dead-letter file; the records stay unacknowledged.");
            }
        }
    }
}

/// The part of a SIEM's reason that is safe to log: up to where the SIEM starts quoting
/// (a JSON body, a bracketed field name, a quoted value), at most 120 bytes. SIEMs echo field
/// values in rejections (Elastic's "Preview of field's value: '…'"), and those can be personal
/// data or, with content forwarding on, prompt text; the whole reason goes to the dead-letter
/// file (mode 0600) instead.
pub fn log_label(reason: &str) -> &str {
    let end = reason
        .find(['{', '[', '"', '\''])
        .unwrap_or(reason.len())
        .min(120);
    let mut end = end;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].trim_end_matches([' ', ':', '(']).trim_end()
}

mod breaker;
mod deliver;
mod memory;
mod queued;

pub use breaker::BreakerState;
pub use queued::QUEUE_FULL_RULE;

#[cfg(test)]
mod tests;
