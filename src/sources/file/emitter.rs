//! Sending batches from the blocking tail thread into the async pipeline.

use super::super::{Line, SourceBatch};
use crate::decode::Format;
use crate::pipeline::ack::{batch_ack, AckReceiver};
use crate::telemetry::Metrics;
use std::sync::Arc;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Why a batch could not be sent: either way the source stops reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stopped {
    /// The agent is stopping.
    Shutdown,
    /// The pipeline no longer receives.
    Closed,
}

/// What a file needs to send its batches.
pub(crate) struct Emitter {
    /// The source's name.
    pub(crate) source: Arc<str>,
    /// How the lines are to be decoded.
    pub(crate) format: Format,
    /// Most lines per batch.
    pub(crate) max_batch_lines: usize,
    out: Option<mpsc::Sender<SourceBatch>>,
    shutdown: CancellationToken,
    runtime: Handle,
    metrics: Arc<Metrics>,
}

impl Emitter {
    /// An emitter sending into `out` until `shutdown`.
    pub(crate) fn new(
        source: Arc<str>,
        format: Format,
        max_batch_lines: usize,
        out: mpsc::Sender<SourceBatch>,
        shutdown: CancellationToken,
        runtime: Handle,
        metrics: Arc<Metrics>,
    ) -> Self {
        Emitter {
            source,
            format,
            max_batch_lines: max_batch_lines.max(1),
            out: Some(out),
            shutdown,
            runtime,
            metrics,
        }
    }

    /// Whether the agent is stopping.
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// Drop the sender, so the pipeline can finish once it has drained what was sent.
    pub(crate) fn close(&mut self) {
        self.out = None;
    }

    /// Send one batch, waiting while the pipeline is full; returns the receiver of its outcome.
    ///
    /// This waits like `blocking_send` (backpressure) but also wakes on shutdown: with a stuck
    /// pipeline, a plain `blocking_send` could never observe the cancellation. It must run on a
    /// blocking thread, never inside an async task.
    pub(crate) fn send(&self, stream: &Arc<str>, lines: Vec<Line>) -> Result<AckReceiver, Stopped> {
        let out = self.out.as_ref().ok_or(Stopped::Closed)?;
        let count = lines.len() as u64;
        let (ack, receiver) = batch_ack();
        let batch = SourceBatch {
            source: Arc::clone(&self.source),
            stream: Arc::clone(stream),
            format: self.format,
            lines,
            ack,
            read_at: std::time::Instant::now(),
        };
        let shutdown = &self.shutdown;
        self.runtime.block_on(async {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => Err(Stopped::Shutdown),
                sent = out.send(batch) => sent.map_err(|_| Stopped::Closed),
            }
        })?;
        self.metrics.lines_read(&self.source, count);
        Ok(receiver)
    }
}
