//! The decode stage: the first half of the processor, on a thread of its own.
//!
//! ```text
//! SourceBatch ──► decode stage (decode, dead-letter, scan) ──DecodedBatch──► detect stage
//! ```
//!
//! Decoding and the content scan are pure per record, so they need no detection state and can
//! run beside detection on the second core. One thread takes the batches in channel order and
//! hands them on in that order, so the records of a source reach detection as they were read.
//! Batches, not records, cross the channel: one send per up to `max_batch_lines` records.
//!
//! The stage runs on a plain thread rather than a runtime worker: a batch is milliseconds of
//! CPU work with no await point, and a dedicated thread keeps it from holding up the tasks that
//! deliver to the sinks.

use crate::dead_letter::{DeadLetter, DeadLetterWriter};
use crate::decode::{self, DecodeError, Reason};
use crate::enrich::apply_scan;
use crate::enrich::scan::Scanner;
use crate::pipeline::ack::AckToken;
use crate::record::AuditRecord;
use crate::sources::{LineData, SourceBatch};
use crate::telemetry::Metrics;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc;

/// Decoded batches the detect stage may hold waiting: enough for decoding to run ahead of
/// detection by one batch while it works on another, few enough to keep memory bounded (a
/// decoded batch of 1,000 records is about 2 MB).
pub(super) const DECODED_CAPACITY: usize = 2;

/// The records of one source batch, decoded and scanned, still holding the batch's token.
#[derive(Debug)]
pub(super) struct DecodedBatch {
    /// The source's name.
    pub source: Arc<str>,
    /// The stream inside the source.
    pub stream: Arc<str>,
    /// The records, in stream order; shared from here on, so fan-out to the sinks copies none.
    pub records: Vec<Arc<AuditRecord>>,
    /// Acknowledges the batch once the sinks have their shares.
    pub ack: AckToken,
    /// When the lines were read.
    pub read_at: std::time::Instant,
    /// The dead-letter file did not take this batch's unusable lines: it must not be committed.
    pub dead_letter_failed: bool,
}

/// What the decode stage needs: the scanner, the dead-letter file and the counters.
pub(super) struct DecodeStage {
    /// The content scanner (compiled in the background at start) and the system-prompt
    /// canaries, when scanning is on.
    pub scanner: Option<(Arc<OnceLock<Scanner>>, Vec<String>)>,
    /// Where unusable lines go.
    pub dead_letters: DeadLetterWriter,
    /// Counters.
    pub metrics: Arc<Metrics>,
}

/// Set when the decode thread ended by panicking, so the detect stage does not take the closed
/// channel for a clean drain.
#[derive(Debug, Default)]
pub(super) struct Crashed(AtomicBool);

impl Crashed {
    /// Whether the decode thread panicked.
    pub fn happened(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Marks [`Crashed`] when dropped during a panic.
struct CrashGuard(Arc<Crashed>);

impl Drop for CrashGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0 .0.store(true, Ordering::Release);
        }
    }
}

impl DecodeStage {
    /// Start the stage on its own thread: it ends when `batches` closes (every source is done)
    /// or the detect stage is gone, closing its output in turn.
    pub fn spawn(
        self,
        batches: mpsc::Receiver<SourceBatch>,
    ) -> std::io::Result<(mpsc::Receiver<DecodedBatch>, Arc<Crashed>)> {
        let (sender, receiver) = mpsc::channel(DECODED_CAPACITY);
        let crashed = Arc::new(Crashed::default());
        let guard = CrashGuard(Arc::clone(&crashed));
        std::thread::Builder::new()
            .name("aiwarden-decode".into())
            .spawn(move || {
                let _guard = guard;
                self.run(batches, sender);
            })?;
        Ok((receiver, crashed))
    }

    fn run(mut self, mut batches: mpsc::Receiver<SourceBatch>, out: mpsc::Sender<DecodedBatch>) {
        let mut scratch = Vec::new();
        while let Some(batch) = batches.blocking_recv() {
            let decoded = self.decode_batch(batch, &mut scratch);
            if out.blocking_send(decoded).is_err() {
                // The detect stage is gone; the batch's token fails as it is dropped.
                break;
            }
        }
    }

