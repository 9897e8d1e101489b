//! The disk queue: append-only segment files, one writer, one reader, out-of-order completion.
//!
//! Records get consecutive indices in append order. The reader hands them out in that order;
//! delivery tasks report each one done (delivered or dead-lettered) in any order, and the
//! *commit point* — every index below it is done — advances over the contiguous prefix. A
//! segment whose records are all below the commit point is deleted. The commit point is saved
//! in place whenever it moves (`commit.rs`); it is only ever a lower bound, so a stale one after
//! a crash means records sent again, never records lost.

use super::commit::CommitFile;
use super::config::{Fsync, QueueConfig};
use super::frame::{self, FrameGroup, Parsed, RecordKind};
use super::reader::{Damaged, Reader};
use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// Why the queue cannot go on.
#[derive(Debug, thiserror::Error)]
#[error("{context} ({path}): {source}")]
pub struct QueueError {
    /// What was being done.
    pub context: &'static str,
    /// The file or directory.
    pub path: String,
    /// The underlying error (e.g. `No space left on device`).
    #[source]
    pub source: std::io::Error,
}

impl QueueError {
    pub(super) fn new(context: &'static str, path: &Path, source: std::io::Error) -> Self {
        QueueError {
            context,
            path: path.display().to_string(),
            source,
        }
    }

    /// Whether the disk is full (the agent says so and waits for space).
    pub fn is_disk_full(&self) -> bool {
        self.source.raw_os_error() == Some(28)
    }
}

/// A snapshot of the queue's size, for metrics and `status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Records queued and not yet delivered.
    pub records: u64,
    /// Bytes of segment files on disk.
    pub bytes: u64,
    /// When the oldest undelivered record was queued (Unix ms), if any.
    pub oldest_ms: Option<i64>,
}

/// What the reader needs to know of a segment.
#[derive(Debug)]
pub(super) struct SegmentView {
    pub first_index: u64,
    pub path: PathBuf,
    /// Bytes written so far: whole frames only.
    pub written: u64,
    /// The next segment's first index, once this one is finished.
    pub next: Option<u64>,
    /// The queue's commit point.
    pub committed: u64,
}

#[derive(Debug)]
struct Segment {
    first_index: u64,
    path: PathBuf,
    bytes: u64,
    /// Highest index written to it.
    last_index: Option<u64>,
}

#[derive(Debug, Default)]
struct State {
    /// In order; the last one is being written.
    segments: VecDeque<Segment>,
    next_index: u64,
    /// Every index below is done.
    committed: u64,
    /// Done ranges above `committed`: start → end (exclusive).
    done_ahead: BTreeMap<u64, u64>,
    total_bytes: u64,
    /// (first index, queued_at) of each append, to tell the age of the oldest record.
    appends: VecDeque<(u64, i64)>,
}

/// A sink's disk queue. Share it in an `Arc`; take one [`Writer`] and one [`Reader`].
#[derive(Debug)]
pub struct DiskQueue {
    dir: PathBuf,
    config: QueueConfig,
    state: Mutex<State>,
    /// Locked only under `state`, which orders the saves.
    commit_file: Mutex<CommitFile>,
    data: Notify,
    space: Notify,
}

/// What opening found: the queue, and damage to dead-letter (a torn write at the end).
pub struct Opened {
    /// The queue.
    pub queue: Arc<DiskQueue>,
    /// Appends records.
    pub writer: Writer,
    /// Reads them back in order.
    pub reader: Reader,
    /// Bytes cut from the end of the last segment (an unfinished write before a crash).
    pub torn: Option<Damaged>,
    /// The newest intact record on disk, delivered or not (a chain resumes after it).
    pub newest: Option<super::frame::QueuedRecord>,
}

fn segment_path(dir: &Path, first_index: u64) -> PathBuf {
    dir.join(format!("{first_index:020}.seg"))
}

fn commit_path(dir: &Path) -> PathBuf {
    dir.join("committed")
}

impl DiskQueue {
    /// Open (or create) the queue in `dir`, recovering what a previous run left.
    pub fn open(dir: &Path, config: QueueConfig) -> Result<Opened, QueueError> {
        std::fs::create_dir_all(dir)
            .map_err(|error| QueueError::new("cannot create the queue directory", dir, error))?;
        let (commit_file, committed) = CommitFile::open(&commit_path(dir))?;
        let mut firsts: Vec<u64> = std::fs::read_dir(dir)
            .map_err(|error| QueueError::new("cannot list the queue directory", dir, error))?
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| {
                let name = entry.file_name();
                let name = name.to_str()?;
                name.strip_suffix(".seg")?.parse::<u64>().ok()
            })
            .collect();
        firsts.sort_unstable();

