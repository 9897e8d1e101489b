//! Handing a request's lines to the pipeline and waiting until they are safe.

use super::ReceiverLimits;
use crate::decode::Format;
use crate::pipeline::ack::{batch_ack, BatchStatus};
use crate::sources::{Line, SourceBatch, SourceContext};
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore};

/// One receiver's door into the pipeline.
#[derive(Debug)]
pub struct Intake {
    context: SourceContext,
    format: Format,
    /// Requests waiting for their acknowledgement; none left means saturated.
    pending: Arc<Semaphore>,
    limits: ReceiverLimits,
}

/// Why lines were not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IntakeError {
    /// Too many requests in flight, or the pipeline's queue stayed full: retry later (429).
    #[error("the pipeline is saturated")]
    Saturated,
    /// The agent is stopping (503).
    #[error("the agent is shutting down")]
    ShuttingDown,
    /// A sink gave up on the records, or they were not delivered in time: resend (503).
    #[error("the records were not delivered")]
    NotDelivered,
}

impl Intake {
    /// An intake sending batches in `format` for the source of `context`.
    pub fn new(context: SourceContext, format: Format, limits: ReceiverLimits) -> Self {
        Intake {
            pending: Arc::new(Semaphore::new(limits.max_pending_requests)),
            context,
            format,
            limits,
        }
    }

    /// The source's context (name, metrics, shutdown).
    pub fn context(&self) -> &SourceContext {
        &self.context
    }

    /// The format lines are sent in (validation decodes with it).
    pub fn format(&self) -> Format {
        self.format
    }

    /// The limits.
    pub fn limits(&self) -> &ReceiverLimits {
        &self.limits
    }

    /// Whether the agent is stopping.
    pub fn shutting_down(&self) -> bool {
        self.context.shutdown.is_cancelled()
    }

    /// Send `lines` as one batch and wait until every sink has them safe.
    ///
    /// Success means exactly what a committed file position means: every record is written,
    /// flushed or durably queued by every sink. A batch that a sink dropped is never success.
    pub async fn submit(&self, stream: &str, lines: Vec<Line>) -> Result<(), IntakeError> {
        if self.shutting_down() {
            return Err(IntakeError::ShuttingDown);
        }
        let _permit = self
            .pending
            .clone()
            .try_acquire_owned()
            .map_err(|_| IntakeError::Saturated)?;
        self.context
            .metrics
            .lines_read(&self.context.name, lines.len() as u64);
        let (ack, receiver) = batch_ack();
        let batch = SourceBatch {
            source: Arc::clone(&self.context.name),
            stream: Arc::from(stream),
            format: self.format,
            lines,
            ack,
            read_at: std::time::Instant::now(),
        };
        match self
            .context
            .out
            .send_timeout(batch, self.limits.queue_wait)
            .await
        {
            Ok(()) => {}
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => return Err(IntakeError::Saturated),
            Err(mpsc::error::SendTimeoutError::Closed(_)) => return Err(IntakeError::ShuttingDown),
        }
        // Shutdown does not cut this wait short: the pipeline drains what it holds, so the ack
        // still comes (or fails when the grace period ends).
        match tokio::time::timeout(self.limits.ack_timeout, receiver.status()).await {
            Ok(BatchStatus::Delivered) => Ok(()),
            Ok(BatchStatus::Failed) | Err(_) => Err(IntakeError::NotDelivered),
        }
    }
}
