//! End-to-end acknowledgement: a batch's source position may be committed only once every sink
//! has accepted everything the batch produced.
//!
//! A source creates one [`AckToken`] per batch with [`batch_ack`] and keeps the [`AckReceiver`].
//! The token travels with the batch and is cloned once per sink (and per output derived from the
//! batch). Each holder calls [`AckToken::delivered`] when its share is safe (written, flushed, or
//! durably queued). A holder dropped without saying so — a task cancelled at shutdown, a sink that
//! gave up — marks the whole batch failed, so a position is never committed for records that were
//! lost in flight. When the last holder is gone the receiver learns the outcome.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// The final outcome of a batch once every holder is done with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchStatus {
    /// Every holder acknowledged: the position may be committed.
    Delivered,
    /// At least one holder dropped its share unacknowledged: do not commit.
    Failed,
}

struct Shared {
    failed: AtomicBool,
    notify: Mutex<Option<oneshot::Sender<BatchStatus>>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let status = if self.failed.load(Ordering::Acquire) {
            BatchStatus::Failed
        } else {
            BatchStatus::Delivered
        };
        let sender = match self.notify.get_mut() {
            Ok(slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(sender) = sender {
            // The source may have stopped listening (shutdown); nothing to do then.
            let _ = sender.send(status);
        }
    }
}

/// One holder's obligation to acknowledge a batch; clone it for every further holder.
pub struct AckToken {
    shared: Arc<Shared>,
    acknowledged: bool,
}

impl AckToken {
    /// Say this holder's share of the batch is safe.
    pub fn delivered(mut self) {
        self.acknowledged = true;
    }

    /// Say this holder's share could not be made safe; the batch will not be committed.
    pub fn failed(self) {
        // Dropping unacknowledged marks the batch failed.
    }
}

impl Clone for AckToken {
    fn clone(&self) -> Self {
        AckToken {
            shared: Arc::clone(&self.shared),
            acknowledged: false,
        }
    }
}

impl Drop for AckToken {
    fn drop(&mut self) {
        if !self.acknowledged {
            self.shared.failed.store(true, Ordering::Release);
        }
    }
}

impl std::fmt::Debug for AckToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckToken").finish_non_exhaustive()
    }
}

/// The source's end: learns the batch's outcome once every holder is done.
#[derive(Debug)]
pub struct AckReceiver {
    receiver: oneshot::Receiver<BatchStatus>,
}

impl AckReceiver {
    /// The outcome if it is known yet, without waiting (for blocking source loops).
    pub fn try_status(&mut self) -> Option<BatchStatus> {
        match self.receiver.try_recv() {
            Ok(status) => Some(status),
            Err(oneshot::error::TryRecvError::Empty) => None,
            Err(oneshot::error::TryRecvError::Closed) => Some(BatchStatus::Failed),
        }
    }

    /// Wait for the outcome.
    pub async fn status(self) -> BatchStatus {
        self.receiver.await.unwrap_or(BatchStatus::Failed)
    }

    /// Wait for the outcome from a blocking thread (never call inside an async task).
    pub fn blocking_status(self) -> BatchStatus {
        self.receiver.blocking_recv().unwrap_or(BatchStatus::Failed)
    }
}

/// A new batch: the token to send along and the receiver to keep.
pub fn batch_ack() -> (AckToken, AckReceiver) {
    let (sender, receiver) = oneshot::channel();
    let shared = Arc::new(Shared {
        failed: AtomicBool::new(false),
        notify: Mutex::new(Some(sender)),
    });
    (
        AckToken {
            shared,
            acknowledged: false,
        },
        AckReceiver { receiver },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_holders_acknowledging_delivers() {
        let (token, mut receiver) = batch_ack();
        let second = token.clone();
        let third = second.clone();
        token.delivered();
        second.delivered();
        assert_eq!(receiver.try_status(), None, "one holder is still out");
        third.delivered();
        assert_eq!(receiver.try_status(), Some(BatchStatus::Delivered));
    }

    #[test]
    fn one_holder_dropping_fails_the_batch() {
        let (token, mut receiver) = batch_ack();
        let second = token.clone();
        token.delivered();
        drop(second);
        assert_eq!(receiver.try_status(), Some(BatchStatus::Failed));
    }

    #[test]
    fn explicit_failure_fails_the_batch() {
        let (token, receiver) = batch_ack();
        let second = token.clone();
        second.failed();
        token.delivered();
        assert_eq!(receiver.blocking_status(), BatchStatus::Failed);
    }
}
