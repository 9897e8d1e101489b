//! The `stdin` source: JSON lines piped into the agent, read until end of input.
//!
//! There is no position to commit: what was piped in cannot be re-read. The source ends at end of
//! input, and the agent stops once everything read has been delivered.

use super::file::default_max_line_bytes;
use super::framing::LineSplitter;
use super::{SourceBatch, SourceContext, SourceError};
use crate::decode::{DecodeOptions, Format, Mapping};
use crate::pipeline::ack::batch_ack;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Read JSON lines from standard input.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StdinSourceConfig {
    /// The format of the lines.
    #[serde(default)]
    pub format: Format,
    /// Field renames into the canonical record: `[sources.<name>.mapping]`.
    #[serde(default, skip_serializing_if = "Mapping::is_empty")]
    pub mapping: Mapping,
    /// Format-specific decoding settings: `[sources.<name>.decode]`.
    #[serde(default, skip_serializing_if = "DecodeOptions::is_default")]
    pub decode: DecodeOptions,
    /// Lines longer than this many bytes are dead-lettered and skipped.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
}

/// Run the stdin source until end of input or shutdown.
pub async fn run(config: StdinSourceConfig, context: SourceContext) -> Result<(), SourceError> {
    read_stream(
        tokio::io::stdin(),
        "stdin",
        config.format.configure(&config.mapping, &config.decode),
        config.max_line_bytes,
        context,
    )
    .await
}

/// Read any byte stream as JSON lines until it ends or the agent stops (also used by `demo`).
pub async fn read_stream<R: AsyncRead + Unpin>(
    mut reader: R,
    stream_name: &str,
    format: Format,
    max_line_bytes: usize,
    context: SourceContext,
) -> Result<(), SourceError> {
    let stream: Arc<str> = Arc::from(stream_name);
    let mut splitter = LineSplitter::new(0, max_line_bytes);
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = tokio::select! {
            _ = context.shutdown.cancelled() => return Ok(()),
            read = reader.read(&mut buffer) => read.map_err(|source| SourceError::Io {
                context: format!("reading {stream_name}"),
                source,
            })?,
        };
        let mut lines = Vec::new();
        if read == 0 {
            splitter.finish(&mut lines);
        } else {
            splitter.push(&buffer[..read], &mut lines);
        }
        if !lines.is_empty() {
            context
                .metrics
                .lines_read(&context.name, lines.len() as u64);
            let (ack, _receiver) = batch_ack();
            let batch = SourceBatch {
                source: Arc::clone(&context.name),
                stream: Arc::clone(&stream),
                format,
                lines,
                ack,
                read_at: std::time::Instant::now(),
            };
            tokio::select! {
                _ = context.shutdown.cancelled() => return Ok(()),
                sent = context.out.send(batch) => if sent.is_err() { return Ok(()) },
            }
        }
        if read == 0 {
            return Ok(());
        }
    }
}
