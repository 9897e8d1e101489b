//! The `splunk_hec` sink: batches of HEC event envelopes to `/services/collector/event`
//! (PROTOCOLS.md §1), with optional indexer acknowledgement.
//!
//! `config.rs` is the user-facing settings, `encoder.rs` turns records into envelopes (pure),
//! `service.rs` sends one request and sorts Splunk's answer. Batching, retries, splitting and
//! dead letters are the shared driver's.

mod config;
mod encoder;
mod service;

pub use config::SplunkHecSinkConfig;
pub use encoder::{encode, EnvelopeSettings, SOURCETYPE_ALERT, SOURCETYPE_EVENT};
pub use service::{classify, Answer, HecReply, HecService};

use super::driver::{self, Classified, DriverSettings, Encoded, Service};
use super::{SinkBatch, SinkContext, SinkError, SinkTask};
use crate::net::http::build_client;
use crate::record::Output;
use bytes::Bytes;
use reqwest::header::HeaderValue;
use service::AckSettings;
use std::path::Path;
use tokio::sync::mpsc;

struct Hec {
    service: HecService,
    envelope: EnvelopeSettings,
}

impl Service for Hec {
    fn evidence_shape(&self) -> Option<crate::evidence::encoded::EncodedShape> {
        Some(crate::evidence::encoded::EncodedShape::HecEnvelope {
            host: self.envelope.host.clone(),
            source: self.envelope.source.clone(),
            index: self.envelope.index.clone(),
        })
    }

    fn encode(
        &self,
        item: &Output,
        forward_content: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        encode(item, &self.envelope, forward_content, out)
    }

    fn frame(&self, items: &[Encoded], out: &mut Vec<u8>) {
        for item in items {
            out.extend_from_slice(&item.bytes);
        }
    }

    async fn send(&self, body: Bytes, gzip: bool, count: usize) -> Classified {
        self.service.send(body, gzip, count).await
    }
}

fn url(endpoint: &str, path: &str) -> Result<reqwest::Url, SinkError> {
    let base = endpoint.trim_end_matches('/');
    reqwest::Url::parse(&format!("{base}{path}"))
        .map_err(|error| SinkError::Config(format!("endpoint: {error}")))
}

/// The indexer-acknowledgement channel: one stable id per sink, kept across restarts.
fn channel_id(state_dir: &Path, sink: &str) -> Result<String, SinkError> {
    let dir = state_dir.join("splunk_hec");
    let path = dir.join(format!("{sink}.channel"));
    if let Ok(text) = std::fs::read_to_string(&path) {
        if let Ok(id) = uuid::Uuid::parse_str(text.trim()) {
            return Ok(id.to_string());
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    let io = |source| SinkError::Io {
        context: format!("saving the HEC channel id to {}", path.display()),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    std::fs::write(&path, &id).map_err(io)?;
    Ok(id)
}

/// The service for `config`, and the health-check URL. Indexer acknowledgement needs the state
/// directory (for the persisted channel id); without one it is left off (`check-config`).
fn service(
    config: &SplunkHecSinkConfig,
    sink: &str,
    state_dir: Option<&Path>,
) -> Result<(HecService, reqwest::Url), SinkError> {
    let token = config
        .token
        .resolve()
        .map_err(|error| SinkError::Config(format!("token: {error}")))?;
    let mut authorization = HeaderValue::from_str(&format!("Splunk {token}")).map_err(|_| {
        SinkError::Config("token: contains characters not allowed in a header".into())
    })?;
    authorization.set_sensitive(true);
    let client = build_client(sink, &config.tls, &config.request)
        .map_err(|error| SinkError::Config(error.to_string()))?;
    let acknowledgement = match state_dir.filter(|_| config.acknowledgements) {
        Some(state_dir) => Some(AckSettings {
            channel: channel_id(state_dir, sink)?,
            timeout: config.ack_timeout,
            poll_interval: config.ack_poll_interval,
        }),
        None => None,
    };
    let service = HecService {
        sink: sink.to_string(),
        client,
        event_url: url(&config.endpoint, "/services/collector/event")?,
        ack_url: url(&config.endpoint, "/services/collector/ack")?,
        authorization,
        acknowledgement,
    };
    Ok((
        service,
        url(&config.endpoint, "/services/collector/health")?,
    ))
}

/// `check-config --connect`: the health endpoint, asked with the token.
pub async fn check(config: &SplunkHecSinkConfig, sink: &str) -> Result<String, String> {
    let (service, health_url) = service(config, sink, None).map_err(|error| error.to_string())?;
    service.health(health_url).await
}

/// Build the sink: resolve the token, build the client, start a health check, run the driver.
pub fn build(
    config: SplunkHecSinkConfig,
    context: SinkContext,
    batches: mpsc::Receiver<SinkBatch>,
) -> Result<SinkTask, SinkError> {
    let (service, health_url) = service(&config, &context.name, Some(&context.state_dir))?;
    let envelope = EnvelopeSettings {
        host: config
            .host
            .clone()
            .unwrap_or_else(|| context.agent.host.clone()),
        source: config.source.clone(),
        index: config.index.clone(),
        deployment: context.deployment.to_string(),
    };
    let settings = DriverSettings::new(
        config.routing(),
        config.batch,
        config.request,
        config.queue,
        &context.name,
    )
    .with_real_identity(config.real_identity);
    let sink = Hec { service, envelope };
    Ok(Box::pin(async move {
        match sink.service.health(health_url).await {
            Ok(message) => tracing::info!(sink = %context.name, %message, "Splunk HEC reachable."),
            Err(problem) => {
                tracing::error!(sink = %context.name, %problem, "Splunk HEC health check failed; records are kept and retried.")
            }
        }
        driver::run(sink, settings, context, batches).await
    }))
}

#[cfg(test)]
mod tests;
