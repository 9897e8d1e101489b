//! Configuration of the `kafka` sink.

use crate::kafka::{KafkaConnection, KafkaTls, Sasl};
use crate::net::retry::RequestConfig;
use crate::record::Severity;
use crate::sinks::util::batch::BatchConfig;
use crate::sinks::{default_min_severity, RecordKinds, Routing};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Produce canonical records (and optionally alerts) to Kafka, keyed by the detection key.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkConfig {
    /// Bootstrap brokers, `host:port` each.
    pub brokers: Vec<String>,
    /// The topic canonical records go to (what a detector tier's `kafka` source reads).
    pub topic: String,
    /// The topic alerts go to; required when `records` includes alerts, and never `topic`
    /// (a detector reading `topic` expects canonical records only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts_topic: Option<String>,
    /// `events` (default), `alerts` or `both`.
    #[serde(default = "default_records")]
    pub records: RecordKinds,
    /// Alerts below this severity are not sent.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// Send raw prompt/response text when records carry it (off: it never leaves the host; the
    /// edge's content scan still travels as `security_flags`).
    #[serde(default)]
    pub forward_content: bool,
    /// Producer compression: `lz4` (default), `zstd`, `snappy`, `gzip` or `none`.
    #[serde(default)]
    pub compression: KafkaCompression,
    /// How long librdkafka keeps trying one message before reporting it failed (the driver then
    /// retries the batch with backoff, so this only bounds one attempt).
    #[serde(default = "default_message_timeout", with = "crate::config::duration")]
    pub message_timeout: Duration,
    /// TLS to the brokers; off unless present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<KafkaTls>,
    /// SASL authentication; none unless present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl: Option<Sasl>,
    /// Further librdkafka producer properties.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub librdkafka_options: BTreeMap<String, String>,
    /// When a batch is handed to the producer (default 1,000 records, 1 MB, 1 s).
    #[serde(default)]
    pub batch: BatchConfig,
    /// Concurrency, backoff and circuit breaker (`compression` here is ignored: Kafka
    /// compresses with `compression` above).
    #[serde(default)]
    pub request: RequestConfig,
    /// Where records wait for delivery: a disk queue by default.
    #[serde(default)]
    pub queue: crate::queue::QueueConfig,
}

/// Kafka producer compression codecs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KafkaCompression {
    /// No compression.
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4: cheap on CPU, a good default for JSON records.
    #[default]
    Lz4,
    /// Zstandard: smallest on the wire.
    Zstd,
}

impl KafkaCompression {
    /// The librdkafka `compression.type` value.
    pub fn librdkafka_name(self) -> &'static str {
        match self {
            KafkaCompression::None => "none",
            KafkaCompression::Gzip => "gzip",
            KafkaCompression::Snappy => "snappy",
            KafkaCompression::Lz4 => "lz4",
            KafkaCompression::Zstd => "zstd",
        }
    }
}

fn default_records() -> RecordKinds {
    RecordKinds::Events
}

fn default_message_timeout() -> Duration {
    Duration::from_secs(30)
}

impl KafkaSinkConfig {
    /// What the sink takes.
    pub fn routing(&self) -> Routing {
        Routing {
            records: self.records,
            min_severity: self.min_severity,
            forward_content: self.forward_content,
        }
    }

    /// The cluster connection.
    pub fn connection(&self) -> KafkaConnection {
        KafkaConnection {
            brokers: self.brokers.clone(),
            tls: self.tls.clone(),
            sasl: self.sasl.clone(),
            librdkafka_options: self.librdkafka_options.clone(),
        }
    }

    /// Check what serde cannot.
    pub fn validate(&self) -> Result<(), (String, String)> {
        self.connection().validate()?;
        if self.topic.trim().is_empty() {
            return Err(("topic".into(), "must not be empty".into()));
        }
        let wants_alerts = matches!(self.records, RecordKinds::Alerts | RecordKinds::Both);
        match &self.alerts_topic {
            None if wants_alerts => {
                return Err((
                    "alerts_topic".into(),
                    "is required when records includes alerts".into(),
                ))
            }
            Some(alerts) if alerts == &self.topic => {
                return Err((
                    "alerts_topic".into(),
                    "must differ from topic (detectors read topic as canonical records)".into(),
                ))
            }
            Some(alerts) if alerts.trim().is_empty() => {
                return Err(("alerts_topic".into(), "must not be empty".into()))
            }
            _ => {}
        }
        if self.message_timeout < Duration::from_secs(1) {
            return Err(("message_timeout".into(), "must be at least 1s".into()));
        }
        self.batch.validate(None)?;
        self.request.validate()?;
        self.queue.validate()
    }
}
