//! `queue.type = "disk"`: intake encodes each record once and appends it to the sink's disk
//! queue, then settles the source's token (the source may commit); a dispatcher reads the queue
//! in order and delivers, marking records done as the SIEM accepts them.
//!
//! ```text
//! SinkBatch ─► intake: route, encode, append (+fsync) ─► ack source
//!                          │ queue/<sink>/*.seg
//!              dispatcher: read in order ─► batch ─► delivery tasks ─► done(index)
//! ```

use super::memory::Dispatch;
use super::{id_bytes, item_id, Encoded, Service, Settle, Shared, Since};
use crate::evidence::encoded::{checkpoint_encoded, stamp_encoded, stamp_of_encoded, EncodedShape};
use crate::evidence::SinkEvidence;
use crate::queue::{
    Append, Damaged, DiskQueue, FrameGroup, QueueError, ReadItem, Reader, RecordKind, WhenFull,
    Writer,
};
use crate::record::{Alert, AlertEntity, Evidence, Output, Severity};
use crate::sinks::{SinkBatch, SinkError};
use crate::telemetry::{Metrics, SinkHealth};
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Most source batches appended (and fsync'd) together.
const GROUP_COMMIT: usize = 64;

/// Stop gathering batches into one append (one write, one `fdatasync`) past this many bytes of
/// frames: 2 MiB for the default 256 MiB queue. The queue may overshoot its limit by one group,
/// so a small queue gets small groups.
fn group_bytes(max_bytes: u64) -> usize {
    (max_bytes / 64).clamp(64 * 1024, 2 * 1024 * 1024) as usize
}

pub(super) async fn run<S: Service>(
    shared: Arc<Shared<S>>,
    batches: mpsc::Receiver<SinkBatch>,
) -> Result<(), SinkError> {
    let dir = shared
        .context
        .state_dir
        .join("queue")
        .join(&shared.settings.queue_name);
    let opened = DiskQueue::open(&dir, shared.settings.queue).map_err(|error| SinkError::Io {
        context: format!("{} ({})", error.context, error.path),
        source: error.source,
    })?;
    let queue = opened.queue;
    let stats = queue.stats();
    if stats.records > 0 {
        tracing::info!(sink = %shared.context.name, queue = %shared.settings.queue_name, records = stats.records, bytes = stats.bytes, "Resuming delivery of queued records.");
    }
    if let Some(torn) = opened.torn {
        dead_letter_damaged(&shared, torn);
    }
    let evidence = open_evidence(&shared, opened.newest.as_ref())?;
    let closed = Arc::new(AtomicBool::new(false));
    let intake = tokio::spawn(intake(
        Arc::clone(&shared),
        opened.writer,
        Arc::clone(&queue),
        batches,
        Arc::clone(&closed),
        evidence,
    ));
    dispatch(&shared, opened.reader, &queue, &closed).await;
    if let Err(error) = intake.await {
        tracing::error!(sink = %shared.context.name, %error, "Queue intake task failed.");
    }
    publish(&shared, &queue);
    Ok(())
}

fn kind(item: &Output) -> RecordKind {
    match item {
        Output::Event(_) => RecordKind::Event,
        Output::Alert(_) => RecordKind::Alert,
    }
}

/// Append what the pipeline hands over; acknowledge each batch once it is on disk. With the
/// evidence chain on, a stream that goes quiet after records were stamped gets its signed
/// checkpoint `checkpoint_interval` after the previous one, not only with the next record.
async fn intake<S: Service>(
    shared: Arc<Shared<S>>,
    writer: Writer,
    queue: Arc<DiskQueue>,
    mut batches: mpsc::Receiver<SinkBatch>,
    closed: Arc<AtomicBool>,
    mut evidence: Option<(SinkEvidence, EncodedShape)>,
) {
    let name = Arc::clone(&shared.context.name);
    let queue_name = shared.settings.queue_name.clone();
    let abort = shared.context.abort.clone();
    let metrics = Arc::clone(&shared.context.metrics);
    let labels = || vec![("queue", queue_name.clone())];
    let mut appender = Appender {
        writer,
        sink: Arc::clone(&name),
        queue_name: queue_name.clone(),
        abort: abort.clone(),
        metrics: Arc::clone(&metrics),
        // The queue's own health entry, so that delivery's verdicts do not hide a full disk.
        health_key: format!("{queue_name} queue"),
        failing_since: None,
        reminded: None,
    };
    let mut full = false;
    let mut frames = FrameGroup::default();
    let group_bytes = group_bytes(shared.settings.queue.max_bytes);
    'intake: loop {
        let quiet_for = evidence
            .as_ref()
            .and_then(|(chain, _)| chain.next_checkpoint_in(std::time::Instant::now()));
        let received = match quiet_for {
            None => batches.recv().await,
            Some(wait) => tokio::select! {
                batch = batches.recv() => batch,
                _ = tokio::time::sleep(wait) => {
                    if !queue_checkpoint(&shared, &mut appender, evidence.as_mut(), false).await {
                        break 'intake;
                    }
                    continue 'intake;
                }
            },
        };
        let Some(first) = received else { break };
        // Each batch is framed straight into the group's buffer (kept across groups) and its
        // records released at once; only the acknowledgements wait for the group's fsync.
        appender.writer.begin_group(&mut frames);
        let mut acks = Vec::new();
        let mut next = Some(first);
        while let Some(batch) = next.take() {
            for item in batch.items.iter() {
                frame_item(&shared, &mut frames, evidence.as_mut(), item, &batch);
            }
            acks.push(batch.ack);
            if acks.len() < GROUP_COMMIT && frames.len() < group_bytes {
                next = batches.try_recv().ok();
            }
        }
        if !frames.is_empty() && queue.is_full() {
            match shared.settings.queue.when_full {
                WhenFull::Block => {
                    if !full {
                        tracing::warn!(sink = %name, queue = %queue_name, max_bytes = shared.settings.queue.max_bytes, "Queue full: intake paused (sources wait) until the SIEM drains it.");
                        full = true;
                    }
                    tokio::select! {
                        _ = queue.wait_for_space() => {}
                        _ = abort.cancelled() => break 'intake,
                    }
                }
                WhenFull::DropNewest => {
                    metrics.add_counter(
                        "sink_queue_dropped_records_total",
                        labels(),
                        frames.records(),
                    );
                    if !full {
                        tracing::error!(sink = %name, queue = %queue_name, max_bytes = shared.settings.queue.max_bytes, "Queue full: dropping new records (when_full = \"drop_newest\") until the SIEM drains it.");
                        shared.raise_queue_full_alert();
                        full = true;
                    }
                    for ack in acks {
                        ack.delivered();
                    }
                    continue;
                }
            }
        }
        if full && !queue.is_full() {
            tracing::info!(sink = %name, queue = %queue_name, "Queue has room again; intake resumed.");
            full = false;
        }
        if !appender.write(|writer| writer.append_group(&frames)).await {
            break 'intake;
        }
        persist_chain(&shared, evidence.as_ref());
        for ack in acks {
            ack.delivered();
        }
        publish(&shared, &queue);
    }
    // A clean stop signs the chain head, so the last records are proven too.
    if !abort.is_cancelled() {
        queue_checkpoint(&shared, &mut appender, evidence.as_mut(), true).await;
    }
    closed.store(true, Ordering::Release);
    queue.wake();
}

