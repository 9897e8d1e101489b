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
use super::util::retry::{Backoff, Compression, RequestConfig};
use super::{Routing, SinkBatch, SinkContext, SinkError};
use crate::dead_letter::DeadLetterWriter;
use crate::pipeline::ack::AckToken;
use crate::record::Output;
use crate::telemetry::SinkHealth;
use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use std::collections::VecDeque;
use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

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

/// One record encoded for its SIEM, with the token it settles.
#[derive(Debug)]
pub struct Encoded {
    /// The encoded record (an envelope, a document with its action line, a JSON object).
    pub bytes: Vec<u8>,
    /// The record itself (a shared handle, no copy), for its id in a dead letter.
    item: Output,
    ack: AckToken,
    read_at: std::time::Instant,
}

/// What a network sink provides: encoding, framing and one request.
pub trait Service: Send + Sync + 'static {
    /// Encode one record; an error means it can never be sent (it is dead-lettered).
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
    /// Timeouts, concurrency, backoff, compression.
    pub request: RequestConfig,
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
}

/// Run a network sink until its channel closes (drained) or the agent aborts.
pub async fn run<S: Service>(
    service: S,
    settings: DriverSettings,
    context: SinkContext,
    mut batches: mpsc::Receiver<SinkBatch>,
) -> Result<(), SinkError> {
    let dead_letter_path = context.dead_letter_path();
    let shared = Arc::new(Shared {
        service,
        dead_letters: Mutex::new(DeadLetterWriter::new(dead_letter_path, usize::MAX)),
        settings,
        context,
    });
    let limits = shared.settings.batch;
    let permits = Arc::new(Semaphore::new(shared.settings.request.concurrency));
    let mut in_flight = JoinSet::new();
    let mut pending: Vec<Encoded> = Vec::new();
    let mut pending_bytes = shared.service.framing_overhead();
    let mut deadline: Option<Instant> = None;

    loop {
        let timer = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let batch = tokio::select! {
            batch = batches.recv() => batch,
            _ = timer => {
                flush(&shared, &permits, &mut in_flight, &mut pending, &mut pending_bytes).await;
                deadline = None;
                continue;
            }
        };
        let Some(batch) = batch else { break };
        for item in batch
            .items
            .iter()
            .filter(|item| shared.settings.routing.accepts(item))
        {
            let mut bytes = Vec::new();
            if let Err(reason) =
                shared
                    .service
                    .encode(item, shared.settings.routing.forward_content, &mut bytes)
            {
                let encoded = Encoded {
                    bytes,
                    item: item.clone(),
                    ack: batch.ack.clone(),
                    read_at: batch.read_at,
                };
                shared.dead_letter(vec![encoded], &format!("cannot encode: {reason}"));
                continue;
            }
            let size = bytes.len() + shared.service.separator_bytes();
            if !pending.is_empty() && pending_bytes + size > limits.max_bytes {
                flush(
                    &shared,
                    &permits,
                    &mut in_flight,
                    &mut pending,
                    &mut pending_bytes,
                )
                .await;
                deadline = None;
            }
            pending_bytes += size;
            pending.push(Encoded {
                bytes,
                item: item.clone(),
                ack: batch.ack.clone(),
                read_at: batch.read_at,
            });
            deadline.get_or_insert_with(|| Instant::now() + limits.timeout);
            if pending.len() >= limits.max_events {
                flush(
                    &shared,
                    &permits,
                    &mut in_flight,
                    &mut pending,
                    &mut pending_bytes,
                )
                .await;
                deadline = None;
            }
        }
        // Every selected record holds its own clone now; this share is settled.
        batch.ack.delivered();
        while in_flight.try_join_next().is_some() {}
    }
    flush(
        &shared,
        &permits,
        &mut in_flight,
        &mut pending,
        &mut pending_bytes,
    )
    .await;
    while in_flight.join_next().await.is_some() {}
    Ok(())
}

fn item_id(item: &Output) -> &str {
    match item {
        Output::Event(record) => &record.event_id,
        Output::Alert(alert) => &alert.alert_id,
    }
}

/// Hand the pending records to a delivery task, waiting for a free request slot (backpressure).
async fn flush<S: Service>(
    shared: &Arc<Shared<S>>,
    permits: &Arc<Semaphore>,
    in_flight: &mut JoinSet<()>,
    pending: &mut Vec<Encoded>,
    pending_bytes: &mut usize,
) {
    if pending.is_empty() {
        return;
    }
    let group = std::mem::take(pending);
    *pending_bytes = shared.service.framing_overhead();
    let Ok(permit) = Arc::clone(permits).acquire_owned().await else {
        return;
    };
    let shared = Arc::clone(shared);
    in_flight.spawn(async move {
        shared.deliver(group).await;
        drop(permit);
    });
}

