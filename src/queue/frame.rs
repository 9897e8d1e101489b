//! The on-disk frame of one queued record, and reading frames back with corruption detection.
//!
//! ```text
//! magic (4) | payload length u32 (4) | index u64 (8) | queued_at ms i64 (8) | crc32 (4) | payload
//! ```
//!
//! All integers little-endian. The CRC-32 covers length, index, time and payload, so a flipped
//! bit anywhere is caught. The magic lets a reader find the next intact frame after a damaged
//! one: it scans forward for the magic and accepts a candidate only if its CRC matches, so the
//! damage costs exactly the damaged records, which are dead-lettered with the reason.
//!
//! The payload is `kind u8 | id length u16 | id | encoded record`: the record as the sink will
//! send it, encoded once on intake, so a resend is byte-for-byte the first send.

use bytes::Bytes;
use std::ops::Range;

/// Marks the start of a frame.
pub const MAGIC: [u8; 4] = [0xA1, 0x77, 0x51, 0x0E];
/// Bytes before the payload.
pub const HEADER_LEN: usize = 28;
/// Longest payload a frame may declare; anything longer is damage, not data.
pub const MAX_PAYLOAD: usize = 64 * 1024 * 1024;

/// What a queued record is, for its dead letter and routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// A normalised audit event.
    Event = 1,
    /// An alert.
    Alert = 2,
}

/// One record read back from the queue. `id` and `body` share the memory the reader read them
/// into: serving a record copies nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRecord {
    /// Position in the queue (strictly increasing in append order).
    pub index: u64,
    /// When it was queued, in Unix milliseconds.
    pub queued_at_ms: i64,
    /// Event or alert.
    pub kind: RecordKind,
    /// `event_id` or `alert_id`, UTF-8 as it was written.
    pub id: Bytes,
    /// The encoded record.
    pub body: Bytes,
}

impl QueuedRecord {
    /// The id as text.
    pub fn id_text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.id)
    }
}

/// An intact frame's header and where its id and body lie, relative to the frame's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameHeader {
    /// Position in the queue.
    pub index: u64,
    /// When it was queued, in Unix milliseconds.
    pub queued_at_ms: i64,
    /// Event or alert.
    pub kind: RecordKind,
    id: Range<usize>,
    body: Range<usize>,
}

impl FrameHeader {
    /// The record of the frame that starts at `at` in `bytes`, sharing their memory.
    pub fn record_in(&self, bytes: &Bytes, at: usize) -> QueuedRecord {
        let shifted = |range: &Range<usize>| at + range.start..at + range.end;
        QueuedRecord {
            index: self.index,
            queued_at_ms: self.queued_at_ms,
            kind: self.kind,
            id: bytes.slice(shifted(&self.id)),
            body: bytes.slice(shifted(&self.body)),
        }
    }

    /// The record of the frame at the start of `frame`, copied out of it.
    pub fn record_copied(&self, frame: &[u8]) -> QueuedRecord {
        QueuedRecord {
            index: self.index,
            queued_at_ms: self.queued_at_ms,
            kind: self.kind,
            id: Bytes::copy_from_slice(&frame[self.id.clone()]),
            body: Bytes::copy_from_slice(&frame[self.body.clone()]),
        }
    }
}

/// Append one frame to `out`.
pub fn encode(
    out: &mut Vec<u8>,
    index: u64,
    queued_at_ms: i64,
    kind: RecordKind,
    id: &str,
    body: &[u8],
) {
    out.reserve(HEADER_LEN + 3 + id.len() + body.len());
    let frame = OpenFrame::begin(out, index, queued_at_ms, kind, id);
    out.extend_from_slice(body);
    frame.finish(out);
}

/// A frame whose header is written and whose body is being appended after it, so that a record
/// can be encoded straight into the frame buffer; [`OpenFrame::finish`] seals it.
#[derive(Debug)]
#[must_use = "a frame is only valid once finished"]
pub struct OpenFrame {
    /// Where the length field starts (just after the magic).
    start: usize,
}