/// Frame one record of `batch` for this sink: routed, encoded, and with the evidence chain on,
/// stamped (followed by a signed checkpoint when one falls due). A record that cannot be encoded
/// or stamped is dead-lettered instead.
fn frame_item<S: Service>(
    shared: &Shared<S>,
    frames: &mut FrameGroup,
    evidence: Option<&mut (SinkEvidence, EncodedShape)>,
    item: &Output,
    batch: &SinkBatch,
) {
    if !shared.settings.routing.accepts(item) {
        return;
    }
    let encode = |out: &mut Vec<u8>| shared.encode_into(item, &batch.ack, batch.read_at, out);
    let Some((chain, shape)) = evidence else {
        frames.push_with(kind(item), item_id(item), encode);
        return;
    };
    let stamped = frames.push_with(kind(item), item_id(item), |out| {
        let start = out.len();
        if !encode(out) {
            return false;
        }
        // In intake order, before queueing: a resend keeps its seq and hashes.
        let mut bytes = out.split_off(start);
        if let Err(error) = stamp_encoded(chain, shape, &mut bytes) {
            shared.dead_letter(
                vec![Encoded {
                    bytes: bytes.into(),
                    id: id_bytes(item_id(item)),
                    settle: Settle::Nothing,
                    since: Since::Read(batch.read_at),
                }],
                &format!("cannot stamp for the evidence chain: {error}"),
            );
            return false;
        }
        out.extend_from_slice(&bytes);
        true
    });
    if stamped {
        if let Some((stamp, checkpoint)) = checkpoint_encoded(chain, shape, false) {
            let id = format!("checkpoint-{}", stamp.seq);
            frames.push(RecordKind::Event, &id, &checkpoint);
        }
    }
}

