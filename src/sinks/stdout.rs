//! The `stdout` sink: alerts and events on standard output, as JSON lines or readable text.

use super::file::LineWriter;
use super::{
    default_min_severity, RecordKinds, Routing, SinkBatch, SinkContext, SinkError, SinkTask,
};
use crate::record::Severity;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// Write to standard output.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutSinkConfig {
    /// `alerts`, `events` or `both`.
    #[serde(default)]
    pub records: RecordKinds,
    /// Alerts below this severity are not written.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// Write raw prompt/response text when records carry it (off: it never leaves memory).
    #[serde(default)]
    pub forward_content: bool,
    /// `json` (one object per line) or `text` (one readable line per record).
    #[serde(default)]
    pub encoding: StdoutEncoding,
    /// Send the real user next to the pseudonym (`real_user_id`) when `[privacy] pseudonymise`
    /// is on.
    #[serde(default)]
    pub real_identity: bool,
    /// `[privacy]` and `[evidence]`, handed over by the configuration (not a sink key).
    #[serde(skip)]
    pub outbound: Option<super::file::Outbound>,
}

impl Default for StdoutSinkConfig {
    fn default() -> Self {
        StdoutSinkConfig {
            records: RecordKinds::Alerts,
            min_severity: default_min_severity(),
            forward_content: false,
            encoding: StdoutEncoding::Json,
            real_identity: false,
            outbound: None,
        }
    }
}

/// How the stdout sink writes records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StdoutEncoding {
    /// One JSON object per line.
    #[default]
    Json,
    /// One readable line per record.
    Text,
}

impl StdoutSinkConfig {
    /// What the sink takes.
    pub fn routing(&self) -> Routing {
        Routing {
            records: self.records,
            min_severity: self.min_severity,
            forward_content: self.forward_content,
        }
    }

    /// What the sink may receive.
    pub fn privacy(&self) -> crate::privacy::SinkPrivacy {
        crate::privacy::SinkPrivacy {
            forward_content: self.forward_content,
            real_identity: self.real_identity,
        }
    }
}

/// Start the sink.
pub fn build(
    config: StdoutSinkConfig,
    context: SinkContext,
    batches: mpsc::Receiver<SinkBatch>,
) -> Result<SinkTask, SinkError> {
    let text = config.encoding == StdoutEncoding::Text;
    let (transform, evidence) = super::file::Outbound::open(config.outbound.as_ref(), &context)?;
    let writer = LineWriter {
        routing: config.routing(),
        text,
        fsync: false,
        transform,
        privacy: config.privacy(),
        // Readable text is for people, not evidence.
        evidence: evidence.filter(|_| !text),
        stop_on_broken_pipe: true,
    };
    Ok(writer.spawn(
        Some(std::io::stdout()),
        || Ok(std::io::stdout()),
        context,
        batches,
    ))
}
