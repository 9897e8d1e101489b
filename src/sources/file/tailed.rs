//! One open file being tailed: its read position, identity, and batches awaiting acknowledgement.

use super::super::framing::LineSplitter;
use super::super::Line;
use super::checkpoint::CheckpointStore;
use super::config::StartAt;
use super::emitter::{Emitter, Stopped};
use super::identity::{fingerprint, DevIno, FileIdentity};
use crate::pipeline::ack::{AckReceiver, BatchStatus};
use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Most bytes read from one file per pass, so one busy file cannot starve the others.
const READ_BUDGET_BYTES: u64 = 4 * 1024 * 1024;

/// A sent batch whose outcome is not known yet.
#[derive(Debug)]
struct PendingBatch {
    receiver: AckReceiver,
    /// The identity the offset belongs to (the file may have been truncated since).
    key: String,
    /// Offset just past the batch's last line.
    end_offset: u64,
}

/// Where to start once the file's identity is known and it has no checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartPolicy {
    /// From offset 0.
    Beginning,
    /// After the last complete line present now (files found at the first scan, `start_at = end`).
    End,
    /// From offset 0 even if a checkpoint exists: the content was replaced while we watched, and
    /// may start with the same line as before (same identity, stale offset).
    Replaced,
}

impl StartPolicy {
    /// The policy for a file found at the first scan (`first`) or later.
    pub(crate) fn for_discovery(first_scan: bool, start_at: StartAt) -> Self {
        match (first_scan, start_at) {
            (true, StartAt::End) => StartPolicy::End,
            _ => StartPolicy::Beginning,
        }
    }
}

/// An open file and everything the tail loop knows about it.
#[derive(Debug)]
pub(crate) struct TailedFile {
    path: PathBuf,
    stream: Arc<str>,
    file: File,
    dev_ino: DevIno,
    /// Unknown while the file is empty or its first line incomplete.
    identity: Option<FileIdentity>,
    start: StartPolicy,
    splitter: LineSplitter,
    /// Offset of the next byte to read.
    read_offset: u64,
    /// Size at the last look, to tell when a rotated file is drained.
    last_size: u64,
    pending: VecDeque<PendingBatch>,
    /// A batch failed: commit nothing more for this file (its lines are re-read after restart).
    commit_stopped: bool,
    /// When the path stopped matching (rotated away or deleted).
    rotated_since: Option<Instant>,
    last_growth: Instant,
    /// An I/O error was logged; cleared once reading works again.
    warned: bool,
}

impl TailedFile {
    /// Track a newly opened file; reading starts once its identity can be computed.
    pub(crate) fn new(path: PathBuf, file: File, dev_ino: DevIno, start: StartPolicy) -> Self {
        TailedFile {
            stream: Arc::from(path.to_string_lossy().as_ref()),
            path,
            file,
            dev_ino,
            identity: None,
            start,
            splitter: LineSplitter::new(0, 1),
            read_offset: 0,
            last_size: 0,
            pending: VecDeque::new(),
            commit_stopped: false,
            rotated_since: None,
            last_growth: Instant::now(),
            warned: false,
        }
    }

    /// After the first pass: a file with no identity yet (empty, first line unfinished) had
    /// nothing to skip, so whatever arrives later is new and read from the start.
    pub(crate) fn end_first_pass(&mut self) {
        if self.identity.is_none() && self.start == StartPolicy::End {
            self.start = StartPolicy::Beginning;
        }
    }

    /// The checkpoint key, once the identity is known.
    pub(crate) fn key(&self) -> Option<String> {
        self.identity.as_ref().map(FileIdentity::key)
    }

    /// The file was seen at `path` by the latest scan.
    pub(crate) fn seen_at(&mut self, path: &Path) {
        if self.path != path {
            tracing::info!(from = %self.path.display(), to = %path.display(), "File renamed; still tailing it.");
            self.path = path.to_path_buf();
            self.stream = Arc::from(path.to_string_lossy().as_ref());
        }
        if self.rotated_since.take().is_some() {
            tracing::debug!(path = %self.path.display(), "File matches the patterns again.");
        }
    }

    /// The latest scan did not find the file: drain it, then let it go after `rotate_wait`.
    pub(crate) fn not_seen(&mut self) {
        if self.rotated_since.is_none() {
            tracing::info!(path = %self.path.display(), "File rotated away or removed; draining it.");
            self.rotated_since = Some(Instant::now());
        }
    }