impl OpenFrame {
    /// Write a frame's header, kind and id at the end of `out`; its body follows.
    pub fn begin(
        out: &mut Vec<u8>,
        index: u64,
        queued_at_ms: i64,
        kind: RecordKind,
        id: &str,
    ) -> OpenFrame {
        let id = &id.as_bytes()[..id.len().min(u16::MAX as usize)];
        out.extend_from_slice(&MAGIC);
        let start = out.len();
        out.extend_from_slice(&[0; 4]); // the length, once the body is in
        out.extend_from_slice(&index.to_le_bytes());
        out.extend_from_slice(&queued_at_ms.to_le_bytes());
        out.extend_from_slice(&[0; 4]); // the CRC, likewise
        out.push(kind as u8);
        out.extend_from_slice(&(id.len() as u16).to_le_bytes());
        out.extend_from_slice(id);
        OpenFrame { start }
    }

    /// Where the frame began (its magic): truncating `out` here takes the frame back.
    pub fn frame_start(&self) -> usize {
        self.start - MAGIC.len()
    }

    /// Fill in the length and the CRC over everything appended to `out` since [`OpenFrame::begin`].
    pub fn finish(self, out: &mut [u8]) {
        let crc_at = self.start + 20;
        let payload_len = out.len() - (crc_at + 4);
        out[self.start..self.start + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&out[self.start..crc_at]);
        hasher.update(&out[crc_at + 4..]);
        out[crc_at..crc_at + 4].copy_from_slice(&hasher.finalize().to_le_bytes());
    }
}

/// Frames for one append, built in the queue's order by the queue's one writer
/// ([`crate::queue::Writer::begin_group`]) and appended whole ([`crate::queue::Writer::append_group`]).
#[derive(Debug, Default)]
pub struct FrameGroup {
    pub(super) bytes: Vec<u8>,
    pub(super) first_index: u64,
    pub(super) count: u64,
    pub(super) queued_at_ms: i64,
}

impl FrameGroup {
    /// Records framed so far.
    pub fn records(&self) -> u64 {
        self.count
    }

    /// Bytes framed so far.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether nothing is framed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Frame a record whose body is already encoded.
    pub fn push(&mut self, kind: RecordKind, id: &str, body: &[u8]) {
        let index = self.first_index + self.count;
        encode(&mut self.bytes, index, self.queued_at_ms, kind, id, body);
        self.count += 1;
    }

    /// Frame a record whose body `write_body` appends to the buffer it is given (it must only
    /// append); when it returns false, the record is left out and the buffer is as before.
    pub fn push_with(
        &mut self,
        kind: RecordKind,
        id: &str,
        write_body: impl FnOnce(&mut Vec<u8>) -> bool,
    ) -> bool {
        let index = self.first_index + self.count;
        let frame = OpenFrame::begin(&mut self.bytes, index, self.queued_at_ms, kind, id);
        let body_start = self.bytes.len();
        if !write_body(&mut self.bytes) || self.bytes.len() < body_start {
            self.bytes.truncate(frame.frame_start());
            return false;
        }
        frame.finish(&mut self.bytes);
        self.count += 1;
        true
    }
}

/// What is at a position of a segment's bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// An intact frame of `len` bytes.
    Frame {
        /// What the frame holds.
        header: FrameHeader,
        /// Bytes the frame takes.
        len: usize,
    },
    /// Not enough bytes yet for a whole frame (a write in progress, or a torn tail).
    Incomplete,
    /// Not an intact frame: why.
    Damaged(&'static str),
}

