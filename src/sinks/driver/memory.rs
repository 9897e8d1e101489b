//! `queue.type = "memory"`: records wait only in the channel and the pending batch, and each
//! carries its source batch's token, settled when the SIEM accepts it.

use super::{Encoded, Service, Settle, Shared, Since};
use crate::sinks::{SinkBatch, SinkError};
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

pub(super) async fn run<S: Service>(
    shared: Arc<Shared<S>>,
    mut batches: mpsc::Receiver<SinkBatch>,
) -> Result<(), SinkError> {
    let limits = shared.settings.batch;
    if shared
        .context
        .outbound
        .as_ref()
        .is_some_and(|outbound| outbound.evidence.enabled)
    {
        tracing::warn!(sink = %shared.context.name, "[evidence] is on, but a sink with queue.type = \"memory\" cannot keep stamps across resends: its records are not stamped.");
    }
    let mut sender = Dispatch::new(&shared);
    let mut deadline: Option<Instant> = None;
    let mut scratch = Vec::new();
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
                sender.flush().await;
                deadline = None;
                continue;
            }
        };
        let Some(batch) = batch else { break };
        for item in batch.items.iter() {
            let Some(bytes) = shared.encode(item, &batch.ack, batch.read_at, &mut scratch) else {
                continue;
            };
            let record = Encoded {
                bytes: bytes.into(),
                id: super::id_bytes(super::item_id(item)),
                settle: Settle::Ack(batch.ack.clone()),
                since: Since::Read(batch.read_at),
            };
            if sender.push(record).await {
                deadline = None;
            } else {
                deadline.get_or_insert_with(|| Instant::now() + limits.timeout);
            }
        }
        // Every selected record holds its own clone now; this share is settled.
        batch.ack.delivered();
        sender.reap();
    }
    sender.finish().await;
    Ok(())
}

/// Gathers encoded records into requests and hands them to delivery tasks, at most
/// `request.concurrency` at once (waiting for a free slot is the backpressure).
pub(super) struct Dispatch<S> {
    shared: Arc<Shared<S>>,
    permits: Arc<Semaphore>,
    in_flight: JoinSet<()>,
    pending: Vec<Encoded>,
    pending_bytes: usize,
}

impl<S: Service> Dispatch<S> {
    pub(super) fn new(shared: &Arc<Shared<S>>) -> Self {
        Dispatch {
            shared: Arc::clone(shared),
            permits: Arc::new(Semaphore::new(shared.settings.request.concurrency)),
            in_flight: JoinSet::new(),
            pending: Vec::new(),
            pending_bytes: shared.service.framing_overhead(),
        }
    }

    /// Add a record; sends first if it would overflow the byte limit, and after if the batch is
    /// full. True when a request went out and nothing is pending.
    pub(super) async fn push(&mut self, record: Encoded) -> bool {
        let limits = self.shared.settings.batch;
        let size = record.bytes.len() + self.shared.service.separator_bytes();
        if !self.pending.is_empty() && self.pending_bytes + size > limits.max_bytes {
            self.flush().await;
        }
        self.pending_bytes += size;
        self.pending.push(record);
        if self.pending.len() >= limits.max_events {
            self.flush().await;
            return true;
        }
        false
    }

    /// Hand the pending records to a delivery task, waiting for a free request slot.
    pub(super) async fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let group = std::mem::take(&mut self.pending);
        self.pending_bytes = self.shared.service.framing_overhead();
        let Ok(permit) = Arc::clone(&self.permits).acquire_owned().await else {
            return;
        };
        let shared = Arc::clone(&self.shared);
        self.in_flight.spawn(async move {
            shared.deliver(group).await;
            drop(permit);
        });
    }

    /// Collect finished delivery tasks.
    pub(super) fn reap(&mut self) {
        while self.in_flight.try_join_next().is_some() {}
    }

    /// Send what is pending and wait for every delivery task (they end early on abort).
    pub(super) async fn finish(mut self) {
        self.flush().await;
        while self.in_flight.join_next().await.is_some() {}
    }
}
