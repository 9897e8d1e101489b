//! Configuration of the `splunk_hec` sink.

use crate::config::Secret;
use crate::net::http::{validate_url, TlsConfig};
use crate::net::retry::RequestConfig;
use crate::record::Severity;
use crate::sinks::util::batch::BatchConfig;
use crate::sinks::{default_min_severity, RecordKinds, Routing};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Send to a Splunk HTTP Event Collector (`/services/collector/event`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SplunkHecSinkConfig {
    /// Base URL of the collector, e.g. `https://splunk.example.com:8088`.
    pub endpoint: String,
    /// The HEC token: `{ env = "AIWARDEN_HEC_TOKEN" }` or `{ file = "/etc/aiwarden/hec.token" }`.
    pub token: Secret,
    /// Index to write to; the token's default index when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    /// The `source` of every envelope.
    #[serde(default = "default_source")]
    pub source: String,
    /// The `host` of every envelope; the agent's host name when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Use indexer acknowledgement: records count as delivered only once Splunk confirms they
    /// were indexed (Splunk Enterprise; the token must have acknowledgement on).
    #[serde(default)]
    pub acknowledgements: bool,
    /// How long to wait for an indexer acknowledgement before sending the batch again.
    #[serde(default = "default_ack_timeout", with = "crate::config::duration")]
    pub ack_timeout: Duration,
    /// How often to ask whether a batch was indexed.
    #[serde(default = "default_ack_poll", with = "crate::config::duration")]
    pub ack_poll_interval: Duration,
    /// `alerts`, `events` or `both`.
    #[serde(default)]
    pub records: RecordKinds,
    /// Alerts below this severity are not sent.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// Send raw prompt/response text when records carry it (off: it never leaves the host).
    #[serde(default)]
    pub forward_content: bool,
    /// When a batch is sent (default 1,000 records, 1 MB, 1 s).
    #[serde(default)]
    pub batch: BatchConfig,
    /// Timeouts, concurrency, backoff, compression.
    #[serde(default)]
    pub request: RequestConfig,
    /// Where records wait for delivery: a disk queue by default (see `[sinks.<name>.queue]`).
    #[serde(default)]
    pub queue: crate::queue::QueueConfig,
    /// Send the real user next to the pseudonym (`real_user_id`) when `[privacy] pseudonymise`
    /// is on: only for a SIEM whose readers may see identities.
    #[serde(default)]
    pub real_identity: bool,
    /// TLS options.
    #[serde(default)]
    pub tls: TlsConfig,
}

fn default_source() -> String {
    "aiwarden".to_string()
}

fn default_ack_timeout() -> Duration {
    Duration::from_secs(300)
}

fn default_ack_poll() -> Duration {
    Duration::from_secs(2)
}

impl SplunkHecSinkConfig {
    /// What the sink takes.
    pub fn routing(&self) -> Routing {
        Routing {
            records: self.records,
            min_severity: self.min_severity,
            forward_content: self.forward_content,
        }
    }

    /// Check what serde cannot.
    pub fn validate(&self) -> Result<(), (String, String)> {
        validate_url("endpoint", &self.endpoint)?;
        if let Some(index) = &self.index {
            if index.trim().is_empty() {
                return Err(("index".into(), "must not be empty when set".into()));
            }
        }
        self.batch.validate(None)?;
        self.request.validate()?;
        self.queue.validate()?;
        self.tls.validate()
    }
}