        let mut state = State {
            committed,
            ..State::default()
        };
        let mut torn = None;
        let mut newest = None;
        let count = firsts.len();
        for (position, first_index) in firsts.into_iter().enumerate() {
            let path = segment_path(dir, first_index);
            let bytes = std::fs::read(&path)
                .map_err(|error| QueueError::new("cannot read a queue segment", &path, error))?;
            let mut scan = scan(&bytes);
            if scan.last.is_some() {
                newest = scan.last.take();
            }
            let mut length = bytes.len() as u64;
            if position + 1 == count && scan.intact_end < bytes.len() {
                // The last segment ends in bytes no later frame vouches for: a write the
                // previous run did not finish. Cut them off so appends continue cleanly.
                torn = Some(Damaged {
                    segment: path.clone(),
                    offset: scan.intact_end as u64,
                    bytes: bytes[scan.intact_end..].to_vec(),
                    reason:
                        "unfinished write at the end of the queue (the agent stopped mid-write)",
                });
                truncate(&path, scan.intact_end as u64)?;
                length = scan.intact_end as u64;
            }
            if let Some(&(index, queued_at)) =
                scan.records.iter().find(|(index, _)| *index >= committed)
            {
                state.appends.push_back((index, queued_at));
            }
            let last_index = scan.records.iter().map(|(index, _)| *index).max();
            state.total_bytes += length;
            state.next_index = state
                .next_index
                .max(first_index)
                .max(last_index.map_or(0, |index| index + 1));
            state.segments.push_back(Segment {
                first_index,
                path,
                bytes: length,
                last_index,
            });
        }
        state.next_index = state.next_index.max(committed);
        let active = match state.segments.back() {
            Some(segment) if segment.bytes < config.segment_bytes => segment.path.clone(),
            _ => {
                let first_index = state.next_index;
                let path = segment_path(dir, first_index);
                create_segment(&path, config.fsync)?;
                state.segments.push_back(Segment {
                    first_index,
                    path: path.clone(),
                    bytes: 0,
                    last_index: None,
                });
                path
            }
        };
        let file = OpenOptions::new()
            .append(true)
            .open(&active)
            .map_err(|error| QueueError::new("cannot open a queue segment", &active, error))?;
        let first_segment = state.segments.front().map_or(0, |s| s.first_index);
        let queue = Arc::new(DiskQueue {
            dir: dir.to_path_buf(),
            config,
            state: Mutex::new(state),
            commit_file: Mutex::new(commit_file),
            data: Notify::new(),
            space: Notify::new(),
        });
        // Segments left fully delivered by a crash between commit and deletion.
        queue.release_segments(&mut queue.lock());
        Ok(Opened {
            writer: Writer {
                queue: Arc::clone(&queue),
                file,
                scratch: FrameGroup::default(),
            },
            reader: Reader::new(Arc::clone(&queue), first_segment, committed),
            queue,
            torn,
            newest,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The first segment at or after `first_index`, for the reader.
    pub(super) fn segment_at(&self, first_index: u64) -> Option<SegmentView> {
        let state = self.lock();
        let position = state
            .segments
            .iter()
            .position(|segment| segment.first_index >= first_index)?;
        let segment = &state.segments[position];
        Some(SegmentView {
            first_index: segment.first_index,
            path: segment.path.clone(),
            written: segment.bytes,
            next: state.segments.get(position + 1).map(|s| s.first_index),
            committed: state.committed,
        })
    }

    /// The queue's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the queue is at or over its size limit.
    pub fn is_full(&self) -> bool {
        self.lock().total_bytes >= self.config.max_bytes
    }

    /// Wait until the queue is under its size limit.
    pub async fn wait_for_space(&self) {
        loop {
            let notified = self.space.notified();
            if !self.is_full() {
                return;
            }
            notified.await;
        }
    }

    /// Wait until something is appended (or a short while passes: the caller re-checks).
    pub async fn wait_for_data(&self, at_most: std::time::Duration) {
        let _ = tokio::time::timeout(at_most, self.data.notified()).await;
    }

    /// Wake the reader (e.g. intake has closed: nothing more will come).
    pub fn wake(&self) {
        self.data.notify_one();
    }

    /// Size and age, for metrics.
    pub fn stats(&self) -> QueueStats {
        let state = self.lock();
        let done_ahead: u64 = state
            .done_ahead
            .iter()
            .map(|(start, end)| end - start)
            .sum();
        let records = state
            .next_index
            .saturating_sub(state.committed)
            .saturating_sub(done_ahead);
        QueueStats {
            records,
            bytes: state.total_bytes,
            oldest_ms: (records > 0)
                .then(|| state.appends.front().map(|(_, at)| *at))
                .flatten(),
        }
    }

    /// Mark records `start..end` done (delivered, dead-lettered, or lost to damage).
    pub fn done(&self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let mut state = self.lock();
        let before = state.committed;
        if end <= before {
            return;
        }
        let start = start.max(before);
        if start == before {
            state.committed = end;
        } else {
            insert_range(&mut state.done_ahead, start, end);
        }
        // Absorb ranges the commit point has reached.
        while let Some((&first, &last)) = state.done_ahead.first_key_value() {
            if first > state.committed {
                break;
            }
            state.done_ahead.remove(&first);
            state.committed = state.committed.max(last);
        }
        if state.committed != before {
            let committed = state.committed;
            // The oldest undelivered record is the one at the commit point.
            while state.appends.len() > 1 && state.appends[1].0 <= committed {
                state.appends.pop_front();
            }
            self.save_commit(committed);
            self.release_segments(&mut state);
        }
    }

    fn save_commit(&self, committed: u64) {
        let mut commit_file = match self.commit_file.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Err(error) = commit_file.save(committed) {
            // Only costs resends after a restart; the queue itself is intact.
            tracing::warn!(%error, "Cannot save the queue's commit point.");
        }
    }

    /// Delete sealed segments whose records are all done.
    fn release_segments(&self, state: &mut State) {
        let mut freed = false;
        while state.segments.len() > 1 {
            let Some(front) = state.segments.front() else {
                break;
            };
            let finished = match front.last_index {
                Some(last) => last < state.committed,
                None => true,
            };
            if !finished {
                break;
            }
            if let Err(error) = std::fs::remove_file(&front.path) {
                if error.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %front.path.display(), %error, "Cannot delete a delivered queue segment.");
                    break;
                }
            }
            state.total_bytes = state.total_bytes.saturating_sub(front.bytes);
            state.segments.pop_front();
            freed = true;
        }
        if freed {
            self.space.notify_waiters();
        }
    }
}

