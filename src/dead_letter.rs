//! The dead-letter file: input that could not be used, with where it came from and why.
//!
//! One JSON object per line: `time` (when it was dead-lettered), `source`, `stream`, `offset`,
//! `reason` (a stable label), `detail` (what was wrong, naming the field), and `raw`, the first
//! `max_raw_bytes` of the input (lossy UTF-8), so an operator can fix and replay it. The file is
//! created readable by the agent's user only: raw input may hold personal data.

use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// One dead-letter entry as written.
#[derive(Debug, Serialize)]
pub struct DeadLetter<'a> {
    /// The source's name.
    pub source: &'a str,
    /// The stream inside the source (file path, `stdin`).
    pub stream: &'a str,
    /// Byte offset of the line in its stream.
    pub offset: u64,
    /// Stable label, e.g. `invalid_json`.
    pub reason: &'a str,
    /// What was wrong.
    pub detail: &'a str,
    /// The offending input, possibly truncated.
    pub raw: &'a [u8],
}

#[derive(Serialize)]
struct Entry<'a> {
    time: String,
    source: &'a str,
    stream: &'a str,
    offset: u64,
    reason: &'a str,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw: Option<String>,
    raw_truncated: bool,
}

/// Appends dead letters to a file; call [`DeadLetterWriter::flush`] before acknowledging.
#[derive(Debug)]
pub struct DeadLetterWriter {
    path: PathBuf,
    max_raw_bytes: usize,
    file: Option<BufWriter<File>>,
}

impl DeadLetterWriter {
    /// A writer for `path`; the file is opened on the first entry.
    pub fn new(path: PathBuf, max_raw_bytes: usize) -> Self {
        DeadLetterWriter {
            path,
            max_raw_bytes,
            file: None,
        }
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one entry (buffered).
    pub fn write(&mut self, letter: &DeadLetter<'_>) -> std::io::Result<()> {
        let keep = letter.raw.len().min(self.max_raw_bytes);
        let entry = Entry {
            time: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            source: letter.source,
            stream: letter.stream,
            offset: letter.offset,
            reason: letter.reason,
            detail: letter.detail,
            raw: (self.max_raw_bytes > 0)
                .then(|| String::from_utf8_lossy(&letter.raw[..keep]).into_owned()),
            raw_truncated: keep < letter.raw.len(),
        };
        self.append(&entry)
    }

    /// Append any serialisable entry as one JSON line (buffered).
    pub fn append<T: Serialize>(&mut self, entry: &T) -> std::io::Result<()> {
        let file = self.open()?;
        serde_json::to_writer(&mut *file, entry).map_err(std::io::Error::other)?;
        file.write_all(b"\n")
    }

    /// Push buffered entries to the operating system.
    pub fn flush(&mut self) -> std::io::Result<()> {
        match self.file.as_mut() {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }

    fn open(&mut self) -> std::io::Result<&mut BufWriter<File>> {
        if self.file.is_none() {
            if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            let mut options = OpenOptions::new();
            options.create(true).append(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            self.file = Some(BufWriter::new(options.open(&self.path)?));
        }
        match self.file.as_mut() {
            Some(file) => Ok(file),
            None => Err(std::io::Error::other("dead-letter file not open")),
        }
    }
}
