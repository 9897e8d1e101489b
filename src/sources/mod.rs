//! Sources: where audit records come from.
//!
//! A source runs until shutdown, reads raw lines, and sends them in [`SourceBatch`]es with an
//! [`AckToken`]. It commits a position (a file checkpoint, later a cursor or offset) only once the
//! batch's [`AckReceiver`](crate::pipeline::ack::AckReceiver) reports it delivered, so a crash
//! re-reads at most the batches still in flight. Sources never decode: bytes go out as read, with
//! their position, and the pipeline decodes them.
//!
//! Adding a source: a module here, a [`SourceConfig`] variant, and an arm in [`SourceConfig::build`].

pub mod anthropic;
pub mod file;
pub mod framing;
pub mod http;
pub mod kafka;
pub mod otlp;
pub mod receiver;
mod state_file;
pub mod stdin;

use crate::decode::Format;
use crate::pipeline::ack::AckToken;
use crate::telemetry::Metrics;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A batch of raw lines from one stream of one source, with the token that acknowledges it.
#[derive(Debug)]
pub struct SourceBatch {
    /// The source's name from the configuration.
    pub source: Arc<str>,
    /// The stream inside the source: a file path, `stdin`.
    pub stream: Arc<str>,
    /// How the lines are to be decoded.
    pub format: Format,
    /// The lines, in stream order.
    pub lines: Vec<Line>,
    /// Acknowledges the batch once everything it produced is safe.
    pub ack: AckToken,
    /// When the lines were read (for ingest-to-alert and delivery latency).
    pub read_at: std::time::Instant,
}

/// One raw line and where it started in its stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Byte offset of the line's first byte in its stream.
    pub offset: u64,
    /// The line's content.
    pub data: LineData,
}

/// What was read for one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineData {
    /// A whole line, without its terminating newline (and `\r`).
    Complete(Vec<u8>),
    /// A line longer than the configured maximum: skipped, only its start kept for the dead letter.
    TooLong {
        /// Length of the whole line in bytes.
        length: u64,
        /// The first bytes of the line.
        prefix: Vec<u8>,
    },
}

/// What every source gets to run.
#[derive(Debug, Clone)]
pub struct SourceContext {
    /// The source's name from the configuration.
    pub name: Arc<str>,
    /// Where batches go; `send` waits when the pipeline is busy (backpressure).
    pub out: mpsc::Sender<SourceBatch>,
    /// Cancelled when the agent stops: stop reading, wait for outstanding acks, commit, return.
    pub shutdown: CancellationToken,
    /// The agent's state directory (checkpoints live under it).
    pub state_dir: PathBuf,
    /// Counters.
    pub metrics: Arc<Metrics>,
}

/// A running source.
pub type SourceTask = Pin<Box<dyn Future<Output = Result<(), SourceError>> + Send>>;

/// Why a source stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A file or directory could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The checkpoint file exists but cannot be used.
    #[error("checkpoint file {path}: {reason}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Anything else that stops the source.
    #[error("{0}")]
    Other(String),
}

/// A source's configuration, selected by `type`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SourceConfig {
    /// Tail JSON-lines files matched by globs, across rotation, with checkpoints.
    File(file::FileSourceConfig),
    /// Read JSON lines from standard input until end of file.
    Stdin(stdin::StdinSourceConfig),
    /// Receive records pushed over HTTP (`POST /v1/events`).
    Http(http::HttpSourceConfig),
    /// Receive OpenTelemetry logs (Claude Code) over OTLP/HTTP and OTLP/gRPC.
    Otlp(otlp::OtlpSourceConfig),
    /// Poll Anthropic's Compliance API activity feed and usage/cost reports.
    Anthropic(Box<anthropic::AnthropicSourceConfig>),
    /// Be a member of a Kafka consumer group.
    Kafka(Box<kafka::KafkaSourceConfig>),
}

impl SourceConfig {
    /// The decoder this source's lines need.
    pub fn format(&self) -> Format {
        match self {
            SourceConfig::File(config) => config.format,
            SourceConfig::Stdin(config) => config.format,
            SourceConfig::Http(config) => config.format,
            SourceConfig::Otlp(_) => Format::ClaudeCodeOtel,
            SourceConfig::Anthropic(_) => Format::Native,
            SourceConfig::Kafka(config) => config.format,
        }
    }

    /// Check what serde cannot: returns the key (relative to the source) and the reason.
    pub fn validate(&self) -> Result<(), (String, String)> {
        match self {
            SourceConfig::File(config) => config.validate(),
            SourceConfig::Stdin(config) => {
                crate::decode::validate_settings(&config.mapping, &config.decode)
            }
            SourceConfig::Http(config) => config.validate(),
            SourceConfig::Otlp(config) => config.validate(),
            SourceConfig::Anthropic(config) => config.validate(),
            SourceConfig::Kafka(config) => config.validate(),
        }
    }

    /// Start the source.
    pub fn build(&self, context: SourceContext) -> SourceTask {
        match self {
            SourceConfig::File(config) => {
                let mut config = config.clone();
                config.format = config.format.configure(&config.mapping, &config.decode);
                Box::pin(file::run(config, context))
            }
            SourceConfig::Stdin(config) => Box::pin(stdin::run(config.clone(), context)),
            SourceConfig::Http(config) => Box::pin(http::run(config.clone(), context)),
            SourceConfig::Otlp(config) => Box::pin(otlp::run(config.clone(), context)),
            SourceConfig::Anthropic(config) => {
                Box::pin(anthropic::run((**config).clone(), context))
            }
            SourceConfig::Kafka(config) => Box::pin(kafka::run((**config).clone(), context)),
        }
    }
}