impl<S: Service> Shared<S> {
    /// Deliver one group of records, however many requests, splits and retries it takes.
    async fn deliver(&self, records: Vec<Encoded>) {
        let request = self.settings.request;
        let gzip = request.compression == Compression::Gzip;
        let name = &self.context.name;
        let mut groups = VecDeque::from([records]);
        while let Some(mut group) = groups.pop_front() {
            let mut backoff =
                Backoff::new(request.retry_initial_backoff, request.retry_max_backoff);
            let mut misconfigured = false;
            while !group.is_empty() {
                let body = match self.body(&group, gzip) {
                    Ok(body) => body,
                    Err(error) => {
                        tracing::error!(sink = %name, %error, "Cannot compress a request body.");
                        return;
                    }
                };
                match self.service.send(body, gzip, group.len()).await {
                    Classified::Delivered => {
                        self.delivered(group);
                        break;
                    }
                    Classified::PerItem(verdicts) if verdicts.len() == group.len() => {
                        let mut again = Vec::new();
                        let mut accepted = Vec::new();
                        let mut first_reason = None;
                        for (record, verdict) in group.into_iter().zip(verdicts) {
                            match verdict {
                                ItemVerdict::Delivered => accepted.push(record),
                                ItemVerdict::Rejected(reason) => {
                                    self.dead_letter(vec![record], &reason)
                                }
                                ItemVerdict::Retry(reason) => {
                                    first_reason.get_or_insert(reason);
                                    again.push(record);
                                }
                            }
                        }
                        self.delivered(accepted);
                        group = again;
                        if let Some(reason) = first_reason {
                            self.context.metrics.sink_error(name);
                            tracing::warn!(sink = %name, records = group.len(), reason = log_label(&reason), "Some records were refused for now; retrying them.");
                            if !self.wait(backoff.next_delay(None)).await {
                                return;
                            }
                        }
                    }
                    Classified::PerItem(verdicts) => {
                        self.context.metrics.sink_error(name);
                        tracing::error!(sink = %name, expected = group.len(), got = verdicts.len(), "The answer does not match the request; resending.");
                        if !self.wait(backoff.next_delay(None)).await {
                            return;
                        }
                    }
                    Classified::Retry { after, reason } => {
                        self.context.metrics.sink_error(name);
                        self.context
                            .metrics
                            .set_sink_health(name, SinkHealth::Degraded(reason.clone()));
                        let delay = backoff.next_delay(after);
                        tracing::warn!(sink = %name, records = group.len(), reason = log_label(&reason), retry_in_ms = delay.as_millis() as u64, attempt = backoff.attempts(), "Delivery failed; retrying.");
                        if !self.wait(delay).await {
                            return;
                        }
                    }
                    Classified::Split { reason } if group.len() == 1 => {
                        self.dead_letter(group, &reason);
                        break;
                    }
                    Classified::Split { reason } => {
                        let second = group.split_off(group.len() / 2);
                        tracing::info!(sink = %name, first = group.len(), second = second.len(), reason = log_label(&reason), "Request refused as a whole; splitting it.");
                        groups.push_front(second);
                        groups.push_front(group);
                        break;
                    }
                    Classified::Rejected { reason } => {
                        self.dead_letter(group, &reason);
                        break;
                    }
                    Classified::Misconfigured { reason } => {
                        self.context.metrics.sink_error(name);
                        self.context
                            .metrics
                            .set_sink_health(name, SinkHealth::Failing(reason.clone()));
                        if !misconfigured {
                            tracing::error!(sink = %name, reason = log_label(&reason), "The SIEM refuses this sink's configuration; records are kept and sending is retried until it is fixed.");
                            misconfigured = true;
                        }
                        // Probe at the slow end of the backoff: nothing will change soon.
                        if !self
                            .wait(backoff.next_delay(Some(request.retry_max_backoff / 2)))
                            .await
                        {
                            return;
                        }
                    }
                }
            }
        }
    }

    fn body(&self, group: &[Encoded], gzip: bool) -> std::io::Result<Bytes> {
        let mut plain =
            Vec::with_capacity(group.iter().map(|r| r.bytes.len() + 1).sum::<usize>() + 2);
        self.service.frame(group, &mut plain);
        if !gzip {
            return Ok(Bytes::from(plain));
        }
        let mut encoder = flate2::write::GzEncoder::new(
            Vec::with_capacity(plain.len() / 4),
            flate2::Compression::fast(),
        );
        encoder.write_all(&plain)?;
        Ok(Bytes::from(encoder.finish()?))
    }

    /// Sleep before a retry; false when the agent aborts meanwhile (records stay unacknowledged).
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
            records.iter().map(|record| record.read_at.elapsed()),
        );
        for record in records {
            record.ack.delivered();
        }
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
                id: item_id(&record.item),
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
            Ok(()) => {
                for record in written {
                    record.ack.delivered();
                }
            }
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

#[cfg(test)]
mod tests;
