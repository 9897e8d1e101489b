//! Reading a disk queue back: in order, skipping what is done, reporting damage.

use super::disk::{DiskQueue, QueueError};
use super::frame::{self, Parsed, QueuedRecord};
use bytes::Bytes;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Bytes that could not be read back as records: dead-lettered with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damaged {
    /// The segment file.
    pub segment: PathBuf,
    /// Where in it the damage starts.
    pub offset: u64,
    /// The damaged bytes (up to the next intact frame).
    pub bytes: Vec<u8>,
    /// Why they are not a record.
    pub reason: &'static str,
}

/// What the reader found next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadItem {
    /// An intact record.
    Record(QueuedRecord),
    /// Damaged bytes, skipped.
    Damaged(Damaged),
}

/// The one reader of a queue: hands out records not yet done, in order.
#[derive(Debug)]
pub struct Reader {
    queue: Arc<DiskQueue>,
    /// First index of the segment being read.
    segment: u64,
    /// File offset of `window[head]`.
    offset: u64,
    /// Bytes read ahead; those before `head` are consumed. Records are served as slices of it
    /// (copying each one out cost an allocation and a copy per record). Each read starts a new
    /// window (a pooled buffer) holding the unconsumed rest of the old one, which goes back to
    /// the pool once no record served from it is in flight.
    window: Bytes,
    head: usize,
    pool: BufferPool,
    file: Option<File>,
    /// The index the next record should have; a higher one means records were lost to damage.
    expected: u64,
}

const READ_CHUNK: usize = 256 * 1024;

impl Reader {
    /// A reader from the start of segment `segment`, skipping records below `committed`.
    pub(super) fn new(queue: Arc<DiskQueue>, segment: u64, committed: u64) -> Self {
        Reader {
            queue,
            segment,
            offset: 0,
            window: Bytes::new(),
            head: 0,
            pool: BufferPool::default(),
            file: None,
            expected: committed,
        }
    }

    /// The next record not yet done, damage found on the way, or `None` when caught up.
    pub fn read_next(&mut self) -> Result<Option<ReadItem>, QueueError> {
        loop {
            let Some(segment) = self.queue.segment_at(self.segment) else {
                return Ok(None);
            };
            if segment.first_index != self.segment {
                // Ours was deleted (all done) or we start before the first one.
                self.move_to(segment.first_index);
            }
            let (path, written, next_segment, committed) = (
                segment.path,
                segment.written,
                segment.next,
                segment.committed,
            );
            let end = self.offset + self.pending().len() as u64;
            if self.pending().is_empty() && self.offset >= written {
                match next_segment {
                    Some(next) => {
                        // Records the damage at the end of this segment took are done.
                        self.skip_to(next);
                        self.move_to(next);
                        continue;
                    }
                    None => return Ok(None),
                }
            }
            if !self.pending().is_empty() {
                match frame::parse(self.pending()) {
                    Parsed::Frame { header, len } => {
                        let record = header.record_in(&self.window, self.head);
                        self.consume(len);
                        if record.index < committed.max(self.expected) {
                            continue;
                        }
                        self.skip_to(record.index);
                        self.expected = record.index + 1;
                        return Ok(Some(ReadItem::Record(record)));
                    }
                    Parsed::Incomplete if end < written => {
                        self.fill(&path, written)?;
                        continue;
                    }
                    Parsed::Incomplete => {
                        // Everything up to `written` is whole frames; a short one is damage.
                        let reason = "frame cut short";
                        return Ok(Some(self.skip_damage(&path, written, reason)?));
                    }
                    Parsed::Damaged(reason) => {
                        return Ok(Some(self.skip_damage(&path, written, reason)?));
                    }
                }
            }
            if self.fill(&path, written)? == 0 {
                // The file is shorter than what was written to it: someone cut it.
                tracing::warn!(path = %path.display(), "A queue segment is shorter than expected; its missing records are lost.");
                self.clear_window();
                self.offset = written;
            }
        }
    }

    /// Indices between the expected one and `index` were lost to damage: count them done.
    fn skip_to(&mut self, index: u64) {
        if index > self.expected {
            self.queue.done(self.expected, index);
            self.expected = index;
        }
    }

    fn move_to(&mut self, segment: u64) {
        self.segment = segment;
        self.offset = 0;
        self.clear_window();
        self.file = None;
    }