    /// Decode, dead-letter and scan one batch. `scratch` is reused across batches.
    pub fn decode_batch(
        &mut self,
        batch: SourceBatch,
        scratch: &mut Vec<Result<AuditRecord, DecodeError>>,
    ) -> DecodedBatch {
        let SourceBatch {
            source,
            stream,
            format,
            lines,
            ack,
            read_at,
        } = batch;
        let mut records = Vec::with_capacity(lines.len());
        let mut dead_letter_failed = false;
        let mut flagged = 0u64;
        for line in &lines {
            let mut dead_letter = |error: &DecodeError, raw: &[u8]| {
                self.metrics.dead_lettered(&source, error.reason.as_str());
                let written = self.dead_letters.write(&DeadLetter {
                    source: &source,
                    stream: &stream,
                    offset: line.offset,
                    reason: error.reason.as_str(),
                    detail: &error.detail,
                    raw,
                });
                if let Err(io_error) = written {
                    tracing::error!(path = %self.dead_letters.path().display(), error = %io_error, "Cannot write the dead-letter file.");
                    dead_letter_failed = true;
                }
            };
            match &line.data {
                LineData::TooLong { length, prefix } => {
                    let error = DecodeError::new(
                        Reason::LineTooLong,
                        format!(
                            "line of {length} bytes is longer than the source's max_line_bytes"
                        ),
                    );
                    dead_letter(&error, prefix);
                }
                LineData::Complete(bytes) => {
                    decode::decode(format, bytes, scratch);
                    for result in scratch.drain(..) {
                        match result {
                            Ok(mut record) => {
                                if scan(&self.scanner, &mut record) {
                                    flagged += 1;
                                }
                                records.push(Arc::new(record));
                            }
                            Err(error) => dead_letter(&error, bytes),
                        }
                    }
                }
            }
        }
        // The raw lines are no longer needed: free them here rather than on the detect thread.
        drop(lines);
        self.metrics.records_decoded(&source, records.len() as u64);
        for _ in 0..flagged {
            self.metrics.content_flagged(&source);
        }
        if let Err(error) = self.dead_letters.flush() {
            tracing::error!(path = %self.dead_letters.path().display(), %error, "Cannot flush the dead-letter file.");
            dead_letter_failed = true;
        }
        DecodedBatch {
            source,
            stream,
            records,
            ack,
            read_at,
            dead_letter_failed,
        }
    }
}

/// Scan a record's raw text, if it has any and scanning is on; true when something was found.
fn scan(scanner: &Option<(Arc<OnceLock<Scanner>>, Vec<String>)>, record: &mut AuditRecord) -> bool {
    let has_text = record.prompt_raw.is_some() || record.response_raw.is_some();
    let Some((scanner, markers)) = scanner.as_ref().filter(|_| has_text) else {
        return false;
    };
    // Waits only if the background compile is still running.
    let scanner = scanner.get_or_init(Scanner::builtin);
    apply_scan(scanner, markers, record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Format;
    use crate::pipeline::ack::{batch_ack, BatchStatus};
    use crate::sources::Line;

    fn line(offset: u64, text: &str) -> Line {
        Line {
            offset,
            data: LineData::Complete(text.as_bytes().to_vec()),
        }
    }

    fn record(id: &str) -> String {
        format!(
            r#"{{"event_id":"{id}","timestamp":"2025-06-02T10:00:00Z","event_type":"session_start","user_id":"u","session_id":"s","application_id":"a"}}"#
        )
    }

    fn stage(dead_letter_path: std::path::PathBuf) -> DecodeStage {
        DecodeStage {
            scanner: None,
            dead_letters: DeadLetterWriter::new(dead_letter_path, 64),
            metrics: Arc::new(Metrics::new()),
        }
    }

    fn batch(lines: Vec<Line>) -> (SourceBatch, crate::pipeline::ack::AckReceiver) {
        let (ack, receiver) = batch_ack();
        let batch = SourceBatch {
            source: Arc::from("src"),
            stream: Arc::from("stream"),
            format: Format::Native,
            lines,
            ack,
            read_at: std::time::Instant::now(),
        };
        (batch, receiver)
    }

    #[test]
    fn batches_keep_their_order_and_bad_lines_are_dead_lettered() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("dead_letter.jsonl");
        let (input, batches) = mpsc::channel(8);
        let (first, _first_ack) = batch(vec![
            line(0, &record("a")),
            line(10, "{not json"),
            line(20, &record("b")),
        ]);
        let (second, _second_ack) = batch(vec![line(30, &record("c"))]);
        input.blocking_send(first).unwrap();
        input.blocking_send(second).unwrap();
        drop(input);
        let (mut decoded, crashed) = stage(path.clone()).spawn(batches).unwrap();
        let mut ids = Vec::new();
        while let Some(batch) = decoded.blocking_recv() {
            assert!(!batch.dead_letter_failed);
            ids.push(
                batch
                    .records
                    .iter()
                    .map(|record| record.event_id.clone())
                    .collect::<Vec<_>>(),
            );
            batch.ack.delivered();
        }
        assert_eq!(ids, vec![vec!["a", "b"], vec!["c"]]);
        assert!(!crashed.happened());
        let letters = std::fs::read_to_string(path).unwrap();
        assert_eq!(letters.lines().count(), 1);
        assert!(letters.contains(r#""offset":10"#), "{letters}");
    }

    #[test]
    fn a_dead_letter_file_that_cannot_be_written_fails_the_batch() {
        let directory = tempfile::tempdir().unwrap();
        // A path below a regular file: the dead-letter file can never be created.
        let blocker = directory.path().join("file");
        std::fs::write(&blocker, b"").unwrap();
        let mut stage = stage(blocker.join("dead_letter.jsonl"));
        let (bad, receiver) = batch(vec![line(0, "[1]"), line(4, &record("kept"))]);
        let decoded = stage.decode_batch(bad, &mut Vec::new());
        assert!(decoded.dead_letter_failed);
        assert_eq!(decoded.records.len(), 1, "good records still go on");
        decoded.ack.failed();
        assert_eq!(receiver.blocking_status(), BatchStatus::Failed);
    }
}