/// Queue a signed checkpoint of the chain head when one is due (`force`: whenever anything
/// was stamped since the last one), and persist the head once it is on disk. False when the
/// agent aborted while the queue could not be written (the head is then not persisted: the
/// next start resumes from the queue).
async fn queue_checkpoint<S: Service>(
    shared: &Shared<S>,
    appender: &mut Appender,
    evidence: Option<&mut (SinkEvidence, EncodedShape)>,
    force: bool,
) -> bool {
    let Some((chain, shape)) = evidence else {
        return true;
    };
    let Some((stamp, checkpoint)) = checkpoint_encoded(chain, shape, force) else {
        return true;
    };
    let id = format!("checkpoint-{}", stamp.seq);
    let append = [Append {
        kind: RecordKind::Event,
        id: &id,
        body: &checkpoint,
    }];
    if !appender.append(&append).await {
        return false;
    }
    if let Err(error) = chain.persist() {
        tracing::warn!(sink = %shared.context.name, %error, "Cannot save the evidence chain head.");
    }
    true
}

/// Appends to the disk queue, retrying a failing disk (with the queue's health and a reminder
/// a minute) until it takes the records or the agent aborts.
struct Appender {
    writer: Writer,
    sink: Arc<str>,
    queue_name: String,
    abort: CancellationToken,
    metrics: Arc<Metrics>,
    health_key: String,
    failing_since: Option<Instant>,
    reminded: Option<Instant>,
}