    /// The bytes read and not yet consumed.
    fn pending(&self) -> &[u8] {
        &self.window[self.head..]
    }

    fn clear_window(&mut self) {
        self.window = Bytes::new();
        self.head = 0;
    }

    fn consume(&mut self, len: usize) {
        self.head = (self.head + len).min(self.window.len());
        self.offset += len as u64;
        if self.head == self.window.len() {
            self.clear_window();
        }
    }

    /// Read more of the segment, up to what is written.
    fn fill(&mut self, path: &Path, written: u64) -> Result<usize, QueueError> {
        let pending = self.window.slice(self.head.min(self.window.len())..);
        let end = self.offset + pending.len() as u64;
        if end >= written {
            return Ok(0);
        }
        if self.file.is_none() {
            let file = File::open(path)
                .map_err(|error| QueueError::new("cannot open a queue segment", path, error))?;
            self.file = Some(file);
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(0);
        };
        // Buffers of one size, so the pool can hand them out again; a frame longer than half of
        // one is read in doubling steps into a buffer of its own.
        let capacity = READ_CHUNK.max(2 * pending.len());
        let want = ((written - end) as usize).min(capacity - pending.len());
        let pooled = if capacity == READ_CHUNK {
            self.pool.take()
        } else {
            None
        };
        let mut next = pooled.unwrap_or_else(|| Vec::with_capacity(capacity));
        next.extend_from_slice(&pending);
        // `read_to_end` fills the spare capacity without zeroing it first.
        let read = file
            .seek(SeekFrom::Start(end))
            .and_then(|_| file.by_ref().take(want as u64).read_to_end(&mut next))
            .map_err(|error| QueueError::new("cannot read a queue segment", path, error))?;
        self.window = self.pool.share(next);
        self.head = 0;
        Ok(read)
    }

    /// Skip from the current position to the next intact frame (or the written end).
    fn skip_damage(
        &mut self,
        path: &Path,
        written: u64,
        reason: &'static str,
    ) -> Result<ReadItem, QueueError> {
        let start = self.offset;
        loop {
            if let Some(skip) = frame::resync(self.pending()) {
                let bytes = self.pending()[..skip].to_vec();
                self.consume(skip);
                return Ok(self.damaged(path, start, bytes, reason));
            }
            let end = self.offset + self.pending().len() as u64;
            if end >= written || self.fill(path, written)? == 0 {
                let bytes = self.pending().to_vec();
                self.clear_window();
                self.offset = written;
                return Ok(self.damaged(path, start, bytes, reason));
            }
        }
    }

    fn damaged(&self, path: &Path, offset: u64, bytes: Vec<u8>, reason: &'static str) -> ReadItem {
        ReadItem::Damaged(Damaged {
            segment: path.to_path_buf(),
            offset,
            bytes,
            reason,
        })
    }
}

/// Read buffers whose records have all been dropped, kept for the next reads. A fresh 256 KiB
/// buffer per read cost a page fault per 4 KiB page and the allocator's purging (about 20,000
/// more faults per million records, measured with `perf stat`).
#[derive(Clone, Default)]
struct BufferPool(Arc<Mutex<Vec<Vec<u8>>>>);

/// Buffers kept at most (2 MiB); records in flight rarely span more.
const POOLED: usize = 8;

impl std::fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BufferPool({} idle)", self.lock().len())
    }
}

impl BufferPool {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        match self.0.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// An idle buffer of `READ_CHUNK` capacity, empty.
    fn take(&self) -> Option<Vec<u8>> {
        self.lock().pop()
    }

    /// `buffer` as shared bytes; it comes back here when the last slice of it is dropped.
    fn share(&self, buffer: Vec<u8>) -> Bytes {
        Bytes::from_owner(Pooled {
            buffer,
            pool: self.clone(),
        })
    }
}

/// A buffer on loan to the records read into it.
struct Pooled {
    buffer: Vec<u8>,
    pool: BufferPool,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buffer
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        // Longer buffers (grown for one long frame) go back to the allocator.
        if self.buffer.capacity() != READ_CHUNK {
            return;
        }
        let mut idle = self.pool.lock();
        if idle.len() < POOLED {
            let mut buffer = std::mem::take(&mut self.buffer);
            buffer.clear();
            idle.push(buffer);
        }
    }
}
