//! The `sentinel` sink: rows for the custom tables `AIWardenAlerts_CL` and `AIWardenEvents_CL`
//! through the Azure Monitor Logs Ingestion API (PROTOCOLS.md §3). The legacy HTTP Data
//! Collector API is deprecated (it stops on 14 September 2026) and not implemented.
//!
//! Alerts and events go to different DCR streams, so the sink runs one driver per stream; both
//! share the OAuth2 token cache. A batch is acknowledged once both streams accepted their part.

mod config;
mod encoder;
mod service;

pub use config::{SentinelSinkConfig, MAX_REQUEST_BYTES};
pub use encoder::{alert_row, alert_row_compact, event_row};
pub use service::{classify, IngestionService, TokenCache, TokenSource};

use super::driver::{self, Classified, DriverSettings, Encoded, Service};
use super::{RecordKinds, SinkBatch, SinkContext, SinkError, SinkTask};
use crate::net::http::build_client;
use crate::record::Output;
use bytes::Bytes;
use std::sync::Arc;
use tokio::sync::mpsc;

struct Stream {
    service: IngestionService,
    deployment: String,
    host: String,
}

impl Service for Stream {
    fn evidence_shape(&self) -> Option<crate::evidence::encoded::EncodedShape> {
        Some(crate::evidence::encoded::EncodedShape::SentinelRow)
    }

    fn encode(
        &self,
        item: &Output,
        forward_content: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        let row = match item {
            Output::Alert(alert) => alert_row_compact(alert),
            Output::Event(record) => {
                event_row(record, &self.deployment, &self.host, forward_content)
            }
        };
        serde_json::to_writer(out, &row).map_err(|error| error.to_string())
    }

    fn frame(&self, items: &[Encoded], out: &mut Vec<u8>) {
        out.push(b'[');
        for (index, item) in items.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&item.bytes);
        }
        out.push(b']');
    }

    fn framing_overhead(&self) -> usize {
        2
    }

    fn separator_bytes(&self) -> usize {
        1
    }

    async fn send(&self, body: Bytes, gzip: bool, _count: usize) -> Classified {
        self.service.send(body, gzip).await
    }
}

/// The HTTP client and the token cache for `config`.
fn token_cache(
    config: &SentinelSinkConfig,
    sink: &str,
) -> Result<(reqwest::Client, TokenCache), SinkError> {
    let client_secret = config
        .client_secret
        .resolve()
        .map_err(|error| SinkError::Config(format!("client_secret: {error}")))?;
    let client = build_client(sink, &config.tls, &config.request)
        .map_err(|error| SinkError::Config(error.to_string()))?;
    let token_url = reqwest::Url::parse(&format!(
        "{}/{}/oauth2/v2.0/token",
        config.authority_host.trim_end_matches('/'),
        config.tenant_id
    ))
    .map_err(|error| SinkError::Config(format!("authority_host: {error}")))?;
    let tokens = TokenCache::new(
        TokenSource {
            token_url,
            client_id: config.client_id.clone(),
            client_secret,
            scope: config.scope.clone(),
        },
        client.clone(),
    );
    Ok((client, tokens))
}

/// `check-config --connect`: ask the identity provider for a token.
pub async fn check(config: &SentinelSinkConfig, sink: &str) -> Result<String, String> {
    let (_, tokens) = token_cache(config, sink).map_err(|error| error.to_string())?;
    tokens.check().await?;
    Ok(format!(
        "token issued for client {}; DCR {} is checked on the first batch (403 names a missing role)",
        config.client_id, config.dcr_immutable_id
    ))
}

/// Build the sink: the token cache, one driver per stream, and the fan-out between them.
pub fn build(
    config: SentinelSinkConfig,
    context: SinkContext,
    batches: mpsc::Receiver<SinkBatch>,
) -> Result<SinkTask, SinkError> {
    let (client, tokens) = token_cache(&config, &context.name)?;
    let tokens = Arc::new(tokens);
    let routing = config.routing();
    let mut streams = Vec::new();
    for (kinds, stream) in [
        (RecordKinds::Alerts, &config.alerts_stream),
        (RecordKinds::Events, &config.events_stream),
    ] {
        let wanted = routing.records == RecordKinds::Both || routing.records == kinds;
        if !wanted {
            continue;
        }
        let url = reqwest::Url::parse(&format!(
            "{}/dataCollectionRules/{}/streams/{}?api-version=2023-01-01",
            config.ingestion_endpoint.trim_end_matches('/'),
            config.dcr_immutable_id,
            stream
        ))
        .map_err(|error| SinkError::Config(format!("ingestion_endpoint: {error}")))?;
        let service = Stream {
            service: IngestionService {
                sink: context.name.to_string(),
                client: client.clone(),
                url,
                dcr: config.dcr_immutable_id.clone(),
                stream: stream.clone(),
                tokens: Arc::clone(&tokens),
            },
            deployment: context.deployment.to_string(),
            host: context.agent.host.clone(),
        };
        let settings = DriverSettings {
            routing: super::Routing {
                records: kinds,
                ..routing
            },
            batch: config.batch,
            request: config.request,
            queue: config.queue,
            queue_name: format!("{}.{}", context.name, stream),
            real_identity: config.real_identity,
        };
        streams.push((service, settings));
    }
    Ok(Box::pin(async move {
        let mut senders = Vec::new();
        let mut drivers = tokio::task::JoinSet::new();
        for (service, settings) in streams {
            let (sender, receiver) = mpsc::channel(1);
            senders.push(sender);
            drivers.spawn(driver::run(service, settings, context.clone(), receiver));
        }
        let mut batches = batches;
        while let Some(batch) = batches.recv().await {
            for sender in &senders {
                let _ = sender
                    .send(SinkBatch {
                        items: Arc::clone(&batch.items),
                        ack: batch.ack.clone(),
                        read_at: batch.read_at,
                    })
                    .await;
            }
            batch.ack.delivered();
        }
        drop(senders);
        while let Some(result) = drivers.join_next().await {
            if let Ok(Err(error)) = result {
                return Err(error);
            }
        }
        Ok(())
    }))
}

#[cfg(test)]
mod tests;
