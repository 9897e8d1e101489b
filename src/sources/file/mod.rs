//! The `file` source: tails JSON-lines files across rotation, with persisted checkpoints.
//!
//! # Design
//!
//! - **Discovery** ([`discovery`]): `include` globs minus `exclude` globs, re-evaluated every
//!   `glob_interval` and whenever a `notify` event arrives from the (non-recursive) watches on
//!   the patterns' directories. Every file is also polled every `poll_interval`, so a lost event,
//!   an unwatchable directory or a wildcard directory costs latency, never data.
//! - **Identity** ([`identity`]): device + inode + a SHA-256 fingerprint of the first line (at
//!   most `fingerprint_bytes`). A file whose first line is not complete yet is waited on. The
//!   fingerprint keeps a recycled inode holding a new file from inheriting the old checkpoint.
//! - **Tailing** ([`tailed`], [`tailer`]): files are tracked by (device, inode) with the
//!   descriptor kept open, so a rename is just a new path for the same file. When a file no
//!   longer matches (renamed away, deleted) it is drained from its open descriptor and closed
//!   once at end of file with no growth for `rotate_wait`; the new file at the path is a new
//!   inode, read from the beginning. A size below our offset (copy-truncate), or a fingerprint
//!   that changed under our offset (truncated, then rewritten before we looked), restarts the
//!   file at 0. A partial last line is held until its newline arrives.
//! - **Start**: a checkpoint wins; otherwise `start_at` applies to files of the first scan only
//!   (`end` = after the last complete line, committed at once), and later files start at 0.
//! - **Acknowledgement** ([`emitter`]): lines go out in batches of at most `max_batch_lines`, one
//!   file per batch, each with its own ack token. The receiver and the batch's end offset wait in
//!   a per-file FIFO; offsets are committed strictly in order and only for `Delivered` batches.
//!   After a `Failed` batch nothing more is committed for that file, so a restart re-reads it.
//! - **Checkpoints** ([`checkpoint`]): `<state_dir>/checkpoints/<source>.json`, versioned,
//!   replaced atomically after acknowledged progress, fsynced every few seconds and at shutdown,
//!   stale identities pruned after 7 days. A corrupt file stops the source with an error.
//! - **Threads**: the loop is blocking I/O on a `spawn_blocking` thread; sending waits for room
//!   in the channel (backpressure) but also wakes on shutdown.
//! - **Shutdown**: stop reading, drop the sender, wait for every outstanding ack (they resolve
//!   once the pipeline has drained or torn down), commit what was delivered, persist with fsync.
//!
//! Only Unix is supported (device/inode identity and positional reads).

mod checkpoint;
mod config;
mod discovery;
mod emitter;
mod identity;
mod tailed;
mod tailer;
#[cfg(test)]
mod tests;

pub use config::{default_max_line_bytes, FileSourceConfig, StartAt};

use super::{SourceContext, SourceError};
use checkpoint::CheckpointStore;
use discovery::Wake;
use emitter::Emitter;
use tailer::Tailer;

/// Run the file source until shutdown.
pub async fn run(config: FileSourceConfig, context: SourceContext) -> Result<(), SourceError> {
    let SourceContext {
        name,
        out,
        shutdown,
        state_dir,
        metrics,
    } = context;
    // Dropping this future (task aborted, runtime shutting down) must stop the thread as well,
    // or the runtime would wait for it forever.
    let shutdown = shutdown.child_token();
    let _stop_thread_on_drop = shutdown.clone().drop_guard();
    let (wake_sender, wake_receiver) = std::sync::mpsc::channel();
    // The tail thread sleeps in a blocking wait: wake it as soon as the agent stops.
    let waker = {
        let wake_sender = wake_sender.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            let _ = wake_sender.send(Wake::Shutdown);
        })
    };
    let emitter = Emitter::new(
        name.clone(),
        config.format,
        config.max_batch_lines,
        out,
        shutdown,
        tokio::runtime::Handle::current(),
        metrics,
    );
    let thread = tokio::task::spawn_blocking(move || {
        let checkpoints = CheckpointStore::load(&state_dir, &name)?;
        Tailer::new(config, emitter, checkpoints, (wake_sender, wake_receiver))?.run()
    });
    let result = thread.await.unwrap_or_else(|error| {
        Err(SourceError::Other(format!(
            "file source thread failed: {error}"
        )))
    });
    waker.abort();
    result
}