impl Appender {
    /// Append `appends` as one write; false when the agent aborted first.
    async fn append(&mut self, appends: &[Append<'_>]) -> bool {
        self.write(|writer| writer.append(appends)).await
    }

    /// Run `write` until it succeeds; false when the agent aborted first.
    async fn write(
        &mut self,
        mut write: impl FnMut(&mut Writer) -> Result<(), QueueError>,
    ) -> bool {
        let (name, queue_name) = (&self.sink, &self.queue_name);
        let mut delay = Duration::from_millis(250);
        loop {
            match write(&mut self.writer) {
                Ok(()) => {
                    if let Some(since) = self.failing_since.take() {
                        self.reminded = None;
                        tracing::info!(sink = %name, queue = %queue_name, paused_s = since.elapsed().as_secs(), "The queue is writable again; intake resumed.");
                        self.metrics
                            .set_sink_health(&self.health_key, SinkHealth::Healthy);
                    }
                    return true;
                }
                Err(error) => {
                    self.metrics.add_counter(
                        "sink_queue_write_errors_total",
                        vec![("queue", queue_name.clone())],
                        1,
                    );
                    // Loud, but once a minute rather than at every retry.
                    if self
                        .reminded
                        .is_none_or(|at| at.elapsed() >= Duration::from_secs(60))
                    {
                        self.reminded = Some(Instant::now());
                        tracing::error!(sink = %name, queue = %queue_name, %error, disk_full = error.is_disk_full(), "Cannot write to the queue: intake is paused and sources wait; nothing already acknowledged is lost. Free space in the state directory.");
                    }
                    self.failing_since.get_or_insert_with(Instant::now);
                    self.metrics.set_sink_health(
                        &self.health_key,
                        SinkHealth::Failing(format!("cannot write to the queue: {error}")),
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.abort.cancelled() => return false,
                    }
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

/// Read the queue in order and hand records to delivery tasks until intake has closed and
/// everything is read (then wait for the deliveries), or the agent aborts.
async fn dispatch<S: Service>(
    shared: &Arc<Shared<S>>,
    mut reader: Reader,
    queue: &Arc<DiskQueue>,
    closed: &AtomicBool,
) {
    let timeout = shared.settings.batch.timeout;
    let abort = &shared.context.abort;
    let mut sender = Dispatch::new(shared);
    let mut deadline: Option<Instant> = None;
    let mut published = Instant::now();
    loop {
        let intake_done = closed.load(Ordering::Acquire);
        let mut caught_up = false;
        while !abort.is_cancelled() {
            match reader.read_next() {
                Ok(Some(ReadItem::Record(record))) => {
                    let encoded = Encoded {
                        bytes: record.body,
                        id: record.id,
                        settle: Settle::Queue(Arc::clone(queue), record.index),
                        since: Since::QueuedAtMs(record.queued_at_ms),
                    };
                    if sender.push(encoded).await {
                        deadline = None;
                    } else {
                        deadline.get_or_insert_with(|| Instant::now() + timeout);
                    }
                }
                Ok(Some(ReadItem::Damaged(damaged))) => dead_letter_damaged(shared, damaged),
                Ok(None) => {
                    caught_up = true;
                    break;
                }
                Err(error) => {
                    tracing::error!(sink = %shared.context.name, %error, "Cannot read the queue; retrying.");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = abort.cancelled() => {}
                    }
                    break;
                }
            }
        }
        if published.elapsed() >= Duration::from_secs(1) {
            publish(shared, queue);
            published = Instant::now();
        }
        if abort.is_cancelled() || (intake_done && caught_up) {
            break;
        }
        let now = Instant::now();
        let wait = deadline
            .map_or(Duration::from_secs(1), |at| {
                at.saturating_duration_since(now)
            })
            .min(Duration::from_secs(1));
        tokio::select! {
            _ = queue.wait_for_data(wait) => {}
            _ = abort.cancelled() => break,
        }
        if deadline.is_some_and(|at| Instant::now() >= at) {
            sender.flush().await;
            deadline = None;
        }
        sender.reap();
    }
    sender.finish().await;
}

/// The evidence chain of this queue, when `[evidence]` is on and the sink can carry stamps;
/// resumed after the newest record on disk (stamped, queued, not yet persisted in the chain's
/// own state when the agent stopped).
fn open_evidence<S: Service>(
    shared: &Shared<S>,
    newest: Option<&crate::queue::QueuedRecord>,
) -> Result<Option<(SinkEvidence, EncodedShape)>, SinkError> {
    let Some(config) = shared
        .context
        .outbound
        .as_ref()
        .map(|outbound| &outbound.evidence)
        .filter(|evidence| evidence.enabled)
    else {
        return Ok(None);
    };
    let Some(shape) = shared.service.evidence_shape() else {
        tracing::warn!(sink = %shared.context.name, "[evidence] is on, but this sink's format cannot carry the chain: its records are not stamped.");
        return Ok(None);
    };
    let mut evidence = SinkEvidence::open(
        config,
        &shared.context.state_dir,
        &shared.settings.queue_name,
        shape.location(),
    )
    .map_err(|error| SinkError::Config(format!("[evidence]: {error}")))?;
    if let Some(stamp) = newest.and_then(|record| stamp_of_encoded(&shape, &record.body)) {
        evidence.chain_mut().recover(&stamp);
    }
    Ok(Some((evidence, shape)))
}

/// Save the chain head once what it covers is durably queued.
fn persist_chain<S: Service>(shared: &Shared<S>, evidence: Option<&(SinkEvidence, EncodedShape)>) {
    if let Some((chain, _)) = evidence {
        if let Err(error) = chain.persist() {
            // The queue holds the stamped records; the next start resumes after the newest.
            tracing::warn!(sink = %shared.context.name, %error, "Cannot save the evidence chain head.");
        }
    }
}

/// Damaged queue bytes: dead-lettered with the reason (their records are already counted done).
fn dead_letter_damaged<S: Service>(shared: &Shared<S>, damaged: Damaged) {
    shared.context.metrics.add_counter(
        "sink_queue_damaged_total",
        vec![("queue", shared.settings.queue_name.clone())],
        1,
    );
    tracing::error!(sink = %shared.context.name, segment = %damaged.segment.display(), offset = damaged.offset, bytes = damaged.bytes.len(), reason = damaged.reason, "Damaged data in the queue: dead-lettered; the records around it are delivered.");
    let reason = format!(
        "queue_damaged: {} in {} at byte {}",
        damaged.reason,
        damaged.segment.display(),
        damaged.offset
    );
    shared.dead_letter(
        vec![Encoded {
            bytes: damaged.bytes.into(),
            id: Bytes::new(),
            settle: Settle::Nothing,
            since: Since::QueuedAtMs(chrono::Utc::now().timestamp_millis()),
        }],
        &reason,
    );
}

/// The queue's gauges: depth in records and bytes, age of the oldest record.
fn publish<S: Service>(shared: &Shared<S>, queue: &DiskQueue) {
    let stats = queue.stats();
    let metrics = &shared.context.metrics;
    let labels = || vec![("queue", shared.settings.queue_name.clone())];
    metrics.set_gauge("sink_queue_records", labels(), stats.records as i64);
    metrics.set_gauge("sink_queue_bytes", labels(), stats.bytes as i64);
    let age_ms = stats
        .oldest_ms
        .map_or(0, |at| (chrono::Utc::now().timestamp_millis() - at).max(0));
    metrics.set_gauge("sink_queue_oldest_age_seconds", labels(), age_ms / 1000);
}

impl<S: Service> Shared<S> {
    /// One `aiwarden-queue-full` alert per episode, to every sink (this one will drop it).
    fn raise_queue_full_alert(&self) {
        let Some(alerts) = &self.context.alerts else {
            return;
        };
        let now = chrono::Utc::now();
        let queue = &self.settings.queue_name;
        let key = format!("{QUEUE_FULL_RULE}|{queue}|{}", now.timestamp_millis());
        let alert = Alert {
            alert_id: uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, key.as_bytes()).to_string(),
            timestamp: now,
            rule_id: QUEUE_FULL_RULE.to_string(),
            rule_version: 1,
            severity: Severity::High,
            title: "Sink queue full: records dropped".to_string(),
            details: format!(
                "the disk queue of sink {} reached queue.max_bytes = {} while its SIEM is not \
                 keeping up, and when_full = \"drop_newest\" drops new records until it drains; \
                 see aiwarden_sink_queue_dropped_records_total and the sink's errors",
                self.context.name, self.settings.queue.max_bytes
            ),
            entity: AlertEntity {
                entity_type: "sink".to_string(),
                entity_key: self.context.name.to_string(),
                user_id: None,
                session_id: None,
                department: None,
                application_id: None,
                real_user_id: None,
            },
            observed: self.settings.queue.max_bytes as f64,
            baseline: None,
            threshold: self.settings.queue.max_bytes as f64,
            window: None,
            evidence: Evidence {
                event_ids: Vec::new(),
                event_count: 0,
            },
            tags: vec!["aiwarden".to_string(), "self-monitoring".to_string()],
            source: "aiwarden".to_string(),
            deployment: self.context.deployment.to_string(),
            agent: self.context.agent.clone(),
            suppressed_count: 0,
            auto_blocked: false,
        };
        // Never wait on the pipeline from here: a full pipeline may be what we are part of.
        if alerts.try_send(alert).is_err() {
            tracing::warn!(sink = %self.context.name, "Could not hand the queue-full alert to the pipeline.");
        }
    }
}

/// Rule id of the alert raised when a `drop_newest` queue starts dropping.
pub const QUEUE_FULL_RULE: &str = "aiwarden-queue-full";