/// Parse the frame at the start of `bytes`.
pub fn parse(bytes: &[u8]) -> Parsed {
    if bytes.len() < HEADER_LEN {
        return if MAGIC.starts_with(&bytes[..bytes.len().min(4)]) {
            Parsed::Incomplete
        } else {
            Parsed::Damaged("bad frame marker")
        };
    }
    if bytes[..4] != MAGIC {
        return Parsed::Damaged("bad frame marker");
    }
    let payload_len = u32_at(bytes, 4) as usize;
    if !(3..=MAX_PAYLOAD).contains(&payload_len) {
        return Parsed::Damaged("impossible frame length");
    }
    let total = HEADER_LEN + payload_len;
    if bytes.len() < total {
        return Parsed::Incomplete;
    }
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&bytes[4..24]);
    hasher.update(&bytes[HEADER_LEN..total]);
    if hasher.finalize() != u32_at(bytes, 24) {
        return Parsed::Damaged("checksum mismatch");
    }
    let payload = &bytes[HEADER_LEN..total];
    let kind = match payload[0] {
        1 => RecordKind::Event,
        2 => RecordKind::Alert,
        _ => return Parsed::Damaged("unknown record kind"),
    };
    let id_len = u16::from_le_bytes([payload[1], payload[2]]) as usize;
    if 3 + id_len > payload.len() {
        return Parsed::Damaged("record id longer than its frame");
    }
    let id_start = HEADER_LEN + 3;
    Parsed::Frame {
        header: FrameHeader {
            index: u64_at(bytes, 8),
            queued_at_ms: u64_at(bytes, 16) as i64,
            kind,
            id: id_start..id_start + id_len,
            body: id_start + id_len..total,
        },
        len: total,
    }
}

/// Where the next intact frame starts after damage at the start of `bytes` (never 0).
pub fn resync(bytes: &[u8]) -> Option<usize> {
    let mut from = 1;
    while let Some(found) = find_magic(&bytes[from.min(bytes.len())..]) {
        let at = from + found;
        if matches!(parse(&bytes[at..]), Parsed::Frame { .. }) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn find_magic(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(MAGIC.len())
        .position(|window| window == MAGIC)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(index: u64, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(
            &mut out,
            index,
            1_700_000_000_000,
            RecordKind::Event,
            "id-1",
            body,
        );
        out
    }

    #[test]
    fn a_frame_reads_back_as_written() {
        let bytes = frame(42, b"{\"a\":1}");
        let Parsed::Frame { header, len } = parse(&bytes) else {
            panic!("not a frame")
        };
        assert_eq!(len, bytes.len());
        // Shared out of a larger buffer, at an offset, and copied: the same record.
        let mut shared = b"xyz".to_vec();
        shared.extend_from_slice(&bytes);
        let shared = header.record_in(&Bytes::from(shared), 3);
        let record = header.record_copied(&bytes);
        assert_eq!(shared, record);
        assert_eq!(record.index, 42);
        assert_eq!(record.id_text(), "id-1");
        assert_eq!(record.kind, RecordKind::Event);
        assert_eq!(&record.body[..], b"{\"a\":1}");
        assert_eq!(record.queued_at_ms, 1_700_000_000_000);
    }

    #[test]
    fn every_flipped_byte_is_caught_and_a_prefix_is_incomplete() {
        let bytes = frame(7, b"payload");
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x40;
            assert!(
                !matches!(parse(&damaged), Parsed::Frame { .. }),
                "flip at {at} went unnoticed"
            );
        }
        for cut in 0..bytes.len() {
            assert_eq!(parse(&bytes[..cut]), Parsed::Incomplete, "cut at {cut}");
        }
    }

    #[test]
    fn resync_finds_the_next_intact_frame_after_damage() {
        let mut bytes = frame(1, b"first");
        let second_at = bytes.len();
        bytes.extend(frame(2, b"second"));
        bytes[10] ^= 0xFF;
        assert!(matches!(parse(&bytes), Parsed::Damaged(_)));
        assert_eq!(resync(&bytes), Some(second_at));
        // A payload that contains the magic does not fool it: the CRC decides.
        let mut tricky = frame(3, &[MAGIC.as_slice(), b"x"].concat());
        tricky[5] ^= 1;
        assert_eq!(resync(&tricky), None);
    }
}