fn insert_range(ranges: &mut BTreeMap<u64, u64>, mut start: u64, mut end: u64) {
    if let Some((&before, &before_end)) = ranges.range(..=start).next_back() {
        if before_end >= start {
            start = before;
            end = end.max(before_end);
            ranges.remove(&before);
        }
    }
    while let Some((&after, &after_end)) = ranges.range(start..).next() {
        if after > end {
            break;
        }
        end = end.max(after_end);
        ranges.remove(&after);
    }
    ranges.insert(start, end);
}

struct Scan {
    /// (index, queued_at) of every intact record.
    records: Vec<(u64, i64)>,
    /// Where the last intact frame ends.
    intact_end: usize,
    /// The last intact record.
    last: Option<super::frame::QueuedRecord>,
}

fn scan(bytes: &[u8]) -> Scan {
    let mut records = Vec::new();
    let mut at = 0;
    let mut intact_end = 0;
    let mut last = None;
    let mut last_at = 0;
    while at < bytes.len() {
        match frame::parse(&bytes[at..]) {
            Parsed::Frame { header, len } => {
                records.push((header.index, header.queued_at_ms));
                last = Some(header);
                last_at = at;
                at += len;
                intact_end = at;
            }
            Parsed::Incomplete | Parsed::Damaged(_) => match frame::resync(&bytes[at..]) {
                Some(skip) => at += skip,
                None => break,
            },
        }
    }
    Scan {
        records,
        intact_end,
        // Copied: sharing would keep the whole segment in memory while the record lives.
        last: last.map(|header| header.record_copied(&bytes[last_at..])),
    }
}

fn truncate(path: &Path, length: u64) -> Result<(), QueueError> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|file| {
            file.set_len(length)?;
            file.sync_all()
        })
        .map_err(|error| QueueError::new("cannot cut a torn queue segment", path, error))
}

