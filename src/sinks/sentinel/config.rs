//! Configuration of the `sentinel` sink.

use crate::config::Secret;
use crate::net::http::{validate_url, TlsConfig};
use crate::net::retry::RequestConfig;
use crate::record::Severity;
use crate::sinks::util::batch::BatchConfig;
use crate::sinks::{default_min_severity, RecordKinds, Routing};
use serde::{Deserialize, Serialize};

/// The Logs Ingestion API refuses calls over 1 MB; aim below it before compression.
pub const MAX_REQUEST_BYTES: usize = 1_000_000;

/// Send to Microsoft Sentinel through the Azure Monitor Logs Ingestion API.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SentinelSinkConfig {
    /// Directory (tenant) id of the app registration.
    pub tenant_id: String,
    /// Application (client) id of the app registration.
    pub client_id: String,
    /// Its client secret: `{ env = "AIWARDEN_SENTINEL_SECRET" }` or `{ file = "…" }`.
    pub client_secret: Secret,
    /// Logs ingestion endpoint of the DCR or a DCE, e.g.
    /// `https://my-dce-abcd.westeurope-1.ingest.monitor.azure.com`.
    pub ingestion_endpoint: String,
    /// Immutable id of the data collection rule (`dcr-…`).
    pub dcr_immutable_id: String,
    /// Stream for alerts.
    #[serde(default = "default_alerts_stream")]
    pub alerts_stream: String,
    /// Stream for events.
    #[serde(default = "default_events_stream")]
    pub events_stream: String,
    /// Token authority (change for sovereign clouds).
    #[serde(default = "default_authority")]
    pub authority_host: String,
    /// Token scope (change for sovereign clouds). The double slash is correct.
    #[serde(default = "default_scope")]
    pub scope: String,
    /// `alerts`, `events` or `both`.
    #[serde(default)]
    pub records: RecordKinds,
    /// Alerts below this severity are not sent.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// Send raw prompt/response text when records carry it (off: it never leaves the host).
    #[serde(default)]
    pub forward_content: bool,
    /// When a batch is sent (default 1,000 records, 1,000,000 bytes, 1 s; at most 1,000,000 bytes).
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

fn default_alerts_stream() -> String {
    "Custom-AIWardenAlerts_CL".to_string()
}
fn default_events_stream() -> String {
    "Custom-AIWardenEvents_CL".to_string()
}
fn default_authority() -> String {
    "https://login.microsoftonline.com".to_string()
}
fn default_scope() -> String {
    "https://monitor.azure.com//.default".to_string()
}

impl SentinelSinkConfig {
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
        validate_url("ingestion_endpoint", &self.ingestion_endpoint)?;
        validate_url("authority_host", &self.authority_host)?;
        for (key, value) in [
            ("tenant_id", &self.tenant_id),
            ("client_id", &self.client_id),
            ("dcr_immutable_id", &self.dcr_immutable_id),
        ] {
            if value.trim().is_empty() || value.contains('/') {
                return Err((key.into(), "must be a plain id".into()));
            }
        }
        for (key, stream) in [
            ("alerts_stream", &self.alerts_stream),
            ("events_stream", &self.events_stream),
        ] {
            if !stream.starts_with("Custom-") {
                return Err((
                    key.into(),
                    "a custom table's stream is named `Custom-<Table>`".into(),
                ));
            }
        }
        self.batch.validate(Some(MAX_REQUEST_BYTES))?;
        self.request.validate()?;
        self.queue.validate()?;
        self.tls.validate()
    }
}
