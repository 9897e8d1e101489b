//! Configuration of the `elastic` sink.

use crate::config::Secret;
use crate::net::http::{validate_url, TlsConfig};
use crate::net::retry::RequestConfig;
use crate::record::Severity;
use crate::sinks::util::batch::BatchConfig;
use crate::sinks::{default_min_severity, RecordKinds, Routing};
use serde::{Deserialize, Serialize};

/// Send to Elasticsearch data streams through `_bulk`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ElasticSinkConfig {
    /// Base URL of the cluster, e.g. `https://es.example.com:9200`.
    pub endpoint: String,
    /// How to authenticate.
    pub auth: ElasticAuth,
    /// Data stream namespace: alerts go to `logs-aiwarden.alerts-<namespace>`, events to
    /// `logs-aiwarden.events-<namespace>`.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// `alerts`, `events` or `both`.
    #[serde(default)]
    pub records: RecordKinds,
    /// Alerts below this severity are not sent.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// Send raw prompt/response text when records carry it (off: it never leaves the host).
    #[serde(default)]
    pub forward_content: bool,
    /// When a batch is sent (default 2,000 documents, 5 MiB, 1 s).
    #[serde(default = "default_batch")]
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

/// Elasticsearch credentials.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "strategy", rename_all = "snake_case", deny_unknown_fields)]
pub enum ElasticAuth {
    /// `Authorization: ApiKey <encoded>` with the base64 "encoded" key Elasticsearch returns.
    ApiKey {
        /// The encoded API key.
        api_key: Secret,
    },
    /// HTTP basic authentication.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: Secret,
    },
}

fn default_namespace() -> String {
    "default".to_string()
}

fn default_batch() -> BatchConfig {
    BatchConfig {
        max_events: 2000,
        ..BatchConfig::with_max_bytes(5 * 1024 * 1024)
    }
}

impl ElasticSinkConfig {
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
        // Data stream names: lowercase, no `-` in the namespace, at most 100 bytes.
        let plain = !self.namespace.is_empty()
            && self.namespace.len() <= 100
            && self
                .namespace
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !plain {
            return Err((
                "namespace".into(),
                "use lowercase letters, digits and `_` only (no `-`), at most 100 characters"
                    .into(),
            ));
        }
        self.batch.validate(None)?;
        self.request.validate()?;
        self.queue.validate()?;
        self.tls.validate()
    }
}