fn create_segment(path: &Path, fsync: Fsync) -> Result<(), QueueError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|error| QueueError::new("cannot create a queue segment", path, error))?;
    if fsync == Fsync::Batch {
        // The new file's directory entry must be durable before records in it are acknowledged.
        if let Some(dir) = path.parent() {
            File::open(dir)
                .and_then(|dir| dir.sync_all())
                .map_err(|error| QueueError::new("cannot sync the queue directory", dir, error))?;
        }
    }
    Ok(())
}

/// The one appender of a queue.
#[derive(Debug)]
pub struct Writer {
    queue: Arc<DiskQueue>,
    file: File,
    /// Frames of [`Writer::append`], kept for their buffer.
    scratch: FrameGroup,
}

/// One record to append.
#[derive(Debug, Clone, Copy)]
pub struct Append<'a> {
    /// Event or alert.
    pub kind: RecordKind,
    /// Its id.
    pub id: &'a str,
    /// The encoded record.
    pub body: &'a [u8],
}

impl Writer {
    /// Append records and (with `fsync = "batch"`) force them to disk. On an error nothing of
    /// this call is in the queue: the caller keeps the records and tries again later.
    pub fn append(&mut self, records: &[Append<'_>]) -> Result<(), QueueError> {
        let mut group = std::mem::take(&mut self.scratch);
        self.begin_group(&mut group);
        for record in records {
            group.push(record.kind, record.id, record.body);
        }
        let appended = self.append_group(&group);
        self.scratch = group;
        appended
    }

    /// Empty `group` (keeping its buffer) for frames that follow the queue's last record.
    pub fn begin_group(&self, group: &mut FrameGroup) {
        group.bytes.clear();
        group.count = 0;
        group.first_index = self.queue.lock().next_index;
        group.queued_at_ms = chrono::Utc::now().timestamp_millis();
    }

    /// Append a group begun by [`Writer::begin_group`] as one write and (with
    /// `fsync = "batch"`) force it to disk. On an error nothing of it is in the queue: the caller
    /// keeps the group and tries again later.
    pub fn append_group(&mut self, group: &FrameGroup) -> Result<(), QueueError> {
        if group.is_empty() {
            return Ok(());
        }
        let queue = Arc::clone(&self.queue);
        let (next_index, active_bytes, active_path) = {
            let state = queue.lock();
            let Some(active) = state.segments.back() else {
                return Err(QueueError::new(
                    "the queue has no segment",
                    &queue.dir,
                    std::io::Error::other("no active segment"),
                ));
            };
            (state.next_index, active.bytes, active.path.clone())
        };
        if group.first_index != next_index {
            // Its frames carry indices that are no longer next: appending them would break
            // the queue's order. Only a caller that appended in between can cause this.
            return Err(QueueError::new(
                "a group of records was framed before another append",
                &active_path,
                std::io::Error::other(format!(
                    "group starts at {}, the queue at {next_index}",
                    group.first_index
                )),
            ));
        }
        if active_bytes >= queue.config.segment_bytes {
            self.rotate(next_index)?;
            return self.append_group(group);
        }
        let written = self.file.write_all(&group.bytes).and_then(|()| {
            if queue.config.fsync == Fsync::Batch {
                self.file.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(error) = written {
            // Take back a partial write so the segment stays a clean run of frames.
            if let Err(cut) = self.file.set_len(active_bytes) {
                tracing::error!(path = %active_path.display(), error = %cut, "Cannot take back a failed queue write; it will be cut off at the next start.");
            }
            return Err(QueueError::new(
                "cannot write to the queue",
                &active_path,
                error,
            ));
        }
        let bytes = group.bytes.len() as u64;
        let mut state = queue.lock();
        state.next_index = next_index + group.count;
        state.total_bytes += bytes;
        state.appends.push_back((next_index, group.queued_at_ms));
        if let Some(active) = state.segments.back_mut() {
            active.bytes += bytes;
            active.last_index = Some(next_index + group.count - 1);
        }
        drop(state);
        queue.data.notify_one();
        Ok(())
    }

    fn rotate(&mut self, first_index: u64) -> Result<(), QueueError> {
        let path = segment_path(&self.queue.dir, first_index);
        create_segment(&path, self.queue.config.fsync)?;
        self.file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|error| QueueError::new("cannot open a queue segment", &path, error))?;
        self.queue.lock().segments.push_back(Segment {
            first_index,
            path,
            bytes: 0,
            last_index: None,
        });
        Ok(())
    }
}