    /// Whether the file can be closed: rotated away, read to the end (or never readable: its
    /// first line was never finished), quiet for `rotate_wait`, and every batch settled.
    pub(crate) fn is_retirable(&self, rotate_wait: std::time::Duration) -> bool {
        self.rotated_since.is_some()
            && (self.read_offset >= self.last_size || self.identity.is_none())
            && self.last_growth.elapsed() >= rotate_wait
            && self.pending.is_empty()
    }

    /// Log what is lost when closing a drained file that ends without a newline.
    pub(crate) fn retire(self) {
        let held = self.splitter.pending_bytes();
        if held > 0 {
            tracing::warn!(path = %self.path.display(), bytes = held, "Rotated file ended with an unterminated line; it was not read.");
        }
        tracing::info!(path = %self.path.display(), offset = self.read_offset, "Finished draining rotated file.");
    }

    /// Whether batches are awaiting their outcome.
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Read what was appended and send it; returns whether any bytes were read.
    pub(crate) fn read(
        &mut self,
        emitter: &Emitter,
        checkpoints: &mut CheckpointStore,
        max_line_bytes: usize,
        fingerprint_bytes: usize,
        buffer: &mut [u8],
    ) -> Result<bool, Stopped> {
        let size = match self.file.metadata() {
            Ok(metadata) => metadata.len(),
            Err(error) => {
                self.warn_once("Cannot stat file; retrying.", &error);
                return Ok(false);
            }
        };
        if size != self.last_size {
            // Growth of a file we cannot read yet (no identity) counts too, for `rotate_wait`.
            self.last_growth = Instant::now();
            self.last_size = size;
        }
        if let Some(identity) = &self.identity {
            if size < self.read_offset {
                tracing::info!(path = %self.path.display(), size, offset = self.read_offset, "File truncated; reading it from the start.");
                self.reset();
            } else if size > self.read_offset {
                // Copy-truncate followed by quick writes can grow the file past our offset before
                // we look: only the first bytes tell that it is new content.
                match fingerprint(&self.file, fingerprint_bytes) {
                    Ok(Some(current)) if current == identity.fingerprint => {}
                    Ok(_) => {
                        tracing::info!(path = %self.path.display(), "File content replaced (truncated and rewritten); reading it from the start.");
                        self.reset();
                    }
                    Err(error) => {
                        self.warn_once("Cannot read file; retrying.", &error);
                        return Ok(false);
                    }
                }
            }
        }
        if self.identity.is_none()
            && !self.adopt_identity(checkpoints, size, max_line_bytes, fingerprint_bytes)
        {
            return Ok(false);
        }
        self.read_appended(emitter, checkpoints, size, buffer)
    }

    /// Compute the identity and pick the start offset; false while it cannot be computed yet.
    fn adopt_identity(
        &mut self,
        checkpoints: &mut CheckpointStore,
        size: u64,
        max_line_bytes: usize,
        fingerprint_bytes: usize,
    ) -> bool {
        let fingerprint = match fingerprint(&self.file, fingerprint_bytes) {
            Ok(Some(fingerprint)) => fingerprint,
            Ok(None) => return false,
            Err(error) => {
                self.warn_once("Cannot read file; retrying.", &error);
                return false;
            }
        };
        let identity = FileIdentity {
            dev_ino: self.dev_ino,
            fingerprint,
        };
        let key = identity.key();
        let offset = match checkpoints.get(&key) {
            _ if self.start == StartPolicy::Replaced => 0,
            Some(entry) if entry.offset <= size => entry.offset,
            Some(entry) => {
                tracing::info!(path = %self.path.display(), checkpoint = entry.offset, size, "Checkpoint beyond the end of the file (truncated while stopped); reading from the start.");
                0
            }
            None => match self.start {
                StartPolicy::Beginning | StartPolicy::Replaced => 0,
                StartPolicy::End => {
                    let offset = self.end_of_last_line(size, max_line_bytes);
                    // Skipped on purpose: commit it now, so a restart does not read it either.
                    checkpoints.set(&key, &self.path, offset);
                    offset
                }
            },
        };
        tracing::info!(path = %self.path.display(), offset, identity = %key, "Tailing file.");
        self.identity = Some(identity);
        self.splitter = LineSplitter::new(offset, max_line_bytes);
        self.read_offset = offset;
        self.last_growth = Instant::now();
        true
    }

