//! Sinks: where alerts and events go.
//!
//! Every sink receives [`SinkBatch`]es on a bounded channel, keeps what its [`Routing`] selects,
//! writes it, and calls [`AckToken::delivered`] only once the write is safe. It runs until the
//! channel closes (the pipeline closes it after draining at shutdown), so nothing in flight is
//! abandoned. A batch a sink cannot make safe is dropped unacknowledged, which keeps the source
//! from committing past it.
//!
//! Adding a sink: a module here, a [`SinkConfig`] variant, and an arm in [`SinkConfig::build`].

pub mod check;
pub mod driver;
pub mod elastic;
mod encode;
pub mod file;
pub mod kafka;
pub mod sentinel;
pub mod splunk_hec;
pub mod stdout;
pub mod syslog;
pub mod util;

pub use encode::{write_json_line, write_text_line};

use crate::pipeline::ack::AckToken;
use crate::record::{Output, Severity};
use crate::telemetry::Metrics;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Everything one input batch produced, shared by all sinks, with this sink's ack token.
#[derive(Debug)]
pub struct SinkBatch {
    /// Events and alerts in stream order (each alert after the event that raised it).
    pub items: Arc<Vec<Output>>,
    /// This sink's share of the batch acknowledgement.
    pub ack: AckToken,
    /// When the source read the lines behind these items.
    pub read_at: std::time::Instant,
}

/// Which records a sink takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKinds {
    /// Alerts only.
    #[default]
    Alerts,
    /// Normalised audit events only.
    Events,
    /// Both.
    Both,
}

/// A sink's selection of what it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routing {
    /// Alerts, events or both.
    pub records: RecordKinds,
    /// Alerts below this severity are skipped (events are not filtered by it).
    pub min_severity: Severity,
    /// Whether raw prompt and response text may be written.
    pub forward_content: bool,
}

impl Routing {
    /// Whether the sink takes this item.
    pub fn accepts(&self, item: &Output) -> bool {
        match item {
            Output::Event(_) => matches!(self.records, RecordKinds::Events | RecordKinds::Both),
            Output::Alert(alert) => {
                matches!(self.records, RecordKinds::Alerts | RecordKinds::Both)
                    && alert.severity >= self.min_severity
            }
        }
    }
}

/// Default for `min_severity`: everything.
pub fn default_min_severity() -> Severity {
    Severity::Low
}

/// What every sink gets to run.
#[derive(Debug, Clone)]
pub struct SinkContext {
    /// The sink's name from the configuration.
    pub name: Arc<str>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Cancelled when the grace period is over: stop retrying and give up unacknowledged.
    pub abort: CancellationToken,
    /// The agent's intake signal: a sink that can never deliver again (stdout whose reader went
    /// away) cancels it so the agent drains and stops instead of retrying forever.
    pub stop_intake: CancellationToken,
    /// The agent's state directory; records a SIEM rejected permanently go to
    /// `dead_letter/<sink name>.jsonl` under it.
    pub state_dir: std::path::PathBuf,
    /// This agent's identity (host name, version).
    pub agent: crate::record::AgentInfo,
    /// The deployment tag.
    pub deployment: Arc<str>,
    /// Where a sink hands alerts about itself (a full queue dropping records) to the pipeline,
    /// which sends them to every sink.
    pub alerts: Option<mpsc::Sender<crate::record::Alert>>,
    /// `[privacy]` and `[evidence]`, applied by the network sinks' driver on intake.
    pub outbound: Option<file::Outbound>,
}

impl SinkContext {
    /// The dead-letter file of this sink.
    pub fn dead_letter_path(&self) -> std::path::PathBuf {
        self.state_dir
            .join("dead_letter")
            .join(format!("{}.jsonl", self.name))
    }
}

/// A running sink.
pub type SinkTask = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send>>;

/// Why a sink could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The configuration cannot work (a secret that cannot be read, a bad URL or certificate).
    #[error("{0}")]
    Config(String),
    /// Opening or writing the destination failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// A sink's configuration, selected by `type`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SinkConfig {
    /// JSON lines (or readable text) on standard output.
    Stdout(stdout::StdoutSinkConfig),
    /// JSON lines appended to a local file.
    File(file::FileSinkConfig),
    /// Splunk HTTP Event Collector.
    SplunkHec(Box<splunk_hec::SplunkHecSinkConfig>),
    /// Elasticsearch data streams through `_bulk`.
    Elastic(Box<elastic::ElasticSinkConfig>),
    /// Microsoft Sentinel through the Azure Monitor Logs Ingestion API.
    Sentinel(Box<sentinel::SentinelSinkConfig>),
    /// RFC 5424 syslog over TCP, TLS or UDP.
    Syslog(Box<syslog::SyslogSinkConfig>),
    /// Kafka topics, keyed by the detection key.
    Kafka(Box<kafka::KafkaSinkConfig>),
}

impl SinkConfig {
    /// Alerts as JSON lines on standard output: the sink used when none is configured.
    pub fn default_stdout() -> SinkConfig {
        SinkConfig::Stdout(stdout::StdoutSinkConfig::default())
    }

    /// What the sink takes.
    pub fn routing(&self) -> Routing {
        match self {
            SinkConfig::Stdout(config) => config.routing(),
            SinkConfig::File(config) => config.routing(),
            SinkConfig::SplunkHec(config) => config.routing(),
            SinkConfig::Elastic(config) => config.routing(),
            SinkConfig::Sentinel(config) => config.routing(),
            SinkConfig::Syslog(config) => config.routing(),
            SinkConfig::Kafka(config) => config.routing(),
        }
    }

    /// Check what serde cannot: the key (relative to the sink) and the reason.
    pub fn validate(&self) -> Result<(), (String, String)> {
        match self {
            SinkConfig::Stdout(_) => Ok(()),
            SinkConfig::File(config) => config.validate(),
            SinkConfig::SplunkHec(config) => config.validate(),
            SinkConfig::Elastic(config) => config.validate(),
            SinkConfig::Sentinel(config) => config.validate(),
            SinkConfig::Syslog(config) => config.validate(),
            SinkConfig::Kafka(config) => config.validate(),
        }
    }

    /// Open the destination and start the sink.
    pub fn build(
        &self,
        context: SinkContext,
        batches: mpsc::Receiver<SinkBatch>,
    ) -> Result<SinkTask, SinkError> {
        match self {
            SinkConfig::Stdout(config) => stdout::build(config.clone(), context, batches),
            SinkConfig::File(config) => file::build(config.clone(), context, batches),
            SinkConfig::SplunkHec(config) => {
                splunk_hec::build(config.as_ref().clone(), context, batches)
            }
            SinkConfig::Elastic(config) => {
                elastic::build(config.as_ref().clone(), context, batches)
            }
            SinkConfig::Sentinel(config) => {
                sentinel::build(config.as_ref().clone(), context, batches)
            }
            SinkConfig::Syslog(config) => syslog::build(config.as_ref().clone(), context, batches),
            SinkConfig::Kafka(config) => kafka::build(config.as_ref().clone(), context, batches),
        }
    }
}