    /// Forget the position: the file's content was replaced.
    fn reset(&mut self) {
        self.identity = None;
        self.start = StartPolicy::Replaced;
        self.read_offset = 0;
        self.splitter = LineSplitter::new(0, 1);
    }

    /// Offset just past the last newline before `size` (looking back at most a line's length).
    fn end_of_last_line(&self, size: u64, max_line_bytes: usize) -> u64 {
        let window = size.min(max_line_bytes as u64 + 1);
        let mut tail = vec![0u8; window as usize];
        match self.file.read_exact_at(&mut tail, size - window) {
            Ok(()) => match tail.iter().rposition(|&byte| byte == b'\n') {
                Some(index) => size - window + index as u64 + 1,
                None if window == size => 0,
                None => size,
            },
            Err(_) => size,
        }
    }

    fn read_appended(
        &mut self,
        emitter: &Emitter,
        checkpoints: &mut CheckpointStore,
        size: u64,
        buffer: &mut [u8],
    ) -> Result<bool, Stopped> {
        let mut lines: Vec<Line> = Vec::new();
        let mut read_total = 0u64;
        while self.read_offset < size && read_total < READ_BUDGET_BYTES {
            let want = buffer.len().min((size - self.read_offset) as usize);
            let read = match self.file.read_at(&mut buffer[..want], self.read_offset) {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    self.warn_once("Cannot read file; retrying.", &error);
                    break;
                }
            };
            self.warned = false;
            self.read_offset += read as u64;
            read_total += read as u64;
            self.splitter.push(&buffer[..read], &mut lines);
            while lines.len() >= emitter.max_batch_lines {
                let rest = lines.split_off(emitter.max_batch_lines);
                let end_offset = rest
                    .first()
                    .map_or(self.splitter.consumed_offset(), |l| l.offset);
                self.send(
                    emitter,
                    checkpoints,
                    std::mem::replace(&mut lines, rest),
                    end_offset,
                )?;
            }
        }
        if !lines.is_empty() {
            let end_offset = self.splitter.consumed_offset();
            self.send(emitter, checkpoints, lines, end_offset)?;
        }
        if read_total > 0 {
            self.last_growth = Instant::now();
        }
        Ok(read_total > 0)
    }

    fn send(
        &mut self,
        emitter: &Emitter,
        checkpoints: &mut CheckpointStore,
        lines: Vec<Line>,
        end_offset: u64,
    ) -> Result<(), Stopped> {
        let Some(key) = self.key() else {
            return Ok(());
        };
        let receiver = emitter.send(&self.stream, lines)?;
        self.pending.push_back(PendingBatch {
            receiver,
            key,
            end_offset,
        });
        // Commit what the pipeline acknowledged meanwhile: a large file is many batches, and
        // the checkpoint must trail delivery by the batches in flight, not by a whole read pass
        // (that is the duplicate bound after a kill -9). A failed write is retried by the loop.
        self.collect_acks(checkpoints, false);
        if checkpoints.needs_persist(false) {
            let _ = checkpoints.persist(false);
        }
        Ok(())
    }

    /// Commit the batches settled so far, in order; with `wait`, wait for all of them.
    pub(crate) fn collect_acks(&mut self, checkpoints: &mut CheckpointStore, wait: bool) {
        while let Some(batch) = self.pending.pop_front() {
            let PendingBatch {
                mut receiver,
                key,
                end_offset,
            } = batch;
            let status = if wait {
                receiver.blocking_status()
            } else {
                match receiver.try_status() {
                    Some(status) => status,
                    None => {
                        self.pending.push_front(PendingBatch {
                            receiver,
                            key,
                            end_offset,
                        });
                        break;
                    }
                }
            };
            self.settle(checkpoints, status, &key, end_offset);
        }
    }

    fn settle(
        &mut self,
        checkpoints: &mut CheckpointStore,
        status: BatchStatus,
        key: &str,
        end_offset: u64,
    ) {
        if self.commit_stopped {
            return;
        }
        match status {
            BatchStatus::Delivered => checkpoints.set(key, &self.path, end_offset),
            BatchStatus::Failed => {
                tracing::warn!(path = %self.path.display(), offset = end_offset, "A batch was not delivered; no further progress is committed for this file (its lines are read again after a restart).");
                self.commit_stopped = true;
            }
        }
    }

    fn warn_once(&mut self, message: &'static str, error: &io::Error) {
        if !self.warned {
            self.warned = true;
            tracing::warn!(path = %self.path.display(), %error, kind = ?error.kind(), "{message}");
        }
    }
}
